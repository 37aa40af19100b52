"""Validation of one step's config (each step type's keys) and of transition conditions,
as used by the models' ``clean()`` and by the document format.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from flows.conditions import MESSAGE_TYPES, check_condition
from flows.definitions import ACTION_OPERATIONS, STEP_TYPES, ActionOperation, FieldError, OnMaxRetries, StepType
from flows.field_checks import (
    VARIABLE_NAME,
    check_keys,
    check_templates_in,
    check_text,
    check_variable_name,
    is_int,
    join_path,
)
from flows.message_spec_validation import validate_message_spec
from flows.validators import ReplyType, check_expectation, choices_from_spec, normalize_expectation

__all__ = ["validate_condition", "validate_step_config"]


def validate_condition(condition: Any, path: str = "condition") -> list[FieldError]:
    """Problems with a transition condition (see :mod:`flows.conditions`)."""
    return [
        FieldError(join_path(path, field_name), message)
        for field_name, message in check_condition(condition, message_types=MESSAGE_TYPES)
    ]


def _check_optional_message(config: Mapping[str, Any], path: str) -> list[FieldError]:
    if "message" not in config:
        return []
    return validate_message_spec(config["message"], join_path(path, "message"))


def _check_question(config: Mapping[str, Any], path: str, step_names: Collection[str] | None) -> list[FieldError]:
    keys = STEP_TYPES[StepType.QUESTION]
    errors = check_keys(config, path, keys.required, keys.optional, "a question step")
    if "prompt" in config:
        errors += validate_message_spec(config["prompt"], join_path(path, "prompt"))
    if "expect" in config:
        expect_path = join_path(path, "expect")
        problems = check_expectation(config["expect"])
        errors += [FieldError(join_path(expect_path, key), message) for key, message in problems]
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
        errors += check_variable_name(config["save_to"], join_path(path, "save_to"))
    if "invalid_hint" in config:
        errors += check_text(config["invalid_hint"], join_path(path, "invalid_hint"))
    if "max_retries" in config and not (is_int(config["max_retries"]) and config["max_retries"] >= 0):
        errors.append(FieldError(join_path(path, "max_retries"), "must be a non-negative integer"))
    if "on_max_retries" in config:
        target = config["on_max_retries"]
        target_path = join_path(path, "on_max_retries")
        specials = {item.value for item in OnMaxRetries}
        if not isinstance(target, str) or not target:
            errors.append(FieldError(target_path, 'must be a step name, "handover" or "end"'))
        elif step_names is not None and target not in step_names and target not in specials:
            errors.append(
                FieldError(target_path, f'step {target!r} does not exist (use a step name, "handover" or "end")')
            )
    return errors


def _check_action(config: Mapping[str, Any], path: str, known_actions: Collection[str] | None) -> list[FieldError]:
    operation_path = join_path(path, "operation")
    if "operation" not in config:
        return [FieldError(operation_path, "is required")]
    try:
        operation = ActionOperation(config["operation"])
    except (ValueError, TypeError):
        known = ", ".join(op.value for op in ActionOperation)
        return [FieldError(operation_path, f"unknown operation {config['operation']!r} (known: {known})")]
    what = f"a {operation.value} action"
    keys = ACTION_OPERATIONS[operation]  # the same records the admin's step-type help lists
    if operation is ActionOperation.CALL:
        errors = check_keys(config, path, keys.required, keys.optional, what)
        if "action" in config:
            name = config["action"]
            if not isinstance(name, str) or not name.strip():
                errors.append(FieldError(join_path(path, "action"), "must be a non-empty action name"))
            elif known_actions is not None and name not in known_actions:
                errors.append(FieldError(join_path(path, "action"), f"no action named {name!r} is registered"))
        if "inputs" in config:
            if not isinstance(config["inputs"], Mapping):
                errors.append(FieldError(join_path(path, "inputs"), "must be an object"))
            else:
                errors += check_templates_in(config["inputs"], join_path(path, "inputs"))
        if "save_as" in config:
            errors += check_variable_name(config["save_as"], join_path(path, "save_as"))
        return errors
    if operation is ActionOperation.SET_VARIABLES:
        errors = check_keys(config, path, keys.required, keys.optional, what)
        values = config.get("values")
        if "values" in config:
            if not isinstance(values, Mapping) or not values:
                errors.append(FieldError(join_path(path, "values"), "must be a non-empty object"))
            else:
                for key, value in values.items():
                    errors += check_variable_name(key, join_path(join_path(path, "values"), str(key)))
                    errors += check_templates_in(value, join_path(join_path(path, "values"), str(key)))
        return errors
    if operation is ActionOperation.UPDATE_CONTACT:
        errors = check_keys(config, path, keys.required, keys.optional, what)
        fields = config.get("fields")
        if "fields" in config:
            if not isinstance(fields, Mapping) or not fields:
                errors.append(FieldError(join_path(path, "fields"), "must be a non-empty object"))
            else:
                for key, value in fields.items():
                    key_path = join_path(join_path(path, "fields"), str(key))
                    if not isinstance(key, str) or not VARIABLE_NAME.match(key):
                        errors.append(FieldError(key_path, "must be a contact field name"))
                    elif key == "wa_id":
                        errors.append(FieldError(key_path, "wa_id identifies the contact and cannot be changed"))
                    errors += check_templates_in(value, key_path)
        return errors
    errors = check_keys(config, path, keys.required, keys.optional, what)
    if "flow" in config:
        errors += check_text(config["flow"], join_path(path, "flow"))
    if "variables" in config:
        variables = config["variables"]
        if not isinstance(variables, Mapping):
            errors.append(FieldError(join_path(path, "variables"), "must be an object"))
        else:
            for key, value in variables.items():
                errors += check_variable_name(key, join_path(join_path(path, "variables"), str(key)))
                errors += check_templates_in(value, join_path(join_path(path, "variables"), str(key)))
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
    if kind is StepType.QUESTION:
        return _check_question(config, path, step_names)
    if kind is StepType.ACTION:
        return _check_action(config, path, known_actions)
    keys = STEP_TYPES[kind]  # send_message, human_handover, end_flow: a message and nothing else
    what = f"an {kind.value} step" if kind.value[0] in "aeiou" else f"a {kind.value} step"
    return check_keys(config, path, keys.required, keys.optional, what) + _check_optional_message(config, path)
