"""Flow definitions: the typed records the engine runs, and the JSON document format.

A flow is stored in the database (Flow / FlowStep / FlowTransition rows) and exported or
imported as a JSON document::

    {"version": 1, "flows": [{
        "name": "profile", "description": "...", "active": true,
        "trigger_keywords": ["profile"],
        "steps": [{"name": "ask_name", "type": "question", "entry": true, "config": {...}}],
        "transitions": [{"from": "ask_name", "to": "ask_email", "order": 0,
                         "condition": {"type": "always"}}]}]}

The dataclasses mirror those rows one-to-one (a step's ``config`` and a transition's
``condition`` are JSON columns) so the Django layer maps rows <-> records without logic.
Validation collects *every* problem, each with the path of the field at fault
(``flows[0].steps[2].config.expect.pattern: invalid regular expression: ...``), because an
operator fixing an import wants the whole list at once, not one error per attempt.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from flows.conditions import (
    MESSAGE_TYPES,
    ConditionType,
    check_condition,
    normalize_text,
)
from flows.templating import check_template, has_placeholders
from flows.validators import (
    MEDIA_TYPES,
    ReplyType,
    check_expectation,
    choices_from_spec,
    normalize_expectation,
)
from meta_integration.outbound import OutboundValidationError, build_message

__all__ = [
    "DOCUMENT_VERSION",
    "RESERVED_VARIABLES",
    "ActionOperation",
    "FieldError",
    "FlowDefinition",
    "FlowValidationError",
    "MessageType",
    "OnMaxRetries",
    "StepDefinition",
    "StepType",
    "TransitionDefinition",
    "flow_to_document",
    "freeze",
    "parse_flow_document",
    "thaw",
    "validate_condition",
    "validate_flow",
    "validate_message_spec",
    "validate_step_config",
]

DOCUMENT_VERSION = 1
"""The only document ``version`` this module reads and writes."""

RESERVED_VARIABLES = frozenset({"contact", "inbound"})
"""Names the engine puts in the template context itself; flows may not overwrite them."""

_VARIABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


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


class OnMaxRetries(StrEnum):
    """Special targets of a question's ``on_max_retries`` besides a step name."""

    END = "end"
    HANDOVER = "handover"


class MessageType(StrEnum):
    """Outbound message spec types (the contract shared with meta_integration)."""

    TEXT = "text"
    BUTTONS = "buttons"
    LIST = "list"
    MEDIA = "media"
    LOCATION = "location"
    TEMPLATE = "template"


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


# ---------------------------------------------------------------------------------------
# Small checkers (all return lists so every problem is collected)
# ---------------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_keys(
    obj: Mapping[str, Any], path: str, required: Collection[str], optional: Collection[str], what: str
) -> list[FieldError]:
    errors = [FieldError(_join(path, key), "is required") for key in required if key not in obj]
    known = set(required) | set(optional)
    errors += [FieldError(_join(path, str(key)), f"unknown field for {what}") for key in obj if key not in known]
    return errors


def _check_text(value: Any, path: str, *, required: bool = True, max_length: int | None = None) -> list[FieldError]:
    """A templated text field: a string, non-empty if required, valid template syntax, and
    within ``max_length`` when its length is known statically (no placeholders)."""
    if not isinstance(value, str):
        return [FieldError(path, "must be a string")]
    if required and not value.strip():
        return [FieldError(path, "must not be empty")]
    errors = [FieldError(path, f"template error: {problem}") for problem in check_template(value)]
    if max_length is not None and not has_placeholders(value) and len(value) > max_length:
        errors.append(FieldError(path, f"is {len(value)} characters; WhatsApp allows at most {max_length}"))
    return errors


def _check_templates_in(value: Any, path: str) -> list[FieldError]:
    """Template syntax of every string nested in a JSON-like value (action inputs etc.)."""
    if isinstance(value, str):
        return [FieldError(path, f"template error: {problem}") for problem in check_template(value)]
    if isinstance(value, Mapping):
        errors: list[FieldError] = []
        for key, item in value.items():
            errors += _check_templates_in(item, _join(path, str(key)))
        return errors
    if isinstance(value, (list, tuple)):
        errors = []
        for index, item in enumerate(value):
            errors += _check_templates_in(item, f"{path}[{index}]")
        return errors
    return []


def _check_variable_name(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str) or not _VARIABLE.match(value):
        return [FieldError(path, "must be a variable name (a letter, then letters, digits or '_')")]
    if value in RESERVED_VARIABLES:
        return [FieldError(path, f"{value!r} is reserved (the engine provides it)")]
    return []


def _check_unique_ids(ids: list[tuple[str, Any]], what: str) -> list[FieldError]:
    seen: set[Any] = set()
    errors = []
    for path, item_id in ids:
        if isinstance(item_id, str):
            if item_id in seen:
                errors.append(FieldError(path, f"duplicate {what} id {item_id!r}"))
            seen.add(item_id)
    return errors


# ---------------------------------------------------------------------------------------
# Message specs
# ---------------------------------------------------------------------------------------

# WhatsApp Cloud API limits (interactive messages), checked here only where the text is static.
BODY_MAX = 1024
TEXT_BODY_MAX = 4096
HEADER_MAX = 60
FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
LIST_ROW_ID_MAX = 200
LIST_SECTION_TITLE_MAX = 24
CAPTION_MAX = 1024


def _check_buttons(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = _check_keys(spec, path, ("type", "body", "buttons"), ("header", "footer"), "a buttons message")
    if "body" in spec:
        errors += _check_text(spec["body"], _join(path, "body"), max_length=BODY_MAX)
    for key, limit in (("header", HEADER_MAX), ("footer", FOOTER_MAX)):
        if key in spec:
            errors += _check_text(spec[key], _join(path, key), max_length=limit)
    buttons = spec.get("buttons")
    if "buttons" not in spec:
        return errors
    buttons_path = _join(path, "buttons")
    if not isinstance(buttons, (list, tuple)) or not buttons:
        return [*errors, FieldError(buttons_path, "must be a non-empty list")]
    if len(buttons) > BUTTONS_MAX:
        errors.append(FieldError(buttons_path, f"has {len(buttons)} buttons; WhatsApp allows at most {BUTTONS_MAX}"))
    ids: list[tuple[str, Any]] = []
    for index, button in enumerate(buttons):
        button_path = f"{buttons_path}[{index}]"
        if not isinstance(button, Mapping):
            errors.append(FieldError(button_path, 'must be an object {"id": ..., "title": ...}'))
            continue
        errors += _check_keys(button, button_path, ("id", "title"), (), "a button")
        if "id" in button:
            errors += _check_text(button["id"], _join(button_path, "id"), max_length=BUTTON_ID_MAX)
            ids.append((_join(button_path, "id"), button["id"]))
        if "title" in button:
            errors += _check_text(button["title"], _join(button_path, "title"), max_length=BUTTON_TITLE_MAX)
    return errors + _check_unique_ids(ids, "button")


def _check_list(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = _check_keys(spec, path, ("type", "body", "button", "sections"), ("header", "footer"), "a list message")
    if "body" in spec:
        errors += _check_text(spec["body"], _join(path, "body"), max_length=TEXT_BODY_MAX)
    if "button" in spec:
        errors += _check_text(spec["button"], _join(path, "button"), max_length=LIST_BUTTON_MAX)
    for key, limit in (("header", HEADER_MAX), ("footer", FOOTER_MAX)):
        if key in spec:
            errors += _check_text(spec[key], _join(path, key), max_length=limit)
    if "sections" not in spec:
        return errors
    sections = spec["sections"]
    sections_path = _join(path, "sections")
    if not isinstance(sections, (list, tuple)) or not sections:
        return [*errors, FieldError(sections_path, "must be a non-empty list")]
    if len(sections) > LIST_SECTIONS_MAX:
        errors.append(
            FieldError(sections_path, f"has {len(sections)} sections; WhatsApp allows at most {LIST_SECTIONS_MAX}")
        )
    total_rows = 0
    ids: list[tuple[str, Any]] = []
    for s_index, section in enumerate(sections):
        section_path = f"{sections_path}[{s_index}]"
        if not isinstance(section, Mapping):
            errors.append(FieldError(section_path, 'must be an object {"title": ..., "rows": [...]}'))
            continue
        errors += _check_keys(section, section_path, ("rows",), ("title",), "a list section")
        if "title" in section:
            errors += _check_text(section["title"], _join(section_path, "title"), max_length=LIST_SECTION_TITLE_MAX)
        elif len(sections) > 1:
            errors.append(FieldError(_join(section_path, "title"), "is required when a list has several sections"))
        rows = section.get("rows")
        if "rows" not in section:
            continue
        rows_path = _join(section_path, "rows")
        if not isinstance(rows, (list, tuple)) or not rows:
            errors.append(FieldError(rows_path, "must be a non-empty list"))
            continue
        total_rows += len(rows)
        for r_index, row in enumerate(rows):
            row_path = f"{rows_path}[{r_index}]"
            if not isinstance(row, Mapping):
                errors.append(FieldError(row_path, 'must be an object {"id": ..., "title": ...}'))
                continue
            errors += _check_keys(row, row_path, ("id", "title"), ("description",), "a list row")
            if "id" in row:
                errors += _check_text(row["id"], _join(row_path, "id"), max_length=LIST_ROW_ID_MAX)
                ids.append((_join(row_path, "id"), row["id"]))
            if "title" in row:
                errors += _check_text(row["title"], _join(row_path, "title"), max_length=LIST_ROW_TITLE_MAX)
            if "description" in row:
                errors += _check_text(
                    row["description"], _join(row_path, "description"), max_length=LIST_ROW_DESCRIPTION_MAX
                )
    if total_rows > LIST_ROWS_MAX:
        errors.append(
            FieldError(sections_path, f"has {total_rows} rows in total; WhatsApp allows at most {LIST_ROWS_MAX}")
        )
    return errors + _check_unique_ids(ids, "row")


def _check_media(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = _check_keys(spec, path, ("type", "media_type"), ("link", "id", "caption", "filename"), "a media message")
    media_type = spec.get("media_type")
    if "media_type" in spec and media_type not in MEDIA_TYPES:
        errors.append(
            FieldError(
                _join(path, "media_type"), f"unknown media type {media_type!r} (known: {', '.join(MEDIA_TYPES)})"
            )
        )
    sources = [key for key in ("link", "id") if key in spec]
    if len(sources) != 1:
        errors.append(FieldError(path, 'needs exactly one of "link" or "id"'))
    for key in sources:
        errors += _check_text(spec[key], _join(path, key))
    if "caption" in spec:
        if media_type in ("audio", "sticker"):
            errors.append(FieldError(_join(path, "caption"), f"WhatsApp does not allow a caption on {media_type}"))
        else:
            errors += _check_text(spec["caption"], _join(path, "caption"), max_length=CAPTION_MAX)
    if "filename" in spec:
        if media_type != "document":
            errors.append(FieldError(_join(path, "filename"), "only documents have a filename"))
        else:
            errors += _check_text(spec["filename"], _join(path, "filename"))
    return errors


def _check_location(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = _check_keys(spec, path, ("type", "latitude", "longitude"), ("name", "address"), "a location message")
    for key, bound in (("latitude", 90), ("longitude", 180)):
        if key not in spec:
            continue
        value = spec[key]
        if isinstance(value, str) and has_placeholders(value):
            errors += _check_text(value, _join(path, key))
        elif not _is_number(value) or not -bound <= value <= bound:
            errors.append(FieldError(_join(path, key), f"must be a number between -{bound} and {bound}"))
    for key in ("name", "address"):
        if key in spec:
            errors += _check_text(spec[key], _join(path, key))
    return errors


def _check_template_message(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = _check_keys(spec, path, ("type", "name", "language"), ("components", "variables"), "a template message")
    for key in ("name", "language"):
        if key in spec:
            errors += _check_text(spec[key], _join(path, key))
    if "variables" in spec:  # values by slot ("body.1"), rendered, then checked against the synced template
        variables = spec["variables"]
        if "components" in spec:
            errors.append(FieldError(_join(path, "variables"), "give variables or components, not both"))
        if not isinstance(variables, Mapping) or not all(isinstance(v, str) for v in variables.values()):
            errors.append(
                FieldError(_join(path, "variables"), 'must map slots to texts, e.g. {"body.1": "{{ name }}"}'))
        else:
            errors += _check_templates_in(dict(variables), _join(path, "variables"))
    if "components" in spec:
        components = spec["components"]
        if not isinstance(components, (list, tuple)) or not all(isinstance(c, Mapping) for c in components):
            errors.append(FieldError(_join(path, "components"), "must be a list of objects"))
        else:
            errors += _check_templates_in(components, _join(path, "components"))
    return errors


_SPEC_CHECKERS = {
    MessageType.BUTTONS: _check_buttons,
    MessageType.LIST: _check_list,
    MessageType.MEDIA: _check_media,
    MessageType.LOCATION: _check_location,
    MessageType.TEMPLATE: _check_template_message,
}


def validate_message_spec(spec: Any, path: str = "message") -> list[FieldError]:
    """Problems with an outbound message spec (shape, template syntax, static WhatsApp limits).

    Limits are checked only for text with no placeholders; rendered text is checked again by
    the sender. This is a minimal local check, not the authoritative one.
    """
    if not isinstance(spec, Mapping):
        return [FieldError(path, 'must be a message object like {"type": "text", "body": "..."}')]
    raw_type = spec.get("type")
    if raw_type is None:
        return [FieldError(_join(path, "type"), "is required")]
    try:
        kind = MessageType(raw_type)
    except (ValueError, TypeError):
        known = ", ".join(t.value for t in MessageType)
        return [FieldError(_join(path, "type"), f"unknown message type {raw_type!r} (known: {known})")]
    if kind is MessageType.TEXT:
        errors = _check_keys(spec, path, ("type", "body"), ("preview_url",), "a text message")
        if "body" in spec:
            # Long static text is fine: the sender splits it into ordered parts.
            errors += _check_text(spec["body"], _join(path, "body"))
        if "preview_url" in spec and not isinstance(spec["preview_url"], bool):
            errors.append(FieldError(_join(path, "preview_url"), "must be true or false"))
    else:
        errors = _SPEC_CHECKERS[kind](spec, path)
    if not errors:
        errors = _check_with_sender(spec, kind, path)
    return errors


def _check_with_sender(spec: Mapping[str, Any], kind: MessageType, path: str) -> list[FieldError]:
    """Run a fully static spec through ``meta_integration.outbound.build_message``, the
    authoritative WhatsApp limit check, so a flow fails at save time exactly where the sender
    would fail at send time. Templated specs are checked again after rendering, by the sender.
    """
    if has_placeholders(spec) or (kind is MessageType.TEMPLATE and "variables" in spec):
        return []  # a template's variables are checked against the synced template when sent
    if kind is MessageType.TEXT and len(spec.get("body", "")) > TEXT_BODY_MAX:
        return []  # the sender splits long text into ordered parts
    try:
        build_message("0", thaw(spec))
    except OutboundValidationError as exc:
        return [FieldError(path, f"WhatsApp would refuse this message: {exc}")]
    return []


# ---------------------------------------------------------------------------------------
# Step configs and conditions
# ---------------------------------------------------------------------------------------


def validate_condition(condition: Any, path: str = "condition") -> list[FieldError]:
    """Problems with a transition condition (see :mod:`flows.conditions`)."""
    return [
        FieldError(_join(path, field_name), message)
        for field_name, message in check_condition(condition, message_types=MESSAGE_TYPES)
    ]


def _check_optional_message(config: Mapping[str, Any], path: str) -> list[FieldError]:
    if "message" not in config:
        return []
    return validate_message_spec(config["message"], _join(path, "message"))


def _check_question(config: Mapping[str, Any], path: str, step_names: Collection[str] | None) -> list[FieldError]:
    errors = _check_keys(
        config,
        path,
        ("prompt", "expect"),
        ("save_to", "invalid_hint", "max_retries", "on_max_retries"),
        "a question step",
    )
    if "prompt" in config:
        errors += validate_message_spec(config["prompt"], _join(path, "prompt"))
    if "expect" in config:
        expect_path = _join(path, "expect")
        problems = check_expectation(config["expect"])
        errors += [FieldError(_join(expect_path, key), message) for key, message in problems]
        expect = normalize_expectation(config["expect"])
        if not problems and expect.get("type") == ReplyType.CHOICE:
            has_options = (
                bool(choices_from_spec(config.get("prompt"))) or "choices" in expect or "choices_from" in expect
            )
            if not has_options:
                errors.append(
                    FieldError(
                        expect_path,
                        "a choice question needs options: buttons or a list in the prompt, "
                        '"choices", or "choices_from"',
                    )
                )
    if "save_to" in config:
        errors += _check_variable_name(config["save_to"], _join(path, "save_to"))
    if "invalid_hint" in config:
        errors += _check_text(config["invalid_hint"], _join(path, "invalid_hint"))
    if "max_retries" in config and not (_is_int(config["max_retries"]) and config["max_retries"] >= 0):
        errors.append(FieldError(_join(path, "max_retries"), "must be a non-negative integer"))
    if "on_max_retries" in config:
        target = config["on_max_retries"]
        target_path = _join(path, "on_max_retries")
        specials = {item.value for item in OnMaxRetries}
        if not isinstance(target, str) or not target:
            errors.append(FieldError(target_path, 'must be a step name, "handover" or "end"'))
        elif step_names is not None and target not in step_names and target not in specials:
            errors.append(
                FieldError(target_path, f'step {target!r} does not exist (use a step name, "handover" or "end")')
            )
    return errors


def _check_action(config: Mapping[str, Any], path: str, known_actions: Collection[str] | None) -> list[FieldError]:
    operation_path = _join(path, "operation")
    if "operation" not in config:
        return [FieldError(operation_path, "is required")]
    try:
        operation = ActionOperation(config["operation"])
    except (ValueError, TypeError):
        known = ", ".join(op.value for op in ActionOperation)
        return [FieldError(operation_path, f"unknown operation {config['operation']!r} (known: {known})")]
    what = f"a {operation.value} action"
    if operation is ActionOperation.CALL:
        errors = _check_keys(config, path, ("operation", "action"), ("inputs", "save_as"), what)
        if "action" in config:
            name = config["action"]
            if not isinstance(name, str) or not name.strip():
                errors.append(FieldError(_join(path, "action"), "must be a non-empty action name"))
            elif known_actions is not None and name not in known_actions:
                errors.append(FieldError(_join(path, "action"), f"no action named {name!r} is registered"))
        if "inputs" in config:
            if not isinstance(config["inputs"], Mapping):
                errors.append(FieldError(_join(path, "inputs"), "must be an object"))
            else:
                errors += _check_templates_in(config["inputs"], _join(path, "inputs"))
        if "save_as" in config:
            errors += _check_variable_name(config["save_as"], _join(path, "save_as"))
        return errors
    if operation is ActionOperation.SET_VARIABLES:
        errors = _check_keys(config, path, ("operation", "values"), (), what)
        values = config.get("values")
        if "values" in config:
            if not isinstance(values, Mapping) or not values:
                errors.append(FieldError(_join(path, "values"), "must be a non-empty object"))
            else:
                for key, value in values.items():
                    errors += _check_variable_name(key, _join(_join(path, "values"), str(key)))
                    errors += _check_templates_in(value, _join(_join(path, "values"), str(key)))
        return errors
    if operation is ActionOperation.UPDATE_CONTACT:
        errors = _check_keys(config, path, ("operation", "fields"), (), what)
        fields = config.get("fields")
        if "fields" in config:
            if not isinstance(fields, Mapping) or not fields:
                errors.append(FieldError(_join(path, "fields"), "must be a non-empty object"))
            else:
                for key, value in fields.items():
                    key_path = _join(_join(path, "fields"), str(key))
                    if not isinstance(key, str) or not _VARIABLE.match(key):
                        errors.append(FieldError(key_path, "must be a contact field name"))
                    elif key == "wa_id":
                        errors.append(FieldError(key_path, "wa_id identifies the contact and cannot be changed"))
                    errors += _check_templates_in(value, key_path)
        return errors
    errors = _check_keys(config, path, ("operation", "flow"), ("variables",), what)
    if "flow" in config:
        errors += _check_text(config["flow"], _join(path, "flow"))
    if "variables" in config:
        variables = config["variables"]
        if not isinstance(variables, Mapping):
            errors.append(FieldError(_join(path, "variables"), "must be an object"))
        else:
            for key, value in variables.items():
                errors += _check_variable_name(key, _join(_join(path, "variables"), str(key)))
                errors += _check_templates_in(value, _join(_join(path, "variables"), str(key)))
    return errors


def validate_step_config(
    step_type: StepType | str,
    config: Any,
    *,
    path: str = "config",
    step_names: Collection[str] | None = None,
    known_actions: Collection[str] | None = None,
) -> list[FieldError]:
    """Problems with one step's config, e.g. for a Django model's ``clean()``.

    ``step_names`` (the flow's steps) enables the ``on_max_retries`` target check;
    ``known_actions`` (registered action names) enables the ``call`` target check.
    """
    try:
        kind = StepType(step_type)
    except (ValueError, TypeError):
        known = ", ".join(t.value for t in StepType)
        return [FieldError("type", f"unknown step type {step_type!r} (known: {known})")]
    if not isinstance(config, Mapping):
        return [FieldError(path, "must be an object")]
    if kind is StepType.SEND_MESSAGE:
        errors = _check_keys(config, path, ("message",), (), "a send_message step")
        return errors + _check_optional_message(config, path)
    if kind is StepType.QUESTION:
        return _check_question(config, path, step_names)
    if kind is StepType.ACTION:
        return _check_action(config, path, known_actions)
    what = "a human_handover step" if kind is StepType.HUMAN_HANDOVER else "an end_flow step"
    return _check_keys(config, path, (), ("message",), what) + _check_optional_message(config, path)


# ---------------------------------------------------------------------------------------
# Whole flows (document form)
# ---------------------------------------------------------------------------------------

_FLOW_REQUIRED = ("name", "steps")
_FLOW_OPTIONAL = ("description", "active", "trigger_keywords", "transitions")
_STEP_REQUIRED = ("name", "type")
_STEP_OPTIONAL = ("entry", "config")
_TRANSITION_REQUIRED = ("from", "to")
_TRANSITION_OPTIONAL = ("order", "condition")


def _first_transition(transitions: list[tuple[int, Mapping[str, Any]]], step: str) -> Mapping[str, Any] | None:
    outgoing = [t for _, t in transitions if t.get("from") == step]
    outgoing.sort(key=lambda t: t.get("order", 0) if _is_int(t.get("order", 0)) else 0)
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
    errors = _check_keys(raw, path, _FLOW_REQUIRED, _FLOW_OPTIONAL, "a flow")
    if "name" in raw and (not isinstance(raw["name"], str) or not raw["name"].strip()):
        errors.append(FieldError(_join(path, "name"), "must be a non-empty string"))
    elif isinstance(raw.get("name"), str) and raw["name"] != raw["name"].strip():
        errors.append(FieldError(_join(path, "name"), "must not start or end with spaces"))
    if "description" in raw and not isinstance(raw["description"], str):
        errors.append(FieldError(_join(path, "description"), "must be a string"))
    if "active" in raw and not isinstance(raw["active"], bool):
        errors.append(FieldError(_join(path, "active"), "must be true or false"))
    if "trigger_keywords" in raw:
        keywords = raw["trigger_keywords"]
        keywords_path = _join(path, "trigger_keywords")
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
    steps_path = _join(path, "steps")
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
            errors += _check_keys(step, step_path, _STEP_REQUIRED, _STEP_OPTIONAL, "a step")
            name = step.get("name")
            if "name" in step:
                if not isinstance(name, str) or not name.strip():
                    errors.append(FieldError(_join(step_path, "name"), "must be a non-empty string"))
                    name = None
                elif name in steps:
                    errors.append(FieldError(_join(step_path, "name"), f"duplicate step name {name!r}"))
                    name = None
            step_type = step.get("type")
            if "type" in step:
                try:
                    step_type = StepType(step_type)
                except (ValueError, TypeError):
                    known = ", ".join(t.value for t in StepType)
                    errors.append(
                        FieldError(_join(step_path, "type"), f"unknown step type {step_type!r} (known: {known})")
                    )
                    step_type = None
            if name is not None:
                steps[name] = (index, step_type)
            entry = step.get("entry", False)
            if not isinstance(entry, bool):
                errors.append(FieldError(_join(step_path, "entry"), "must be true or false"))
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
            step_type, config, path=_join(step_path, "config"), step_names=set(steps), known_actions=known_actions
        )

    # Transitions.
    transitions: list[tuple[int, Mapping[str, Any]]] = []
    if "transitions" in raw:
        raw_transitions = raw["transitions"]
        transitions_path = _join(path, "transitions")
        if not isinstance(raw_transitions, (list, tuple)):
            errors.append(FieldError(transitions_path, "must be a list"))
            raw_transitions = []
        for index, transition in enumerate(raw_transitions):
            t_path = f"{transitions_path}[{index}]"
            if not isinstance(transition, Mapping):
                errors.append(FieldError(t_path, "must be an object"))
                continue
            errors += _check_keys(transition, t_path, _TRANSITION_REQUIRED, _TRANSITION_OPTIONAL, "a transition")
            for key in ("from", "to"):
                if key in transition and transition[key] not in steps:
                    errors.append(FieldError(_join(t_path, key), f"step {transition[key]!r} does not exist"))
            if "order" in transition and not _is_int(transition["order"]):
                errors.append(FieldError(_join(t_path, "order"), "must be an integer"))
            condition = transition.get("condition", {"type": "always"})
            errors += validate_condition(condition, _join(t_path, "condition"))
            source = steps.get(transition.get("from")) if isinstance(transition.get("from"), str) else None
            source_type = source[1] if source else None
            if source_type in (StepType.END_FLOW, StepType.HUMAN_HANDOVER):
                errors.append(
                    FieldError(
                        _join(t_path, "from"), f"{source_type.value} steps end the flow; this transition can never run"
                    )
                )
            elif source_type is StepType.ACTION:
                config = raw_steps[source[0]].get("config", {}) if isinstance(raw_steps[source[0]], Mapping) else {}
                if isinstance(config, Mapping) and config.get("operation") == ActionOperation.START_FLOW:
                    errors.append(
                        FieldError(
                            _join(t_path, "from"), "a start_flow action leaves this flow; this transition can never run"
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
                        _join(t_path, "condition.type"), "answer_valid only applies to transitions from a question step"
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
        errors.append(FieldError(_join(path, "entry_step"), f"step {flow.entry_step!r} does not exist"))
    for key, step in flow.steps.items():
        if key != step.name:
            errors.append(FieldError(_join(path, "steps"), f"key {key!r} does not match step name {step.name!r}"))
    return errors


def parse_flow_document(doc: Any, *, known_actions: Collection[str] | None = None) -> tuple[FlowDefinition, ...]:
    """Parse and validate a ``{"version": 1, "flows": [...]}`` document.

    Raises :class:`FlowValidationError` listing every problem (with paths) if anything is
    wrong; nothing is returned for a partly valid document, so an import is all-or-nothing.
    ``known_actions`` (registered action names), when given, also checks ``call`` targets.
    """
    if not isinstance(doc, Mapping):
        raise FlowValidationError([FieldError("", 'document must be an object {"version": 1, "flows": [...]}')])
    errors = _check_keys(doc, "", ("version", "flows"), (), "a flow document")
    if "version" in doc and (not _is_int(doc["version"]) or doc["version"] != DOCUMENT_VERSION):
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
                    FieldError(_join(path, "name"), f"duplicate flow name {name!r} (also flows[{names[name]}])")
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
