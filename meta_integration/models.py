"""The Meta boundary's own records: business numbers (app configs) and the webhook audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from meta_integration.templates import TemplateSlot, TemplateVariablesError, build_template_spec, template_slots


def _default_api_version() -> str:
    return settings.META_API_VERSION


def _default_graph_url() -> str:
    return settings.META_GRAPH_API_URL


def _default_rate() -> float:
    return settings.META_SEND_RATE_PER_SECOND


class MessagingTier(models.IntegerChoices):
    """Meta's messaging limit: unique users a number may start business-initiated
    conversations with in a rolling 24 hours (0 stands for unlimited)."""

    TIER_250 = 250, "250 users / 24 h"
    TIER_1K = 1_000, "1,000 users / 24 h"
    TIER_10K = 10_000, "10,000 users / 24 h"
    TIER_100K = 100_000, "100,000 users / 24 h"
    UNLIMITED = 0, "Unlimited"


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
    messaging_tier = models.PositiveIntegerField(
        choices=MessagingTier.choices, default=MessagingTier.TIER_250,
        help_text="Meta's messaging limit for this number (WhatsApp Manager shows it); campaigns respect it",
    )
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


class TemplateStatus(models.TextChoices):
    APPROVED = "APPROVED", "Approved"
    PENDING = "PENDING", "Pending review"
    REJECTED = "REJECTED", "Rejected"
    PAUSED = "PAUSED", "Paused"
    DISABLED = "DISABLED", "Disabled"
    IN_APPEAL = "IN_APPEAL", "In appeal"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED", "Limit exceeded"
    ARCHIVED = "ARCHIVED", "Archived"
    PENDING_DELETION = "PENDING_DELETION", "Pending deletion"
    DELETED = "DELETED", "Removed upstream"


class MessageTemplate(models.Model):
    """A message template of the business account, as Meta's
    ``GET /{waba-id}/message_templates`` lists it. Synced, not edited here: templates are
    created and approved in WhatsApp Manager. Only APPROVED ones can be sent, and a
    template is the only message Meta delivers outside the 24-hour window."""

    app_config = models.ForeignKey(MetaAppConfig, on_delete=models.CASCADE, related_name="templates")
    template_id = models.CharField(max_length=64, blank=True, help_text="Meta's id of the template")
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=15, help_text="e.g. en_US")
    category = models.CharField(max_length=32, blank=True, help_text="MARKETING, UTILITY or AUTHENTICATION")
    status = models.CharField(max_length=16, choices=TemplateStatus.choices, db_index=True)
    parameter_format = models.CharField(max_length=16, default="POSITIONAL", help_text="POSITIONAL or NAMED")
    components = models.JSONField(default=list, blank=True, help_text="Meta's components: HEADER, BODY, ...")
    rejected_reason = models.CharField(max_length=255, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(fields=["app_config", "name", "language"], name="template_once_per_language"),
            models.CheckConstraint(condition=~Q(name=""), name="template_name_set"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def is_sendable(self) -> bool:
        return self.status == TemplateStatus.APPROVED

    def slots(self) -> list[TemplateSlot]:
        """The values a send of this template needs (see meta_integration.templates)."""
        return template_slots(self.components)

    @classmethod
    def lookup(cls, app_config_id: int | None, template: str | int, language: str | None = None) -> MessageTemplate:
        """The synced template a send names: our id (an int), or its name (or Meta's id) and
        language, on the sending number (any active number when it is not known yet).
        Raises ``TemplateVariablesError`` on "template" when there is none."""
        found = cls.objects.filter(app_config_id=app_config_id) if app_config_id else cls.objects.filter(
            app_config__is_active=True)
        if isinstance(template, int) and not isinstance(template, bool):
            found = found.filter(pk=template)
        else:
            name = str(template or "").strip()
            found = found.filter(Q(name=name) | Q(template_id=name) if name.isdigit() else Q(name=name))
            if language:
                found = found.filter(language=language)
        matches = list(found.order_by("pk")[:2])
        if not matches:
            where = f" in {language}" if language else ""
            raise TemplateVariablesError("template", f"no template {template!r}{where} synced for this number "
                                                     "(sync templates in admin)")
        if len(matches) > 1 and not language:
            raise TemplateVariablesError("language", f"template {template!r} exists in several languages; give one")
        return matches[0]

    @classmethod
    def resolve_spec(cls, spec: Mapping[str, Any], app_config_id: int | None) -> Mapping[str, Any]:
        """A template spec that names its values by slot (``{"type": "template", "name",
        "language", "variables": {"body.1": ...}}``, what flows write) as the spec Meta's
        components need, checked against the synced template; any other spec unchanged."""
        if spec.get("type") != "template" or "variables" not in spec:
            return spec
        variables = spec.get("variables")
        if not isinstance(variables, Mapping):
            raise TemplateVariablesError("template.variables", "must be an object of values by slot")
        template = cls.lookup(app_config_id, str(spec.get("name") or ""), spec.get("language") or None)
        built = template.build_spec(variables)
        return {**built, "reply_to": spec["reply_to"]} if spec.get("reply_to") else built

    def build_spec(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The outbound spec for this template filled with ``values``; refuses a template
        Meta would not deliver and values that do not fit it (TemplateVariablesError)."""
        if not self.is_sendable:
            raise TemplateVariablesError("template", f"{self} is {self.get_status_display().lower()}, not approved")
        return build_template_spec(self.name, self.language, self.components, values,
                                   named=self.parameter_format.upper() == "NAMED")


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
