"""The flow engine: one inbound message in, the next conversation state and replies out.

:func:`advance` is a pure function of its arguments. It does no I/O and keeps no state
between calls: the caller loads the contact's :class:`Session` (or None), calls ``advance``,
stores ``result.session`` and sends ``result.replies`` in order. The only way out to the
world is the injected ``actions`` registry (football "list fixtures", "place bet", ...), and
whatever an action does or raises, the engine answers the user and never crashes the task.

The records it takes and returns (:class:`Inbound`, :class:`Session`, :class:`EngineResult`,
:class:`EngineSettings`, the action contract) are in :mod:`flows.engine_types`.

The state between messages is always either "waiting at a question step" or no session, so a
stored session is just (flow, step, variables, retries) and survives a worker restart.

Routing of one inbound message, in order (reactions and system notices are ignored):

1. A stored session idle longer than ``settings.session_timeout`` is dropped and the user
   told so (the expiry job normally does this first; this covers the race).
2. Global commands ("menu", "cancel", "help", "human", ...) win in any state. They must be
   the whole message (case/accent/punctuation-insensitive) or a tapped button id, so an
   answer such as "I can't stop now" or "stop@example.com" is never hijacked; and an option
   the waiting choice question itself offers (a button with id "cancel") beats them.
3. With a session, the reply answers the waiting question (validate, save, follow
   transitions; re-prompt or give up after ``max_retries``). A tapped id the question does
   not accept but which is another flow's trigger starts that flow (an older menu button).
4. With no session: a tapped id equal to an active flow's trigger starts it; a tapped id of
   the main menu's options answers the main menu; any other tapped interactive id is a button
   of a conversation that is over. Only if that conversation really timed out
   (``last_session_expired``) is the user told so; a tap on a flow that simply ended is a fresh
   message: its title may name a flow (a trigger keyword), else the main menu is shown.
   Typed text matching a trigger keyword (whole words) starts that flow; anything else gets
   the fallback text and the main menu.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from flows.conditions import (
    INBOUND_CONDITIONS,
    ConditionContext,
    ConditionType,
    evaluate,
    normalize_text,
)
from flows.conditions import keyword_position as _keyword_position
from flows.definitions import (
    RESERVED_VARIABLES,
    ActionOperation,
    FlowDefinition,
    OnMaxRetries,
    StepDefinition,
    StepType,
    TransitionDefinition,
    thaw,
)
from flows.engine_types import (
    ActionCall,
    ActionRegistry,
    ActionResult,
    CommandKind,
    ContactView,
    EngineResult,
    EngineSettings,
    GlobalCommand,
    Inbound,
    Session,
)
from flows.templating import lookup, render, render_spec, render_value
from flows.validators import (
    Choice,
    ReplyType,
    check_reply,
    choices_from_spec,
    normalize_expectation,
    parse_choices,
)

__all__ = [
    "advance",
    "build_context",
]


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def build_context(variables: Mapping[str, Any], contact: ContactView, inbound: Inbound | None = None) -> dict[str, Any]:
    """The template/condition context: flow variables at top level, plus ``contact`` and
    ``inbound`` (reserved names, so a flow variable can never shadow them)."""
    context = {key: value for key, value in variables.items() if key not in RESERVED_VARIABLES}
    context["contact"] = {**dict(contact.fields), "wa_id": contact.wa_id, "name": contact.name}
    if inbound is not None:
        context["inbound"] = {
            "type": inbound.message_type,
            "text": inbound.text,
            "reply_id": inbound.reply_id,
            "reply_title": inbound.reply_title,
        }
    return context


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class _ActionFailed(Exception):
    """Internal: an action step could not complete; the user has been told."""


@dataclass(frozen=True)
class _SwitchFlow:
    flow: str
    variables: dict[str, Any]


# ---------------------------------------------------------------------------------------
# One turn
# ---------------------------------------------------------------------------------------


class _Turn:
    """Mutable accumulator for one ``advance`` call (never escapes it)."""

    def __init__(
        self,
        flows: Mapping[str, FlowDefinition],
        inbound: Inbound,
        contact: ContactView,
        actions: ActionRegistry,
        settings: EngineSettings,
        now: datetime,
        last_session_expired: bool | Callable[[], bool] | None = None,
    ) -> None:
        self.flows = flows
        self._last_session_expired = last_session_expired
        self.inbound = inbound
        self.contact = contact
        self.actions = actions
        self.settings = settings
        self.now = now
        self.replies: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.path: list[str] = []
        self.contact_updates: dict[str, Any] = {}
        self.handover = False
        self.steps_run = 0
        self.told_expired = False

    # -- output -------------------------------------------------------------------------

    def result(self, session: Session | None) -> EngineResult:
        return EngineResult(
            session=session,
            replies=tuple(self.replies),
            contact_updates=dict(self.contact_updates),
            handover=self.handover,
            events=tuple(self.events),
            path=tuple(self.path),
        )

    def context(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        return build_context(variables, self.current_contact(), self.inbound)

    def current_contact(self) -> ContactView:
        """The contact with this turn's updates applied, so later steps template new values."""
        if not self.contact_updates:
            return self.contact
        fields = dict(self.contact.fields)
        name = self.contact.name
        for key, value in self.contact_updates.items():
            if key == "name":
                name = value
            else:
                fields[key] = value
        return ContactView(wa_id=self.contact.wa_id, name=name, fields=fields)

    def _note_render(self, missing: tuple[str, ...], errors: tuple[str, ...]) -> None:
        self.events.extend(f"template_missing:{name}" for name in missing)
        self.events.extend(f"template_error:{error}" for error in errors)

    def say(self, spec: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
        rendered = render_spec(spec, self.context(variables))
        self._note_render(rendered.missing, rendered.errors)
        self.replies.append(rendered.spec)
        return rendered.spec

    def say_text(self, template: str, variables: Mapping[str, Any] | None = None) -> None:
        if not template:
            return
        rendered = render(template, self.context(variables or {}))
        self._note_render(rendered.missing, rendered.errors)
        if rendered.text.strip():
            self.replies.append({"type": "text", "body": rendered.text})

    # -- lookups ------------------------------------------------------------------------

    def active_flow(self, name: str | None) -> FlowDefinition | None:
        flow = self.flows.get(name) if name else None
        if flow is None or not flow.active or flow.entry_step not in flow.steps:
            return None
        return flow

    def flow_for_reply_id(self, reply_id: str | None) -> FlowDefinition | None:
        """An active flow one of whose trigger keywords equals the tapped id."""
        wanted = normalize_text(reply_id)
        if not wanted:
            return None
        for flow in self.flows.values():
            if flow.active and any(normalize_text(k) == wanted for k in flow.trigger_keywords):
                return self.active_flow(flow.name)
        return None

    def flow_for_text(self, text: str | None) -> FlowDefinition | None:
        """The active flow whose trigger keyword appears earliest (whole words) in ``text``."""
        best: tuple[int, int, FlowDefinition] | None = None
        for order, flow in enumerate(self.flows.values()):
            if not flow.active:
                continue
            for keyword in flow.trigger_keywords:
                position = _keyword_position(text, keyword)
                if position is not None and (best is None or (position, order) < best[:2]):
                    best = (position, order, flow)
        return self.active_flow(best[2].name) if best else None

    def global_command(self) -> tuple[str, GlobalCommand] | None:
        candidates = []
        if self.inbound.message_type in ("interactive", "button") and self.inbound.reply_id:
            candidates.append(self.inbound.reply_id)
        if self.inbound.message_type in ("text", "button") and self.inbound.text:
            candidates.append(self.inbound.text)
        for candidate in candidates:
            typed = normalize_text(candidate)
            for word, command in self.settings.global_commands.items():
                if typed and typed == normalize_text(word):
                    return word, command
        return None

    # -- routing ------------------------------------------------------------------------

    def check_session(self, session: Session | None) -> Session | None:
        if session is None:
            return None
        timeout = self.settings.session_timeout
        if timeout is not None and session.updated_at is not None:
            try:
                stale = self.now - session.updated_at > timeout
            except TypeError:  # naive vs aware datetimes: cannot tell, keep the session
                stale = False
            if stale:
                self.events.append(f"session_stale:{session.flow}")
                self.say_text(self.settings.session_expired_text)
                self.told_expired = True
                return None
        flow = self.active_flow(session.flow)
        step = flow.steps.get(session.step) if flow else None
        if step is None or step.type is not StepType.QUESTION or not session.awaiting_reply:
            # The flow was edited or deactivated under a live session: start afresh.
            self.events.append(f"session_invalid:{session.flow}.{session.step}")
            return None
        return session

    def run_command(self, word: str, command: GlobalCommand, session: Session | None) -> EngineResult:
        self.events.append(f"global_command:{word}")
        if command.kind is CommandKind.START_FLOW:
            if session is not None:
                self.events.append(f"flow_abandoned:{session.flow}")
            return self.start_or_fallback(command.flow or self.settings.main_menu_flow)
        if session is not None:
            self.events.append(f"flow_cancelled:{session.flow}")
        if command.kind is CommandKind.HANDOVER:
            self.say_text(command.text or self.settings.handover_text)
            self.handover = True
            self.events.append("handover")
            return self.result(None)
        self.say_text(command.text or "")
        return self.result(None)

    def route_idle(self) -> EngineResult:
        inbound = self.inbound
        if inbound.reply_id and inbound.message_type in ("interactive", "button"):
            flow = self.flow_for_reply_id(inbound.reply_id)
            if flow is not None:
                return self.start(flow)
            menu_session = self.menu_session_for(inbound.reply_id)
            if menu_session is not None:
                self.events.append("menu_reply")
                return self.answer(menu_session)
            if inbound.message_type == "interactive":
                # A button from a message we sent earlier, whose session has gone.
                if self.told_expired or self.last_session_expired():
                    self.events.append("session_expired_reply")
                    if not self.told_expired:
                        self.say_text(self.settings.session_expired_text)
                    return self.start_main_menu()
                # The flow ended normally: the tap is a fresh message (its title may be a trigger).
                self.events.append("finished_session_reply")
                flow = self.flow_for_text(inbound.reply_title)
                if flow is not None:
                    return self.start(flow)
                self.say_text(self.settings.finished_reply_text)
                return self.start_main_menu()
        flow = self.flow_for_text(inbound.text) if inbound.message_type in ("text", "button") else None
        if flow is not None:
            return self.start(flow)
        self.events.append("fallback")
        if not self.told_expired:
            self.say_text(self.settings.fallback_text)
        return self.start_main_menu()

    def last_session_expired(self) -> bool:
        """Whether the contact's previous conversation ended by the idle timeout (rather than
        by its flow ending). Asked only for a tapped button with no session; unknown (None)
        counts as expired, the answer before the caller could tell."""
        known = self._last_session_expired
        if callable(known):
            known = self._last_session_expired = bool(known())
        return True if known is None else known

    def menu_session_for(self, reply_id: str) -> Session | None:
        """A session waiting at the main menu's entry question, if ``reply_id`` is one of its
        options: menu buttons keep working after the menu's session expired."""
        menu = self.active_flow(self.settings.main_menu_flow)
        if menu is None:
            return None
        entry = menu.steps[menu.entry_step]
        if entry.type is not StepType.QUESTION:
            return None
        if reply_id not in {choice.id for choice in self.question_choices(entry, {})}:
            return None
        return Session(
            flow=menu.name, step=entry.name, variables={}, retries=0, awaiting_reply=True, updated_at=self.now
        )

    # -- flows --------------------------------------------------------------------------

    def start(self, flow: FlowDefinition, variables: Mapping[str, Any] | None = None) -> EngineResult:
        self.events.append(f"flow_started:{flow.name}")
        return self.run(flow, flow.entry_step, dict(variables or {}))

    def start_or_fallback(self, name: str, variables: Mapping[str, Any] | None = None) -> EngineResult:
        flow = self.active_flow(name)
        if flow is not None:
            return self.start(flow, variables)
        self.events.append(f"flow_unavailable:{name}")
        self.say_text(self.settings.unavailable_text)
        if name == self.settings.main_menu_flow:
            return self.result(None)
        return self.start_main_menu()

    def start_main_menu(self) -> EngineResult:
        menu = self.active_flow(self.settings.main_menu_flow)
        if menu is None:
            self.events.append(f"flow_unavailable:{self.settings.main_menu_flow}")
            if not self.replies:
                self.say_text(self.settings.fallback_text)
            return self.result(None)
        return self.start(menu)

    def end(self, flow: FlowDefinition) -> EngineResult:
        self.events.append(f"flow_ended:{flow.name}")
        return self.result(None)

    def waiting(
        self, flow: FlowDefinition, step: StepDefinition, variables: dict[str, Any], retries: int
    ) -> EngineResult:
        session = Session(
            flow=flow.name,
            step=step.name,
            variables=variables,
            retries=retries,
            awaiting_reply=True,
            updated_at=self.now,
        )
        return self.result(session)

    def note_transition(self, flow: FlowDefinition, step: StepDefinition, transition: TransitionDefinition) -> None:
        condition = transition.condition
        details = ", ".join(f"{key}={value}" for key, value in condition.items() if key != "type")
        label = str(condition.get("type", "always")) + (f": {details}" if details else "")
        self.path.append(f"transition {flow.name}.{step.name} -> {transition.to_step} ({label})")

    def next_transition(
        self,
        flow: FlowDefinition,
        step: StepDefinition,
        variables: Mapping[str, Any],
        *,
        answer_valid: bool | None = None,
        reply_id: str | None = None,
    ) -> TransitionDefinition | None:
        inbound = self.inbound
        condition_context = ConditionContext(
            text=inbound.text if inbound.text is not None else inbound.reply_title,
            reply_id=reply_id if reply_id is not None else inbound.reply_id,
            message_type=inbound.message_type,
            variables=self.context(variables),
            answer_valid=answer_valid,
        )
        for transition in flow.transitions_from(step.name):
            kind = transition.condition.get("type", ConditionType.ALWAYS)
            if answer_valid is False and kind not in INBOUND_CONDITIONS:
                continue
            if evaluate(transition.condition, condition_context):
                return transition
        return None

    def run(self, flow: FlowDefinition, step_name: str, variables: dict[str, Any]) -> EngineResult:
        """Execute steps from ``step_name`` until one waits for a reply or the flow ends."""
        while True:
            if self.steps_run >= self.settings.max_auto_steps:
                self.events.append(f"loop_limit:{flow.name}.{step_name}")
                self.say_text(self.settings.loop_text)
                return self.result(None)
            self.steps_run += 1
            step = flow.steps.get(step_name)
            if step is None:
                self.events.append(f"step_missing:{flow.name}.{step_name}")
                self.say_text(self.settings.error_text)
                return self.result(None)
            self.path.append(f"step {flow.name}.{step.name} ({step.type.value})")
            config = step.config

            if step.type is StepType.QUESTION:
                self.say(config["prompt"], variables)
                return self.waiting(flow, step, variables, retries=0)
            if step.type is StepType.END_FLOW:
                if "message" in config:
                    self.say(config["message"], variables)
                return self.end(flow)
            if step.type is StepType.HUMAN_HANDOVER:
                if "message" in config:
                    self.say(config["message"], variables)
                else:
                    self.say_text(self.settings.handover_text, variables)
                self.handover = True
                self.events.append(f"handover:{flow.name}")
                return self.result(None)
            if step.type is StepType.SEND_MESSAGE:
                self.say(config["message"], variables)
            elif step.type is StepType.ACTION:
                try:
                    switch = self.run_action(flow, step, variables)
                except _ActionFailed:
                    return self.result(None)
                if switch is not None:
                    target = self.active_flow(switch.flow)
                    if target is None:
                        self.events.append(f"flow_unavailable:{switch.flow}")
                        self.say_text(self.settings.unavailable_text, variables)
                        if switch.flow == self.settings.main_menu_flow:
                            return self.result(None)
                        return self.start_main_menu()
                    self.events.append(f"flow_switched:{flow.name}->{target.name}")
                    self.events.append(f"flow_started:{target.name}")
                    flow, step_name, variables = target, target.entry_step, switch.variables
                    continue

            transition = self.next_transition(flow, step, variables)
            if transition is None:
                if flow.transitions_from(step.name):
                    self.events.append(f"no_transition:{flow.name}.{step.name}")
                return self.end(flow)
            self.note_transition(flow, step, transition)
            step_name = transition.to_step

    # -- questions ----------------------------------------------------------------------

    def question_choices(self, step: StepDefinition, variables: Mapping[str, Any]) -> list[Choice]:
        config = step.config
        expect = normalize_expectation(config.get("expect"))
        context = self.context(variables)
        prompt = render_spec(config.get("prompt", {}), context).spec
        choices = list(choices_from_spec(prompt))
        choices += parse_choices(render_value(expect.get("choices", ()), context).value)
        if expect.get("choices_from"):
            found, value = lookup(context, expect["choices_from"])
            if found:
                choices += parse_choices(value)
        return choices

    def offered_choice(self, session: Session) -> bool:
        """True if the waiting question is a choice that explicitly offers this reply (a
        "Cancel bet" button with id "cancel"): the flow author's option beats a global word."""
        step = self.flows[session.flow].steps[session.step]
        expect = normalize_expectation(step.config.get("expect"))
        if expect.get("type") != ReplyType.CHOICE:
            return False
        choices = self.question_choices(step, session.variables)
        return check_reply(expect, self.inbound, choices=choices).ok

    def answer(self, session: Session) -> EngineResult:
        flow = self.flows[session.flow]
        step = flow.steps[session.step]
        config = step.config
        variables = thaw(session.variables)
        expect = normalize_expectation(config.get("expect"))
        choices = self.question_choices(step, variables) if expect.get("type") == ReplyType.CHOICE else []
        check = check_reply(expect, self.inbound, choices=choices)
        self.path.append(f"answer {flow.name}.{step.name}: {'valid' if check.ok else 'invalid'}")

        if check.ok:
            if config.get("save_to"):
                variables[config["save_to"]] = check.value
            chosen = check.value if expect.get("type") == ReplyType.CHOICE else None
            transition = self.next_transition(flow, step, variables, answer_valid=True, reply_id=chosen)
            if transition is None:
                if flow.transitions_from(step.name):
                    self.events.append(f"no_transition:{flow.name}.{step.name}")
                return self.end(flow)
            self.note_transition(flow, step, transition)
            return self.run(flow, transition.to_step, variables)

        transition = self.next_transition(flow, step, variables, answer_valid=False)
        if transition is not None:
            self.note_transition(flow, step, transition)
            return self.run(flow, transition.to_step, variables)
        if self.inbound.message_type in ("interactive", "button"):
            other = self.flow_for_reply_id(self.inbound.reply_id)
            if other is not None:
                self.events.append(f"flow_switched:{flow.name}->{other.name}")
                return self.start(other)

        self.events.append(f"answer_invalid:{flow.name}.{step.name}")
        max_retries = config.get("max_retries", self.settings.default_max_retries)
        if session.retries >= max_retries:
            self.events.append(f"max_retries:{flow.name}.{step.name}")
            return self.give_up(flow, config.get("on_max_retries", OnMaxRetries.END), variables)
        self.say_text(config.get("invalid_hint") or check.hint, variables)
        self.say(config["prompt"], variables)
        return self.waiting(flow, step, variables, retries=session.retries + 1)

    def give_up(self, flow: FlowDefinition, target: str, variables: dict[str, Any]) -> EngineResult:
        if target in flow.steps:
            return self.run(flow, target, variables)
        if target == OnMaxRetries.HANDOVER:
            self.say_text(self.settings.handover_text, variables)
            self.handover = True
            self.events.append(f"handover:{flow.name}")
            return self.result(None)
        self.say_text(self.settings.gave_up_text, variables)
        return self.end(flow)

    # -- actions ------------------------------------------------------------------------

    def fail(self, event: str, variables: Mapping[str, Any]) -> _ActionFailed:
        self.events.append(event)
        self.say_text(self.settings.error_text, variables)
        return _ActionFailed(event)

    def run_action(self, flow: FlowDefinition, step: StepDefinition, variables: dict[str, Any]) -> _SwitchFlow | None:
        """Run an action step, updating ``variables`` in place; raise _ActionFailed after
        telling the user if it cannot complete."""
        config = step.config
        context = self.context(variables)
        operation = config.get("operation")

        if operation == ActionOperation.SET_VARIABLES:
            rendered = render_value(config["values"], context)
            self._note_render(rendered.missing, rendered.errors)
            variables.update(rendered.value)
            return None

        if operation == ActionOperation.UPDATE_CONTACT:
            for key, template in config["fields"].items():
                rendered = render_value(template, context)
                self._note_render(rendered.missing, rendered.errors)
                if rendered.missing or rendered.errors or rendered.value is None:
                    # Never overwrite a contact field with a blank from a missing variable.
                    self.events.append(f"contact_update_skipped:{key}")
                    continue
                self.contact_updates[key] = rendered.value
            return None

        if operation == ActionOperation.START_FLOW:
            name = render(config["flow"], context).text.strip()
            rendered = render_value(config.get("variables", {}), context)
            self._note_render(rendered.missing, rendered.errors)
            return _SwitchFlow(flow=name, variables=dict(rendered.value))

        if operation != ActionOperation.CALL:
            raise self.fail(f"action_invalid:{flow.name}.{step.name}", variables)

        name = config["action"]
        function = self.actions.get(name)
        if function is None:
            raise self.fail(f"action_missing:{name}", variables)
        inputs = render_value(config.get("inputs", {}), context)
        self._note_render(inputs.missing, inputs.errors)
        call = ActionCall(
            name=name,
            inputs=MappingProxyType(inputs.value),
            variables=MappingProxyType(thaw(variables)),
            contact=self.current_contact(),
            now=self.now,
        )
        try:
            outcome = function(call)
        except Exception as exc:  # noqa: BLE001 - any action failure must become a polite reply
            raise self.fail(f"action_failed:{name}:{type(exc).__name__}", variables) from None
        if outcome is None:
            outcome = ActionResult()
        if not self._valid_action_result(outcome, config.get("save_as")):
            raise self.fail(f"action_bad_result:{name}", variables)
        produced = thaw(outcome.variables)
        if config.get("save_as"):
            variables[config["save_as"]] = produced
        else:
            variables.update(produced)
        self.replies.extend(thaw(reply) for reply in outcome.replies)
        self.contact_updates.update(thaw(outcome.contact_updates))
        self.events.append(f"action_ok:{name}")
        return None

    @staticmethod
    def _valid_action_result(outcome: Any, save_as: str | None) -> bool:
        if not isinstance(outcome, ActionResult):
            return False
        if not isinstance(outcome.variables, Mapping) or not isinstance(outcome.contact_updates, Mapping):
            return False
        if not save_as and any(key in RESERVED_VARIABLES or not isinstance(key, str) for key in outcome.variables):
            return False
        if not isinstance(outcome.replies, (list, tuple)) or not all(
            isinstance(reply, Mapping) and isinstance(reply.get("type"), str) for reply in outcome.replies
        ):
            return False
        return (
            _is_json(thaw(outcome.variables))
            and _is_json(thaw(list(outcome.replies)))
            and _is_json(thaw(outcome.contact_updates))
        )


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def advance(
    *,
    flows: Mapping[str, FlowDefinition],
    session: Session | None,
    inbound: Inbound,
    contact: ContactView,
    actions: ActionRegistry,
    settings: EngineSettings | None = None,
    now: datetime,
    last_session_expired: bool | Callable[[], bool] | None = None,
) -> EngineResult:
    """Process one inbound message and return the new session, replies and side requests.

    ``flows`` maps flow name -> definition (inactive ones included; they are skipped).
    ``last_session_expired`` tells (or, as a callable, answers when asked: only a tapped
    button without a session asks) whether the previous conversation timed out, so a tap on
    a flow that ended normally is not answered "timed out"; None means unknown (timed out).
    Never raises for anything a user or an action can do; the returned ``events`` say what
    happened, for logs and metrics.
    """
    settings = settings or EngineSettings()
    turn = _Turn(flows, inbound, contact, actions, settings, now, last_session_expired)
    if inbound.message_type in settings.ignored_message_types:
        turn.events.append(f"ignored:{inbound.message_type}")
        return turn.result(session)
    session = turn.check_session(session)
    command = turn.global_command()
    if command is not None and not (session is not None and turn.offered_choice(session)):
        return turn.run_command(command[0], command[1], session)
    if session is not None:
        return turn.answer(session)
    return turn.route_idle()
