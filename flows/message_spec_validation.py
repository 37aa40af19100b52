"""Validation of outbound message specs inside flows (``send_message`` messages, question
prompts): shape, template syntax and the WhatsApp limits that can be checked while the text
is still static, then the sender's own check for fully static specs.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.definitions import FieldError, MessageType, thaw
from flows.field_checks import (
    check_keys,
    check_templates_in,
    check_text,
    check_unique_ids,
    is_number,
    join_path,
)
from flows.templating import has_placeholders
from flows.validators import MEDIA_TYPES
from meta_integration.outbound import OutboundValidationError, build_message

__all__ = ["validate_message_spec"]

# WhatsApp Cloud API limits (interactive messages), checked here only where the text is static.
BODY_MAX = 1024
TEXT_BODY_MAX = 4096
HEADER_MAX = 60
FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
LIST_ROW_ID_MAX = 200
LIST_SECTION_TITLE_MAX = 24
CAPTION_MAX = 1024


def _check_buttons(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = check_keys(spec, path, ("type", "body", "buttons"), ("header", "footer"), "a buttons message")
    if "body" in spec:
        errors += check_text(spec["body"], join_path(path, "body"), max_length=BODY_MAX)
    for key, limit in (("header", HEADER_MAX), ("footer", FOOTER_MAX)):
        if key in spec:
            errors += check_text(spec[key], join_path(path, key), max_length=limit)
    buttons = spec.get("buttons")
    if "buttons" not in spec:
        return errors
    buttons_path = join_path(path, "buttons")
    if not isinstance(buttons, (list, tuple)) or not buttons:
        return [*errors, FieldError(buttons_path, "must be a non-empty list")]
    if len(buttons) > BUTTONS_MAX:
        errors.append(FieldError(buttons_path, f"has {len(buttons)} buttons; WhatsApp allows at most {BUTTONS_MAX}"))
    ids: list[tuple[str, Any]] = []
    for index, button in enumerate(buttons):
        button_path = f"{buttons_path}[{index}]"
        if not isinstance(button, Mapping):
            errors.append(FieldError(button_path, 'must be an object {"id": ..., "title": ...}'))
            continue
        errors += check_keys(button, button_path, ("id", "title"), (), "a button")
        if "id" in button:
            errors += check_text(button["id"], join_path(button_path, "id"), max_length=BUTTON_ID_MAX)
            ids.append((join_path(button_path, "id"), button["id"]))
        if "title" in button:
            errors += check_text(button["title"], join_path(button_path, "title"), max_length=BUTTON_TITLE_MAX)
    return errors + check_unique_ids(ids, "button")


def _check_list(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = check_keys(spec, path, ("type", "body", "button", "sections"), ("header", "footer"), "a list message")
    if "body" in spec:
        errors += check_text(spec["body"], join_path(path, "body"), max_length=TEXT_BODY_MAX)
    if "button" in spec:
        errors += check_text(spec["button"], join_path(path, "button"), max_length=LIST_BUTTON_MAX)
    for key, limit in (("header", HEADER_MAX), ("footer", FOOTER_MAX)):
        if key in spec:
            errors += check_text(spec[key], join_path(path, key), max_length=limit)
    if "sections" not in spec:
        return errors
    sections = spec["sections"]
    sections_path = join_path(path, "sections")
    if not isinstance(sections, (list, tuple)) or not sections:
        return [*errors, FieldError(sections_path, "must be a non-empty list")]
    if len(sections) > LIST_SECTIONS_MAX:
        errors.append(
            FieldError(sections_path, f"has {len(sections)} sections; WhatsApp allows at most {LIST_SECTIONS_MAX}")
        )
    total_rows = 0
    ids: list[tuple[str, Any]] = []
    for s_index, section in enumerate(sections):
        section_path = f"{sections_path}[{s_index}]"
        if not isinstance(section, Mapping):
            errors.append(FieldError(section_path, 'must be an object {"title": ..., "rows": [...]}'))
            continue
        errors += check_keys(section, section_path, ("rows",), ("title",), "a list section")
        if "title" in section:
            errors += check_text(section["title"], join_path(section_path, "title"), max_length=LIST_SECTION_TITLE_MAX)
        elif len(sections) > 1:
            errors.append(FieldError(join_path(section_path, "title"), "is required when a list has several sections"))
        rows = section.get("rows")
        if "rows" not in section:
            continue
        rows_path = join_path(section_path, "rows")
        if not isinstance(rows, (list, tuple)) or not rows:
            errors.append(FieldError(rows_path, "must be a non-empty list"))
            continue
        total_rows += len(rows)
        for r_index, row in enumerate(rows):
            row_path = f"{rows_path}[{r_index}]"
            if not isinstance(row, Mapping):
                errors.append(FieldError(row_path, 'must be an object {"id": ..., "title": ...}'))
                continue
            errors += check_keys(row, row_path, ("id", "title"), ("description",), "a list row")
            if "id" in row:
                errors += check_text(row["id"], join_path(row_path, "id"), max_length=LIST_ROW_ID_MAX)
                ids.append((join_path(row_path, "id"), row["id"]))
            if "title" in row:
                errors += check_text(row["title"], join_path(row_path, "title"), max_length=LIST_ROW_TITLE_MAX)
            if "description" in row:
                errors += check_text(
                    row["description"], join_path(row_path, "description"), max_length=LIST_ROW_DESCRIPTION_MAX
                )
    if total_rows > LIST_ROWS_MAX:
        errors.append(
            FieldError(sections_path, f"has {total_rows} rows in total; WhatsApp allows at most {LIST_ROWS_MAX}")
        )
    return errors + check_unique_ids(ids, "row")


def _check_media(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = check_keys(spec, path, ("type", "media_type"), ("link", "id", "caption", "filename"), "a media message")
    media_type = spec.get("media_type")
    if "media_type" in spec and media_type not in MEDIA_TYPES:
        errors.append(
            FieldError(
                join_path(path, "media_type"), f"unknown media type {media_type!r} (known: {', '.join(MEDIA_TYPES)})"
            )
        )
    sources = [key for key in ("link", "id") if key in spec]
    if len(sources) != 1:
        errors.append(FieldError(path, 'needs exactly one of "link" or "id"'))
    for key in sources:
        errors += check_text(spec[key], join_path(path, key))
    if "caption" in spec:
        if media_type in ("audio", "sticker"):
            errors.append(FieldError(join_path(path, "caption"), f"WhatsApp does not allow a caption on {media_type}"))
        else:
            errors += check_text(spec["caption"], join_path(path, "caption"), max_length=CAPTION_MAX)
    if "filename" in spec:
        if media_type != "document":
            errors.append(FieldError(join_path(path, "filename"), "only documents have a filename"))
        else:
            errors += check_text(spec["filename"], join_path(path, "filename"))
    return errors


def _check_location(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = check_keys(spec, path, ("type", "latitude", "longitude"), ("name", "address"), "a location message")
    for key, bound in (("latitude", 90), ("longitude", 180)):
        if key not in spec:
            continue
        value = spec[key]
        if isinstance(value, str) and has_placeholders(value):
            errors += check_text(value, join_path(path, key))
        elif not is_number(value) or not -bound <= value <= bound:
            errors.append(FieldError(join_path(path, key), f"must be a number between -{bound} and {bound}"))
    for key in ("name", "address"):
        if key in spec:
            errors += check_text(spec[key], join_path(path, key))
    return errors


def _check_template_message(spec: Mapping[str, Any], path: str) -> list[FieldError]:
    errors = check_keys(spec, path, ("type", "name", "language"), ("components", "variables"), "a template message")
    for key in ("name", "language"):
        if key in spec:
            errors += check_text(spec[key], join_path(path, key))
    if "variables" in spec:  # values by slot ("body.1"), rendered, then checked against the synced template
        variables = spec["variables"]
        if "components" in spec:
            errors.append(FieldError(join_path(path, "variables"), "give variables or components, not both"))
        if not isinstance(variables, Mapping) or not all(isinstance(v, str) for v in variables.values()):
            errors.append(
                FieldError(join_path(path, "variables"), 'must map slots to texts, e.g. {"body.1": "{{ name }}"}'))
        else:
            errors += check_templates_in(dict(variables), join_path(path, "variables"))
    if "components" in spec:
        components = spec["components"]
        if not isinstance(components, (list, tuple)) or not all(isinstance(c, Mapping) for c in components):
            errors.append(FieldError(join_path(path, "components"), "must be a list of objects"))
        else:
            errors += check_templates_in(components, join_path(path, "components"))
    return errors


_SPEC_CHECKERS = {
    MessageType.BUTTONS: _check_buttons,
    MessageType.LIST: _check_list,
    MessageType.MEDIA: _check_media,
    MessageType.LOCATION: _check_location,
    MessageType.TEMPLATE: _check_template_message,
}


def validate_message_spec(spec: Any, path: str = "message") -> list[FieldError]:
    """Problems with an outbound message spec (shape, template syntax, static WhatsApp limits).

    Limits are checked only for text with no placeholders; rendered text is checked again by
    the sender. This is a minimal local check, not the authoritative one.
    """
    if not isinstance(spec, Mapping):
        return [FieldError(path, 'must be a message object like {"type": "text", "body": "..."}')]
    raw_type = spec.get("type")
    if raw_type is None:
        return [FieldError(join_path(path, "type"), "is required")]
    try:
        kind = MessageType(raw_type)
    except (ValueError, TypeError):
        known = ", ".join(t.value for t in MessageType)
        return [FieldError(join_path(path, "type"), f"unknown message type {raw_type!r} (known: {known})")]
    if kind is MessageType.TEXT:
        errors = check_keys(spec, path, ("type", "body"), ("preview_url",), "a text message")
        if "body" in spec:
            # Long static text is fine: the sender splits it into ordered parts.
            errors += check_text(spec["body"], join_path(path, "body"))
        if "preview_url" in spec and not isinstance(spec["preview_url"], bool):
            errors.append(FieldError(join_path(path, "preview_url"), "must be true or false"))
    else:
        errors = _SPEC_CHECKERS[kind](spec, path)
    if not errors:
        errors = _check_with_sender(spec, kind, path)
    return errors


def _check_with_sender(spec: Mapping[str, Any], kind: MessageType, path: str) -> list[FieldError]:
    """Run a fully static spec through ``meta_integration.outbound.build_message``, the
    authoritative WhatsApp limit check, so a flow fails at save time exactly where the sender
    would fail at send time. Templated specs are checked again after rendering, by the sender.
    """
    if has_placeholders(spec) or (kind is MessageType.TEMPLATE and "variables" in spec):
        return []  # a template's variables are checked against the synced template when sent
    if kind is MessageType.TEXT and len(spec.get("body", "")) > TEXT_BODY_MAX:
        return []  # the sender splits long text into ordered parts
    try:
        build_message("0", thaw(spec))
    except OutboundValidationError as exc:
        return [FieldError(path, f"WhatsApp would refuse this message: {exc}")]
    return []
