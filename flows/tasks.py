"""Flow tasks. Thin: look the message up and hand it to the flow services."""

from __future__ import annotations

from django.utils import timezone

from conversations.models import Message
from whatsappcrm_backend.celery import project_task


@project_task("flows.process_message")
def process_message(message_id: int) -> None:
    """Run one inbound message through the bot (placeholder until the flow engine lands)."""
    Message.objects.filter(pk=message_id, processed_at__isnull=True).update(processed_at=timezone.now())
