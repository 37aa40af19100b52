"""The 24-hour customer-service window (conversations/window.py): the one rule the send
path and both APIs ask, so its edges are pinned here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conversations.window import CUSTOMER_SERVICE_WINDOW, window_open

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_open_within_24_hours_of_the_users_last_message():
    assert window_open(NOW - timedelta(hours=23, minutes=59, seconds=59), NOW)
    assert window_open(NOW, NOW)


def test_closed_at_exactly_24_hours_and_after():
    assert CUSTOMER_SERVICE_WINDOW == timedelta(hours=24)
    assert not window_open(NOW - timedelta(hours=24), NOW)
    assert not window_open(NOW - timedelta(days=3), NOW)


def test_a_contact_who_never_wrote_has_no_window():
    assert not window_open(None, NOW)
