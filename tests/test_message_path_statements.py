"""SQL statements per stage of one exchange, asserted exactly (issue 11).

These are deterministic regression guards, not timing tests: every statement is a round
trip to PostgreSQL, so a stage that starts running one more shows up here first. Counts
include the transaction's BEGIN and COMMIT; they are the same on SQLite and PostgreSQL
(CI runs this file on PostgreSQL).

One section per stage; each stage's budget is stated with the reason for every statement.
"""

from __future__ import annotations

import pytest

from conversations.models import Contact, Direction, Message, MessageStatus, StatusEvent
from conversations.services import inbound
from meta_integration import simulate
from meta_integration.models import WebhookEvent
from tests.test_inbound_support import URLCONF, isolated_broker, make_app_config, post_webhook

# Real commits: a test transaction would turn BEGIN/COMMIT into savepoints and hold back
# the on-commit enqueue.
pytestmark = pytest.mark.django_db(transaction=True)

USER = "263770000002"


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = URLCONF
    settings.WEBHOOK_EVENT_SAMPLE_RATE = 0.0  # the production default: no audit row on the normal path


@pytest.fixture
def broker():
    with isolated_broker() as isolated:
        yield isolated


@pytest.fixture
def warm(client, broker):
    """A process that has answered one webhook already: its business number is cached."""
    config = make_app_config()
    assert post_webhook(client, simulate.webhook_body([simulate.text("warm-up", wa_id="263770000001")])).status_code \
        == 200
    broker.flush()
    return config


# --------------------------------------------------------------------------------------
# Stage 1: the webhook POST (meta_integration.views.webhook)
# --------------------------------------------------------------------------------------

# BEGIN, contacts upsert (INSERT ... ON CONFLICT DO UPDATE RETURNING), messages insert
# (INSERT ... ON CONFLICT (wamid) DO NOTHING RETURNING), COMMIT. No config lookup (cached),
# no audit row, no savepoints, no existence check.
WEBHOOK_ONE_TEXT = 4
# The message's UPDATE (forward only, one statement whatever the status) and the event's
# INSERT; no BEGIN/COMMIT for a POST of statuses only.
WEBHOOK_ONE_STATUS = 2


def test_webhook_one_text_from_a_new_contact(client, warm, broker, django_assert_num_queries):
    with django_assert_num_queries(WEBHOOK_ONE_TEXT):
        assert post_webhook(client, simulate.webhook_body([simulate.text("hi", wa_id=USER)])).status_code == 200
    message = Message.objects.get(contact__wa_id=USER)
    assert [t.args for t in broker.tasks()] == [[message.pk]]
    assert [t.task for t in broker.tasks()] == [inbound.PROCESS_MESSAGE_TASK]
    assert WebhookEvent.objects.count() == 0


def test_webhook_one_text_from_a_known_contact(client, warm, broker, django_assert_num_queries):
    post_webhook(client, simulate.webhook_body([simulate.text("first", wa_id=USER)]))
    broker.flush()
    with django_assert_num_queries(WEBHOOK_ONE_TEXT):
        assert post_webhook(client, simulate.webhook_body([simulate.text("again", wa_id=USER)])).status_code == 200
    assert Message.objects.filter(contact__wa_id=USER).count() == 2
    assert len(broker.tasks()) == 1


def test_webhook_a_redelivered_message(client, warm, broker, django_assert_num_queries):
    body = simulate.webhook_body([simulate.text("once", wa_id=USER)])
    post_webhook(client, body)
    broker.flush()
    with django_assert_num_queries(WEBHOOK_ONE_TEXT):
        assert post_webhook(client, body).status_code == 200
    assert Message.objects.filter(contact__wa_id=USER).count() == 1
    assert broker.tasks() == []  # nothing new: nothing enqueued


def test_webhook_one_status_for_a_stored_wamid(client, warm, django_assert_num_queries):
    reply = Message.objects.create(
        contact=Contact.objects.create(wa_id=USER), app_config=warm, direction=Direction.OUTBOUND,
        message_type="text", text="Main menu", wamid=simulate.new_wamid(outgoing=True), status=MessageStatus.SENT,
    )
    with django_assert_num_queries(WEBHOOK_ONE_STATUS):
        assert post_webhook(client, simulate.webhook_body(
            statuses=[simulate.status(reply.wamid, "sent", USER, biz_opaque_callback_data=f"msg:{reply.pk}")]
        )).status_code == 200
    reply.refresh_from_db()
    assert reply.status_at is not None  # Meta's time filled in
    assert StatusEvent.objects.get().applied is True
    for state in ("delivered", "read"):
        with django_assert_num_queries(WEBHOOK_ONE_STATUS):
            post_webhook(client, simulate.webhook_body(statuses=[simulate.status(reply.wamid, state, USER)]))
    reply.refresh_from_db()
    assert reply.status == MessageStatus.READ


# --------------------------------------------------------------------------------------
# Stage 2: flows.process_message (the lead adds it)
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Stage 3: the send (the lead adds it)
# --------------------------------------------------------------------------------------
