"""Filling a message template's variables: which slots a template has, and the send spec
built from values for them, checked before anything is sent.

Meta answers a template send with the wrong parameters with error 132000 ("number of
parameters does not match") only after the message was queued; the inbox, the REST API,
flows and campaigns call ``build_template_spec`` first so the operator gets the error, with
the slot named, and nothing is written.

A slot is named ``<component>.<placeholder>``: ``body.1``, ``header.1``, ``body.first_name``
(named parameters), ``button.0.1`` (the first URL button's suffix), or ``header.media`` for
an IMAGE / VIDEO / DOCUMENT header, whose value is a link (https://…) or a media id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meta_integration.message_bodies import OutboundValidationError

__all__ = ["TemplateSlot", "TemplateVariablesError", "build_template_spec", "template_slots"]

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
# Meta's limits on a text parameter: a body parameter may be long, header and button short.
_MAX_LEN = {"header": 60, "body": 1024, "button": 2000}


class TemplateVariablesError(OutboundValidationError):
    """The values given do not fit the template: missing, unknown, empty or too long."""


@dataclass(frozen=True, slots=True)
class TemplateSlot:
    key: str  # "body.1", "header.media", "button.0.1"
    component: str  # "header", "body", "button"
    placeholder: str  # "1", "first_name", "media"
    kind: str  # "text", or the header's media format in lower case
    example: str = ""
    button_index: int | None = None

    @property
    def label(self) -> str:
        where = f"button {self.button_index + 1}" if self.button_index is not None else self.component
        return f"{where} {{{{{self.placeholder}}}}}" if self.kind == "text" else f"{where} {self.kind}"


def _component(components: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in components if str(c.get("type", "")).upper() == kind), None)


def _examples(component: Mapping[str, Any], key: str) -> list[str]:
    example = component.get("example") or {}
    values = example.get(key) or []
    if values and isinstance(values[0], list):  # body_text is a list of lists
        values = values[0]
    return [str(v) for v in values]


def _text_slots(component: str, text: str, examples: Sequence[str], button_index: int | None = None
                ) -> list[TemplateSlot]:
    slots: list[TemplateSlot] = []
    seen: set[str] = set()
    for match in _PLACEHOLDER.finditer(text or ""):
        name = match.group(1)
        if name in seen:
            continue
        seen.add(name)
        prefix = component if button_index is None else f"button.{button_index}"
        example = examples[len(slots)] if len(slots) < len(examples) else ""
        slots.append(TemplateSlot(f"{prefix}.{name}", component, name, "text", example, button_index))
    return slots


def template_slots(components: Sequence[Mapping[str, Any]]) -> list[TemplateSlot]:
    """Every value a send of this template needs, in the order Meta lists them."""
    slots: list[TemplateSlot] = []
    header = _component(components, "HEADER")
    if header is not None:
        fmt = str(header.get("format", "TEXT")).upper()
        if fmt in MEDIA_FORMATS:
            slots.append(TemplateSlot("header.media", "header", "media", fmt.lower()))
        elif fmt == "TEXT":
            slots += _text_slots("header", str(header.get("text", "")), _examples(header, "header_text"))
    body = _component(components, "BODY")
    if body is not None:
        slots += _text_slots("body", str(body.get("text", "")), _examples(body, "body_text"))
    buttons = _component(components, "BUTTONS")
    for index, button in enumerate((buttons or {}).get("buttons", []) or []):
        if str(button.get("type", "")).upper() == "URL":
            slots += _text_slots("button", str(button.get("url", "")), [str(e) for e in button.get("example", [])],
                                 button_index=index)
    return slots


def _text_param(slot: TemplateSlot, value: str, named: bool) -> dict[str, Any]:
    param: dict[str, Any] = {"type": "text", "text": value}
    if named:
        param["parameter_name"] = slot.placeholder
    return param


def build_template_spec(
    name: str,
    language: str,
    components: Sequence[Mapping[str, Any]],
    values: Mapping[str, Any],
    *,
    named: bool = False,
) -> dict[str, Any]:
    """The outbound spec (``{"type": "template", ...}``) for a template filled with
    ``values`` keyed by slot; raises ``TemplateVariablesError`` naming the first slot that
    is missing, empty or too long, or a key the template does not have."""
    slots = template_slots(components)
    known = {slot.key for slot in slots}
    unknown = sorted(set(values) - known)
    if unknown:
        expected = ", ".join(sorted(known)) or "none"
        raise TemplateVariablesError(
            f"template.{unknown[0]}",
            f"{name} has no variable {unknown[0]!r} (it takes {len(slots)}: {expected})",
        )
    missing = [slot.key for slot in slots if slot.key not in values]
    if missing:
        raise TemplateVariablesError(
            f"template.{missing[0]}",
            f"{name} takes {len(slots)} variable(s) and {len(values)} were given; missing {', '.join(missing)}",
        )
    header: list[dict[str, Any]] = []
    body: list[dict[str, Any]] = []
    buttons: dict[int, list[dict[str, Any]]] = {}
    for slot in slots:
        raw = values[slot.key]
        value = "" if raw is None else str(raw).strip()
        if not value:
            raise TemplateVariablesError(f"template.{slot.key}", f"{slot.label} is empty")
        if slot.kind != "text":
            media: dict[str, str] = {"link": value} if value.startswith("https://") else {"id": value}
            if not value.startswith("https://") and not value.isdigit():
                raise TemplateVariablesError(
                    f"template.{slot.key}", f"{slot.label} must be an https:// link or a media id"
                )
            header.append({"type": slot.kind, slot.kind: media})
            continue
        limit = _MAX_LEN[slot.component]
        if len(value) > limit:
            raise TemplateVariablesError(
                f"template.{slot.key}", f"{slot.label} is {len(value)} characters (at most {limit})"
            )
        if slot.component in ("header", "body") and ("\n" in value or "\t" in value or "    " in value):
            # Meta refuses (132018) parameters with new lines, tabs or more than 4 spaces.
            raise TemplateVariablesError(
                f"template.{slot.key}", f"{slot.label} may not contain new lines, tabs or 4 spaces in a row"
            )
        param = _text_param(slot, value, named)
        if slot.button_index is not None:
            buttons.setdefault(slot.button_index, []).append(param)
        elif slot.component == "header":
            header.append(param)
        else:
            body.append(param)
    sent: list[dict[str, Any]] = []
    if header:
        sent.append({"type": "header", "parameters": header})
    if body:
        sent.append({"type": "body", "parameters": body})
    for index, params in sorted(buttons.items()):
        sent.append({"type": "button", "sub_type": "url", "index": str(index), "parameters": params})
    spec: dict[str, Any] = {"type": "template", "name": name, "language": language}
    if sent:
        spec["components"] = sent
    return spec
