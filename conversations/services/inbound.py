"""Storing what WhatsApp users send, and what Meta says about what we sent.

``InboundStore`` is the ``meta_integration`` InboundSink: the webhook view hands it each
verified, parsed batch inside the request's transaction. It

* upserts the sender's Contact (a real profile name is never replaced by an empty or
  placeholder one; ``last_inbound_at`` only moves forward),
* inserts one inbound Message per new ``wamid`` (UNIQUE in the database: a redelivery
  creates nothing and enqueues nothing, even when two deliveries race),
* records every status as a StatusEvent and moves its message's status forward only,
* and, on commit, enqueues ``flows.process_message`` and a read receipt for each new
  message, by task name (conversations does not import flows).

The webhook's transaction is the commitment: if the broker is down the enqueue is logged
and skipped, and ``enqueue_unprocessed`` (run by Beat) sends the message later.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from conversations.models import STATUS_ORDER, Contact, Direction, Message, MessageStatus, StatusEvent
from meta_integration.models import MetaAppConfig
from meta_integration.payloads import (
    ApiError,
    DeliveryStatus,
    InboundMessage,
    MessageType,
    StatusUpdate,
    WebhookBatch,
)

logger = logging.getLogger(__name__)

PROCESS_MESSAGE_TASK = "flows.process_message"
READ_RECEIPT_TASK = "meta_integration.send_read_receipt"

# One quick retry covers a pooled connection the broker dropped; with the broker down a
# publish then fails in milliseconds instead of kombu's default ~0.6 s (or 6 s with
# retry=False, which still waits out broker_connection_timeout while connecting).
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}

# Message types no read receipt is sent for: they are not messages the user sees ticks on.
NO_READ_RECEIPT = frozenset({MessageType.SYSTEM, MessageType.REACTION})

# Names WhatsApp or other tools put where a profile name is unknown; never stored over a real one.
PLACEHOLDER_PROFILE_NAMES = frozenset({"", "~", "-", ".", "null", "none", "unknown", "whatsapp user", "user"})

# Column sizes (conversations.models): values beyond them cannot be stored as such.
WA_ID_MAX = Contact._meta.get_field("wa_id").max_length
WAMID_MAX = Message._meta.get_field("wamid").max_length
PROFILE_NAME_MAX = Contact._meta.get_field("profile_name").max_length
ERROR_TITLE_MAX = Message._meta.get_field("error_title").max_length
RECIPIENT_MAX = StatusEvent._meta.get_field("recipient_id").max_length
INT32_MAX = 2**31 - 1

# Rank of each forward-moving status; failed is terminal and handled apart.
_RANK = {status.value: rank for rank, status in enumerate(STATUS_ORDER)}


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------


def is_real_profile_name(name: str | None, wa_id: str) -> bool:
    """False for empty, whitespace, placeholder names and the number itself."""
    if name is None:
        return False
    cleaned = name.strip()
    if cleaned.casefold() in PLACEHOLDER_PROFILE_NAMES:
        return False
    digits = cleaned.lstrip("+").replace(" ", "").replace("-", "")
    return digits != wa_id


def as_plain(record: Any) -> Any:
    """A parsed record as JSON-ready data: dataclasses to dicts, datetimes to ISO strings.

    Like ``dataclasses.asdict`` but also for slotted records inside mappings, and with
    enums as their plain string values.
    """
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {field.name: as_plain(getattr(record, field.name)) for field in dataclasses.fields(record)}
    if isinstance(record, datetime):
        return record.isoformat()
    if isinstance(record, Mapping):
        return {str(key): as_plain(value) for key, value in record.items()}
    if isinstance(record, (list, tuple)):
        return [as_plain(item) for item in record]
    if isinstance(record, str):
        return str(record)  # a StrEnum member becomes its value
    return record


def message_content(message: InboundMessage) -> dict[str, Any]:
    """What Message.content stores for an inbound message: the whole parsed record.

    ``reply_id`` (the button/row id a flow branches on) is added because it is a property,
    not a field. Meta's own dict (``raw``) is kept only when the parser could not type the
    message, so unknown types lose nothing and known ones are not stored twice (the
    webhook event log has the raw body for audit).
    """
    content = as_plain(message)
    content["reply_id"] = message.reply_id
    if message.type is not MessageType.UNKNOWN and not message.parse_error:
        content.pop("raw", None)
    return content


def error_columns(errors: Sequence[ApiError] | Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """error_code / error_title / error_details from the first of Meta's errors."""
    if not errors:
        return {}
    first = as_plain(errors[0])
    code = first.get("code")
    if not isinstance(code, int) or not 0 <= code <= INT32_MAX:
        code = None  # the column is a 32-bit integer; the raw value stays in content / the event
    title = first.get("title") or first.get("message") or ""
    details = first.get("details") or first.get("message") or ""
    return {"error_code": code, "error_title": str(title)[:ERROR_TITLE_MAX], "error_details": str(details)}


def _storable_message(message: InboundMessage) -> str | None:
    """Why a message cannot be stored as a row, or None if it can."""
    if len(message.wamid) > WAMID_MAX:
        return f"wamid longer than {WAMID_MAX} characters"
    if len(message.from_wa_id) > WA_ID_MAX:
        return f"sender wa_id longer than {WA_ID_MAX} characters"
    return None


# --------------------------------------------------------------------------------------
# The sink
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredMessage:
    """A newly stored inbound message: what has to be enqueued for it after commit."""

    id: int
    wamid: str
    contact_id: int
    app_config_id: int | None
    message_type: str


class InboundStore:
    """The InboundSink registered by ``conversations.apps``."""

    def accept(self, batch: WebhookBatch, app_config: MetaAppConfig) -> None:
        new_messages = store_messages(batch.messages, app_config)
        if new_messages:
            transaction.on_commit(lambda: enqueue_new_messages(new_messages))
        store_statuses(batch.statuses)


def store_messages(messages: Iterable[InboundMessage], app_config: MetaAppConfig | None) -> list[StoredMessage]:
    """Insert the messages not stored yet; returns the new ones in arrival order.

    Must run inside a transaction. Existing wamids are skipped up front; a wamid that
    another transaction inserts at the same moment is caught by the UNIQUE constraint
    (per-row savepoints), so exactly one of two racing deliveries reports it as new.
    """
    candidates: dict[str, InboundMessage] = {}
    for message in messages:
        reason = _storable_message(message)
        if reason:
            logger.warning("inbound message not stored: %s (wamid=%.80s)", reason, message.wamid)
        elif message.wamid not in candidates:
            candidates[message.wamid] = message
    if not candidates:
        return []
    ordered = sorted(candidates.values(), key=lambda m: m.timestamp)  # stable: same second keeps POST order
    contacts = _upsert_contacts(ordered, app_config)

    existing = set(Message.objects.filter(wamid__in=list(candidates)).values_list("wamid", flat=True))
    for wamid in existing:
        logger.info("inbound message redelivered wamid=%s: already stored, nothing to do", wamid)
    rows = [
        _message_row(message, contacts[message.from_wa_id], app_config)
        for message in ordered
        if message.wamid not in existing
    ]
    created = _insert_new(rows)
    stored = [
        StoredMessage(row.pk, row.wamid, row.contact_id, row.app_config_id, row.message_type) for row in created
    ]
    wa_ids = {pk: wa_id for wa_id, pk in contacts.items()}
    for item in stored:
        logger.info(
            "inbound message stored id=%s wamid=%s contact=%s (%s) type=%s",
            item.id, item.wamid, item.contact_id, wa_ids.get(item.contact_id), item.message_type,
        )
    return stored


def _message_row(message: InboundMessage, contact_id: int, app_config: MetaAppConfig | None) -> Message:
    reply_to = message.context.message_id if message.context and message.context.message_id else ""
    return Message(
        contact_id=contact_id,
        app_config=app_config,
        direction=Direction.INBOUND,
        message_type=message.type.value,
        text=message.text,
        content=message_content(message),
        wamid=message.wamid,
        reply_to_wamid=reply_to if len(reply_to) <= WAMID_MAX else "",
        status=MessageStatus.RECEIVED,
        status_at=message.timestamp,
        timestamp=message.timestamp,
        **error_columns(message.errors),
    )


def _insert_new(rows: list[Message]) -> list[Message]:
    """Insert rows; on a UNIQUE conflict (a concurrent redelivery) keep only the rows that won."""
    if not rows:
        return []
    try:
        with transaction.atomic():
            created = Message.objects.bulk_create(rows)
    except IntegrityError:
        created = []
        for row in rows:
            row.pk = None
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
            except IntegrityError:
                logger.info("inbound message wamid=%s stored by a concurrent delivery, nothing to do", row.wamid)
                continue
            created.append(row)
    missing = [row.wamid for row in created if row.pk is None]
    if missing:  # a backend that does not return ids from bulk inserts: these rows are ours
        ids = dict(Message.objects.filter(wamid__in=missing).values_list("wamid", "pk"))
        for row in created:
            row.pk = row.pk or ids[row.wamid]
    return created


def _upsert_contacts(messages: Sequence[InboundMessage], app_config: MetaAppConfig | None) -> dict[str, int]:
    """wa_id -> contact id, creating contacts as needed (in wa_id order: no lock cycles)."""
    latest: dict[str, datetime] = {}
    names: dict[str, str] = {}
    for message in messages:
        wa_id = message.from_wa_id
        latest[wa_id] = max(latest.get(wa_id, message.timestamp), message.timestamp)
        if is_real_profile_name(message.profile_name, wa_id):
            names[wa_id] = message.profile_name.strip()[:PROFILE_NAME_MAX]
    ids: dict[str, int] = {}
    for wa_id in sorted(latest):
        seen_at = latest[wa_id]
        contact, created = Contact.objects.get_or_create(
            wa_id=wa_id,
            defaults={"profile_name": names.get(wa_id, ""), "last_inbound_at": seen_at, "app_config": app_config},
        )
        if not created:
            changes: dict[str, Any] = {
                # Redeliveries and out-of-order batches never move the 24-hour window back.
                "last_inbound_at": Greatest(
                    Coalesce(F("last_inbound_at"), Value(seen_at, output_field=DateTimeField())),
                    Value(seen_at, output_field=DateTimeField()),
                ),
                "app_config": app_config,
            }
            if wa_id in names:
                changes["profile_name"] = names[wa_id]
            Contact.objects.filter(pk=contact.pk).update(**changes)
        ids[wa_id] = contact.pk
    return ids


# --------------------------------------------------------------------------------------
# Enqueueing (after commit) and the sweeper
# --------------------------------------------------------------------------------------


def _send(task_name: str, args: list[Any]) -> None:
    """Publish by name; the project router adds the task's queue and named priority."""
    from whatsappcrm_backend.celery import app as celery_app

    celery_app.send_task(task_name, args=args, retry=True, retry_policy=PUBLISH_RETRY_POLICY)


def enqueue_new_messages(messages: Sequence[StoredMessage]) -> int:
    """Enqueue processing and a read receipt for each new message; returns how many were processed.

    Runs after commit, so the rows exist. Any failure to publish is logged, never raised:
    the webhook has already committed and must answer 200; the sweeper sends what is
    missing. After the first failure the rest are left to the sweeper too (the broker is
    down; trying each would only slow the answer to Meta).
    """
    sent = 0
    for message in messages:
        try:
            _send(PROCESS_MESSAGE_TASK, [message.id])
        except Exception:  # broker errors come in many classes; none may fail the webhook
            logger.exception(
                "could not enqueue %s for message id=%s wamid=%s (and %d more); the sweeper will retry",
                PROCESS_MESSAGE_TASK, message.id, message.wamid, len(messages) - sent - 1,
            )
            return sent
        sent += 1
    return sent


def enqueue_unprocessed(
    older_than: timedelta = timedelta(seconds=30),
    *,
    max_age: timedelta = timedelta(days=1),
    limit: int = 1000,
    now: datetime | None = None,
) -> int:
    """Re-enqueue inbound messages stored but never processed; returns how many were sent.

    ``older_than`` leaves time for the on-commit enqueue and the worker to do their job;
    ``max_age`` stops a message that can never be processed from being resent forever (a
    reply a day late is outside WhatsApp's customer-service window anyway). Processing is
    idempotent on the flows side, so a message that was merely slow costs one no-op run.
    """
    now = now or timezone.now()
    pending = list(
        Message.objects.filter(
            direction=Direction.INBOUND,
            processed_at__isnull=True,
            created_at__lt=now - older_than,
            created_at__gte=now - max_age,
        )
        .order_by("created_at", "id")
        .values_list("id", "wamid")[:limit]
    )
    sent = 0
    for message_id, wamid in pending:
        try:
            _send(PROCESS_MESSAGE_TASK, [message_id])
        except Exception:  # the broker is still down: try again next sweep
            logger.exception("sweeper could not enqueue message id=%s wamid=%s; next sweep retries", message_id, wamid)
            break
        logger.info("sweeper re-enqueued unprocessed message id=%s wamid=%s", message_id, wamid)
        sent += 1
    return sent


# --------------------------------------------------------------------------------------
# Statuses
# --------------------------------------------------------------------------------------


def store_statuses(statuses: Iterable[StatusUpdate]) -> int:
    """Record each (wamid, status) once and apply it to its message; returns events stored.

    Statuses for a wamid with no message yet (the send task has not stored it) stay
    unapplied; ``apply_pending_status_events`` applies them when the wamid is stored.
    """
    rows: dict[tuple[str, str], StatusEvent] = {}
    for status in statuses:
        if status.status is DeliveryStatus.UNKNOWN:
            logger.info("status %r for wamid=%.80s ignored: not a delivery status", status.raw_status, status.wamid)
            continue
        if len(status.wamid) > WAMID_MAX or len(status.recipient_id) > RECIPIENT_MAX:
            logger.warning("status for wamid=%.80s not stored: identifier too long", status.wamid)
            continue
        rows.setdefault(
            (status.wamid, status.status.value),
            StatusEvent(
                wamid=status.wamid,
                status=status.status.value,
                timestamp=status.timestamp,
                recipient_id=status.recipient_id,
                errors=as_plain(status.errors),
                conversation=as_plain(status.conversation) or {},
                pricing=as_plain(status.pricing) or {},
            ),
        )
    if not rows:
        return 0
    # ignore_conflicts: a redelivered (wamid, status) is already recorded; applying is idempotent.
    StatusEvent.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
    for wamid in sorted({wamid for wamid, _ in rows}):
        apply_pending_status_events(wamid)
    return len(rows)


def apply_pending_status_events(wamid: str) -> int:
    """Apply the not-yet-applied status events of ``wamid`` to its outbound message.

    Called by the webhook after recording statuses, and by the send path right after it
    stores a wamid (call it in the same transaction). Each event is a conditional UPDATE
    that only moves forward (pending < sent < delivered < read; failed is terminal), so
    any arrival order ends in the same state. Returns how many events were applied; 0
    when the message is not stored yet (the events wait; that is not an error).
    """
    events = list(StatusEvent.objects.filter(wamid=wamid, applied=False))
    if not events:
        return 0
    message = Message.objects.filter(wamid=wamid, direction=Direction.OUTBOUND).values("pk", "contact_id").first()
    if message is None:
        logger.info(
            "status %s for wamid=%s kept for later: no outbound message with that wamid yet",
            ",".join(e.status for e in events), wamid,
        )
        return 0
    for event in sorted(events, key=lambda e: (e.status == MessageStatus.FAILED, _RANK.get(e.status, 0))):
        moved = _apply_status(event)
        logger.info(
            "status %s for message id=%s wamid=%s contact=%s %s",
            event.status, message["pk"], wamid, message["contact_id"], "applied" if moved else "already past it",
        )
    StatusEvent.objects.filter(pk__in=[e.pk for e in events]).update(applied=True)
    return len(events)


def _apply_status(event: StatusEvent) -> bool:
    """One conditional UPDATE; True if the message's status moved."""
    outbound = Message.objects.filter(wamid=event.wamid, direction=Direction.OUTBOUND)
    if event.status == MessageStatus.FAILED:
        changes = error_columns(event.errors)
        return bool(
            outbound.exclude(status=MessageStatus.FAILED).update(
                status=MessageStatus.FAILED, status_at=event.timestamp, **changes
            )
        )
    earlier = STATUS_ORDER[: _RANK[event.status]]
    # Also fill in Meta's time when our own write already set the status (the send task marks "sent").
    moves = Q(status__in=earlier) | Q(status=event.status, status_at__isnull=True)
    return bool(outbound.filter(moves).update(status=event.status, status_at=event.timestamp))


def reconcile_status_events(limit: int = 1000) -> int:
    """Apply waiting status events whose message has since been stored; returns events applied.

    Closes the race where a status webhook and the send task commit at the same moment
    and neither sees the other's row. Cheap to run from the sweeper.
    """
    wamids = (
        StatusEvent.objects.filter(
            applied=False,
            wamid__in=Message.objects.filter(direction=Direction.OUTBOUND, wamid__isnull=False).values("wamid"),
        )
        .order_by()
        .values_list("wamid", flat=True)
        .distinct()[:limit]
    )
    applied = 0
    for wamid in list(wamids):
        with transaction.atomic():
            applied += apply_pending_status_events(wamid)
    return applied
