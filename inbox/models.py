"""The inbox's own state, next to the conversations it describes.

A conversation is a contact on a business number (``Contact`` + ``MetaAppConfig``). Whether
the bot answers is ``Contact.needs_human`` (set by a flow's handover action, the REST API or
the inbox's "take over"); the inbox never keeps a second copy of it. What only the inbox
knows lives here: who a conversation is assigned to, when it was resolved, how far each
operator has read, private notes, canned responses, and the audit of every action.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from conversations.models import Contact
from meta_integration.models import MetaAppConfig


class ConversationStatus(models.TextChoices):
    BOT = "bot", "Bot"
    WAITING = "waiting", "Waiting for a human"
    ASSIGNED = "assigned", "Assigned"
    RESOLVED = "resolved", "Resolved"


class Conversation(models.Model):
    """One contact on one business number, as the inbox lists it.

    Rows are created by ``services.sync_conversations`` from the messages table (new message
    ids only), so the webhook's hot path writes nothing here. ``version`` grows with every
    inbox action and note: an open conversation's poll compares it to know whether to fetch
    the timeline again.
    """

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="inbox_conversations")
    app_config = models.ForeignKey(MetaAppConfig, on_delete=models.CASCADE, related_name="inbox_conversations")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )
    # An assignment counts only for the handover it was made in: a later handover (after a
    # release through the REST API, say) waits for a human again.
    assigned_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "app_config"], name="inbox_conversation_once"),
            models.CheckConstraint(
                condition=Q(assignee__isnull=True) | Q(assigned_at__isnull=False), name="inbox_assignee_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} on {self.app_config}"


class ReadMarker(models.Model):
    """How far one operator has read one conversation: the unread count is the inbound
    messages after ``last_read_message_id``."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_markers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_message_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="inbox_read_marker_once")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.conversation_id} up to message {self.last_read_message_id}"


class Note(models.Model):
    """A private note in the timeline: operators see it, the contact never does."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="inbox_note_text_set")]

    def __str__(self) -> str:
        return self.text[:60]


class AuditAction(models.TextChoices):
    TAKE_OVER = "take_over", "took over"
    RELEASE = "release", "released to the bot"
    RESOLVE = "resolve", "resolved"
    ASSIGN = "assign", "assigned"
    UNASSIGN = "unassign", "unassigned"
    NOTE = "note", "added a note"
    LABEL_ADD = "label_add", "added label"
    LABEL_REMOVE = "label_remove", "removed label"
    SEND = "send", "sent a message"
    SEND_TEMPLATE = "send_template", "sent a template"


class AuditEvent(models.Model):
    """Who did what to a conversation, and when. Written by every inbox action in the same
    transaction as the change itself, so an action without its record cannot exist."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, help_text="The username, kept if the user is deleted")
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.get_action_display()} {self.detail}".strip()


class CannedResponse(models.Model):
    """A saved reply operators insert by typing ``/`` and part of its shortcut or text."""

    shortcut = models.SlugField(max_length=50, unique=True, help_text="Typed after / to find it, e.g. hours")
    text = models.TextField(max_length=4096, help_text="WhatsApp formatting allowed: *bold* _italic_ ~strike~")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut"]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="inbox_canned_text_set")]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class SyncMark(models.Model):
    """The highest message id ``sync_conversations`` has looked at (one row)."""

    last_message_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"synced up to message {self.last_message_id}"
