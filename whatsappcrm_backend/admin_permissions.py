"""What staff may not do on an admin page, as mixins that compose.

Many pages show records the system writes and people only read (webhook logs, status events,
ledger entries, audit trails) or rows that must never be deleted because others refer to them.
Each page says so by its bases, ``class LedgerEntryAdmin(CannotAdd, CannotChange, CannotDelete,
admin.ModelAdmin)``, instead of repeating the same ``return False`` methods.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class CannotAdd:
    """Rows are created by the system (a webhook, a task, a sync), never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CannotChange:
    """The record is evidence of what happened; the page shows it read-only."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CannotDelete:
    """Other rows refer to it or it is an audit record: deactivate, never delete."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
