"""A campaign's states: draft -> scheduled -> running <-> paused -> done / cancelled.

``start_campaign`` refuses (``CampaignError``, nothing written) a template mapping that does
not fit, a segment with nobody to send to, and a business number whose messaging tier is
too small (unless the operator chose to pace across days). Otherwise it writes every
recipient in bulk and the send chains start when it commits (``services/chains.py``).

Pause and cancel take effect at once for everything not yet in flight: the chains check
the campaign's state before each recipient, the send gate refuses a campaign message that
is still pending when it is about to go out, and the pending rows nobody holds a lease on
are failed ("Not sent: ...") here, so neither a sweeper nor a delayed task sends them later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from campaigns.models import Campaign, CampaignState, Recipient, RecipientState
from campaigns.services.segments import segment_contacts, segment_counts, sendable
from campaigns.services.variables import CampaignError, check_campaign
from conversations.models import Direction, Message, MessageStatus
from meta_integration.models import MessagingTier
from meta_integration.retry_policy import BulkAction, bulk_action

__all__ = [
    "CampaignError",
    "CampaignStateError",
    "RetryResult",
    "business_initiated_users",
    "cancel_campaign",
    "maybe_finish",
    "pause_campaign",
    "resume_campaign",
    "retry_failed",
    "schedule_campaign",
    "start_campaign",
    "start_due",
    "tier_room",
]

logger = logging.getLogger(__name__)
WINDOW = timedelta(hours=24)


class CampaignStateError(CampaignError):
    """The action does not apply to the campaign's current state; nothing changed."""


# ------------------------------------------------------------------ messaging tier


def business_initiated_users(app_config_id: int, now: datetime | None = None) -> QuerySet[Message]:
    """Contacts this number sent a template to in the rolling 24 hours (failed ones aside):
    what Meta's messaging tier counts (templates are how a business starts a conversation)."""
    now = now or timezone.now()
    return (
        Message.objects.filter(app_config_id=app_config_id, direction=Direction.OUTBOUND, message_type="template",
                               created_at__gte=now - WINDOW)
        .exclude(status=MessageStatus.FAILED)
    )


def tier_room(campaign: Campaign, now: datetime | None = None) -> tuple[int | None, float]:
    """(users the number may still reach now, or None if unlimited; seconds until the oldest
    counted send leaves the 24-hour window)."""
    tier = campaign.app_config.messaging_tier
    if tier == MessagingTier.UNLIMITED:
        return None, 0.0
    now = now or timezone.now()
    counted = business_initiated_users(campaign.app_config_id, now)
    used = counted.values("contact_id").distinct().count()
    oldest = counted.aggregate(oldest=Min("created_at"))["oldest"]
    wait = max(1.0, ((oldest + WINDOW) - now).total_seconds()) if oldest else 1.0
    return max(0, tier - used), wait


def _check_tier(campaign: Campaign, recipients: QuerySet, now: datetime) -> None:
    tier = campaign.app_config.messaging_tier
    if tier == MessagingTier.UNLIMITED or campaign.pace_across_days:
        return
    counted = business_initiated_users(campaign.app_config_id, now).values("contact_id")
    used = counted.distinct().count()
    new = recipients.exclude(pk__in=counted).count()
    if used + new > tier:
        raise CampaignError("app_config.messaging_tier", (
            f"{campaign.app_config} may message {tier} users in 24 hours: {used} were messaged in the last "
            f"24 hours and this campaign adds {new}, {used + new} in all. Choose 'pace across days', a "
            "smaller segment, or wait."
        ))


# ------------------------------------------------------------------ starting


@dataclass(frozen=True)
class StartResult:
    recipients: int
    matched: int
    skipped_opted_out: int
    skipped_blocked: int


def _locked(campaign_id: int) -> Campaign:
    """The campaign row, locked against other state changes but not against its recipients.

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: a chain's write_recipient updates its recipient
    twice in one transaction, so PostgreSQL re-checks that row's foreign keys at COMMIT, taking
    ``FOR KEY SHARE`` on the campaign. ``FOR UPDATE`` conflicts with that; with cancel's bulk
    UPDATE waiting for the same recipient, the two deadlocked (seen in full PostgreSQL runs).
    """
    campaign = (Campaign.objects.select_for_update(of=("self",), no_key=True)
                .select_related("app_config", "template", "segment", "flow")
                .filter(pk=campaign_id).first())
    if campaign is None:
        raise CampaignStateError("campaign", f"no campaign {campaign_id}")
    return campaign


def _refuse_unless(campaign: Campaign, *states: CampaignState, action: str) -> None:
    if campaign.state not in states:
        allowed = " or ".join(str(s.label).lower() for s in states)
        raise CampaignStateError(
            "state", f"campaign {campaign.name!r} is {campaign.get_state_display().lower()}; "
                     f"only a {allowed} campaign can be {action}"
        )


def schedule_campaign(campaign_id: int, at: datetime) -> Campaign:
    """Check the campaign now and start it at ``at`` (the periodic check starts due ones)."""
    with transaction.atomic():
        campaign = _locked(campaign_id)
        _refuse_unless(campaign, CampaignState.DRAFT, CampaignState.SCHEDULED, action="scheduled")
        check_campaign(campaign)
        campaign.scheduled_at = at
        campaign.state = CampaignState.SCHEDULED
        campaign.state_reason = ""
        campaign.save(update_fields=["scheduled_at", "state", "state_reason"])
    return campaign


def start_campaign(campaign_id: int, *, now: datetime | None = None) -> StartResult:
    """Check the campaign, write its recipients in bulk and start sending on commit.

    Refused with ``CampaignError`` (nothing written, nothing sent): a mapping that does not
    fit the template, a segment with nobody to send to, a tier too small."""
    from campaigns.services.chains import kick

    now = now or timezone.now()
    with transaction.atomic():
        campaign = _locked(campaign_id)
        _refuse_unless(campaign, CampaignState.DRAFT, CampaignState.SCHEDULED, action="started")
        check_campaign(campaign)
        counts = segment_counts(campaign.segment)
        contacts = sendable(segment_contacts(campaign.segment, now=now))
        if counts.sendable <= 0:
            raise CampaignError("segment", (
                f"segment {campaign.segment.name!r} has nobody to send to: {counts.matched} contact(s) match, "
                f"{counts.opted_out} opted out of marketing, {counts.blocked} blocked"
            ))
        _check_tier(campaign, contacts, now)
        ids = list(contacts.order_by("pk").values_list("pk", flat=True))
        Recipient.objects.bulk_create(
            [Recipient(campaign=campaign, contact_id=contact_id) for contact_id in ids],
            batch_size=2000, ignore_conflicts=True,
        )
        campaign.state = CampaignState.RUNNING
        campaign.state_reason = ""
        campaign.started_at = campaign.running_since = now
        campaign.matched_count = counts.matched
        campaign.skipped_opted_out = counts.opted_out
        campaign.skipped_blocked = counts.blocked
        campaign.save(update_fields=["state", "state_reason", "started_at", "running_since", "matched_count",
                                     "skipped_opted_out", "skipped_blocked"])
        transaction.on_commit(lambda: kick(campaign_id))
    logger.info("campaign %s started: %s recipients, %s opted out skipped", campaign_id, len(ids), counts.opted_out)
    return StartResult(len(ids), counts.matched, counts.opted_out, counts.blocked)


def start_due(now: datetime | None = None) -> int:
    """Start the scheduled campaigns whose time has come; one that is refused goes back to
    draft with the reason (nothing is sent)."""
    now = now or timezone.now()
    started = 0
    for campaign_id in Campaign.objects.filter(state=CampaignState.SCHEDULED, scheduled_at__lte=now) \
            .values_list("pk", flat=True):
        try:
            start_campaign(campaign_id, now=now)
            started += 1
        except CampaignStateError:
            continue
        except CampaignError as exc:
            Campaign.objects.filter(pk=campaign_id, state=CampaignState.SCHEDULED).update(
                state=CampaignState.DRAFT, state_reason=f"Refused at its scheduled time: {exc}"[:255])
            logger.warning("scheduled campaign %s refused: %s", campaign_id, exc)
    return started


# ------------------------------------------------------------------ pause, resume, cancel


def _withdraw_unsent(campaign: Campaign, reason: str, recipient_state: RecipientState) -> int:
    """Fail the campaign's pending messages nobody holds a lease on (so they were never
    requested, or Meta answered with an error): their recipients go to ``recipient_state``
    (queued again on pause: resume writes them a new message)."""
    ids = list(
        Message.objects.filter(campaign_recipient__campaign=campaign, status=MessageStatus.PENDING,
                               claimed_until__isnull=True).values_list("pk", flat=True)
    )
    withdrawn = 0
    for message_id in ids:
        with transaction.atomic():
            if not Message.objects.filter(pk=message_id, status=MessageStatus.PENDING,
                                          claimed_until__isnull=True).update(
                    status=MessageStatus.FAILED, status_at=timezone.now(), next_attempt_at=None,
                    error_code=None, error_title=f"Not sent: {reason}"[:255],
                    error_details="Withdrawn before any request to Meta reached it."):
                continue  # a send took it meanwhile: it is in flight
            _settle_recipient(message_id, recipient_state, reason)
            withdrawn += 1
    return withdrawn


def _settle_recipient(message_id: int, state: RecipientState, reason: str) -> None:
    if state == RecipientState.QUEUED:
        Recipient.objects.filter(message_id=message_id).update(state=state, message=None, error="")
    else:
        Recipient.objects.filter(message_id=message_id).update(state=state, error=reason[:255])


def pause_campaign(campaign_id: int, reason: str = "paused by an operator") -> Campaign:
    with transaction.atomic():
        campaign = _locked(campaign_id)
        _refuse_unless(campaign, CampaignState.RUNNING, action="paused")
        campaign.state = CampaignState.PAUSED
        campaign.paused_at = timezone.now()
        campaign.state_reason = reason[:255]
        campaign.save(update_fields=["state", "paused_at", "state_reason"])
    _withdraw_unsent(campaign, "campaign paused", RecipientState.QUEUED)
    return campaign


def resume_campaign(campaign_id: int) -> Campaign:
    from campaigns.services.chains import kick

    with transaction.atomic():
        campaign = _locked(campaign_id)
        _refuse_unless(campaign, CampaignState.PAUSED, action="resumed")
        campaign.state = CampaignState.RUNNING
        campaign.running_since = timezone.now()
        campaign.state_reason = ""
        campaign.save(update_fields=["state", "running_since", "state_reason"])
        transaction.on_commit(lambda: kick(campaign_id))
    return campaign


def cancel_campaign(campaign_id: int) -> Campaign:
    """Stop for good: queued recipients are cancelled, unsent messages withdrawn."""
    with transaction.atomic():
        campaign = _locked(campaign_id)
        _refuse_unless(campaign, CampaignState.DRAFT, CampaignState.SCHEDULED, CampaignState.RUNNING,
                       CampaignState.PAUSED, action="cancelled")
        campaign.state = CampaignState.CANCELLED
        campaign.finished_at = timezone.now()
        campaign.state_reason = "cancelled by an operator"
        campaign.save(update_fields=["state", "finished_at", "state_reason"])
        Recipient.objects.filter(campaign=campaign, state=RecipientState.QUEUED).update(
            state=RecipientState.CANCELLED, error="campaign cancelled")
    _withdraw_unsent(campaign, "campaign cancelled", RecipientState.CANCELLED)
    return campaign


def maybe_finish(campaign_id: int) -> bool:
    """A running campaign with no recipient queued and no message pending is done."""
    unfinished = Recipient.objects.filter(campaign_id=campaign_id).filter(
        Q(state=RecipientState.QUEUED) | Q(state=RecipientState.WRITTEN, message__status=MessageStatus.PENDING)
    )
    if unfinished.exists():
        return False
    return bool(Campaign.objects.filter(pk=campaign_id, state=CampaignState.RUNNING).update(
        state=CampaignState.DONE, finished_at=timezone.now(), state_reason=""))


# ------------------------------------------------------------------ retry failed


@dataclass(frozen=True)
class RetryResult:
    requeued: int
    not_retried: int  # Meta asked not to (131049, 131050)


def retry_failed(campaign_id: int) -> RetryResult:
    """Queue the failed recipients again (each gets a new message; the failed one stays in the
    history). Those Meta asked not to be retried (``BULK_SEND_CODES``) are left alone."""
    from campaigns.services.chains import kick

    no_retry = [code for code in (131049, 131050) if bulk_action(code) is BulkAction.FAIL_RECIPIENT]
    with transaction.atomic():
        campaign = _locked(campaign_id)
        _refuse_unless(campaign, CampaignState.RUNNING, CampaignState.PAUSED, CampaignState.DONE,
                       action="retried")
        failed = Recipient.objects.filter(campaign=campaign).filter(
            Q(state=RecipientState.FAILED) | Q(state=RecipientState.WRITTEN, message__status=MessageStatus.FAILED)
        )
        not_retried = failed.filter(message__error_code__in=no_retry).count()
        requeued = Recipient.objects.filter(pk__in=failed.exclude(message__error_code__in=no_retry).values("pk")) \
            .update(state=RecipientState.QUEUED, message=None, error="")
        if requeued and campaign.state == CampaignState.DONE:
            campaign.state = CampaignState.RUNNING
            campaign.running_since = timezone.now()
            campaign.finished_at = None
            campaign.save(update_fields=["state", "running_since", "finished_at"])
        if requeued and campaign.state == CampaignState.RUNNING:
            transaction.on_commit(lambda: kick(campaign_id))
    return RetryResult(requeued, not_retried)
