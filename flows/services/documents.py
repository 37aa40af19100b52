"""Flow documents: validate, import and export the JSON files flows are written in.

* **Imports are all-or-nothing and keep conversations.** A document is validated completely
  before anything is written; a changed flow is updated in place, so contacts in the middle of
  it keep their place and variables. A contact whose step was removed (or stopped being a
  question, or whose flow was deactivated) is told the flow changed and starts afresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from flows.actions import action_names, check_action_inputs
from flows.conditions import normalize_text
from flows.definitions import (
    ActionOperation,
    FieldError,
    FlowDefinition,
    FlowValidationError,
    StepType,
    thaw,
)
from flows.document_format import flow_to_document, parse_flow_document
from flows.models import ContactFlowState, Flow, FlowStep, FlowTransition
from flows.services.loading import read_flows
from flows.services.sessions import expire_state

__all__ = [
    "DEFAULT_FLOWS_DIR",
    "ImportSummary",
    "default_flow_paths",
    "export_flow_document",
    "import_flow_document",
    "import_flow_files",
    "validate_flow_document",
]

# The flows shipped with the project (the development seed and ``import_flows --defaults``).
DEFAULT_FLOWS_DIR = Path(__file__).resolve().parent.parent / "default_flows"


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, flow by flow; summaries of several files add up into one."""

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
        told += expire_state(state_id, version, text=settings.FLOW_CHANGED_TEXT)
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
    flows = read_flows().flows
    if names:
        missing = [name for name in names if name not in flows]
        if missing:
            raise LookupError(f"no flow named {', '.join(map(repr, missing))}")
        return flow_to_document(flows[name] for name in names)
    return flow_to_document(flows.values())


def default_flow_paths() -> list[Path]:
    """The shipped flow files, in name order (so an import of them is repeatable)."""
    return sorted(DEFAULT_FLOWS_DIR.glob("*.json"))
