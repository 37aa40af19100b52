"""Admin for business numbers, their synced message templates and the webhook audit log.

Secrets (access token, app secret) are never rendered: not in lists, not in forms. A
form field left blank keeps the stored value, so editing a name cannot erase a secret.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from meta_integration.models import MessageTemplate, MetaAppConfig, WebhookEvent
from meta_integration.templates_sync import TemplateSyncError, sync_templates
from whatsappcrm_backend.admin_permissions import CannotAdd, CannotChange, CannotDelete

SECRET_FIELDS = ("access_token", "app_secret")


class MetaAppConfigForm(forms.ModelForm):
    access_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Permanent system-user token. Leave blank to keep the stored one.",
    )
    app_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Signs X-Hub-Signature-256 on webhooks. Leave blank to keep the stored one.",
    )
    graph_api_url = forms.URLField(assume_scheme="https", help_text="https://graph.facebook.com, or the fake Graph API")

    class Meta:
        model = MetaAppConfig
        fields = ("name", "is_active", "phone_number_id", "display_phone_number", "waba_id", "access_token",
                  "app_secret", "verify_token", "graph_api_url", "api_version", "send_rate_per_second")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if not cleaned.get(name):
                stored = getattr(self.instance, name, "") if self.instance.pk else ""
                if not stored:
                    self.add_error(name, "Required for a new business number.")
                cleaned[name] = stored
        return cleaned


@admin.register(MetaAppConfig)
class MetaAppConfigAdmin(admin.ModelAdmin):
    form = MetaAppConfigForm
    list_display = ("name", "phone_number_id", "display_phone_number", "waba_id", "is_active", "api_version",
                    "has_app_secret", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name", "phone_number_id", "display_phone_number", "waba_id")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "is_active", "phone_number_id", "display_phone_number", "waba_id")}),
        ("Credentials", {"fields": ("access_token", "app_secret", "verify_token")}),
        ("Graph API", {"fields": ("graph_api_url", "api_version", "send_rate_per_second")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    actions = ["sync_templates_now"]

    @admin.display(boolean=True, description="app secret set")
    def has_app_secret(self, obj: MetaAppConfig) -> bool:
        return bool(obj.app_secret)

    @admin.action(description="Sync templates now", permissions=["change"])
    def sync_templates_now(self, request: HttpRequest, queryset: QuerySet[MetaAppConfig]) -> None:
        sync_numbers(request, queryset)


def sync_numbers(request: HttpRequest, configs: QuerySet[MetaAppConfig]) -> None:
    """Sync each number's templates and say what happened; Meta's refusal (a bad token, a
    wrong business account id) is shown as an error and changes nothing."""
    if not configs.exists():
        messages.warning(request, "No business number to sync: add one with its WhatsApp Business Account id.")
    for config in configs:
        try:
            messages.success(request, f"{config}: {sync_templates(config)}")
        except TemplateSyncError as exc:
            messages.error(request, f"Templates not synced, nothing changed. {exc}")


@admin.register(MessageTemplate)
class MessageTemplateAdmin(CannotAdd, CannotChange, CannotDelete, admin.ModelAdmin):
    """Read-only: templates are written in WhatsApp Manager and synced from Meta."""

    list_display = ("name", "language", "category", "status", "variables", "app_config", "synced_at")
    list_filter = ("status", "category", "language", "app_config")
    list_select_related = ("app_config",)
    search_fields = ("name", "template_id")
    fields = ("app_config", "name", "language", "category", "status", "rejected_reason", "parameter_format",
              "template_id", "variable_slots", "pretty_components", "synced_at")
    readonly_fields = fields
    actions = ["sync_selected"]
    change_list_template = "admin/meta_integration/messagetemplate/change_list.html"

    @admin.display(description="variables")
    def variables(self, obj: MessageTemplate) -> int:
        return len(obj.slots())

    @admin.display(description="variable slots")
    def variable_slots(self, obj: MessageTemplate) -> str:
        return ", ".join(f"{slot.key} ({slot.label})" for slot in obj.slots()) or "none"

    @admin.display(description="components")
    def pretty_components(self, obj: MessageTemplate) -> str:
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>",
                           json.dumps(obj.components, indent=2, ensure_ascii=False))

    def has_sync_permission(self, request: HttpRequest) -> bool:
        """Syncing writes templates: for those who may change business numbers."""
        return request.user.has_perm("meta_integration.change_metaappconfig")

    @admin.action(description="Sync templates now (the selected templates' numbers)", permissions=["sync"])
    def sync_selected(self, request: HttpRequest, queryset: QuerySet[MessageTemplate]) -> None:
        sync_numbers(request, MetaAppConfig.objects.filter(pk__in=queryset.values("app_config_id")))

    def get_urls(self) -> list[Any]:
        sync = self.admin_site.admin_view(self.sync_view)
        return [path("sync/", sync, name="meta_integration_messagetemplate_sync"), *super().get_urls()]

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        """The changelist's "Sync templates now" button: every active number (POST only)."""
        if request.method == "POST" and self.has_sync_permission(request):
            sync_numbers(request, MetaAppConfig.objects.filter(is_active=True).exclude(waba_id=""))
        return HttpResponseRedirect(reverse("admin:meta_integration_messagetemplate_changelist"))


@admin.register(WebhookEvent)
class WebhookEventAdmin(CannotAdd, CannotChange, admin.ModelAdmin):
    """Read-only: the log is evidence of what Meta sent, not something to edit."""

    list_display = ("received_at", "app_config", "message_count", "status_count", "summary")
    list_filter = ("app_config", "received_at")
    list_select_related = ("app_config",)
    search_fields = ("summary",)
    date_hierarchy = "received_at"
    fields = ("received_at", "app_config", "message_count", "status_count", "summary", "pretty_payload")
    readonly_fields = fields

    @admin.display(description="payload")
    def pretty_payload(self, obj: WebhookEvent) -> str:
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>",
                           json.dumps(obj.payload, indent=2, ensure_ascii=False))
