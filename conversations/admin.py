"""Admin for contacts and their conversations.

Operators find a contact by number or name, read the whole conversation on the contact's
page (a read-only timeline, newest last), and filter messages by direction, type, status
and Meta error code to find failures.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from conversations.admin_labels import ContactLabelsAdmin
from conversations.models import Contact, Direction, Message, MessageStatus, StatusEvent
from whatsappcrm_backend.admin_permissions import CannotAdd, CannotChange

TIMELINE_LENGTH = 200


DELETED_TEXT = "🚫 This message was deleted"
EDITED_LABEL = "Edited"


def _describe_change(message: Message, content: dict[str, Any]) -> str | None:
    """Edits, deletes and bare errors, as WhatsApp shows them (None for other messages)."""
    if content.get("deleted"):  # the original of a delete: WhatsApp shows only this
        return DELETED_TEXT
    if message.message_type == "revoke":
        return DELETED_TEXT
    if message.message_type == "edit":
        return f"{EDITED_LABEL}: {message.text}" if message.text else f"{EDITED_LABEL} (new text not forwarded by Meta)"
    if content.get("edited_text") is not None:  # the original of an edit shows its new text
        return f"{content['edited_text']} ({EDITED_LABEL})"
    if message.message_type == "errors":
        return f"[not delivered by WhatsApp] {message.error_title or message.error_details or 'error'}".strip()
    return None


def describe(message: Message) -> str:
    """A one-line rendering of any message type, for lists and the timeline."""
    content = message.content if isinstance(message.content, dict) else {}
    if message.direction == Direction.INBOUND:
        change = _describe_change(message, content)
        if change is not None:
            return change
    if message.text:
        return message.text
    for key, render in (
        ("reaction", lambda r: f"reacted {r.get('emoji') or '(removed)'}"),
        ("location", lambda r: r.get("name") or f"{r.get('latitude')}, {r.get('longitude')}"),
        ("media", lambda r: r.get("filename") or r.get("mime_type") or "media"),
        ("system", lambda r: r.get("body") or r.get("type") or "system notice"),
        ("contacts", lambda r: ", ".join(c.get("formatted_name", "") for c in r) if isinstance(r, list) else ""),
    ):
        value = content.get(key)
        if value:
            return f"[{message.message_type}] {render(value)}"
    return f"[{message.message_type}]"


def _error_suffix(message: Message) -> str:
    """`` (131047 Re-engagement message)``; without a code (a failed inbound message) just the title."""
    parts = [str(part) for part in (message.error_code, message.error_title) if part not in (None, "")]
    return f" ({' '.join(parts)})" if parts else ""


class HasErrorFilter(admin.SimpleListFilter):
    title = "error"
    parameter_name = "has_error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "With an error code"), ("no", "Without")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        if self.value() == "yes":
            return queryset.filter(error_code__isnull=False)
        if self.value() == "no":
            return queryset.filter(error_code__isnull=True)
        return queryset


class ProcessingFailedFilter(admin.SimpleListFilter):
    """Inbound messages the bot gave up on after INBOUND_MAX_PROCESSING_ATTEMPTS: an operator's job."""

    title = "processing"
    parameter_name = "processing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("failed", "Inbound: processing failed"), ("pending", "Inbound: not processed yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        if self.value() == "failed":
            return queryset.inbound().filter(status=MessageStatus.FAILED)
        if self.value() == "pending":
            return queryset.unprocessed_inbound()
        return queryset


@admin.register(Contact)
class ContactAdmin(ContactLabelsAdmin):  # labels: column, filter, bulk add/remove (admin_labels.py)
    list_display = ("wa_id", "profile_name", "name", "last_inbound_at", "needs_human", "blocked", "app_config",
                    "label_list", "marketing_opt_out")
    list_filter = ("needs_human", "blocked", "last_inbound_at", "app_config", "labels", "marketing_opt_out")
    list_select_related = ("app_config",)
    search_fields = ("wa_id", "profile_name", "name", "email")
    date_hierarchy = "last_inbound_at"
    readonly_fields = ("wa_id", "profile_name", "first_seen_at", "last_inbound_at", "handover_at", "timeline",
                       "marketing_opt_out", "marketing_opt_out_at")  # consent changes only through its services
    fieldsets = (
        (None, {"fields": ("wa_id", "profile_name", "name", "email", "app_config")}),
        ("Bot", {"fields": ("needs_human", "handover_at", "blocked", "attributes")}),
        ("Labels and marketing", {"fields": ("labels", "marketing_opt_out", "marketing_opt_out_at")}),
        ("Activity", {"fields": ("first_seen_at", "last_inbound_at")}),
        ("Conversation", {"fields": ("timeline",)}),
    )

    def save_model(self, request: HttpRequest, obj: Contact, form: ModelForm, change: bool) -> None:
        # The database requires a handover time whenever the bot is told to stay quiet.
        if obj.needs_human and obj.handover_at is None:
            obj.handover_at = timezone.now()
        super().save_model(request, obj, form, change)

    @admin.display(description=f"timeline (last {TIMELINE_LENGTH} messages)")
    def timeline(self, obj: Contact) -> SafeString | str:
        if obj.pk is None:
            return "-"
        recent = list(obj.messages.order_by("-created_at", "-id")[:TIMELINE_LENGTH])
        if not recent:
            return "No messages yet."
        rows = format_html_join(
            "\n",
            "<tr><td>{}</td><td>{}</td><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td></tr>",
            (
                (
                    timezone.localtime(m.timestamp or m.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    "user →" if m.direction == Direction.INBOUND else f"← {m.sent_by or 'bot'}",
                    reverse("admin:conversations_message_change", args=[m.pk]),
                    m.message_type,
                    describe(m),
                    m.status + _error_suffix(m),
                )
                for m in reversed(recent)
            ),
        )
        return format_html(
            "<table><thead><tr><th>time</th><th>from</th><th>type</th><th>message</th><th>status</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )


@admin.register(Message)
class MessageAdmin(CannotAdd, admin.ModelAdmin):
    """The message history. No "add": a message written here would skip the validation every
    send goes through and fail minutes later; operators send from the API
    (``conversations.api``), which uses ``send_to_contact`` like the bot."""

    list_display = ("created_at", "contact", "direction", "message_type", "short_text", "status", "error_code",
                    "processed_at")
    list_filter = ("direction", "message_type", "status", ProcessingFailedFilter, HasErrorFilter, "error_code",
                   "app_config")
    list_select_related = ("contact",)
    search_fields = ("wamid", "text", "contact__wa_id", "contact__profile_name")
    raw_id_fields = ("contact",)
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "processed_at", "sent_at", "status_at", "timestamp", "wamid", "reply_to_wamid",
                       "attempts")

    @admin.display(description="message")
    def short_text(self, obj: Message) -> str:
        text = describe(obj)
        return text if len(text) <= 80 else text[:77] + "..."


@admin.register(StatusEvent)
class StatusEventAdmin(CannotAdd, CannotChange, admin.ModelAdmin):
    """Read-only record of status webhooks; unapplied ones wait for their message's wamid."""

    list_display = ("timestamp", "wamid", "status", "recipient_id", "applied", "received_at")
    list_filter = ("status", "applied")
    search_fields = ("wamid", "recipient_id")


from conversations import (  # noqa: E402  (each registers its admin pages)
    admin_failed_messages,  # noqa: F401  (the failed messages)
    admin_media,  # noqa: F401  (the files users sent)
)
