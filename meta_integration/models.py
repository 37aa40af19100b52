"""The Meta boundary's own records: business numbers (app configs) and the webhook audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


def _default_api_version() -> str:
    return settings.META_API_VERSION


def _default_graph_url() -> str:
    return settings.META_GRAPH_API_URL


def _default_rate() -> float:
    return settings.META_SEND_RATE_PER_SECOND


class MetaAppConfig(models.Model):
    """One WhatsApp business number: where to send, and how to check what Meta sends us."""

    name = models.CharField(max_length=100)
    phone_number_id = models.CharField(max_length=64, unique=True, help_text="Meta's id of the business number")
    display_phone_number = models.CharField(max_length=32, blank=True)
    waba_id = models.CharField("WhatsApp Business Account id", max_length=64, blank=True)
    access_token = models.TextField(help_text="Permanent system-user token used to call the Graph API")
    app_secret = models.CharField(max_length=255, help_text="Signs X-Hub-Signature-256 on webhooks")
    verify_token = models.CharField(max_length=255, help_text="Echoed by Meta when subscribing the webhook")
    api_version = models.CharField(max_length=16, default=_default_api_version)
    graph_api_url = models.URLField(default=_default_graph_url)
    send_rate_per_second = models.FloatField(default=_default_rate)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Meta app config"
        constraints = [
            models.CheckConstraint(condition=Q(send_rate_per_second__gt=0), name="metaappconfig_rate_positive"),
            models.CheckConstraint(condition=~Q(phone_number_id=""), name="metaappconfig_phone_number_id_set"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_phone_number or self.phone_number_id})"


class WebhookEvent(models.Model):
    """Accepted webhook POSTs kept raw for audit: every one with anything not understood, an
    error from Meta or a change not acted on, plus a sample of the rest
    (WEBHOOK_EVENT_SAMPLE_RATE); deleted after the retention period."""

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    app_config = models.ForeignKey(MetaAppConfig, null=True, blank=True, on_delete=models.SET_NULL)
    payload = models.JSONField()
    message_count = models.PositiveIntegerField(default=0)
    status_count = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"webhook {self.pk} at {self.received_at:%Y-%m-%d %H:%M:%S}"
