"""Flow definitions: the typed records the engine runs, and the JSON document format.

A flow is stored in the database (Flow / FlowStep / FlowTransition rows) and exported or
imported as a JSON document (its shape is shown in :mod:`flows.document_format`).

The dataclasses mirror those rows one-to-one (a step's ``config`` and a transition's
``condition`` are JSON columns) so the Django layer maps rows <-> records without logic.

Where the rest lives: the document format (parse, validate a whole flow, export) in
:mod:`flows.document_format`; each step type's config keys in :mod:`flows.step_validation`;
message specs in :mod:`flows.message_spec_validation`; the shared field checkers in
:mod:`flows.field_checks`. Validation collects *every* problem as a :class:`FieldError`.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "ACTION_OPERATIONS",
    "RESERVED_VARIABLES",
    "STEP_TYPES",
    "ActionOperation",
    "ConfigKeys",
    "FieldError",
    "FlowDefinition",
    "FlowValidationError",
    "OnMaxRetries",
    "StepDefinition",
    "StepType",
    "TransitionDefinition",
    "freeze",
    "thaw",
]

RESERVED_VARIABLES = frozenset({"contact", "inbound"})
"""Names the engine puts in the template context itself; flows may not overwrite them."""


class StepType(StrEnum):
    SEND_MESSAGE = "send_message"
    QUESTION = "question"
    ACTION = "action"
    HUMAN_HANDOVER = "human_handover"
    END_FLOW = "end_flow"


class ActionOperation(StrEnum):
    """What an ``action`` step does."""

    CALL = "call"  # call a registered Python action (football.list_fixtures, ...)
    SET_VARIABLES = "set_variables"
    UPDATE_CONTACT = "update_contact"
    START_FLOW = "start_flow"  # hand the conversation to another flow (menus)


@dataclass(frozen=True)
class ConfigKeys:
    """The keys of a step's ``config`` (or of one action operation's): what validation
    accepts and what the admin's step-type help lists, from this one record."""

    summary: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


STEP_TYPES: Mapping[StepType, ConfigKeys] = MappingProxyType({
    StepType.SEND_MESSAGE: ConfigKeys(
        "Sends a message, then follows the first transition whose condition holds at once.", ("message",)
    ),
    StepType.QUESTION: ConfigKeys(
        "Sends the prompt and waits for the reply; a valid answer is saved to save_to and the "
        "transitions decide what comes next; an invalid one gets invalid_hint and the prompt again, "
        "up to max_retries, then on_max_retries (a step name, \"end\" or \"handover\").",
        ("prompt", "expect"), ("save_to", "invalid_hint", "max_retries", "on_max_retries"),
    ),
    StepType.ACTION: ConfigKeys(
        "Does something without waiting for the user (see the operations below), then follows the "
        "first transition whose condition holds.", ("operation",),
    ),
    StepType.HUMAN_HANDOVER: ConfigKeys(
        "Hands the conversation to an operator (the bot goes quiet until released), with an optional "
        "message; the flow ends here.", (), ("message",),
    ),
    StepType.END_FLOW: ConfigKeys("Ends the flow, with an optional last message.", (), ("message",)),
})  # fmt: skip
"""Every step type: what it does and its config keys (validation and the admin's help)."""

ACTION_OPERATIONS: Mapping[ActionOperation, ConfigKeys] = MappingProxyType({
    ActionOperation.CALL: ConfigKeys(
        "Calls a registered action (e.g. football.list_fixtures) with templated inputs; its variables "
        "are merged into the flow's, or stored under save_as.", ("operation", "action"), ("inputs", "save_as"),
    ),
    ActionOperation.SET_VARIABLES: ConfigKeys("Sets flow variables from templates.", ("operation", "values")),
    ActionOperation.UPDATE_CONTACT: ConfigKeys(
        "Saves fields on the contact (name, email or any attribute) from templates.", ("operation", "fields")
    ),
    ActionOperation.START_FLOW: ConfigKeys(
        "Hands the conversation to another flow, optionally with variables.", ("operation", "flow"), ("variables",)
    ),
})  # fmt: skip
"""Every operation of an ``action`` step: what it does and its config keys."""


class OnMaxRetries(StrEnum):
    """Special targets of a question's ``on_max_retries`` besides a step name."""

    END = "end"
    HANDOVER = "handover"


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One problem, with the dotted/indexed path of the field at fault."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class FlowValidationError(ValueError):
    """A flow document or definition is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        summary = "; ".join(str(error) for error in self.errors)
        super().__init__(f"invalid flow definition ({len(self.errors)} problem(s)): {summary}")


# ---------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------


def freeze(value: Any) -> Any:
    """Deep read-only copy of JSON-like data: dicts -> MappingProxyType, lists -> tuples.

    Flow definitions are shared by every conversation a worker runs; freezing their configs
    makes an accidental mutation in one chat impossible rather than merely unlikely.
    """
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, ready for ``json.dumps`` or a JSONField."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value


@dataclass(frozen=True)
class StepDefinition:
    """One step (a FlowStep row). ``config`` is deep-frozen; use :func:`thaw` to store it."""

    name: str
    type: StepType
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", StepType(self.type))
        object.__setattr__(self, "config", freeze(self.config or {}))


@dataclass(frozen=True)
class TransitionDefinition:
    """An ordered, conditional edge (a FlowTransition row). Lower ``order`` is tried first."""

    from_step: str
    to_step: str
    order: int = 0
    condition: Mapping[str, Any] = field(default_factory=lambda: {"type": "always"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "condition", freeze(self.condition or {"type": "always"}))


@dataclass(frozen=True)
class FlowDefinition:
    """A whole flow (a Flow row with its steps and transitions)."""

    name: str
    description: str = ""
    active: bool = True
    trigger_keywords: tuple[str, ...] = ()
    steps: Mapping[str, StepDefinition] = field(default_factory=dict)
    transitions: tuple[TransitionDefinition, ...] = ()
    entry_step: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "trigger_keywords", tuple(self.trigger_keywords))
        object.__setattr__(self, "steps", MappingProxyType(dict(self.steps)))
        object.__setattr__(self, "transitions", tuple(self.transitions))

    def transitions_from(self, step: str) -> tuple[TransitionDefinition, ...]:
        """Outgoing transitions of ``step`` in evaluation order (``order``, then as stored)."""
        outgoing = [t for t in self.transitions if t.from_step == step]
        return tuple(sorted(outgoing, key=lambda t: t.order))
