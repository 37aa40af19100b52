"""Checking the shape of JSON nobody promised: one kit for Meta's webhooks, outbound message
bodies and API-Football pages.

Each checker returns the value typed, or raises the *caller's* error (``error``: a callable
taking the path of the culprit and the reason, e.g. ``OutboundValidationError``), so every
parser keeps its own exception and its callers keep catching it, while the words ("expected
an object, got string", ``entry[0].changes``) are written once.

Pure module: no Django, no I/O. It sits at the top of the tree, outside every package,
because importing anything under ``whatsappcrm_backend`` loads the Celery app and with it
Django, and the fake servers must run as plain processes (tests/test_fake_graph.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["ErrorFactory", "brief", "expect_list", "expect_object", "join_path", "json_kind", "type_name"]

ErrorFactory = Callable[[str, str], Exception]
"""Builds the caller's exception from ``(path, reason)``."""

JSON_TYPE_NAMES: dict[type, str] = {
    dict: "object",
    list: "list",
    tuple: "list",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


def json_kind(value: Any) -> str:
    """The JSON name of ``value``'s type ("object", "string", ...), for error messages."""
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def type_name(value: Any) -> str:
    """The Python name of ``value``'s type ("dict", "str", ...), for error messages."""
    return type(value).__name__


def brief(value: Any, limit: int = 60) -> str:
    """repr() for error messages, cut so a huge value cannot flood a log line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def join_path(prefix: str, key: str | int) -> str:
    """``prefix.key`` or ``prefix[index]``: the path of a field, as error messages name it."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def expect_object(
    value: Any, path: str, error: ErrorFactory, *, describe: Callable[[Any], str] = json_kind
) -> Mapping[str, Any]:
    """``value`` if it is a JSON object (a Mapping), else ``error(path, ...)`` is raised."""
    if isinstance(value, Mapping):
        return value
    raise error(path, f"expected an object, got {describe(value)}")


def expect_list(
    value: Any,
    path: str,
    error: ErrorFactory,
    *,
    describe: Callable[[Any], str] = json_kind,
    tuples: bool = False,
) -> Sequence[Any]:
    """``value`` if it is a list (or, with ``tuples``, a tuple), else ``error(path, ...)`` is raised."""
    if isinstance(value, list) or (tuples and isinstance(value, tuple)):
        return value
    raise error(path, f"expected a list, got {describe(value)}")
