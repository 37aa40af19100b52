"""Sending a running campaign: send chains, each recipient written and sent exactly once.

**Chains.** ``CAMPAIGN_SEND_CONCURRENCY`` chains per campaign; chain ``k`` sends the queued
recipients whose id is ``k`` modulo the count, ``CAMPAIGN_BATCH_SIZE`` per task run
(``campaigns.send_batch``, LOW priority on the I/O queue), then enqueues its next run. A
chain holds a lease in Redis while a run is active (renewed after every send), so a
duplicate task (the periodic check, a redelivery) returns at once; a chain whose worker died
is restarted by the periodic check (``campaigns.tick``) once its lease
(``CAMPAIGN_CHAIN_LEASE_SECONDS``) expires. Two runs of one chain at once (a lease lost with
a Redis restart) are harmless: the recipient's row decides who writes it. At most one run per chain, so a campaign holds
at most that many I/O worker slots.

**Exactly once.** A recipient's template is written in ONE transaction that also moves its
row from ``queued`` to ``written`` (only if it is still queued and the campaign still
running) and links the message. Whatever dies, a recipient has at most one live message;
the message is then sent by the same delivery code as every reply (``send_chain``: lease,
token bucket at LOW priority, ``biz_opaque_callback_data``), and a run that dies after the
commit leaves a pending row that the outbound sweeper sends.

**The gate.** Before delivery sends a campaign message it asks ``CampaignSendGate``: a
campaign no longer running or a contact who opted out (or was blocked) meanwhile refuses the
send; delivery fails the row without any request and the recipient goes back to queued
(pause), cancelled or skipped (opt-out), in the same transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis as redis_lib
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Mod
from django.utils import timezone

from campaigns.models import SENT_BY_PREFIX, Campaign, CampaignState, Recipient, RecipientState
from campaigns.services.lifecycle import maybe_finish, pause_campaign, start_due, tier_room
from campaigns.services.variables import campaign_spec
from conversations.models import Message, MessageStatus
from conversations.services import delivery
from conversations.services.delivery import Result, RunInfo
from conversations.services.sending import OutboundValidationError, validate_spec, write_replies
from meta_integration.retry_policy import BULK_SEND_CODES, BulkAction
from whatsappcrm_backend import topology
from whatsappcrm_backend.celery import enqueue

__all__ = ["BATCH_TASK", "CampaignSendGate", "ChainRun", "kick", "run_chain", "tick", "write_recipient",
           "yield_to_replies"]

logger = logging.getLogger(__name__)
BATCH_TASK = "campaigns.send_batch"
FINISH_POLL_SECONDS = 2.0

_redis: redis_lib.Redis | None = None


def _redis_client() -> redis_lib.Redis:
    global _redis
    if _redis is None:
        _redis = redis_lib.Redis.from_url(settings.REDIS_URL)
    return _redis


def _chain_key(campaign_id: int, chain: int) -> str:
    return f"campaigns:chain:{campaign_id}:{chain}"


# Release a chain's lease only if this run still holds it (one round trip, atomic).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# ------------------------------------------------------------------ yielding to replies

# Broker priority puts a reply's task ahead of campaign batches, but once both run in the
# same gevent worker process they share its one core: a chain's database work and requests
# would slow the reply down. So a chain waits before each recipient while a reply is being
# processed in its own process (at most CAMPAIGN_YIELD_MAX_SECONDS, so replies arriving
# back to back cannot stop a campaign). Counted per process by Celery's task signals.
REPLY_TASKS = frozenset({"flows.process_message"})
_replies_running = 0


def _reply_started(sender: Any = None, **_kwargs: Any) -> None:
    global _replies_running
    if getattr(sender, "name", None) in REPLY_TASKS:
        _replies_running += 1


def _reply_finished(sender: Any = None, **_kwargs: Any) -> None:
    global _replies_running
    if getattr(sender, "name", None) in REPLY_TASKS:
        _replies_running = max(0, _replies_running - 1)


def yield_to_replies(max_wait: float | None = None) -> float:
    """Wait while this process runs a reply (bounded); returns the seconds waited."""
    limit = settings.CAMPAIGN_YIELD_MAX_SECONDS if max_wait is None else max_wait
    started = time.monotonic()
    while _replies_running > 0 and time.monotonic() - started < limit:
        time.sleep(0.005)  # gevent-patched in the I/O worker: the reply's greenlet runs
    return time.monotonic() - started


# ------------------------------------------------------------------ the send gate


class CampaignSendGate:
    """Registered with delivery for ``sent_by`` "campaign:<id>" (see the module docstring)."""

    def refusal(self, message_id: int) -> str | None:
        row = (Recipient.objects.filter(message_id=message_id)
               .values("campaign__state", "contact__marketing_opt_out", "contact__blocked").first())
        if row is None:
            return "no campaign recipient is waiting for this message (resend from the campaign instead)"
        if row["campaign__state"] != CampaignState.RUNNING:
            return f"campaign {row['campaign__state']}"
        if row["contact__marketing_opt_out"]:
            return "contact opted out of marketing"
        if row["contact__blocked"]:
            return "contact blocked"
        return None

    def refused(self, message_id: int, reason: str) -> None:
        if reason == f"campaign {CampaignState.PAUSED}":
            Recipient.objects.filter(message_id=message_id).update(state=RecipientState.QUEUED, message=None,
                                                                   error="")
        elif reason.startswith("campaign "):
            Recipient.objects.filter(message_id=message_id).update(state=RecipientState.CANCELLED, error=reason)
        else:
            Recipient.objects.filter(message_id=message_id).update(state=RecipientState.SKIPPED, error=reason)


# ------------------------------------------------------------------ one recipient


@dataclass(frozen=True)
class Written:
    message_id: int | None  # None: nothing to send for this recipient
    stop: bool = False  # the campaign is not running any more


def write_recipient(campaign: Campaign, recipient_id: int) -> Written:
    """Write the recipient's template and link it, in one transaction guarded by the row's state."""
    now = timezone.now()
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, state=CampaignState.RUNNING).exists():
            return Written(None, stop=True)
        # The guard names only the recipient's own columns. With a condition on the campaign
        # (a join), Django writes ``WHERE id IN (SELECT ...)`` and PostgreSQL, re-checking a row
        # that a concurrent run had just moved to written, keeps the subquery's old answer: two
        # runs of one chain (its Redis lease lost with a restart) both wrote the recipient and
        # it got the template twice (tests/test_campaign_redis_restart.py). A pause that
        # commits after the check above is caught by the send gate before any request.
        taken = Recipient.objects.filter(
            pk=recipient_id, state=RecipientState.QUEUED, message__isnull=True,
        ).update(state=RecipientState.WRITTEN, updated_at=now)
        if not taken:
            return Written(None)
        recipient = Recipient.objects.select_related("contact").get(pk=recipient_id)
        contact = recipient.contact
        if contact.marketing_opt_out or contact.blocked:
            reason = "contact opted out of marketing" if contact.marketing_opt_out else "contact blocked"
            Recipient.objects.filter(pk=recipient_id).update(state=RecipientState.SKIPPED, error=reason)
            return Written(None)
        try:
            spec = campaign_spec(campaign, contact)
            payload = validate_spec(contact.wa_id, spec)
        except OutboundValidationError as exc:
            # This contact's data does not fill the template (an empty name, say): this
            # recipient fails, with the slot named; the campaign goes on.
            Recipient.objects.filter(pk=recipient_id).update(state=RecipientState.FAILED, error=str(exc)[:255])
            return Written(None)
        [message_id] = write_replies(contact, campaign.app_config_id, [spec], [payload], sent_by=campaign.sent_by)
        Recipient.objects.filter(pk=recipient_id).update(message_id=message_id)
    return Written(message_id)


# ------------------------------------------------------------------ chains


@dataclass(frozen=True)
class ChainRun:
    sent: int = 0
    written: int = 0
    next_in: float | None = None  # seconds until this chain's next run; None: the chain stops
    note: str = ""


def _spam_limited(campaign: Campaign) -> Message | None:
    """A campaign message Meta refused since the campaign last (re)started with a code that
    stops the sender (131048 spam rate limit)."""
    codes = [code for code, (action, _) in BULK_SEND_CODES.items() if action is BulkAction.PAUSE_SENDER]
    return (Message.objects.filter(error_code__in=codes, sent_by=campaign.sent_by, status=MessageStatus.FAILED,
                                   status_at__gte=campaign.running_since or campaign.created_at)
            .only("error_code", "error_title").first())


def _run_chain(campaign: Campaign, chain: int, run: RunInfo, renew: Callable[[], object]) -> ChainRun:
    refused = _spam_limited(campaign)
    if refused is not None:
        reason = f"Meta {refused.error_code}: {BULK_SEND_CODES[refused.error_code][1]}"
        pause_campaign(campaign.pk, reason)
        logger.warning("campaign %s paused: %s", campaign.pk, reason)
        return ChainRun(note="paused: " + reason)
    limit = settings.CAMPAIGN_BATCH_SIZE
    if campaign.pace_across_days:
        room, wait = tier_room(campaign)
        if room is not None and room <= 0:
            wait = min(wait, topology.LONGEST_COUNTDOWN.total_seconds())
            return ChainRun(next_in=wait, note=f"messaging tier reached; next try in {wait:.0f}s")
        limit = limit if room is None else min(limit, room)
    chains = settings.CAMPAIGN_SEND_CONCURRENCY
    ids = list(
        Recipient.objects.filter(campaign=campaign, state=RecipientState.QUEUED)
        .annotate(chain=Mod(F("pk"), chains)).filter(chain=chain)
        .order_by("pk").values_list("pk", flat=True)[:limit]
    )
    if not ids:
        if maybe_finish(campaign.pk) or Recipient.objects.filter(campaign=campaign, state=RecipientState.QUEUED) \
                .exists():
            return ChainRun(note="nothing queued for this chain")
        # Written messages are still pending (a retry, a token wait): look again shortly, so
        # the campaign is marked done without waiting for the periodic check.
        return ChainRun(next_in=FINISH_POLL_SECONDS, note="waiting for the last sends")
    sent = written = 0
    for recipient_id in ids:
        yield_to_replies()
        result = write_recipient(campaign, recipient_id)
        if result.stop:
            return ChainRun(sent, written, None, "campaign not running")
        if result.message_id is None:
            continue
        written += 1
        outcome = delivery.send_chain(result.message_id, run)
        renew()
        if outcome.result is Result.SENT:
            sent += 1
        elif outcome.result is Result.RATE_LIMITED:
            # delivery put this message back with its own countdown; the chain waits as long
            return ChainRun(sent, written, outcome.delay, "rate limited")
    return ChainRun(sent, written, 0.0)


def run_chain(campaign_id: int, chain: int, run: RunInfo | None = None) -> ChainRun:
    """One run of a chain (see the module docstring); enqueues the chain's next run."""
    run = run or RunInfo.current()
    client = _redis_client()
    key = _chain_key(campaign_id, chain)
    if not client.set(key, run.label, nx=True, px=int(settings.CAMPAIGN_CHAIN_LEASE_SECONDS * 1000)):
        return ChainRun(note="another run holds this chain")
    try:
        campaign = Campaign.objects.select_related("app_config", "template", "flow").filter(pk=campaign_id).first()
        if campaign is None or campaign.state != CampaignState.RUNNING:
            return ChainRun(note="campaign not running")
        lease_ms = int(settings.CAMPAIGN_CHAIN_LEASE_SECONDS * 1000)
        result = _run_chain(campaign, chain, run, lambda: client.pexpire(key, lease_ms))
    finally:
        client.eval(_RELEASE, 1, key, run.label)
    if result.next_in is not None:
        _enqueue_batch(campaign_id, chain, result.next_in)
    return result


def _enqueue_batch(campaign_id: int, chain: int, countdown: float = 0.0) -> None:
    if countdown > 0:
        enqueue(BATCH_TASK, campaign_id, chain, countdown=countdown)
    else:
        enqueue(BATCH_TASK, campaign_id, chain)


def kick(campaign_id: int) -> int:
    """Start every chain of a running campaign whose lease is free (an extra task is harmless)."""
    client = _redis_client()
    started = 0
    for chain in range(settings.CAMPAIGN_SEND_CONCURRENCY):
        if not client.exists(_chain_key(campaign_id, chain)):
            _enqueue_batch(campaign_id, chain)
            started += 1
    return started


def tick() -> dict[str, int]:
    """The periodic check: start due scheduled campaigns, restart chains of running ones
    (a worker killed mid-run, a task lost with Redis), finish the ones with nothing left."""
    started = start_due()
    kicked = finished = 0
    for campaign_id in Campaign.objects.filter(state=CampaignState.RUNNING).values_list("pk", flat=True):
        if maybe_finish(campaign_id):
            finished += 1
        elif Recipient.objects.filter(campaign_id=campaign_id, state=RecipientState.QUEUED).exists():
            kicked += kick(campaign_id)
    return {"started": started, "chains_kicked": kicked, "finished": finished}


def register() -> None:
    from celery.signals import task_postrun, task_prerun

    delivery.register_send_gate(SENT_BY_PREFIX, CampaignSendGate())
    task_prerun.connect(_reply_started, weak=False)
    task_postrun.connect(_reply_finished, weak=False)
