"""Flow tasks. Thin: each hands its argument to ``flows.services``, where the work and its
transaction live (so tests and the admin call exactly what the worker runs)."""

from __future__ import annotations

from flows import services
from whatsappcrm_backend.celery import project_task


@project_task("flows.process_message")
def process_message(message_id: int) -> None:
    """Run the contact's inbound messages up to this one through the bot, in arrival order."""
    services.process_inbound(message_id)


@project_task("flows.expire_sessions")
def expire_sessions() -> int:
    """Beat: end sessions idle longer than FLOW_SESSION_TIMEOUT, telling each user once."""
    return services.expire_sessions()
