"""How a stored message looks in the inbox: a bubble as WhatsApp draws it.

``bubble(message, related)`` turns a ``Message`` (inbound: the parsed record in ``content``;
outbound: the spec that was sent) into the plain values ``inbox/_message.html`` renders.
Text goes through ``whatsapp_html`` (escaped first); nothing here marks user input safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.urls import reverse
from django.utils import timezone

from conversations.models import Direction, MediaStatus, Message, MessageMedia
from inbox.formatting import whatsapp_html

__all__ = ["MEDIA_TYPES", "bubble", "sender_label"]

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
MEDIA_VIEW = "conversations:media"  # staff-only, serves a stored inbound file
TICKS = {"pending": "🕓", "sent": "✓", "delivered": "✓✓", "read": "✓✓", "failed": "⚠"}


def sender_label(sent_by: str) -> str:
    """Who sent an outbound message, as operators read it."""
    if not sent_by or sent_by == "bot":
        return "Bot"
    if sent_by.startswith("campaign:"):
        return f"Campaign {sent_by.split(':', 1)[1]}"
    return sent_by


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _media(message: Message, content: Mapping[str, Any]) -> dict[str, Any] | None:
    """The media part: inbound ``content.media`` (an id to download), outbound spec (id or link)."""
    if message.direction == Direction.INBOUND:
        if message.message_type not in MEDIA_TYPES:
            return None
        media = _dict(content.get("media"))
        kind = message.message_type
        url, note = _stored_media(message)
        return {
            "kind": kind, "id": media.get("id") or "", "link": "", "mime_type": media.get("mime_type") or "",
            "filename": media.get("filename") or "", "caption": media.get("caption") or "",
            "voice": bool(media.get("voice")), "url": url, "note": note,
        }  # fmt: skip
    if content.get("type") != "media":
        return None
    link = str(content.get("link") or "")
    return {
        "kind": content.get("media_type") or "document", "id": content.get("id") or "",
        "link": link if link.startswith("https://") else "", "mime_type": "",
        "filename": content.get("filename") or "", "caption": content.get("caption") or "", "voice": False,
        "url": link if link.startswith("https://") else "", "note": "sent by id" if content.get("id") else "",
    }  # fmt: skip


def _stored_media(message: Message) -> tuple[str, str]:
    """(url, note) of an inbound message's downloaded file: the staff-only media view once it
    is stored, else why not ("downloading…", or the reason it was refused). Reads the row the
    timeline loaded with ``select_related("media")``; no query here."""
    try:
        media = message.media
    except MessageMedia.DoesNotExist:
        return "", "not downloaded"
    if media is None:
        return "", "not downloaded"
    if media.status == MediaStatus.STORED:
        return reverse(MEDIA_VIEW, args=[message.pk]), ""
    if media.status == MediaStatus.FAILED:
        return "", f"not stored: {media.error or 'download failed'}"
    return "", "downloading…"


def _card(message: Message, content: Mapping[str, Any]) -> dict[str, Any] | None:
    """Buttons, lists and templates the business sent, as cards under the text."""
    if message.direction != Direction.OUTBOUND:
        return None
    kind = content.get("type")
    if kind == "buttons":
        return {
            "kind": "buttons",
            "header": content.get("header") or "",
            "footer": content.get("footer") or "",
            "buttons": [str(_dict(b).get("title") or "") for b in content.get("buttons") or []],
        }
    if kind == "list":
        return {
            "kind": "list",
            "header": content.get("header") or "",
            "footer": content.get("footer") or "",
            "button": content.get("button") or "",
            "sections": [
                {
                    "title": _dict(s).get("title") or "",
                    "rows": [
                        {"title": _dict(r).get("title") or "", "description": _dict(r).get("description") or ""}
                        for r in _dict(s).get("rows") or []
                    ],
                }
                for s in content.get("sections") or []
            ],
        }
    if kind == "template":
        values = []
        for component in content.get("components") or []:
            for parameter in _dict(component).get("parameters") or []:
                parameter = _dict(parameter)
                kind_of = parameter.get("type")
                value = parameter.get(kind_of) if kind_of else None
                values.append(str(value.get("link") or value.get("id") or "") if isinstance(value, Mapping)
                              else str(value or ""))
        language = content.get("language")
        code = _dict(language).get("code") if isinstance(language, Mapping) else language
        return {"kind": "template", "name": content.get("name") or "", "language": code or "", "values": values}
    return None


def _text(message: Message, content: Mapping[str, Any]) -> str:
    if message.direction == Direction.INBOUND:
        kind = message.message_type
        if kind == "location":
            location = _dict(content.get("location"))
            return " ".join(str(x) for x in (location.get("name"), location.get("address")) if x) or (
                f"{location.get('latitude')}, {location.get('longitude')}"
            )
        if kind == "reaction":
            reaction = _dict(content.get("reaction"))
            return f"Reacted {reaction.get('emoji')}" if reaction.get("emoji") else "Removed a reaction"
        if kind in MEDIA_TYPES:
            return str(_dict(content.get("media")).get("caption") or "")
        return message.text
    if content.get("type") == "media":
        return str(content.get("caption") or "")
    if content.get("type") == "template":
        return ""
    return message.text


def bubble(message: Message, related: Mapping[str, Message] | None = None) -> dict[str, Any]:
    """Everything a message bubble shows, ready for the template."""
    related = related or {}
    content = _dict(message.content)
    inbound = message.direction == Direction.INBOUND
    edited_text = content.get("edited_text") if inbound else None
    quoted = related.get(message.reply_to_wamid) if message.reply_to_wamid else None
    change_of = None
    if message.message_type in ("edit", "revoke"):
        change_of = _dict(content.get(message.message_type)).get("original_message_id") or ""
    when = message.timestamp or message.created_at
    return {
        "id": message.pk,
        "wamid": message.wamid or "",
        "inbound": inbound,
        "type": message.message_type,
        "sender": "" if inbound else sender_label(message.sent_by),
        "sent_by": message.sent_by,
        "html": whatsapp_html(edited_text if edited_text else _text(message, content)),
        "original_html": whatsapp_html(message.text) if edited_text else "",
        "edited": bool(edited_text),
        "deleted": bool(content.get("deleted")) if inbound else False,
        "change": message.message_type if change_of is not None else "",
        "media": _media(message, content),
        "card": _card(message, content),
        "interactive_reply": inbound and message.message_type in ("interactive", "button"),
        "quote": {
            "sender": "You" if quoted.direction == Direction.OUTBOUND else "Contact",
            "html": whatsapp_html(quoted.text or quoted.message_type),
        } if quoted else ({"sender": "", "html": whatsapp_html("A message not shown here")}
                          if message.reply_to_wamid and message.message_type not in ("reaction",) else None),
        "status": message.status,
        "ticks": "" if inbound else TICKS.get(message.status, ""),
        "error": " ".join(str(x) for x in (message.error_code or "", message.error_title) if x),
        "time": _time_label(when),
    }


def _time_label(when: Any) -> str:
    """"14:05" today, "3 Dec 14:05" before, as a chat list shows times."""
    if not when:
        return ""
    local, today = timezone.localtime(when), timezone.localdate()
    return f"{local:%H:%M}" if local.date() == today else f"{local.day} {local:%b %H:%M}"
