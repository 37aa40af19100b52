"""Statuses, and the envelopes that wrap messages and statuses into a signed POST as Meta sends it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meta_integration.signatures import SIGNATURE_HEADER, sign_body

from .common import (
    _DIGITS_RE,
    DEFAULT_DISPLAY_PHONE_NUMBER,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_PROFILE_NAME,
    DEFAULT_WA_ID,
    DEFAULT_WABA_ID,
    MessageStatus,
    PayloadError,
    _check_wa_id,
    _check_wamid,
    _timestamp,
)
from .errors import error_object

# --------------------------------------------------------------------------- statuses


def status(
    wamid: str,
    status: MessageStatus | str,
    recipient_id: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    with_pricing: bool = True,
    *,
    timestamp: str | int | None = None,
    conversation_id: str | None = None,
    category: str = "service",
    biz_opaque_callback_data: str | None = None,
) -> dict[str, Any]:
    """One ``value.statuses[]`` item reporting progress of a message *we* sent.

    ``failed`` carries ``errors[]`` (default: 131026 Message undeliverable) and no pricing,
    as Meta does; the other states carry ``conversation`` and ``pricing`` unless
    ``with_pricing=False`` (Meta omits them for some message kinds).
    """
    try:
        state = MessageStatus(status)
    except ValueError:
        allowed = [s.value for s in MessageStatus]
        raise PayloadError("status", f"must be one of {allowed}, got {status!r}") from None
    if errors is not None and state is not MessageStatus.FAILED:
        raise PayloadError("errors", f"only a failed status carries errors, not {state.value!r}")
    out: dict[str, Any] = {
        "id": _check_wamid(wamid, "wamid"),
        "status": state.value,
        "timestamp": _timestamp(timestamp),
        "recipient_id": _check_wa_id(recipient_id, "recipient_id"),
    }
    if biz_opaque_callback_data is not None:
        out["biz_opaque_callback_data"] = biz_opaque_callback_data
    if state is MessageStatus.FAILED:
        if errors is None:
            errors = [error_object(131026)]
        if isinstance(errors, (str, bytes, Mapping)) or not errors:
            raise PayloadError("errors", "must be a non-empty sequence of error objects")
        out["errors"] = [dict(e) for e in errors]
        return out
    if with_pricing:
        conversation: dict[str, Any] = {"id": conversation_id or secrets.token_hex(16)}
        if state is MessageStatus.SENT:
            conversation["expiration_timestamp"] = str(int(out["timestamp"]) + 24 * 3600)
        conversation["origin"] = {"type": category}
        out["conversation"] = conversation
        out["pricing"] = {
            "billable": category != "service",
            "pricing_model": "PMP",
            "category": category,
            "type": "free_customer_service" if category == "service" else "regular",
        }
    return out


# --------------------------------------------------------------------------- envelopes


def _contacts_for(
    messages: Sequence[Mapping[str, Any]], profile_name: str | Mapping[str, str]
) -> list[dict[str, Any]]:
    """One ``contacts[]`` entry per distinct sender, in first-seen order.

    System notices (number changes) come without a contact entry, as Meta sends them.
    """
    seen: dict[str, dict[str, Any]] = {}
    for msg in messages:
        sender = msg.get("from")
        if msg.get("type") == "system" or not sender or sender in seen:
            continue
        if isinstance(profile_name, Mapping):
            name = profile_name.get(sender, DEFAULT_PROFILE_NAME)
        else:
            name = profile_name
        seen[sender] = {"profile": {"name": name}, "wa_id": sender}
    return list(seen.values())


def change(
    messages: Iterable[Mapping[str, Any]] = (),
    statuses: Iterable[Mapping[str, Any]] = (),
    *,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    profile_name: str | Mapping[str, str] = DEFAULT_PROFILE_NAME,
    errors: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One ``entry[].changes[]`` item (``field: messages``) for one business phone number.

    ``profile_name`` is a single name for every sender, or a ``{wa_id: name}`` mapping.
    """
    msgs = [dict(m) for m in messages]
    stats = [dict(s) for s in statuses]
    errs = [dict(e) for e in errors]
    if not (msgs or stats or errs):
        raise PayloadError("messages", "a change needs at least one message, status or error")
    if not isinstance(phone_number_id, str) or not _DIGITS_RE.match(phone_number_id):
        raise PayloadError("phone_number_id", f"must be a numeric string, got {phone_number_id!r}")
    _check_wa_id(display_phone_number, "display_phone_number")
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    if msgs:
        contacts = _contacts_for(msgs, profile_name)
        if contacts:
            value["contacts"] = contacts
        value["messages"] = msgs
    if stats:
        value["statuses"] = stats
    if errs:
        value["errors"] = errs
    return {"value": value, "field": "messages"}


_PREFERENCE_DETAILS = {
    "stop": "User requested to stop marketing messages",
    "resume": "User requested to resume marketing messages",
}


def user_preference(
    value: str = "stop",
    *,
    wa_id: str = DEFAULT_WA_ID,
    category: str = "marketing_messages",
    timestamp: str | int | None = None,
) -> dict[str, Any]:
    """One ``value.user_preferences[]`` item: the user stopped or resumed marketing messages.
    Meta sends ``timestamp`` as an integer here (not the string of messages and statuses)."""
    _check_wa_id(wa_id, "wa_id")
    return {
        "wa_id": wa_id,
        "detail": _PREFERENCE_DETAILS.get(value, f"User requested to {value} marketing messages"),
        "category": category,
        "value": value,
        "timestamp": int(_timestamp(timestamp)),
    }


def user_preferences_change(
    preferences: Iterable[Mapping[str, Any]],
    *,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    profile_name: str | None = DEFAULT_PROFILE_NAME,
) -> dict[str, Any]:
    """One ``entry[].changes[]`` item of the ``user_preferences`` field; wrap it with ``batch``."""
    items = [dict(p) for p in preferences]
    if not items:
        raise PayloadError("preferences", "a user_preferences change needs at least one preference")
    contacts = []
    for item in items:
        if item.get("wa_id") and item["wa_id"] not in [c["wa_id"] for c in contacts]:
            contacts.append({"wa_id": item["wa_id"], **({"profile": {"name": profile_name}} if profile_name else {})})
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
        "contacts": contacts,
        "user_preferences": items,
    }
    return {"value": value, "field": "user_preferences"}


def webhook_body(
    messages: Iterable[Mapping[str, Any]] = (),
    statuses: Iterable[Mapping[str, Any]] = (),
    *,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    profile_name: str | Mapping[str, str] = DEFAULT_PROFILE_NAME,
    waba_id: str = DEFAULT_WABA_ID,
    errors: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A complete webhook POST body with one entry and one change."""
    one = change(
        messages,
        statuses,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        profile_name=profile_name,
        errors=errors,
    )
    return batch(one, waba_id=waba_id)


def batch(*parts: Mapping[str, Any], waba_id: str = DEFAULT_WABA_ID) -> dict[str, Any]:
    """Merge changes and/or whole bodies into one POST, as Meta batches under load.

    Each part is either a ``change(...)`` (filed under ``waba_id``) or a ``webhook_body(...)``
    (its entries keep their own WABA ids). Changes for the same WABA share one entry, in order.
    """
    if not parts:
        raise PayloadError("parts", "batch needs at least one change or webhook body")
    if not isinstance(waba_id, str) or not _DIGITS_RE.match(waba_id):
        raise PayloadError("waba_id", f"must be a numeric string, got {waba_id!r}")
    entries: dict[str, list[dict[str, Any]]] = {}
    for index, part in enumerate(parts):
        if not isinstance(part, Mapping):
            raise PayloadError(f"parts[{index}]", f"must be a mapping, got {type(part).__name__}")
        if "entry" in part:
            if part.get("object") != "whatsapp_business_account":
                raise PayloadError(f"parts[{index}].object", "must be 'whatsapp_business_account'")
            for entry in part["entry"]:
                entries.setdefault(str(entry["id"]), []).extend(dict(c) for c in entry["changes"])
        elif "value" in part and "field" in part:
            entries.setdefault(waba_id, []).append(dict(part))
        else:
            raise PayloadError(f"parts[{index}]", "must be a change(...) or a webhook_body(...)")
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": wid, "changes": changes} for wid, changes in entries.items()],
    }


def serialize(body: Mapping[str, Any]) -> bytes:
    """Encode a body the way Meta does: compact JSON, non-ASCII escaped (``\\ud83d...``)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signed_request(body: Mapping[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """Raw bytes and headers of Meta's POST: sign exactly the bytes that will be sent."""
    if not isinstance(app_secret, str) or not app_secret:
        raise PayloadError("app_secret", "must be a non-empty string")
    raw = serialize(body)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_body(raw, app_secret),
        "User-Agent": "facebookexternalua",
    }
    return raw, headers
