"""A campaign's progress: recipients by status, send rate, estimated finish, failures.

A recipient's status follows its message: ``pending`` (queued, or written and not yet
accepted by Meta), ``sent``, ``delivered``, ``read``, ``failed`` (Meta's code and title, or
why it failed before sending), ``replied`` (the contact wrote to the number after the send;
counted on top of sent/delivered/read), ``skipped`` (opted out or blocked), ``cancelled``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from campaigns.models import Campaign, Recipient, RecipientState
from conversations.models import Direction, Message, MessageStatus

__all__ = ["RATE_WINDOW", "failed_recipients", "progress"]

RATE_WINDOW = timedelta(seconds=60)  # the send rate is measured over the last minute


def _replied(campaign: Campaign):
    inbound_after = Message.objects.filter(
        contact_id=OuterRef("contact_id"), app_config_id=campaign.app_config_id, direction=Direction.INBOUND,
        created_at__gt=OuterRef("message__sent_at"),
    )
    return Recipient.objects.filter(campaign=campaign, state=RecipientState.WRITTEN,
                                    message__sent_at__isnull=False).filter(Exists(inbound_after))


def progress(campaign: Campaign, *, now: datetime | None = None) -> dict[str, Any]:
    """Counts by status, the share finished, the send rate over the last minute and the
    estimated finish (JSON-ready: the admin's progress bar polls it)."""
    now = now or timezone.now()
    counts = {status: 0 for status in ("pending", "sent", "delivered", "read", "failed", "skipped", "cancelled")}
    by_state = dict(Recipient.objects.filter(campaign=campaign).values_list("state").annotate(n=Count("pk")))
    counts["pending"] += by_state.get(RecipientState.QUEUED, 0)
    counts["failed"] += by_state.get(RecipientState.FAILED, 0)
    counts["skipped"] += by_state.get(RecipientState.SKIPPED, 0)
    counts["cancelled"] += by_state.get(RecipientState.CANCELLED, 0)
    written = (Recipient.objects.filter(campaign=campaign, state=RecipientState.WRITTEN)
               .values_list("message__status").annotate(n=Count("pk")))
    for status, n in written:
        key = status if status in counts else ("pending" if status in (None, MessageStatus.PENDING) else "sent")
        counts[key] += n
    counts["replied"] = _replied(campaign).count()
    total = sum(by_state.values())
    finished = total - counts["pending"]
    recent = Recipient.objects.filter(campaign=campaign, message__sent_at__gte=now - RATE_WINDOW).count()
    elapsed = RATE_WINDOW.total_seconds()
    if campaign.running_since and now - campaign.running_since < RATE_WINDOW:
        elapsed = max(1.0, (now - campaign.running_since).total_seconds())
    rate = recent / elapsed
    eta = None
    if campaign.state == "running" and rate > 0 and counts["pending"]:
        eta = (now + timedelta(seconds=counts["pending"] / rate)).isoformat()
    return {
        "campaign": campaign.pk,
        "state": campaign.state,
        "state_reason": campaign.state_reason,
        "total": total,
        "finished": finished,
        "percent": round(100.0 * finished / total, 1) if total else 0.0,
        "counts": counts,
        "skipped_opted_out_at_start": campaign.skipped_opted_out,
        "skipped_blocked_at_start": campaign.skipped_blocked,
        "send_rate_per_second": round(rate, 2),
        "configured_rate_per_second": campaign.app_config.send_rate_per_second,
        "estimated_finish": eta,
    }


def failed_recipients(campaign: Campaign, limit: int = 100) -> list[dict[str, Any]]:
    """The failed recipients with their error: Meta's code and title, or why it failed before sending."""
    rows = (
        Recipient.objects.filter(campaign=campaign)
        .filter(state__in=[RecipientState.FAILED, RecipientState.WRITTEN])
        .exclude(state=RecipientState.WRITTEN, message__status__in=[
            MessageStatus.PENDING, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ])
        .values("pk", "contact__wa_id", "state", "error", "message_id", "message__error_code",
                "message__error_title", "message__error_details")
        .order_by("pk")[:limit]
    )
    return [
        {
            "recipient": row["pk"],
            "wa_id": row["contact__wa_id"],
            "message": row["message_id"],
            "code": row["message__error_code"],
            "error": row["error"] if row["state"] == RecipientState.FAILED
            else f"{row['message__error_title']}: {row['message__error_details']}".strip(": "),
        }
        for row in rows
    ]
