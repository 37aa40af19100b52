"""The registry of Python actions that flows can call by name, with typed inputs.

Other apps register their actions in ``AppConfig.ready()``::

    register_action(
        "football.list_fixtures", list_fixtures,
        inputs=[ActionInput("league", InputType.INTEGER, required=False), ActionInput("days", InputType.INTEGER)],
        description="Upcoming fixtures as a WhatsApp list",
    )

A flow step ``{"operation": "call", "action": "football.list_fixtures", "inputs": {"days": "{{ days }}"}}``
then calls it. Inputs are declared, not guessed, for two reasons: a flow that names an input the
action does not take (or forgets a required one) is refused when it is saved or imported, and at
run time the rendered values (templates yield strings) are coerced to the declared type before
the action sees them, so ``place_bet`` receives ``Decimal("10.50")``, never ``"10.50"``. A value
that does not coerce raises :class:`ActionInputError`, which the engine turns into its polite
error reply.

Actions run inside the process-message transaction, holding the contact's row lock: keep them
quick and database-only (no HTTP); whatever they write commits or rolls back with the reply.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from flows.definitions import FieldError
from flows.engine_types import ActionCall, ActionResult
from flows.templating import has_placeholders

__all__ = [
    "ActionInput",
    "ActionInputError",
    "ActionRegistrationError",
    "InputType",
    "RegisteredAction",
    "action_names",
    "check_action_inputs",
    "coerce_inputs",
    "get_action",
    "register_action",
    "registry",
    "unregister_action",
]

ActionFunction = Callable[[ActionCall], ActionResult | None]

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
_INPUT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class InputType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"  # money and odds: never a float
    BOOLEAN = "boolean"
    LIST = "list"
    OBJECT = "object"
    ANY = "any"


class ActionRegistrationError(ValueError):
    """A programming error in ``register_action`` (bad name, duplicate, bad input spec)."""


class ActionInputError(ValueError):
    """A rendered input does not fit its declared type; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class ActionInput:
    """One declared input. ``default`` is used when the step does not pass the input."""

    name: str
    type: InputType = InputType.STRING
    required: bool = True
    default: Any = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", InputType(self.type))


@dataclass(frozen=True)
class RegisteredAction:
    name: str
    function: ActionFunction
    inputs: tuple[ActionInput, ...] = ()
    description: str = ""

    def __call__(self, call: ActionCall) -> ActionResult | None:
        """What the engine calls: coerce the inputs, then run the function."""
        coerced = coerce_inputs(self, call.inputs)
        typed = ActionCall(
            name=call.name, inputs=coerced, variables=call.variables, contact=call.contact, now=call.now
        )
        return self.function(typed)


_REGISTRY: dict[str, RegisteredAction] = {}


def register_action(
    name: str,
    function: ActionFunction,
    *,
    inputs: Iterable[ActionInput] = (),
    description: str = "",
) -> RegisteredAction:
    """Make ``function`` callable from flows as ``name`` ("app.verb", lower case).

    Registering the same function again under the same name is a no-op (``ready()`` may run
    more than once in tests); a different function under a taken name is refused, because two
    apps silently fighting over "football.place_bet" is the bug this registry exists to prevent.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ActionRegistrationError(f"action name {name!r} must look like 'app.verb' (lower case, dotted)")
    if not callable(function):
        raise ActionRegistrationError(f"action {name!r}: {function!r} is not callable")
    declared = tuple(inputs)
    seen: set[str] = set()
    for item in declared:
        if not isinstance(item, ActionInput):
            raise ActionRegistrationError(f"action {name!r}: inputs must be ActionInput records, got {item!r}")
        if not _INPUT_NAME.match(item.name):
            raise ActionRegistrationError(f"action {name!r}: input name {item.name!r} is not a valid identifier")
        if item.name in seen:
            raise ActionRegistrationError(f"action {name!r}: input {item.name!r} is declared twice")
        seen.add(item.name)
    action = RegisteredAction(name=name, function=function, inputs=declared, description=description)
    existing = _REGISTRY.get(name)
    if existing is not None:
        if existing.function is function and existing.inputs == declared:
            return existing
        raise ActionRegistrationError(f"action {name!r} is already registered by {existing.function!r}")
    _REGISTRY[name] = action
    return action


def unregister_action(name: str) -> None:
    """Remove an action (for tests that register their own); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def get_action(name: str) -> RegisteredAction | None:
    return _REGISTRY.get(name)


def action_names() -> frozenset[str]:
    """Registered names, for validating ``call`` steps at save/import time."""
    return frozenset(_REGISTRY)


def registry() -> Mapping[str, RegisteredAction]:
    """A read-only view of the registry, in the shape ``engine.advance(actions=...)`` takes."""
    return MappingProxyType(_REGISTRY)


# ---------------------------------------------------------------------------------------
# Inputs: static check (save/import time) and coercion (run time)
# ---------------------------------------------------------------------------------------


def check_action_inputs(name: str, inputs: Any, *, path: str = "config.inputs") -> list[FieldError]:
    """Problems with a ``call`` step's ``inputs`` against the action's declaration.

    Unknown actions are reported by ``step_validation.validate_step_config(known_actions=...)``;
    this adds unknown input names, missing required inputs, and static values of the wrong
    type (templated values are checked when they are rendered).
    """
    action = _REGISTRY.get(name)
    if action is None or not isinstance(inputs, Mapping):
        return []
    declared = {item.name: item for item in action.inputs}
    errors = [
        FieldError(f"{path}.{key}", f"action {name!r} has no input {key!r} (inputs: {', '.join(declared) or 'none'})")
        for key in inputs
        if key not in declared
    ]
    for item in action.inputs:
        if item.name not in inputs:
            if item.required and item.default is None:
                errors.append(FieldError(f"{path}.{item.name}", f"is required by action {name!r}"))
            continue
        value = inputs[item.name]
        if has_placeholders(value):
            continue
        try:
            _coerce(item, value)
        except ActionInputError as exc:
            errors.append(FieldError(f"{path}.{item.name}", str(exc).split(": ", 1)[1]))
    return errors


def coerce_inputs(action: RegisteredAction, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The declared inputs, typed; undeclared keys are dropped, defaults filled in."""
    out: dict[str, Any] = {}
    for item in action.inputs:
        value = inputs.get(item.name)
        if value is None or value == "":
            if item.required and item.default is None:
                raise ActionInputError(item.name, f"is required by action {action.name!r} but was empty")
            out[item.name] = item.default
            continue
        out[item.name] = _coerce(item, value)
    return MappingProxyType(out)


_TRUE = {"true", "yes", "1", "y", "on"}
_FALSE = {"false", "no", "0", "n", "off"}


def _coerce(item: ActionInput, value: Any) -> Any:
    kind = item.type
    if kind is InputType.ANY:
        return value
    if kind is InputType.STRING:
        if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool):
            return str(value)
        raise ActionInputError(item.name, f"expected text, got {type(value).__name__}")
    if kind is InputType.INTEGER:
        if isinstance(value, bool):
            raise ActionInputError(item.name, "expected a whole number, got true/false")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
        raise ActionInputError(item.name, f"expected a whole number, got {value!r}")
    if kind is InputType.DECIMAL:
        if isinstance(value, bool):
            raise ActionInputError(item.name, "expected a number, got true/false")
        try:
            number = Decimal(str(value).strip().replace(",", ".")) if isinstance(value, (str, int, float)) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise ActionInputError(item.name, f"expected a number, got {value!r}")
        return number
    if kind is InputType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ActionInputError(item.name, f"expected true or false, got {value!r}")
    if kind is InputType.LIST:
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ActionInputError(item.name, f"expected a list, got {type(value).__name__}")
    if isinstance(value, Mapping):
        return dict(value)
    raise ActionInputError(item.name, f"expected an object, got {type(value).__name__}")
