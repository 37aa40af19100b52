"""The per-number throughput limit: a Redis token bucket shared by every worker process."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest

from conversations.models import Message, MessageStatus
from conversations.services.sending import send_to_contact
from meta_integration.ratelimit import TokenBucket, default_burst
from tests.support.outbound import make_config, make_contact, start_io_workers
from tests.support.waiting import wait_until
from tests.support.workers import stop_workers


@pytest.fixture
def bucket(redis_client) -> TokenBucket:
    return TokenBucket(redis_client, prefix=f"test:bucket:{uuid.uuid4().hex}:")


def test_a_fresh_bucket_grants_its_burst_then_says_how_long_to_wait(bucket):
    grants = [bucket.acquire("106540352242922", rate=4.0, burst=2.0, max_wait=0) for _ in range(3)]
    assert [g.granted for g in grants] == [True, True, False]
    assert grants[0].wait == grants[1].wait == 0.0
    assert 0.2 < grants[2].wait <= 0.25  # one token every 250 ms


def test_a_token_due_within_max_wait_is_granted_with_the_wait_to_sleep(bucket):
    bucket.acquire("1", rate=20.0, burst=1.0, max_wait=0)
    got = bucket.acquire("1", rate=20.0, burst=1.0, max_wait=0.06)
    assert got.granted and 0.04 < got.wait <= 0.05
    reserved_after = bucket.acquire("1", rate=20.0, burst=1.0, max_wait=0.06)  # would need ~100 ms
    assert not reserved_after.granted and reserved_after.wait > 0.06


def test_refused_callers_are_spread_out_instead_of_all_coming_back_at_once(bucket):
    bucket.acquire("1", rate=10.0, burst=1.0, max_wait=0)
    # Each caller is told when to come back: when it asked plus its wait. Those times are
    # 100 ms apart. The asking times are measured too, since on a loaded machine consecutive
    # calls can be more than the 10 ms tolerance apart (seen with the suite in parallel).
    comebacks = []
    for _ in range(5):
        asked = time.monotonic()
        comebacks.append(asked + bucket.acquire("1", rate=10.0, burst=1.0, max_wait=0).wait)
    assert all(b - a == pytest.approx(0.1, abs=0.01) for a, b in itertools.pairwise(comebacks))


def test_buckets_are_per_business_number(bucket):
    assert bucket.acquire("111", rate=1.0, burst=1.0).granted
    assert not bucket.acquire("111", rate=1.0, burst=1.0).granted
    assert bucket.acquire("222", rate=1.0, burst=1.0).granted


def test_the_bucket_state_expires_once_it_would_be_full_again(bucket, redis_client):
    bucket.acquire("1", rate=2.0, burst=2.0)
    ttl_ms = redis_client.pttl(f"{bucket._prefix}1")
    assert 1000 < ttl_ms <= 1500  # half a second to refill one token, plus one second


def test_hammering_one_bucket_never_exceeds_rate_plus_burst(bucket):
    rate, burst = 20.0, 5.0
    granted_at = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        got = bucket.acquire("1", rate=rate, burst=burst, max_wait=0.05)
        if got.granted:
            time.sleep(got.wait)
            granted_at.append(time.monotonic())
        else:
            time.sleep(min(got.wait, 0.01))
    assert len(granted_at) <= rate * 2.0 + burst + 1
    assert len(granted_at) >= rate * 2.0 * 0.8  # and it does not starve either
    for start in granted_at:
        assert sum(1 for t in granted_at if start <= t < start + 1.0) <= rate + burst + 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"rate": 0}, "rate"), ({"rate": -1}, "rate"), ({"rate": 5, "burst": 0.5}, "burst"),
    ({"rate": 5, "max_wait": -0.1}, "max_wait"),
])
def test_bad_limits_are_refused_naming_the_argument(bucket, kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field}:"):
        bucket.acquire("1", **kwargs)


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_across_two_worker_processes(fake, graph_url):
    rate, count = 5.0, 30
    config = make_config(graph_url, rate=rate)
    workers = start_io_workers(2)
    try:
        contacts = [make_contact(config) for _ in range(count)]
        ids = [send_to_contact(c, {"type": "text", "body": f"Odds boost #{i}"}).pk for i, c in enumerate(contacts)]
        records = fake.wait_for_messages(count, timeout=60)
        wait_until(lambda: Message.objects.filter(pk__in=ids, status=MessageStatus.SENT).count() == count,
                   what="all sent")
    finally:
        stop_workers(workers)
    arrivals = sorted(r.received_monotonic for r in records)
    ceiling = rate + default_burst(rate)
    # Tokens are granted on Redis' clock; arrivals are stamped by the fake after the request
    # crossed two busy processes, which moves a send by tens of milliseconds. One send of
    # slack per window absorbs that; two unshared buckets would allow twice the rate.
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= ceiling + 1, f"{busiest} sends within one second, limit {rate}/s + burst"
    assert arrivals[-1] - arrivals[0] >= (count - ceiling - 1) / rate  # the long-run rate holds
    for worker in workers:  # both processes really sent, so the bucket was shared, not per process
        assert "succeeded" in worker.log() and "'sent'" in worker.log(), worker.log()[-2000:]
    assert len(fake.requests()) == count
