"""Campaign rules that need no worker: refusals at start (nothing written, nothing sent),
segments, a recipient whose own data does not fill the template, the send gate, the
token bucket's reserve for replies, progress, and the REST API's roles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.authtoken.models import Token

from campaigns.models import Campaign, CampaignState, LabelMatch, Recipient, RecipientState, Segment
from campaigns.services import chains, lifecycle
from campaigns.services.progress import failed_recipients, progress
from campaigns.services.segments import segment_contacts, segment_counts
from conversations.models import Contact, Direction, Label, Message, MessageStatus
from conversations.services import delivery
from conversations.services.delivery import Result
from football_data_app.models import Ticket, Wallet
from meta_integration.models import MessagingTier
from meta_integration.ratelimit import TokenBucket, default_reserve
from tests.support.campaigns import (
    FIXTURE,
    labelled_segment,
    make_campaign,
    make_contacts,
    make_template,
    unlimited,
)
from tests.support.outbound import make_config

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def number(graph_url):
    return unlimited(make_config(graph_url))


def _nothing_written(campaign) -> None:
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.DRAFT
    assert not Recipient.objects.filter(campaign=campaign).exists()
    assert not Message.objects.filter(sent_by=campaign.sent_by).exists()


# ------------------------------------------------------------------ refusals at start


@pytest.mark.parametrize(("variables", "field", "says"), [
    ({"body.1": {"field": "name"}}, "variables.body.2", "missing body.2"),
    ({"body.1": {"field": "name"}, "body.2": {"value": FIXTURE}, "body.3": {"value": "x"}},
     "variables.body.3", "has no variable 'body.3'"),
    ({"body.1": {"field": "name"}, "body.2": {"value": "  "}}, "variables.body.2", "is empty"),
    ({"body.1": {"field": "name"}, "body.2": {"value": "x" * 1025}}, "variables.body.2", "at most 1024"),
    ({"body.1": {"field": "favourite_team"}, "body.2": {"value": FIXTURE}}, "variables.body.1",
     "not a contact field"),
    ({"body.1": "name", "body.2": {"value": FIXTURE}}, "variables.body.1", '"field"'),
])
def test_a_template_whose_variables_do_not_fit_is_refused_and_nothing_is_sent(
        number, fake, broker, variables, field, says):
    label, segment = labelled_segment()
    make_contacts(number, 3, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment, variables=variables)
    with pytest.raises(lifecycle.CampaignError) as refused:
        lifecycle.start_campaign(campaign.pk)
    assert refused.value.field == field and says in refused.value.message, str(refused.value)
    _nothing_written(campaign)
    assert broker.tasks() == [] and fake.messages() == []


def test_an_unapproved_template_or_one_of_another_number_is_refused(number, graph_url, broker):
    label, segment = labelled_segment()
    make_contacts(number, 2, label=label)
    paused = make_campaign(number, make_template(number, status="PAUSED"), segment)
    with pytest.raises(lifecycle.CampaignError, match="paused, not approved"):
        lifecycle.start_campaign(paused.pk)
    other = make_template(unlimited(make_config(graph_url, name="Other number")), name="other_template")
    foreign = make_campaign(number, other, segment)
    with pytest.raises(lifecycle.CampaignError, match="another business number"):
        lifecycle.start_campaign(foreign.pk)
    _nothing_written(paused)
    _nothing_written(foreign)


def test_a_segment_that_matches_nobody_is_refused_with_the_counts(fake, number, broker):
    label, segment = labelled_segment()
    make_contacts(number, 3, label=label, marketing_opt_out=True)
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    with pytest.raises(lifecycle.CampaignError) as refused:
        lifecycle.start_campaign(campaign.pk)
    assert refused.value.field == "segment"
    assert "3 contact(s) match, 3 opted out of marketing" in refused.value.message
    _nothing_written(campaign)
    assert broker.tasks() == []


def test_a_tier_too_small_is_refused_with_the_numbers_unless_paced(fake, number, broker):
    number.messaging_tier = MessagingTier.TIER_250
    number.save()
    label, segment = labelled_segment()
    make_contacts(number, 200, label=label)
    earlier = make_contacts(number, 100)  # messaged a template in the last 24 hours
    Message.objects.bulk_create([
        Message(contact=c, app_config=number, direction=Direction.OUTBOUND, message_type="template",
                status=MessageStatus.DELIVERED, sent_by="campaign:0") for c in earlier])
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    with pytest.raises(lifecycle.CampaignError) as refused:
        lifecycle.start_campaign(campaign.pk)
    assert refused.value.field == "app_config.messaging_tier"
    assert "250 users in 24 hours: 100 were messaged" in refused.value.message
    assert "adds 200, 300 in all" in refused.value.message
    _nothing_written(campaign)
    assert broker.tasks() == []

    campaign.pace_across_days = True
    campaign.save()
    assert lifecycle.start_campaign(campaign.pk).recipients == 200
    room, _wait = lifecycle.tier_room(campaign)
    assert room == 150  # the chains send 150 now, the rest as the window frees up


def test_actions_a_state_does_not_allow_are_refused(fake, number, broker):
    label, segment = labelled_segment()
    make_contacts(number, 2, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    for action in (lifecycle.pause_campaign, lifecycle.resume_campaign, lifecycle.retry_failed):
        with pytest.raises(lifecycle.CampaignStateError, match="draft"):
            action(campaign.pk)
    lifecycle.start_campaign(campaign.pk)
    with pytest.raises(lifecycle.CampaignStateError, match="running"):
        lifecycle.start_campaign(campaign.pk)
    assert Recipient.objects.filter(campaign=campaign).count() == 2  # never twice


# ------------------------------------------------------------------ segments


def test_segment_conditions(number, graph_url):
    now = timezone.now()
    vip, bettors = Label.objects.create(name="vip"), Label.objects.create(name="bettor")
    both, only_vip, nobody = make_contacts(number, 3)
    both.labels.add(vip, bettors)
    only_vip.labels.add(vip)
    both.attributes = {"city": "Harare"}
    both.save()
    Contact.objects.filter(pk=nobody.pk).update(last_inbound_at=now - timedelta(days=40))
    other_number = make_contacts(unlimited(make_config(graph_url, name="Second")), 1)[0]
    wallet = Wallet.objects.create(contact=only_vip, balance=Decimal("25.00"))
    Ticket.objects.create(wallet=wallet, kind="single", stake=Decimal("1"), total_odds=Decimal("2"),
                          potential_payout=Decimal("2"))

    def matched(**fields) -> set[int]:
        labels = fields.pop("labels", [])
        segment = Segment.objects.create(name=f"s{Segment.objects.count()}", **fields)
        segment.labels.set(labels)
        return set(segment_contacts(segment).values_list("pk", flat=True))

    assert matched(labels=[vip, bettors]) == {both.pk, only_vip.pk}
    assert matched(labels=[vip, bettors], label_match=LabelMatch.ALL) == {both.pk}
    assert matched(app_config=number) == {both.pk, only_vip.pk, nobody.pk}
    assert other_number.pk in matched()
    assert matched(app_config=number, last_inbound_within_days=30) == {both.pk, only_vip.pk}
    assert matched(placed_ticket_within_days=30) == {only_vip.pk}
    assert matched(min_wallet_balance=Decimal("10")) == {only_vip.pk}
    assert matched(min_wallet_balance=Decimal("25")) == set()
    assert matched(field_name="attributes.city", field_value="Harare") == {both.pk}
    assert matched(field_name="name", field_value="Fan 1") == {only_vip.pk}

    Contact.objects.filter(pk=both.pk).update(marketing_opt_out=True)
    segment = Segment.objects.create(name="vips")
    segment.labels.set([vip])
    counts = segment_counts(segment)
    assert (counts.matched, counts.opted_out, counts.sendable) == (2, 1, 1)


# ------------------------------------------------------------------ one recipient


def test_a_value_that_renders_empty_fails_that_recipient_not_the_campaign(number, fake, broker):
    label, segment = labelled_segment()
    named, unnamed = make_contacts(number, 2, label=label)
    Contact.objects.filter(pk=unnamed.pk).update(name="")
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    for recipient in Recipient.objects.filter(campaign=campaign).order_by("pk"):
        written = chains.write_recipient(campaign, recipient.pk)
        if written.message_id:
            assert delivery.send_chain(written.message_id).result is Result.SENT
    failed = Recipient.objects.get(contact=unnamed)
    assert (failed.state, failed.message) == (RecipientState.FAILED, None)
    assert failed.error == "template.body.1: body {{1}} is empty"
    [sent] = fake.messages()
    assert sent.to == named.wa_id
    assert [f["wa_id"] for f in failed_recipients(campaign)] == [unnamed.wa_id]
    # A fallback fills it: retry failed queues it again with a new message.
    campaign.variables["body.1"] = {"field": "name", "fallback": "there"}
    campaign.save()
    assert lifecycle.retry_failed(campaign.pk).requeued == 1
    written = chains.write_recipient(campaign, failed.pk)
    assert delivery.send_chain(written.message_id).result is Result.SENT
    body = fake.messages(to=unnamed.wa_id)[0].body["template"]["components"]
    assert body[0]["parameters"][0]["text"] == "there"


def test_the_gate_refuses_a_written_message_once_the_contact_opted_out_or_the_campaign_paused(
        number, fake, broker):
    label, segment = labelled_segment()
    stopper, paused_one, goes = make_contacts(number, 3, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    ids = {r.contact_id: chains.write_recipient(campaign, r.pk).message_id
           for r in Recipient.objects.filter(campaign=campaign)}
    # What the optout helper's STOP does: the field, after the template was written.
    Contact.objects.filter(pk=stopper.pk).update(marketing_opt_out=True, marketing_opt_out_at=timezone.now())
    outcome = delivery.send_chain(ids[stopper.pk])
    assert outcome.result is Result.FAILED
    recipient = Recipient.objects.get(contact=stopper)
    assert (recipient.state, recipient.error) == (RecipientState.SKIPPED, "contact opted out of marketing")
    assert Message.objects.get(pk=ids[stopper.pk]).error_title == "Not sent: contact opted out of marketing"

    lifecycle.pause_campaign(campaign.pk)  # withdraws the pending rows nobody holds
    for contact in (paused_one, goes):
        message = Message.objects.get(pk=ids[contact.pk])
        assert (message.status, message.error_title) == (MessageStatus.FAILED, "Not sent: campaign paused")
        assert Recipient.objects.get(contact=contact).state == RecipientState.QUEUED
    assert fake.messages() == []

    lifecycle.resume_campaign(campaign.pk)
    campaign.refresh_from_db()
    for recipient in Recipient.objects.filter(campaign=campaign, state=RecipientState.QUEUED):
        assert delivery.send_chain(chains.write_recipient(campaign, recipient.pk).message_id).result is Result.SENT
    assert sorted(r.to for r in fake.messages()) == sorted([paused_one.wa_id, goes.wa_id])
    assert lifecycle.maybe_finish(campaign.pk)
    counts = progress(campaign)["counts"]
    assert (counts["sent"], counts["skipped"], counts["pending"]) == (2, 1, 0)


def test_a_campaign_message_resent_from_the_message_admin_is_refused_by_the_gate(number, fake, broker):
    label, segment = labelled_segment()
    make_contacts(number, 1, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    recipient = Recipient.objects.get(campaign=campaign)
    message_id = chains.write_recipient(campaign, recipient.pk).message_id
    lifecycle.pause_campaign(campaign.pk)  # the recipient is queued again, its message failed
    Message.objects.filter(pk=message_id).update(status=MessageStatus.PENDING)  # as resend_failed would
    assert delivery.send_chain(message_id).result is Result.FAILED
    assert "no campaign recipient" in Message.objects.get(pk=message_id).error_title
    assert fake.messages() == []


def test_a_flow_is_started_by_the_templates_quick_reply_button(number, fake, broker):
    from flows.models import Flow

    flow = Flow.objects.create(name="odds", trigger_keywords=["odds"])
    label, segment = labelled_segment()
    make_contacts(number, 1, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment, flow=flow)
    lifecycle.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    recipient = Recipient.objects.get(campaign=campaign)
    assert delivery.send_chain(chains.write_recipient(campaign, recipient.pk).message_id).result is Result.SENT
    components = fake.messages()[0].body["template"]["components"]
    assert components[-1] == {"type": "button", "sub_type": "quick_reply", "index": "0",
                              "parameters": [{"type": "payload", "payload": "odds"}]}


# ------------------------------------------------------------------ the token bucket


def test_low_priority_leaves_the_reserve_for_high(redis_client):
    bucket = TokenBucket(redis_client, prefix="test:campaign-bucket:")
    bucket.reset("n1")
    # A token every second: the 33 calls below must not see one refilled (at 20/s, 50 ms of a
    # loaded machine between them did, and a HIGH caller expected to wait was granted).
    rate, burst = 1.0, 8.0
    reserve = default_reserve(burst)
    assert reserve == 4.0
    low = [bucket.acquire("n1", rate, burst=burst, max_wait=0, low_priority=True, reserve=reserve) for _ in range(8)]
    granted_low = sum(1 for g in low if g.granted)
    assert granted_low <= burst - reserve + 1  # the campaign stops at the reserve
    assert not low[-1].granted
    high = [bucket.acquire("n1", rate, burst=burst, max_wait=0, reserve=reserve) for _ in range(int(reserve))]
    assert all(g.granted for g in high)  # replies find their tokens at once
    # A refused LOW caller waits behind HIGH ones; a refused HIGH caller does not count LOW ones.
    many_low = [bucket.acquire("n1", rate, burst=burst, max_wait=0, low_priority=True, reserve=reserve)
                for _ in range(20)]
    high_wait = bucket.acquire("n1", rate, burst=burst, max_wait=0, reserve=reserve)
    assert not high_wait.granted and high_wait.wait < many_low[-1].wait
    with pytest.raises(ValueError, match="reserve"):
        bucket.acquire("n1", rate, burst=burst, reserve=burst)


# ------------------------------------------------------------------ REST API


def _client_for(group: str | None):
    from rest_framework.test import APIClient

    user = User.objects.create_user(f"u-{group}")
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_the_api_reads_for_read_only_and_acts_for_agents(fake, number, broker):
    label, segment = labelled_segment()
    make_contacts(number, 2, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    reader, agent = _client_for("operators-readonly"), _client_for("agents")
    assert reader.get("/api/campaigns/").json()["results"][0]["id"] == campaign.pk
    assert reader.post(f"/api/campaigns/{campaign.pk}/start/").status_code == 403
    assert Recipient.objects.count() == 0
    started = agent.post(f"/api/campaigns/{campaign.pk}/start/")
    assert started.status_code == 200 and started.json()["state"] == "running"
    assert started.json()["progress"]["counts"]["pending"] == 2
    paused = agent.post(f"/api/campaigns/{campaign.pk}/pause/")
    assert paused.json()["state"] == "paused"
    again = agent.post(f"/api/campaigns/{campaign.pk}/pause/")
    assert again.status_code == 409 and "only a running campaign can be paused" in again.json()["error"]["message"]
    assert agent.post(f"/api/campaigns/{campaign.pk}/resume/").json()["state"] == "running"
    assert agent.post(f"/api/campaigns/{campaign.pk}/cancel/").json()["state"] == "cancelled"
    assert set(Recipient.objects.values_list("state", flat=True)) == {RecipientState.CANCELLED}
    assert agent.post("/api/campaigns/999999/pause/").status_code == 404


# ------------------------------------------------------------------ admin


def test_the_admin_shows_the_match_count_the_progress_and_acts(fake, number, admin_client, broker):
    label, segment = labelled_segment()
    make_contacts(number, 3, label=label)
    make_contacts(number, 1, label=label, marketing_opt_out=True)
    page = admin_client.get(f"/admin/campaigns/segment/{segment.pk}/change/")
    assert "4 matched, 3 to send to (skipped: 1 opted out, 0 blocked)" in page.content.decode()
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    changelist = "/admin/campaigns/campaign/"
    response = admin_client.post(changelist, {"action": "start_selected", "_selected_action": [campaign.pk]},
                                 follow=True)
    assert "3 recipients (1 opted out and 0 blocked skipped)" in response.content.decode()
    progress_json = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/progress/").json()
    assert (progress_json["state"], progress_json["total"], progress_json["counts"]["pending"]) == ("running", 3, 3)
    assert progress_json["skipped_opted_out_at_start"] == 1
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "campaign-progress" in page and f"/admin/campaigns/campaign/{campaign.pk}/progress/" in page
    response = admin_client.post(changelist, {"action": "resume_selected", "_selected_action": [campaign.pk]},
                                 follow=True)
    assert "not resumed: campaign &#x27;Weekend fixtures&#x27; is running" in response.content.decode()
    admin_client.post(changelist, {"action": "pause_selected", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.PAUSED and campaign.state_reason == "paused by admin"


# ------------------------------------------------------------------ Meta's limits


def test_a_spam_rate_limit_pauses_the_campaign_and_a_marketing_limit_is_not_retried(number, fake, broker):
    label, segment = labelled_segment()
    first, second, third = make_contacts(number, 3, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    fake.add_fault(131049, to=first.wa_id)
    fake.add_fault(131048, to=second.wa_id)
    chain_numbers = [r.pk % 4 for r in Recipient.objects.filter(campaign=campaign).order_by("pk")]
    for chain in chain_numbers:  # one recipient per chain (consecutive ids), in the contacts' order
        chains.run_chain(campaign.pk, chain)
    assert not [r for r in fake.requests() if r.ok]
    failed = {r.contact_id: r.message for r in Recipient.objects.filter(campaign=campaign, message__status="failed")}
    assert (failed[first.pk].error_code, failed[second.pk].error_code) == (131049, 131048)
    # The run after the 131048 paused the campaign with Meta's reason, before the third send.
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.PAUSED
    assert campaign.state_reason.startswith("Meta 131048: Spam rate limit")
    assert Recipient.objects.get(contact=third).state == RecipientState.QUEUED
    # Retry failed queues the 131048 one, not the 131049 one (Meta asked not to resend).
    result = lifecycle.retry_failed(campaign.pk)
    assert (result.requeued, result.not_retried) == (1, 1)
    lifecycle.resume_campaign(campaign.pk)
    for chain in range(4):
        chains.run_chain(campaign.pk, chain)
    assert sorted(r.to for r in fake.requests() if r.ok) == sorted([second.wa_id, third.wa_id])
    lifecycle.maybe_finish(campaign.pk)  # a chain that found nothing left may have done it already
    assert Campaign.objects.get(pk=campaign.pk).state == CampaignState.DONE  # not paused again by the old 131048
    assert [f["code"] for f in failed_recipients(campaign)] == [131049]


def test_a_row_in_flight_at_pause_is_refused_by_the_gate_when_it_comes_back(number, fake, broker):
    label, segment = labelled_segment()
    [contact] = make_contacts(number, 1, label=label)
    campaign = make_campaign(number, make_template(number, fake=fake), segment)
    lifecycle.start_campaign(campaign.pk)
    campaign.refresh_from_db()
    message_id = chains.write_recipient(campaign, Recipient.objects.get(campaign=campaign).pk).message_id
    # A run holds its lease while the pause commits (pause cannot withdraw it) ...
    Message.objects.filter(pk=message_id).update(claimed_by="run@node", claimed_until=timezone.now() + timedelta(60))
    lifecycle.pause_campaign(campaign.pk)
    assert Message.objects.get(pk=message_id).status == MessageStatus.PENDING
    # ... and gives it back refused a token; the task that comes back meets the gate.
    Message.objects.filter(pk=message_id).update(claimed_by="", claimed_until=None)
    assert delivery.send_chain(message_id).result is Result.FAILED
    recipient = Recipient.objects.get(contact=contact)
    assert (recipient.state, recipient.message) == (RecipientState.QUEUED, None)
    assert Message.objects.get(pk=message_id).error_title == "Not sent: campaign paused"
    assert fake.messages() == []
