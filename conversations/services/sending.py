"""The one way anything in the project sends a WhatsApp message: write the rows, send on commit.

Flows, football notifications and operators call ``send_to_contact`` (or ``send_parts`` /
``send_long_text``). Each validates the message, writes the outbound ``Message`` row
(``pending``) and enqueues ``conversations.send_message`` only when the transaction
commits, so nothing is sent without a row, nothing is sent for a rolled-back reply, and a
retry never creates a second reply. The bot's own replies are written by ``write_replies``
without a task: ``flows.process_message`` sends them itself right after its commit.

Ordered multi-part messages: all parts are written at once (one ``group_id``, ``part_index``
0..n-1, ``send_after`` spaced by the gap). Sending is ``delivery``'s job: one chain per
contact and number, so a part can never overtake the one before it, and replies to
consecutive messages arrive in order too. If part N fails for good, the parts after it are
marked failed ("Previous part failed"); ``resend_failed`` on any of them resends from the
failed part.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conversations.message_specs import (
    SPEC_TYPES,
    TEXT_BODY_MAX,
    OutboundValidationError,
    SpecType,
    split_text,
    validate_spec,
    validate_specs,
)
from conversations.models import Contact, Direction, Message, MessageStatus
from conversations.services import delivery
from conversations.services.delivery import PREVIOUS_PART_FAILED, SEND_TASK
from conversations.services.inbound import insert_returning
from meta_integration.models import MessageTemplate, MetaAppConfig
from whatsappcrm_backend.celery import enqueue

# The public API of sending: the send functions below, and (from ``message_specs``) the spec
# vocabulary and checks that flows and football use to compose what they send.
__all__ = [
    "PREVIOUS_PART_FAILED",
    "SPEC_TYPES",
    "TEXT_BODY_MAX",
    "NoBusinessNumberError",
    "OutboundValidationError",
    "SpecType",
    "enqueue_unsent",
    "resend_failed",
    "send_long_text",
    "send_parts",
    "send_to_contact",
    "split_text",
    "validate_spec",
    "validate_specs",
    "write_replies",
]

logger = logging.getLogger(__name__)


class NoBusinessNumberError(LookupError):
    """There is no active business number (MetaAppConfig) to send from."""


# ------------------------------------------------------------------ sending


def send_to_contact(
    contact: Contact,
    spec: Mapping[str, Any],
    *,
    sent_by: str = "bot",
    reply_to: str | None = None,
    app_config_id: int | None = None,
) -> Message:
    """Write one outbound message and send it when the current transaction commits.

    ``spec`` is an outbound spec (see ``meta_integration.message_bodies.build_message``; a template
    may give ``variables`` by slot instead of components, checked against the synced
    template: ``MessageTemplate.resolve_spec``); it is validated here, so a broken message
    raises ``OutboundValidationError`` naming the field
    and nothing is written. ``reply_to`` quotes an earlier message (its wamid). It goes out
    from ``app_config_id`` if given and active, else from the number the contact last wrote to.
    """
    spec = _with_reply_to(spec, reply_to)
    config = _business_number(contact, app_config_id) if "variables" in spec else None
    spec = dict(MessageTemplate.resolve_spec(spec, config.pk if config else None))
    payload = validate_spec(contact.wa_id, spec)
    config = config or _business_number(contact, app_config_id)
    with transaction.atomic():
        message = Message.objects.create(**_row(contact, config.pk, spec, payload, sent_by))
        transaction.on_commit(lambda: _enqueue_send(message.pk))
    return message


def send_parts(
    contact: Contact,
    texts_or_specs: Iterable[str | Mapping[str, Any]],
    *,
    gap_seconds: float | None = None,
    sent_by: str = "bot",
    app_config_id: int | None = None,
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
    payloads = validate_specs(contact.wa_id, specs)
    config = _business_number(contact, app_config_id)
    with transaction.atomic():
        messages = _write(contact, config.pk, specs, payloads, gap=gap, sent_by=sent_by)
        first = messages[0].pk
        transaction.on_commit(lambda: _enqueue_send(first))
    return messages


def write_replies(
    contact: Contact,
    app_config_id: int | None,
    specs: Sequence[dict[str, Any]],
    payloads: Sequence[Mapping[str, Any]],
    *,
    gap_seconds: float = 0.0,
    sent_by: str = "bot",
) -> list[int]:
    """Write already validated replies (``validate_specs``) from ``app_config_id`` without
    enqueueing anything: the caller sends them with ``delivery.send_chain`` after its commit
    (the sweeper sends them if it dies first). Several become one ordered group. Returns ids."""
    return [row.pk for row in write_reply_rows(contact, app_config_id, specs, payloads,
                                               gap_seconds=gap_seconds, sent_by=sent_by)]


def write_reply_rows(
    contact: Contact,
    app_config_id: int | None,
    specs: Sequence[dict[str, Any]],
    payloads: Sequence[Mapping[str, Any]],
    *,
    gap_seconds: float = 0.0,
    sent_by: str = "bot",
    claim: Mapping[str, Any] | None = None,
) -> list[Message]:
    """``write_replies``, returning the rows. ``claim`` (``delivery.claim_columns``) is
    written on the first row: the caller, which is about to send it in this same run, holds
    its lease from the insert on, instead of claiming it with one more statement."""
    if not specs:
        return []
    return _write(contact, app_config_id, specs, payloads, gap=gap_seconds, sent_by=sent_by, claim=claim)


def _write(
    contact: Contact,
    app_config_id: int | None,
    specs: Sequence[dict[str, Any]],
    payloads: Sequence[Mapping[str, Any]],
    *,
    gap: float,
    sent_by: str,
    claim: Mapping[str, Any] | None = None,
) -> list[Message]:
    """One INSERT for all the parts (a single message is a row without a group)."""
    claim = claim or {}  # the first row's lease, when the caller sends it next (write_reply_rows)
    if len(specs) == 1:
        # One INSERT ... RETURNING, as Message.objects.create would run it, without its compile
        # (every bot reply comes through here).
        message = Message(**_row(contact, app_config_id, specs[0], payloads[0], sent_by), **claim)
        [message.pk] = insert_returning(Message, [message], on_conflict="", key="id").values()
        message._state.adding, message._state.db = False, "default"
        return [message]
    group_id, now, total = uuid.uuid4(), timezone.now(), len(specs)
    rows = [
        Message(
            **_row(contact, app_config_id, spec, payload, sent_by),
            group_id=group_id,
            part_index=index,
            parts_total=total,
            send_after=now + timedelta(seconds=gap * index),
            **(claim if index == 0 else {}),
        )
        for index, (spec, payload) in enumerate(zip(specs, payloads, strict=True))
    ]
    return Message.objects.bulk_create(rows)  # PostgreSQL and SQLite 3.35+ return the ids


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
            status=MessageStatus.PENDING, status_at=timezone.now(), attempts=0, claimed_by="",
            claimed_until=None, next_attempt_at=None, error_code=None, error_title="", error_details="",
        )
        head_id = head.pk
        transaction.on_commit(lambda: _enqueue_send(head_id))
    message.refresh_from_db()
    return message


def enqueue_unsent(older_than: timedelta | None = None, *, limit: int = 1000) -> int:
    """Enqueue outbound messages still ``pending`` after ``older_than`` (the outbound sweeper).

    Covers a broker that was down when a reply was committed, a task lost with its worker,
    and a send whose run died (its lease expired). Only each chain's head is picked, and only
    once it is due (its gap, its retry time): the rest follow it in order. An extra task is
    harmless (the claim lets one run send), so the sweeper runs every few seconds.
    """
    if older_than is None:
        older_than = timedelta(seconds=settings.OUTBOUND_SWEEP_AFTER_SECONDS)
    now = timezone.now()
    cutoff = now - older_than
    earlier_pending = Message.objects.pending_chain(OuterRef("contact_id"), OuterRef("app_config_id")).filter(
        pk__lt=OuterRef("pk")
    )
    ids = list(
        Message.objects.pending_outbound().filter(created_at__lt=cutoff)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=cutoff))
        .filter(Q(send_after__isnull=True) | Q(send_after__lt=cutoff))
        .exclude(Exists(earlier_pending))
        .order_by("created_at", "pk")
        .values_list("pk", "sent_by")[:limit]
    )
    for message_id, sent_by in ids:
        delivery.enqueue_send(message_id, low=delivery.is_bulk(sent_by))  # a campaign's row stays LOW
    if ids:
        logger.info("outbound sweeper: re-enqueued %s unsent message(s)", len(ids))
    return len(ids)


# ------------------------------------------------------------------ helpers


def _enqueue_send(message_id: int) -> None:
    enqueue(SEND_TASK, message_id)


def _with_reply_to(spec: Mapping[str, Any], reply_to: str | None) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise OutboundValidationError("spec", f"expected an object, got {type(spec).__name__}")
    spec = dict(spec)
    if reply_to is not None:
        spec["reply_to"] = reply_to
    return spec


def _business_number(contact: Contact, app_config_id: int | None = None) -> MetaAppConfig:
    """``app_config_id`` if active; else the number the contact last wrote to; else the oldest active one."""
    for candidate in (app_config_id, contact.app_config_id):
        config = MetaAppConfig.objects.filter(pk=candidate, is_active=True).first() if candidate else None
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
    contact: Contact, app_config_id: int | None, spec: dict[str, Any], payload: Mapping[str, Any], sent_by: str
) -> dict[str, Any]:
    return {
        "contact": contact,
        "app_config_id": app_config_id,
        "direction": Direction.OUTBOUND,
        "message_type": payload["type"],
        "text": _summary(spec),
        "content": spec,
        "reply_to_wamid": spec.get("reply_to") or "",
        "status": MessageStatus.PENDING,
        "status_at": timezone.now(),
        "sent_by": sent_by,
    }
