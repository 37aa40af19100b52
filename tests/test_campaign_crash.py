"""A campaign whose gevent worker is SIGKILLed mid-campaign and restarted: every recipient
still gets the template exactly once.

What makes it so: a recipient's message is written in the transaction that moves its row
out of ``queued`` (never twice); the message is sent under delivery's lease, and Meta's
status webhook names a row whose run died after Meta accepted it
(``biz_opaque_callback_data``). What brings the campaign back: the periodic check
(``campaigns.tick``, run here as Beat would) restarts the chains whose lease expired with
the worker, and the outbound sweeper sends the rows a dead run had written but not sent.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest

from campaigns.models import Campaign, CampaignState, Recipient
from campaigns.services import chains, lifecycle
from conversations.models import MessageStatus
from conversations.services.sending import enqueue_unsent
from tests.support.broker import clear_broker
from tests.support.campaigns import labelled_segment, make_campaign, make_contacts, make_template, unlimited
from tests.support.outbound import make_config, start_io_worker
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

# Short leases: a chain's (2 s) and a send's (3 x 1 s of HTTP timeouts + 5 s + 1 s of grace).
CRASH_ENV = {"META_HTTP_TIMEOUT": "1.0", "SEND_STATUS_GRACE_SECONDS": "1.0", "CAMPAIGN_CHAIN_LEASE_SECONDS": "2"}


def test_a_campaign_survives_its_gevent_worker_killed_and_restarted_with_one_send_each(
        fake, graph_url, live_server):
    config = unlimited(make_config(graph_url, rate=100.0))  # 500 recipients take 5 s
    # As Meta does: a status for every accepted message, naming its row.
    fake.configure_webhook(live_server.url + "/webhooks/meta/", config.app_secret, statuses=("sent",),
                           status_delay_ms=5)
    fake.set_latency(5)
    label, segment = labelled_segment()
    contacts = make_contacts(config, 500, label=label)
    campaign = make_campaign(config, make_template(config, fake=fake), segment)
    workers = [start_io_worker(env=CRASH_ENV)]
    try:
        lifecycle.start_campaign(campaign.pk)
        wait_until(lambda: len(fake.messages()) >= 60, timeout=60, what="60 sends")
        os.killpg(workers[0].process.pid, signal.SIGKILL)  # mid-campaign, requests in flight
        workers[0].stop()
        killed_at = len(fake.messages())
        assert killed_at < 500
        workers.append(start_io_worker(env=CRASH_ENV))

        def finished() -> bool:
            chains.tick()  # Beat: restart the chains whose lease died with the worker
            enqueue_unsent(timedelta(seconds=2))  # Beat: the outbound sweeper
            return Campaign.objects.get(pk=campaign.pk).state == CampaignState.DONE

        wait_until(finished, timeout=120, what="the campaign to finish after the crash")
        time.sleep(3.0)  # anything still to come would be a duplicate
    finally:
        for worker in workers:
            worker.stop()
        # The SIGKILLed worker's deliveries stay unacknowledged on the broker, where no worker
        # will ever answer for them: the next worker test's teardown would wait 15 s for them.
        clear_broker()
    per_recipient = Counter(record.to for record in fake.messages())
    assert per_recipient == Counter({c.wa_id: 1 for c in contacts}), {
        "missing": len({c.wa_id for c in contacts} - set(per_recipient)),
        "doubled": {k: v for k, v in per_recipient.items() if v > 1},
        "killed_at": killed_at,
    }
    statuses = set(Recipient.objects.filter(campaign=campaign).values_list("message__status", flat=True))
    assert statuses == {MessageStatus.SENT}
