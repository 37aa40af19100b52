"""``UserPreference``: a user stopped or resumed marketing messages, read from the
``user_preferences`` webhook field.

Pure: no Django, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from json_shape import brief
from meta_integration.payloads.fields import (
    MARKETING_CATEGORY,
    PayloadError,
    _obj,
    _opt_str,
    _req_str,
    _timestamp,
    is_wa_id,
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
            raise PayloadError(f"{path}.wa_id: expected a WhatsApp number (6 to 15 digits), got {brief(wa_id)}")
        category = data.get("category")
        if category != MARKETING_CATEGORY:
            raise PayloadError(f"{path}.category: {brief(category)} is not a category this project acts on")
        raw_value = data.get("value")
        try:
            value = PreferenceValue(raw_value) if isinstance(raw_value, str) else None
        except ValueError:
            value = None
        if value is None:
            raise PayloadError(f"{path}.value: expected 'stop' or 'resume', got {brief(raw_value)}")
        return cls(
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            value=value,
            timestamp=_timestamp(data.get("timestamp"), f"{path}.timestamp"),
            category=category,
            detail=_opt_str(data, "detail"),
            profile_name=(profiles or {}).get(wa_id),
        )
