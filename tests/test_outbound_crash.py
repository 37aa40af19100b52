"""A worker killed while Meta has the request: the redelivered task must not send it again.

What the design guarantees (see ``meta_integration.services_outbound``): the run writes an
attempt record in Redis before the POST; a later delivery of the same task that finds it
without a wamid marks the message failed ("Send interrupted") for an operator instead of
sending a possible duplicate. These tests kill a real gevent worker with SIGKILL while the
fake Graph API holds the request, restart one, redeliver, and count sends at the fake.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.conf import settings

from conversations.models import Message, MessageStatus
from conversations.services.outbound import resend_failed, send_to_contact
from meta_integration.fake_graph import FaultKind
from tests.test_outbound_support import make_config, make_contact, start_io_worker, wait_until
from whatsappcrm_backend.celery import app as celery_app

pytest_plugins = ["tests.test_outbound_support"]
pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def redeliver_unacknowledged() -> None:
    """What the Redis transport does after the visibility timeout (2 h): put messages that a
    lost worker had taken but not acknowledged back on their queue. Done now, not in 2 h."""
    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 0}
    with celery_app.connection_for_write(transport_options=options) as conn:
        conn.default_channel.qos.restore_visible(num=1000, interval=1)


def test_a_worker_killed_while_meta_holds_the_request_does_not_cause_a_second_send(fake, graph_url, redis_client):
    contact = make_contact(make_config(graph_url))
    fake.set_latency(2500)
    doomed = start_io_worker()
    try:
        message = send_to_contact(contact, {"type": "text", "body": "Your ticket #4411 is placed."})
        attempt_key = f"wa:send:attempt:{message.pk}"
        wait_until(lambda: Message.objects.get(pk=message.pk).attempts == 1 and redis_client.exists(attempt_key),
                   what="the attempt to start")
        time.sleep(0.5)  # the POST is at the fake now, waiting for its answer
        os.killpg(doomed.process.pid, signal.SIGKILL)
    finally:
        doomed.stop()
    [accepted] = fake.wait_for_messages(1, to=contact.wa_id, timeout=10)  # Meta accepted it; nobody heard
    message.refresh_from_db()
    assert (message.status, message.wamid) == (MessageStatus.PENDING, None)

    fake.set_latency(0)
    survivor = start_io_worker()
    try:
        redeliver_unacknowledged()
        wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.FAILED, what="failed")
        message.refresh_from_db()
        assert message.error_title == "Send interrupted"
        assert "not sent again automatically" in message.error_details
        time.sleep(1.0)
        assert len(fake.requests(to=contact.wa_id)) == 1  # the redelivery sent nothing

        resend_failed(message)  # the operator looked and decided to send it again
        fake.wait_for_messages(2, to=contact.wa_id, timeout=20)
        wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, what="resent")
        message.refresh_from_db()
        assert message.wamid == fake.messages(to=contact.wa_id)[1].wamid != accepted.wamid
        assert message.attempts == 1 and message.error_title == ""
    finally:
        survivor.stop()


def test_a_read_timeout_is_retried_and_the_message_is_sent(fake, graph_url):
    contact = make_contact(make_config(graph_url))
    fake.add_fault(kind=FaultKind.TIMEOUT, delay_ms=2500, to=contact.wa_id)
    worker = start_io_worker(env={"META_HTTP_TIMEOUT": "1.0"})
    try:
        message = send_to_contact(contact, {"type": "text", "body": "Kick-off in 10 minutes."})
        wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, timeout=30, what="sent")
    finally:
        worker.stop()
    message.refresh_from_db()
    assert message.attempts == 2
    # Records complete in answer order: the hung request is logged after the retry's answer.
    timed_out, ok = sorted(fake.requests(to=contact.wa_id), key=lambda r: r.received_monotonic)
    assert timed_out.http_status is None and ok.ok and message.wamid == ok.wamid
