"""The simulator's view of one simulated user's conversation, from the database.

The page used to keep its history in localStorage and learn the bot's side only from the fake
Graph API's in-memory record, so after a restart of the dev stack (or in another browser) only
the user's own messages were left. The database is the record of both sides: ``history``
draws it (inbound rows as the user's bubbles, outbound rows as the bot's, with their delivery
status), ``session_state`` shows where the bot is (flow, step, variables, handover) and the
turns ``flows.services.trace`` recorded, and ``reset_conversation`` starts the chat over.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from conversations.models import MEDIA_MESSAGE_TYPES, Contact, Direction, MediaStatus, Message, MessageStatus
from flows.models import ContactFlowState
from flows.services import trace as flow_trace
from flows.services.sessions import idle_deadline, lock_contact
from meta_integration.models import MetaAppConfig
from meta_integration.outbound import build_message

__all__ = ["HISTORY_LIMIT", "history", "reset_conversation", "session_state"]

HISTORY_LIMIT = 300  # what the page keeps

_BOT_STATUS = {
    MessageStatus.PENDING: "sending",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.READ: "read",
    MessageStatus.FAILED: "failed",
}


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _sub(content: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = content.get(key)
    return value if isinstance(value, Mapping) else {}


def _user_item(message: Message) -> dict[str, Any]:
    content = message.content if isinstance(message.content, Mapping) else {}
    item: dict[str, Any] = {
        "who": "me",
        "id": f"msg-{message.pk}",
        "message_id": message.pk,
        "wamid": message.wamid,
        "at": _epoch(message.timestamp or message.created_at),
        # the bot marks what it processed as read (best effort): near enough for the ticks
        "status": "read" if message.processed_at else "sent",
        "context": message.reply_to_wamid or None,
        "kind": "text",
        "text": message.text,
    }
    interactive = _sub(content, "interactive")
    if message.message_type == "interactive" and interactive.get("raw_kind") in ("button_reply", "list_reply"):
        item.update(kind=interactive["raw_kind"], title=interactive.get("title") or message.text,
                    description=interactive.get("description"))
    elif message.message_type == "button":
        item.update(kind="template_button", title=_sub(content, "button").get("text") or message.text)
    elif message.message_type == "location":
        location = _sub(content, "location")
        item.update(kind="location", latitude=location.get("latitude"), longitude=location.get("longitude"),
                    name=location.get("name"), address=location.get("address"))
    elif message.message_type in MEDIA_MESSAGE_TYPES:
        item.update(kind="media", caption=message.text, **_media_view(message, _sub(content, "media")))
    elif message.message_type != "text":
        item["text"] = f"[{message.message_type}] {message.text}".strip()
    return item


def _media_view(message: Message, media: Mapping[str, Any]) -> dict[str, Any]:
    """A user's file as the page shows it: downloading, refused (why), or its staff-only URL."""
    try:
        row = message.media
    except ObjectDoesNotExist:
        row = None
    view: dict[str, Any] = {"media_type": message.message_type, "media_id": media.get("id"),
                            "filename": media.get("filename"), "media_status": row.status if row else "pending"}
    if row is not None and row.status == MediaStatus.STORED:
        view["url"] = reverse("conversations:media", args=[message.pk])
    elif row is not None and row.status == MediaStatus.FAILED:
        view["media_error"] = row.error
    return view


def _bot_item(message: Message, wa_id: str) -> dict[str, Any]:
    from devtools.simulator.views import bot_message_view  # the page draws feed and history alike

    failed = message.status == MessageStatus.FAILED
    try:
        body = build_message(wa_id, message.content)
    except Exception:  # noqa: BLE001 - an old or odd row is drawn raw, never breaks the page
        body = {"type": "unknown", "raw": message.content}
    view = bot_message_view({
        "seq": None,
        "kind": "message",
        "body": body,
        "http_status": 400 if failed else 200,
        "wamid": message.wamid,
        "responded_at": _epoch(message.sent_at or message.created_at),
        "response": {"error": {"message": message.error_title or "failed",
                               "error_data": {"details": message.error_details}}},
    }) or {}
    view.update(
        who="bot",
        id=f"msg-{message.pk}",
        message_id=message.pk,
        status=_BOT_STATUS.get(message.status, "sent"),
        sent_by=message.sent_by,
    )
    return view


def history(config: MetaAppConfig, wa_id: str, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """Both sides of the user's chat with ``config``'s number, oldest first (the newest ``limit``)."""
    rows = list(
        Message.objects.filter(contact__wa_id=wa_id, app_config=config).select_related("media")
        .order_by("-created_at", "-pk")[:limit]
    )
    rows.reverse()
    return [_user_item(m) if m.direction == Direction.INBOUND else _bot_item(m, wa_id) for m in rows]


def session_state(config: MetaAppConfig, wa_id: str) -> dict[str, Any]:
    """Where the bot is with this user: the session (flow, step, variables...), handover, and
    the recorded turns (empty unless FLOW_TRACE is on in the workers)."""
    contact = Contact.objects.filter(wa_id=wa_id).values("needs_human", "handover_at", "blocked").first()
    state = (
        ContactFlowState.objects.filter(contact__wa_id=wa_id, app_config=config)
        .select_related("flow").first()
    )
    session = None
    if state is not None:
        session = {
            "flow": state.flow.name,
            "step": state.step,
            "variables": state.variables,
            "retries": state.retries,
            "awaiting_reply": state.awaiting_reply,
            "started_at": _epoch(state.started_at),
            "last_activity_at": _epoch(state.last_activity_at),
            "version": state.version,
        }
    handover = bool(contact and contact["needs_human"])
    deadline = idle_deadline(state.last_activity_at if state is not None else None, handover=handover)
    return {
        "known": contact is not None,
        "session": session,
        # the server's idle countdown (none without a session or in handover), and its clock
        "idle_expires_at": _epoch(deadline),
        "now": _epoch(timezone.now()),
        "handover": handover,
        "blocked": bool(contact and contact["blocked"]),
        "trace": flow_trace.read_trace(wa_id, config.pk),
    }


def reset_conversation(config: MetaAppConfig, wa_id: str) -> dict[str, int]:
    """Start the simulated user's chat with ``config``'s number over: their session with it
    ends (no expiry notice), a handover is cleared, and the messages with this number and the
    recorded turns are deleted. The contact (profile, attributes flows set) stays."""
    contact = Contact.objects.filter(wa_id=wa_id).first()
    if contact is None:
        return {"sessions": 0, "messages": 0}
    with transaction.atomic():
        lock_contact(contact.pk)
        sessions, _ = ContactFlowState.objects.filter(contact=contact, app_config=config).delete()
        chat = Message.objects.filter(contact=contact, app_config=config)
        messages = chat.count()
        chat.delete()
        Contact.objects.filter(pk=contact.pk).update(needs_human=False, handover_at=None)
    flow_trace.clear_trace(wa_id, config.pk)
    return {"sessions": sessions, "messages": messages}
