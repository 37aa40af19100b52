"""The one way anything in the project sends a WhatsApp message, and the Outbox behind it.

Flows, football notifications and operators call ``send_to_contact`` (or ``send_parts`` /
``send_long_text``). Each writes the outbound ``Message`` row (``pending``) first and
enqueues ``meta_integration.send_message`` only when the transaction commits, so nothing is
sent without a row, nothing is sent for a rolled-back reply, and a retry never creates a
second reply.

Ordered multi-part messages: all parts are written at once (one ``group_id``, ``part_index``
0..n-1, ``send_after`` spaced by the gap) but only part 0 is enqueued. When Meta accepts part
N, ``MessageOutbox.mark_sent`` enqueues part N+1 with a countdown of at least the gap. So a
part can never overtake the one before it and none is dropped, whatever the pool (gevent,
prefork, solo): there is never more than one task per group in the broker. If part N fails
for good, the parts after it are marked failed ("Previous part failed") instead of being
sent with a hole in the middle; ``resend_failed`` on any of them resends from the failed part.

``MessageOutbox`` is what ``meta_integration`` uses to read and record messages without
importing this app; ``register()`` installs it (called from ``ConversationsConfig.ready``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from conversations.models import Contact, Direction, Message, MessageStatus
from conversations.services.inbound import apply_pending_status_events
from meta_integration import ports, services_outbound
from meta_integration.models import MetaAppConfig
from meta_integration.outbound import OutboundValidationError, build_message, split_text
from meta_integration.tasks import send_message
from whatsappcrm_backend.celery import enqueue

__all__ = [
    "CUSTOMER_SERVICE_WINDOW",
    "PREVIOUS_PART_FAILED",
    "MessageOutbox",
    "NoBusinessNumberError",
    "enqueue_unsent",
    "register",
    "resend_failed",
    "send_long_text",
    "send_parts",
    "send_to_contact",
]

logger = logging.getLogger(__name__)

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
PREVIOUS_PART_FAILED = "Previous part failed"


class NoBusinessNumberError(LookupError):
    """There is no active business number (MetaAppConfig) to send from."""


# ------------------------------------------------------------------ sending


def send_to_contact(
    contact: Contact, spec: Mapping[str, Any], *, sent_by: str = "bot", reply_to: str | None = None
) -> Message:
    """Write one outbound message and send it when the current transaction commits.

    ``spec`` is an outbound spec (see ``meta_integration.outbound.build_message``); it is
    validated here, so a broken message raises ``OutboundValidationError`` naming the field
    and nothing is written. ``reply_to`` quotes an earlier message (its wamid).
    """
    spec = _with_reply_to(spec, reply_to)
    payload = build_message(contact.wa_id, spec)
    config = _business_number(contact)
    with transaction.atomic():
        message = Message.objects.create(**_row(contact, config, spec, payload, sent_by))
        transaction.on_commit(lambda: _enqueue_send(message.pk))
    return message


def send_parts(
    contact: Contact,
    texts_or_specs: Iterable[str | Mapping[str, Any]],
    *,
    gap_seconds: float | None = None,
    sent_by: str = "bot",
) -> list[Message]:
    """Send several messages in order, ``gap_seconds`` apart (default MULTIPART_GAP_SECONDS).

    A string is a text message; a mapping is a spec. All parts are validated before any row
    is written (an error names the part: ``parts[3].text.body: ...``).
    """
    gap = settings.MULTIPART_GAP_SECONDS if gap_seconds is None else gap_seconds
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or not 0 <= gap <= 3600:
        raise ValueError(f"gap_seconds: must be between 0 and 3600 seconds, got {gap!r}")
    if isinstance(texts_or_specs, (str, Mapping)):
        raise TypeError("texts_or_specs: pass a list of parts, not a single text or spec")
    specs = [{"type": "text", "body": item} if isinstance(item, str) else item for item in texts_or_specs]
    if not specs:
        raise ValueError("texts_or_specs: at least one part is required")
    payloads = []
    for index, spec in enumerate(specs):
        try:
            payloads.append(build_message(contact.wa_id, spec))
        except OutboundValidationError as exc:
            raise OutboundValidationError(f"parts[{index}].{exc.field}", exc.message) from None
    config = _business_number(contact)
    group_id, now, total = uuid.uuid4(), timezone.now(), len(specs)
    with transaction.atomic():
        messages = [
            Message.objects.create(
                **_row(contact, config, spec, payload, sent_by),
                group_id=group_id,
                part_index=index,
                parts_total=total,
                send_after=now + timedelta(seconds=gap * index),
            )
            for index, (spec, payload) in enumerate(zip(specs, payloads, strict=True))
        ]
        first = messages[0].pk
        transaction.on_commit(lambda: _enqueue_send(first))
    return messages


def send_long_text(
    contact: Contact, text: str, *, gap_seconds: float | None = None, sent_by: str = "bot"
) -> list[Message]:
    """Split ``text`` on line boundaries into parts of at most 4096 characters and send them
    in order (a fixture list, say). A text that fits is still sent as a one-part group."""
    if not isinstance(text, str) or not text.strip():
        raise OutboundValidationError("text.body", "must not be empty")
    return send_parts(contact, split_text(text), gap_seconds=gap_seconds, sent_by=sent_by)


def resend_failed(message: Message) -> Message:
    """Put a failed outbound message back to ``pending`` and send it again (admin action).

    The attempt budget starts afresh. For a multi-part message the resend starts at the
    group's first failed part and the parts failed because of it follow in order.
    """
    if message.direction != Direction.OUTBOUND or message.status != MessageStatus.FAILED:
        raise ValueError(
            f"message {message.pk}: only failed outbound messages can be resent "
            f"(direction {message.direction}, status {message.status})"
        )
    with transaction.atomic():
        head = message
        resend = Message.objects.filter(pk=message.pk)
        if message.group_id is not None:
            failed = Message.objects.filter(group_id=message.group_id, status=MessageStatus.FAILED)
            head = failed.order_by("part_index").first() or message
            resend = failed.filter(
                Q(pk=head.pk) | Q(part_index__gt=head.part_index, error_title=PREVIOUS_PART_FAILED)
            )
        ids = list(resend.values_list("pk", flat=True))
        Message.objects.filter(pk__in=ids, status=MessageStatus.FAILED).update(
            status=MessageStatus.PENDING, status_at=timezone.now(), attempts=0,
            error_code=None, error_title="", error_details="",
        )
        for message_id in ids:
            services_outbound.forget_attempt(message_id)
        head_id = head.pk
        transaction.on_commit(lambda: _enqueue_send(head_id))
    message.refresh_from_db()
    return message


def enqueue_unsent(older_than: timedelta, *, limit: int = 1000) -> int:
    """Enqueue outbound messages still ``pending`` after ``older_than`` (the outbound sweeper).

    Covers a broker that was down when a reply was committed, or a task lost with its
    worker. A part is only picked once the part before it was accepted ``older_than`` ago:
    parts waiting for an earlier part, or for their gap, are not touched. A message already
    in a retry chain may get a second task; that is harmless (the first run to claim it
    sends, the other finds it sent), so choose ``older_than`` longer than the usual backoff.
    """
    cutoff = timezone.now() - older_than
    previous_accepted = Message.objects.filter(
        group_id=OuterRef("group_id"),
        part_index=OuterRef("part_index") - 1,
        wamid__isnull=False,
        sent_at__lt=cutoff,
    )
    ids = list(
        Message.objects.filter(direction=Direction.OUTBOUND, status=MessageStatus.PENDING, created_at__lt=cutoff)
        .filter(Q(group_id__isnull=True) | Q(part_index=0) | Exists(previous_accepted))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for message_id in ids:
        _enqueue_send(message_id)
    if ids:
        logger.info("outbound sweeper: re-enqueued %s unsent message(s)", len(ids))
    return len(ids)


# ------------------------------------------------------------------ the Outbox


class MessageOutbox:
    """``meta_integration.ports.Outbox`` over ``Message`` rows. Every write is conditional on
    the row still being ``pending``, so concurrent or repeated runs cannot move it back."""

    def load(self, message_id: int) -> ports.OutboundEnvelope | None:
        message = (
            Message.objects.select_related("contact")
            .filter(pk=message_id, direction=Direction.OUTBOUND)
            .first()
        )
        if message is None:
            return None
        last_inbound = message.contact.last_inbound_at
        window_open = last_inbound is not None and timezone.now() - last_inbound < CUSTOMER_SERVICE_WINDOW
        previous_accepted = True
        if message.group_id is not None and message.part_index:
            # Accepted = Meta gave it a wamid; a later "failed" delivery status does not undo that.
            previous_accepted = Message.objects.filter(
                group_id=message.group_id, part_index=message.part_index - 1, wamid__isnull=False
            ).exists()
        spec = message.content if isinstance(message.content, dict) else {}
        return ports.OutboundEnvelope(
            message_id=message.pk,
            app_config_id=message.app_config_id or 0,  # 0: deleted config, fails as "no business number"
            to=message.contact.wa_id,
            spec=spec,
            status=message.status,
            is_template=spec.get("type") == "template",
            window_open=window_open,
            previous_part_accepted=previous_accepted,
            attempts=message.attempts,
        )

    def claim(self, message_id: int) -> bool:
        return bool(
            _pending(message_id).update(attempts=F("attempts") + 1)
        )

    def mark_sent(self, message_id: int, wamid: str) -> None:
        now = timezone.now()
        with transaction.atomic():
            # status_at stays empty: Meta's own "sent" status webhook fills in its time.
            updated = _pending(message_id).update(
                status=MessageStatus.SENT, wamid=wamid, sent_at=now, status_at=None,
                error_code=None, error_title="", error_details="",
            )
            if not updated:
                logger.warning("message %s: accepted by Meta as %s but no longer pending", message_id, wamid)
                return
            apply_pending_status_events(wamid)  # statuses Meta sent before we stored the wamid
            message = Message.objects.only("group_id", "part_index", "send_after").get(pk=message_id)
            if message.group_id is None:
                return
            following = (
                Message.objects.filter(
                    group_id=message.group_id, part_index=message.part_index + 1, status=MessageStatus.PENDING
                )
                .only("pk", "send_after")
                .first()
            )
            if following is None:
                return
            countdown = _part_countdown(message.send_after, following.send_after, now)
            following_id = following.pk
            transaction.on_commit(lambda: _enqueue_send(following_id, countdown=countdown))

    def mark_failed(self, message_id: int, code: int | None, title: str, details: str) -> None:
        now = timezone.now()
        with transaction.atomic():
            updated = _pending(message_id).update(
                status=MessageStatus.FAILED, status_at=now,
                error_code=code, error_title=(title or "Failed")[:255], error_details=details or "",
            )
            if not updated:
                return
            message = Message.objects.only("group_id", "part_index", "parts_total").get(pk=message_id)
            if message.group_id is None:
                return
            reason = f"{code} {title}" if code is not None else title
            Message.objects.filter(
                group_id=message.group_id, part_index__gt=message.part_index, status=MessageStatus.PENDING
            ).update(
                status=MessageStatus.FAILED, status_at=now, error_code=None, error_title=PREVIOUS_PART_FAILED,
                error_details=(
                    f"Part {message.part_index + 1} of {message.parts_total} failed ({reason}); the parts "
                    "after it are not sent, so the reader never gets a list with a hole in it."
                ),
            )


def register() -> None:
    """Install the Outbox for ``meta_integration`` (from ``ConversationsConfig.ready``)."""
    ports.register_outbox(MessageOutbox())


# ------------------------------------------------------------------ helpers


def _pending(message_id: int):
    return Message.objects.filter(pk=message_id, direction=Direction.OUTBOUND, status=MessageStatus.PENDING)


def _enqueue_send(message_id: int, *, countdown: float | None = None) -> None:
    if countdown:
        enqueue(send_message, message_id, countdown=countdown)
    else:
        enqueue(send_message, message_id)


def _part_countdown(previous_send_after, send_after, now) -> float:
    """Wait the planned gap after the previous part was accepted, or until the planned time
    if that is later; never less than the gap, so late parts do not bunch up."""
    if previous_send_after is None or send_after is None:
        return 0.0
    gap = max(0.0, (send_after - previous_send_after).total_seconds())
    return max(gap, (send_after - now).total_seconds())


def _with_reply_to(spec: Mapping[str, Any], reply_to: str | None) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise OutboundValidationError("spec", f"expected an object, got {type(spec).__name__}")
    spec = dict(spec)
    if reply_to is not None:
        spec["reply_to"] = reply_to
    return spec


def _business_number(contact: Contact) -> MetaAppConfig:
    """The number the contact last wrote to; else the oldest active one."""
    if contact.app_config_id is not None:
        config = MetaAppConfig.objects.filter(pk=contact.app_config_id, is_active=True).first()
        if config is not None:
            return config
    config = MetaAppConfig.objects.filter(is_active=True).order_by("pk").first()
    if config is None:
        raise NoBusinessNumberError(
            f"contact {contact.wa_id}: no active Meta app config to send from; add one in admin"
        )
    return config


def _summary(spec: Mapping[str, Any]) -> str:
    """The human-readable text of a spec, for the conversation history and admin."""
    kind = spec.get("type")
    if kind in ("text", "buttons", "list"):
        return str(spec.get("body") or "")
    if kind == "media":
        return str(spec.get("caption") or spec.get("filename") or "")
    if kind == "location":
        return str(spec.get("name") or spec.get("address") or f"{spec.get('latitude')},{spec.get('longitude')}")
    if kind == "template":
        return f"template {spec.get('name')}"
    return ""


def _row(
    contact: Contact, config: MetaAppConfig, spec: dict[str, Any], payload: Mapping[str, Any], sent_by: str
) -> dict[str, Any]:
    return {
        "contact": contact,
        "app_config": config,
        "direction": Direction.OUTBOUND,
        "message_type": payload["type"],
        "text": _summary(spec),
        "content": spec,
        "reply_to_wamid": spec.get("reply_to") or "",
        "status": MessageStatus.PENDING,
        "status_at": timezone.now(),
        "sent_by": sent_by,
    }
