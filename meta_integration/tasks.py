"""Celery tasks at the Meta boundary: housekeeping of the webhook audit log.

Sending lives in ``conversations`` (``conversations.send_message``), next to the rows it sends.
"""

from __future__ import annotations

from meta_integration import webhook
from whatsappcrm_backend.celery import project_task


@project_task("meta_integration.purge_webhook_events")
def purge_webhook_events() -> int:
    """Beat: delete webhook audit rows older than WEBHOOK_EVENT_RETENTION_DAYS."""
    return webhook.purge_webhook_events()
