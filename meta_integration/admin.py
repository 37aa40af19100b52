"""Admin for business numbers and the webhook audit log.

Secrets (access token, app secret) are never rendered: not in lists, not in forms. A
form field left blank keeps the stored value, so editing a name cannot erase a secret.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from meta_integration.models import MetaAppConfig, WebhookEvent

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

    @admin.display(boolean=True, description="app secret set")
    def has_app_secret(self, obj: MetaAppConfig) -> bool:
        return bool(obj.app_secret)


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
