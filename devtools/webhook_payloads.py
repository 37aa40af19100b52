"""Builders of WhatsApp Cloud API webhook bodies, in exactly the shape Meta POSTs them.

Tests, benchmarks, the fake Graph API (status webhooks) and the developer simulator all need
inbound traffic that looks like Meta's, down to the envelope nesting, string timestamps and
``wamid.`` ids. Hand-written dicts drift from the real shape; these builders are the one place
that shape is written down.

Two levels:

* message builders (``text``, ``button_reply``, ``list_reply``, ``image`` ...) return the
  inner message dict found at ``entry[].changes[].value.messages[]``; ``status`` returns one
  item of ``value.statuses[]``;
* envelope builders wrap them: ``webhook_body`` (one entry, one change), ``change`` and
  ``batch`` (several entries/changes in one POST, as Meta batches under load), and
  ``signed_request`` (raw bytes + headers, signed like Meta signs them).

Pure module: no Django, no I/O. Defaults for ``wamid`` and ``timestamp`` are fresh (random id,
current time) so repeated calls never collide on the ``wamid`` UNIQUE constraint; pass them
explicitly for byte-for-byte reproducible payloads.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from meta_integration.signatures import SIGNATURE_HEADER, sign_body

__all__ = [
    "DEFAULT_DISPLAY_PHONE_NUMBER",
    "DEFAULT_PHONE_NUMBER_ID",
    "DEFAULT_PROFILE_NAME",
    "DEFAULT_WABA_ID",
    "DEFAULT_WA_ID",
    "META_ERRORS",
    "Context",
    "MessageStatus",
    "MetaErrorInfo",
    "PayloadError",
    "audio",
    "batch",
    "button_reply",
    "change",
    "contact_card",
    "contacts_message",
    "document",
    "error_object",
    "image",
    "list_reply",
    "location",
    "meta_error",
    "new_wamid",
    "nfm_reply",
    "order",
    "order_item",
    "reaction",
    "referral_text",
    "serialize",
    "signed_request",
    "status",
    "sticker",
    "system",
    "template_button",
    "text",
    "unsupported",
    "user_preference",
    "user_preferences_change",
    "video",
    "webhook_body",
]

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


@dataclass(frozen=True)
class MetaErrorInfo:
    """How Meta words one error code, and the HTTP status its API answers it with.

    Whether to retry is not decided here: ``outbound.classify_error`` owns that rule.
    """

    code: int
    title: str
    details: str
    http_status: int

    @property
    def message(self) -> str:
        """The ``error.message`` of a Graph API error response: ``(#code) title``."""
        return f"(#{self.code}) {self.title}"


def _errors(*infos: MetaErrorInfo) -> Mapping[int, MetaErrorInfo]:
    return {info.code: info for info in infos}


# Error codes the project handles, worded as Meta's Cloud API words them.
META_ERRORS: Mapping[int, MetaErrorInfo] = _errors(
    MetaErrorInfo(1, "API Unknown", "Invalid request or possible server error.", 500),
    MetaErrorInfo(
        2, "API Service", "Temporary due to downtime or due to being overloaded.", 503
    ),
    MetaErrorInfo(
        4, "API Too Many Calls",
        "The app has reached its API call rate limit.", 429,
    ),
    MetaErrorInfo(
        10, "Permission Denied",
        "Permission is either not granted or has been removed.", 403,
    ),
    MetaErrorInfo(100, "Invalid parameter", "Invalid parameter.", 400),
    MetaErrorInfo(
        190, "Access token has expired",
        "Error validating access token: Session has expired.", 401,
    ),
    MetaErrorInfo(
        368, "Temporarily blocked for policies violations",
        "The WhatsApp Business Account associated with the app has been restricted or "
        "disabled for violating a platform policy.", 403,
    ),
    MetaErrorInfo(
        80007, "Rate limit issues",
        "The WhatsApp Business Account has reached its rate limit.", 429,
    ),
    MetaErrorInfo(
        130429, "Rate limit hit",
        "Cloud API message throughput has been reached.", 429,
    ),
    MetaErrorInfo(
        130472, "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment.",
        400,
    ),
    MetaErrorInfo(
        131000, "Something went wrong",
        "Message failed to send due to an unknown error.", 500,
    ),
    MetaErrorInfo(
        131005, "Access denied",
        "Permission is either not granted or has been removed.", 403,
    ),
    MetaErrorInfo(
        131008, "Required parameter is missing",
        "The request is missing a required parameter.", 400,
    ),
    MetaErrorInfo(
        131009, "Parameter value is not valid",
        "One or more parameter values are invalid.", 400,
    ),
    MetaErrorInfo(
        131016, "Service unavailable",
        "A service is temporarily unavailable.", 503,
    ),
    MetaErrorInfo(
        131021, "Recipient cannot be sender",
        "Sender and recipient phone number is the same.", 400,
    ),
    MetaErrorInfo(131026, "Message undeliverable", "Message Undeliverable.", 400),
    MetaErrorInfo(
        131030, "Recipient phone number not in allowed list",
        "Recipient phone number not in allowed list: Add recipient phone number to "
        "recipient list and try again.", 400,
    ),
    MetaErrorInfo(
        131031, "Account has been locked",
        "The WhatsApp Business Account associated with the app has been restricted or "
        "disabled for violating a platform policy.", 403,
    ),
    MetaErrorInfo(
        131047, "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.", 400,
    ),
    MetaErrorInfo(
        131048, "Spam rate limit hit",
        "Message failed to send because there are restrictions on how many messages can be "
        "sent from this phone number. This may be because too many previous messages were "
        "blocked or flagged as spam.", 400,
    ),
    MetaErrorInfo(
        131049, "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be "
        "delivered.", 400,
    ),
    MetaErrorInfo(
        131051, "Message type unknown", "Message type is currently not supported.", 400
    ),
    MetaErrorInfo(
        131052, "Media download error",
        "Unable to download the media sent by the user.", 400,
    ),
    MetaErrorInfo(
        131053, "Media upload error", "Unable to upload the media used in the message.", 400
    ),
    MetaErrorInfo(
        131056, "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.", 429,
    ),
    MetaErrorInfo(
        132000, "Number of parameters does not match the expected number of params",
        "The number of variable parameter values included in the request did not match the "
        "number of variable parameters defined in the template.", 400,
    ),
    MetaErrorInfo(
        132001, "Template name does not exist in the translation",
        "The template does not exist in the specified language or the template has not "
        "been approved.", 404,
    ),
    MetaErrorInfo(
        132012, "Parameter format does not match format in the created template",
        "Variable parameter values formatted incorrectly: the header's media type or a "
        "parameter's format differs from the template's.", 400,
    ),
    MetaErrorInfo(
        132015, "Template is Paused",
        "Template is paused due to low quality so it cannot be sent in a template message.", 400,
    ),
    MetaErrorInfo(
        132016, "Template is Disabled",
        "Template has been paused too many times due to low quality and is now permanently "
        "disabled.", 400,
    ),
    MetaErrorInfo(
        133010, "Account not registered",
        "The phone number is not registered on the WhatsApp Business Platform.", 400,
    ),
)


def meta_error(code: int) -> MetaErrorInfo:
    """Look up how Meta words ``code``; unknown codes get a generic but well-formed entry.

    Unknown codes are allowed (Meta adds codes all the time and a test may script one we do
    not know yet); they answer HTTP 400 with a neutral title.
    """
    if not isinstance(code, int) or isinstance(code, bool) or code <= 0:
        raise PayloadError("code", f"must be a positive int, got {code!r}")
    return META_ERRORS.get(code) or MetaErrorInfo(code, "Error", f"Error code {code}.", 400)


def error_object(code: int, details: str | None = None) -> dict[str, Any]:
    """One item of a webhook ``errors[]`` array (failed status, unsupported message)."""
    info = meta_error(code)
    return {
        "code": info.code,
        "title": info.title,
        "message": info.title,
        "error_data": {"details": details if details is not None else info.details},
        "href": ERROR_DOCS_URL,
    }


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


# --------------------------------------------------------------------------- messages


def text(
    body: str,
    *,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """A plain text message typed by the user."""
    return _message("text", wa_id, wamid, timestamp, context, {"body": _check_text(body, "body")})


def referral_text(
    body: str,
    *,
    source_url: str = "https://fb.me/3cr4Wqqkk",
    source_id: str = "120212345678900042",
    source_type: str = "ad",
    headline: str = "Chat with us",
    ad_body: str = "Tap to message us on WhatsApp",
    media_type: str = "image",
    image_url: str | None = "https://scontent.xx.fbcdn.net/v/t45.1600-4/ad_image.png",
    video_url: str | None = None,
    thumbnail_url: str | None = None,
    ctwa_clid: str | None = None,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
) -> dict[str, Any]:
    """A text sent from a Click-to-WhatsApp ad: the message carries a ``referral`` object."""
    if source_type not in ("ad", "post"):
        raise PayloadError("source_type", f"must be 'ad' or 'post', got {source_type!r}")
    if media_type not in ("image", "video"):
        raise PayloadError("media_type", f"must be 'image' or 'video', got {media_type!r}")
    referral: dict[str, Any] = {
        "source_url": _check_text(source_url, "source_url"),
        "source_id": _check_text(source_id, "source_id"),
        "source_type": source_type,
        "headline": _check_text(headline, "headline", allow_empty=True),
        "body": _check_text(ad_body, "ad_body", allow_empty=True),
        "media_type": media_type,
    }
    if media_type == "image" and image_url:
        referral["image_url"] = image_url
    if media_type == "video":
        if video_url:
            referral["video_url"] = video_url
        if thumbnail_url:
            referral["thumbnail_url"] = thumbnail_url
    referral["ctwa_clid"] = ctwa_clid or secrets.token_urlsafe(24)
    msg = text(body, wa_id=wa_id, wamid=wamid, timestamp=timestamp)
    return {"referral": referral, **msg}


def button_reply(
    button_id: str,
    title: str,
    *,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg | object = _FRESH,
) -> dict[str, Any]:
    """The user tapped a reply button of an interactive ``button`` message.

    ``context`` defaults to quoting a fresh business wamid, because Meta always includes the
    message that carried the buttons; pass the real one to link them.
    """
    interactive = {
        "type": "button_reply",
        "button_reply": {
            "id": _check_text(button_id, "button_id"),
            "title": _check_text(title, "title"),
        },
    }
    return _message("interactive", wa_id, wamid, timestamp, context, interactive)


def list_reply(
    row_id: str,
    title: str,
    description: str | None = None,
    *,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg | object = _FRESH,
) -> dict[str, Any]:
    """The user picked a row of an interactive ``list`` message (description only if set)."""
    row: dict[str, Any] = {"id": _check_text(row_id, "row_id"), "title": _check_text(title, "title")}
    if description is not None:
        row["description"] = _check_text(description, "description", allow_empty=True)
    interactive = {"type": "list_reply", "list_reply": row}
    return _message("interactive", wa_id, wamid, timestamp, context, interactive)


def nfm_reply(
    response: Mapping[str, Any],
    *,
    flow_token: str | None = None,
    body: str = "Sent",
    name: str = "flow",
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg | object = _FRESH,
) -> dict[str, Any]:
    """A completed WhatsApp Flow: the form answers arrive JSON-encoded in ``response_json``."""
    if not isinstance(response, Mapping):
        raise PayloadError("response", f"must be a mapping of form fields, got {response!r}")
    answers = dict(response)
    if flow_token is not None:
        answers["flow_token"] = _check_text(flow_token, "flow_token")
    interactive = {
        "type": "nfm_reply",
        "nfm_reply": {
            "response_json": json.dumps(answers, separators=(",", ":")),
            "body": _check_text(body, "body"),
            "name": _check_text(name, "name"),
        },
    }
    return _message("interactive", wa_id, wamid, timestamp, context, interactive)


def template_button(
    payload: str,
    text: str,
    *,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg | object = _FRESH,
) -> dict[str, Any]:
    """The user tapped a quick-reply button of a *template* message (``type: button``)."""
    content = {"payload": _check_text(payload, "payload"), "text": _check_text(text, "text")}
    return _message("button", wa_id, wamid, timestamp, context, content)


def location(
    latitude: float,
    longitude: float,
    name: str | None = None,
    address: str | None = None,
    *,
    url: str | None = None,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """A shared location: a pin (lat/lon only) or a named place (name, address, url)."""
    for field, value, limit in (("latitude", latitude, 90), ("longitude", longitude, 180)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PayloadError(field, f"must be a number, got {value!r}")
        if not -limit <= value <= limit:
            raise PayloadError(field, f"must be within ±{limit}, got {value!r}")
    content: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if name is not None:
        content["name"] = _check_text(name, "name")
    if address is not None:
        content["address"] = _check_text(address, "address")
    if url is not None:
        content["url"] = _check_text(url, "url")
    return _message("location", wa_id, wamid, timestamp, context, content)


def _media(
    kind: str,
    media_id: str | None,
    mime_type: str,
    sha256: str | None,
    extra: Mapping[str, Any],
    wa_id: str,
    wamid: str | None,
    timestamp: str | int | None,
    context: ContextArg,
) -> dict[str, Any]:
    if media_id is not None and (not isinstance(media_id, str) or not _DIGITS_RE.match(media_id)):
        raise PayloadError("media_id", f"must be a numeric string, got {media_id!r}")
    if not isinstance(mime_type, str) or "/" not in mime_type:
        raise PayloadError("mime_type", f"must look like 'type/subtype', got {mime_type!r}")
    content: dict[str, Any] = {}
    for key, value in extra.items():
        if value is not None:
            content[key] = value
    content["mime_type"] = mime_type
    content["sha256"] = sha256 if sha256 is not None else _sha256_b64()
    content["id"] = media_id if media_id is not None else _media_id()
    return _message(kind, wa_id, wamid, timestamp, context, content)


def image(
    media_id: str | None = None,
    *,
    caption: str | None = None,
    mime_type: str = "image/jpeg",
    sha256: str | None = None,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """A photo; the bytes are fetched separately via the media ``id``."""
    return _media(
        "image", media_id, mime_type, sha256, {"caption": caption}, wa_id, wamid, timestamp, context
    )


def video(
    media_id: str | None = None,
    *,
    caption: str | None = None,
    mime_type: str = "video/mp4",
    sha256: str | None = None,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """A video clip."""
    return _media(
        "video", media_id, mime_type, sha256, {"caption": caption}, wa_id, wamid, timestamp, context
    )


def audio(
    media_id: str | None = None,
    *,
    voice: bool = True,
    mime_type: str = "audio/ogg; codecs=opus",
    sha256: str | None = None,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """An audio file, or a recorded voice note when ``voice`` (the common case)."""
    msg = _media("audio", media_id, mime_type, sha256, {}, wa_id, wamid, timestamp, context)
    msg["audio"]["voice"] = bool(voice)
    return msg


def document(
    media_id: str | None = None,
    *,
    filename: str = "document.pdf",
    caption: str | None = None,
    mime_type: str = "application/pdf",
    sha256: str | None = None,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """A document (PDF, spreadsheet...) with its original file name."""
    extra = {"caption": caption, "filename": _check_text(filename, "filename")}
    return _media("document", media_id, mime_type, sha256, extra, wa_id, wamid, timestamp, context)


def sticker(
    media_id: str | None = None,
    *,
    animated: bool = False,
    mime_type: str = "image/webp",
    sha256: str | None = None,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """A sticker (always WebP)."""
    msg = _media("sticker", media_id, mime_type, sha256, {}, wa_id, wamid, timestamp, context)
    msg["sticker"]["animated"] = bool(animated)
    return msg


def contact_card(
    formatted_name: str,
    phone: str,
    *,
    wa_id: str | None = None,
    phone_type: str = "CELL",
    first_name: str | None = None,
    last_name: str | None = None,
) -> dict[str, Any]:
    """One vCard-like entry for ``contacts_message`` (a shared address-book contact)."""
    name: dict[str, Any] = {}
    first = first_name if first_name is not None else _check_text(formatted_name, "formatted_name").split(" ")[0]
    name["first_name"] = first
    if last_name is not None:
        name["last_name"] = last_name
    name["formatted_name"] = _check_text(formatted_name, "formatted_name")
    entry: dict[str, Any] = {"phone": _check_text(phone, "phone")}
    if wa_id is not None:
        entry["wa_id"] = _check_wa_id(wa_id, "contact.wa_id")
    entry["type"] = _check_text(phone_type, "phone_type")
    return {"name": name, "phones": [entry]}


def contacts_message(
    cards: Sequence[Mapping[str, Any]],
    *,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """The user shared one or more contacts (build each with ``contact_card``)."""
    if isinstance(cards, (str, bytes, Mapping)) or not cards:
        raise PayloadError("cards", "must be a non-empty sequence of contact cards")
    msg = _message("contacts", wa_id, wamid, timestamp, context, None)
    msg["contacts"] = [dict(card) for card in cards]
    return msg


def reaction(
    message_id: str,
    emoji: str,
    *,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
) -> dict[str, Any]:
    """The user reacted to ``message_id``; ``emoji=""`` is Meta's un-reaction (removal)."""
    content = {
        "message_id": _check_wamid(message_id, "message_id"),
        "emoji": _check_text(emoji, "emoji", allow_empty=True),
    }
    return _message("reaction", wa_id, wamid, timestamp, None, content)


def order_item(
    product_retailer_id: str, quantity: int, item_price: float, currency: str = "USD"
) -> dict[str, Any]:
    """One line of an ``order`` message's ``product_items``."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise PayloadError("quantity", f"must be a positive int, got {quantity!r}")
    if isinstance(item_price, bool) or not isinstance(item_price, (int, float)) or item_price < 0:
        raise PayloadError("item_price", f"must be a non-negative number, got {item_price!r}")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise PayloadError("currency", f"must be an ISO 4217 code like 'USD', got {currency!r}")
    return {
        "product_retailer_id": _check_text(product_retailer_id, "product_retailer_id"),
        "quantity": quantity,
        "item_price": item_price,
        "currency": currency,
    }


def order(
    catalog_id: str,
    product_items: Sequence[Mapping[str, Any]],
    *,
    text: str = "",
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
    context: ContextArg = None,
) -> dict[str, Any]:
    """The user sent a cart from the business catalogue (build items with ``order_item``)."""
    if not isinstance(catalog_id, str) or not _DIGITS_RE.match(catalog_id):
        raise PayloadError("catalog_id", f"must be a numeric string, got {catalog_id!r}")
    if isinstance(product_items, (str, bytes, Mapping)) or not product_items:
        raise PayloadError("product_items", "must be a non-empty sequence of items")
    content = {
        "catalog_id": catalog_id,
        "text": _check_text(text, "text", allow_empty=True),
        "product_items": [dict(item) for item in product_items],
    }
    return _message("order", wa_id, wamid, timestamp, context, content)


def unsupported(
    *,
    code: int = 131051,
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
) -> dict[str, Any]:
    """A message type Cloud API cannot forward (polls, view-once...): only an ``errors[]``."""
    msg = _message("unsupported", wa_id, wamid, timestamp, None, None)
    type_value = msg.pop("type")
    msg["errors"] = [{k: v for k, v in error_object(code).items() if k != "href"}]
    msg["type"] = type_value
    return msg


def system(
    body: str,
    *,
    new_wa_id: str | None = None,
    system_type: str = "user_changed_number",
    wa_id: str = DEFAULT_WA_ID,
    wamid: str | None = None,
    timestamp: str | int | None = None,
) -> dict[str, Any]:
    """A system notice, e.g. the user changed number (``new_wa_id`` is the new number)."""
    allowed = ("user_changed_number", "customer_identity_changed")
    if system_type not in allowed:
        raise PayloadError("system_type", f"must be one of {allowed}, got {system_type!r}")
    content: dict[str, Any] = {"body": _check_text(body, "body")}
    if system_type == "user_changed_number":
        if new_wa_id is None:
            raise PayloadError("new_wa_id", "is required for user_changed_number")
        content["wa_id"] = _check_wa_id(new_wa_id, "new_wa_id")
    content["type"] = system_type
    return _message("system", wa_id, wamid, timestamp, None, content)


# --------------------------------------------------------------------------- statuses


def status(
    wamid: str,
    status: MessageStatus | str,
    recipient_id: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    with_pricing: bool = True,
    *,
    timestamp: str | int | None = None,
    conversation_id: str | None = None,
    category: str = "service",
    biz_opaque_callback_data: str | None = None,
) -> dict[str, Any]:
    """One ``value.statuses[]`` item reporting progress of a message *we* sent.

    ``failed`` carries ``errors[]`` (default: 131026 Message undeliverable) and no pricing,
    as Meta does; the other states carry ``conversation`` and ``pricing`` unless
    ``with_pricing=False`` (Meta omits them for some message kinds).
    """
    try:
        state = MessageStatus(status)
    except ValueError:
        allowed = [s.value for s in MessageStatus]
        raise PayloadError("status", f"must be one of {allowed}, got {status!r}") from None
    if errors is not None and state is not MessageStatus.FAILED:
        raise PayloadError("errors", f"only a failed status carries errors, not {state.value!r}")
    out: dict[str, Any] = {
        "id": _check_wamid(wamid, "wamid"),
        "status": state.value,
        "timestamp": _timestamp(timestamp),
        "recipient_id": _check_wa_id(recipient_id, "recipient_id"),
    }
    if biz_opaque_callback_data is not None:
        out["biz_opaque_callback_data"] = biz_opaque_callback_data
    if state is MessageStatus.FAILED:
        if errors is None:
            errors = [error_object(131026)]
        if isinstance(errors, (str, bytes, Mapping)) or not errors:
            raise PayloadError("errors", "must be a non-empty sequence of error objects")
        out["errors"] = [dict(e) for e in errors]
        return out
    if with_pricing:
        conversation: dict[str, Any] = {"id": conversation_id or secrets.token_hex(16)}
        if state is MessageStatus.SENT:
            conversation["expiration_timestamp"] = str(int(out["timestamp"]) + 24 * 3600)
        conversation["origin"] = {"type": category}
        out["conversation"] = conversation
        out["pricing"] = {
            "billable": category != "service",
            "pricing_model": "PMP",
            "category": category,
            "type": "free_customer_service" if category == "service" else "regular",
        }
    return out


# --------------------------------------------------------------------------- envelopes


def _contacts_for(
    messages: Sequence[Mapping[str, Any]], profile_name: str | Mapping[str, str]
) -> list[dict[str, Any]]:
    """One ``contacts[]`` entry per distinct sender, in first-seen order.

    System notices (number changes) come without a contact entry, as Meta sends them.
    """
    seen: dict[str, dict[str, Any]] = {}
    for msg in messages:
        sender = msg.get("from")
        if msg.get("type") == "system" or not sender or sender in seen:
            continue
        if isinstance(profile_name, Mapping):
            name = profile_name.get(sender, DEFAULT_PROFILE_NAME)
        else:
            name = profile_name
        seen[sender] = {"profile": {"name": name}, "wa_id": sender}
    return list(seen.values())


def change(
    messages: Iterable[Mapping[str, Any]] = (),
    statuses: Iterable[Mapping[str, Any]] = (),
    *,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    profile_name: str | Mapping[str, str] = DEFAULT_PROFILE_NAME,
    errors: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One ``entry[].changes[]`` item (``field: messages``) for one business phone number.

    ``profile_name`` is a single name for every sender, or a ``{wa_id: name}`` mapping.
    """
    msgs = [dict(m) for m in messages]
    stats = [dict(s) for s in statuses]
    errs = [dict(e) for e in errors]
    if not (msgs or stats or errs):
        raise PayloadError("messages", "a change needs at least one message, status or error")
    if not isinstance(phone_number_id, str) or not _DIGITS_RE.match(phone_number_id):
        raise PayloadError("phone_number_id", f"must be a numeric string, got {phone_number_id!r}")
    _check_wa_id(display_phone_number, "display_phone_number")
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    if msgs:
        contacts = _contacts_for(msgs, profile_name)
        if contacts:
            value["contacts"] = contacts
        value["messages"] = msgs
    if stats:
        value["statuses"] = stats
    if errs:
        value["errors"] = errs
    return {"value": value, "field": "messages"}


_PREFERENCE_DETAILS = {
    "stop": "User requested to stop marketing messages",
    "resume": "User requested to resume marketing messages",
}


def user_preference(
    value: str = "stop",
    *,
    wa_id: str = DEFAULT_WA_ID,
    category: str = "marketing_messages",
    timestamp: str | int | None = None,
) -> dict[str, Any]:
    """One ``value.user_preferences[]`` item: the user stopped or resumed marketing messages.
    Meta sends ``timestamp`` as an integer here (not the string of messages and statuses)."""
    _check_wa_id(wa_id, "wa_id")
    return {
        "wa_id": wa_id,
        "detail": _PREFERENCE_DETAILS.get(value, f"User requested to {value} marketing messages"),
        "category": category,
        "value": value,
        "timestamp": int(_timestamp(timestamp)),
    }


def user_preferences_change(
    preferences: Iterable[Mapping[str, Any]],
    *,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    profile_name: str | None = DEFAULT_PROFILE_NAME,
) -> dict[str, Any]:
    """One ``entry[].changes[]`` item of the ``user_preferences`` field; wrap it with ``batch``."""
    items = [dict(p) for p in preferences]
    if not items:
        raise PayloadError("preferences", "a user_preferences change needs at least one preference")
    contacts = []
    for item in items:
        if item.get("wa_id") and item["wa_id"] not in [c["wa_id"] for c in contacts]:
            contacts.append({"wa_id": item["wa_id"], **({"profile": {"name": profile_name}} if profile_name else {})})
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
        "contacts": contacts,
        "user_preferences": items,
    }
    return {"value": value, "field": "user_preferences"}


def webhook_body(
    messages: Iterable[Mapping[str, Any]] = (),
    statuses: Iterable[Mapping[str, Any]] = (),
    *,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    profile_name: str | Mapping[str, str] = DEFAULT_PROFILE_NAME,
    waba_id: str = DEFAULT_WABA_ID,
    errors: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A complete webhook POST body with one entry and one change."""
    one = change(
        messages,
        statuses,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        profile_name=profile_name,
        errors=errors,
    )
    return batch(one, waba_id=waba_id)


def batch(*parts: Mapping[str, Any], waba_id: str = DEFAULT_WABA_ID) -> dict[str, Any]:
    """Merge changes and/or whole bodies into one POST, as Meta batches under load.

    Each part is either a ``change(...)`` (filed under ``waba_id``) or a ``webhook_body(...)``
    (its entries keep their own WABA ids). Changes for the same WABA share one entry, in order.
    """
    if not parts:
        raise PayloadError("parts", "batch needs at least one change or webhook body")
    if not isinstance(waba_id, str) or not _DIGITS_RE.match(waba_id):
        raise PayloadError("waba_id", f"must be a numeric string, got {waba_id!r}")
    entries: dict[str, list[dict[str, Any]]] = {}
    for index, part in enumerate(parts):
        if not isinstance(part, Mapping):
            raise PayloadError(f"parts[{index}]", f"must be a mapping, got {type(part).__name__}")
        if "entry" in part:
            if part.get("object") != "whatsapp_business_account":
                raise PayloadError(f"parts[{index}].object", "must be 'whatsapp_business_account'")
            for entry in part["entry"]:
                entries.setdefault(str(entry["id"]), []).extend(dict(c) for c in entry["changes"])
        elif "value" in part and "field" in part:
            entries.setdefault(waba_id, []).append(dict(part))
        else:
            raise PayloadError(f"parts[{index}]", "must be a change(...) or a webhook_body(...)")
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": wid, "changes": changes} for wid, changes in entries.items()],
    }


def serialize(body: Mapping[str, Any]) -> bytes:
    """Encode a body the way Meta does: compact JSON, non-ASCII escaped (``\\ud83d...``)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signed_request(body: Mapping[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """Raw bytes and headers of Meta's POST: sign exactly the bytes that will be sent."""
    if not isinstance(app_secret, str) or not app_secret:
        raise PayloadError("app_secret", "must be a non-empty string")
    raw = serialize(body)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_body(raw, app_secret),
        "User-Agent": "facebookexternalua",
    }
    return raw, headers
