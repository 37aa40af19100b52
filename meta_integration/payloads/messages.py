"""``InboundMessage``: one message a WhatsApp user sent, read from ``value.messages[]``; bad
content degrades to ``MessageType.UNKNOWN`` (or ``ERRORS``) instead of failing the batch.

Pure: no Django, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from json_shape import brief, json_kind
from meta_integration.payloads.errors import ApiError, _parse_errors
from meta_integration.payloads.fields import (
    PayloadError,
    _list,
    _obj,
    _opt_str,
    _optional_records,
    _req_str,
    _timestamp,
    is_wa_id,
)
from meta_integration.payloads.message_content import (
    MEDIA_TYPES,
    Context,
    Edit,
    InteractiveKind,
    InteractiveReply,
    Location,
    Media,
    MessageType,
    Order,
    Reaction,
    Referral,
    Revoke,
    SharedContact,
    SystemEvent,
    TemplateButton,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """One message a WhatsApp user sent to the business number ``phone_number_id``.

    ``text`` is the human text whatever the type (body, caption, tapped button/row title), so
    keyword matching does not need to know the type. Exactly the sub-record matching ``type``
    is set. ``raw`` keeps Meta's dict so nothing is lost when ``type`` is UNKNOWN.
    """

    phone_number_id: str
    display_phone_number: str
    wamid: str
    from_wa_id: str
    profile_name: str | None
    timestamp: datetime
    type: MessageType
    raw_type: str
    text: str = ""
    media: Media | None = None
    location: Location | None = None
    contacts: tuple[SharedContact, ...] = ()
    interactive: InteractiveReply | None = None
    button: TemplateButton | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: SystemEvent | None = None
    edit: Edit | None = None
    revoke: Revoke | None = None
    referral: Referral | None = None
    context: Context | None = None
    errors: tuple[ApiError, ...] = ()
    parse_error: str | None = None
    raw: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, hash=False, repr=False
    )

    @property
    def reply_id(self) -> str | None:
        """The id a flow branches on: our interactive button/row id, or a template button's
        payload. None for free text."""
        if self.interactive is not None and self.interactive.id:
            return self.interactive.id
        if self.button is not None and self.button.payload:
            return self.button.payload
        return None

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        phone_number_id: str,
        display_phone_number: str = "",
        profiles: Mapping[str, str] | None = None,
        path: str = "message",
    ) -> InboundMessage:
        """Raise PayloadError only if the message cannot be identified (wamid, sender,
        timestamp) or its sender is not a WhatsApp number; bad *content* degrades to
        ``MessageType.UNKNOWN`` with ``parse_error`` (or ``ERRORS`` when Meta sent an error
        in place of the content)."""
        data = _obj(data, path)
        wamid = _req_str(data, "id", path)
        from_wa_id = _req_str(data, "from", path)
        if not is_wa_id(from_wa_id):
            raise PayloadError(f"{path}.from: expected a WhatsApp number (6 to 15 digits), got {brief(from_wa_id)}")
        timestamp = _timestamp(data.get("timestamp"), f"{path}.timestamp")

        raw_type = _opt_str(data, "type") or ""
        notes: list[str] = []
        errors, error_notes = _parse_errors(data.get("errors"), f"{path}.errors")
        msg_type = _effective_type(MessageType.from_raw(raw_type), data)
        try:
            content = _parse_content(msg_type, data, path)
        except PayloadError as exc:
            msg_type, content = MessageType.UNKNOWN, {}
            if errors:  # Meta put an error where the content should be: nothing to read
                msg_type = MessageType.ERRORS
            else:
                notes.append(exc.reason)
        if errors and _carries_only_errors(msg_type, raw_type, content):
            msg_type, content = MessageType.ERRORS, {}

        optional = _optional_records(data, path, notes, context=Context.from_dict, referral=Referral.from_dict)
        notes.extend(error_notes)
        return cls(
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            wamid=wamid,
            from_wa_id=from_wa_id,
            profile_name=(profiles or {}).get(from_wa_id),
            timestamp=timestamp,
            type=msg_type,
            raw_type=raw_type,
            errors=errors,
            parse_error="; ".join(notes) or None,
            raw=data,
            **optional,
            **content,
        )


def _effective_type(msg_type: MessageType, data: Mapping[str, Any]) -> MessageType:
    """Edits and deletes Meta forwards as ``unsupported`` are still edits and deletes."""
    if msg_type is MessageType.UNSUPPORTED:
        unsupported = data.get("unsupported")
        kind = unsupported.get("type") if isinstance(unsupported, Mapping) else None
        if kind == MessageType.EDIT.value:
            return MessageType.EDIT
        if kind == MessageType.REVOKE.value:
            return MessageType.REVOKE
    return msg_type


def _carries_only_errors(msg_type: MessageType, raw_type: str, content: Mapping[str, Any]) -> bool:
    """True for a message whose only payload is Meta's error (e.g. an interactive reply of a
    kind Cloud API does not forward): there is no request in it to answer."""
    if raw_type == MessageType.ERRORS.value:
        return True
    interactive = content.get("interactive")
    return msg_type is MessageType.INTERACTIVE and interactive is not None and (
        interactive.kind is InteractiveKind.UNKNOWN
    )


def _parse_content(
    msg_type: MessageType, data: Mapping[str, Any], path: str
) -> dict[str, Any]:
    """The type-specific fields of a message, as InboundMessage keyword arguments."""
    key = msg_type.value
    sub_path = f"{path}.{key}"
    if msg_type is MessageType.TEXT:
        text = _obj(data.get(key), sub_path)
        body = text.get("body")
        if not isinstance(body, str):
            raise PayloadError(f"{sub_path}.body: expected a string, got {json_kind(body)}")
        return {"text": body}
    if msg_type in MEDIA_TYPES:
        media = Media.from_dict(data.get(key), sub_path)
        return {"media": media, "text": media.caption or ""}
    if msg_type is MessageType.LOCATION:
        return {"location": Location.from_dict(data.get(key), sub_path)}
    if msg_type is MessageType.CONTACTS:
        cards = _list(data.get(key), sub_path)
        return {
            "contacts": tuple(
                SharedContact.from_dict(c, f"{sub_path}[{i}]")
                for i, c in enumerate(cards)
            )
        }
    if msg_type is MessageType.INTERACTIVE:
        reply = InteractiveReply.from_dict(data.get(key), sub_path)
        return {"interactive": reply, "text": reply.title or reply.body or ""}
    if msg_type is MessageType.BUTTON:
        button = TemplateButton.from_dict(data.get(key), sub_path)
        return {"button": button, "text": button.text}
    if msg_type is MessageType.REACTION:
        return {"reaction": Reaction.from_dict(data.get(key), sub_path)}
    if msg_type is MessageType.ORDER:
        order = Order.from_dict(data.get(key), sub_path)
        return {"order": order, "text": order.text or ""}
    if msg_type is MessageType.SYSTEM:
        return {"system": SystemEvent.from_dict(data.get(key), sub_path)}
    if msg_type is MessageType.EDIT:
        if data.get(key) is None and data.get("type") == MessageType.UNSUPPORTED.value:
            return {"edit": Edit(original_message_id=None)}  # forwarded as unsupported
        edit = Edit.from_dict(data.get(key), sub_path)
        return {"edit": edit, "text": edit.text}
    if msg_type is MessageType.REVOKE:
        if data.get(key) is None and data.get("type") == MessageType.UNSUPPORTED.value:
            return {"revoke": Revoke(original_message_id=None)}
        return {"revoke": Revoke.from_dict(data.get(key), sub_path)}
    return {}  # request_welcome, unsupported, errors, unknown: nothing typed to read
