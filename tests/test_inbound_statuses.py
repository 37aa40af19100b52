"""Status webhooks: recorded once, applied forward only, kept until their message exists.

Meta reports sent / delivered / read / failed for each message we send, sometimes twice and
sometimes out of order. Whatever the arrival order, the message ends in the furthest state
reached (failed is terminal and keeps Meta's error).
"""

from __future__ import annotations

import itertools

import pytest
from django.db import transaction

from conversations.models import Contact, Direction, Message, MessageStatus, StatusEvent
from conversations.services.inbound import apply_pending_status_events, reconcile_status_events
from devtools import webhook_payloads as simulate
from tests.support.inbound import URLCONF, at, post_webhook

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLCONF)]

USER = simulate.DEFAULT_WA_ID
TS = 1_760_000_000


@pytest.fixture
def outbound(app_config) -> Message:
    return Message.objects.create(
        contact=Contact.objects.create(wa_id=USER), app_config=app_config, direction=Direction.OUTBOUND,
        message_type="text", text="Here are today's fixtures", wamid=simulate.new_wamid(outgoing=True),
        status=MessageStatus.SENT,
    )


def post_statuses(client, *statuses: dict) -> None:
    assert post_webhook(client, simulate.webhook_body(statuses=list(statuses))).status_code == 200


def status(wamid: str, state: str, offset: int, **kwargs) -> dict:
    return simulate.status(wamid, state, USER, timestamp=TS + offset, **kwargs)


def test_sent_delivered_read_in_order(client, outbound):
    for offset, state in enumerate(["sent", "delivered", "read"], start=1):
        post_statuses(client, status(outbound.wamid, state, offset))
        outbound.refresh_from_db()
        assert (outbound.status, outbound.status_at) == (state, at(TS + offset))
    assert list(StatusEvent.objects.values_list("status", "applied")) == [
        ("sent", True), ("delivered", True), ("read", True)
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "read"])))
def test_any_arrival_order_ends_at_read(client, outbound, order):
    offsets = {"sent": 1, "delivered": 2, "read": 3}
    for state in order:
        post_statuses(client, status(outbound.wamid, state, offsets[state]))
    outbound.refresh_from_db()
    assert (outbound.status, outbound.status_at) == (MessageStatus.READ, at(TS + 3))


def test_read_before_delivered_in_one_post_ends_at_read(client, outbound):
    post_statuses(client, status(outbound.wamid, "read", 3), status(outbound.wamid, "delivered", 2))
    outbound.refresh_from_db()
    assert outbound.status == MessageStatus.READ


def test_failed_is_terminal_and_keeps_metas_error(client, outbound):
    error = simulate.error_object(131047)
    post_statuses(client, status(outbound.wamid, "failed", 2, errors=[error]))
    outbound.refresh_from_db()
    assert (outbound.status, outbound.status_at) == (MessageStatus.FAILED, at(TS + 2))
    assert outbound.error_code == 131047
    assert outbound.error_title == "Re-engagement message"
    assert outbound.error_details.startswith("Message failed to send because more than 24 hours")

    post_statuses(client, status(outbound.wamid, "delivered", 3), status(outbound.wamid, "read", 4))
    outbound.refresh_from_db()
    assert (outbound.status, outbound.error_code) == (MessageStatus.FAILED, 131047)


def test_failed_wins_over_other_statuses_in_the_same_post(client, outbound):
    post_statuses(client, status(outbound.wamid, "failed", 2), status(outbound.wamid, "delivered", 1))
    outbound.refresh_from_db()
    assert (outbound.status, outbound.error_code) == (MessageStatus.FAILED, 131026)


def test_a_redelivered_status_is_recorded_once(client, outbound):
    delivered = status(outbound.wamid, "delivered", 2)
    for _ in range(3):
        post_statuses(client, delivered)
    assert StatusEvent.objects.count() == 1
    outbound.refresh_from_db()
    assert outbound.status == MessageStatus.DELIVERED


def test_pricing_and_conversation_are_kept_with_the_event(client, outbound):
    post_statuses(client, status(outbound.wamid, "sent", 1, conversation_id="c0ffee", category="utility"))
    event = StatusEvent.objects.get()
    assert event.conversation["id"] == "c0ffee"
    assert event.conversation["origin_type"] == "utility"
    assert event.conversation["expiration_timestamp"] == at(TS + 1 + 24 * 3600).isoformat()
    assert event.pricing == {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
    assert event.recipient_id == USER


def test_a_status_for_an_unknown_wamid_waits_for_its_message(client, app_config):
    wamid = simulate.new_wamid(outgoing=True)
    post_statuses(client, status(wamid, "delivered", 2), status(wamid, "sent", 1))
    assert set(StatusEvent.objects.values_list("status", "applied")) == {("sent", False), ("delivered", False)}

    # The send task stores the wamid Meta returned, then applies what was waiting.
    with transaction.atomic():
        message = Message.objects.create(
            contact=Contact.objects.create(wa_id=USER), app_config=app_config, direction=Direction.OUTBOUND,
            message_type="text", text="hi", wamid=wamid, status=MessageStatus.SENT,
        )
        assert apply_pending_status_events(wamid) == 2
    message.refresh_from_db()
    assert (message.status, message.status_at) == (MessageStatus.DELIVERED, at(TS + 2))
    assert not StatusEvent.objects.filter(applied=False).exists()
    assert apply_pending_status_events(wamid) == 0


def test_reconcile_applies_events_whose_message_appeared_later(client, app_config):
    early, never = simulate.new_wamid(outgoing=True), simulate.new_wamid(outgoing=True)
    post_statuses(client, status(early, "read", 3), status(never, "delivered", 2))
    message = Message.objects.create(
        contact=Contact.objects.create(wa_id=USER), app_config=app_config, direction=Direction.OUTBOUND,
        message_type="text", text="hi", wamid=early, status=MessageStatus.PENDING,
    )
    assert reconcile_status_events() == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.READ
    assert list(StatusEvent.objects.filter(applied=False).values_list("wamid", flat=True)) == [never]
    assert reconcile_status_events() == 0


def test_a_status_naming_an_inbound_message_changes_nothing(client, app_config):
    inbound_message = simulate.text("hi", timestamp=TS)
    assert post_webhook(client, simulate.webhook_body([inbound_message])).status_code == 200
    post_statuses(client, status(inbound_message["id"], "read", 5))
    row = Message.objects.get(wamid=inbound_message["id"])
    assert row.status == MessageStatus.RECEIVED
    assert StatusEvent.objects.get().applied is False


def test_a_status_meta_does_not_define_is_not_recorded(client, outbound):
    deleted = status(outbound.wamid, "sent", 1) | {"status": "deleted"}
    post_statuses(client, deleted)
    assert StatusEvent.objects.count() == 0
    outbound.refresh_from_db()
    assert outbound.status == MessageStatus.SENT


# --------------------------------------------------------------------------------------
# A lost wamid, reconciled through biz_opaque_callback_data ("msg:<Message pk>")
# --------------------------------------------------------------------------------------


def unsent(app_config, **fields) -> Message:
    """An outbound row whose wamid was never stored (Meta answered, our bookkeeping did not)."""
    values = {"status": MessageStatus.PENDING, "attempts": 1} | fields
    return Message.objects.create(
        contact=Contact.objects.get_or_create(wa_id=USER)[0], app_config=app_config, direction=Direction.OUTBOUND,
        message_type="text", text="Pick a league", **values,
    )


def test_the_first_status_stores_a_lost_wamid_on_the_row_its_callback_names(client, app_config):
    """The send run died between Meta's answer and storing it: its lease is still on the row."""
    row = unsent(app_config, claimed_by="celery@io-1 task-42", claimed_until=at(TS + 600))
    wamid = simulate.new_wamid(outgoing=True)
    callback = f"msg:{row.pk}"
    post_statuses(client, status(wamid, "sent", 1, biz_opaque_callback_data=callback))
    row.refresh_from_db()
    assert (row.wamid, row.status, row.status_at, row.sent_at) == (wamid, MessageStatus.SENT, at(TS + 1), at(TS + 1))
    assert (row.claimed_by, row.claimed_until) == ("", None)  # the lease is given back
    post_statuses(client, status(wamid, "read", 3, biz_opaque_callback_data=callback),
                  status(wamid, "delivered", 2, biz_opaque_callback_data=callback))
    row.refresh_from_db()
    assert (row.wamid, row.status, row.status_at, row.sent_at) == (wamid, MessageStatus.READ, at(TS + 3), at(TS + 1))
    assert set(StatusEvent.objects.values_list("status", "applied")) == {
        ("sent", True), ("delivered", True), ("read", True)
    }


def test_a_row_failed_as_send_interrupted_is_sent_after_all_when_meta_reports_it(client, app_config):
    """Nothing Meta accepted may end failed: the operator must not be invited to resend it."""
    row = unsent(app_config, status=MessageStatus.FAILED, error_title="Send interrupted",
                 error_details="the worker stopped between Meta's answer and the database")
    wamid = simulate.new_wamid(outgoing=True)
    post_statuses(client, status(wamid, "delivered", 2, biz_opaque_callback_data=f"msg:{row.pk}"))
    row.refresh_from_db()
    assert (row.wamid, row.status, row.error_code, row.error_title, row.error_details) == (
        wamid, MessageStatus.DELIVERED, None, "", ""
    )
    assert row.sent_at == at(TS + 2)


def test_meta_reporting_failure_for_an_interrupted_row_replaces_our_error_with_its_own(client, app_config):
    row = unsent(app_config, status=MessageStatus.FAILED, error_title="Send interrupted")
    wamid = simulate.new_wamid(outgoing=True)
    post_statuses(client, status(wamid, "failed", 2, errors=[simulate.error_object(131047)],
                                 biz_opaque_callback_data=f"msg:{row.pk}"))
    row.refresh_from_db()
    assert (row.wamid, row.status, row.error_code, row.error_title) == (
        wamid, MessageStatus.FAILED, 131047, "Re-engagement message"
    )


def test_another_failure_is_kept_but_the_wamid_is_recorded(client, app_config):
    row = unsent(app_config, status=MessageStatus.FAILED, error_code=131026, error_title="Message undeliverable")
    wamid = simulate.new_wamid(outgoing=True)
    post_statuses(client, status(wamid, "sent", 1, biz_opaque_callback_data=f"msg:{row.pk}"))
    row.refresh_from_db()
    assert (row.wamid, row.status, row.error_code) == (wamid, MessageStatus.FAILED, 131026)


@pytest.mark.parametrize(
    "callback",
    ["msg:{other}", "msg:{inbound}", "msg:999999999", "msg:abc", "msg:{pk} ", "{pk}", "msg:-{pk}", ""],
    ids=["row-with-another-wamid", "inbound-row", "no-such-row", "not-a-number", "trailing-space", "no-prefix",
         "negative", "empty"],
)
def test_a_callback_that_names_no_reconcilable_row_changes_nothing(client, app_config, callback):
    row = unsent(app_config)
    other = unsent(app_config, status=MessageStatus.SENT, wamid=simulate.new_wamid(outgoing=True))
    assert post_webhook(client, simulate.webhook_body([simulate.text("hi", timestamp=TS)])).status_code == 200
    inbound_row = Message.objects.get(direction=Direction.INBOUND)
    wamid = simulate.new_wamid(outgoing=True)
    post_statuses(client, status(wamid, "delivered", 2, biz_opaque_callback_data=callback.format(
        pk=row.pk, other=other.pk, inbound=inbound_row.pk)))
    for message in (row, other, inbound_row):
        before = (message.wamid, message.status)
        message.refresh_from_db()
        assert (message.wamid, message.status) == before
    assert StatusEvent.objects.get().applied is False  # waits for its wamid, as any unknown status


def test_a_status_matching_a_stored_wamid_ignores_its_callback(client, outbound, app_config):
    """The wamid decides; a callback naming another (wamid-less) row must not give it the same wamid."""
    row = unsent(app_config, claimed_by="celery@io-1 task-43", claimed_until=at(TS + 600))
    post_statuses(client, status(outbound.wamid, "delivered", 2, biz_opaque_callback_data=f"msg:{row.pk}"))
    row.refresh_from_db()
    outbound.refresh_from_db()
    assert (row.wamid, row.status, row.claimed_until) == (None, MessageStatus.PENDING, at(TS + 600))
    assert outbound.status == MessageStatus.DELIVERED


def test_the_send_path_storing_the_wamid_afterwards_finds_nothing_left_to_apply(client, app_config):
    row = unsent(app_config)
    wamid = simulate.new_wamid(outgoing=True)
    post_statuses(client, status(wamid, "sent", 1, biz_opaque_callback_data=f"msg:{row.pk}"))
    with transaction.atomic():
        assert apply_pending_status_events(wamid) == 0
    row.refresh_from_db()
    assert (row.wamid, row.status) == (wamid, MessageStatus.SENT)
