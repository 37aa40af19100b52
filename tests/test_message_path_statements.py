"""SQL statements per stage of one exchange, asserted exactly (issue 11).

These are deterministic regression guards, not timing tests: every statement is a round
trip to PostgreSQL, so a stage that starts running one more shows up here first. Counts
include the transaction's BEGIN and COMMIT; they are the same on SQLite and PostgreSQL
but for the contact's lock and the status webhook, where each says why (CI runs this file
on PostgreSQL).

One section per stage; each stage's budget is stated with the reason for every statement.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from conversations.models import Contact, Direction, Message, MessageStatus, StatusEvent
from conversations.services import delivery, inbound
from devtools import webhook_payloads as simulate
from meta_integration.models import WebhookEvent
from tests.support.inbound import URLCONF, make_app_config, post_webhook

# Real commits: a test transaction would turn BEGIN/COMMIT into savepoints and hold back
# the on-commit enqueue.
pytestmark = pytest.mark.django_db(transaction=True)

USER = "263770000002"


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = URLCONF
    settings.WEBHOOK_EVENT_SAMPLE_RATE = 0.0  # the production default: no audit row on the normal path


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
# no audit row, no savepoints, no existence check. On PostgreSQL the upsert and the insert
# are one statement (the upsert as a data-modifying CTE; SQLite has no such CTE), and one
# statement is atomic without BEGIN/COMMIT, so it runs in autocommit and the enqueue follows it.
WEBHOOK_ONE_TEXT = 1 if connection.vendor == "postgresql" else 4
# The message's UPDATE (forward only, one statement whatever the status) and the event's
# INSERT; no BEGIN/COMMIT for a POST of statuses only. On PostgreSQL the two are one
# statement (the UPDATE as a data-modifying CTE); SQLite has no such CTE.
WEBHOOK_ONE_STATUS = 1 if connection.vendor == "postgresql" else 2


def test_webhook_one_text_from_a_new_contact(client, warm, broker, django_assert_num_queries):
    with django_assert_num_queries(WEBHOOK_ONE_TEXT):
        assert post_webhook(client, simulate.webhook_body([simulate.text("hi", wa_id=USER)])).status_code == 200
    message = Message.objects.get(contact__wa_id=USER)
    assert [t.args for t in broker.tasks()] == [[message.pk, message.contact_id]]
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
# Stage 2 and 3: flows.process_message - the bot's turn in one transaction, then, in the
# same run, the reply sent and the read receipt
# --------------------------------------------------------------------------------------


@pytest.fixture
def bot(settings):
    """The default flows, the business number on the project's fake Graph API, one warm run
    (this process's flow cache and business-number cache filled, as in a running worker)."""
    from devtools.fake_graph import start_fake_graph
    from flows import services as flow_services
    from tests.support.flows import business, import_defaults

    fake, server = start_fake_graph()
    config = business(graph_url=server.url)
    import_defaults()
    warm = _store_hi(config)
    flow_services.answer_inbound(warm.pk, warm.contact_id, delivery.RunInfo.current())
    yield config, fake
    server.stop()


def _store_hi(config, wa_id: str | None = None) -> Message:
    from conversations.services.inbound import store_messages
    from meta_integration.payloads import parse_webhook

    wa_id = wa_id or "2547" + str(random.randint(10**7, 10**8 - 1))
    batch = parse_webhook(simulate.webhook_body([simulate.text("hi", wa_id=wa_id)]))
    with transaction.atomic():
        [stored] = store_messages(batch.messages, config)
    return Message.objects.get(pk=stored.id)


# The transaction's BEGIN and COMMIT are counted too.
BEGIN_COMMIT = 2
# The contact's lock, the pending messages taken (marked processed) and the contact + session
# + flows' version + chain head: on PostgreSQL one execute (the lock and a data-modifying
# CTE, two statements in one round trip: each takes its snapshot after the lock); on SQLite,
# which needs no lock (one writer at a time), two statements.
TAKE = 1 if connection.vendor == "postgresql" else 2
# Meta's answer recorded and the chain's next row looked for: on PostgreSQL one execute
# (UPDATE; COMMIT; SELECT: the SELECT's snapshot follows the commit), two on SQLite.
ACCEPTED = 1 if connection.vendor == "postgresql" else 2


def test_process_message_answers_hi_with_the_menu_in_3_round_trips(bot, django_assert_num_queries):
    from flows import services as flow_services

    config, _ = bot
    message = _store_hi(config)
    # the lock with the pending messages and the contact (TAKE), new session, reply
    with django_assert_num_queries(BEGIN_COMMIT + TAKE + 2):
        result = flow_services.process_inbound(message.pk, message.contact_id)
    assert result.replied == 1 and len(result.reply_ids) == 1
    assert result.claimed is None  # no run given: nothing is claimed for it


def test_the_whole_run_writes_the_reply_claimed_and_records_meta_s_answer(bot, django_assert_num_queries):
    from flows.services import processing

    config, fake = bot
    message = _store_hi(config)
    # the turn above; then Meta's answer recorded and the chain's next looked for (ACCEPTED):
    # the reply was inserted already claimed by this run, so no claim statement
    with django_assert_num_queries(BEGIN_COMMIT + TAKE + 2 + ACCEPTED):
        result = processing.answer_inbound(message.pk, message.contact_id, delivery.RunInfo.current("t1", "n1"))
    assert result.claimed is not None and result.claimed.id == result.reply_ids[0]
    reply = Message.objects.get(pk=result.reply_ids[0])
    assert (reply.status, reply.attempts, reply.claimed_by, reply.claimed_until) == (MessageStatus.SENT, 1, "", None)
    assert [r.body.get("status") for r in fake.requests()][-1] == "read"


def test_sending_a_reply_is_the_claim_and_meta_s_answer_and_the_read_receipt_nothing(bot, django_assert_num_queries):
    from flows import services as flow_services

    config, fake = bot
    message = _store_hi(config)
    result = flow_services.process_inbound(message.pk, message.contact_id)
    # claim (UPDATE ... RETURNING), Meta's answer recorded and the chain's next message looked for
    with django_assert_num_queries(1 + ACCEPTED):
        outcome = delivery.send_chain(result.reply_ids[0], delivery.RunInfo.current())
    assert outcome.result is delivery.Result.SENT
    with django_assert_num_queries(0):
        assert delivery.mark_read(config.pk, message.wamid)
    assert [r.body.get("status") for r in fake.requests()][-1] == "read"


def test_a_reply_behind_a_pending_one_is_not_written_claimed_and_waits_its_turn(bot):
    """The chain's order holds for the pre-claimed reply: with an earlier reply of the same
    number still pending (a retry waiting, say), the new one is written unclaimed and the
    run's send finds it waiting for the previous one."""
    from conversations.services import sending
    from flows.services import processing

    config, fake = bot
    message = _store_hi(config)
    contact = message.contact
    [earlier] = sending.write_replies(contact, config.pk, [{"type": "text", "body": "earlier"}],
                                      sending.validate_specs(contact.wa_id, [{"type": "text", "body": "earlier"}]))
    Message.objects.filter(pk=earlier).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    sent_before = len(fake.requests())
    result = processing.answer_inbound(message.pk, message.contact_id, delivery.RunInfo.current())
    assert result.claimed is None
    reply = Message.objects.get(pk=result.reply_ids[0])
    assert (reply.status, reply.claimed_by, reply.attempts) == (MessageStatus.PENDING, "", 0)
    assert [r.body.get("status") for r in fake.requests()[sent_before:]] == ["read"]  # no message sent


def test_an_answer_to_a_message_older_than_the_window_is_not_written_claimed(bot):
    """The pre-claim judges the window by the message answered; when that says closed it
    leaves the row to the claim, which reads the contact's latest message (a newer one may
    have reopened it)."""
    from flows.services import processing

    config, _ = bot
    message = _store_hi(config)
    Message.objects.filter(pk=message.pk).update(timestamp=timezone.now() - timedelta(hours=25))
    result = processing.process_inbound(message.pk, message.contact_id, delivery.RunInfo.current())
    assert result.reply_ids and result.claimed is None
    assert Message.objects.get(pk=result.reply_ids[0]).claimed_by == ""


def test_the_whole_run_draws_no_warning_from_postgresql(bot):
    """Each round trip is well-formed: a COMMIT with no transaction to end works, but the
    server logs a WARNING for it, and at Meta's rate that is a log line per message sent."""
    from django.db import connection

    from flows.services import processing

    if connection.vendor != "postgresql":
        pytest.skip("server notices are PostgreSQL's")
    config, _fake = bot
    message = _store_hi(config)
    connection.ensure_connection()
    notices: list[str] = []
    connection.connection.add_notice_handler(lambda diag: notices.append(f"{diag.severity}: {diag.message_primary}"))
    result = processing.answer_inbound(message.pk, message.contact_id, delivery.RunInfo.current("t1", "n1"))
    assert Message.objects.get(pk=result.reply_ids[0]).status == MessageStatus.SENT
    assert notices == []
