"""A run killed mid-send: nothing Meta accepted is sent twice or ends failed, nothing it did
not get is lost.

What the design guarantees (see ``conversations.services.delivery``): the run claims the row
(a lease in the database) before the POST, and every payload names its row in
``biz_opaque_callback_data``. If the run dies after Meta accepted, Meta's status webhook
names the row and stores the wamid; if it died before the request reached Meta, no status
ever comes, the lease expires, and the message is sent then. These tests kill a real gevent
worker with SIGKILL while the fake Graph API holds the request, or leave a claim behind as a
dead run would, and count sends at the fake.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from conversations.models import Message, MessageStatus
from conversations.services import delivery
from conversations.services.sending import send_to_contact
from conversations.tasks import send_message
from devtools import webhook_payloads as simulate
from devtools.fake_graph_scripting import FaultKind
from tests.support.broker import discard_workers
from tests.support.outbound import make_config, make_contact, start_io_worker
from tests.support.waiting import wait_until
from whatsappcrm_backend.celery import app as celery_app
from whatsappcrm_backend.celery import enqueue

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

# A short lease: 3 x 1 s of HTTP timeouts + 5 s + 1 s of grace for the status webhook.
SHORT_LEASE = {"META_HTTP_TIMEOUT": "1.0", "SEND_STATUS_GRACE_SECONDS": "1.0"}
LEASE_LEFT = 4.0  # seconds of the dead run's lease still to run when the test starts waiting


def redeliver_unacknowledged() -> None:
    """What the Redis transport does after the visibility timeout (2 h): put messages that a
    lost worker had taken but not acknowledged back on their queue. Done now, not in 2 h."""
    options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 0}
    with celery_app.connection_for_write(transport_options=options) as conn:
        conn.default_channel.qos.restore_visible(num=1000, interval=1)


def test_a_worker_killed_while_meta_holds_the_request_sends_once_and_the_status_names_the_row(
    fake, graph_url, client
):
    config = make_config(graph_url)
    contact = make_contact(config)
    fake.set_latency(2500)
    doomed = start_io_worker(env={"META_HTTP_TIMEOUT": "3.0", "SEND_STATUS_GRACE_SECONDS": "1.0"})
    try:
        message = send_to_contact(contact, {"type": "text", "body": "Your ticket #4411 is placed."})
        wait_until(lambda: Message.objects.get(pk=message.pk).attempts == 1, what="the attempt to start")
        time.sleep(0.5)  # the POST is at the fake now, waiting for its answer
        os.killpg(doomed.process.pid, signal.SIGKILL)
    finally:
        doomed.stop()
    [accepted] = fake.wait_for_messages(1, to=contact.wa_id, timeout=10)  # Meta accepted it; nobody heard
    message.refresh_from_db()
    assert (message.status, message.wamid) == (MessageStatus.PENDING, None)
    assert accepted.body["biz_opaque_callback_data"] == f"msg:{message.pk}"

    # Meta's "sent" status for it, echoing the callback data: the row learns its wamid.
    status = simulate.status(accepted.wamid, "sent", contact.wa_id,
                             biz_opaque_callback_data=accepted.body["biz_opaque_callback_data"])
    body = simulate.webhook_body(statuses=[status], phone_number_id=config.phone_number_id)
    raw, headers = simulate.signed_request(body, config.app_secret)
    headers = {key: value for key, value in headers.items() if key.lower() != "content-type"}
    assert client.post("/webhooks/meta/", data=raw, content_type="application/json", headers=headers).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.wamid) == (MessageStatus.SENT, accepted.wamid)

    fake.set_latency(0)
    survivor = start_io_worker()
    try:
        redeliver_unacknowledged()
        enqueue(send_message, message.pk)  # and the sweeper's task, for good measure
        time.sleep(2.0)
        assert len(fake.requests(to=contact.wa_id)) == 1  # nothing was sent again
        message.refresh_from_db()
        assert (message.status, message.wamid, message.error_title) == (MessageStatus.SENT, accepted.wamid, "")
    finally:
        discard_workers(survivor)


def test_a_run_that_died_before_its_request_reached_meta_is_sent_once_its_lease_expires(
    fake, graph_url, settings
):
    settings.META_HTTP_TIMEOUT = 1.0
    settings.SEND_STATUS_GRACE_SECONDS = 1.0
    contact = make_contact(make_config(graph_url))
    message = Message.objects.create(
        contact=contact, app_config=contact.app_config, direction="out", message_type="text",
        text="Kick-off in 10 minutes.", content={"type": "text", "body": "Kick-off in 10 minutes."},
        status=MessageStatus.PENDING,
    )
    worker = start_io_worker(env=SHORT_LEASE)
    try:
        # A run claimed it a few seconds ago and died before its POST: the row keeps that run's
        # lease for LEASE_LEFT more seconds (claimed once the worker is up, so a slow start on
        # a busy machine cannot eat the lease before the check below).
        claimed_at = timezone.now() - timedelta(seconds=delivery._lease_seconds() - LEASE_LEFT)
        assert delivery._claim(message.pk, delivery.RunInfo("dead-run", "lost-node"), claimed_at) is not None
        claimed = Message.objects.get(pk=message.pk)
        assert claimed.claimed_by == "dead-run@lost-node" and claimed.claimed_until > timezone.now()
        enqueue(send_message, message.pk)  # a redelivery or the sweeper: it waits for the lease
        time.sleep(2.0)
        assert fake.requests(to=contact.wa_id) == []  # not while the dead run's lease holds
        wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, timeout=30,
                   what="sent after the lease")
    finally:
        discard_workers(worker)
    message.refresh_from_db()
    [sent] = fake.messages(to=contact.wa_id)
    assert (message.wamid, message.attempts, message.claimed_by) == (sent.wamid, 2, "")


def test_a_read_timeout_is_retried_and_the_message_is_sent(fake, graph_url):
    contact = make_contact(make_config(graph_url))
    fake.add_fault(kind=FaultKind.TIMEOUT, delay_ms=2500, to=contact.wa_id)
    worker = start_io_worker(env={"META_HTTP_TIMEOUT": "1.0"})
    try:
        message = send_to_contact(contact, {"type": "text", "body": "Kick-off in 10 minutes."})
        wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, timeout=30, what="sent")
    finally:
        discard_workers(worker)
    message.refresh_from_db()
    assert message.attempts == 2
    # The fake records the hung request when its 2.5 s hold ends, after the retry's answer.
    wait_until(lambda: len(fake.requests(to=contact.wa_id)) >= 2, timeout=10, what="the hung request's record")
    # Records complete in answer order: the hung request is logged after the retry's answer.
    timed_out, ok = sorted(fake.requests(to=contact.wa_id), key=lambda r: r.received_monotonic)
    assert timed_out.http_status is None and ok.ok and message.wamid == ok.wamid
