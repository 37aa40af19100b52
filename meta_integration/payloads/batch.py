"""The entry point: :func:`parse_webhook` walks one webhook body's entries and changes into a
:class:`WebhookBatch`, collecting a problem for every item it cannot read.

Pure: no Django, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from json_shape import brief, json_kind
from meta_integration.payloads.errors import ApiError, _parse_errors
from meta_integration.payloads.fields import (
    MESSAGES_FIELD,
    USER_PREFERENCES_FIELD,
    WABA_OBJECT,
    PayloadError,
    _list,
    _obj,
    _opt_str,
    _req_str,
)
from meta_integration.payloads.messages import InboundMessage
from meta_integration.payloads.preferences import UserPreference
from meta_integration.payloads.statuses import StatusUpdate


@dataclass(frozen=True, slots=True, kw_only=True)
class _Business:
    phone_number_id: str
    display_phone_number: str

    @classmethod
    def from_value(cls, value: Mapping[str, Any], path: str) -> _Business:
        metadata = _obj(value.get("metadata"), f"{path}.metadata")
        return cls(
            phone_number_id=_req_str(metadata, "phone_number_id", f"{path}.metadata"),
            display_phone_number=_opt_str(metadata, "display_phone_number") or "",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherChange:
    """A change for a field other than ``messages`` and ``user_preferences`` (template status, account update, ...):
    not acted on, but kept so it can be logged."""

    waba_id: str
    field: str
    value: Mapping[str, Any] = dataclasses.field(hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookBatch:
    """Everything one webhook POST carried, flattened across entries and changes."""

    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    errors: tuple[ApiError, ...] = ()
    other_changes: tuple[OtherChange, ...] = ()
    problems: tuple[str, ...] = ()
    preferences: tuple[UserPreference, ...] = ()


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def parse_webhook(body: Any) -> WebhookBatch:
    """Parse a decoded webhook body.

    Raises PayloadError only for a body that is not a WhatsApp Business Account webhook;
    every problem inside a valid envelope ends up in ``problems`` or ``parse_error``.
    """
    envelope = _obj(body, "body")
    obj = envelope.get("object")
    if obj != WABA_OBJECT:
        got = "missing" if "object" not in envelope else f"got {brief(obj)}"
        raise PayloadError(f"object: expected {WABA_OBJECT!r}, {got}")
    if "entry" not in envelope:
        raise PayloadError("entry: missing")
    entries = envelope["entry"]
    if not isinstance(entries, list):
        raise PayloadError(f"entry: expected a list, got {json_kind(entries)}")

    out = _Collector()
    for i, entry in enumerate(entries):
        out.entry(entry, f"entry[{i}]")
    return out.batch()


class _Collector:
    """Accumulates records and problems while walking entries/changes."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.statuses: list[StatusUpdate] = []
        self.errors: list[ApiError] = []
        self.other_changes: list[OtherChange] = []
        self.problems: list[str] = []
        self.preferences: list[UserPreference] = []

    def batch(self) -> WebhookBatch:
        return WebhookBatch(
            messages=tuple(self.messages),
            statuses=tuple(self.statuses),
            errors=tuple(self.errors),
            other_changes=tuple(self.other_changes),
            problems=tuple(self.problems),
            preferences=tuple(self.preferences),
        )

    def entry(self, entry: Any, path: str) -> None:
        try:
            entry = _obj(entry, path)
            changes = _list(entry.get("changes"), f"{path}.changes")
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return
        waba_id = _opt_str(entry, "id") or ""
        for j, change in enumerate(changes):
            self.change(change, waba_id, f"{path}.changes[{j}]")

    def change(self, change: Any, waba_id: str, path: str) -> None:
        try:
            change = _obj(change, path)
            field_name = _req_str(change, "field", path)
            value = _obj(change.get("value"), f"{path}.value")
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return
        if field_name == USER_PREFERENCES_FIELD:
            self.preferences_value(value, f"{path}.value")
            return
        if field_name != MESSAGES_FIELD:
            self.other_changes.append(
                OtherChange(waba_id=waba_id, field=field_name, value=value)
            )
            return
        self.messages_value(value, f"{path}.value")

    def messages_value(self, value: Mapping[str, Any], path: str) -> None:
        errors, notes = _parse_errors(value.get("errors"), f"{path}.errors")
        self.errors.extend(errors)
        self.problems.extend(notes)
        has_items = (
            value.get("messages") is not None or value.get("statuses") is not None
        )
        try:
            business = _Business.from_value(value, path)
        except PayloadError as exc:
            if has_items:  # without the business number a message cannot be routed
                self.problems.append(exc.reason)
            return
        profiles = self.profiles(value.get("contacts"), f"{path}.contacts")
        for item_path, item in self.items(value, "messages", path):
            try:
                message = InboundMessage.from_dict(
                    item,
                    phone_number_id=business.phone_number_id,
                    display_phone_number=business.display_phone_number,
                    profiles=profiles,
                    path=item_path,
                )
            except PayloadError as exc:
                self.problems.append(exc.reason)
                continue
            self.messages.append(message)
            if message.parse_error:
                self.problems.append(message.parse_error)
        for item_path, item in self.items(value, "statuses", path):
            try:
                status = StatusUpdate.from_dict(
                    item,
                    phone_number_id=business.phone_number_id,
                    display_phone_number=business.display_phone_number,
                    path=item_path,
                )
            except PayloadError as exc:
                self.problems.append(exc.reason)
                continue
            self.statuses.append(status)
            if status.parse_error:
                self.problems.append(status.parse_error)

    def preferences_value(self, value: Mapping[str, Any], path: str) -> None:
        """``user_preferences`` items; one that is not understood is a problem, the rest apply."""
        try:
            business = _Business.from_value(value, path)
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return
        profiles = self.profiles(value.get("contacts"), f"{path}.contacts")
        items = self.items(value, USER_PREFERENCES_FIELD, path)
        if not items and value.get(USER_PREFERENCES_FIELD) is None:
            self.problems.append(f"{path}.{USER_PREFERENCES_FIELD}: missing")
        for item_path, item in items:
            try:
                self.preferences.append(UserPreference.from_dict(
                    item, phone_number_id=business.phone_number_id, profiles=profiles, path=item_path
                ))
            except PayloadError as exc:
                self.problems.append(exc.reason)

    def items(
        self, value: Mapping[str, Any], key: str, path: str
    ) -> list[tuple[str, Any]]:
        try:
            items = _list(value.get(key), f"{path}.{key}")
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return []
        return [(f"{path}.{key}[{i}]", item) for i, item in enumerate(items)]

    def profiles(self, value: Any, path: str) -> dict[str, str]:
        """wa_id -> profile name, from ``value.contacts`` (the senders, not shared cards)."""
        profiles: dict[str, str] = {}
        try:
            contacts = _list(value, path)
        except PayloadError as exc:
            self.problems.append(exc.reason)
            return profiles
        for i, contact in enumerate(contacts):
            profile = contact.get("profile") if isinstance(contact, Mapping) else None
            wa_id = contact.get("wa_id") if isinstance(contact, Mapping) else None
            name = profile.get("name") if isinstance(profile, Mapping) else None
            if isinstance(wa_id, str) and isinstance(name, str):
                profiles[wa_id] = name
            elif not isinstance(contact, Mapping) or not isinstance(wa_id, str):
                self.problems.append(f"{path}[{i}]: expected an object with a wa_id")
        return profiles
