"""Pure parser of WhatsApp Cloud API webhook bodies into typed, immutable records.

Meta POSTs ``{"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes":
[{"field": "messages", "value": {...}}]}]}``; one body can carry several entries, changes,
messages and statuses. The webhook view needs two guarantees from this module:

* A body that is not a WhatsApp webhook at all (not an object, wrong ``object``, no
  ``entry`` list) raises :class:`PayloadError`, so the view can answer 400.
* Anything inside a valid envelope never raises. Meta retries a non-200 for days, so one odd
  message must not block the others delivered with it: a message whose *content* does not
  parse is kept as ``MessageType.UNKNOWN`` with its raw dict and a ``parse_error``; an item
  that cannot even be identified (no wamid, no sender, no timestamp) is described in
  ``WebhookBatch.problems`` for logging.

No Django, no I/O: the records are frozen dataclasses (modelled on pywa's ``pywa/types``)
built by ``from_dict`` classmethods, so the parser is testable with plain dicts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "WABA_OBJECT",
    "ApiError",
    "Context",
    "Conversation",
    "DeliveryStatus",
    "Edit",
    "InboundMessage",
    "InteractiveKind",
    "InteractiveReply",
    "Location",
    "Media",
    "MessageType",
    "Order",
    "OtherChange",
    "PayloadError",
    "PreferenceValue",
    "Pricing",
    "ProductItem",
    "Reaction",
    "Referral",
    "ReferredProduct",
    "Revoke",
    "SharedContact",
    "SharedContactPhone",
    "StatusUpdate",
    "SystemEvent",
    "TemplateButton",
    "UserPreference",
    "WebhookBatch",
    "is_wa_id",
    "parse_callback_message_id",
    "parse_webhook",
]

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
# Small, total helpers: each either returns a well-typed value or raises PayloadError.
# Booleans are excluded from numbers on purpose (``True`` is an ``int`` in Python).
# --------------------------------------------------------------------------------------

_JSON_TYPE_NAMES = {
    dict: "object",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


def _kind(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise PayloadError(f"{path}: expected an object, got {_kind(value)}")


def _list(value: Any, path: str) -> list[Any]:
    """A JSON list; an absent key (None) is an empty list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise PayloadError(f"{path}: expected a list, got {_kind(value)}")


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
        f"{path}.{key}: expected a non-empty string, got {_short(value)}"
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
        raise PayloadError(f"{path}: expected epoch seconds, got {_short(value)}")
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


# --------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------


class MessageType(StrEnum):
    """``messages[].type``. Types this code does not know map to UNKNOWN (see ``raw_type``)."""

    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    REQUEST_WELCOME = "request_welcome"
    UNSUPPORTED = "unsupported"
    # The user changed or deleted an earlier message (also when Meta forwards it only as
    # ``unsupported`` with ``unsupported.type`` edit/revoke), or Meta sent a message that
    # carries nothing but an error. Never a new request to answer.
    EDIT = "edit"
    REVOKE = "revoke"
    ERRORS = "errors"
    UNKNOWN = "unknown"

    @classmethod
    def from_raw(cls, value: Any) -> MessageType:
        try:
            return cls(value) if isinstance(value, str) else cls.UNKNOWN
        except ValueError:
            return cls.UNKNOWN


MEDIA_TYPES = frozenset(
    {
        MessageType.IMAGE,
        MessageType.VIDEO,
        MessageType.AUDIO,
        MessageType.DOCUMENT,
        MessageType.STICKER,
    }
)


class InteractiveKind(StrEnum):
    """``interactive.type`` of a reply: a reply button, a list row, or a WhatsApp Flow."""

    BUTTON_REPLY = "button_reply"
    LIST_REPLY = "list_reply"
    NFM_REPLY = "nfm_reply"
    UNKNOWN = "unknown"


class DeliveryStatus(StrEnum):
    """``statuses[].status``. Anything else (e.g. on-premises ``deleted``) is UNKNOWN."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @classmethod
    def from_raw(cls, value: Any) -> DeliveryStatus:
        try:
            return cls(value) if isinstance(value, str) else cls.UNKNOWN
        except ValueError:
            return cls.UNKNOWN


# --------------------------------------------------------------------------------------
# Sub-records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiError:
    """One Graph API error object, as found in ``value.errors``, ``messages[].errors`` and
    ``statuses[].errors``. Older webhooks put ``details`` at top level instead of in
    ``error_data``; both are read."""

    code: int | None
    title: str | None
    message: str | None
    details: str | None
    href: str | None

    @classmethod
    def from_dict(cls, data: Any, path: str = "error") -> ApiError:
        data = _obj(data, path)
        error_data = data.get("error_data")
        details = (
            _opt_str(error_data, "details") if isinstance(error_data, Mapping) else None
        )
        return cls(
            code=_int_or_none(data.get("code")),
            title=_opt_str(data, "title"),
            message=_opt_str(data, "message"),
            details=details if details is not None else _opt_str(data, "details"),
            href=_opt_str(data, "href"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    """An inbound image/video/audio/document/sticker. Only the media id is sent; the file
    itself must be fetched from the Graph API with it."""

    id: str
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    animated: bool | None = None  # stickers
    voice: bool | None = None  # audio recorded as a voice note

    @classmethod
    def from_dict(cls, data: Any, path: str = "media") -> Media:
        data = _obj(data, path)
        return cls(
            id=_req_str(data, "id", path),
            mime_type=_opt_str(data, "mime_type"),
            sha256=_opt_str(data, "sha256"),
            caption=_opt_str(data, "caption"),
            filename=_opt_str(data, "filename"),
            animated=_opt_bool(data, "animated"),
            voice=_opt_bool(data, "voice"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str = "location") -> Location:
        data = _obj(data, path)
        coords = {}
        for key in ("latitude", "longitude"):
            coords[key] = _float_or_none(data.get(key))
            if coords[key] is None:
                raise PayloadError(
                    f"{path}.{key}: expected a number, got {_short(data.get(key))}"
                )
        return cls(
            latitude=coords["latitude"],
            longitude=coords["longitude"],
            name=_opt_str(data, "name"),
            address=_opt_str(data, "address"),
            url=_opt_str(data, "url"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedContactPhone:
    phone: str | None
    wa_id: str | None  # present when the number is on WhatsApp
    type: str | None  # "HOME", "WORK", "CELL", ...

    @classmethod
    def from_dict(cls, data: Any, path: str = "phone") -> SharedContactPhone:
        data = _obj(data, path)
        return cls(
            phone=_opt_str(data, "phone"),
            wa_id=_opt_str(data, "wa_id"),
            type=_opt_str(data, "type"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedContact:
    """A contact card the user shared (``type: contacts``)."""

    formatted_name: str
    first_name: str | None = None
    last_name: str | None = None
    phones: tuple[SharedContactPhone, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, path: str = "contact") -> SharedContact:
        data = _obj(data, path)
        name = _obj(data.get("name"), f"{path}.name")
        phones = _list(data.get("phones"), f"{path}.phones")
        return cls(
            formatted_name=_opt_str(name, "formatted_name") or "",
            first_name=_opt_str(name, "first_name"),
            last_name=_opt_str(name, "last_name"),
            phones=tuple(
                SharedContactPhone.from_dict(p, f"{path}.phones[{i}]")
                for i, p in enumerate(phones)
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InteractiveReply:
    """The user's answer to an interactive message we sent.

    ``id`` is the id *we* gave the button/row, which is what flows branch on; ``title`` is what
    the user saw. Flow (``nfm_reply``) answers carry the form data in ``response_json``.
    """

    kind: InteractiveKind
    raw_kind: str
    id: str | None = None
    title: str | None = None
    description: str | None = None
    name: str | None = None  # nfm_reply: "flow" / "address_message"
    body: str | None = None  # nfm_reply: the text shown in the chat, e.g. "Sent"
    response_json: Mapping[str, Any] | None = dataclasses.field(
        default=None, hash=False
    )

    @classmethod
    def from_dict(cls, data: Any, path: str = "interactive") -> InteractiveReply:
        data = _obj(data, path)
        raw_kind = _opt_str(data, "type") or ""
        try:
            kind = InteractiveKind(raw_kind)
        except ValueError:
            kind = InteractiveKind.UNKNOWN
        if kind is InteractiveKind.UNKNOWN:
            return cls(kind=kind, raw_kind=raw_kind)
        reply_path = f"{path}.{kind.value}"
        reply = _obj(data.get(kind.value), reply_path)
        if kind is InteractiveKind.NFM_REPLY:
            return cls(
                kind=kind,
                raw_kind=raw_kind,
                name=_opt_str(reply, "name"),
                body=_opt_str(reply, "body"),
                response_json=_parse_response_json(
                    reply.get("response_json"), f"{reply_path}.response_json"
                ),
            )
        return cls(
            kind=kind,
            raw_kind=raw_kind,
            id=_req_str(reply, "id", reply_path),
            title=_opt_str(reply, "title") or "",
            description=_opt_str(reply, "description"),
        )


def _parse_response_json(value: Any, path: str) -> Mapping[str, Any]:
    """Flow replies send their form data as a JSON *string*."""
    if isinstance(value, Mapping):  # tolerate an already-decoded object
        return value
    if not isinstance(value, str):
        raise PayloadError(f"{path}: expected a JSON string, got {_kind(value)}")
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError):
        raise PayloadError(f"{path}: not valid JSON") from None
    if not isinstance(decoded, Mapping):
        raise PayloadError(f"{path}: expected a JSON object, got {_kind(decoded)}")
    return decoded


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateButton:
    """A quick-reply button of a *template* message was tapped (``type: button``)."""

    text: str
    payload: str | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str = "button") -> TemplateButton:
        data = _obj(data, path)
        text = data.get("text")
        if not isinstance(text, str):
            raise PayloadError(f"{path}.text: expected a string, got {_kind(text)}")
        return cls(text=text, payload=_opt_str(data, "payload"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reaction:
    """An emoji reaction to one of our messages; an empty/missing emoji removes it."""

    message_id: str
    emoji: str | None
    removed: bool

    @classmethod
    def from_dict(cls, data: Any, path: str = "reaction") -> Reaction:
        data = _obj(data, path)
        emoji = _opt_str(data, "emoji")
        return cls(
            message_id=_req_str(data, "message_id", path),
            emoji=emoji or None,
            removed=not emoji,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductItem:
    product_retailer_id: str | None
    quantity: int | None
    item_price: float | None
    currency: str | None

    @classmethod
    def from_dict(cls, data: Any, path: str = "product_item") -> ProductItem:
        data = _obj(data, path)
        return cls(
            product_retailer_id=_opt_str(data, "product_retailer_id"),
            quantity=_int_or_none(data.get("quantity")),
            item_price=_float_or_none(data.get("item_price")),
            currency=_opt_str(data, "currency"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A cart sent from a catalog (``type: order``)."""

    catalog_id: str | None
    text: str | None
    product_items: tuple[ProductItem, ...]

    @classmethod
    def from_dict(cls, data: Any, path: str = "order") -> Order:
        data = _obj(data, path)
        items = _list(data.get("product_items"), f"{path}.product_items")
        return cls(
            catalog_id=_opt_str(data, "catalog_id"),
            text=_opt_str(data, "text"),
            product_items=tuple(
                ProductItem.from_dict(item, f"{path}.product_items[{i}]")
                for i, item in enumerate(items)
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Referral:
    """Present on the first message after a user tapped a Click-to-WhatsApp ad or post."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None  # "ad" or "post"
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    ctwa_clid: str | None = None  # click id, for the Conversions API

    @classmethod
    def from_dict(cls, data: Any, path: str = "referral") -> Referral:
        data = _obj(data, path)
        return cls(
            source_url=_opt_str(data, "source_url"),
            source_id=_opt_str(data, "source_id"),
            source_type=_opt_str(data, "source_type"),
            headline=_opt_str(data, "headline"),
            body=_opt_str(data, "body"),
            media_type=_opt_str(data, "media_type"),
            ctwa_clid=_opt_str(data, "ctwa_clid"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Edit:
    """The user edited an earlier message (``type: edit``): which one, and its new text.

    ``original_message_id`` is None when Meta forwarded the edit only as an ``unsupported``
    message (numbers not on the WhatsApp Business app); then nothing says which message
    changed or how.
    """

    original_message_id: str | None
    message_type: str | None = None  # the edited message's type: "text", "image", ...
    text: str = ""  # the new body, or the new caption of a media message

    @classmethod
    def from_dict(cls, data: Any, path: str = "edit") -> Edit:
        data = _obj(data, path)
        message = data.get("message")
        message = message if isinstance(message, Mapping) else {}
        message_type = _opt_str(message, "type")
        text = ""
        for key in (message_type, "text"):
            part = message.get(key) if key else None
            if isinstance(part, Mapping):
                text = _opt_str(part, "body") or _opt_str(part, "caption") or ""
                if text:
                    break
        return cls(
            original_message_id=_opt_str(data, "original_message_id") or None,
            message_type=message_type,
            text=text,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoke:
    """The user deleted an earlier message for everyone (``type: revoke``)."""

    original_message_id: str | None

    @classmethod
    def from_dict(cls, data: Any, path: str = "revoke") -> Revoke:
        data = _obj(data, path)
        return cls(original_message_id=_opt_str(data, "original_message_id") or None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferredProduct:
    """The catalog product a user asked about ("Message business" on a product)."""

    catalog_id: str | None
    product_retailer_id: str | None

    @classmethod
    def from_dict(cls, data: Any, path: str = "referred_product") -> ReferredProduct:
        data = _obj(data, path)
        return cls(
            catalog_id=_opt_str(data, "catalog_id"),
            product_retailer_id=_opt_str(data, "product_retailer_id"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the message answers or where it came from: a quoted reply (``message_id`` is the
    wamid being replied to), a forward, or a product enquiry."""

    message_id: str | None = None
    from_: str | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: ReferredProduct | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str = "context") -> Context:
        data = _obj(data, path)
        product = data.get("referred_product")
        return cls(
            message_id=_opt_str(data, "id"),
            from_=_opt_str(data, "from"),
            forwarded=_opt_bool(data, "forwarded") is True,
            frequently_forwarded=_opt_bool(data, "frequently_forwarded") is True,
            referred_product=None
            if product is None
            else ReferredProduct.from_dict(product, f"{path}.referred_product"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemEvent:
    """A ``type: system`` notice, e.g. the user changed their number (``new_wa_id``)."""

    body: str | None
    type: str | None  # "user_changed_number", "customer_identity_changed", ...
    new_wa_id: str | None

    @classmethod
    def from_dict(cls, data: Any, path: str = "system") -> SystemEvent:
        data = _obj(data, path)
        return cls(
            body=_opt_str(data, "body"),
            type=_opt_str(data, "type"),
            # Graph API v12+ calls it wa_id; older versions new_wa_id.
            new_wa_id=_opt_str(data, "new_wa_id") or _opt_str(data, "wa_id"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    id: str | None
    origin_type: str | None  # "service", "utility", "marketing", ...
    expiration_timestamp: datetime | None

    @classmethod
    def from_dict(cls, data: Any, path: str = "conversation") -> Conversation:
        data = _obj(data, path)
        origin = data.get("origin")
        return cls(
            id=_opt_str(data, "id"),
            origin_type=_opt_str(origin, "type")
            if isinstance(origin, Mapping)
            else None,
            expiration_timestamp=_opt_timestamp(data.get("expiration_timestamp")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Pricing:
    billable: bool | None
    pricing_model: str | None  # "CBP" (per conversation) or "PMP" (per message)
    category: str | None
    type: str | None  # v24+: "regular", "free_customer_service", "free_entry_point"

    @classmethod
    def from_dict(cls, data: Any, path: str = "pricing") -> Pricing:
        data = _obj(data, path)
        return cls(
            billable=_opt_bool(data, "billable"),
            pricing_model=_opt_str(data, "pricing_model"),
            category=_opt_str(data, "category"),
            type=_opt_str(data, "type"),
        )


# --------------------------------------------------------------------------------------
# Top-level records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Business:
    phone_number_id: str
    display_phone_number: str

    @classmethod
    def from_value(cls, value: Mapping[str, Any], path: str) -> _Business:
        metadata = _obj(value.get("metadata"), f"{path}.metadata")
        return cls(
            phone_number_id=_req_str(metadata, "phone_number_id", f"{path}.metadata"),
            display_phone_number=_opt_str(metadata, "display_phone_number") or "",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """One message a WhatsApp user sent to the business number ``phone_number_id``.

    ``text`` is the human text whatever the type (body, caption, tapped button/row title), so
    keyword matching does not need to know the type. Exactly the sub-record matching ``type``
    is set. ``raw`` keeps Meta's dict so nothing is lost when ``type`` is UNKNOWN.
    """

    phone_number_id: str
    display_phone_number: str
    wamid: str
    from_wa_id: str
    profile_name: str | None
    timestamp: datetime
    type: MessageType
    raw_type: str
    text: str = ""
    media: Media | None = None
    location: Location | None = None
    contacts: tuple[SharedContact, ...] = ()
    interactive: InteractiveReply | None = None
    button: TemplateButton | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: SystemEvent | None = None
    edit: Edit | None = None
    revoke: Revoke | None = None
    referral: Referral | None = None
    context: Context | None = None
    errors: tuple[ApiError, ...] = ()
    parse_error: str | None = None
    raw: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, hash=False, repr=False
    )

    @property
    def reply_id(self) -> str | None:
        """The id a flow branches on: our interactive button/row id, or a template button's
        payload. None for free text."""
        if self.interactive is not None and self.interactive.id:
            return self.interactive.id
        if self.button is not None and self.button.payload:
            return self.button.payload
        return None

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        phone_number_id: str,
        display_phone_number: str = "",
        profiles: Mapping[str, str] | None = None,
        path: str = "message",
    ) -> InboundMessage:
        """Raise PayloadError only if the message cannot be identified (wamid, sender,
        timestamp) or its sender is not a WhatsApp number; bad *content* degrades to
        ``MessageType.UNKNOWN`` with ``parse_error`` (or ``ERRORS`` when Meta sent an error
        in place of the content)."""
        data = _obj(data, path)
        wamid = _req_str(data, "id", path)
        from_wa_id = _req_str(data, "from", path)
        if not is_wa_id(from_wa_id):
            raise PayloadError(f"{path}.from: expected a WhatsApp number (6 to 15 digits), got {_short(from_wa_id)}")
        timestamp = _timestamp(data.get("timestamp"), f"{path}.timestamp")

        raw_type = _opt_str(data, "type") or ""
        notes: list[str] = []
        errors, error_notes = _parse_errors(data.get("errors"), f"{path}.errors")
        msg_type = _effective_type(MessageType.from_raw(raw_type), data)
        try:
            content = _parse_content(msg_type, data, path)
        except PayloadError as exc:
            msg_type, content = MessageType.UNKNOWN, {}
            if errors:  # Meta put an error where the content should be: nothing to read
                msg_type = MessageType.ERRORS
            else:
                notes.append(exc.reason)
        if errors and _carries_only_errors(msg_type, raw_type, content):
            msg_type, content = MessageType.ERRORS, {}

        optional = _optional_records(data, path, notes, context=Context.from_dict, referral=Referral.from_dict)
        notes.extend(error_notes)
        return cls(
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            wamid=wamid,
            from_wa_id=from_wa_id,
            profile_name=(profiles or {}).get(from_wa_id),
            timestamp=timestamp,
            type=msg_type,
            raw_type=raw_type,
            errors=errors,
            parse_error="; ".join(notes) or None,
            raw=data,
            **optional,
            **content,
        )


def _effective_type(msg_type: MessageType, data: Mapping[str, Any]) -> MessageType:
    """Edits and deletes Meta forwards as ``unsupported`` are still edits and deletes."""
    if msg_type is MessageType.UNSUPPORTED:
        unsupported = data.get("unsupported")
        kind = unsupported.get("type") if isinstance(unsupported, Mapping) else None
        if kind == MessageType.EDIT.value:
            return MessageType.EDIT
        if kind == MessageType.REVOKE.value:
            return MessageType.REVOKE
    return msg_type


def _carries_only_errors(msg_type: MessageType, raw_type: str, content: Mapping[str, Any]) -> bool:
    """True for a message whose only payload is Meta's error (e.g. an interactive reply of a
    kind Cloud API does not forward): there is no request in it to answer."""
    if raw_type == MessageType.ERRORS.value:
        return True
    interactive = content.get("interactive")
    return msg_type is MessageType.INTERACTIVE and interactive is not None and (
        interactive.kind is InteractiveKind.UNKNOWN
    )


def _parse_content(
    msg_type: MessageType, data: Mapping[str, Any], path: str
) -> dict[str, Any]:
    """The type-specific fields of a message, as InboundMessage keyword arguments."""
    key = msg_type.value
    sub_path = f"{path}.{key}"
    if msg_type is MessageType.TEXT:
        text = _obj(data.get(key), sub_path)
        body = text.get("body")
        if not isinstance(body, str):
            raise PayloadError(f"{sub_path}.body: expected a string, got {_kind(body)}")
        return {"text": body}
    if msg_type in MEDIA_TYPES:
        media = Media.from_dict(data.get(key), sub_path)
        return {"media": media, "text": media.caption or ""}
    if msg_type is MessageType.LOCATION:
        return {"location": Location.from_dict(data.get(key), sub_path)}
    if msg_type is MessageType.CONTACTS:
        cards = _list(data.get(key), sub_path)
        return {
            "contacts": tuple(
                SharedContact.from_dict(c, f"{sub_path}[{i}]")
                for i, c in enumerate(cards)
            )
        }
    if msg_type is MessageType.INTERACTIVE:
        reply = InteractiveReply.from_dict(data.get(key), sub_path)
        return {"interactive": reply, "text": reply.title or reply.body or ""}
    if msg_type is MessageType.BUTTON:
        button = TemplateButton.from_dict(data.get(key), sub_path)
        return {"button": button, "text": button.text}
    if msg_type is MessageType.REACTION:
        return {"reaction": Reaction.from_dict(data.get(key), sub_path)}
    if msg_type is MessageType.ORDER:
        order = Order.from_dict(data.get(key), sub_path)
        return {"order": order, "text": order.text or ""}
    if msg_type is MessageType.SYSTEM:
        return {"system": SystemEvent.from_dict(data.get(key), sub_path)}
    if msg_type is MessageType.EDIT:
        if data.get(key) is None and data.get("type") == MessageType.UNSUPPORTED.value:
            return {"edit": Edit(original_message_id=None)}  # forwarded as unsupported
        edit = Edit.from_dict(data.get(key), sub_path)
        return {"edit": edit, "text": edit.text}
    if msg_type is MessageType.REVOKE:
        if data.get(key) is None and data.get("type") == MessageType.UNSUPPORTED.value:
            return {"revoke": Revoke(original_message_id=None)}
        return {"revoke": Revoke.from_dict(data.get(key), sub_path)}
    return {}  # request_welcome, unsupported, errors, unknown: nothing typed to read


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


def _parse_errors(value: Any, path: str) -> tuple[tuple[ApiError, ...], list[str]]:
    """Errors are diagnostics: keep the readable ones, describe the rest, never fail."""
    try:
        items = _list(value, path)
    except PayloadError as exc:
        return (), [exc.reason]
    errors, notes = [], []
    for i, item in enumerate(items):
        try:
            errors.append(ApiError.from_dict(item, f"{path}[{i}]"))
        except PayloadError as exc:
            notes.append(exc.reason)
    return tuple(errors), notes


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """Delivery news about a message *we* sent (``wamid`` is the id the send call returned)."""

    phone_number_id: str
    display_phone_number: str
    wamid: str
    status: DeliveryStatus
    raw_status: str
    timestamp: datetime
    recipient_id: str
    errors: tuple[ApiError, ...] = ()
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    biz_opaque_callback_data: str | None = None
    parse_error: str | None = None
    raw: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, hash=False, repr=False
    )

    @property
    def callback_message_id(self) -> int | None:
        """The pk of our Message this status is about, from ``biz_opaque_callback_data``
        (``msg:<pk>``, set on every send): matches a status to its row even when the
        wamid Meta returned was never stored."""
        return parse_callback_message_id(self.biz_opaque_callback_data)

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        phone_number_id: str,
        display_phone_number: str = "",
        path: str = "status",
    ) -> StatusUpdate:
        data = _obj(data, path)
        raw_status = _opt_str(data, "status") or ""
        notes: list[str] = []
        optional = _optional_records(
            data, path, notes, conversation=Conversation.from_dict, pricing=Pricing.from_dict
        )
        errors, error_notes = _parse_errors(data.get("errors"), f"{path}.errors")
        notes.extend(error_notes)
        return cls(
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            wamid=_req_str(data, "id", path),
            status=DeliveryStatus.from_raw(raw_status),
            raw_status=raw_status,
            timestamp=_timestamp(data.get("timestamp"), f"{path}.timestamp"),
            recipient_id=_req_str(data, "recipient_id", path),
            errors=errors,
            biz_opaque_callback_data=_opt_str(data, "biz_opaque_callback_data"),
            parse_error="; ".join(notes) or None,
            raw=data,
            **optional,
        )


class PreferenceValue(StrEnum):
    """``user_preferences[].value`` for the marketing category."""

    STOP = "stop"
    RESUME = "resume"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserPreference:
    """A WhatsApp user stopped or resumed marketing messages from the business (the
    ``user_preferences`` webhook). Only the ``marketing_messages`` category with a known value
    becomes a record; anything else is a problem (audited), never guessed at."""

    phone_number_id: str
    wa_id: str
    value: PreferenceValue
    timestamp: datetime
    category: str = MARKETING_CATEGORY
    detail: str | None = None
    profile_name: str | None = None

    @classmethod
    def from_dict(
        cls, data: Any, *, phone_number_id: str, profiles: Mapping[str, str] | None = None, path: str = "preference"
    ) -> UserPreference:
        data = _obj(data, path)
        wa_id = _req_str(data, "wa_id", path)
        if not is_wa_id(wa_id):
            raise PayloadError(f"{path}.wa_id: expected a WhatsApp number (6 to 15 digits), got {_short(wa_id)}")
        category = data.get("category")
        if category != MARKETING_CATEGORY:
            raise PayloadError(f"{path}.category: {_short(category)} is not a category this project acts on")
        raw_value = data.get("value")
        try:
            value = PreferenceValue(raw_value) if isinstance(raw_value, str) else None
        except ValueError:
            value = None
        if value is None:
            raise PayloadError(f"{path}.value: expected 'stop' or 'resume', got {_short(raw_value)}")
        return cls(
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            value=value,
            timestamp=_timestamp(data.get("timestamp"), f"{path}.timestamp"),
            category=category,
            detail=_opt_str(data, "detail"),
            profile_name=(profiles or {}).get(wa_id),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherChange:
    """A change for a field other than ``messages`` and ``user_preferences`` (template status, account update, ...):
    not acted on, but kept so it can be logged."""

    waba_id: str
    field: str
    value: Mapping[str, Any] = dataclasses.field(hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookBatch:
    """Everything one webhook POST carried, flattened across entries and changes."""

    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    errors: tuple[ApiError, ...] = ()
    other_changes: tuple[OtherChange, ...] = ()
    problems: tuple[str, ...] = ()
    preferences: tuple[UserPreference, ...] = ()


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def parse_webhook(body: Any) -> WebhookBatch:
    """Parse a decoded webhook body.

    Raises PayloadError only for a body that is not a WhatsApp Business Account webhook;
    every problem inside a valid envelope ends up in ``problems`` or ``parse_error``.
    """
    envelope = _obj(body, "body")
    obj = envelope.get("object")
    if obj != WABA_OBJECT:
        got = "missing" if "object" not in envelope else f"got {_short(obj)}"
        raise PayloadError(f"object: expected {WABA_OBJECT!r}, {got}")
    if "entry" not in envelope:
        raise PayloadError("entry: missing")
    entries = envelope["entry"]
    if not isinstance(entries, list):
        raise PayloadError(f"entry: expected a list, got {_kind(entries)}")

    out = _Collector()
    for i, entry in enumerate(entries):
        out.entry(entry, f"entry[{i}]")
    return out.batch()


class _Collector:
    """Accumulates records and problems while walking entries/changes."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.statuses: list[StatusUpdate] = []
        self.errors: list[ApiError] = []
        self.other_changes: list[OtherChange] = []
        self.problems: list[str] = []
        self.preferences: list[UserPreference] = []

    def batch(self) -> WebhookBatch:
        return WebhookBatch(
            messages=tuple(self.messages),
            statuses=tuple(self.statuses),
            errors=tuple(self.errors),
            other_changes=tuple(self.other_changes),
            problems=tuple(self.problems),
            preferences=tuple(self.preferences),
        )

    def entry(self, entry: Any, path: str) -> None:
        try:
            entry = _obj(entry, path)
            changes = _list(entry.get("changes"), f"{path}.changes")
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return
        waba_id = _opt_str(entry, "id") or ""
        for j, change in enumerate(changes):
            self.change(change, waba_id, f"{path}.changes[{j}]")

    def change(self, change: Any, waba_id: str, path: str) -> None:
        try:
            change = _obj(change, path)
            field_name = _req_str(change, "field", path)
            value = _obj(change.get("value"), f"{path}.value")
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return
        if field_name == USER_PREFERENCES_FIELD:
            self.preferences_value(value, f"{path}.value")
            return
        if field_name != MESSAGES_FIELD:
            self.other_changes.append(
                OtherChange(waba_id=waba_id, field=field_name, value=value)
            )
            return
        self.messages_value(value, f"{path}.value")

    def messages_value(self, value: Mapping[str, Any], path: str) -> None:
        errors, notes = _parse_errors(value.get("errors"), f"{path}.errors")
        self.errors.extend(errors)
        self.problems.extend(notes)
        has_items = (
            value.get("messages") is not None or value.get("statuses") is not None
        )
        try:
            business = _Business.from_value(value, path)
        except PayloadError as exc:
            if has_items:  # without the business number a message cannot be routed
                self.problems.append(exc.reason)
            return
        profiles = self.profiles(value.get("contacts"), f"{path}.contacts")
        for item_path, item in self.items(value, "messages", path):
            try:
                message = InboundMessage.from_dict(
                    item,
                    phone_number_id=business.phone_number_id,
                    display_phone_number=business.display_phone_number,
                    profiles=profiles,
                    path=item_path,
                )
            except PayloadError as exc:
                self.problems.append(exc.reason)
                continue
            self.messages.append(message)
            if message.parse_error:
                self.problems.append(message.parse_error)
        for item_path, item in self.items(value, "statuses", path):
            try:
                status = StatusUpdate.from_dict(
                    item,
                    phone_number_id=business.phone_number_id,
                    display_phone_number=business.display_phone_number,
                    path=item_path,
                )
            except PayloadError as exc:
                self.problems.append(exc.reason)
                continue
            self.statuses.append(status)
            if status.parse_error:
                self.problems.append(status.parse_error)

    def preferences_value(self, value: Mapping[str, Any], path: str) -> None:
        """``user_preferences`` items; one that is not understood is a problem, the rest apply."""
        try:
            business = _Business.from_value(value, path)
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return
        profiles = self.profiles(value.get("contacts"), f"{path}.contacts")
        items = self.items(value, USER_PREFERENCES_FIELD, path)
        if not items and value.get(USER_PREFERENCES_FIELD) is None:
            self.problems.append(f"{path}.{USER_PREFERENCES_FIELD}: missing")
        for item_path, item in items:
            try:
                self.preferences.append(UserPreference.from_dict(
                    item, phone_number_id=business.phone_number_id, profiles=profiles, path=item_path
                ))
            except PayloadError as exc:
                self.problems.append(exc.reason)

    def items(
        self, value: Mapping[str, Any], key: str, path: str
    ) -> list[tuple[str, Any]]:
        try:
            items = _list(value.get(key), f"{path}.{key}")
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return []
        return [(f"{path}.{key}[{i}]", item) for i, item in enumerate(items)]

    def profiles(self, value: Any, path: str) -> dict[str, str]:
        """wa_id -> profile name, from ``value.contacts`` (the senders, not shared cards)."""
        profiles: dict[str, str] = {}
        try:
            contacts = _list(value, path)
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return profiles
        for i, contact in enumerate(contacts):
            profile = contact.get("profile") if isinstance(contact, Mapping) else None
            wa_id = contact.get("wa_id") if isinstance(contact, Mapping) else None
            name = profile.get("name") if isinstance(profile, Mapping) else None
            if isinstance(wa_id, str) and isinstance(name, str):
                profiles[wa_id] = name
            elif not isinstance(contact, Mapping) or not isinstance(wa_id, str):
                self.problems.append(f"{path}[{i}]: expected an object with a wa_id")
        return profiles
