"""Status webhooks: recorded once, applied forward only, kept until their message exists.

Meta reports sent / delivered / read / failed for each message we send, sometimes twice and
sometimes out of order. Whatever the arrival order, the message ends in the furthest state
reached (failed is terminal and keeps Meta's error).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from django.db import transaction

from conversations.models import Contact, Direction, Message, MessageStatus, StatusEvent
from conversations.services.inbound import apply_pending_status_events, reconcile_status_events
from meta_integration import simulate
from meta_integration.models import MetaAppConfig
from tests.test_inbound_support import URLCONF, make_app_config, post_webhook

pytestmark = pytest.mark.django_db

USER = simulate.DEFAULT_WA_ID
TS = 1_760_000_000


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = URLCONF


@pytest.fixture
def app_config(db) -> MetaAppConfig:
    return make_app_config()


@pytest.fixture
def outbound(app_config) -> Message:
    return Message.objects.create(
        contact=Contact.objects.create(wa_id=USER), app_config=app_config, direction=Direction.OUTBOUND,
        message_type="text", text="Here are today's fixtures", wamid=simulate.new_wamid(outgoing=True),
        status=MessageStatus.SENT,
    )


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


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
