"""Safe ``{{ placeholder }}`` templating for flow messages.

Flow text is written by operators in admin and rendered with data that partly comes from
WhatsApp users, so the language is deliberately tiny: dotted lookups through mappings and
sequences, plus a handful of formatting filters. There is no attribute access, no calls and
no names starting with ``_``; a template can never reach Python internals whatever an operator
types. Rendering never raises: a missing variable renders empty and is *reported*, so the
engine can log it instead of sending a crash to a customer.

Grammar inside ``{{ }}``::

    expression := path ( "|" filter )*
    path       := name ( "." (name | index) )*       e.g. contact.name, fixtures.0.home
    filter     := default:"text" | upper | lower | title | money

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

__all__ = [
    "FILTERS",
    "RenderResult",
    "SpecRenderResult",
    "ValueRenderResult",
    "check_template",
    "has_placeholders",
    "lookup",
    "parse_path",
    "render",
    "render_spec",
    "render_value",
    "to_text",
]

# A placeholder never spans a "}}", so "{{ a }} {{ b }}" is two placeholders, not one.
_PLACEHOLDER = re.compile(r"\{\{((?:(?!\}\}).)*)\}\}", re.DOTALL)
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*\Z")
_FILTER = re.compile(
    r"""\|\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*"""
    r"""(?::\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'))?\s*"""
)
_TWO_PLACES = Decimal("0.01")

FILTERS: dict[str, bool] = {
    # filter name -> whether it takes a quoted argument
    "default": True,
    "upper": False,
    "lower": False,
    "title": False,
    "money": False,
}
"""The filters a template may use, and whether each takes a ``:"argument"``."""

# Keys of a message spec that name its structure rather than hold text; never templated.
_STRUCTURAL_KEYS = frozenset({"type", "media_type"})


class TemplateSyntaxError(ValueError):
    """A ``{{ }}`` expression that is not in the grammar (reported, never raised to callers)."""


@dataclass(frozen=True)
class _Expression:
    path: tuple[str, ...]
    filters: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class RenderResult:
    """Rendered text plus what could not be resolved, so callers can log it."""

    text: str
    missing: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValueRenderResult:
    """Result of :func:`render_value`: a JSON-like value with templates resolved."""

    value: Any
    missing: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpecRenderResult:
    """Result of :func:`render_spec`: a plain-dict message spec ready to send."""

    spec: dict[str, Any]
    missing: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def parse_path(path: str) -> tuple[str, ...]:
    """Split ``a.b.0`` into segments, refusing private names and anything that is not a path.

    Raises :class:`TemplateSyntaxError` with a reason an operator can act on.
    """
    if not isinstance(path, str) or not path.strip():
        raise TemplateSyntaxError("empty variable name")
    source = path.strip()
    if "(" in source or ")" in source:
        raise TemplateSyntaxError(f"calls are not allowed: {source!r}")
    segments = tuple(source.split("."))
    for segment in segments:
        if segment.startswith("_"):
            raise TemplateSyntaxError(f"names starting with '_' are not allowed: {source!r}")
        if not _SEGMENT.match(segment):
            raise TemplateSyntaxError(f"invalid variable name: {source!r}")
    if not segments[0][0].isalpha():
        raise TemplateSyntaxError(f"a variable name must start with a letter: {source!r}")
    return segments


@lru_cache(maxsize=2048)
def _parse_expression(source: str) -> _Expression:
    head, bar, _ = source.partition("|")
    path = parse_path(head)
    filters: list[tuple[str, str | None]] = []
    rest = source[len(head) :] if bar else ""
    position = 0
    while position < len(rest):
        match = _FILTER.match(rest, position)
        if match is None or match.end() == position:
            raise TemplateSyntaxError(f"invalid filter syntax: {rest[position:].strip()!r}")
        name = match["name"]
        argument = match["dq"] if match["dq"] is not None else match["sq"]
        if name not in FILTERS:
            raise TemplateSyntaxError(f"unknown filter {name!r} (known: {', '.join(FILTERS)})")
        if FILTERS[name] and argument is None:
            raise TemplateSyntaxError(f'filter {name!r} needs an argument, e.g. {name}:"text"')
        if not FILTERS[name] and argument is not None:
            raise TemplateSyntaxError(f"filter {name!r} takes no argument")
        filters.append((name, argument))
        position = match.end()
    return _Expression(path=path, filters=tuple(filters))


_MISSING = object()


def lookup(context: Any, path: str | Sequence[str]) -> tuple[bool, Any]:
    """Resolve a dotted path through mappings (keys) and sequences (digit indexes) only.

    Returns ``(found, value)``. Never uses ``getattr``: objects that are neither a mapping nor
    a sequence are opaque, which is what keeps templates and conditions from reaching
    internals.
    """
    try:
        segments = parse_path(path) if isinstance(path, str) else tuple(path)
    except TemplateSyntaxError:
        return False, None
    current = context
    for segment in segments:
        if isinstance(current, Mapping):
            if segment not in current:
                return False, None
            current = current[segment]
        elif (
            isinstance(current, Sequence)
            and not isinstance(current, (str, bytes, bytearray))
            and segment.isdigit()
            and int(segment) < len(current)
        ):
            current = current[int(segment)]
        else:
            return False, None
    return True, current


def to_text(value: Any) -> str:
    """How a resolved value appears in a message: None is empty, containers are JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(_plain(value), ensure_ascii=False, default=str, separators=(", ", ": "))
    return str(value)


def _money(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return value
    if not amount.is_finite():
        return value
    return str(amount.quantize(_TWO_PLACES, rounding=ROUND_HALF_UP))


def _evaluate(expression: _Expression, context: Mapping[str, Any]) -> tuple[Any, bool]:
    """Return (value, reported_missing)."""
    found, value = lookup(context, expression.path)
    has_default = any(name == "default" for name, _ in expression.filters)
    for name, argument in expression.filters:
        if name == "default":
            if not found or value is None or value == "":
                value, found = argument, True
        elif name == "money":
            value = _money(value)
        elif name == "upper":
            value = to_text(value).upper()
        elif name == "lower":
            value = to_text(value).lower()
        elif name == "title":
            value = to_text(value).title()
    return (value if found else None), (not found and not has_default)


def _render_text(template: str, context: Mapping[str, Any], missing: list[str], errors: list[str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        source = match.group(1).strip()
        try:
            expression = _parse_expression(source)
        except TemplateSyntaxError as exc:
            errors.append(str(exc))
            return ""
        value, is_missing = _evaluate(expression, context)
        if is_missing:
            missing.append(".".join(expression.path))
        return to_text(value)

    return _PLACEHOLDER.sub(substitute, template)


def _dedupe(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def render(template: str, context: Mapping[str, Any]) -> RenderResult:
    """Render ``template`` with ``context``; never raises on any template text.

    Missing variables render empty and are listed in ``missing`` (unless a ``default`` filter
    covered them); malformed expressions render empty and are listed in ``errors``.
    """
    if not isinstance(template, str):
        return RenderResult(text=to_text(template))
    missing: list[str] = []
    errors: list[str] = []
    text = _render_text(template, context, missing, errors)
    return RenderResult(text=text, missing=_dedupe(missing), errors=_dedupe(errors))


def has_placeholders(value: Any) -> bool:
    """True if any string inside ``value`` contains a ``{{ }}`` placeholder."""
    if isinstance(value, str):
        return _PLACEHOLDER.search(value) is not None
    if isinstance(value, Mapping):
        return any(has_placeholders(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_placeholders(v) for v in value)
    return False


def check_template(template: str) -> list[str]:
    """Problems with a template's syntax, for validation at save/import time (empty = fine)."""
    if not isinstance(template, str):
        return []
    problems: list[str] = []
    for match in _PLACEHOLDER.finditer(template):
        try:
            _parse_expression(match.group(1).strip())
        except TemplateSyntaxError as exc:
            problems.append(str(exc))
    remainder = _PLACEHOLDER.sub("", template)
    if "{{" in remainder:
        problems.append("unclosed '{{' (every '{{' needs a matching '}}')")
    return problems


def _render_any(value: Any, context: Mapping[str, Any], missing: list[str], errors: list[str]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None:
            # A string that is exactly one placeholder keeps the value's type (an int stays
            # an int when passed to an action), instead of being flattened to text.
            try:
                expression = _parse_expression(whole.group(1).strip())
            except TemplateSyntaxError as exc:
                errors.append(str(exc))
                return None
            resolved, is_missing = _evaluate(expression, context)
            if is_missing:
                missing.append(".".join(expression.path))
            return _plain(resolved)
        return _render_text(value, context, missing, errors)
    if isinstance(value, Mapping):
        return {key: _render_any(item, context, missing, errors) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_render_any(item, context, missing, errors) for item in value]
    return value


def render_value(value: Any, context: Mapping[str, Any]) -> ValueRenderResult:
    """Render every string inside a JSON-like value (action inputs, variable values).

    A string that is exactly ``"{{ expr }}"`` yields the resolved value itself (typed; None if
    missing); any other string is rendered as text. Containers come back as plain dicts/lists.
    """
    missing: list[str] = []
    errors: list[str] = []
    rendered = _render_any(value, context, missing, errors)
    return ValueRenderResult(value=rendered, missing=_dedupe(missing), errors=_dedupe(errors))


def _render_spec_any(value: Any, context: Mapping[str, Any], missing: list[str], errors: list[str]) -> Any:
    if isinstance(value, str):
        return _render_text(value, context, missing, errors)
    if isinstance(value, Mapping):
        return {
            key: (_plain(item) if key in _STRUCTURAL_KEYS else _render_spec_any(item, context, missing, errors))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_render_spec_any(item, context, missing, errors) for item in value]
    return value


def render_spec(spec: Mapping[str, Any], context: Mapping[str, Any]) -> SpecRenderResult:
    """Render every text field of a message spec (body, titles, ids, captions, components...).

    Structural keys (``type``, ``media_type``) are copied verbatim. The result is a plain,
    JSON-serialisable dict, safe to store on an outbound Message row.
    """
    missing: list[str] = []
    errors: list[str] = []
    rendered = _render_spec_any(spec, context, missing, errors)
    return SpecRenderResult(spec=rendered, missing=_dedupe(missing), errors=_dedupe(errors))


def _plain(value: Any) -> Any:
    """Deep-copy mappings/sequences into dicts/lists (thaws frozen configs for output)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
