"""Admin for failed outbound messages: Meta's error code, title and details, and "resend".

A proxy of ``Message`` (only outbound rows in ``failed``), so operators get one focused list
beside the full message history; ``conversations/admin.py`` imports this module.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from conversations.models import FailedMessage, Message, MessageStatus
from conversations.services.sending import resend_failed


def _failed() -> QuerySet[Message]:
    return Message.objects.failed_outbound()


class ErrorCodeFilter(admin.SimpleListFilter):
    """Filter by Meta's error code; lists the codes present, with their title and count."""

    title = "Meta error code"
    parameter_name = "error_code"
    NONE = "none"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        rows = _failed().values("error_code", "error_title").annotate(n=Count("pk")).order_by("error_code")
        by_code: dict[int | None, tuple[str, int]] = {}
        for row in rows:
            title, count = by_code.get(row["error_code"], (row["error_title"], 0))
            by_code[row["error_code"]] = (title, count + row["n"])
        return [
            (self.NONE if code is None else str(code), f"{'no code' if code is None else code}: {title} ({count})")
            for code, (title, count) in by_code.items()
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        value = self.value()
        if value is None:
            return queryset
        if value == self.NONE:
            return queryset.filter(error_code__isnull=True)
        if not value.lstrip("-").isdigit():
            return queryset.none()
        return queryset.filter(error_code=int(value))


@admin.register(FailedMessage)
class FailedMessageAdmin(admin.ModelAdmin):
    list_display = (
        "id", "contact", "message_type", "short_text", "error_code", "error_title",
        "attempts", "part", "created_at", "status_at",
    )
    list_filter = (ErrorCodeFilter, "message_type", "app_config")
    search_fields = ("contact__wa_id", "contact__name", "contact__profile_name", "error_title", "error_details", "text")
    list_select_related = ("contact",)
    ordering = ("-status_at", "-id")
    actions = ("resend",)
    readonly_fields = [field.name for field in Message._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).failed_outbound()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    @admin.display(description="text")
    def short_text(self, obj: Message) -> str:
        return obj.text if len(obj.text) <= 60 else obj.text[:57] + "..."

    @admin.display(description="part")
    def part(self, obj: Message) -> str:
        return f"{obj.part_index + 1}/{obj.parts_total}" if obj.group_id else ""

    @admin.action(description="Resend selected messages", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        resent = 0
        for message in queryset.order_by("group_id", "part_index", "pk"):
            message.refresh_from_db()
            if message.status != MessageStatus.FAILED:  # already resent with an earlier part
                continue
            resend_failed(message)
            resent += 1
        self.message_user(
            request,
            f"{resent} message(s) queued to send again. A message failed as \"Send interrupted\" "
            "may already have reached the user: check the conversation first.",
            messages.SUCCESS,
        )
