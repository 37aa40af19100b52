"""Campaigns: a template sent to a segment of contacts, one recipient row per contact.

A **Segment** is a saved filter over contacts (``services/segments.py`` builds its queryset).
A **Campaign** sends one approved template, its variables mapped per slot to a contact field
or a fixed value, to the contacts a segment matches. Its **Recipient** rows are written in
bulk when it starts (unique per campaign and contact: a contact never gets a campaign twice,
whatever restarts) and each is linked to the ``conversations.Message`` that carries its
template, written in the same transaction that moves the row out of ``queued``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from conversations.models import Contact, Label, Message
from meta_integration.models import MessageTemplate, MetaAppConfig

SENT_BY_PREFIX = "campaign:"


class LabelMatch(models.TextChoices):
    ANY = "any", "Any of the labels"
    ALL = "all", "All of the labels"


class Segment(models.Model):
    """A saved filter over contacts. Every condition left empty matches everyone; the
    conditions set are combined with AND. Opted-out and blocked contacts may match, but no
    campaign sends to them (the counts say how many were skipped)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="segments")
    label_match = models.CharField(max_length=3, choices=LabelMatch.choices, default=LabelMatch.ANY)
    app_config = models.ForeignKey(
        MetaAppConfig, null=True, blank=True, on_delete=models.PROTECT, related_name="segments",
        verbose_name="business number", help_text="Only contacts who last wrote to this number",
    )
    last_inbound_within_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Only contacts who wrote within this many days",
    )
    placed_ticket_within_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Only contacts who placed a bet ticket within this many days",
    )
    min_wallet_balance = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True,
        help_text="Only contacts whose wallet balance is above this",
    )
    field_name = models.CharField(
        max_length=100, blank=True,
        help_text="A contact field (name, profile_name, email, wa_id) or attributes.<key>",
    )
    field_value = models.CharField(max_length=255, blank=True, help_text="The value that field must equal")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=~Q(name=""), name="segment_name_set")]

    def __str__(self) -> str:
        return self.name


class CampaignState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class Campaign(models.Model):
    """One template to one segment from one business number (see the module docstring).

    ``variables`` maps each template slot ("body.1", "header.media", ...) to
    ``{"field": "name"}`` (a contact field or ``attributes.<key>``, optionally with a
    ``"fallback"``) or ``{"value": "fixed text"}``."""

    name = models.CharField(max_length=150)
    app_config = models.ForeignKey(MetaAppConfig, on_delete=models.PROTECT, related_name="campaigns",
                                   verbose_name="business number")
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="campaigns")
    variables = models.JSONField(default=dict, blank=True,
                                 help_text='Per slot: {"field": "name"} or {"value": "text"}')
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="campaigns")
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="Start at this time (empty: on start)")
    flow = models.ForeignKey(
        "flows.Flow", null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns",
        help_text="Started when a recipient taps a quick-reply button of the template",
    )
    pace_across_days = models.BooleanField(
        default=False,
        help_text="If the number's messaging tier is too small, send what it allows and the rest as it frees up",
    )
    state = models.CharField(max_length=16, choices=CampaignState.choices, default=CampaignState.DRAFT,
                             db_index=True)
    state_reason = models.CharField(max_length=255, blank=True, help_text="Why it is paused, refused or done")
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    running_since = models.DateTimeField(null=True, blank=True, help_text="Last start or resume")
    paused_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    matched_count = models.PositiveIntegerField(default=0, help_text="Contacts the segment matched at start")
    skipped_opted_out = models.PositiveIntegerField(default=0, help_text="Matched but opted out of marketing")
    skipped_blocked = models.PositiveIntegerField(default=0, help_text="Matched but blocked")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def sent_by(self) -> str:
        return f"{SENT_BY_PREFIX}{self.pk}"


class RecipientState(models.TextChoices):
    QUEUED = "queued", "Queued"  # not written yet
    WRITTEN = "written", "Written"  # its Message exists: its status is the message's
    SKIPPED = "skipped", "Skipped"  # opted out (or blocked) before the send
    FAILED = "failed", "Failed before sending"  # e.g. a variable rendered empty for this contact
    CANCELLED = "cancelled", "Cancelled"


class Recipient(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="campaign_recipients")
    state = models.CharField(max_length=16, choices=RecipientState.choices, default=RecipientState.QUEUED)
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="campaign_recipient")
    error = models.CharField(max_length=255, blank=True, help_text="Why it was skipped or failed before sending")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "contact"], name="campaign_recipient_once")]
        indexes = [models.Index(fields=["campaign", "state"], name="campaign_recipient_state")]

    def __str__(self) -> str:
        return f"{self.campaign} -> {self.contact}"
