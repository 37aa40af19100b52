"""Scenario 9, a campaign while users write: reply latency with and without it, the
campaign's achieved send rate, and the time to pause.

A campaign of 10,000 recipients (a template to a labelled segment) is started from the
benchmark process through ``campaigns.services.lifecycle.start_campaign``, on the stack's
business number at its configured per-number rate (Meta's default, 80/s). New users write
at half the reply knee measured by scenario 3 in the same run (20/s when it did not run;
``--campaign-user-rate`` sets it),
open loop, first without the campaign, then, for the same time, while it sends. Then the
campaign is paused: the time to pause runs from the click (the call returning) to the
last campaign message the fake Graph API received. The rest is cancelled afterwards.

No floor of its own: the reference is the same reply load without the campaign, measured
in the same run just before (the goal: p99 with the campaign <= 1.2 x without).
"""

from __future__ import annotations

import time
from dataclasses import replace

from bench.load import LoadResult
from bench.scenarios.base import Row, ScenarioResult, Series, Status, Summary, Table, fmt_seconds
from bench.scenarios.common import Context, NotAvailable, check_reply, error_note, load, wa_prefix, wait_for_replies
from bench.stack import PHONE_NUMBER_ID, WEBHOOK_PATH

NAME = "campaign"
TITLE = "A 10,000-recipient campaign while users write"
DEFAULT_USER_RATE = 20.0
P99_GOAL = 1.2


def _replies(ctx: Context, label: str, rate: float, duration: float, drain: float) -> tuple[Row, Series]:
    """Open-loop "hi" from new users; latency = POST due -> first message to that user at the fake."""
    since = ctx.stack.fake_last_seq()
    result: LoadResult = load(ctx, label, WEBHOOK_PATH, rate, duration, warmup=False)
    accepted = {r.wa_id: r for r in result.records if r.ok}
    replies = wait_for_replies(ctx, set(accepted), since, drain, label)
    latencies = [replies[w] - accepted[w].due_at for w in accepted if w in replies]
    window = (max(replies.values()) - result.started_at) if replies else 0.0
    errors = error_note(result)
    row = Row(label, f"{rate:g}/s for {duration:g} s", Summary.of(latencies, attempted=len(result.records),
              window=window), note=f"POSTs failed: {errors}" if errors else "")
    return row, Series(label, tuple(latencies), tuple(replies.values()), result.started_at)


def _setup(ctx: Context, recipients: int, rate: float):
    from campaigns.models import Campaign, Segment
    from conversations.models import Contact, Label
    from meta_integration.models import MessageTemplate, MessagingTier, MetaAppConfig

    config = MetaAppConfig.objects.get(phone_number_id=PHONE_NUMBER_ID)
    config.messaging_tier = MessagingTier.UNLIMITED
    config.send_rate_per_second = rate
    config.save(update_fields=["messaging_tier", "send_rate_per_second"])
    base = ctx.wa_base()
    label = Label.objects.create(name=f"bench-{base}")
    ctx.progress(f"writing {recipients:,} contacts")
    contacts = Contact.objects.bulk_create(
        [Contact(wa_id=str(base + i), name=f"Fan {i}", app_config=config) for i in range(recipients)],
        batch_size=2000)
    Contact.labels.through.objects.bulk_create(
        [Contact.labels.through(contact_id=c.pk, label_id=label.pk) for c in contacts], batch_size=5000)
    template, _ = MessageTemplate.objects.get_or_create(
        app_config=config, name="bench_weekend_fixtures", language="en_US",
        defaults={"status": "APPROVED", "category": "MARKETING", "components": [
            {"type": "BODY", "text": "Hi {{1}}, Dynamos v Highlanders kicks off on Saturday."}]},
    )
    import httpx

    httpx.post(f"{ctx.stack.graph_url}/_fake/templates", json={  # as Meta has it (the fake checks sends)
        "name": template.name, "language": template.language, "status": "APPROVED", "category": "MARKETING",
        "components": template.components}, timeout=10).raise_for_status()
    segment = Segment.objects.create(name=f"bench {base}")
    segment.labels.add(label)
    campaign = Campaign.objects.create(name=f"bench {base}", app_config=config, template=template, segment=segment,
                                       variables={"body.1": {"field": "name"}})
    return campaign, wa_prefix(base)


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="POST due -> reply at fake Graph API")
    try:
        from campaigns.services import lifecycle
    except ImportError as exc:
        result.status, result.reason = Status.NOT_AVAILABLE, f"campaigns app: {exc}"
        return result
    try:
        check_reply(ctx, timeout=ctx.scale(30.0, 15.0))
    except NotAvailable as exc:
        result.status, result.reason = Status.NOT_AVAILABLE, str(exc)
        return result
    recipients = ctx.campaign_recipients or ctx.scale(10_000, 300)
    send_rate = ctx.scale(80.0, 40.0)
    knee = ctx.cache.get("reply_knee")
    user_rate = ctx.campaign_user_rate or ctx.scale(knee / 2 if knee else DEFAULT_USER_RATE, 10.0)
    duration, drain = ctx.scale(30.0, 3.0), ctx.scale(20.0, 10.0)
    campaign, prefix = _setup(ctx, recipients, send_rate)
    time.sleep(3.0)  # the workers' business-number cache (META_CONFIG_CACHE_SECONDS) sees the rate

    alone, alone_series = _replies(ctx, "replies, no campaign", user_rate, duration, drain)
    alone = replace(alone, floor=True)
    since = ctx.stack.fake_last_seq()
    started_at = time.time()
    lifecycle.start_campaign(campaign.pk)
    with_campaign, with_series = _replies(ctx, f"replies while {recipients:,} campaign sends go out", user_rate,
                                          duration, drain)
    clicked = time.time()
    lifecycle.pause_campaign(campaign.pk, "paused by the benchmark")
    returned = time.time()
    time.sleep(ctx.scale(5.0, 3.0))  # what was in flight lands meanwhile
    sends = [r for r in ctx.stack.fake_messages(since) if str(r.get("to", "")).startswith(prefix)]
    lifecycle.cancel_campaign(campaign.pk)
    before = [r["received_at"] for r in sends if r["received_at"] <= clicked]
    after = [r["received_at"] for r in sends if r["received_at"] > clicked]
    first = min(before) if before else started_at
    achieved = len(before) / (clicked - first) if before and clicked > first else 0.0
    to_pause = (max(after) - clicked) if after else 0.0

    result.add_rows([alone, with_campaign])
    result.series += [replace(alone_series, label="no campaign"), replace(with_series, label="with the campaign")]
    ratio = (with_campaign.summary.p99 / alone.summary.p99) if alone.summary.p99 and with_campaign.summary.p99 \
        else None
    result.tables.append(Table("The campaign", ("figure", "value"), (
        ("recipients", f"{recipients:,}"),
        ("users writing meanwhile", f"{user_rate:g}/s (half the reply knee)"
         if knee and not ctx.campaign_user_rate else f"{user_rate:g}/s"),
        ("configured per-number rate", f"{send_rate:g}/s"),
        ("achieved campaign send rate", f"{achieved:.1f}/s ({len(before):,} sent in {clicked - first:.1f} s)"),
        ("reply p99 with / without the campaign", f"{ratio:.2f}" if ratio else "-"),
        ("time to pause (click -> last campaign send)", fmt_seconds(to_pause)),
        ("campaign sends after the click", f"{len(after)} (pause call returned after "
                                           f"{(returned - clicked) * 1000:.0f} ms)"),
    )))
    result.headline = (f"reply p99 {fmt_seconds(alone.summary.p99)} alone, {fmt_seconds(with_campaign.summary.p99)} "
                       f"with the campaign ({ratio:.2f}x, goal <= {P99_GOAL}x); campaign {achieved:.1f}/s of "
                       f"{send_rate:g}/s; paused in {fmt_seconds(to_pause)}" if ratio else "")
    return result
