"""Celery tasks at the Meta boundary: housekeeping of the webhook audit log, template sync.

Sending lives in ``conversations`` (``conversations.send_message``), next to the rows it sends.
"""

from __future__ import annotations

from meta_integration import services, templates_sync
from whatsappcrm_backend.celery import project_task


@project_task("meta_integration.purge_webhook_events")
def purge_webhook_events() -> int:
    """Beat: delete webhook audit rows older than WEBHOOK_EVENT_RETENTION_DAYS."""
    return services.purge_webhook_events()


@project_task("meta_integration.sync_templates")
def sync_templates() -> dict[str, str]:
    """Beat (and on demand): sync every active number's message templates from Meta."""
    return templates_sync.sync_all()
