"""Lock order between a campaign's state changes and its send chains (PostgreSQL).

A chain writes a recipient in one transaction that updates the recipient row twice (taken,
then linked to its message), so PostgreSQL re-checks the row's foreign keys at COMMIT and
takes ``FOR KEY SHARE`` on the campaign. Cancel locks the campaign, then updates its queued
recipients; if it held the campaign ``FOR UPDATE`` and waited for that recipient, the two
deadlocked and one of them failed (seen in full PostgreSQL runs of the campaign tests).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from campaigns.models import Campaign, CampaignState, Recipient, RecipientState
from campaigns.services import chains, lifecycle
from conversations.models import Message, MessageStatus
from tests.support.campaigns import labelled_segment, make_campaign, make_contacts, make_template, unlimited
from tests.support.outbound import make_config

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_on_a_lock(query_start: str, timeout: float = 10.0) -> bool:
    """True once a backend running ``query_start...`` waits for a lock."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s", [query_start + "%"])
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


def test_cancel_waiting_for_a_recipient_being_written_does_not_deadlock(graph_url, fake, broker):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and deferred foreign-key checks are PostgreSQL's")
    number = unlimited(make_config(graph_url))
    label, segment = labelled_segment()
    make_contacts(number, 3, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    first = Recipient.objects.filter(campaign=campaign).order_by("pk").first()

    written: list[int | None] = []
    errors: list[BaseException] = []
    may_commit = threading.Event()

    def write_and_hold() -> None:
        try:
            with transaction.atomic():  # the chain's transaction, held open until cancel waits for it
                written.append(chains.write_recipient(campaign, first.pk).message_id)
                may_commit.wait(10)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    def cancel() -> None:
        try:
            lifecycle.cancel_campaign(campaign.pk)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    writer = threading.Thread(target=write_and_hold)
    writer.start()
    while writer.is_alive() and not written:
        time.sleep(0.01)
    canceller = threading.Thread(target=cancel)
    canceller.start()
    assert _waiting_on_a_lock('UPDATE "campaigns_recipient"'), "cancel never waited for the recipient"
    may_commit.set()
    writer.join(30)
    canceller.join(30)

    assert errors == [], errors  # a deadlock aborts one of the two
    assert Campaign.objects.get(pk=campaign.pk).state == CampaignState.CANCELLED
    states = dict(Recipient.objects.filter(campaign=campaign).values_list("pk", "state"))
    # the written one's message was withdrawn after cancel committed; the rest were cancelled
    assert set(states.values()) == {RecipientState.CANCELLED}
    assert Message.objects.get(pk=written[0]).status == MessageStatus.FAILED
    assert fake.messages() == []
