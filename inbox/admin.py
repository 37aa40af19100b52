"""Admin for what operators manage themselves (canned responses) and read (the audit)."""

from __future__ import annotations

from django.contrib import admin

from inbox.models import AuditEvent, CannedResponse
from whatsappcrm_backend.admin_permissions import CannotAdd, CannotChange, CannotDelete


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ("shortcut", "text", "updated_at")
    search_fields = ("shortcut", "text")


@admin.register(AuditEvent)
class AuditEventAdmin(CannotAdd, CannotChange, CannotDelete, admin.ModelAdmin):
    """Every inbox action: who, what, when. Read-only: the record is the point."""

    list_display = ("created_at", "actor_name", "action", "detail", "conversation")
    list_filter = ("action", "created_at")
    search_fields = ("actor_name", "detail", "conversation__contact__wa_id")
    list_select_related = ("conversation__contact", "conversation__app_config")
