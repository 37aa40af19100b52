"""The field readers every API-Football parser uses, and :class:`FeedError`.

The object/list checks and field paths are ``json_shape``'s (shared with
the webhook parser and the message-body checks); the readers here add the feed's own types.

Each reader checks one value's type and returns it converted, or raises :class:`FeedError`
naming the path of the field at fault (``response[3].fixture.date: ...``), so a bad page is
diagnosable from the log line alone.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from json_shape import expect_list, expect_object, join_path, type_name

_T = TypeVar("_T")


class FeedError(ValueError):
    """A body that is not what API-Football sends. The message names the field and why."""


def _error(path: str, reason: str) -> FeedError:
    return FeedError(f"{path}: {reason}")


def read_mapping(value: Any, path: str) -> Mapping[str, Any]:
    return expect_object(value, path, _error, describe=type_name)


def read_list(value: Any, path: str) -> list[Any]:
    return cast("list[Any]", expect_list(value, path, _error, describe=type_name))


def read_key(obj: Mapping[str, Any], key: str, path: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise FeedError(f"{join_path(path, key)}: missing") from None


def read_int(value: Any, path: str) -> int:
    # bool is an int subclass; a True id is a bug upstream, not an id.
    if isinstance(value, bool):
        raise FeedError(f"{path}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise FeedError(f"{path}: expected an integer, got {value!r}")


def read_opt_int(value: Any, path: str) -> int | None:
    return None if value is None else read_int(value, path)


def read_opt_str(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FeedError(f"{path}: expected a string, got {type(value).__name__}")


def read_str(value: Any, path: str) -> str:
    result = read_opt_str(value, path)
    if result is None:
        raise FeedError(f"{path}: expected a string, got null")
    return result


def read_opt_bool(value: Any, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise FeedError(f"{path}: expected true/false, got {value!r}")


def read_decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool):
        raise FeedError(f"{path}: expected a decimal number, got a boolean")
    try:
        # str() first: Decimal(1.1) would carry the float's binary error into the odds.
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise FeedError(f"{path}: expected a decimal number, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise FeedError(f"{path}: expected a non-negative decimal number, got {value!r}")
    return result


def read_datetime(value: Any, path: str) -> datetime:
    text = read_str(value, path)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise FeedError(f"{path}: expected an ISO 8601 date-time, got {text!r}") from None
    if parsed.tzinfo is None:
        raise FeedError(f"{path}: date-time {text!r} has no UTC offset")
    return parsed.astimezone(UTC)


def read_opt_date(value: Any, path: str) -> date | None:
    if value is None:
        return None
    text = read_str(value, path)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FeedError(f"{path}: expected a YYYY-MM-DD date, got {text!r}") from None


def read_items(
    response: Any, path: str, parse: Callable[[Any, str], _T]
) -> tuple[_T, ...]:
    return tuple(parse(item, join_path(path, i)) for i, item in enumerate(read_list(response, path)))

