from __future__ import annotations

from django.apps import AppConfig


class InboxConfig(AppConfig):
    """The operators' inbox inside Django admin (``/admin/inbox/``)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "inbox"

    def ready(self) -> None:
        from django.contrib import admin

        # The admin index shows how many conversations wait for a human and how many messages
        # failed (inbox/templates/inbox/admin_index.html extends admin's own index).
        admin.site.index_template = "inbox/admin_index.html"
