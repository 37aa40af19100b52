"""Contacts and their conversation history: every message in and out is a row.

An outbound message is written before it is sent (status ``pending``), so a retry
or a redelivered task never creates a second reply; statuses only move forward.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from meta_integration.models import MetaAppConfig


class Label(models.Model):
    """A tag operators put on contacts ("vip", "bettor", "complaint"): filters in the inbox
    and the contact list, and the building block of campaign segments."""

    name = models.CharField(max_length=50, unique=True)
    color = models.CharField(max_length=7, default="#64748b", help_text="Hex colour, e.g. #16a34a")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="label_name_set"),
            models.CheckConstraint(condition=Q(color__regex=r"^#[0-9A-Fa-f]{6}$"), name="label_color_hex"),
        ]

    def __str__(self) -> str:
        return self.name


class ContactQuerySet(models.QuerySet):
    """Named slices of the contact table (``Contact.objects.marketable()``)."""

    def marketable(self) -> ContactQuerySet:
        """Contacts a campaign may send to: not opted out of marketing (STOP, or Meta's
        marketing-preference webhook) and not blocked. Conversations ignore this."""
        return self.filter(marketing_opt_out=False, blocked=False)


class Contact(models.Model):
    wa_id = models.CharField("WhatsApp id", max_length=32, unique=True)
    profile_name = models.CharField(max_length=255, blank=True, help_text="Name from the WhatsApp profile")
    name = models.CharField(max_length=255, blank=True, help_text="Name the user gave the bot")
    email = models.EmailField(blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="Other fields set by flows")
    app_config = models.ForeignKey(
        MetaAppConfig, null=True, blank=True, on_delete=models.SET_NULL,
        help_text="The business number the contact last wrote to",
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                           help_text="Opens WhatsApp's 24-hour customer service window")
    needs_human = models.BooleanField(default=False, db_index=True, help_text="In human handover: the bot is quiet")
    handover_at = models.DateTimeField(null=True, blank=True)
    blocked = models.BooleanField(default=False, db_index=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="contacts")
    # Marketing consent: campaigns skip a contact who opted out (STOP, or Meta's
    # marketing-preference webhook); conversations with the bot are unaffected.
    marketing_opt_out = models.BooleanField(default=False, db_index=True,
                                            help_text="Opted out of campaigns (STOP); the bot still answers")
    marketing_opt_out_at = models.DateTimeField(null=True, blank=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(wa_id=""), name="contact_wa_id_set"),
            models.CheckConstraint(
                condition=Q(needs_human=False) | Q(handover_at__isnull=False), name="contact_handover_has_time"
            ),
        ]

    def __str__(self) -> str:
        label = self.name or self.profile_name
        return f"{label} ({self.wa_id})" if label else self.wa_id


class Direction(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class MessageStatus(models.TextChoices):
    """Delivery status of an outbound message; inbound messages are ``received`` (or ``failed``
    when their processing was given up on)."""

    RECEIVED = "received", "Received"
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"


# Inbound message types the bot never answers: they change or remove an earlier message
# (an edit, a delete) or report that Meta could not deliver one to us. The webhook stores
# them (meta_integration.payloads.MessageType EDIT, REVOKE, ERRORS) already processed, and
# the conversation in admin shows them as WhatsApp does.
BOT_IGNORED_TYPES: frozenset[str] = frozenset({"edit", "revoke", "errors"})

# The order statuses may move in; failed is terminal and reachable from any of them.
STATUS_ORDER = [MessageStatus.PENDING, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]


class MessageQuerySet(models.QuerySet):
    """The slices of the message table the code asks for by name, so a filter on
    ``direction`` and ``status`` is written once (``Message.objects.pending_outbound()``)."""

    def inbound(self) -> MessageQuerySet:
        return self.filter(direction=Direction.INBOUND)

    def outbound(self) -> MessageQuerySet:
        return self.filter(direction=Direction.OUTBOUND)

    def unprocessed_inbound(self) -> MessageQuerySet:
        """Inbound messages the bot has still to handle: not processed and not given up on
        (inbound is ``received`` or ``failed``, so ``received`` is "not given up on")."""
        return self.filter(direction=Direction.INBOUND, processed_at__isnull=True, status=MessageStatus.RECEIVED)

    def pending_outbound(self) -> MessageQuerySet:
        """Replies written and not yet accepted by Meta (or given up on)."""
        return self.filter(direction=Direction.OUTBOUND, status=MessageStatus.PENDING)

    def failed_outbound(self) -> MessageQuerySet:
        """What Meta refused or the send path gave up on: the operators' resend list."""
        return self.filter(direction=Direction.OUTBOUND, status=MessageStatus.FAILED)

    def pending_chain(self, contact_id: Any, app_config_id: Any) -> MessageQuerySet:
        """One contact's pending replies from one business number: the chain sent in id order
        (the ``message_pending_chain`` index). The ids may be ``OuterRef`` expressions."""
        return self.pending_outbound().filter(contact_id=contact_id, app_config_id=app_config_id)


class Message(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="messages")
    app_config = models.ForeignKey(MetaAppConfig, null=True, blank=True, on_delete=models.SET_NULL)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    message_type = models.CharField(max_length=32, help_text="Meta's type: text, interactive, image, ...")
    text = models.TextField(blank=True, help_text="The human-readable text: body, caption, reply title")
    content = models.JSONField(default=dict, blank=True,
                               help_text="Inbound: the parsed message; outbound: the message spec to send")
    wamid = models.CharField(max_length=255, unique=True, null=True, blank=True)
    reply_to_wamid = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices)
    status_at = models.DateTimeField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True, db_index=True)
    error_title = models.CharField(max_length=255, blank=True)
    error_details = models.TextField(blank=True)
    timestamp = models.DateTimeField(null=True, blank=True, help_text="When Meta says the message was sent")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True,
                                        help_text="Inbound: when the bot finished with it")
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Ordered multi-part replies: part N is sent only after part N-1 was accepted.
    group_id = models.UUIDField(null=True, blank=True, db_index=True)
    part_index = models.PositiveIntegerField(null=True, blank=True)
    parts_total = models.PositiveIntegerField(null=True, blank=True)
    send_after = models.DateTimeField(null=True, blank=True)
    sent_by = models.CharField(max_length=150, blank=True, help_text="bot, or the operator who sent it")
    # The send lease (outbound): the run that holds it is the only one that may call Meta for
    # this row until ``claimed_until``; a run that died leaves it to expire (see delivery.py).
    claimed_by = models.CharField(max_length=155, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Outbound: retry not before")

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["contact", "created_at"]),
            models.Index(fields=["direction", "status"]),
            # Each contact's chain of replies still to send, in order (the delivery's head check).
            models.Index(
                fields=["contact", "app_config", "id"],
                condition=Q(direction="out", status="pending"),
                name="message_pending_chain",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(direction__in=["in", "out"]), name="message_direction_valid"),
            models.CheckConstraint(
                condition=Q(status__in=[choice.value for choice in MessageStatus]), name="message_status_valid"
            ),
            models.CheckConstraint(
                # Inbound is received, or failed once processing was given up on (operators see it).
                condition=(
                    Q(direction="in", status__in=["received", "failed"]) | Q(direction="out") & ~Q(status="received")
                ),
                name="message_status_fits_direction",
            ),
            models.CheckConstraint(
                condition=Q(direction="out") | Q(wamid__isnull=False), name="inbound_message_has_wamid"
            ),
            models.UniqueConstraint(
                fields=["group_id", "part_index"], condition=Q(group_id__isnull=False), name="message_part_unique"
            ),
        ]

    def __str__(self) -> str:
        arrow = "<-" if self.direction == Direction.INBOUND else "->"
        return f"{arrow} {self.contact_id} {self.message_type}: {self.text[:40]}"


class FailedMessage(Message):
    """Outbound messages Meta refused, as their own admin list (operators resend from there)."""

    class Meta:
        proxy = True
        verbose_name = "failed message"
        verbose_name_plural = "failed messages"


# Inbound message types whose file is downloaded from Meta (conversations.download_media).
MEDIA_MESSAGE_TYPES: frozenset[str] = frozenset({"image", "audio", "video", "document", "sticker"})


class MediaStatus(models.TextChoices):
    PENDING = "pending", "Pending download"
    STORED = "stored", "Stored"
    FAILED = "failed", "Failed"


def media_path(instance: MessageMedia, filename: str) -> str:
    return f"whatsapp/{timezone.now():%Y/%m}/{filename}"


class MessageMedia(models.Model):
    """The file of an inbound image, audio, video, document or sticker: downloaded from Meta
    by a task (the URL Meta gives expires within minutes) and kept in Django's storage.
    Served to staff only, by ``conversations:media``."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="media")
    media_id = models.CharField(max_length=128, help_text="Meta's id of the media")
    mime_type = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True, help_text="Bytes")
    sha256 = models.CharField(max_length=64, blank=True, help_text="Hex SHA-256 of the stored bytes")
    filename = models.CharField(max_length=255, blank=True, help_text="A document's original name")
    file = models.FileField(upload_to=media_path, max_length=255, blank=True)
    status = models.CharField(max_length=8, choices=MediaStatus.choices, default=MediaStatus.PENDING)
    error = models.TextField(blank=True, help_text="Why it was not stored")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "message media"
        verbose_name_plural = "message media"
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["pending", "stored", "failed"]), name="media_status_valid"),
            models.CheckConstraint(condition=~Q(status="stored") | ~Q(file=""), name="media_stored_has_file"),
        ]

    def __str__(self) -> str:
        return f"{self.media_id} ({self.mime_type or 'unknown type'}, {self.status})"


class StatusEvent(models.Model):
    """Every status webhook as received; applied to its message when the wamid is known.

    A status can arrive before the send task has stored the wamid it belongs to (Meta
    is fast, our write is after its HTTP answer), so unknown ones wait here and are
    applied when the wamid is stored.
    """

    wamid = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=16)
    timestamp = models.DateTimeField()
    recipient_id = models.CharField(max_length=32, blank=True)
    errors = models.JSONField(default=list, blank=True)
    conversation = models.JSONField(default=dict, blank=True)
    pricing = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    applied = models.BooleanField(default=False, db_index=True)

    class Meta:
        ordering = ["timestamp", "id"]
        constraints = [
            models.UniqueConstraint(fields=["wamid", "status"], name="status_event_once_per_status"),
        ]

    def __str__(self) -> str:
        return f"{self.wamid} {self.status}"
