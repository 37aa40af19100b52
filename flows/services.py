"""Every state change the flows app makes: inbound messages through the engine, sessions,
human handover, session expiry, flow import/export and the development seed.

The engine (:mod:`flows.engine`) decides; this module loads what it needs from the database,
calls it, and stores what it returned, each in one transaction:

* **Per-contact order.** ``process_inbound`` takes the contact's lock, then runs every
  unprocessed inbound message of that contact up to the one it was called for, oldest first.
  A later message never overtakes an earlier one, two first messages cannot both create a
  session (the second waits for the lock, then finds the first's), and a redelivered task
  finds its message processed and does nothing. Replies are stored as outbound Message rows
  in the same transaction and enqueued on commit, so running a message twice replies once.
* **Expiry is a conditional delete.** ``expire_sessions`` deletes a state only if its
  ``version`` is still the one it read (and it is still idle), under the same contact lock;
  only a delete that happened sends the "session expired" notice, so it is sent once, and a
  message that reached the state first always wins.
* **Imports are all-or-nothing and keep conversations.** A document is validated completely
  before anything is written; a changed flow is updated in place, so contacts in the middle of
  it keep their place and variables. A contact whose step was removed (or stopped being a
  question, or whose flow was deactivated) is told the flow changed and starts afresh.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis as redis_lib
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, DateTimeField, F, FilteredRelation, IntegerField, Max, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from conversations.models import BOT_IGNORED_TYPES, Contact, Direction, Message, MessageStatus
from conversations.services import delivery, outbound
from conversations.services.delivery import RunInfo
from flows.actions import action_names, check_action_inputs, registry
from flows.conditions import normalize_text
from flows.definitions import (
    ActionOperation,
    FieldError,
    FlowDefinition,
    FlowValidationError,
    StepType,
    flow_to_document,
    parse_flow_document,
    thaw,
)
from flows.engine import ContactView, EngineResult, EngineSettings, Inbound, Session, advance
from flows.models import ContactFlowState, Flow, FlowStep, FlowTransition, build_definition
from meta_integration.outbound import build_message
from whatsappcrm_backend.metrics import record_sessions_expired

__all__ = [
    "DEFAULT_FLOWS_DIR",
    "ImportSummary",
    "ProcessResult",
    "contact_view",
    "engine_settings",
    "expire_sessions",
    "expire_state",
    "export_flow_document",
    "import_flow_document",
    "import_flow_files",
    "inbound_from_message",
    "load_flows",
    "lock_contact",
    "process_inbound",
    "release_contact",
    "seed_development_data",
    "session_timeout",
    "start_handover",
    "validate_flow_document",
]

logger = logging.getLogger(__name__)

DEFAULT_FLOWS_DIR = Path(__file__).resolve().parent / "default_flows"

DEFAULT_SESSION_EXPIRED_TEXT = (
    "⏱️ Our conversation timed out after a few quiet minutes, so I've closed it. "
    "Send *menu* whenever you'd like to pick up again."
)
DEFAULT_FLOW_CHANGED_TEXT = (
    "We've just updated this conversation on our side, so we need to start that again 🙏 "
    "Send *menu* to continue."
)
# Messages that are not worth a blue tick of their own (a reaction, Meta's system notices).
_NO_READ_RECEIPT = frozenset({"system", "reaction", *BOT_IGNORED_TYPES})
_WARNING_EVENTS = ("template_missing:", "template_error:", "action_", "loop_limit:", "step_missing:")


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


def session_timeout() -> timedelta:
    """``FLOW_SESSION_TIMEOUT`` seconds: the engine and the expiry job use this one value."""
    return timedelta(seconds=settings.FLOW_SESSION_TIMEOUT)


def engine_settings() -> EngineSettings:
    """The engine's settings from Django settings (read per call, so overrides apply)."""
    return EngineSettings(
        main_menu_flow=getattr(settings, "FLOW_MAIN_MENU", "main_menu"),
        session_timeout=session_timeout(),
    )


def _session_expired_text() -> str:
    return getattr(settings, "FLOW_SESSION_EXPIRED_TEXT", DEFAULT_SESSION_EXPIRED_TEXT)


def _flow_changed_text() -> str:
    return getattr(settings, "FLOW_CHANGED_TEXT", DEFAULT_FLOW_CHANGED_TEXT)


def _reply_gap_seconds() -> float:
    """Spacing of a multi-message reply's parts; small, because each waits for the previous."""
    return float(getattr(settings, "FLOW_REPLY_GAP_SECONDS", 0.0))


# ---------------------------------------------------------------------------------------
# Loading flows (cached per process, invalidated by Flow.updated_at)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LoadedFlows:
    key: tuple[int, datetime | None]
    flows: Mapping[str, FlowDefinition]
    ids: Mapping[str, int]


_cache: _LoadedFlows | None = None


def _load(key: tuple[int, datetime | None] = (0, None)) -> _LoadedFlows:
    flows = list(Flow.objects.order_by("id"))
    steps: dict[int, list[FlowStep]] = {}
    for step in FlowStep.objects.order_by("position", "id"):
        steps.setdefault(step.flow_id, []).append(step)
    transitions: dict[int, list[FlowTransition]] = {}
    for transition in FlowTransition.objects.select_related("from_step", "to_step").order_by("id"):
        transitions.setdefault(transition.flow_id, []).append(transition)
    definitions = {
        flow.name: build_definition(flow, steps.get(flow.pk, []), transitions.get(flow.pk, [])) for flow in flows
    }
    return _LoadedFlows(key=key, flows=definitions, ids={flow.name: flow.pk for flow in flows})


def _loaded(key: tuple[int, datetime | None] | None = None) -> _LoadedFlows:
    """This process's copy of the flows, reloaded when ``key`` (flow count, newest
    ``Flow.updated_at``) changed; without a key it is read with one aggregate query."""
    global _cache
    if key is None:
        stats = Flow.objects.aggregate(count=Count("id"), last=Max("updated_at"))
        key = (stats["count"], stats["last"])
    cached = _cache
    if cached is None or cached.key != key:
        cached = _cache = _load(key)
    return cached


def load_flows() -> Mapping[str, FlowDefinition]:
    """Every flow (inactive ones too; the engine skips them), by name, in creation order.

    One aggregate query per call decides whether this process's copy is current: any change
    to a flow, step or transition bumps ``Flow.updated_at`` (and a deletion changes the count).
    """
    return _loaded().flows


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
# Sending (through conversations, the only way the project sends)
# ---------------------------------------------------------------------------------------


def _send(
    contact: Contact, replies: Sequence[Mapping[str, Any]], *, sent_by: str = "bot", app_config_id: int | None = None
) -> None:
    """Store the replies as outbound messages (from ``app_config_id``, else the number the
    contact last wrote to) and send them on commit; several become ordered parts of one group."""
    specs = [thaw(reply) for reply in replies]
    if not specs:
        return
    if len(specs) == 1:
        outbound.send_to_contact(contact, specs[0], sent_by=sent_by, app_config_id=app_config_id)
    else:
        outbound.send_parts(contact, specs, gap_seconds=_reply_gap_seconds(), app_config_id=app_config_id)


def _text(body: str) -> dict[str, str]:
    return {"type": "text", "body": body}


# ---------------------------------------------------------------------------------------
# Per-contact serialization
# ---------------------------------------------------------------------------------------

_LOCK_NAMESPACE = 0x464C4F57  # "FLOW": advisory keys of this app never meet another app's


def lock_contact(contact_id: int) -> None:
    """Hold the contact's flow lock until the current transaction ends (call inside one).

    Everything that reads or changes a contact's conversation (processing, expiry, handover,
    release, an import resetting sessions) takes it, so they run one at a time per contact.
    On PostgreSQL it is a transaction-scoped advisory lock keyed by the contact, not a row
    lock: the webhook updates the Contact row (``last_inbound_at``) while storing the next
    message, and a row lock would make that webhook - and every other contact in its batch -
    wait for the bot. SQLite needs nothing: its IMMEDIATE transactions admit one writer at a
    time. Other databases fall back to locking the row.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_contact() must be called inside transaction.atomic()")
    vendor = connection.vendor
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, contact_id % 2**31])
    elif vendor != "sqlite":
        list(Contact.objects.select_for_update().filter(pk=contact_id).values_list("pk"))


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
        return ContactFlowState.objects.create(
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
        level = logging.WARNING if event.startswith(_WARNING_EVENTS) else logging.DEBUG
        logger.log(level, "flows: contact %s message %s: %s", contact.pk, message.pk, event)


def answer_inbound(message_id: int, contact_id: int | None = None, run: RunInfo | None = None) -> ProcessResult:
    """What ``flows.process_message`` does: process, then send the replies and the read
    receipt in the same run, so a reply costs no second task.

    A run that raises is counted on the message (``record_processing_failure``) and raised
    again. A send that cannot finish here (no token yet, a transient error) continues in
    ``conversations.send_message``; one interrupted by an infrastructure error is left to the
    outbound sweeper. The read receipt comes after the replies: it must never delay them.
    """
    try:
        result = process_inbound(message_id, contact_id)
    except Exception as exc:
        record_processing_failure(message_id, exc)
        raise
    if result.reply_ids:
        try:
            delivery.send_chain(result.reply_ids[0], run)
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
            unprocessed = Message.objects.filter(
                pk=message_id, direction=Direction.INBOUND, processed_at__isnull=True,
                status=MessageStatus.RECEIVED,
            )
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


def process_inbound(message_id: int, contact_id: int | None = None) -> ProcessResult:
    """Run the contact's unprocessed inbound messages up to ``message_id`` through the bot.

    Idempotent and safe to call concurrently for the same contact (see the module docstring).
    A contact in human handover or blocked gets no reply, nor do edits, deletes and error
    reports (``BOT_IGNORED_TYPES``); those messages are still marked processed, and operators
    see them in the conversation. The replies are written, not sent: the caller sends
    ``result.reply_ids`` after the commit (``flows.process_message`` does, in the same run).
    ``contact_id`` (the webhook knows it) saves looking the message up first.
    """
    if contact_id is None:
        contact_id = (
            Message.objects.filter(pk=message_id, direction=Direction.INBOUND)
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
        lock_contact(contact_id)
        pending = list(
            Message.objects.filter(
                contact_id=contact_id, direction=Direction.INBOUND, processed_at__isnull=True, pk__lte=message_id,
                status=MessageStatus.RECEIVED,  # a message given up on (failed) stays for operators
            ).order_by("timestamp", "id")
        )
        if not pending:
            return ProcessResult()
        # One conversation per business number: this run answers the messages written to the
        # number ``message_id`` was addressed to; the other number's have their own runs.
        app_config_id = next((m.app_config_id for m in pending if m.pk == message_id), pending[-1].app_config_id)
        pending = [m for m in pending if m.app_config_id == app_config_id]
        contact = _contact_with_session(contact_id, app_config_id)
        if contact is None:
            return ProcessResult()
        loaded = _loaded((contact.flows_count, contact.flows_updated))
        flow_names = {pk: name for name, pk in loaded.ids.items()}
        state = _session_state(contact)

        for message in pending:
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
                error = _text(engine.error_text)
                outgoing.append((message.app_config_id, error, build_message(contact.wa_id, error)))
                continue
            all_events.extend(result.events)
            outgoing.extend(
                (message.app_config_id, spec, payload) for spec, payload in zip(result.replies, payloads, strict=True)
            )
            replied += bool(result.replies)
        processed = len(pending)
        Message.objects.filter(pk__in=[message.pk for message in pending]).update(processed_at=timezone.now())
        reply_ids = _write_replies(contact, outgoing)
    newest = pending[-1]
    read = (newest.app_config_id, newest.wamid) if newest.message_type not in _NO_READ_RECEIPT else None
    return ProcessResult(processed, replied, skipped, failed, tuple(all_events), tuple(reply_ids), read)


# The flows' version, read with the contact (a table name, no input: nothing to inject).
_FLOWS_COUNT_SQL = "SELECT COUNT(*) FROM flows_flow"
_FLOWS_UPDATED_SQL = "SELECT MAX(updated_at) FROM flows_flow"
_Reply = tuple[int | None, dict[str, Any], dict[str, Any]]  # (business number, spec, Graph payload)


def _contact_with_session(contact_id: int, app_config_id: int | None) -> Contact | None:
    """The contact, its session with the number and the flows' version in ONE query (read
    under the contact's lock). The session is ``contact.session`` (None if there is none)."""
    on_number = (
        Q(flow_states__app_config__isnull=True) if app_config_id is None
        else Q(flow_states__app_config_id=app_config_id)
    )
    return (
        Contact.objects.annotate(session=FilteredRelation("flow_states", condition=on_number))
        .select_related("session")
        .annotate(
            flows_count=RawSQL(_FLOWS_COUNT_SQL, [], output_field=IntegerField()),  # noqa: S611
            flows_updated=RawSQL(_FLOWS_UPDATED_SQL, [], output_field=DateTimeField()),  # noqa: S611
        )
        .filter(pk=contact_id)
        .first()
    )


def _session_state(contact: Contact) -> ContactFlowState | None:
    return getattr(contact, "session", None)


def _write_replies(contact: Contact, outgoing: Sequence[_Reply]) -> list[int]:
    """Store the replies; consecutive replies from one number become one ordered group."""
    ids: list[int] = []
    start = 0
    while start < len(outgoing):
        config_id = outgoing[start][0]
        end = start
        while end < len(outgoing) and outgoing[end][0] == config_id:
            end += 1
        batch = outgoing[start:end]
        ids += outbound.write_replies(
            contact, config_id, [spec for _, spec, _ in batch], [payload for _, _, payload in batch],
            gap_seconds=_reply_gap_seconds(),
        )
        start = end
    return ids


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
    loaded: _LoadedFlows,
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
    )
    # Refuse an unsendable reply (e.g. a templated button title over WhatsApp's limit) here,
    # before anything of this turn is written, so only this turn fails and gets the error text.
    replies = [thaw(reply) for reply in result.replies]
    payloads = outbound.validate_specs(contact.wa_id, replies)
    _log_events(contact, message, result.events)
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


# ---------------------------------------------------------------------------------------
# Human handover
# ---------------------------------------------------------------------------------------


def start_handover(contact_id: int, *, now: datetime | None = None) -> bool:
    """An operator takes the conversation over: the bot goes quiet and any session ends.

    Returns False if the contact was already waiting for (or talking to) a human.
    """
    with transaction.atomic():
        lock_contact(contact_id)
        contact = Contact.objects.get(pk=contact_id)
        if contact.needs_human:
            return False
        contact.needs_human = True
        contact.handover_at = now or timezone.now()
        contact.save(update_fields=["needs_human", "handover_at"])
        ContactFlowState.objects.filter(contact=contact).delete()
    return True


def release_contact(contact_id: int, *, message: str = "", released_by: str = "") -> bool:
    """Give the contact back to the bot, optionally telling them so (sent as ``released_by``).

    Messages that arrived during the handover were for the operators and stay answered-by-
    nobody: the bot answers only what the contact sends next. Returns False if the contact was
    not in handover (a second click, or another operator was quicker), and sends nothing then.
    """
    with transaction.atomic():
        lock_contact(contact_id)
        contact = Contact.objects.get(pk=contact_id)
        if not contact.needs_human:
            return False
        contact.needs_human = False
        contact.handover_at = None
        contact.save(update_fields=["needs_human", "handover_at"])
        if message.strip() and not contact.blocked:
            _send(contact, [_text(message.strip())], sent_by=released_by or "bot")
    return True


# ---------------------------------------------------------------------------------------
# Session expiry
# ---------------------------------------------------------------------------------------


def expire_state(
    state_id: int,
    version: int,
    *,
    idle_before: datetime | None = None,
    notify: bool = True,
    text: str | None = None,
) -> bool:
    """Delete one session if it is still at ``version`` (and idle since before ``idle_before``);
    tell the user only if this call deleted it. Returns whether it did.

    With ``idle_before`` (the expiry job) a contact with an inbound message waiting to be
    processed keeps its session: that message arrived first and decides (the engine judges
    staleness by its arrival time); so does one with a reply not sent yet (the user has not
    seen it, so the quiet minutes have not started). Without it (an operator's "expire now") only the version
    must match.
    """
    with transaction.atomic():
        found = ContactFlowState.objects.filter(pk=state_id).values_list("contact_id", "app_config_id").first()
        if found is None:
            return False
        contact_id, app_config_id = found
        lock_contact(contact_id)
        contact = Contact.objects.get(pk=contact_id)
        rows = ContactFlowState.objects.filter(pk=state_id, version=version)
        if idle_before is not None:
            # A message still to answer, or a reply still to send, belongs to this session:
            # expiring now would tell the user it timed out before the reply it refers to.
            waiting = Message.objects.filter(contact=contact).filter(
                Q(direction=Direction.INBOUND, processed_at__isnull=True, status=MessageStatus.RECEIVED)
                | Q(direction=Direction.OUTBOUND, status=MessageStatus.PENDING)
            ).exists()
            if waiting:
                return False
            rows = rows.filter(last_activity_at__lt=idle_before)
        deleted, _ = rows.delete()
        if not deleted:
            return False
        if notify and not contact.blocked and not contact.needs_human:
            _send(contact, [_text(text or _session_expired_text())], app_config_id=app_config_id)
    return True


def expire_sessions(now: datetime | None = None, *, limit: int = 1000) -> int:
    """End every session idle for longer than ``FLOW_SESSION_TIMEOUT`` and tell each user once.

    Idle exactly the timeout is not expired (the engine uses the same ``>``). At most ``limit``
    sessions per run, oldest first; the Beat job runs again within seconds for the rest.
    """
    now = now or timezone.now()
    idle_before = now - session_timeout()
    candidates = list(
        ContactFlowState.objects.filter(last_activity_at__lt=idle_before)
        .order_by("last_activity_at", "pk")
        .values_list("pk", "version")[:limit]
    )
    expired = sum(expire_state(pk, version, idle_before=idle_before) for pk, version in candidates)
    if expired:
        logger.info("flows: expired %d idle session(s)", expired)
        record_sessions_expired(expired)  # whatsappcrm_flow_sessions_expired_total, cluster-wide
    return expired


# ---------------------------------------------------------------------------------------
# Import / export
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSummary:
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    sessions_reset: int = 0  # contacts told the flow changed (their step no longer exists)
    kept: tuple[str, ...] = ()  # existing flows that differ from the document, left as they are

    def __add__(self, other: ImportSummary) -> ImportSummary:
        return ImportSummary(
            self.created + other.created,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.sessions_reset + other.sessions_reset,
            self.kept + other.kept,
        )

    def __str__(self) -> str:
        kept = f", {len(self.kept)} kept as edited (--reset overwrites)" if self.kept else ""
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{self.sessions_reset} session(s) reset{kept}"
        )


def _prefixed(errors: Iterable[FieldError], source: str) -> list[FieldError]:
    if not source:
        return list(errors)
    return [FieldError(f"{source}: {e.path}" if e.path else source, e.message) for e in errors]


def validate_flow_document(doc: Any, *, source: str = "") -> tuple[FlowDefinition, ...]:
    """Parse and validate a document for *this* database; raise FlowValidationError listing
    every problem (paths prefixed with ``source``).

    Beyond the document's own rules: every ``call`` names a registered action with its
    declared inputs, transition ``order`` is unique per source step (a database constraint),
    and no trigger keyword is taken by an active flow outside the document.
    """
    try:
        flows = parse_flow_document(doc, known_actions=action_names())
    except FlowValidationError as exc:
        raise FlowValidationError(_prefixed(exc.errors, source)) from None
    errors: list[FieldError] = []
    names = {flow.name for flow in flows}
    taken: dict[str, str] = {}
    for name, keywords in Flow.objects.filter(active=True).exclude(name__in=names).values_list(
        "name", "trigger_keywords"
    ):
        for keyword in keywords or ():
            if isinstance(keyword, str):
                taken[normalize_text(keyword)] = name
    for f_index, flow in enumerate(flows):
        path = f"flows[{f_index}]"
        for s_index, step in enumerate(flow.steps.values()):
            if step.type is StepType.ACTION and step.config.get("operation") == ActionOperation.CALL:
                errors += check_action_inputs(
                    step.config["action"], step.config.get("inputs", {}), path=f"{path}.steps[{s_index}].config.inputs"
                )
        seen: dict[tuple[str, int], int] = {}
        for t_index, transition in enumerate(flow.transitions):
            key = (transition.from_step, transition.order)
            if key in seen:
                errors.append(
                    FieldError(
                        f"{path}.transitions[{t_index}].order",
                        f"order {transition.order} is already used by transitions[{seen[key]}] from step "
                        f"{transition.from_step!r}; give each transition from a step its own order",
                    )
                )
            seen.setdefault(key, t_index)
        if flow.active:
            for k_index, keyword in enumerate(flow.trigger_keywords):
                other = taken.get(normalize_text(keyword))
                if other is not None:
                    errors.append(
                        FieldError(
                            f"{path}.trigger_keywords[{k_index}]",
                            f"trigger {keyword!r} is already used by active flow {other!r}",
                        )
                    )
    if errors:
        raise FlowValidationError(_prefixed(errors, source))
    return flows


def _write_flow(definition: FlowDefinition, *, keep_existing: bool = False) -> tuple[str, Flow]:
    """Create or update one flow's rows in place; returns ("created"|"updated"|"unchanged"|"kept", flow).

    With ``keep_existing`` a flow that exists is never rewritten ("kept" when it differs):
    the seed must not undo what an operator changed in admin.
    """
    flow = Flow.objects.select_for_update().filter(name=definition.name).first()
    if flow is not None:
        current = flow.to_definition()
        if current == definition and list(current.steps) == list(definition.steps):
            return "unchanged", flow
        if keep_existing:
            return "kept", flow
    outcome = "updated" if flow is not None else "created"
    if flow is None:
        flow = Flow(name=definition.name)
    flow.description = definition.description
    flow.active = definition.active
    flow.trigger_keywords = list(definition.trigger_keywords)
    flow.save()

    existing = {step.name: step for step in FlowStep.objects.filter(flow=flow)}
    FlowTransition.objects.filter(flow=flow).delete()
    FlowStep.objects.filter(flow=flow).exclude(name__in=list(definition.steps)).delete()
    FlowStep.objects.filter(flow=flow, is_entry=True).update(is_entry=False)  # one entry at a time
    steps: dict[str, FlowStep] = {}
    for position, step in enumerate(definition.steps.values()):
        row = existing.get(step.name) or FlowStep(flow=flow, name=step.name)
        row.type = step.type.value
        row.config = thaw(step.config)
        row.is_entry = step.name == definition.entry_step
        row.position = position
        steps[step.name] = row
    kept = [row for row in steps.values() if row.pk is not None]
    FlowStep.objects.bulk_update(kept, ["type", "config", "is_entry", "position"])
    FlowStep.objects.bulk_create([row for row in steps.values() if row.pk is None])  # sets pks (RETURNING)
    FlowTransition.objects.bulk_create(
        FlowTransition(
            flow=flow,
            from_step=steps[t.from_step],
            to_step=steps[t.to_step],
            order=t.order,
            condition=thaw(t.condition),
        )
        for t in definition.transitions
    )
    flow.save(update_fields=["updated_at"])  # invalidates every worker's cached definitions
    return outcome, flow


def _reset_orphaned_sessions(flow: Flow, definition: FlowDefinition) -> int:
    """Contacts whose session points at a step that is gone (or is no longer a question, or
    whose flow was switched off) are told the flow changed; the rest keep their place."""
    questions = {name for name, step in definition.steps.items() if step.type is StepType.QUESTION}
    orphaned = ContactFlowState.objects.filter(flow=flow)
    if definition.active:
        orphaned = orphaned.exclude(step__in=questions)
    told = 0
    for state_id, version in orphaned.values_list("pk", "version"):
        told += expire_state(state_id, version, text=_flow_changed_text())
    return told


def import_flow_document(doc: Any, *, source: str = "", keep_existing: bool = False) -> ImportSummary:
    """Validate ``doc`` completely, then create/update its flows in one transaction.

    ``keep_existing`` only creates the flows that are missing (the development seed).
    """
    summary = ImportSummary()
    with transaction.atomic():
        definitions = validate_flow_document(doc, source=source)
        for definition in definitions:
            outcome, flow = _write_flow(definition, keep_existing=keep_existing)
            reset = _reset_orphaned_sessions(flow, definition) if outcome == "updated" else 0
            summary += ImportSummary(**{outcome: (definition.name,)}, sessions_reset=reset)
    return summary


def _read_document(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FlowValidationError([FieldError(str(path), f"cannot read the file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise FlowValidationError([FieldError(str(path), f"not UTF-8 text: {exc.reason}")]) from None
    except json.JSONDecodeError as exc:
        raise FlowValidationError(
            [FieldError(str(path), f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]
        ) from None


def import_flow_files(paths: Iterable[Path | str], *, keep_existing: bool = False) -> ImportSummary:
    """Import several files all-or-nothing: one bad file and nothing from any file is written."""
    summary = ImportSummary()
    with transaction.atomic():
        for path in map(Path, paths):
            summary += import_flow_document(_read_document(path), source=path.name, keep_existing=keep_existing)
    return summary


def export_flow_document(names: Sequence[str] | None = None) -> dict[str, Any]:
    """The flows (all, in creation order, or ``names`` in that order) as an import document."""
    flows = _load().flows
    if names:
        missing = [name for name in names if name not in flows]
        if missing:
            raise LookupError(f"no flow named {', '.join(map(repr, missing))}")
        return flow_to_document(flows[name] for name in names)
    return flow_to_document(flows.values())


def default_flow_paths() -> list[Path]:
    return sorted(DEFAULT_FLOWS_DIR.glob("*.json"))


def seed_development_data(*, reset: bool = False) -> str:
    """Create the shipped flows (``flows/default_flows/*.json``) that are missing.

    A flow that exists is left as it is, so an operator's edits in admin survive every
    restart of the dev stack; ``reset`` puts the shipped version back (the edits are lost).
    """
    return str(import_flow_files(default_flow_paths(), keep_existing=not reset))
