"""Builders of the inbound messages found at ``entry[].changes[].value.messages[]``."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from .common import (
    _DIGITS_RE,
    _FRESH,
    DEFAULT_WA_ID,
    ContextArg,
    PayloadError,
    _check_text,
    _check_wa_id,
    _check_wamid,
    _media_id,
    _message,
    _sha256_b64,
)
from .errors import error_object

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
