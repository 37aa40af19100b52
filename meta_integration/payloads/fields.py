"""The webhook envelope's constants, :class:`PayloadError`, and the small total field readers
every payload record is built with (each returns a well-typed value or raises PayloadError).

Pure: no Django, no I/O."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from json_shape import brief, expect_list, expect_object

WABA_OBJECT = "whatsapp_business_account"
"""The only ``object`` value a WhatsApp Business Account webhook carries."""

MESSAGES_FIELD = "messages"
"""The webhook field that carries inbound messages, statuses and errors."""

USER_PREFERENCES_FIELD = "user_preferences"
"""The webhook field of a user's marketing-message preference (stop / resume)."""

MARKETING_CATEGORY = "marketing_messages"

WA_ID_RE = re.compile(r"[0-9]{6,15}")
"""A sender's WhatsApp id: the phone number in E.164 digits (at most 15, ITU-T E.164),
no ``+``. Anything else (``<WHATSAPP_USER_PHONE_NUMBER>`` from a copied sample, ``1555abc``)
can never be answered, so such a message is refused at parse time."""

CALLBACK_PREFIX = "msg:"
"""``biz_opaque_callback_data`` of every message this project sends: ``msg:<Message pk>``."""

_CALLBACK_RE = re.compile(r"msg:([1-9][0-9]{0,17})")


class PayloadError(ValueError):
    """The body (or one item in it) is not shaped like a WhatsApp webhook.

    ``reason`` names the offending path, e.g. ``"entry: expected a list, got str"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------
# Small, total helpers: each either returns a well-typed value or raises PayloadError
# (the shape checks themselves are json_shape's, shared with the
# message-body checks and the football feed).
# Booleans are excluded from numbers on purpose (``True`` is an ``int`` in Python).
# --------------------------------------------------------------------------------------


def _error(path: str, reason: str) -> PayloadError:
    return PayloadError(f"{path}: {reason}")


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    return expect_object(value, path, _error)


def _list(value: Any, path: str) -> list[Any]:
    """A JSON list; an absent key (None) is an empty list."""
    return [] if value is None else cast("list[Any]", expect_list(value, path, _error))


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _req_str(data: Mapping[str, Any], key: str, path: str) -> str:
    value = data.get(key)
    if isinstance(value, str) and value:
        return value
    if key not in data:
        raise PayloadError(f"{path}.{key}: missing")
    raise PayloadError(
        f"{path}.{key}: expected a non-empty string, got {brief(value)}"
    )


def _opt_bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdecimal() and len(text) <= 18:
            return int(text)
    return None


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, (int, float)) and not (
        isinstance(value, str) and len(value) <= 40
    ):
        return None
    try:
        number = float(value)
    except (
        ValueError,
        OverflowError,
    ):  # "abc"; an int beyond float range (JSON allows)
        return None
    return number if math.isfinite(number) else None


def _timestamp(value: Any, path: str) -> datetime:
    """Meta sends epoch seconds as a decimal string; accept an int as well."""
    seconds = _int_or_none(value)
    if seconds is None:
        raise PayloadError(f"{path}: expected epoch seconds, got {brief(value)}")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(f"{path}: epoch seconds out of range ({seconds})") from None


def _opt_timestamp(value: Any) -> datetime | None:
    try:
        return None if value is None else _timestamp(value, "")
    except PayloadError:
        return None


def is_wa_id(value: Any) -> bool:
    """True for a WhatsApp user id a reply can be sent to (6 to 15 ASCII digits)."""
    return isinstance(value, str) and WA_ID_RE.fullmatch(value) is not None


def parse_callback_message_id(value: Any) -> int | None:
    """The Message pk named by ``biz_opaque_callback_data`` (``msg:<pk>``), else None."""
    if not isinstance(value, str):
        return None
    match = _CALLBACK_RE.fullmatch(value)
    return int(match.group(1)) if match else None


def _optional_records(
    data: Mapping[str, Any], path: str, notes: list[str], **parsers: Callable[[Any, str], Any]
) -> dict[str, Any]:
    """Parse the optional sub-records present in ``data``; a bad one becomes a note, not a failure."""
    parsed: dict[str, Any] = {}
    for key, parser in parsers.items():
        if data.get(key) is None:
            continue
        try:
            parsed[key] = parser(data[key], f"{path}.{key}")
        except PayloadError as exc:
            notes.append(exc.reason)
    return parsed
