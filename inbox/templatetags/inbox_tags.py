"""Template helpers of the inbox: the admin index's counts and WhatsApp formatting."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString

from inbox.formatting import whatsapp_html

register = template.Library()


@register.simple_tag
def inbox_counts() -> dict[str, Any]:
    """Conversations waiting for a human and failed messages, with where to see them, for the
    admin index; empty when the inbox is not mounted (a URLconf with admin alone)."""
    from inbox.services import inbox_counts as counts

    try:
        inbox_url = reverse("inbox:list")
    except NoReverseMatch:
        return {}
    try:
        failed_url = reverse("admin:conversations_failedmessage_changelist")
    except NoReverseMatch:
        failed_url = ""
    return {**counts(), "url": inbox_url, "failed_url": failed_url}


@register.filter
def whatsapp(text: Any) -> SafeString:
    """WhatsApp formatting, escaped first (see inbox.formatting)."""
    return whatsapp_html(str(text) if text is not None else "")


@register.filter
def duration(seconds: Any) -> str:
    """Seconds as "5h 12m" / "12m" / "closed"."""
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        return ""
    if seconds <= 0:
        return "closed"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"
