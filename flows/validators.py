"""Validation of a user's reply to a question step.

Each validator is a pure function returning :class:`ReplyCheck` ``(ok, value, hint)``:
``value`` is the typed, normalised answer to store in the flow's variables (JSON-serialisable,
because sessions are stored as JSON), and ``hint`` is a default re-prompt that names what was
expected, for when the question has no ``invalid_hint`` of its own.

:func:`check_expectation` validates a question's ``expect`` config at save/import time, so an
impossible question (``min_length`` > ``max_length``, a regex that doesn't compile, a choice
with no options) is refused before any user meets it.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from flows.conditions import check_fields, check_pattern, normalize_text
from flows.templating import TemplateSyntaxError, parse_path

__all__ = [
    "MEDIA_TYPES",
    "Choice",
    "ReplyCheck",
    "ReplyLike",
    "ReplyType",
    "check_expectation",
    "check_reply",
    "choices_from_spec",
    "normalize_expectation",
    "parse_choices",
    "validate_choice",
    "validate_date",
    "validate_email",
    "validate_location",
    "validate_media",
    "validate_number",
    "validate_phone",
    "validate_regex",
    "validate_text",
]

MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
"""WhatsApp media message types (inbound and outbound)."""

_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_AMBIGUOUS_COMMA = re.compile(r",\d{3}$")
_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_PHONE_CHARS = re.compile(r"\+?[\d\s().-]+")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_MAX_INPUT = 4096  # WhatsApp's text limit; also bounds regex work on hostile input


class ReplyType(StrEnum):
    """What a question expects back."""

    TEXT = "text"
    NUMBER = "number"
    EMAIL = "email"
    PHONE = "phone"
    DATE = "date"
    CHOICE = "choice"
    REGEX = "regex"
    MEDIA = "media"
    LOCATION = "location"


class ReplyCheck(NamedTuple):
    """Outcome of validating one reply: ``ok``, the typed ``value``, and a re-prompt ``hint``."""

    ok: bool
    value: Any = None
    hint: str = ""


class ReplyLike(Protocol):
    """The parts of an inbound message a validator reads (``flows.engine_types.Inbound`` fits)."""

    message_type: str
    text: str | None
    reply_id: str | None
    reply_title: str | None
    latitude: float | None
    longitude: float | None
    media_id: str | None


@dataclass(frozen=True)
class Choice:
    """One option of a choice question: the id stored/compared, the title a user may type."""

    id: str
    title: str


# ---------------------------------------------------------------------------------------
# Individual validators (pure; take plain values)
# ---------------------------------------------------------------------------------------


def _length_hint(min_length: int | None, max_length: int | None) -> str:
    if min_length is not None and max_length is not None:
        return f"Please reply with text between {min_length} and {max_length} characters."
    if min_length is not None:
        return f"Please reply with at least {min_length} characters."
    if max_length is not None:
        return f"Please reply with at most {max_length} characters."
    return "Please reply with a text message."


def validate_text(text: str | None, *, min_length: int | None = None, max_length: int | None = None) -> ReplyCheck:
    """Free text, stripped; length bounds count characters after stripping."""
    hint = _length_hint(min_length, max_length)
    if not isinstance(text, str) or not text.strip():
        return ReplyCheck(False, None, hint)
    value = text.strip()
    if min_length is not None and len(value) < min_length:
        return ReplyCheck(False, None, hint)
    if max_length is not None and len(value) > max_length:
        return ReplyCheck(False, None, hint)
    return ReplyCheck(True, value, "")


def _number_hint(minimum: Any, maximum: Any, integer: bool) -> str:
    noun = "a whole number" if integer else "a number"
    if minimum is not None and maximum is not None:
        return f"Please reply with {noun} between {minimum} and {maximum}."
    if minimum is not None:
        return f"Please reply with {noun} of at least {minimum}."
    if maximum is not None:
        return f"Please reply with {noun} of at most {maximum}."
    return f"Please reply with {noun}, e.g. 25."


def validate_number(text: str | None, *, minimum: Any = None, maximum: Any = None, integer: bool = False) -> ReplyCheck:
    """A number typed as ``42``, ``-3``, ``12.50`` or ``12,50``.

    Whole numbers are stored as ``int``; numbers with decimals as a decimal string ("12.50"),
    which keeps money exact and stays JSON-serialisable. A comma followed by exactly three
    digits ("1,000") is refused: it is a thousands separator to some users and a decimal
    comma to others, and guessing wrong would store a value 1000 times off.
    """
    hint = _number_hint(minimum, maximum, integer)
    if not isinstance(text, str):
        return ReplyCheck(False, None, hint)
    cleaned = text.strip().replace(" ", "")
    if not _NUMBER.fullmatch(cleaned) or _AMBIGUOUS_COMMA.search(cleaned):
        return ReplyCheck(False, None, hint)
    cleaned = cleaned.replace(",", ".")
    number = Decimal(cleaned)
    if integer and number != number.to_integral_value():
        return ReplyCheck(False, None, hint)
    if minimum is not None and number < Decimal(str(minimum)):
        return ReplyCheck(False, None, hint)
    if maximum is not None and number > Decimal(str(maximum)):
        return ReplyCheck(False, None, hint)
    if "." not in cleaned or integer:
        return ReplyCheck(True, int(number), "")
    return ReplyCheck(True, str(number), "")


EMAIL_HINT = "That doesn't look like an email address. Please send one like name@example.com."


def validate_email(text: str | None) -> ReplyCheck:
    """An email address, stripped of ``mailto:`` and lower-cased (CRM lookups are by email)."""
    if not isinstance(text, str):
        return ReplyCheck(False, None, EMAIL_HINT)
    value = text.strip()
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:") :]
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        return ReplyCheck(False, None, EMAIL_HINT)
    local, _, _ = value.partition("@")
    if len(local) > 64:
        return ReplyCheck(False, None, EMAIL_HINT)
    return ReplyCheck(True, value.lower(), "")


PHONE_HINT = "Please send a phone number with its country code, e.g. +44 7700 900123."


def validate_phone(text: str | None) -> ReplyCheck:
    """A phone number, stored as digits only (E.164 without '+': 7 to 15 digits).

    Spaces, dashes, dots and brackets are tolerated; a leading "00" international prefix is
    treated like "+".
    """
    if not isinstance(text, str):
        return ReplyCheck(False, None, PHONE_HINT)
    value = text.strip()
    if not _PHONE_CHARS.fullmatch(value):
        return ReplyCheck(False, None, PHONE_HINT)
    digits = re.sub(r"\D", "", value)
    if not value.startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    if not 7 <= len(digits) <= 15 or (value.startswith("+") and digits.startswith("0")):
        return ReplyCheck(False, None, PHONE_HINT)
    return ReplyCheck(True, digits, "")


DATE_HINT = "Please send a date as YYYY-MM-DD or DD/MM/YYYY, e.g. 2025-03-31 or 31/03/2025."


def validate_date(text: str | None) -> ReplyCheck:
    """A calendar date typed as YYYY-MM-DD or DD/MM/YYYY, stored as an ISO string."""
    if not isinstance(text, str):
        return ReplyCheck(False, None, DATE_HINT)
    value = text.strip()
    if match := _ISO_DATE.fullmatch(value):
        year, month, day = (int(part) for part in match.groups())
    elif match := _DMY_DATE.fullmatch(value):
        day, month, year = (int(part) for part in match.groups())
    else:
        return ReplyCheck(False, None, DATE_HINT)
    try:
        parsed = date(year, month, day)
    except ValueError:
        return ReplyCheck(False, None, DATE_HINT)
    return ReplyCheck(True, parsed.isoformat(), "")


def _choice_hint(choices: Sequence[Choice]) -> str:
    if not choices:
        return "Please choose one of the options."
    titles = ", ".join(choice.title for choice in choices)
    return f"Please tap one of the options, or type one of: {titles}."


def validate_choice(text: str | None, reply_id: str | None, choices: Sequence[Choice]) -> ReplyCheck:
    """An option picked by tapping (its id) or typing its title or id (any case, accents).

    The stored value is always the option's id, so later conditions don't care how the user
    answered.
    """
    hint = _choice_hint(choices)
    if reply_id is not None:
        for choice in choices:
            if choice.id == reply_id:
                return ReplyCheck(True, choice.id, "")
        return ReplyCheck(False, None, hint)
    typed = normalize_text(text)
    if not typed:
        return ReplyCheck(False, None, hint)
    for choice in choices:
        if typed in (normalize_text(choice.title), normalize_text(choice.id)):
            return ReplyCheck(True, choice.id, "")
    return ReplyCheck(False, None, hint)


REGEX_HINT = "That isn't in the format I expected. Please try again."


def validate_regex(text: str | None, pattern: str, *, ignore_case: bool = False) -> ReplyCheck:
    """The whole (stripped) reply must match ``pattern``; stored as the stripped text."""
    if not isinstance(text, str):
        return ReplyCheck(False, None, REGEX_HINT)
    value = text.strip()[:_MAX_INPUT]
    try:
        matched = re.fullmatch(pattern, value, re.IGNORECASE if ignore_case else 0)
    except re.error:
        return ReplyCheck(False, None, REGEX_HINT)
    if not value or matched is None:
        return ReplyCheck(False, None, REGEX_HINT)
    return ReplyCheck(True, value, "")


def validate_media(message_type: str | None, media_id: str | None, allowed: Sequence[str] = MEDIA_TYPES) -> ReplyCheck:
    """A media message of an allowed type; stored as ``{"media_id", "media_type"}``."""
    kinds = " or ".join(allowed) if allowed else "a file"
    hint = f"Please send {kinds}."
    if message_type not in allowed or not media_id:
        return ReplyCheck(False, None, hint)
    return ReplyCheck(True, {"media_id": media_id, "media_type": message_type}, "")


LOCATION_HINT = "Please share a location: tap 📎 (attach), then Location."


def validate_location(message_type: str | None, latitude: Any, longitude: Any) -> ReplyCheck:
    """A shared location; stored as ``{"latitude", "longitude"}`` floats."""
    if message_type != "location" or latitude is None or longitude is None:
        return ReplyCheck(False, None, LOCATION_HINT)
    try:
        lat, lon = float(latitude), float(longitude)
    except (TypeError, ValueError):
        return ReplyCheck(False, None, LOCATION_HINT)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return ReplyCheck(False, None, LOCATION_HINT)
    return ReplyCheck(True, {"latitude": lat, "longitude": lon}, "")


# ---------------------------------------------------------------------------------------
# Choices
# ---------------------------------------------------------------------------------------


def parse_choices(value: Any) -> tuple[Choice, ...]:
    """Options from ``["yes", "no"]`` or ``[{"id": "yes", "title": "Yes"}, ...]``; junk skipped.

    Also used for ``choices_from``, where an action stored its options in a variable.
    """
    if not isinstance(value, (list, tuple)):
        return ()
    choices: list[Choice] = []
    for item in value:
        if isinstance(item, str) and item:
            choices.append(Choice(id=item, title=item))
        elif (
            isinstance(item, Mapping)
            and isinstance(item.get("id"), (str, int))
            and not isinstance(item.get("id"), bool)
        ):
            title = item.get("title")
            choices.append(Choice(id=str(item["id"]), title=str(title) if title is not None else str(item["id"])))
    return tuple(choices)


def choices_from_spec(spec: Any) -> tuple[Choice, ...]:
    """The tappable options of a buttons or list message spec (empty for other types)."""
    if not isinstance(spec, Mapping):
        return ()
    if spec.get("type") == "buttons":
        return parse_choices(spec.get("buttons"))
    if spec.get("type") == "list":
        sections = spec.get("sections")
        if not isinstance(sections, (list, tuple)):
            return ()
        rows: list[Choice] = []
        for section in sections:
            if isinstance(section, Mapping):
                rows.extend(parse_choices(section.get("rows")))
        return tuple(rows)
    return ()


# ---------------------------------------------------------------------------------------
# Dispatch and static checks
# ---------------------------------------------------------------------------------------

# expect keys per reply type: name -> required?
_EXPECT_KEYS: dict[ReplyType, dict[str, bool]] = {
    ReplyType.TEXT: {"min_length": False, "max_length": False},
    ReplyType.NUMBER: {"min": False, "max": False, "integer": False},
    ReplyType.EMAIL: {},
    ReplyType.PHONE: {},
    ReplyType.DATE: {},
    ReplyType.CHOICE: {"choices": False, "choices_from": False},
    ReplyType.REGEX: {"pattern": True, "ignore_case": False},
    ReplyType.MEDIA: {"media_types": False},
    ReplyType.LOCATION: {},
}


def normalize_expectation(expect: Any) -> dict[str, Any]:
    """``"email"`` is shorthand for ``{"type": "email"}``; both forms are accepted."""
    if isinstance(expect, str):
        return {"type": expect}
    if isinstance(expect, Mapping):
        return dict(expect)
    return {}


def check_reply(expect: Any, reply: ReplyLike, *, choices: Sequence[Choice] = ()) -> ReplyCheck:
    """Validate ``reply`` against a question's ``expect`` config.

    ``choices`` are the options resolved by the caller (prompt buttons/rows, ``choices``,
    ``choices_from``). Text-like expectations only accept typed text messages: a tapped
    button is not a name or an email address.
    """
    spec = normalize_expectation(expect)
    try:
        kind = ReplyType(spec.get("type"))
    except ValueError:
        return ReplyCheck(False, None, "Sorry, I can't accept an answer to this question right now.")
    typed = reply.text if reply.message_type == "text" else None
    if kind is ReplyType.TEXT:
        return validate_text(typed, min_length=spec.get("min_length"), max_length=spec.get("max_length"))
    if kind is ReplyType.NUMBER:
        return validate_number(
            typed, minimum=spec.get("min"), maximum=spec.get("max"), integer=bool(spec.get("integer"))
        )
    if kind is ReplyType.EMAIL:
        return validate_email(typed)
    if kind is ReplyType.PHONE:
        return validate_phone(typed)
    if kind is ReplyType.DATE:
        return validate_date(typed)
    if kind is ReplyType.REGEX:
        return validate_regex(typed, str(spec.get("pattern", "")), ignore_case=bool(spec.get("ignore_case")))
    if kind is ReplyType.CHOICE:
        tapped = reply.reply_id if reply.message_type in ("interactive", "button") else None
        text = reply.text if tapped is None else None
        return validate_choice(text, tapped, choices)
    if kind is ReplyType.MEDIA:
        return validate_media(reply.message_type, reply.media_id, tuple(spec.get("media_types") or MEDIA_TYPES))
    return validate_location(reply.message_type, reply.latitude, reply.longitude)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        return Decimal(str(value)).is_finite()
    except (InvalidOperation, ValueError):
        return False


def check_expectation(expect: Any) -> list[tuple[str, str]]:
    """Problems with a question's ``expect`` config as ``(relative_field, message)`` pairs.

    Whether a choice question actually has options depends on its prompt too, so that check
    lives with the step validation in ``flows.step_validation``.
    """
    if not isinstance(expect, (str, Mapping)):
        return [("", 'must be a reply type like "email" or an object like {"type": "number"}')]
    spec = normalize_expectation(expect)
    raw_type = spec.get("type")
    if raw_type is None:
        return [("type", "is required")]
    try:
        kind = ReplyType(raw_type)
    except (ValueError, TypeError):
        known = ", ".join(t.value for t in ReplyType)
        field = "" if isinstance(expect, str) else "type"
        return [(field, f"unknown reply type {raw_type!r} (known: {known})")]
    problems = check_fields(spec, _EXPECT_KEYS[kind], f"a {kind.value} reply")
    if problems:
        return problems

    if kind is ReplyType.TEXT:
        for key in ("min_length", "max_length"):
            if key in spec and not _is_count(spec[key]):
                problems.append((key, "must be a non-negative integer"))
        low, high = spec.get("min_length"), spec.get("max_length")
        if _is_count(low) and _is_count(high) and low > high:
            problems.append(("min_length", f"is greater than max_length ({low} > {high})"))
    elif kind is ReplyType.NUMBER:
        for key in ("min", "max"):
            if key in spec and not _is_number(spec[key]):
                problems.append((key, "must be a number"))
        if "integer" in spec and not isinstance(spec["integer"], bool):
            problems.append(("integer", "must be true or false"))
        low, high = spec.get("min"), spec.get("max")
        if _is_number(low) and _is_number(high) and Decimal(str(low)) > Decimal(str(high)):
            problems.append(("min", f"is greater than max ({low} > {high})"))
    elif kind is ReplyType.REGEX:
        problems += check_pattern(spec)
    elif kind is ReplyType.CHOICE:
        if "choices" in spec:
            raw = spec["choices"]
            if not isinstance(raw, (list, tuple)) or not raw:
                problems.append(("choices", "must be a non-empty list"))
            else:
                for index, item in enumerate(raw):
                    if not (isinstance(item, str) and item) and not (
                        isinstance(item, Mapping)
                        and isinstance(item.get("id"), str)
                        and item.get("id")
                        and isinstance(item.get("title", ""), str)
                        and set(item) <= {"id", "title", "description"}
                    ):
                        problems.append((f"choices[{index}]", 'must be a string or {"id": ..., "title": ...}'))
                ids = [choice.id for choice in parse_choices(raw)]
                if len(ids) != len(set(ids)):
                    problems.append(("choices", "option ids must be unique"))
        if "choices_from" in spec:
            try:
                parse_path(spec["choices_from"])
            except TemplateSyntaxError as exc:
                problems.append(("choices_from", str(exc)))
    elif kind is ReplyType.MEDIA and "media_types" in spec:
        raw = spec["media_types"]
        if not isinstance(raw, (list, tuple)) or not raw:
            problems.append(("media_types", f"must be a non-empty list of {', '.join(MEDIA_TYPES)}"))
        else:
            for index, item in enumerate(raw):
                if item not in MEDIA_TYPES:
                    problems.append((f"media_types[{index}]", f"unknown media type {item!r}"))
    return problems
