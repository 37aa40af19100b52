"""Campaigns through the real path: start -> recipients -> send chains on the gevent worker
(LOW priority) -> delivery -> the fake Graph API. Counted at the fake: each recipient once,
from the campaign's number, with its own variables; opted-out contacts never; a pause stops
within the stated bound (the requests in flight: two per send chain at most) and a resume sends
the rest without resending; a cancel leaves the rest unsent; a user's message is answered
while a 2,000-recipient campaign is still far from drained."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign, CampaignState, Recipient, RecipientState
from campaigns.services import chains, lifecycle
from conversations.models import Contact, MessageStatus
from devtools import webhook_payloads as simulate
from tests.support.campaigns import (
    FIXTURE,
    give_fake,
    labelled_segment,
    make_campaign,
    make_contacts,
    make_template,
    unlimited,
)
from tests.support.flows import APP_SECRET, business, import_defaults
from tests.support.outbound import TOKEN, make_config
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def _done(campaign_id: int) -> bool:
    chains.tick()  # what Beat runs every 5 s
    return Campaign.objects.get(pk=campaign_id).state == CampaignState.DONE


def _per_recipient(fake) -> Counter:
    return Counter(record.to for record in fake.messages())


def test_a_500_recipient_campaign_reaches_each_recipient_once_with_their_variables(fake, graph_url, gevent_worker):
    config = unlimited(make_config(graph_url))
    label, segment = labelled_segment()
    contacts = make_contacts(config, 500, label=label)
    opted_out = make_contacts(config, 5, label=label, marketing_opt_out=True)
    campaign = make_campaign(config, make_template(config, fake=fake), segment)

    started = lifecycle.start_campaign(campaign.pk)
    assert (started.recipients, started.skipped_opted_out) == (500, 5)
    fake.wait_for_messages(500, timeout=120)
    wait_until(lambda: _done(campaign.pk), timeout=30, what="the campaign to be done")
    time.sleep(1.0)  # anything still to come would be a duplicate

    sent = fake.messages()
    assert len(sent) == 500
    assert _per_recipient(fake) == Counter({c.wa_id: 1 for c in contacts})
    assert not {c.wa_id for c in opted_out} & {r.to for r in sent}
    names = {c.wa_id: c.name for c in contacts}
    for record in sent:
        assert record.phone_number_id == config.phone_number_id
        template = record.body["template"]
        assert (template["name"], template["language"]["code"]) == ("weekend_fixtures", "en_US")
        assert template["components"] == [{"type": "body", "parameters": [
            {"type": "text", "text": names[record.to]}, {"type": "text", "text": FIXTURE}]}]
        assert record.body["biz_opaque_callback_data"].startswith("msg:")
    recipients = Recipient.objects.filter(campaign=campaign).select_related("message")
    assert {r.state for r in recipients} == {RecipientState.WRITTEN}
    assert {r.message.status for r in recipients} == {MessageStatus.SENT}
    assert {r.message.sent_by for r in recipients} == {f"campaign:{campaign.pk}"}
    assert {r.message.wamid for r in recipients} == {r.wamid for r in sent}


def test_opting_out_mid_campaign_stops_that_contacts_pending_send(fake, graph_url, gevent_worker):
    config = unlimited(make_config(graph_url, rate=10.0))  # 30 recipients take 3 s
    label, segment = labelled_segment()
    contacts = make_contacts(config, 30, label=label)
    campaign = make_campaign(config, make_template(config, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    stoppers = contacts[-5:]  # the last of every chain: seconds away from their turn
    # What the optout helper's STOP does to the contact.
    Contact.objects.filter(pk__in=[c.pk for c in stoppers]).update(marketing_opt_out=True,
                                                                     marketing_opt_out_at=timezone.now())
    wait_until(lambda: _done(campaign.pk), timeout=60, what="the campaign to be done")
    time.sleep(0.5)
    assert _per_recipient(fake) == Counter({c.wa_id: 1 for c in contacts[:-5]})
    skipped = Recipient.objects.filter(campaign=campaign, contact__in=stoppers)
    assert {(r.state, r.error) for r in skipped} == {(RecipientState.SKIPPED, "contact opted out of marketing")}


def test_pause_stops_within_the_bound_resume_sends_the_rest_once_and_cancel_leaves_it_unsent(
        fake, graph_url, gevent_worker):
    bound = 2 * settings.CAMPAIGN_SEND_CONCURRENCY  # in flight: a chain's send + a put-back row's task
    config = unlimited(make_config(graph_url, rate=25.0))  # 100 recipients take 4 s
    label, segment = labelled_segment()
    contacts = make_contacts(config, 100, label=label)
    campaign = make_campaign(config, make_template(config, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    wait_until(lambda: len(fake.messages()) >= 20, timeout=30, what="20 sends")
    lifecycle.pause_campaign(campaign.pk)
    at_pause = len(fake.messages())
    time.sleep(2.0)  # 50 more would have gone at 25/s
    after = len(fake.messages())
    assert after - at_pause <= bound, (at_pause, after)
    assert Campaign.objects.get(pk=campaign.pk).state == CampaignState.PAUSED
    assert not Recipient.objects.filter(campaign=campaign, message__status=MessageStatus.PENDING).exists()

    lifecycle.resume_campaign(campaign.pk)
    wait_until(lambda: _done(campaign.pk), timeout=60, what="the campaign to be done")
    time.sleep(0.5)
    assert _per_recipient(fake) == Counter({c.wa_id: 1 for c in contacts})  # nothing resent

    fake.reset()
    give_fake(fake, campaign.template)  # the reset forgot the fake's templates too
    other_label, other_segment = labelled_segment("second")
    others = make_contacts(config, 100, label=other_label)
    second = make_campaign(config, Campaign.objects.get(pk=campaign.pk).template, other_segment, name="Second")
    lifecycle.start_campaign(second.pk)
    wait_until(lambda: len(fake.messages()) >= 20, timeout=30, what="20 sends")
    lifecycle.cancel_campaign(second.pk)
    at_cancel = len(fake.messages())
    time.sleep(2.0)
    sent = len(fake.messages())
    assert sent - at_cancel <= bound and sent < len(others)
    states = Counter(Recipient.objects.filter(campaign=second).values_list("state", flat=True))
    assert states[RecipientState.CANCELLED] == len(others) - sent
    assert not Recipient.objects.filter(campaign=second, message__status=MessageStatus.PENDING).exists()
    assert max(_per_recipient(fake).values()) == 1


def test_a_users_message_is_answered_before_a_2000_recipient_campaign_drains(fake, graph_url, gevent_worker, client):
    config = unlimited(business(graph_url=graph_url, access_token=TOKEN, send_rate_per_second=400.0))
    import_defaults()
    label, segment = labelled_segment()
    make_contacts(config, 2000, label=label)
    campaign = make_campaign(config, make_template(config, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    wait_until(lambda: len(fake.messages()) >= 50, timeout=60, what="the campaign to be sending")

    user = "2547" + str(random.randint(10**7, 10**8 - 1))
    raw, headers = simulate.signed_request(simulate.webhook_body([simulate.text("hi", wa_id=user)]), APP_SECRET)
    headers = {key: value for key, value in headers.items() if key.lower() != "content-type"}
    assert client.post("/webhooks/meta/", data=raw, content_type="application/json",
                       headers=headers).status_code == 200
    [reply] = fake.wait_for_messages(1, to=user, timeout=60)[:1]
    lifecycle.cancel_campaign(campaign.pk)  # the rest of the backlog is not this test's business

    campaign_sends = [r for r in fake.messages() if r.to != user]
    before_reply = sum(1 for r in campaign_sends if r.seq < reply.seq)
    print(f"\n[campaign priority] reply after {before_reply} of 2000 campaign sends")
    # Answered while most of the campaign was still to be sent (order counted, not timed).
    assert before_reply < 1000, before_reply
