"""A message whose processing keeps failing is given up on, visibly, instead of retried forever
(issue 12.4): after INBOUND_MAX_PROCESSING_ATTEMPTS failed runs it is ``failed`` with the
error, the bot no longer picks it up, and the inbound sweeper no longer re-enqueues it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conversations.models import Direction, Message, MessageStatus
from conversations.services import inbound
from devtools import webhook_payloads as simulate
from flows import services
from tests.support.flows import Chat, business, import_defaults
from tests.support.inbound import isolated_broker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_message_failing_every_run_is_marked_failed_after_the_limit_and_left_alone(settings):
    settings.INBOUND_MAX_PROCESSING_ATTEMPTS = 3
    import_defaults()
    chat = Chat(business())
    message = Message.objects.get(pk=chat.store(simulate.text("hi", wa_id=chat.wa_id)))
    error = RuntimeError("the database refused the session row")

    assert services.record_processing_failure(message.pk, error) is False
    assert services.record_processing_failure(message.pk, error) is False
    message.refresh_from_db()
    assert (message.status, message.attempts, message.processed_at) == (MessageStatus.RECEIVED, 2, None)
    assert services.record_processing_failure(message.pk, error) is True  # the third failure gives up
    message.refresh_from_db()
    assert (message.status, message.error_title) == (MessageStatus.FAILED, "Processing failed")
    assert message.error_details == "RuntimeError: the database refused the session row"

    assert services.process_inbound(message.pk, message.contact_id).processed == 0  # the bot leaves it
    Message.objects.filter(pk=message.pk).update(created_at=message.created_at - timedelta(minutes=5))
    with isolated_broker() as broker:
        assert inbound.enqueue_unprocessed(older_than=timedelta(seconds=15)) == 0  # and so does the sweeper
        assert broker.tasks() == []
    assert not Message.objects.filter(contact=message.contact, direction=Direction.OUTBOUND).exists()


def test_a_failure_is_counted_only_on_an_unprocessed_inbound_message(settings):
    import_defaults()
    chat = Chat(business())
    chat.say("hi")  # processed and answered
    message = Message.objects.filter(contact=chat.contact, direction=Direction.INBOUND).get()
    assert services.record_processing_failure(message.pk, RuntimeError("late")) is False
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error_title) == (MessageStatus.RECEIVED, 0, "")
