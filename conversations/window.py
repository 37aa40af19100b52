"""WhatsApp's 24-hour customer-service window, decided in one place.

A business number may send free-form messages to a user only within 24 hours of the user's
last message to it; outside the window Meta delivers only approved templates. The send path
refuses such a row before calling Meta, and the APIs refuse an operator's message before
writing it; all ask this function, so the rule and its edge are written once.

Pure: the caller passes the user's last message time that applies (the send path: the last
message to the sending number, from its claim) and the time (``now``).
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
