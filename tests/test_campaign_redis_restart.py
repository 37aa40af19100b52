"""A campaign whose Redis is restarted mid-campaign, empty (no persistence): every recipient
still gets the template exactly once, from the campaign's number, and the campaign ends done.

The restart loses everything Redis held: the queued and unacknowledged batch and send tasks,
the chains' leases and the token bucket. Nothing of the exactly-once guarantee lives there:
a recipient's message is written in the transaction that moves its row out of ``queued``,
and sent under delivery's lease in the database. What brings the campaign back is the
database too: the periodic check (``campaigns.tick``, run here as Beat would) restarts the
chains whose leases are gone, and the outbound sweeper sends the rows written but not sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest

from campaigns.models import Campaign, CampaignState, Recipient, RecipientState
from campaigns.services import chains, lifecycle
from conversations.models import MessageStatus
from conversations.services.sending import enqueue_unsent
from tests.support.campaigns import labelled_segment, make_campaign, make_contacts, make_template, unlimited
from tests.support.inbound import celery_broker
from tests.support.outbound import make_config, start_io_worker
from tests.support.waiting import wait_until
from whatsappcrm_backend.embedded_redis import EmbeddedRedis

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 200
# Short leases: a chain's (2 s) and a send's (3 x 1 s of HTTP timeouts + 5 s + 1 s of grace).
RESTART_ENV = {"META_HTTP_TIMEOUT": "1.0", "SEND_STATUS_GRACE_SECONDS": "1.0", "CAMPAIGN_CHAIN_LEASE_SECONDS": "2"}


class RestartableRedis:
    """This test's own redis-server (broker and store of the worker and of this process),
    which it can restart on the same port, empty."""

    def __init__(self) -> None:
        self.servers = [EmbeddedRedis().start()]

    @property
    def url(self) -> str:
        return self.servers[-1].url

    def restart(self, down_for: float = 1.0) -> None:
        current = self.servers[-1]
        current.process.kill()  # as a crash or a restart without persistence: nothing is kept
        current.process.wait()
        time.sleep(down_for)
        self.servers.append(EmbeddedRedis(port=current.port).start())

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def restartable_redis(settings, monkeypatch) -> Iterator[RestartableRedis]:
    redis = RestartableRedis()
    try:
        # This process publishes (start, tick, sweeper) to it too. Entered before the settings
        # change: it reads the URL to go back to from them.
        with celery_broker(redis.url):
            settings.CELERY_BROKER_URL = settings.REDIS_URL = redis.url
            monkeypatch.setattr(chains, "_redis", None)  # this process's lease client: on this Redis
            yield redis
    finally:
        redis.stop()


def test_a_campaign_survives_a_redis_restart_with_one_send_each(restartable_redis, fake, graph_url, live_server):
    config = unlimited(make_config(graph_url, rate=60.0))  # 200 recipients take over 3 s
    # As Meta does: a status for every accepted message, naming its row.
    fake.configure_webhook(live_server.url + "/webhooks/meta/", config.app_secret, statuses=("sent",),
                           status_delay_ms=5)
    fake.set_latency(5)
    label, segment = labelled_segment()
    contacts = make_contacts(config, RECIPIENTS, label=label)
    campaign = make_campaign(config, make_template(config, fake=fake), segment)
    worker = start_io_worker(env=RESTART_ENV)
    try:
        lifecycle.start_campaign(campaign.pk)
        wait_until(lambda: len(fake.messages()) >= 40, timeout=60, what="40 sends")
        restartable_redis.restart()  # mid-campaign: queue, chain leases and token bucket gone
        restarted_at = len(fake.messages())
        assert restarted_at < RECIPIENTS

        def finished() -> bool:
            chains.tick()  # Beat: restart the chains whose tasks and leases went with Redis
            enqueue_unsent(timedelta(seconds=2))  # Beat: the outbound sweeper
            return Campaign.objects.get(pk=campaign.pk).state == CampaignState.DONE

        wait_until(finished, timeout=120, what="the campaign to finish after the Redis restart")
        time.sleep(3.0)  # anything still to come would be a duplicate
    finally:
        worker.kill()  # its broker is this test's own Redis: nothing it holds matters any more
    per_recipient = Counter(record.to for record in fake.messages())
    assert per_recipient == Counter({c.wa_id: 1 for c in contacts}), {
        "missing": len({c.wa_id for c in contacts} - set(per_recipient)),
        "doubled": {k: v for k, v in per_recipient.items() if v > 1},
        "restarted_at": restarted_at,
        "worker log": worker.log()[-3000:],
    }
    assert {record.phone_number_id for record in fake.messages()} == {config.phone_number_id}
    recipients = Recipient.objects.filter(campaign=campaign)
    assert set(recipients.values_list("state", "message__status")) == {(RecipientState.WRITTEN,
                                                                        MessageStatus.SENT)}
