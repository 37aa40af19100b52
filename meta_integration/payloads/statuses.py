"""``StatusUpdate``: delivery news about a message the business sent (sent, delivered, read,
failed), with its conversation and pricing records, read from ``value.statuses[]``.

Pure: no Django, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from meta_integration.payloads.errors import ApiError, _parse_errors
from meta_integration.payloads.fields import (
    _obj,
    _opt_bool,
    _opt_str,
    _opt_timestamp,
    _optional_records,
    _req_str,
    _timestamp,
    parse_callback_message_id,
)


class DeliveryStatus(StrEnum):
    """``statuses[].status``. Anything else (e.g. on-premises ``deleted``) is UNKNOWN."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @classmethod
    def from_raw(cls, value: Any) -> DeliveryStatus:
        try:
            return cls(value) if isinstance(value, str) else cls.UNKNOWN
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    id: str | None
    origin_type: str | None  # "service", "utility", "marketing", ...
    expiration_timestamp: datetime | None

    @classmethod
    def from_dict(cls, data: Any, path: str = "conversation") -> Conversation:
        data = _obj(data, path)
        origin = data.get("origin")
        return cls(
            id=_opt_str(data, "id"),
            origin_type=_opt_str(origin, "type")
            if isinstance(origin, Mapping)
            else None,
            expiration_timestamp=_opt_timestamp(data.get("expiration_timestamp")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Pricing:
    billable: bool | None
    pricing_model: str | None  # "CBP" (per conversation) or "PMP" (per message)
    category: str | None
    type: str | None  # v24+: "regular", "free_customer_service", "free_entry_point"

    @classmethod
    def from_dict(cls, data: Any, path: str = "pricing") -> Pricing:
        data = _obj(data, path)
        return cls(
            billable=_opt_bool(data, "billable"),
            pricing_model=_opt_str(data, "pricing_model"),
            category=_opt_str(data, "category"),
            type=_opt_str(data, "type"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """Delivery news about a message *we* sent (``wamid`` is the id the send call returned)."""

    phone_number_id: str
    display_phone_number: str
    wamid: str
    status: DeliveryStatus
    raw_status: str
    timestamp: datetime
    recipient_id: str
    errors: tuple[ApiError, ...] = ()
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    biz_opaque_callback_data: str | None = None
    parse_error: str | None = None
    raw: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, hash=False, repr=False
    )

    @property
    def callback_message_id(self) -> int | None:
        """The pk of our Message this status is about, from ``biz_opaque_callback_data``
        (``msg:<pk>``, set on every send): matches a status to its row even when the
        wamid Meta returned was never stored."""
        return parse_callback_message_id(self.biz_opaque_callback_data)

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        phone_number_id: str,
        display_phone_number: str = "",
        path: str = "status",
    ) -> StatusUpdate:
        data = _obj(data, path)
        raw_status = _opt_str(data, "status") or ""
        notes: list[str] = []
        optional = _optional_records(
            data, path, notes, conversation=Conversation.from_dict, pricing=Pricing.from_dict
        )
        errors, error_notes = _parse_errors(data.get("errors"), f"{path}.errors")
        notes.extend(error_notes)
        return cls(
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            wamid=_req_str(data, "id", path),
            status=DeliveryStatus.from_raw(raw_status),
            raw_status=raw_status,
            timestamp=_timestamp(data.get("timestamp"), f"{path}.timestamp"),
            recipient_id=_req_str(data, "recipient_id", path),
            errors=errors,
            biz_opaque_callback_data=_opt_str(data, "biz_opaque_callback_data"),
            parse_error="; ".join(notes) or None,
            raw=data,
            **optional,
        )
