"""Transition conditions and the keyword normaliser.

A transition's ``condition`` is a small JSON object (``{"type": "keyword", "keywords":
["yes"]}``) so operators can edit it in admin and it survives export/import unchanged.
:func:`evaluate` decides it against a :class:`ConditionContext`; :func:`check_condition`
lists what is wrong with one, for validation at save/import time.

Keyword matching works on whole words after normalising case and accents, because WhatsApp
users type "Olá", "OLA" and "ola!" for the same thing, and a substring test would let the
keyword "hi" fire on "this".

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from flows.templating import TemplateSyntaxError, lookup, parse_path

__all__ = [
    "CONDITION_KEYS",
    "INBOUND_CONDITIONS",
    "MESSAGE_TYPES",
    "CompareOp",
    "ConditionContext",
    "ConditionType",
    "check_condition",
    "check_fields",
    "check_pattern",
    "evaluate",
    "keyword_matches",
    "keyword_position",
    "normalize_text",
]

MESSAGE_TYPES = frozenset(
    {
        "text",
        "interactive",
        "button",
        "location",
        "image",
        "document",
        "audio",
        "video",
        "sticker",
        "contacts",
        "reaction",
        "order",
        "system",
        "unsupported",
    }
)
"""Inbound WhatsApp message types (``messages[].type`` in the Cloud API webhook)."""

_NON_WORD = re.compile(r"[^0-9a-z]+")
_MAX_REGEX_INPUT = 4096  # WhatsApp's own text limit; bounds regex work on hostile input


class ConditionType(StrEnum):
    ALWAYS = "always"
    KEYWORD = "keyword"
    REGEX = "regex"
    REPLY_ID = "reply_id"
    MESSAGE_TYPE = "message_type"
    VARIABLE_EQUALS = "variable_equals"
    VARIABLE_EXISTS = "variable_exists"
    VARIABLE_CONTAINS = "variable_contains"
    VARIABLE_COMPARE = "variable_compare"
    ANSWER_VALID = "answer_valid"


class CompareOp(StrEnum):
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    EQ = "eq"
    NE = "ne"


INBOUND_CONDITIONS = frozenset(
    {
        ConditionType.KEYWORD,
        ConditionType.REGEX,
        ConditionType.REPLY_ID,
        ConditionType.MESSAGE_TYPE,
        ConditionType.ANSWER_VALID,
    }
)
"""Conditions that look at the inbound message itself. Only these can route an *invalid*
answer to a question (e.g. a "skip" keyword); ``always`` and variable conditions need a
valid answer, otherwise they would swallow every typo instead of re-prompting."""

# Keys each condition type accepts besides "type": name -> required?
_KEYS: dict[ConditionType, dict[str, bool]] = {
    ConditionType.ALWAYS: {},
    ConditionType.KEYWORD: {"keywords": True},
    ConditionType.REGEX: {"pattern": True, "ignore_case": False},
    ConditionType.REPLY_ID: {"ids": True},
    ConditionType.MESSAGE_TYPE: {"types": True},
    ConditionType.VARIABLE_EQUALS: {"variable": True, "value": True},
    ConditionType.VARIABLE_EXISTS: {"variable": True},
    ConditionType.VARIABLE_CONTAINS: {"variable": True, "value": True},
    ConditionType.VARIABLE_COMPARE: {"variable": True, "op": True, "value": True},
    ConditionType.ANSWER_VALID: {"valid": False},
}


CONDITION_KEYS: Mapping[ConditionType, Mapping[str, bool]] = MappingProxyType(
    {kind: MappingProxyType(keys) for kind, keys in _KEYS.items()}
)
"""Each condition type's keys besides "type" (name -> required?): what validation accepts."""


@dataclass(frozen=True)
class ConditionContext:
    """What a condition may look at: the inbound message, the template context, validity.

    ``reply_id`` is the tapped button/list id, or for a choice question the id of the option
    the user typed, so ``reply_id`` conditions work whether the user tapped or typed.
    ``answer_valid`` is None outside a question step.
    """

    text: str | None = None
    reply_id: str | None = None
    message_type: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    answer_valid: bool | None = None


def normalize_text(text: str | None) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces: "¡Olá, MUNDO!" -> "ola mundo".

    Idempotent, so normalising a keyword and a message the same way makes them comparable.
    """
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # casefold() can produce new combining marks or compatibility forms; normalise again.
    folded = unicodedata.normalize("NFKD", stripped.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", folded).strip()


def keyword_position(text: str | None, keyword: str) -> int | None:
    """Index of the first word where ``keyword`` (one or more words) occurs whole, else None."""
    words = normalize_text(text).split()
    wanted = normalize_text(keyword).split()
    if not wanted or len(wanted) > len(words):
        return None
    size = len(wanted)
    for index in range(len(words) - size + 1):
        if words[index : index + size] == wanted:
            return index
    return None


def keyword_matches(text: str | None, keyword: str) -> bool:
    """Whole-word, case- and accent-insensitive match: "hi" matches "Hi there" but not "this"."""
    return keyword_position(text, keyword) is not None


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, Decimal, str)):
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return None
        return number if number.is_finite() else None
    return None


def _equals(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    left_number, right_number = _as_number(left), _as_number(right)
    if left_number is not None and right_number is not None and not (isinstance(left, str) and isinstance(right, str)):
        return left_number == right_number
    return left == right


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and normalize_text(item) in normalize_text(container)
    if isinstance(container, Mapping):
        return item in container
    if isinstance(container, (list, tuple)):
        return any(_equals(element, item) for element in container)
    return False


def _compare(op: CompareOp, left: Decimal, right: Decimal) -> bool:
    return {
        CompareOp.LT: left < right,
        CompareOp.LE: left <= right,
        CompareOp.GT: left > right,
        CompareOp.GE: left >= right,
        CompareOp.EQ: left == right,
        CompareOp.NE: left != right,
    }[op]


def evaluate(condition: Mapping[str, Any], context: ConditionContext) -> bool:
    """True if ``condition`` holds. Never raises: a malformed condition simply doesn't match
    (validation refuses those at save time; this keeps a bad row from crashing a chat)."""
    try:
        kind = ConditionType(condition.get("type", ConditionType.ALWAYS))
    except (ValueError, AttributeError):
        return False
    try:
        return _evaluate(kind, condition, context)
    except (re.error, TypeError, ValueError, KeyError):
        return False


def _evaluate(kind: ConditionType, condition: Mapping[str, Any], context: ConditionContext) -> bool:
    if kind is ConditionType.ALWAYS:
        return True
    if kind is ConditionType.KEYWORD:
        return any(keyword_matches(context.text, keyword) for keyword in condition["keywords"])
    if kind is ConditionType.REGEX:
        if context.text is None:
            return False
        flags = re.IGNORECASE if condition.get("ignore_case") else 0
        return re.search(condition["pattern"], context.text[:_MAX_REGEX_INPUT], flags) is not None
    if kind is ConditionType.REPLY_ID:
        return context.reply_id is not None and context.reply_id in tuple(condition["ids"])
    if kind is ConditionType.MESSAGE_TYPE:
        return context.message_type in tuple(condition["types"])
    if kind is ConditionType.ANSWER_VALID:
        return context.answer_valid is bool(condition.get("valid", True))
    found, value = lookup(context.variables, condition["variable"])
    if kind is ConditionType.VARIABLE_EXISTS:
        return found and value is not None
    if not found:
        return False
    if kind is ConditionType.VARIABLE_EQUALS:
        return _equals(value, condition["value"])
    if kind is ConditionType.VARIABLE_CONTAINS:
        return _contains(value, condition["value"])
    left, right = _as_number(value), _as_number(condition["value"])
    if left is None or right is None:
        return False
    return _compare(CompareOp(condition["op"]), left, right)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)


def check_fields(spec: Mapping[str, Any], allowed: Mapping[str, bool], what: str) -> list[tuple[str, str]]:
    """Unknown keys (besides ``type``) and missing required keys of a typed config mapping.

    ``allowed`` maps each field to whether it is required; ``what`` names the thing for the
    message ("a keyword condition"). Shared by conditions and reply expectations.
    """
    problems = [(str(key), f"unknown field for {what}") for key in spec if key != "type" and key not in allowed]
    problems += [(key, "is required") for key, required in allowed.items() if required and key not in spec]
    return problems


def check_pattern(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems with the ``pattern`` (required) and ``ignore_case`` keys of a typed config.

    Shared by regex conditions and regex reply expectations, so both refuse the same patterns
    with the same words.
    """
    problems: list[tuple[str, str]] = []
    pattern = spec["pattern"]
    if not isinstance(pattern, str) or not pattern:
        problems.append(("pattern", "must be a non-empty string"))
    else:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(("pattern", f"invalid regular expression: {exc}"))
    if not isinstance(spec.get("ignore_case", False), bool):
        problems.append(("ignore_case", "must be true or false"))
    return problems


def check_condition(condition: Any, *, message_types: Collection[str] | None = None) -> list[tuple[str, str]]:
    """Problems with a condition as ``(relative_field, message)`` pairs; empty means valid.

    The relative field is "" for the condition itself, or e.g. "pattern", "keywords[1]".
    """
    if not isinstance(condition, Mapping):
        return [("", 'must be an object like {"type": "always"}')]
    raw_type = condition.get("type")
    if raw_type is None:
        return [("type", "is required")]
    try:
        kind = ConditionType(raw_type)
    except (ValueError, TypeError):
        known = ", ".join(t.value for t in ConditionType)
        return [("type", f"unknown condition type {raw_type!r} (known: {known})")]
    problems = check_fields(condition, _KEYS[kind], f"a {kind.value} condition")
    if problems:
        return problems

    if kind is ConditionType.KEYWORD:
        keywords = condition["keywords"]
        if not _is_str_list(keywords) or not keywords:
            problems.append(("keywords", "must be a non-empty list of strings"))
        else:
            for index, keyword in enumerate(keywords):
                if not normalize_text(keyword):
                    problems.append((f"keywords[{index}]", "must contain at least one letter or digit"))
    elif kind is ConditionType.REGEX:
        problems += check_pattern(condition)
    elif kind is ConditionType.REPLY_ID:
        ids = condition["ids"]
        if not _is_str_list(ids) or not ids or any(not item for item in ids):
            problems.append(("ids", "must be a non-empty list of non-empty strings"))
    elif kind is ConditionType.MESSAGE_TYPE:
        types = condition["types"]
        if not _is_str_list(types) or not types:
            problems.append(("types", "must be a non-empty list of strings"))
        elif message_types is not None:
            for index, item in enumerate(types):
                if item not in message_types:
                    problems.append((f"types[{index}]", f"unknown message type {item!r}"))
    elif kind is ConditionType.ANSWER_VALID:
        if not isinstance(condition.get("valid", True), bool):
            problems.append(("valid", "must be true or false"))
    elif kind in (
        ConditionType.VARIABLE_EQUALS,
        ConditionType.VARIABLE_EXISTS,
        ConditionType.VARIABLE_CONTAINS,
        ConditionType.VARIABLE_COMPARE,
    ):
        try:
            parse_path(condition["variable"])
        except TemplateSyntaxError as exc:
            problems.append(("variable", str(exc)))
        if kind is ConditionType.VARIABLE_COMPARE:
            op = condition["op"]
            if op not in {o.value for o in CompareOp}:
                known = ", ".join(o.value for o in CompareOp)
                problems.append(("op", f"unknown comparison {op!r} (known: {known})"))
            if _as_number(condition["value"]) is None:
                problems.append(("value", "must be a number"))
    return problems
