"""The outbox: a message accepted with a 200 is never lost, whatever the broker does.

The broker is made unreachable by pointing this process's Celery app at a closed port
(the real Redis keeps running for the workers); the sweeper then enqueues what was stored.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Contact, Direction, Message, MessageStatus
from conversations.services import inbound
from devtools import webhook_payloads as simulate
from tests.support.inbound import (
    CLOSED_BROKER_URL,
    URLCONF,
    celery_broker,
    isolated_broker,
    post_webhook,
    priority,
)
from whatsappcrm_backend import topology

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLCONF)]


def test_broker_down_the_webhook_still_answers_200_and_keeps_the_message(client, app_config, caplog):
    body = simulate.webhook_body([simulate.text("are you there?"), simulate.text("hello?")])
    with celery_broker(CLOSED_BROKER_URL), caplog.at_level(logging.ERROR, logger=inbound.__name__):
        started = time.monotonic()
        response = post_webhook(client, body)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert Message.objects.filter(direction=Direction.INBOUND, processed_at__isnull=True).count() == 2
    # Not waiting out kombu's connection retries (6 s with retry=False) for every message.
    assert elapsed < 3, elapsed
    failures = [r for r in caplog.records if "could not enqueue" in r.getMessage()]
    assert len(failures) == 1  # the first failure stops the batch; the sweeper takes the rest


def test_the_sweeper_enqueues_what_was_stored_while_the_broker_was_down(client, app_config):
    with celery_broker(CLOSED_BROKER_URL):
        assert post_webhook(client, simulate.webhook_body([simulate.text("bet 5 on Dynamos")])).status_code == 200
        assert inbound.enqueue_unprocessed(older_than=timedelta(0)) == 0  # still down: nothing sent, no error
    message = Message.objects.get()

    with isolated_broker() as broker:
        assert inbound.enqueue_unprocessed(older_than=timedelta(0)) == 1
        tasks = broker.tasks()
    assert [(t.task, t.args, t.priority) for t in tasks] == [
        (inbound.PROCESS_MESSAGE_TASK, [message.id, message.contact_id], priority(topology.Priority.HIGH))
    ]


def test_the_sweeper_leaves_recent_processed_outbound_and_stale_messages_alone(app_config, broker):
    contact = Contact.objects.create(wa_id=simulate.DEFAULT_WA_ID)
    now = timezone.now()

    def inbound_message(label: str, age: timedelta, processed: bool = False) -> Message:
        message = Message.objects.create(
            contact=contact, app_config=app_config, direction=Direction.INBOUND, message_type="text", text=label,
            wamid=simulate.new_wamid(), status=MessageStatus.RECEIVED, processed_at=now if processed else None,
        )
        Message.objects.filter(pk=message.pk).update(created_at=now - age)
        return message

    waiting = [inbound_message("old enough", timedelta(minutes=5)), inbound_message("older", timedelta(hours=2))]
    inbound_message("just arrived", timedelta(seconds=5))
    inbound_message("done", timedelta(minutes=5), processed=True)
    inbound_message("two days old", timedelta(days=2))
    Message.objects.create(contact=contact, direction=Direction.OUTBOUND, message_type="text", text="reply",
                           status=MessageStatus.PENDING)

    assert inbound.enqueue_unprocessed(now=now) == 2
    # Oldest first, so a contact's messages reach the flow engine in the order they arrived.
    assert [t.args for t in broker.named(inbound.PROCESS_MESSAGE_TASK)] == [
        [waiting[1].id, contact.pk], [waiting[0].id, contact.pk]
    ]


@pytest.mark.workers
def test_after_an_outage_the_swept_message_is_processed_by_the_io_worker(client, app_config, io_worker):
    with celery_broker(CLOSED_BROKER_URL):
        assert post_webhook(client, simulate.webhook_body([simulate.text("menu")])).status_code == 200
    message = Message.objects.get(direction=Direction.INBOUND)
    time.sleep(1.0)
    message.refresh_from_db()
    assert message.processed_at is None  # nothing reached the worker during the outage

    assert inbound.enqueue_unprocessed(older_than=timedelta(0)) == 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and message.processed_at is None:
        time.sleep(0.1)
        message.refresh_from_db()
    assert message.processed_at is not None, io_worker.log()[-3000:]


def test_the_sweeper_leaves_messages_whose_processing_failed_for_good(app_config, broker):
    """The flows task marks a message failed after INBOUND_MAX_PROCESSING_ATTEMPTS; then it is an operator's."""
    contact = Contact.objects.create(wa_id=simulate.DEFAULT_WA_ID)
    now = timezone.now()
    failed, waiting = (
        Message.objects.create(contact=contact, app_config=app_config, direction=Direction.INBOUND,
                               message_type="text", text=label, wamid=simulate.new_wamid(), status=status,
                               attempts=attempts, error_title=error)
        for label, status, attempts, error in [
            ("poison", MessageStatus.FAILED, 5, "Processing failed"),
            ("slow", MessageStatus.RECEIVED, 1, ""),
        ]
    )
    Message.objects.update(created_at=now - timedelta(minutes=5))
    assert inbound.enqueue_unprocessed(now=now) == 1
    assert [t.args for t in broker.named(inbound.PROCESS_MESSAGE_TASK)] == [[waiting.pk, waiting.contact_id]]
    assert failed.pk not in {t.args[0] for t in broker.tasks()}
