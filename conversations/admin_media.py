"""Admin list of the files users sent: which were stored, which were refused and why."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from conversations.models import MediaStatus, MessageMedia
from whatsappcrm_backend.admin_permissions import CannotAdd, CannotChange


@admin.register(MessageMedia)
class MessageMediaAdmin(CannotAdd, CannotChange, admin.ModelAdmin):
    """Read-only: rows are written by the download task."""

    list_display = ("message_id", "message_type", "mime_type", "size", "status", "error", "created_at", "open")
    list_filter = ("status", "mime_type", "message__message_type")
    search_fields = ("media_id", "message__contact__wa_id", "filename")
    list_select_related = ("message",)
    fields = ("message", "media_id", "mime_type", "size", "sha256", "filename", "status", "error", "attempts",
              "created_at", "updated_at", "open")
    readonly_fields = fields

    @admin.display(description="type")
    def message_type(self, obj: MessageMedia) -> str:
        return obj.message.message_type

    @admin.display(description="file")
    def open(self, obj: MessageMedia) -> str:
        if obj.status != MediaStatus.STORED:
            return "-"
        return format_html('<a href="{}">open</a>', reverse("conversations:media", args=[obj.message_id]))
