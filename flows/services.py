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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from conversations.models import Contact, Direction, Message
from conversations.services import outbound
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


def _loaded() -> _LoadedFlows:
    global _cache
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


def _send(contact: Contact, replies: Sequence[Mapping[str, Any]], *, sent_by: str = "bot") -> None:
    """Store the replies as outbound messages; several become ordered parts of one group."""
    specs = [thaw(reply) for reply in replies]
    if not specs:
        return
    if len(specs) == 1:
        outbound.send_to_contact(contact, specs[0], sent_by=sent_by)
    else:
        outbound.send_parts(contact, specs, gap_seconds=_reply_gap_seconds())


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
    """What one ``process_inbound`` call did (for logs and tests)."""

    processed: int = 0  # messages marked processed by this call
    replied: int = 0  # of those, messages the bot answered
    skipped: int = 0  # of those, messages left to operators (handover or blocked contact)
    failed: int = 0  # of those, messages whose turn raised (the user got the error text)
    events: tuple[str, ...] = field(default=(), repr=False)


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


def process_inbound(message_id: int) -> ProcessResult:
    """Run the contact's unprocessed inbound messages up to ``message_id`` through the bot.

    Idempotent and safe to call concurrently for the same contact (see the module docstring).
    A contact in human handover or blocked gets no reply; the message is still marked
    processed, and operators see it in the conversation.
    """
    head = Message.objects.filter(pk=message_id, direction=Direction.INBOUND).values("contact_id").first()
    if head is None:
        return ProcessResult()
    loaded = _loaded()
    flow_names = {pk: name for name, pk in loaded.ids.items()}
    actions = registry()
    engine = engine_settings()
    processed = replied = skipped = failed = 0
    all_events: list[str] = []
    # Replies to every message handled in this run go out as ONE ordered group, so the
    # answers to two messages that arrived together reach the user in the same order.
    outgoing: list[Mapping[str, Any]] = []

    with transaction.atomic():
        lock_contact(head["contact_id"])
        contact = Contact.objects.get(pk=head["contact_id"])
        pending = list(
            Message.objects.filter(
                contact=contact, direction=Direction.INBOUND, processed_at__isnull=True, pk__lte=message_id
            ).order_by("timestamp", "id")
        )
        if not pending:
            return ProcessResult()
        state = ContactFlowState.objects.filter(contact=contact).first()

        for message in pending:
            if contact.blocked or contact.needs_human:
                skipped += 1
            else:
                try:
                    with transaction.atomic():
                        state, result = _turn(contact, message, state, loaded, flow_names, actions, engine)
                    all_events.extend(result.events)
                    outgoing.extend(result.replies)
                    replied += bool(result.replies)
                except Exception:  # one bad turn must not block the contact's later messages
                    logger.exception("flows: contact %s message %s failed; session dropped", contact.pk, message.pk)
                    failed += 1
                    contact.refresh_from_db()
                    ContactFlowState.objects.filter(contact=contact).delete()
                    state = None
                    outgoing.append(_text(engine.error_text))
            Message.objects.filter(pk=message.pk).update(processed_at=timezone.now())
            processed += 1
        _send(contact, outgoing)
    return ProcessResult(processed, replied, skipped, failed, tuple(all_events))


def _turn(
    contact: Contact,
    message: Message,
    state: ContactFlowState | None,
    loaded: _LoadedFlows,
    flow_names: Mapping[int, str],
    actions: Mapping[str, Any],
    engine: EngineSettings,
) -> tuple[ContactFlowState | None, EngineResult]:
    """One message through the engine, and everything it returned stored (the caller sends the replies)."""
    session = _session_from(state, flow_names)
    result = advance(
        flows=loaded.flows,
        session=session,
        inbound=inbound_from_message(message),
        contact=contact_view(contact),
        actions=actions,
        settings=engine,
        # Staleness is judged at arrival, not at processing: a queue delay never expires a
        # session the user answered in time.
        now=message.created_at,
    )
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
        state = _store_session(contact, state, result.session, result, loaded.ids, now)
    for reply in result.replies:
        # Refuse an unsendable reply (e.g. a templated button title over WhatsApp's limit)
        # here, inside this turn's savepoint, so only this turn fails and gets the error text.
        build_message(contact.wa_id, thaw(reply))
    return state, result


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
    staleness by its arrival time). Without it (an operator's "expire now") only the version
    must match.
    """
    with transaction.atomic():
        contact_id = ContactFlowState.objects.filter(pk=state_id).values_list("contact_id", flat=True).first()
        if contact_id is None:
            return False
        lock_contact(contact_id)
        contact = Contact.objects.get(pk=contact_id)
        rows = ContactFlowState.objects.filter(pk=state_id, version=version)
        if idle_before is not None:
            waiting = Message.objects.filter(
                contact=contact, direction=Direction.INBOUND, processed_at__isnull=True
            ).exists()
            if waiting:
                return False
            rows = rows.filter(last_activity_at__lt=idle_before)
        deleted, _ = rows.delete()
        if not deleted:
            return False
        if notify and not contact.blocked and not contact.needs_human:
            _send(contact, [_text(text or _session_expired_text())])
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

    def __add__(self, other: ImportSummary) -> ImportSummary:
        return ImportSummary(
            self.created + other.created,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.sessions_reset + other.sessions_reset,
        )

    def __str__(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{self.sessions_reset} session(s) reset"
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


def _write_flow(definition: FlowDefinition) -> tuple[str, Flow]:
    """Create or update one flow's rows in place; returns ("created"|"updated"|"unchanged", flow)."""
    flow = Flow.objects.select_for_update().filter(name=definition.name).first()
    if flow is not None:
        current = flow.to_definition()
        if current == definition and list(current.steps) == list(definition.steps):
            return "unchanged", flow
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


def import_flow_document(doc: Any, *, source: str = "") -> ImportSummary:
    """Validate ``doc`` completely, then create/update its flows in one transaction."""
    summary = ImportSummary()
    with transaction.atomic():
        definitions = validate_flow_document(doc, source=source)
        for definition in definitions:
            outcome, flow = _write_flow(definition)
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


def import_flow_files(paths: Iterable[Path | str]) -> ImportSummary:
    """Import several files all-or-nothing: one bad file and nothing from any file is written."""
    summary = ImportSummary()
    with transaction.atomic():
        for path in map(Path, paths):
            summary += import_flow_document(_read_document(path), source=path.name)
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


def seed_development_data() -> str:
    """Load the shipped flows (``flows/default_flows/*.json``); running it again changes nothing."""
    return str(import_flow_files(default_flow_paths()))
