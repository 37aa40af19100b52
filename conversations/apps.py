from __future__ import annotations

import sqlite3
from typing import Any

from django.apps import AppConfig
from django.core import checks

# The inbound store writes contacts, messages and status events with INSERT ... ON CONFLICT
# ... RETURNING (conversations/services/inbound.py); SQLite has RETURNING from 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)


class ConversationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "conversations"

    def ready(self) -> None:
        from conversations.gauges import message_gauges
        from conversations.services.inbound import InboundStore
        from meta_integration import ports
        from whatsappcrm_backend import metrics

        # meta_integration imports no app: the webhook reaches conversations through the inbound port.
        ports.register_inbound_sink(InboundStore())
        # Nor does the metrics module: each app registers the gauges it reads from its own tables.
        metrics.register_gauges(message_gauges)


@checks.register(checks.Tags.database)
def sqlite_supports_returning(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Refuse an SQLite too old for the inbound store's statements, before a webhook fails on it."""
    from django.db import connections

    databases = kwargs.get("databases") or []
    problems = []
    for alias in databases:
        if connections[alias].vendor == "sqlite" and sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            problems.append(checks.Error(
                f"SQLite {sqlite3.sqlite_version} is too old: the inbound store needs "
                f"{'.'.join(map(str, MIN_SQLITE_VERSION))} or later (INSERT ... RETURNING)",
                hint="Use a Python built with a newer SQLite, or PostgreSQL (DATABASE_URL).",
                id="conversations.E001",
            ))
    return problems
