"""Small field checkers shared by the flow validators.

Each returns a list of :class:`~flows.definitions.FieldError` (empty when the value is fine)
so the callers collect every problem in one pass. Pure module: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from flows.definitions import RESERVED_VARIABLES, FieldError
from flows.templating import check_template, has_placeholders

VARIABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
"""A flow variable or contact field name: a letter, then letters, digits or ``_``."""


def join_path(path: str, key: str) -> str:
    if not key:
        return path
    if key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_keys(
    obj: Mapping[str, Any], path: str, required: Collection[str], optional: Collection[str], what: str
) -> list[FieldError]:
    errors = [FieldError(join_path(path, key), "is required") for key in required if key not in obj]
    known = set(required) | set(optional)
    errors += [FieldError(join_path(path, str(key)), f"unknown field for {what}") for key in obj if key not in known]
    return errors


def check_text(value: Any, path: str, *, required: bool = True, max_length: int | None = None) -> list[FieldError]:
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


def check_templates_in(value: Any, path: str) -> list[FieldError]:
    """Template syntax of every string nested in a JSON-like value (action inputs etc.)."""
    if isinstance(value, str):
        return [FieldError(path, f"template error: {problem}") for problem in check_template(value)]
    if isinstance(value, Mapping):
        errors: list[FieldError] = []
        for key, item in value.items():
            errors += check_templates_in(item, join_path(path, str(key)))
        return errors
    if isinstance(value, (list, tuple)):
        errors = []
        for index, item in enumerate(value):
            errors += check_templates_in(item, f"{path}[{index}]")
        return errors
    return []


def check_variable_name(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str) or not VARIABLE_NAME.match(value):
        return [FieldError(path, "must be a variable name (a letter, then letters, digits or '_')")]
    if value in RESERVED_VARIABLES:
        return [FieldError(path, f"{value!r} is reserved (the engine provides it)")]
    return []


def check_unique_ids(ids: list[tuple[str, Any]], what: str) -> list[FieldError]:
    seen: set[Any] = set()
    errors = []
    for path, item_id in ids:
        if isinstance(item_id, str):
            if item_id in seen:
                errors.append(FieldError(path, f"duplicate {what} id {item_id!r}"))
            seen.add(item_id)
    return errors
