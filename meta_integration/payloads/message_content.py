"""The typed content of an inbound message: its type enums and one frozen record per kind of
content (media, location, shared contacts, interactive reply, reaction, order, edit, ...),
plus the context and referral a message can carry.

Pure: no Django, no I/O."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from json_shape import brief, json_kind
from meta_integration.payloads.fields import (
    PayloadError,
    _float_or_none,
    _int_or_none,
    _list,
    _obj,
    _opt_bool,
    _opt_str,
    _req_str,
)


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
                    f"{path}.{key}: expected a number, got {brief(data.get(key))}"
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
        raise PayloadError(f"{path}: expected a JSON string, got {json_kind(value)}")
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError):
        raise PayloadError(f"{path}: not valid JSON") from None
    if not isinstance(decoded, Mapping):
        raise PayloadError(f"{path}: expected a JSON object, got {json_kind(decoded)}")
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
            raise PayloadError(f"{path}.text: expected a string, got {json_kind(text)}")
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
