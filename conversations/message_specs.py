"""Outbound message specs as the rest of the project sees them: types, limits, checks, splitting.

Flows and football compose replies as *specs* (``{"type": "buttons", ...}``) and need to
know the spec types, check a spec the way the sender will, and split a long text into parts.
They take all of that from here (or from ``conversations.services.sending``, which re-exports
it beside the send functions): only conversations talks to meta_integration's message-body
module, so there is one vocabulary and one place that decides what WhatsApp accepts.

Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meta_integration.message_bodies import (
    BUTTON_ID_MAX,
    BUTTON_TITLE_MAX,
    BUTTONS_MAX,
    CAPTION_MAX,
    FOOTER_TEXT_MAX,
    HEADER_TEXT_MAX,
    INTERACTIVE_BODY_MAX,
    LIST_BUTTON_MAX,
    LIST_ROWS_MAX,
    LIST_SECTIONS_MAX,
    ROW_DESCRIPTION_MAX,
    ROW_ID_MAX,
    ROW_TITLE_MAX,
    SECTION_TITLE_MAX,
    SPEC_TYPES,
    TEXT_BODY_MAX,
    OutboundValidationError,
    SpecType,
    build_message,
    split_text,
)

__all__ = [
    "BUTTONS_MAX",
    "BUTTON_ID_MAX",
    "BUTTON_TITLE_MAX",
    "CAPTION_MAX",
    "FOOTER_TEXT_MAX",
    "HEADER_TEXT_MAX",
    "INTERACTIVE_BODY_MAX",
    "LIST_BUTTON_MAX",
    "LIST_ROWS_MAX",
    "LIST_SECTIONS_MAX",
    "ROW_DESCRIPTION_MAX",
    "ROW_ID_MAX",
    "ROW_TITLE_MAX",
    "SECTION_TITLE_MAX",
    "SPEC_TYPES",
    "TEXT_BODY_MAX",
    "OutboundValidationError",
    "SpecType",
    "split_text",
    "validate_spec",
    "validate_specs",
]


def validate_spec(to: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The Graph API body for ``spec`` to ``to``; raises ``OutboundValidationError`` naming the field."""
    return build_message(to, spec)


def validate_specs(to: str, specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Build (and so validate) every part; an error names the part: ``parts[3].text.body: ...``."""
    payloads = []
    for index, spec in enumerate(specs):
        try:
            payloads.append(build_message(to, spec))
        except OutboundValidationError as exc:
            raise OutboundValidationError(f"parts[{index}].{exc.field}", exc.message) from None
    return payloads
