"""WhatsApp's 24-hour customer-service window, decided in one place.

A business may send free-form messages to a user only within 24 hours of the user's last
message to it; outside the window Meta delivers only approved templates. The send path
refuses such a row before calling Meta, and the API refuses an operator's message before
writing it; both ask this module so they can never disagree about the edge.

Pure: the caller passes the time (the send path its run's clock, the API ``timezone.now()``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["CUSTOMER_SERVICE_WINDOW", "window_open"]

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """True while free-form messages may be sent: the user wrote less than 24 hours before ``now``.

    A contact who never wrote (``None``) has no window: only a template reaches them.
    """
    return last_inbound_at is not None and now - last_inbound_at < CUSTOMER_SERVICE_WINDOW
