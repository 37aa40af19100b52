"""Ordered multi-part messages: every part arrives, in order, at least the gap apart, on any pool.

The regression this guards: a system queued 22 fixture messages at once and its solo worker
sent only the first. Here only part 0 is queued; each accepted part queues the next.
"""

from __future__ import annotations

import itertools

import pytest

from conversations.models import Message, MessageStatus
from conversations.services.outbound import PREVIOUS_PART_FAILED, resend_failed, send_long_text, send_parts
from meta_integration.outbound import TEXT_BODY_MAX
from tests.support.broker import discard_workers
from tests.support.outbound import make_config, make_contact, start_io_worker
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

GAP = 0.1
LEAGUES = ["Premier League", "La Liga", "Serie A", "Bundesliga", "Ligue 1", "Eredivisie", "PSL Zimbabwe"]


def fixture_parts(count: int) -> list[str]:
    return [
        f"Fixtures {i + 1}/{count} - {LEAGUES[i % len(LEAGUES)]}\n"
        + "\n".join(f"{i * 3 + k + 1}. Home FC v Away United, Sat 15:00, 1x2 2.10/3.25/3.40" for k in range(3))
        for i in range(count)
    ]


def assert_in_order_and_spaced(records, bodies: list[str], gap: float) -> None:
    assert [r.body["text"]["body"] for r in records] == bodies
    for earlier, later in itertools.pairwise(records):
        # the next part was sent only after the previous one was answered, then the gap
        assert later.received_monotonic - earlier.responded_monotonic >= gap * 0.95
        assert later.received_monotonic - earlier.received_monotonic >= gap


@pytest.mark.parametrize(("pool", "concurrency"), [("gevent", 20), ("solo", 1), ("prefork", 2)])
def test_22_parts_queued_at_once_all_arrive_in_order_the_gap_apart(fake, graph_url, pool, concurrency):
    worker = start_io_worker(pool=pool, concurrency=concurrency)
    try:
        contact = make_contact(make_config(graph_url))
        bodies = fixture_parts(22)
        parts = send_parts(contact, bodies, gap_seconds=GAP)
        records = fake.wait_for_messages(22, to=contact.wa_id, timeout=60)
        assert_in_order_and_spaced(records, bodies, GAP)
        ids = [p.pk for p in parts]
        wait_until(lambda: Message.objects.filter(pk__in=ids, status=MessageStatus.SENT).count() == 22, what="sent")
    finally:
        discard_workers(worker)
    rows = list(Message.objects.filter(pk__in=ids).order_by("part_index"))
    assert [m.part_index for m in rows] == list(range(22)) and {m.parts_total for m in rows} == {22}
    assert [m.wamid for m in rows] == [r.wamid for r in records]
    assert len({m.group_id for m in rows}) == 1
    assert len(fake.requests(to=contact.wa_id)) == 22  # nothing sent twice


def test_a_long_fixture_list_is_split_on_lines_and_reassembles_exactly(gevent_worker, fake, graph_url):
    contact = make_contact(make_config(graph_url))
    text = "\n".join(f"{n}. Dynamos v CAPS United, Sun 15:00 - 1: 2.40 X: 3.10 2: 2.95" for n in range(1, 181))
    parts = send_long_text(contact, text, gap_seconds=GAP)
    assert len(parts) == 3 and all(len(p.text) <= TEXT_BODY_MAX for p in parts)
    records = fake.wait_for_messages(3, to=contact.wa_id, timeout=20)
    assert "\n".join(r.body["text"]["body"] for r in records) == text
    assert all(r.body["text"]["body"].endswith("2.95") for r in records)  # cut between lines, not inside one


def test_a_transient_error_on_one_part_delays_but_never_reorders(gevent_worker, fake, graph_url):
    contact = make_contact(make_config(graph_url))
    bodies = fixture_parts(5)
    send_parts(contact, bodies[:1], gap_seconds=GAP)  # a first reply, so the fault below hits part 2
    fake.wait_for_messages(1, to=contact.wa_id, timeout=20)
    fake.add_fault(131016, to=contact.wa_id)  # the next send to this user gets "service unavailable"
    send_parts(contact, bodies, gap_seconds=GAP)
    fake.wait_for_messages(6, to=contact.wa_id, timeout=30)
    accepted = fake.messages(to=contact.wa_id)[1:]
    assert_in_order_and_spaced(accepted, bodies, GAP)
    assert [r.http_status for r in fake.requests(to=contact.wa_id)][1] == 503


def test_a_part_failing_for_good_stops_the_rest_and_resend_resumes_from_it(gevent_worker, fake, graph_url):
    contact = make_contact(make_config(graph_url))
    bodies = fixture_parts(6)
    parts = send_parts(contact, bodies, gap_seconds=0.6)
    fake.wait_for_messages(2, to=contact.wa_id, timeout=20)
    fake.add_fault(131026, to=contact.wa_id)  # part 3 is undeliverable
    ids = [p.pk for p in parts]
    wait_until(lambda: Message.objects.filter(pk__in=ids, status=MessageStatus.FAILED).count() == 4, what="failed")
    rows = list(Message.objects.filter(pk__in=ids).order_by("part_index"))
    assert [m.status for m in rows] == ["sent", "sent", "failed", "failed", "failed", "failed"]
    assert (rows[2].error_code, rows[2].error_title) == (131026, "Message undeliverable")
    assert {m.error_title for m in rows[3:]} == {PREVIOUS_PART_FAILED}
    assert "Part 3 of 6 failed (131026 Message undeliverable)" in rows[4].error_details
    assert len(fake.requests(to=contact.wa_id)) == 3  # parts 4-6 were never sent

    resend_failed(rows[4])  # the operator picks any failed part: the resend starts at part 3
    fake.wait_for_messages(6, to=contact.wa_id, timeout=30)
    assert [r.body["text"]["body"] for r in fake.messages(to=contact.wa_id)] == bodies
    wait_until(lambda: Message.objects.filter(pk__in=ids, status=MessageStatus.SENT).count() == 6, what="all sent")
