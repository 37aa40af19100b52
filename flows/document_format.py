"""The flow JSON document format: parse and validate a document, validate a whole flow
built from rows, and export flows back to the canonical document::

    {"version": 1, "flows": [{
        "name": "profile", "description": "...", "active": true,
        "trigger_keywords": ["profile"],
        "steps": [{"name": "ask_name", "type": "question", "entry": true, "config": {...}}],
        "transitions": [{"from": "ask_name", "to": "ask_email", "order": 0,
                         "condition": {"type": "always"}}]}]}

Validation collects *every* problem, each with the path of the field at fault
(``flows[0].steps[2].config.expect.pattern: invalid regular expression: ...``), because an
operator fixing an import wants the whole list at once, not one error per attempt.
Importing into the database is :mod:`flows.services.documents`.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from flows.conditions import ConditionType, normalize_text
from flows.definitions import (
    ActionOperation,
    FieldError,
    FlowDefinition,
    FlowValidationError,
    StepDefinition,
    StepType,
    TransitionDefinition,
    thaw,
)
from flows.field_checks import check_keys, is_int, join_path
from flows.step_validation import validate_condition, validate_step_config

__all__ = ["DOCUMENT_VERSION", "flow_to_document", "parse_flow_document", "validate_flow"]

DOCUMENT_VERSION = 1
"""The only document ``version`` this module reads and writes."""

_FLOW_REQUIRED = ("name", "steps")
_FLOW_OPTIONAL = ("description", "active", "trigger_keywords", "transitions")
_STEP_REQUIRED = ("name", "type")
_STEP_OPTIONAL = ("entry", "config")
_TRANSITION_REQUIRED = ("from", "to")
_TRANSITION_OPTIONAL = ("order", "condition")


def _first_transition(transitions: list[tuple[int, Mapping[str, Any]]], step: str) -> Mapping[str, Any] | None:
    outgoing = [t for _, t in transitions if t.get("from") == step]
    outgoing.sort(key=lambda t: t.get("order", 0) if is_int(t.get("order", 0)) else 0)
    return outgoing[0] if outgoing else None


def _check_unconditional_loops(
    steps: dict[str, tuple[int, Any]], transitions: list[tuple[int, Mapping[str, Any]]], path: str
) -> list[FieldError]:
    """A cycle of non-waiting steps joined by first-choice ``always`` transitions would spin
    on every message; refuse it statically (the engine still bounds conditional loops)."""
    waiting = {StepType.QUESTION.value, StepType.END_FLOW.value, StepType.HUMAN_HANDOVER.value}
    reported: set[str] = set()
    errors: list[FieldError] = []
    for start in steps:
        seen: list[str] = []
        current = start
        while current in steps and current not in seen:
            if steps[current][1] in waiting:
                break
            seen.append(current)
            first = _first_transition(transitions, current)
            condition = (first or {}).get("condition", {"type": "always"})
            if first is None or not isinstance(condition, Mapping) or condition.get("type") != "always":
                break
            current = first.get("to")
        else:
            if current in seen and current not in reported:
                cycle = seen[seen.index(current) :]
                reported.update(cycle)
                loop = " -> ".join([*cycle, current])
                errors.append(
                    FieldError(
                        f"{path}.steps[{steps[current][0]}]",
                        f"steps {loop} repeat forever without waiting for a reply",
                    )
                )
    return errors


def _check_flow_dict(raw: Any, path: str, known_actions: Collection[str] | None) -> list[FieldError]:
    if not isinstance(raw, Mapping):
        return [FieldError(path, "must be an object")]
    errors = check_keys(raw, path, _FLOW_REQUIRED, _FLOW_OPTIONAL, "a flow")
    if "name" in raw and (not isinstance(raw["name"], str) or not raw["name"].strip()):
        errors.append(FieldError(join_path(path, "name"), "must be a non-empty string"))
    elif isinstance(raw.get("name"), str) and raw["name"] != raw["name"].strip():
        errors.append(FieldError(join_path(path, "name"), "must not start or end with spaces"))
    if "description" in raw and not isinstance(raw["description"], str):
        errors.append(FieldError(join_path(path, "description"), "must be a string"))
    if "active" in raw and not isinstance(raw["active"], bool):
        errors.append(FieldError(join_path(path, "active"), "must be true or false"))
    if "trigger_keywords" in raw:
        keywords = raw["trigger_keywords"]
        keywords_path = join_path(path, "trigger_keywords")
        if not isinstance(keywords, (list, tuple)):
            errors.append(FieldError(keywords_path, "must be a list of strings"))
        else:
            seen_keywords: set[str] = set()
            for index, keyword in enumerate(keywords):
                keyword_path = f"{keywords_path}[{index}]"
                if not isinstance(keyword, str) or not normalize_text(keyword):
                    errors.append(FieldError(keyword_path, "must be a string with at least one letter or digit"))
                elif normalize_text(keyword) in seen_keywords:
                    errors.append(FieldError(keyword_path, f"duplicate trigger keyword {keyword!r}"))
                else:
                    seen_keywords.add(normalize_text(keyword))

    # Steps: names, types, entry flags.
    steps: dict[str, tuple[int, Any]] = {}  # name -> (index, type)
    raw_steps = raw.get("steps")
    steps_path = join_path(path, "steps")
    entries: list[int] = []
    valid_steps: list[tuple[int, str, StepType, Any]] = []
    if "steps" in raw:
        if not isinstance(raw_steps, (list, tuple)) or not raw_steps:
            errors.append(FieldError(steps_path, "must be a non-empty list of steps"))
            raw_steps = []
        for index, step in enumerate(raw_steps):
            step_path = f"{steps_path}[{index}]"
            if not isinstance(step, Mapping):
                errors.append(FieldError(step_path, "must be an object"))
                continue
            errors += check_keys(step, step_path, _STEP_REQUIRED, _STEP_OPTIONAL, "a step")
            name = step.get("name")
            if "name" in step:
                if not isinstance(name, str) or not name.strip():
                    errors.append(FieldError(join_path(step_path, "name"), "must be a non-empty string"))
                    name = None
                elif name in steps:
                    errors.append(FieldError(join_path(step_path, "name"), f"duplicate step name {name!r}"))
                    name = None
            step_type = step.get("type")
            if "type" in step:
                try:
                    step_type = StepType(step_type)
                except (ValueError, TypeError):
                    known = ", ".join(t.value for t in StepType)
                    errors.append(
                        FieldError(join_path(step_path, "type"), f"unknown step type {step_type!r} (known: {known})")
                    )
                    step_type = None
            if name is not None:
                steps[name] = (index, step_type)
            entry = step.get("entry", False)
            if not isinstance(entry, bool):
                errors.append(FieldError(join_path(step_path, "entry"), "must be true or false"))
            elif entry:
                entries.append(index)
            if isinstance(step_type, StepType):
                valid_steps.append((index, step_path, step_type, step.get("config", {})))
        if raw_steps and not entries:
            errors.append(FieldError(steps_path, 'no entry step: mark exactly one step with "entry": true'))
        elif len(entries) > 1:
            listed = ", ".join(f"steps[{index}]" for index in entries)
            errors.append(FieldError(steps_path, f"{len(entries)} entry steps ({listed}); exactly one is allowed"))

    for _, step_path, step_type, config in valid_steps:
        errors += validate_step_config(
            step_type, config, path=join_path(step_path, "config"), step_names=set(steps), known_actions=known_actions
        )

    # Transitions.
    transitions: list[tuple[int, Mapping[str, Any]]] = []
    if "transitions" in raw:
        raw_transitions = raw["transitions"]
        transitions_path = join_path(path, "transitions")
        if not isinstance(raw_transitions, (list, tuple)):
            errors.append(FieldError(transitions_path, "must be a list"))
            raw_transitions = []
        for index, transition in enumerate(raw_transitions):
            t_path = f"{transitions_path}[{index}]"
            if not isinstance(transition, Mapping):
                errors.append(FieldError(t_path, "must be an object"))
                continue
            errors += check_keys(transition, t_path, _TRANSITION_REQUIRED, _TRANSITION_OPTIONAL, "a transition")
            for key in ("from", "to"):
                if key in transition and transition[key] not in steps:
                    errors.append(FieldError(join_path(t_path, key), f"step {transition[key]!r} does not exist"))
            if "order" in transition and not is_int(transition["order"]):
                errors.append(FieldError(join_path(t_path, "order"), "must be an integer"))
            condition = transition.get("condition", {"type": "always"})
            errors += validate_condition(condition, join_path(t_path, "condition"))
            source = steps.get(transition.get("from")) if isinstance(transition.get("from"), str) else None
            source_type = source[1] if source else None
            if source_type in (StepType.END_FLOW, StepType.HUMAN_HANDOVER):
                errors.append(
                    FieldError(
                        join_path(t_path, "from"),
                        f"{source_type.value} steps end the flow; this transition can never run",
                    )
                )
            elif source_type is StepType.ACTION:
                config = raw_steps[source[0]].get("config", {}) if isinstance(raw_steps[source[0]], Mapping) else {}
                if isinstance(config, Mapping) and config.get("operation") == ActionOperation.START_FLOW:
                    errors.append(
                        FieldError(
                            join_path(t_path, "from"),
                            "a start_flow action leaves this flow; this transition can never run",
                        )
                    )
            if (
                isinstance(condition, Mapping)
                and condition.get("type") == ConditionType.ANSWER_VALID
                and source_type is not None
                and source_type is not StepType.QUESTION
            ):
                errors.append(
                    FieldError(
                        join_path(t_path, "condition.type"),
                        "answer_valid only applies to transitions from a question step",
                    )
                )
            transitions.append((index, transition))

    if not errors:
        errors += _check_unconditional_loops(
            {name: (index, getattr(kind, "value", kind)) for name, (index, kind) in steps.items()}, transitions, path
        )
    return errors


def _build_flow(raw: Mapping[str, Any]) -> FlowDefinition:
    """Build the record from an already validated flow object."""
    steps = {
        step["name"]: StepDefinition(name=step["name"], type=StepType(step["type"]), config=step.get("config", {}))
        for step in raw["steps"]
    }
    entry = next(step["name"] for step in raw["steps"] if step.get("entry"))
    transitions = tuple(
        TransitionDefinition(
            from_step=t["from"],
            to_step=t["to"],
            order=t.get("order", 0),
            condition=t.get("condition", {"type": "always"}),
        )
        for t in raw.get("transitions", ())
    )
    return FlowDefinition(
        name=raw["name"],
        description=raw.get("description", ""),
        active=raw.get("active", True),
        trigger_keywords=tuple(raw.get("trigger_keywords", ())),
        steps=steps,
        transitions=transitions,
        entry_step=entry,
    )


def _flow_dict(flow: FlowDefinition) -> dict[str, Any]:
    return {
        "name": flow.name,
        "description": flow.description,
        "active": flow.active,
        "trigger_keywords": list(flow.trigger_keywords),
        "steps": [
            {
                "name": step.name,
                "type": getattr(step.type, "value", step.type),
                "entry": step.name == flow.entry_step,
                "config": thaw(step.config),
            }
            for step in flow.steps.values()
        ],
        "transitions": [
            {"from": t.from_step, "to": t.to_step, "order": t.order, "condition": thaw(t.condition)}
            for t in flow.transitions
        ],
    }


def validate_flow(
    flow: FlowDefinition, *, path: str = "flow", known_actions: Collection[str] | None = None
) -> list[FieldError]:
    """Every problem with a built definition (e.g. assembled from DB rows before activating).

    Runs the same checks as an import, on the definition's document form, so a flow valid in
    admin is exactly a flow valid in a file.
    """
    errors = _check_flow_dict(_flow_dict(flow), path, known_actions)
    if flow.steps and flow.entry_step not in flow.steps:
        errors.append(FieldError(join_path(path, "entry_step"), f"step {flow.entry_step!r} does not exist"))
    for key, step in flow.steps.items():
        if key != step.name:
            errors.append(FieldError(join_path(path, "steps"), f"key {key!r} does not match step name {step.name!r}"))
    return errors


def parse_flow_document(doc: Any, *, known_actions: Collection[str] | None = None) -> tuple[FlowDefinition, ...]:
    """Parse and validate a ``{"version": 1, "flows": [...]}`` document.

    Raises :class:`FlowValidationError` listing every problem (with paths) if anything is
    wrong; nothing is returned for a partly valid document, so an import is all-or-nothing.
    ``known_actions`` (registered action names), when given, also checks ``call`` targets.
    """
    if not isinstance(doc, Mapping):
        raise FlowValidationError([FieldError("", 'document must be an object {"version": 1, "flows": [...]}')])
    errors = check_keys(doc, "", ("version", "flows"), (), "a flow document")
    if "version" in doc and (not is_int(doc["version"]) or doc["version"] != DOCUMENT_VERSION):
        errors.append(FieldError("version", f"unsupported version {doc['version']!r} (expected {DOCUMENT_VERSION})"))
    raw_flows = doc.get("flows", [])
    if not isinstance(raw_flows, (list, tuple)):
        errors.append(FieldError("flows", "must be a list of flows"))
        raw_flows = []
    names: dict[str, int] = {}
    triggers: dict[str, str] = {}
    for index, raw in enumerate(raw_flows):
        path = f"flows[{index}]"
        errors += _check_flow_dict(raw, path, known_actions)
        if not isinstance(raw, Mapping):
            continue
        name = raw.get("name")
        if isinstance(name, str):
            if name in names:
                errors.append(
                    FieldError(join_path(path, "name"), f"duplicate flow name {name!r} (also flows[{names[name]}])")
                )
            else:
                names[name] = index
        keywords = raw.get("trigger_keywords", [])
        if raw.get("active", True) is True and isinstance(keywords, (list, tuple)):
            for k_index, keyword in enumerate(keywords):
                key = normalize_text(keyword) if isinstance(keyword, str) else ""
                if not key:
                    continue
                if key in triggers and triggers[key] != name:
                    errors.append(
                        FieldError(
                            f"{path}.trigger_keywords[{k_index}]",
                            f"trigger {keyword!r} is already used by active flow {triggers[key]!r}",
                        )
                    )
                triggers.setdefault(key, name)
    if errors:
        raise FlowValidationError(errors)
    return tuple(_build_flow(raw) for raw in raw_flows)


def flow_to_document(flows: Iterable[FlowDefinition]) -> dict[str, Any]:
    """The canonical JSON document for ``flows`` (every key present, plain dicts/lists).

    ``parse_flow_document(flow_to_document(flows)) == flows``, and a canonical document
    survives parse -> export unchanged, so exports diff cleanly against the shipped files.
    """
    return {"version": DOCUMENT_VERSION, "flows": [_flow_dict(flow) for flow in flows]}
