"""Outbound WhatsApp message bodies: spec -> Graph API JSON, checked against WhatsApp's limits.

Flows and the conversations app store what to send as a small *spec* dict (see
:func:`build_message`); this module turns it into the exact body of
``POST /{phone-number-id}/messages`` and checks it against WhatsApp's limits *before* the
request, so a 21-character button title fails when a flow is saved or a message is queued,
with the field named, instead of as an opaque 400 from Meta at send time.

:func:`validate_outbound` is the single source of truth for those limits: ``build_message``
calls it, and the fake Graph API calls it on every request it receives, so tests fail the way
Meta would. What to do when Meta refuses a message is decided in :mod:`meta_integration.errors`.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from json_shape import brief, expect_list, expect_object, join_path, json_kind

__all__ = [
    "SPEC_TYPES",
    "OutboundValidationError",
    "SpecType",
    "build_message",
    "button_message",
    "list_message",
    "location_message",
    "media_message",
    "read_receipt",
    "split_text",
    "template_message",
    "text_message",
    "validate_outbound",
]

# WhatsApp's limits (Cloud API "messages" reference), in characters.
TEXT_BODY_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_TEXT_MAX = 60
BUTTONS_MAX = 3
BUTTON_ID_MAX = 256
BUTTON_TITLE_MAX = 20
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10  # in total, across all sections
ROW_ID_MAX = 200
SECTION_TITLE_MAX = 24
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
CAPTION_MAX = 1024
TEMPLATE_NAME_MAX = 512
CALLBACK_DATA_MAX = 512

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
_CAPTIONED_MEDIA = frozenset({"image", "video", "document"})
_INTERACTIVE_HEADER_MEDIA = ("image", "video", "document")  # reply-button headers only


class SpecType(StrEnum):
    """The ``type`` of an outbound spec (the project's contract, not Meta's): the one list."""

    TEXT = "text"
    BUTTONS = "buttons"
    LIST = "list"
    MEDIA = "media"
    LOCATION = "location"
    TEMPLATE = "template"


SPEC_TYPES: tuple[str, ...] = tuple(t.value for t in SpecType)
"""The ``type`` values of an outbound spec, as plain strings."""

_GRAPH_TYPES = ("text", "interactive", "location", "template", *MEDIA_TYPES)


class OutboundValidationError(ValueError):
    """An outbound message breaks a WhatsApp rule; ``field`` is the path of the culprit.

    ``str(err)`` reads ``"<field>: <message>"``, e.g.
    ``"interactive.action.buttons[1].reply.title: at most 20 characters (got 23)"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --------------------------------------------------------------------------------------
# Validation helpers (the JSON shape checks are json_shape's)
# --------------------------------------------------------------------------------------


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    return expect_object(value, field, OutboundValidationError)


def _required(obj: Mapping[str, Any], key: str, prefix: str) -> Any:
    if obj.get(key) is None:
        raise OutboundValidationError(join_path(prefix, key), "required")
    return obj[key]


def _only_keys(obj: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
    """Meta answers 400 to unexpected parameters; a typo should fail here, by name."""
    allowed = set(allowed)
    for key in obj:
        if key not in allowed:
            raise OutboundValidationError(join_path(prefix, str(key)), "unknown field")


def _seq(value: Any, field: str) -> Sequence[Any]:
    return expect_list(value, field, OutboundValidationError, tuples=True)


def _text(value: Any, field: str, max_len: int, *, required: bool = True) -> str:
    """A string of at most ``max_len`` characters; non-blank when ``required``."""
    if not isinstance(value, str):
        raise OutboundValidationError(field, f"expected a string, got {json_kind(value)}")
    if required and not value.strip():
        raise OutboundValidationError(field, "must not be empty")
    if len(value) > max_len:
        raise OutboundValidationError(
            field, f"at most {max_len} characters (got {len(value)})"
        )
    return value


def _opt_text(obj: Mapping[str, Any], key: str, prefix: str, max_len: int) -> None:
    if key in obj:
        _text(obj[key], join_path(prefix, key), max_len)


def _count(items: Sequence[Any], field: str, what: str, low: int, high: int) -> None:
    if not low <= len(items) <= high:
        raise OutboundValidationError(
            field, f"{low} to {high} {what} required (got {len(items)})"
        )


def _unique(value: str, seen: set[str], field: str, what: str) -> None:
    if value in seen:
        raise OutboundValidationError(field, f"duplicate {what} {brief(value)}")
    seen.add(value)


_PHONE_RE = re.compile(r"\+?[0-9]+")


def _validate_to(value: Any) -> None:
    if not isinstance(value, str):
        raise OutboundValidationError("to", f"expected a string, got {json_kind(value)}")
    if not _PHONE_RE.fullmatch(value):
        raise OutboundValidationError(
            "to",
            f"expected a phone number of digits with an optional leading '+', got {brief(value)}",
        )


def _number(value: Any, field: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise OutboundValidationError(field, f"expected a number, got {json_kind(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range is outside any range
        number = math.inf
    except ValueError:
        raise OutboundValidationError(
            field, f"expected a number, got {brief(value)}"
        ) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise OutboundValidationError(
            field, f"must be between {low:g} and {high:g} (got {brief(value)})"
        )


# --------------------------------------------------------------------------------------
# validate_outbound
# --------------------------------------------------------------------------------------


def validate_outbound(payload: Mapping[str, Any]) -> None:
    """Check a full ``/messages`` request body (a message or a read receipt) against
    WhatsApp's rules for the kinds this project sends. Raises OutboundValidationError."""
    payload = _obj(payload, "payload")
    if payload.get("messaging_product") != "whatsapp":
        raise OutboundValidationError(
            "messaging_product",
            f"must be 'whatsapp' (got {brief(payload.get('messaging_product'))})",
        )
    if "status" in payload:
        _validate_read_receipt(payload)
        return

    msg_type = _required(payload, "type", "")
    if msg_type not in _GRAPH_TYPES:
        raise OutboundValidationError(
            "type",
            f"unsupported message type {brief(msg_type)} (expected one of {', '.join(_GRAPH_TYPES)})",
        )
    _only_keys(
        payload,
        (
            "messaging_product",
            "recipient_type",
            "to",
            "type",
            "context",
            "biz_opaque_callback_data",
            msg_type,
        ),
        "",
    )
    if payload.get("recipient_type", "individual") != "individual":
        raise OutboundValidationError(
            "recipient_type",
            f"must be 'individual' (got {brief(payload['recipient_type'])})",
        )
    _validate_to(_required(payload, "to", ""))
    if "context" in payload:
        context = _obj(payload["context"], "context")
        _only_keys(context, ("message_id",), "context")
        _text(_required(context, "message_id", "context"), "context.message_id", 256)
    if "biz_opaque_callback_data" in payload:
        _text(
            payload["biz_opaque_callback_data"],
            "biz_opaque_callback_data",
            CALLBACK_DATA_MAX,
        )

    content = _obj(_required(payload, msg_type, ""), msg_type)
    if msg_type == "text":
        _validate_text(content)
    elif msg_type == "interactive":
        _validate_interactive(content)
    elif msg_type == "location":
        _validate_location(content)
    elif msg_type == "template":
        _validate_template(content)
    else:
        _validate_media(content, msg_type, msg_type)


def _validate_read_receipt(payload: Mapping[str, Any]) -> None:
    _only_keys(
        payload, ("messaging_product", "status", "message_id", "typing_indicator"), ""
    )
    if payload["status"] != "read":
        raise OutboundValidationError(
            "status", f"must be 'read' (got {brief(payload['status'])})"
        )
    _text(_required(payload, "message_id", ""), "message_id", 256)
    if "typing_indicator" in payload:
        indicator = _obj(payload["typing_indicator"], "typing_indicator")
        _only_keys(indicator, ("type",), "typing_indicator")
        if indicator.get("type") != "text":
            raise OutboundValidationError(
                "typing_indicator.type",
                f"must be 'text' (got {brief(indicator.get('type'))})",
            )


def _validate_text(text: Mapping[str, Any]) -> None:
    _only_keys(text, ("body", "preview_url"), "text")
    _text(_required(text, "body", "text"), "text.body", TEXT_BODY_MAX)
    if "preview_url" in text and not isinstance(text["preview_url"], bool):
        raise OutboundValidationError(
            "text.preview_url", f"expected a boolean, got {json_kind(text['preview_url'])}"
        )


def _validate_interactive(interactive: Mapping[str, Any]) -> None:
    kind = _required(interactive, "type", "interactive")
    if kind not in ("button", "list"):
        raise OutboundValidationError(
            "interactive.type",
            f"unsupported interactive type {brief(kind)} (expected 'button' or 'list')",
        )
    _only_keys(
        interactive, ("type", "header", "body", "footer", "action"), "interactive"
    )

    body = _obj(_required(interactive, "body", "interactive"), "interactive.body")
    _only_keys(body, ("text",), "interactive.body")
    _text(
        _required(body, "text", "interactive.body"),
        "interactive.body.text",
        INTERACTIVE_BODY_MAX,
    )

    if "footer" in interactive:
        footer = _obj(interactive["footer"], "interactive.footer")
        _only_keys(footer, ("text",), "interactive.footer")
        _text(
            _required(footer, "text", "interactive.footer"),
            "interactive.footer.text",
            FOOTER_TEXT_MAX,
        )

    if "header" in interactive:
        _validate_header(interactive["header"], allow_media=kind == "button")

    action = _obj(_required(interactive, "action", "interactive"), "interactive.action")
    if kind == "button":
        _validate_buttons(action)
    else:
        _validate_list(action)


def _validate_header(value: Any, *, allow_media: bool) -> None:
    header = _obj(value, "interactive.header")
    kind = _required(header, "type", "interactive.header")
    allowed = ("text", *_INTERACTIVE_HEADER_MEDIA) if allow_media else ("text",)
    if kind not in allowed:
        raise OutboundValidationError(
            "interactive.header.type",
            f"must be one of {', '.join(allowed)} (got {brief(kind)})",
        )
    _only_keys(header, ("type", kind), "interactive.header")
    if kind == "text":
        _text(
            _required(header, "text", "interactive.header"),
            "interactive.header.text",
            HEADER_TEXT_MAX,
        )
    else:
        media = _obj(
            _required(header, kind, "interactive.header"), f"interactive.header.{kind}"
        )
        _validate_media(media, kind, f"interactive.header.{kind}", header_media=True)


def _validate_buttons(action: Mapping[str, Any]) -> None:
    _only_keys(action, ("buttons",), "interactive.action")
    field = "interactive.action.buttons"
    buttons = _seq(_required(action, "buttons", "interactive.action"), field)
    _count(buttons, field, "buttons", 1, BUTTONS_MAX)
    ids: set[str] = set()
    titles: set[str] = set()
    for i, item in enumerate(buttons):
        path = f"{field}[{i}]"
        button = _obj(item, path)
        _only_keys(button, ("type", "reply"), path)
        if button.get("type") != "reply":
            raise OutboundValidationError(
                f"{path}.type", f"must be 'reply' (got {brief(button.get('type'))})"
            )
        reply = _obj(_required(button, "reply", path), f"{path}.reply")
        _only_keys(reply, ("id", "title"), f"{path}.reply")
        button_id = _text(
            _required(reply, "id", f"{path}.reply"), f"{path}.reply.id", BUTTON_ID_MAX
        )
        if button_id != button_id.strip():
            raise OutboundValidationError(
                f"{path}.reply.id", "must not have leading or trailing spaces"
            )
        _unique(button_id, ids, f"{path}.reply.id", "button id")
        title = _text(
            _required(reply, "title", f"{path}.reply"),
            f"{path}.reply.title",
            BUTTON_TITLE_MAX,
        )
        _unique(title, titles, f"{path}.reply.title", "button title")


def _validate_list(action: Mapping[str, Any]) -> None:
    _only_keys(action, ("button", "sections"), "interactive.action")
    _text(
        _required(action, "button", "interactive.action"),
        "interactive.action.button",
        LIST_BUTTON_MAX,
    )
    field = "interactive.action.sections"
    sections = _seq(_required(action, "sections", "interactive.action"), field)
    _count(sections, field, "sections", 1, LIST_SECTIONS_MAX)
    row_ids: set[str] = set()
    total_rows = 0
    for i, item in enumerate(sections):
        path = f"{field}[{i}]"
        section = _obj(item, path)
        _only_keys(section, ("title", "rows"), path)
        if "title" in section:
            _text(section["title"], f"{path}.title", SECTION_TITLE_MAX)
        elif len(sections) > 1:
            raise OutboundValidationError(
                f"{path}.title", "required when there is more than one section"
            )
        rows = _seq(_required(section, "rows", path), f"{path}.rows")
        if not rows:
            raise OutboundValidationError(f"{path}.rows", "at least 1 row required")
        total_rows += len(rows)
        if total_rows > LIST_ROWS_MAX:
            raise OutboundValidationError(
                f"{path}.rows",
                f"at most {LIST_ROWS_MAX} rows in total across sections (got {total_rows})",
            )
        for j, row_item in enumerate(rows):
            row_path = f"{path}.rows[{j}]"
            row = _obj(row_item, row_path)
            _only_keys(row, ("id", "title", "description"), row_path)
            row_id = _text(_required(row, "id", row_path), f"{row_path}.id", ROW_ID_MAX)
            _unique(row_id, row_ids, f"{row_path}.id", "row id")
            _text(_required(row, "title", row_path), f"{row_path}.title", ROW_TITLE_MAX)
            if "description" in row:
                _text(
                    row["description"],
                    f"{row_path}.description",
                    ROW_DESCRIPTION_MAX,
                    required=False,
                )


def _validate_media(
    media: Mapping[str, Any], media_type: str, field: str, *, header_media: bool = False
) -> None:
    allowed = ["id", "link"]
    if not header_media and media_type in _CAPTIONED_MEDIA:
        allowed.append("caption")
    if media_type == "document":
        allowed.append("filename")
    for key in media:
        if key not in allowed:
            reason = (
                f"not allowed for {media_type}"
                if key in ("caption", "filename")
                else "unknown field"
            )
            raise OutboundValidationError(join_path(field, str(key)), reason)
    has_id, has_link = media.get("id") is not None, media.get("link") is not None
    if has_id == has_link:
        raise OutboundValidationError(
            field, "exactly one of 'id' or 'link' is required"
        )
    if has_id:
        _text(media["id"], f"{field}.id", 256)
    else:
        link = _text(media["link"], f"{field}.link", 2048)
        if not link.startswith(("https://", "http://")):
            raise OutboundValidationError(
                f"{field}.link", f"must be an http(s) URL (got {brief(link)})"
            )
    if "caption" in media:
        _text(media["caption"], f"{field}.caption", CAPTION_MAX, required=False)
    if "filename" in media:
        _text(media["filename"], f"{field}.filename", 240)


def _validate_location(location: Mapping[str, Any]) -> None:
    _only_keys(location, ("latitude", "longitude", "name", "address"), "location")
    _number(_required(location, "latitude", "location"), "location.latitude", -90, 90)
    _number(
        _required(location, "longitude", "location"), "location.longitude", -180, 180
    )
    _opt_text(location, "name", "location", 1024)
    _opt_text(location, "address", "location", 1024)


def _validate_template(template: Mapping[str, Any]) -> None:
    _only_keys(template, ("name", "language", "components"), "template")
    _text(_required(template, "name", "template"), "template.name", TEMPLATE_NAME_MAX)
    language = _obj(_required(template, "language", "template"), "template.language")
    _only_keys(language, ("code", "policy"), "template.language")
    _text(
        _required(language, "code", "template.language"), "template.language.code", 15
    )
    if language.get("policy", "deterministic") != "deterministic":
        raise OutboundValidationError(
            "template.language.policy",
            f"must be 'deterministic' (got {brief(language['policy'])})",
        )
    if "components" in template:
        components = _seq(template["components"], "template.components")
        for i, item in enumerate(components):
            component = _obj(item, f"template.components[{i}]")
            _text(
                _required(component, "type", f"template.components[{i}]"),
                f"template.components[{i}].type",
                32,
            )


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def _envelope(
    to: str, msg_type: str, content: dict[str, Any], reply_to: str | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
    }
    if reply_to is not None:
        payload["context"] = {"message_id": reply_to}
    payload["type"] = msg_type
    payload[msg_type] = content
    validate_outbound(payload)
    return payload


def _interactive(
    kind: str, body: str, action: dict[str, Any], header: str | None, footer: str | None
) -> dict[str, Any]:
    interactive: dict[str, Any] = {"type": kind}
    if header is not None:
        interactive["header"] = {"type": "text", "text": header}
    interactive["body"] = {"text": body}
    if footer is not None:
        interactive["footer"] = {"text": footer}
    interactive["action"] = action
    return interactive


def text_message(
    to: str, body: str, *, preview_url: bool = False, reply_to: str | None = None
) -> dict[str, Any]:
    """A plain text message (1..4096 characters; use :func:`split_text` for longer)."""
    return _envelope(to, "text", {"preview_url": preview_url, "body": body}, reply_to)


def button_message(
    to: str,
    body: str,
    buttons: Sequence[Mapping[str, Any]],
    *,
    header: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """Up to three reply buttons; ``buttons`` is ``[{"id": ..., "title": ...}, ...]``."""
    items = _spec_items(buttons, "buttons", ("id", "title"))
    action = {
        "buttons": [
            {"type": "reply", "reply": {"id": b.get("id"), "title": b.get("title")}}
            for b in items
        ]
    }
    return _envelope(
        to,
        "interactive",
        _interactive("button", body, action, header, footer),
        reply_to,
    )


def list_message(
    to: str,
    body: str,
    button: str,
    sections: Sequence[Mapping[str, Any]],
    *,
    header: str | None = None,
    footer: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """A list picker: ``button`` opens it; ``sections`` hold at most ten rows in total."""
    graph_sections = []
    for i, section in enumerate(_spec_items(sections, "sections", ("title", "rows"))):
        graph_section: dict[str, Any] = {}
        if section.get("title") is not None:
            graph_section["title"] = section["title"]
        rows = _spec_items(
            section.get("rows"), f"sections[{i}].rows", ("id", "title", "description")
        )
        graph_section["rows"] = [
            {
                k: row[k]
                for k in ("id", "title", "description")
                if row.get(k) is not None
            }
            for row in rows
        ]
        graph_sections.append(graph_section)
    action = {"button": button, "sections": graph_sections}
    return _envelope(
        to, "interactive", _interactive("list", body, action, header, footer), reply_to
    )


def media_message(
    to: str,
    media_type: str,
    *,
    id: str | None = None,  # Meta's field name, shadowing the builtin on purpose
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """An image/video/audio/document/sticker by uploaded media ``id`` or public ``link``."""
    if media_type not in MEDIA_TYPES:
        raise OutboundValidationError(
            "media_type",
            f"must be one of {', '.join(MEDIA_TYPES)} (got {brief(media_type)})",
        )
    fields = {"id": id, "link": link, "caption": caption, "filename": filename}
    return _envelope(
        to, media_type, {k: v for k, v in fields.items() if v is not None}, reply_to
    )


def location_message(
    to: str,
    latitude: float,
    longitude: float,
    *,
    name: str | None = None,
    address: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    fields = {
        "latitude": latitude,
        "longitude": longitude,
        "name": name,
        "address": address,
    }
    return _envelope(
        to, "location", {k: v for k, v in fields.items() if v is not None}, reply_to
    )


def template_message(
    to: str,
    name: str,
    language: str,
    components: Sequence[Mapping[str, Any]] | None = None,
    *,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """An approved template, the only kind Meta delivers outside the 24-hour window."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components is not None:
        template["components"] = (
            list(components) if isinstance(components, (list, tuple)) else components
        )
    return _envelope(to, "template", template, reply_to)


def read_receipt(wamid: str, typing_indicator: bool = False) -> dict[str, Any]:
    """Mark an inbound message read (blue ticks), optionally showing "typing..." for up to
    25 s or until we reply."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": wamid,
    }
    if typing_indicator:
        payload["typing_indicator"] = {"type": "text"}
    validate_outbound(payload)
    return payload


def _spec_items(
    value: Any, field: str, allowed: Sequence[str]
) -> list[Mapping[str, Any]]:
    """The list-of-objects parts of a spec, checked so builders never hit a TypeError."""
    if value is None:
        raise OutboundValidationError(field, "required")
    items = _seq(value, field)
    for i, item in enumerate(items):
        _only_keys(_obj(item, f"{field}[{i}]"), allowed, f"{field}[{i}]")
    return list(items)


# spec type -> (required keys, optional keys); every spec may also carry "reply_to".
_SPEC_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "text": (("body",), ("preview_url",)),
    "buttons": (("body", "buttons"), ("header", "footer")),
    "list": (("body", "button", "sections"), ("header", "footer")),
    "media": (("media_type",), ("id", "link", "caption", "filename")),
    "location": (("latitude", "longitude"), ("name", "address")),
    "template": (("name", "language"), ("components",)),
}


def build_message(to: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a stored outbound spec into the Graph API body, validated.

    Spec shapes (the contract with flows and conversations)::

        {"type": "text", "body": str, "preview_url": bool = False}
        {"type": "buttons", "body": str, "buttons": [{"id", "title"}], "header"?, "footer"?}
        {"type": "list", "body": str, "button": str,
         "sections": [{"title"?, "rows": [{"id", "title", "description"?}]}], "header"?, "footer"?}
        {"type": "media", "media_type": "image|video|audio|document|sticker",
         "id" | "link", "caption"?, "filename"?}
        {"type": "location", "latitude", "longitude", "name"?, "address"?}
        {"type": "template", "name": str, "language": "en_US", "components"?: [...]}

    Any spec may add ``"reply_to": wamid`` to quote a message. Optional keys may be null.
    Unknown keys are refused so a typo cannot silently drop content.
    """
    spec = _obj(spec, "spec")
    kind = _required(spec, "type", "")
    if not isinstance(kind, str) or kind not in _SPEC_KEYS:
        raise OutboundValidationError(
            "type",
            f"unknown spec type {brief(kind)} (expected one of {', '.join(SPEC_TYPES)})",
        )
    required, optional = _SPEC_KEYS[kind]
    _only_keys(spec, ("type", "reply_to", *required, *optional), "")
    for key in required:
        _required(spec, key, "")
    opts = {key: spec[key] for key in optional if spec.get(key) is not None}
    reply_to = spec.get("reply_to")

    if kind == "text":
        return text_message(to, spec["body"], reply_to=reply_to, **opts)
    if kind == "buttons":
        return button_message(
            to, spec["body"], spec["buttons"], reply_to=reply_to, **opts
        )
    if kind == "list":
        return list_message(
            to,
            spec["body"],
            spec["button"],
            spec["sections"],
            reply_to=reply_to,
            **opts,
        )
    if kind == "media":
        return media_message(to, spec["media_type"], reply_to=reply_to, **opts)
    if kind == "location":
        return location_message(
            to, spec["latitude"], spec["longitude"], reply_to=reply_to, **opts
        )
    return template_message(
        to, spec["name"], spec["language"], reply_to=reply_to, **opts
    )


# --------------------------------------------------------------------------------------
# Long texts
# --------------------------------------------------------------------------------------


def split_text(text: str, limit: int = TEXT_BODY_MAX) -> list[str]:
    """Split ``text`` into non-empty parts of at most ``limit`` characters, on line breaks.

    Lines are packed greedily, so ``"\\n".join(parts) == text`` when every line fits. A
    line longer than ``limit`` is cut after the last space that fits (the space stays at
    the end of the earlier part), or hard at ``limit`` when there is none. Only newlines at
    split points are ever dropped: besides the separator, an empty line is lost in the one
    case where no non-empty, in-limit parts can hold it (e.g. a blank line between two
    lines that are each exactly ``limit`` long), because an empty part cannot be sent.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    parts: list[str] = []
    current: str | None = None
    for line in text.split("\n") if text else ():
        if current is not None and len(current) + 1 + len(line) <= limit:
            current = f"{current}\n{line}"
            continue
        if not line and current and "\n" in current:
            # An empty line that does not fit would become an empty part: carry the
            # previous line over with it instead (it fits: current was exactly `limit`).
            head, tail = current.rsplit("\n", 1)
            if head:
                parts.append(head)
                current = f"{tail}\n"
                continue
        if current:
            parts.append(current)
        while len(line) > limit:
            cut = _cut_point(line, limit)
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current:
        parts.append(current)
    return parts


def _cut_point(line: str, limit: int) -> int:
    space = line.rfind(" ", 0, limit)
    if space > 0 and line[:space].strip():
        return space + 1
    return limit
