"""Storing what WhatsApp users send, and what Meta says about what we sent.

``InboundStore`` is the ``meta_integration`` InboundSink: the webhook view hands it each
verified, parsed batch. It

* upserts the senders' Contacts in ONE statement (``INSERT ... ON CONFLICT ... RETURNING``:
  a real profile name is never replaced by an empty or placeholder one, ``last_inbound_at``
  only moves forward, ``app_config`` is the number last written to),
* inserts the new inbound Messages in ONE statement (``ON CONFLICT (wamid) DO NOTHING
  RETURNING``: the UNIQUE wamid decides, so a redelivery - even two racing deliveries -
  creates and enqueues nothing),
* applies edits and deletes to the message they change, and stores them (and messages that
  carry only Meta's error) as already processed: the bot never answers them,
* records every status as a StatusEvent and moves its message's status forward only, in one
  UPDATE per message (matching a lost wamid through ``biz_opaque_callback_data``),
* and, on commit, enqueues ``flows.process_message`` for each new message, by task name
  (conversations does not import flows). That task also sends the read receipt.

The webhook's transaction is the commitment: if the broker is down the enqueue is logged
and skipped, and ``enqueue_unprocessed`` (run by Beat) sends the message later.

Raw SQL is used for the two upserts because the ORM cannot say "update only if newer" in
an ON CONFLICT clause; it is standard SQL that PostgreSQL and SQLite (3.35+) both run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from conversations.models import (
    BOT_IGNORED_TYPES,
    MEDIA_MESSAGE_TYPES,
    STATUS_ORDER,
    Contact,
    Direction,
    Message,
    MessageStatus,
    StatusEvent,
)
from conversations.services import consent
from conversations.services.media import enqueue_downloads
from meta_integration.models import MetaAppConfig
from meta_integration.payloads import (
    ApiError,
    DeliveryStatus,
    InboundMessage,
    MessageType,
    StatusUpdate,
    WebhookBatch,
)
from whatsappcrm_backend.celery import enqueue

logger = logging.getLogger(__name__)

PROCESS_MESSAGE_TASK = "flows.process_message"

# One quick retry covers a pooled connection the broker dropped; with the broker down a
# publish then fails in milliseconds instead of kombu's default ~0.6 s (or 6 s with
# retry=False, which still waits out broker_connection_timeout while connecting).
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}

# Names WhatsApp or other tools put where a profile name is unknown; never stored over a real one.
PLACEHOLDER_PROFILE_NAMES = frozenset({"", "~", "-", ".", "null", "none", "unknown", "whatsapp user", "user"})

# The failure the send path records when it cannot tell whether Meta accepted a message.
# A status webhook for such a row proves Meta did, so reconciliation clears exactly this one.
SEND_INTERRUPTED = "Send interrupted"

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
    message (or Meta sent only an error), so such messages lose nothing and known ones are
    not stored twice.
    """
    content = as_plain(message)
    content["reply_id"] = message.reply_id
    if message.type not in (MessageType.UNKNOWN, MessageType.ERRORS) and not message.parse_error:
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

    def one_statement(self, batch: WebhookBatch) -> bool:
        """The usual text POST on PostgreSQL: one new message (not an edit or a delete, which
        also touch the original), nothing else, is ``store_messages``' single statement."""
        return (
            connection.vendor == "postgresql" and len(batch.messages) == 1 and not batch.statuses
            and not batch.preferences and batch.messages[0].type.value not in _CHANGE_TYPES
        )

    def accept(self, batch: WebhookBatch, app_config: MetaAppConfig) -> None:
        stored = store_messages(batch.messages, app_config)
        new_messages = [m for m in stored if m.message_type not in BOT_IGNORED_TYPES]
        if new_messages:
            transaction.on_commit(lambda: enqueue_new_messages(new_messages))
        new_media = [m for m in stored if m.message_type in MEDIA_MESSAGE_TYPES]
        if new_media:  # no statement here: the download task writes its own row
            transaction.on_commit(lambda: enqueue_downloads(new_media))
        store_statuses(batch.statuses)
        if batch.preferences:  # Meta's marketing stop / resume
            consent.apply_preferences(batch.preferences, app_config.pk)


def store_messages(messages: Iterable[InboundMessage], app_config: MetaAppConfig | None) -> list[StoredMessage]:
    """Insert the messages not stored yet; returns the new ones in arrival order.

    Must run inside a transaction, unless ``InboundStore.one_statement`` says it is one
    statement. Two statements whatever the batch: the contacts' upsert
    and the messages' insert. A wamid already stored - or inserted at the same moment by
    another transaction, which the insert waits for - is skipped by the UNIQUE constraint,
    so exactly one of two racing deliveries reports it as new.
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
    now = timezone.now()
    if len(ordered) == 1 and connection.vendor == "postgresql":
        # The usual POST, one message: contact and message in ONE statement.
        contacts, rows, ids = _store_one_message(ordered[0], app_config, now)
    else:
        contacts = _upsert_contacts(ordered, app_config)
        rows = [_message_row(message, contacts[message.from_wa_id], app_config, now) for message in ordered]
        ids = insert_returning(Message, rows, on_conflict=_MESSAGE_INSERT, key="wamid")
    stored = []
    wa_ids = {pk: wa_id for wa_id, pk in contacts.items()}
    for row in rows:
        row.pk = ids.get(row.wamid)
        if row.pk is None:
            logger.info("inbound message wamid=%s already stored (redelivered, or a concurrent delivery won)",
                        row.wamid)
            continue
        stored.append(StoredMessage(row.pk, row.wamid, row.contact_id, row.app_config_id, row.message_type))
        logger.info(
            "inbound message stored id=%s wamid=%s contact=%s (%s) type=%s",
            row.pk, row.wamid, row.contact_id, wa_ids.get(row.contact_id), row.message_type,
        )
    changes = [row for row in rows if row.pk is not None and row.message_type in _CHANGE_TYPES]
    if changes:
        _record_changes_on_originals(changes)
    return stored


def _message_row(
    message: InboundMessage, contact_id: int, app_config: MetaAppConfig | None, now: datetime
) -> Message:
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
        # Edits, deletes and bare errors are done with once stored: nothing to answer.
        processed_at=now if message.type.value in BOT_IGNORED_TYPES else None,
        **error_columns(message.errors),
    )


def insert_returning(model: type[Model], objs: Sequence[Model], *, on_conflict: str, key: str) -> dict[Any, int]:
    """One multi-row ``INSERT ... <on_conflict> RETURNING pk, key``; returns key -> pk of
    the rows inserted or updated (rows skipped by DO NOTHING are absent).

    ``on_conflict`` may name columns as ``{field_name}`` (quoted for the backend). Values
    are prepared exactly as ``Model.save`` prepares them (defaults, auto_now_add, JSON).
    """
    quote = connection.ops.quote_name
    sql, params = _insert_sql(model, objs, on_conflict)
    sql += f" RETURNING {quote(model._meta.pk.column)}, {quote(model._meta.get_field(key).column)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {value: pk for pk, value in cursor.fetchall()}


def _insert_sql(
    model: type[Model], objs: Sequence[Model], on_conflict: str, expressions: Mapping[str, str] | None = None
) -> tuple[str, list[Any]]:
    """``insert_returning``'s statement without its RETURNING; ``expressions`` gives SQL for
    some fields in place of a parameter (the same for every row)."""
    expressions = expressions or {}
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    columns = {field.name: quote(field.column) for field in meta.concrete_fields}
    params: list[Any] = []
    for obj in objs:
        params.extend(
            field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields
            if field.name not in expressions
        )
    row = "(" + ", ".join(expressions.get(field.name, "%s") for field in fields) + ")"
    # Only identifiers from the model's own metadata are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608
        f"VALUES {', '.join([row] * len(objs))} {on_conflict.format(table=quote(meta.db_table), **columns)}"
    )
    return sql, params


# Contacts: a new one is inserted; a known one keeps the later last_inbound_at (redeliveries
# and out-of-order batches never move the 24-hour window back), takes the business number it
# was just written to, and keeps its profile name unless a real one came with the message.
_CONTACT_UPSERT = (
    "ON CONFLICT ({wa_id}) DO UPDATE SET "
    "{last_inbound_at} = CASE WHEN {table}.{last_inbound_at} IS NULL "
    "OR {table}.{last_inbound_at} < EXCLUDED.{last_inbound_at} "
    "THEN EXCLUDED.{last_inbound_at} ELSE {table}.{last_inbound_at} END, "
    "{app_config} = EXCLUDED.{app_config}, "
    "{profile_name} = CASE WHEN EXCLUDED.{profile_name} = '' THEN {table}.{profile_name} "
    "ELSE EXCLUDED.{profile_name} END"
)


_MESSAGE_INSERT = "ON CONFLICT ({wamid}) DO NOTHING"


def _store_one_message(
    message: InboundMessage, app_config: MetaAppConfig | None, now: datetime
) -> tuple[dict[str, int], list[Message], dict[str, int]]:
    """PostgreSQL: the contact's upsert and the message's insert in one statement (the upsert
    as a data-modifying CTE the insert takes the contact id from). Returns what the two
    statements would: wa_id -> contact id, the row, wamid -> id if it was new. A
    redelivered message inserts nothing (and so returns no contact id: none is needed)."""
    [contact] = _contact_rows([message], app_config)
    row = _message_row(message, 0, app_config, now)
    contact_sql, contact_params = _insert_sql(Contact, [contact], _CONTACT_UPSERT)
    message_sql, message_params = _insert_sql(Message, [row], _MESSAGE_INSERT, {"contact": "(SELECT id FROM c)"})
    quote = connection.ops.quote_name
    sql = (
        f"WITH c AS ({contact_sql} RETURNING {quote(Contact._meta.pk.column)} AS id) {message_sql} "
        f"RETURNING {quote(Message._meta.pk.column)}, {quote(Message._meta.get_field('contact').column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*contact_params, *message_params])
        found = cursor.fetchone()
    if found is None:
        return {}, [row], {}
    row.contact_id = found[1]
    return {message.from_wa_id: found[1]}, [row], {row.wamid: found[0]}


def _upsert_contacts(messages: Sequence[InboundMessage], app_config: MetaAppConfig | None) -> dict[str, int]:
    """wa_id -> contact id, in one statement (rows in wa_id order: no lock cycles)."""
    return insert_returning(Contact, _contact_rows(messages, app_config), on_conflict=_CONTACT_UPSERT, key="wa_id")


def _contact_rows(messages: Sequence[InboundMessage], app_config: MetaAppConfig | None) -> list[Contact]:
    """One Contact per sender (wa_id order), with the latest time and a real profile name."""
    latest: dict[str, datetime] = {}
    names: dict[str, str] = {}
    for message in messages:
        wa_id = message.from_wa_id
        latest[wa_id] = max(latest.get(wa_id, message.timestamp), message.timestamp)
        if is_real_profile_name(message.profile_name, wa_id):
            names[wa_id] = message.profile_name.strip()[:PROFILE_NAME_MAX]
    return [
        Contact(wa_id=wa_id, profile_name=names.get(wa_id, ""), last_inbound_at=latest[wa_id], app_config=app_config)
        for wa_id in sorted(latest)
    ]


_CHANGE_TYPES = frozenset({MessageType.EDIT.value, MessageType.REVOKE.value})


def _record_changes_on_originals(changes: Sequence[Message]) -> None:
    """Mark the messages that edits and deletes refer to, as WhatsApp shows them.

    The original keeps its own text and content; an edit adds ``edited_text`` /
    ``edited_at``, a delete ``deleted`` / ``deleted_at``. Only the sender's own inbound
    message is changed. Rare (a few per thousand messages), so plain ORM statements.
    """
    wanted: dict[str, list[Message]] = {}
    for change in changes:
        original_id = (change.content.get(change.message_type) or {}).get("original_message_id")
        if original_id:
            wanted.setdefault(original_id, []).append(change)
    if not wanted:
        return
    originals = {
        m.wamid: m
        for m in Message.objects.inbound().select_for_update().filter(wamid__in=list(wanted))
    }
    for original_id, found in wanted.items():
        original = originals.get(original_id)
        if original is None:
            logger.info("%s of wamid=%s: that message is not stored here; recorded on its own",
                        found[0].message_type, original_id)
            continue
        content = dict(original.content) if isinstance(original.content, dict) else {}
        for change in sorted(found, key=lambda m: m.timestamp):
            if change.contact_id != original.contact_id:
                logger.warning("%s wamid=%s names wamid=%s of another contact: ignored",
                               change.message_type, change.wamid, original_id)
                continue
            at = change.timestamp.isoformat()
            if change.message_type == MessageType.REVOKE.value:
                content.update(deleted=True, deleted_at=at, deleted_by_wamid=change.wamid)
            elif str(content.get("edited_at") or "") <= at:
                content.update(edited_text=change.text, edited_at=at, edited_by_wamid=change.wamid)
        if content != original.content:
            original.content = content
            original.save(update_fields=["content"])


# --------------------------------------------------------------------------------------
# Enqueueing (after commit) and the sweeper
# --------------------------------------------------------------------------------------


def enqueue_new_messages(messages: Sequence[StoredMessage]) -> int:
    """Enqueue processing of each new message; returns how many were enqueued.

    One publish per message: ``flows.process_message`` also sends the read receipt. Runs
    after commit, so the rows exist. Any failure to publish is logged, never raised: the
    webhook has already committed and must answer 200; the sweeper sends what is missing.
    After the first failure the rest are left to the sweeper too (the broker is down; trying
    each would only slow the answer to Meta).
    """
    sent = 0
    for message in messages:
        try:
            # the contact saves a lookup
            enqueue(PROCESS_MESSAGE_TASK, message.id, message.contact_id, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
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
    ``max_age`` stops a message from being resent forever (a reply a day late is outside
    WhatsApp's customer-service window anyway). A message whose processing failed too often
    is marked ``failed`` by the flows task and is left for an operator, not retried here.
    Processing is idempotent on the flows side, so a message that was merely slow costs one
    no-op run.
    """
    now = now or timezone.now()
    pending = list(
        Message.objects.unprocessed_inbound()
        .filter(created_at__lt=now - older_than, created_at__gte=now - max_age)
        .order_by("created_at", "id")
        .values_list("id", "wamid", "contact_id")[:limit]
    )
    sent = 0
    for message_id, wamid, contact_id in pending:
        try:
            enqueue(PROCESS_MESSAGE_TASK, message_id, contact_id, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
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
    """Apply each status to its message and record it once; returns events recorded.

    Two statements for the usual POST (one status): a conditional UPDATE of the message,
    then the INSERT of the event marked applied or not. Statuses whose message is not
    stored yet (the send path has not written the wamid) stay unapplied;
    ``apply_pending_status_events`` applies them when the wamid is stored. A status whose
    ``biz_opaque_callback_data`` names an outbound row without a wamid stores the wamid on
    it: Meta accepted that message even if our bookkeeping was interrupted.
    """
    rows: dict[tuple[str, str], StatusEvent] = {}
    callbacks: dict[str, int] = {}
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
        if status.callback_message_id is not None:
            callbacks.setdefault(status.wamid, status.callback_message_id)
    if not rows:
        return 0
    by_wamid: dict[str, list[StatusEvent]] = {}
    for event in rows.values():
        by_wamid.setdefault(event.wamid, []).append(event)
    single = len(by_wamid) == 1 and connection.vendor == "postgresql"
    for wamid in sorted(by_wamid):
        events = by_wamid[wamid]
        if single:  # the usual POST: update and record in one statement
            applied = _store_one_wamid(wamid, events, callbacks.get(wamid))
        else:
            applied = _apply_statuses(wamid, events, callbacks.get(wamid))
        for event in events:
            event.applied = applied
        # Three statuses per reply: applied ones only at DEBUG (one INFO line per message is enough).
        logger.log(
            logging.DEBUG if applied else logging.INFO,
            "status %s for wamid=%s %s", ",".join(e.status for e in events), wamid,
            "applied" if applied else "kept for later: no outbound message with that wamid yet",
        )
    if single:
        return len(rows)
    # A redelivered (wamid, status) is recorded once; it is marked applied if it now was.
    insert_returning(
        StatusEvent, list(rows.values()),
        on_conflict="ON CONFLICT ({wamid}, {status}) DO UPDATE SET {applied} = EXCLUDED.{applied}", key="wamid",
    )
    return len(rows)


def apply_pending_status_events(wamid: str) -> int:
    """Apply the not-yet-applied status events of ``wamid`` to its outbound message.

    Called by the send path right after it stores a wamid (in the same transaction), and by
    the sweeper. One conditional UPDATE moves the message forward only (pending < sent <
    delivered < read; failed is terminal), so any arrival order ends in the same state.
    Returns how many events were applied; 0 when the message is not stored yet (the events
    wait; that is not an error).
    """
    events = list(StatusEvent.objects.filter(wamid=wamid, applied=False))
    if not events:
        return 0
    if not _apply_statuses(wamid, events, None):
        logger.info(
            "status %s for wamid=%s kept for later: no outbound message with that wamid yet",
            ",".join(e.status for e in events), wamid,
        )
        return 0
    StatusEvent.objects.filter(pk__in=[e.pk for e in events]).update(applied=True)
    logger.info("status %s for wamid=%s applied", ",".join(e.status for e in events), wamid)
    return len(events)


def _apply_statuses(wamid: str, events: Sequence[StatusEvent], callback_message_id: int | None) -> bool:
    """One UPDATE of the outbound message (``_status_update``); True if the message exists."""
    sql, params = _status_update(wamid, events, callback_message_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount > 0


def _status_update(
    wamid: str, events: Sequence[StatusEvent], callback_message_id: int | None
) -> tuple[str, list[Any]]:
    """The UPDATE of the outbound message for ``events``; it matches the row if the message
    exists (moved or not).

    Only the furthest status matters (failed wins over all): applying sent, delivered, read
    one by one ends where applying read alone does. The row moves forward only; Meta's time
    is also filled in when our own write already set the status (the send path marks
    ``sent`` without a time). ``callback_message_id`` also matches the row it names if that
    row has no wamid and no other row has this one: the wamid is stored on it, sent_at
    filled in, and a "Send interrupted" failure undone (Meta's status proves it accepted the
    message; any other failure stays).

    Written as SQL, not ORM expressions: this runs for each of the three statuses Meta posts
    per reply, and compiling the equivalent Case/When/Exists costs ~1.5 ms of CPU each. Only
    column names from the model are formatted in; every value is a parameter.
    """
    failed = [e for e in events if e.status == MessageStatus.FAILED]
    target = failed[0] if failed else max(events, key=lambda e: _RANK[e.status])
    adapt = connection.ops.adapt_datetimefield_value
    col = _MESSAGE_COLUMNS
    interrupted = f"({col['status']} = %s AND {col['error_title']} = %s AND {col['wamid']} IS NULL)"
    interrupted_params: list[Any] = [MessageStatus.FAILED.value, SEND_INTERRUPTED]
    sets: list[str] = []
    params: list[Any] = []

    def set_when(column: str, condition: str, condition_params: list[Any], value: Any) -> None:
        value_sql = "NULL" if value is None else "%s"
        sets.append(f"{col[column]} = CASE WHEN {condition} THEN {value_sql} ELSE {col[column]} END")
        params.extend(condition_params)
        if value is not None:
            params.append(value)

    at = adapt(target.timestamp)
    if failed:
        moves, moves_params = f"({col['status']} <> %s OR {interrupted})", [MessageStatus.FAILED.value,
                                                                            *interrupted_params]
        set_when("status", moves, moves_params, MessageStatus.FAILED.value)
        set_when("status_at", moves, moves_params, at)
        for name, value in error_columns(target.errors).items():
            set_when(name, moves, moves_params, value)
    else:
        earlier = [status.value for status in STATUS_ORDER[: _RANK[target.status]]]
        moves = f"({col['status']} IN ({', '.join(['%s'] * len(earlier))}) OR {interrupted})"
        moves_params = [*earlier, *interrupted_params]
        set_when("status", moves, moves_params, target.status)
        set_when("status_at", f"({moves} OR ({col['status']} = %s AND {col['status_at']} IS NULL))",
                 [*moves_params, target.status], at)
        set_when("error_code", interrupted, interrupted_params, None)
        set_when("error_title", interrupted, interrupted_params, "")
        set_when("error_details", interrupted, interrupted_params, "")
    where = f"{col['wamid']} = %s"
    where_params: list[Any] = [wamid]
    if callback_message_id is not None:
        # The row reconciled here (the one without a wamid) is done with sending: Meta has it.
        # Its send lease (delivery.py) is given back, as record_accepted would have done.
        set_when("claimed_by", f"{col['wamid']} IS NULL", [], "")
        set_when("claimed_until", f"{col['wamid']} IS NULL", [], None)
        set_when("next_attempt_at", f"{col['wamid']} IS NULL", [], None)
        sets.append(f"{col['wamid']} = %s")
        params.append(wamid)
        sets.append(f"{col['sent_at']} = COALESCE({col['sent_at']}, %s)")
        params.append(adapt(min(e.timestamp for e in events)))
        where = (
            f"({where} OR ({col['id']} = %s AND {col['wamid']} IS NULL AND NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {_MESSAGE_TABLE} AS other WHERE other.{col['wamid']} = %s)))"
        )
        where_params += [callback_message_id, wamid]
    sql = f"UPDATE {_MESSAGE_TABLE} SET {', '.join(sets)} WHERE {col['direction']} = %s AND {where}"  # noqa: S608
    return sql, [*params, Direction.OUTBOUND.value, *where_params]


def _store_one_wamid(wamid: str, events: Sequence[StatusEvent], callback_message_id: int | None) -> bool:
    """PostgreSQL: ``_apply_statuses`` and the events' INSERT in ONE statement (the UPDATE
    as a data-modifying CTE; each event's ``applied`` is whether it matched a message).
    The usual status POST names one wamid; this saves it a round trip. Returns applied."""
    update_sql, update_params = _status_update(wamid, events, callback_message_id)
    meta = StatusEvent._meta
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = ", ".join("EXISTS (SELECT 1 FROM moved)" if field.name == "applied" else "%s" for field in fields)
    params: list[Any] = list(update_params)
    for event in events:
        params.extend(
            field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields
            if field.name != "applied"
        )
    applied = quote(meta.get_field("applied").column)
    # Only identifiers from the models' metadata are formatted in; every value is a parameter.
    sql = (
        f"WITH moved AS ({update_sql} RETURNING 1) "  # noqa: S608
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES {', '.join([f'({values})'] * len(events))} "
        f"ON CONFLICT ({quote(meta.get_field('wamid').column)}, {quote(meta.get_field('status').column)}) "
        f"DO UPDATE SET {applied} = EXCLUDED.{applied} RETURNING {applied}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return any(row[0] for row in cursor.fetchall())


_MESSAGE_TABLE = connection.ops.quote_name(Message._meta.db_table)
_MESSAGE_COLUMNS = {field.name: connection.ops.quote_name(field.column) for field in Message._meta.concrete_fields}


def reconcile_status_events(limit: int = 1000) -> int:
    """Apply waiting status events whose message has since been stored; returns events applied.

    Closes the race where a status webhook and the send task commit at the same moment
    and neither sees the other's row. Cheap to run from the sweeper.
    """
    wamids = (
        StatusEvent.objects.filter(
            applied=False,
            wamid__in=Message.objects.outbound().filter(wamid__isnull=False).values("wamid"),
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
