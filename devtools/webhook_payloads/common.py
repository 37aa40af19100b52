"""Identifiers, checks and ``message.context`` shared by every builder of Meta-shaped webhooks."""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Realistic-looking identifiers for a test business (Meta's ids are long decimal strings).
DEFAULT_WABA_ID = "102290129340398"
DEFAULT_PHONE_NUMBER_ID = "106540352242922"
DEFAULT_DISPLAY_PHONE_NUMBER = "15550783881"
DEFAULT_WA_ID = "263771234567"
DEFAULT_PROFILE_NAME = "Tendai Moyo"

ERROR_DOCS_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

_WA_ID_RE = re.compile(r"^\d{6,15}$")
_DIGITS_RE = re.compile(r"^\d+$")


class PayloadError(ValueError):
    """A builder was given a value Meta could never send; names the offending field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class MessageStatus(StrEnum):
    """Delivery states Meta reports in ``value.statuses[].status``."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# --------------------------------------------------------------------------- identifiers


def new_wamid(wa_id: str = DEFAULT_WA_ID, *, outgoing: bool = False) -> str:
    """A fresh, unique id shaped like Meta's: ``wamid.`` + base64 of a small binary record.

    Real wamids base64-encode the counterpart's number and a 20-hex-digit message id, which
    is why they start ``wamid.HBgM`` for 12-digit numbers. Uniqueness comes from 80 random
    bits, so ids never collide across threads or processes.
    """
    _check_wa_id(wa_id, "wa_id")
    number = wa_id.encode("ascii")
    msg_id = secrets.token_hex(10).upper().encode("ascii")
    direction = b"\x11" if outgoing else b"\x12"
    raw = (
        b"\x1c\x18" + bytes([len(number)]) + number
        + b"\x15\x02\x00" + direction + b"\x18" + bytes([len(msg_id)]) + msg_id + b"\x00"
    )
    return "wamid." + base64.b64encode(raw).decode("ascii")


def _media_id() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


def _sha256_b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


# --------------------------------------------------------------------------- validation


def _check_wa_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not _WA_ID_RE.match(value):
        raise PayloadError(field, f"must be 6-15 digits without '+', got {value!r}")
    return value


def _check_text(value: object, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise PayloadError(field, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        raise PayloadError(field, "must not be empty")
    return value


def _check_wamid(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.startswith("wamid.") or len(value) <= 6:
        raise PayloadError(field, f"must be a 'wamid.' id, got {value!r}")
    return value


def _timestamp(value: str | int | None) -> str:
    """Meta sends epoch seconds as a *string*; accept int for convenience."""
    if value is None:
        return str(int(time.time()))
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PayloadError("timestamp", f"must be epoch seconds (str or int), got {value!r}")
    text_value = str(value)
    if not _DIGITS_RE.match(text_value):
        raise PayloadError("timestamp", f"must be epoch seconds, got {value!r}")
    return text_value


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class Context:
    """``message.context``: what the inbound message replies to, or that it was forwarded.

    Meta sends ``{"from": <business number>, "id": <wamid>}`` for replies (including every
    interactive reply, which quotes the message carrying the buttons) and
    ``{"forwarded": true}`` / ``{"frequently_forwarded": true}`` for forwards.
    """

    reply_to: str | None = None
    from_: str = DEFAULT_DISPLAY_PHONE_NUMBER
    forwarded: bool = False
    frequently_forwarded: bool = False

    def __post_init__(self) -> None:
        if self.reply_to is not None:
            _check_wamid(self.reply_to, "context.reply_to")
        _check_wa_id(self.from_, "context.from")
        if self.reply_to is None and not (self.forwarded or self.frequently_forwarded):
            raise PayloadError("context", "needs reply_to, forwarded or frequently_forwarded")

    @classmethod
    def reply(cls, wamid: str, business_number: str = DEFAULT_DISPLAY_PHONE_NUMBER) -> Context:
        return cls(reply_to=wamid, from_=business_number)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.reply_to is not None:
            out["from"] = self.from_
            out["id"] = self.reply_to
        if self.frequently_forwarded:
            out["frequently_forwarded"] = True
        elif self.forwarded:
            out["forwarded"] = True
        return out


ContextArg = Context | str | None
_FRESH = object()  # sentinel: "quote a fresh business message" for interactive replies


def _context_dict(context: ContextArg | object) -> dict[str, Any] | None:
    if context is None:
        return None
    if context is _FRESH:
        return Context.reply(new_wamid(outgoing=True)).to_dict()
    if isinstance(context, str):
        return Context.reply(context).to_dict()
    if isinstance(context, Context):
        return context.to_dict()
    raise PayloadError("context", f"must be a Context, a wamid string or None, got {context!r}")


def _message(
    msg_type: str,
    wa_id: str,
    wamid: str | None,
    timestamp: str | int | None,
    context: ContextArg | object,
    content: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Assemble a message in Meta's key order: context, from, id, timestamp, type, content."""
    _check_wa_id(wa_id, "wa_id")
    msg: dict[str, Any] = {}
    ctx = _context_dict(context)
    if ctx is not None:
        msg["context"] = ctx
    msg["from"] = wa_id
    msg["id"] = _check_wamid(wamid, "wamid") if wamid is not None else new_wamid(wa_id)
    msg["timestamp"] = _timestamp(timestamp)
    msg["type"] = msg_type
    if content is not None:
        msg[msg_type] = dict(content)
    return msg
