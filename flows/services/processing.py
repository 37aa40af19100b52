"""Inbound messages through the engine: what ``flows.process_message`` runs for every
message a contact sends.

The engine (:mod:`flows.engine`) decides; this module loads what it needs from the database,
calls it, and stores what it returned, each in one transaction:

* **Per-contact order.** ``process_inbound`` takes the contact's lock, then runs every
  unprocessed inbound message of that contact up to the one it was called for, oldest first.
  A later message never overtakes an earlier one, two first messages cannot both create a
  session (the second waits for the lock, then finds the first's), and a redelivered task
  finds its message processed and does nothing. Replies are stored as outbound Message rows
  in the same transaction and enqueued on commit, so running a message twice replies once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from itertools import groupby
from operator import itemgetter
from typing import Any

import redis as redis_lib
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from conversations.models import BOT_IGNORED_TYPES, Contact, Direction, Message, MessageStatus
from conversations.services import consent, delivery, sending
from conversations.services.delivery import RunInfo
from conversations.services.inbound import insert_returning
from conversations.window import window_open
from flows.actions import registry
from flows.definitions import thaw
from flows.engine import advance
from flows.engine_types import ContactView, EngineResult, EngineSettings, Inbound, Session
from flows.models import ContactFlowState, Flow
from flows.services import trace as flow_trace
from flows.services.loading import LoadedFlows, cached_flows
from flows.services.sessions import last_session_expired, lock_contact, lock_contact_sql, session_timeout
from meta_integration.models import MessageTemplate
from whatsappcrm_backend import rows

__all__ = [
    "ProcessResult",
    "answer_inbound",
    "contact_view",
    "engine_settings",
    "inbound_from_message",
    "process_inbound",
    "record_processing_failure",
]

logger = logging.getLogger(__name__)

# Messages that are not worth a blue tick of their own (a reaction, Meta's system notices).
_NO_READ_RECEIPT = frozenset({"system", "reaction", *BOT_IGNORED_TYPES})
# A real problem is a WARNING; a variable a template did not find (it renders blank) is worth
# INFO; every other event (action_ok, flow_started, ...) is a normal step, logged at DEBUG.
_WARNING_EVENTS = ("template_error:", "action_failed:", "action_bad_result:", "action_invalid:", "action_missing:",
                   "loop_limit:", "step_missing:")
_INFO_EVENTS = ("template_missing:",)


def engine_settings() -> EngineSettings:
    """The engine's settings from Django settings (read per call, so overrides apply)."""
    return EngineSettings(main_menu_flow=settings.FLOW_MAIN_MENU, session_timeout=session_timeout())


# ---------------------------------------------------------------------------------------
# Rows <-> engine records
# ---------------------------------------------------------------------------------------


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _sub(content: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = content.get(key)
    return value if isinstance(value, Mapping) else {}


def inbound_from_message(message: Message) -> Inbound:
    """The engine's view of a stored inbound message (``content`` is the parsed record)."""
    content = message.content if isinstance(message.content, Mapping) else {}
    message_type = message.message_type or str(content.get("type") or "unknown")
    interactive = _sub(content, "interactive")
    button = _sub(content, "button")
    location = _sub(content, "location")
    media = _sub(content, "media") or _sub(content, message_type)
    reply_id = content.get("reply_id") or interactive.get("id") or button.get("payload")
    reply_title = interactive.get("title") or button.get("text")
    text = content.get("text")
    if not isinstance(text, str) or not text:
        text = message.text or None
    return Inbound(
        message_type=message_type,
        text=text,
        reply_id=reply_id if isinstance(reply_id, str) and reply_id else None,
        reply_title=reply_title if isinstance(reply_title, str) and reply_title else None,
        latitude=_as_float(location.get("latitude")),
        longitude=_as_float(location.get("longitude")),
        media_id=media.get("id") if isinstance(media.get("id"), str) else None,
        wamid=message.wamid,
    )


def contact_view(contact: Contact) -> ContactView:
    """What templates see as ``contact``: the name the user gave (else their WhatsApp profile
    name), email, and every attribute flows have set."""
    fields = {**(contact.attributes or {}), "email": contact.email, "profile_name": contact.profile_name}
    return ContactView(wa_id=contact.wa_id, name=contact.name or contact.profile_name or None, fields=fields)


def _session_from(state: ContactFlowState | None, flow_names: Mapping[int, str]) -> Session | None:
    if state is None or state.flow_id not in flow_names:
        return None
    return Session(
        flow=flow_names[state.flow_id],
        step=state.step,
        variables=state.variables or {},
        retries=state.retries,
        awaiting_reply=state.awaiting_reply,
        updated_at=state.last_activity_at,
    )



# ---------------------------------------------------------------------------------------
# Processing inbound messages
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessResult:
    """What one ``process_inbound`` call did (for logs, tests, and the caller's sends)."""

    processed: int = 0  # messages marked processed by this call
    replied: int = 0  # of those, messages the bot answered
    skipped: int = 0  # of those, messages left to operators (handover, blocked, edits and deletes)
    failed: int = 0  # of those, messages whose turn raised (the user got the error text)
    events: tuple[str, ...] = field(default=(), repr=False)
    reply_ids: tuple[int, ...] = ()  # the replies written, in sending order (not sent yet)
    read: tuple[int | None, str] | None = None  # (business number, wamid) to mark read
    claimed: delivery.Claimed | None = field(default=None, repr=False)  # reply_ids[0], written claimed


def _apply_contact_updates(contact: Contact, updates: Mapping[str, Any]) -> set[str]:
    changed: set[str] = set()
    attributes = dict(contact.attributes or {})
    for key, value in updates.items():
        if key == "name":
            contact.name = str(value).strip()[:255]
            changed.add("name")
        elif key == "email":
            email = str(value).strip()
            try:
                validate_email(email)
            except ValidationError:
                logger.warning("contact %s: flow set an invalid email %r; ignored", contact.pk, email)
                continue
            contact.email = email
            changed.add("email")
        elif key in ("wa_id", "profile_name", "needs_human", "handover_at", "blocked"):
            logger.warning("contact %s: flows may not set %r; ignored", contact.pk, key)
        else:
            attributes[key] = value
            changed.add("attributes")
    if "attributes" in changed:
        contact.attributes = attributes
    return changed


def _store_session(
    contact: Contact,
    app_config_id: int | None,
    state: ContactFlowState | None,
    session: Session | None,
    result: EngineResult,
    flow_ids: Mapping[str, int],
    now: datetime,
) -> ContactFlowState | None:
    """Persist the engine's new session (or its end); every write bumps ``version``."""
    if session is None or session.flow not in flow_ids:
        if state is not None:
            ContactFlowState.objects.filter(pk=state.pk).delete()
        return None
    restarted = any(event.startswith("flow_started:") for event in result.events)
    if state is None:
        state = ContactFlowState(
            contact=contact,
            app_config_id=app_config_id,
            flow_id=flow_ids[session.flow],
            step=session.step,
            variables=thaw(session.variables),
            retries=session.retries,
            awaiting_reply=session.awaiting_reply,
            started_at=now,
            last_activity_at=now,
        )
        # The INSERT ``objects.create`` runs, without the ORM's compile (every new user's first turn).
        [state.pk] = insert_returning(ContactFlowState, [state], on_conflict="", key="id").values()
        state._state.adding, state._state.db = False, "default"
        return state
    state.flow_id = flow_ids[session.flow]
    state.step = session.step
    state.variables = thaw(session.variables)
    state.retries = session.retries
    state.awaiting_reply = session.awaiting_reply
    if restarted:
        state.started_at = now
    state.last_activity_at = now
    state.version += 1
    state.save()
    return state


def _log_events(contact: Contact, message: Message, events: Iterable[str]) -> None:
    for event in events:
        level = (logging.WARNING if event.startswith(_WARNING_EVENTS)
                 else logging.INFO if event.startswith(_INFO_EVENTS) else logging.DEBUG)
        logger.log(level, "flows: contact %s message %s: %s", contact.pk, message.pk, event)


def answer_inbound(message_id: int, contact_id: int | None = None, run: RunInfo | None = None) -> ProcessResult:
    """What ``flows.process_message`` does: process, then send the replies and the read
    receipt in the same run, so a reply costs no second task.

    A run that raises is counted on the message (``record_processing_failure``) and raised
    again. A send that cannot finish here (no token yet, a transient error) continues in
    ``conversations.send_message``; one interrupted by an infrastructure error is left to the
    outbound sweeper. The read receipt comes after the replies: it must never delay them.
    """
    run = run or RunInfo.current()
    try:
        result = process_inbound(message_id, contact_id, run)
    except Exception as exc:
        record_processing_failure(message_id, exc)
        raise
    if result.reply_ids:
        try:
            delivery.send_chain(result.reply_ids[0], run, result.claimed)
        except (DatabaseError, redis_lib.RedisError):
            logger.exception("flows: replies %s written, not sent; the outbound sweeper sends them", result.reply_ids)
    if result.read is not None:
        delivery.mark_read(*result.read)
    return result


def record_processing_failure(message_id: int, exc: BaseException) -> bool:
    """Count a failed processing run on the inbound message; at INBOUND_MAX_PROCESSING_ATTEMPTS
    it is marked failed with the error, for operators, and no sweeper picks it up again.
    Returns whether it was marked failed now. Never raises (the caller is already failing)."""
    details = f"{type(exc).__name__}: {exc}"[:2000]
    try:
        with transaction.atomic():
            unprocessed = Message.objects.unprocessed_inbound().filter(pk=message_id)
            unprocessed.update(attempts=F("attempts") + 1, error_title="Processing failed", error_details=details)
            failed = unprocessed.filter(attempts__gte=settings.INBOUND_MAX_PROCESSING_ATTEMPTS).update(
                status=MessageStatus.FAILED, status_at=timezone.now()
            )
    except DatabaseError:
        logger.exception("flows: could not record the processing failure of message %s", message_id)
        return False
    if failed:
        logger.error("flows: message %s failed %s times and is given up: %s", message_id,
                     settings.INBOUND_MAX_PROCESSING_ATTEMPTS, details)
    return bool(failed)


def process_inbound(message_id: int, contact_id: int | None = None, run: RunInfo | None = None) -> ProcessResult:
    """Run the contact's unprocessed inbound messages up to ``message_id`` through the bot.

    Idempotent and safe to call concurrently for the same contact (see the module docstring).
    A contact in human handover or blocked gets no reply, nor do edits, deletes and error
    reports (``BOT_IGNORED_TYPES``); those messages are still marked processed, and operators
    see them in the conversation. A marketing consent word (STOP / START) is consumed by
    ``conversations.services.consent`` and never reaches the flows. The replies are written, not sent: the caller sends
    ``result.reply_ids`` after the commit (``flows.process_message`` does, in the same run).
    ``contact_id`` (the webhook knows it) saves looking the message up first. With ``run``
    (the caller sends next, in that run) the first reply is written already claimed by it
    when it heads its chain and the 24-hour window is open (``result.claimed``).
    """
    if contact_id is None:
        contact_id = (
            Message.objects.inbound().filter(pk=message_id)
            .values_list("contact_id", flat=True)
            .first()
        )
        if contact_id is None:
            return ProcessResult()
    engine = engine_settings()
    processed = replied = skipped = failed = 0
    all_events: list[str] = []
    # (business number, spec, payload): each reply goes out from the number its message was
    # addressed to; replies to every message handled in this run go out in order.
    outgoing: list[_Reply] = []

    with transaction.atomic():
        # Under the contact's lock; marked processed as they are read: the mark commits with
        # this run's replies or not at all.
        pending, contact = _lock_and_take_unprocessed(contact_id, message_id)
        if not pending or contact is None:
            return ProcessResult()
        loaded = cached_flows((contact.flows_count, contact.flows_updated))
        flow_names = {pk: name for name, pk in loaded.ids.items()}
        state = _session_state(contact)

        for message in pending:
            keyword = consent.consume_keyword(contact, message)  # STOP / START: never reaches the flows
            if keyword is not None:
                for spec in keyword.replies:  # the confirmation, once
                    outgoing.append((message.app_config_id, spec, sending.validate_spec(contact.wa_id, spec)))
                replied, skipped = replied + bool(keyword.replies), skipped + (not keyword.replies)
                continue
            if contact.blocked or contact.needs_human or message.message_type in BOT_IGNORED_TYPES:
                skipped += 1
                continue
            try:
                state, result, payloads = _turn(contact, message, state, loaded, flow_names, engine)
            except Exception:  # one bad turn must not block the contact's later messages
                logger.exception("flows: contact %s message %s failed; session dropped", contact.pk, message.pk)
                failed += 1
                if state is not None:
                    ContactFlowState.objects.filter(pk=state.pk).delete()
                    state = None
                error = {"type": "text", "body": engine.error_text}
                outgoing.append((message.app_config_id, error, sending.validate_spec(contact.wa_id, error)))
                continue
            all_events.extend(result.events)
            outgoing.extend(
                (message.app_config_id, spec, payload) for spec, payload in zip(result.replies, payloads, strict=True)
            )
            replied += bool(result.replies)
        processed = len(pending)
        newest = pending[-1]
        now = timezone.now()
        # Claimed by the insert only if the claim could not refuse it: the chain's head, and
        # inside the window by the message being answered (the claim would read the latest).
        claim = (delivery.claim_columns(run, now)
                 if run is not None and not contact.chain_pending and window_open(newest.timestamp, now) else None)
        written = _write_replies(contact, outgoing, claim)
    claimed = (delivery.claimed_reply(written[0], contact.wa_id, newest.timestamp)
               if claim is not None and written else None)
    read = (newest.app_config_id, newest.wamid) if newest.message_type not in _NO_READ_RECEIPT else None
    return ProcessResult(processed, replied, skipped, failed, tuple(all_events),
                         tuple(message.pk for message in written), read, claimed)


_NO_TIME = datetime.min.replace(tzinfo=UTC)
_Reply = tuple[int | None, dict[str, Any], dict[str, Any]]  # (business number, spec, Graph payload)

# The two reads under the contact's lock, as SQL: the ORM compiling them (a FilteredRelation,
# two annotations) cost more CPU than PostgreSQL spent running them. Table and column names
# come from the models; every value is a parameter.
# One conversation per business number: a run answers the messages written to the number
# ``message_id`` was addressed to; the other number's have their own runs.
_TAKE_UNPROCESSED_SQL = """
UPDATE {message_table} SET processed_at = %s
WHERE contact_id = %s AND id <= %s AND direction = %s AND processed_at IS NULL AND status = %s
  AND app_config_id {same} (SELECT n.app_config_id FROM {message_table} AS n WHERE n.id = %s)
RETURNING {message}
"""
_CONTACT_SQL = """
SELECT {contact}, {session},
  EXISTS (SELECT 1 FROM {message_table} AS o WHERE o.contact_id = c.id AND {o_on_number}
          AND o.direction = %s AND o.status = %s),
  (SELECT COUNT(*) FROM {flow_table}), (SELECT MAX(f.updated_at) FROM {flow_table} AS f)
FROM {contact_table} AS c
LEFT JOIN {session_table} AS s ON s.contact_id = c.id AND {on_number}
WHERE c.id = %s
"""

# PostgreSQL: both in one statement, the contact's columns repeated on each message's row
# (one row, nearly always). The CTE's UPDATE and the SELECT see the same snapshot, taken
# after the contact's lock.
_TAKE_WITH_CONTACT_SQL = """
WITH p AS (
  UPDATE {message_table} SET processed_at = %s
  WHERE contact_id = %s AND id <= %s AND direction = %s AND processed_at IS NULL AND status = %s
    AND app_config_id IS NOT DISTINCT FROM (SELECT n.app_config_id FROM {message_table} AS n WHERE n.id = %s)
  RETURNING {message}
)
SELECT {p_message}, {contact}, {session},
  EXISTS (SELECT 1 FROM {message_table} AS o WHERE o.contact_id = p.contact_id
          AND o.app_config_id IS NOT DISTINCT FROM p.app_config_id AND o.direction = %s AND o.status = %s),
  (SELECT COUNT(*) FROM {flow_table}), (SELECT MAX(f.updated_at) FROM {flow_table} AS f)
FROM p
LEFT JOIN {contact_table} AS c ON c.id = p.contact_id
LEFT JOIN {session_table} AS s ON s.contact_id = p.contact_id AND s.app_config_id IS NOT DISTINCT FROM p.app_config_id
"""


@cache
def _sql(template: str, **extra: str) -> str:
    return template.format(
        message=rows.select_list(Message, ""), p_message=rows.select_list(Message, "p"),
        contact=rows.select_list(Contact, "c"),
        session=rows.select_list(ContactFlowState, "s"), message_table=Message._meta.db_table,
        contact_table=Contact._meta.db_table, session_table=ContactFlowState._meta.db_table,
        flow_table=Flow._meta.db_table, **extra,
    )


def _lock_and_take_unprocessed(contact_id: int, message_id: int) -> tuple[list[Message], Contact | None]:
    """Take the contact's lock, then mark processed and return the contact's inbound messages
    up to ``message_id`` to its business number not processed yet, oldest first (not one
    given up on, ``failed``: that stays for operators), and the contact as
    ``_contact_with_session`` loads it. Call it in the run's transaction.

    On PostgreSQL one round trip: the lock and the read as two statements of one query (the
    second takes its snapshot after the lock is held), the read's UPDATE a data-modifying CTE.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [now, contact_id, message_id, Direction.INBOUND.value, MessageStatus.RECEIVED.value, message_id]
    if connection.vendor != "postgresql":
        lock_contact(contact_id)
        with connection.cursor() as cursor:
            same = "IS" if connection.vendor == "sqlite" else "IS NOT DISTINCT FROM"
            cursor.execute(_sql(_TAKE_UNPROCESSED_SQL, same=same), params)
            taken = _in_arrival_order([rows.from_row(Message, row) for row in cursor.fetchall()])
        return taken, (_contact_with_session(contact_id, taken[-1].app_config_id) if taken else None)
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("the contact's lock must be taken inside transaction.atomic()")
    lock_sql, lock_params = lock_contact_sql(contact_id)
    with connection.cursor() as cursor:
        cursor.execute(f"{lock_sql};\n{_sql(_TAKE_WITH_CONTACT_SQL)}",
                       [*lock_params, *params, Direction.OUTBOUND.value, MessageStatus.PENDING.value])
        cursor.nextset()  # past the lock's row
        found = cursor.fetchall()
    if not found:
        return [], None
    width = rows.width(Message)
    taken = _in_arrival_order([rows.from_row(Message, row[:width]) for row in found])
    return taken, _contact_from(found[0][width:])


def _in_arrival_order(messages: list[Message]) -> list[Message]:
    """ORDER BY timestamp, id as PostgreSQL sorts it (a missing timestamp last)."""
    return sorted(messages, key=lambda message: (message.timestamp is None, message.timestamp or _NO_TIME, message.pk))


def _contact_with_session(contact_id: int, app_config_id: int | None) -> Contact | None:
    """The contact, its session with the number and the flows' version in ONE query (read
    under the contact's lock). The session is ``contact.session`` (None if there is none);
    the version is ``contact.flows_count`` and ``contact.flows_updated``;
    ``contact.chain_pending`` says whether a reply from the number to the contact is still
    pending (then this run's first reply waits its turn in the chain: not claimed here)."""
    on_number = "s.app_config_id IS NULL" if app_config_id is None else "s.app_config_id = %s"
    o_on_number = "o.app_config_id IS NULL" if app_config_id is None else "o.app_config_id = %s"
    number = [] if app_config_id is None else [app_config_id]
    params = [*number, Direction.OUTBOUND.value, MessageStatus.PENDING.value, *number, contact_id]
    with connection.cursor() as cursor:
        cursor.execute(_sql(_CONTACT_SQL, on_number=on_number, o_on_number=o_on_number), params)
        row = cursor.fetchone()
    return None if row is None else _contact_from(row)


def _contact_from(row: Sequence[Any]) -> Contact | None:
    """``_CONTACT_SQL``'s columns as the contact with its session and the flows' version."""
    if row[0] is None:
        return None
    contact_width, session_width = rows.width(Contact), rows.width(ContactFlowState)
    contact = rows.from_row(Contact, row[:contact_width])
    session_row = row[contact_width:contact_width + session_width]
    contact.session = rows.from_row(ContactFlowState, session_row) if session_row[0] is not None else None
    contact.chain_pending = bool(row[-3])
    contact.flows_count = row[-2]
    contact.flows_updated = rows.convert(Flow, "updated_at", row[-1])
    return contact


def _session_state(contact: Contact) -> ContactFlowState | None:
    return getattr(contact, "session", None)


def _write_replies(contact: Contact, outgoing: Sequence[_Reply], claim: Mapping[str, Any] | None) -> list[Message]:
    """Store the replies; consecutive replies from one number become one ordered group.
    ``claim`` goes on the first row only."""
    written: list[Message] = []
    for config_id, group in groupby(outgoing, key=itemgetter(0)):
        batch = list(group)
        written += sending.write_reply_rows(
            contact, config_id, [spec for _, spec, _ in batch], [payload for _, _, payload in batch],
            gap_seconds=settings.FLOW_REPLY_GAP_SECONDS,  # small: each part waits for the previous
            claim=None if written else claim,
        )
    return written


def _in_savepoint(action: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An action's writes (a bet, a wallet entry) roll back if it raises; the engine then
    answers politely and the rest of the turn goes on. Only turns that call an action pay
    for the savepoint."""

    def run(call: Any) -> Any:
        with transaction.atomic():
            return action(call)

    return run


_wrapped_actions: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None


def _actions() -> Mapping[str, Any]:
    global _wrapped_actions
    current = registry()
    snapshot = dict(current)
    if _wrapped_actions is None or _wrapped_actions[0] != snapshot:
        _wrapped_actions = (snapshot, {name: _in_savepoint(action) for name, action in snapshot.items()})
    return _wrapped_actions[1]


def _turn(
    contact: Contact,
    message: Message,
    state: ContactFlowState | None,
    loaded: LoadedFlows,
    flow_names: Mapping[int, str],
    engine: EngineSettings,
) -> tuple[ContactFlowState | None, EngineResult, list[dict[str, Any]]]:
    """One message through the engine, and everything it returned stored (the caller writes
    the replies). Everything that can refuse the turn runs before its first write."""
    session = _session_from(state, flow_names)
    result = advance(
        flows=loaded.flows,
        session=session,
        inbound=inbound_from_message(message),
        contact=contact_view(contact),
        actions=_actions(),
        settings=engine,
        # Staleness is judged at arrival, not at processing: a queue delay never expires a
        # session the user answered in time.
        now=message.created_at,
        # Asked only for a tapped button with no session: did the last conversation time out?
        last_session_expired=lambda: last_session_expired(contact.pk, message.app_config_id, before=message.created_at),
    )
    # Refuse an unsendable reply (e.g. a templated button title over WhatsApp's limit) here,
    # before anything of this turn is written, so only this turn fails and gets the error text.
    replies = [dict(MessageTemplate.resolve_spec(thaw(reply), message.app_config_id)) for reply in result.replies]
    payloads = sending.validate_specs(contact.wa_id, replies)
    _log_events(contact, message, result.events)
    # Only with FLOW_TRACE. On commit: a Redis call inside the turn's transaction lets another
    # gevent greenlet block the whole worker on SQLite's write lock until its 30 s timeout.
    transaction.on_commit(
        lambda: flow_trace.record_turn(contact.wa_id, message.app_config_id, message.pk, result))
    now = timezone.now()
    changed = _apply_contact_updates(contact, result.contact_updates)
    if result.handover:
        contact.needs_human = True
        contact.handover_at = now
        changed |= {"needs_human", "handover_at"}
    if changed:
        contact.save(update_fields=sorted(changed))
    if result.session is not session or (state is not None and session is None):
        state = _store_session(contact, message.app_config_id, state, result.session, result, loaded.ids, now)
    return state, replace(result, replies=tuple(replies)), payloads

