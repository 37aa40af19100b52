"""Retry classification on a real gevent worker: transient errors are retried then succeed,
permanent ones fail at once with Meta's code, and nothing already sent is sent again."""

from __future__ import annotations

import pytest

from conversations.models import Message, MessageStatus
from conversations.services import delivery
from conversations.services.delivery import Result
from conversations.services.sending import send_to_contact
from conversations.tasks import send_message
from devtools import webhook_payloads as simulate
from devtools.fake_graph_scripting import FaultKind
from meta_integration.errors import ErrorClass
from meta_integration.retry_policy import attempt_limit, backoff_seconds, should_retry
from tests.support.outbound import make_config, make_contact
from tests.support.waiting import wait_until
from whatsappcrm_backend import topology
from whatsappcrm_backend.celery import enqueue

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

# (label, fault kwargs). Codes the fake does not know get Meta's HTTP status given explicitly.
TRANSIENT = [
    ("1 API Unknown", {"code": 1}),
    ("2 API Service", {"code": 2}),
    ("4 Too Many Calls", {"code": 4}),
    ("80007 WABA rate limit", {"code": 80007}),
    ("130429 throughput", {"code": 130429}),
    ("131000 something went wrong", {"code": 131000}),
    ("131016 service unavailable", {"code": 131016}),
    ("131057 maintenance", {"code": 131057, "http_status": 503}),
    ("133004 server unavailable", {"code": 133004, "http_status": 503}),
    ("HTTP 500", {"http_status": 500}),
    ("HTTP 503", {"http_status": 503}),
    ("HTTP 429", {"http_status": 429}),
    ("dropped connection", {"kind": FaultKind.DROP_CONNECTION}),
    ("131056 pair rate limit", {"code": 131056}),
]

PERMANENT = [
    100, 368, 130472, 131008, 131009, 131021, 131026, 131031, 131047, 131048, 131049, 131051, 131052, 131053,
    132000, 132001, 133010, 135000,
    # authentication / permission
    10, 190, 131005,
]


def test_each_transient_failure_is_retried_then_succeeds(gevent_worker, fake, graph_url):
    config = make_config(graph_url)
    cases = []
    for label, fault in TRANSIENT:
        contact = make_contact(config)
        fake.add_fault(to=contact.wa_id, **fault)
        cases.append((label, contact, send_to_contact(contact, {"type": "text", "body": f"Odds update ({label})"})))
    ids = [message.pk for _, _, message in cases]
    wait_until(lambda: Message.objects.filter(pk__in=ids, status=MessageStatus.SENT).count() == len(ids),
               timeout=60, what="every message sent after one retry")
    for label, contact, message in cases:
        message.refresh_from_db()
        first, second = fake.requests(to=contact.wa_id)
        assert not first.ok and second.ok, label
        assert message.attempts == 2 and message.wamid == second.wamid, label
        assert message.error_code is None and message.error_title == "", label


@pytest.mark.parametrize("code", PERMANENT)
def test_each_permanent_failure_is_one_attempt_and_failed_with_metas_code(gevent_worker, fake, graph_url, code):
    contact = make_contact(make_config(graph_url))
    fake.add_fault(code, to=contact.wa_id, details=f"Meta's details for {code}", times=3)
    message = send_to_contact(contact, {"type": "text", "body": "Your bet was settled."})
    wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.FAILED, what="failed")
    message.refresh_from_db()
    assert (message.error_code, message.attempts) == (code, 1)
    assert message.error_title == simulate.meta_error(code).title
    if code == 100 or code >= 10000:  # WhatsApp errors carry error_data.details; Graph-level ones do not
        assert message.error_details.startswith(f"Meta's details for {code}")
    assert message.wamid is None
    assert len(fake.requests(to=contact.wa_id)) == 1


def test_an_auth_failure_tells_the_operator_to_check_the_token(gevent_worker, fake, graph_url):
    config = make_config(graph_url)
    config.access_token = "EAAG-revoked-token"
    config.save()
    message = send_to_contact(make_contact(config), {"type": "text", "body": "Hi"})
    wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.FAILED, what="failed")
    message.refresh_from_db()
    assert (message.error_code, message.attempts) == (190, 1)
    assert "check the access token" in message.error_details
    assert len(fake.requests()) == 1


def test_131000_is_retried_only_a_few_times(gevent_worker, fake, graph_url):
    contact = make_contact(make_config(graph_url))
    fake.add_fault(131000, to=contact.wa_id, times=10)
    message = send_to_contact(contact, {"type": "text", "body": "Hi"})
    wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.FAILED, timeout=30, what="failed")
    message.refresh_from_db()
    limit = attempt_limit(131000, topology.route_for("conversations.send_message").max_retries)
    assert limit == 3
    assert (message.error_code, message.attempts) == (131000, limit)
    assert message.error_details.endswith(f"(gave up after {limit} attempts)")
    assert len(fake.requests(to=contact.wa_id)) == limit


def test_a_pair_rate_limit_holds_back_every_message_to_that_recipient(gevent_worker, fake, graph_url):
    contact = make_contact(make_config(graph_url))
    fake.add_fault(131056, to=contact.wa_id)
    first = send_to_contact(contact, {"type": "text", "body": "Fixture 1"})
    wait_until(lambda: len(fake.requests(to=contact.wa_id)) == 1, what="the 131056 answer")
    second = send_to_contact(contact, {"type": "text", "body": "Fixture 2"})
    fake.wait_for_messages(2, to=contact.wa_id, timeout=30)
    refused, *accepted = fake.requests(to=contact.wa_id)
    assert refused.http_status == 429 and len(accepted) == 2
    # The smallest pair back-off is half of base x 6 (base >= 0.2 s in these workers); without
    # the hold, the second message would have gone out within milliseconds.
    assert min(r.received_monotonic for r in accepted) - refused.responded_monotonic >= 0.5
    for message in (first, second):
        wait_until(lambda m=message: Message.objects.get(pk=m.pk).status == MessageStatus.SENT, what="sent")
    assert Message.objects.get(pk=second.pk).attempts == 1  # waiting was not an attempt


def test_a_sent_message_is_never_sent_again(gevent_worker, fake, graph_url):
    contact = make_contact(make_config(graph_url))
    message = send_to_contact(contact, {"type": "text", "body": "Hi"})
    fake.wait_for_messages(1, to=contact.wa_id, timeout=20)
    wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, what="sent")
    for _ in range(3):  # a redelivered or duplicated task
        enqueue(send_message, message.pk)
    assert delivery.deliver(message.pk).result is Result.ALREADY_HANDLED
    with pytest.raises(TimeoutError):
        fake.wait_for_messages(2, to=contact.wa_id, timeout=1.5)
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.SENT, 1)


def test_backoff_grows_exponentially_with_bounded_jitter():
    low = [backoff_seconds(n, base=1.0, cap=60.0, rand=lambda: 0.0) for n in range(1, 9)]
    high = [backoff_seconds(n, base=1.0, cap=60.0, rand=lambda: 1.0) for n in range(1, 9)]
    assert low == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert high == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff_seconds(1, base=1.0, cap=60.0, factor=6, rand=lambda: 0.0) == 3.0
    with pytest.raises(ValueError, match=r"^attempt: counts from 1"):
        backoff_seconds(0, base=1.0, cap=60.0)


def test_retry_decisions_follow_the_error_class_and_the_budget():
    assert should_retry(ErrorClass.TRANSIENT, 131016, attempts=8, max_retries=8)
    assert not should_retry(ErrorClass.TRANSIENT, 131016, attempts=9, max_retries=8)
    assert should_retry(ErrorClass.PAIR_RATE_LIMIT, 131056, attempts=1, max_retries=8)
    assert not should_retry(ErrorClass.TRANSIENT, 131000, attempts=3, max_retries=8)
    assert not should_retry(ErrorClass.PERMANENT, 131026, attempts=1, max_retries=8)
    assert not should_retry(ErrorClass.AUTH, 190, attempts=1, max_retries=8)
    assert should_retry(ErrorClass.TRANSIENT, None, attempts=1, max_retries=8)  # timeouts, 5xx without code
