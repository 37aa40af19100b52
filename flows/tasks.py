"""Flow tasks. Thin: each hands its arguments to a service, where the work and its
transaction live (so tests and the admin call exactly what the worker runs)."""

from __future__ import annotations

from conversations.services import delivery
from flows.services import processing, sessions
from whatsappcrm_backend.celery import project_task


@project_task("flows.process_message", bind=True)
def process_message(self, message_id: int, contact_id: int | None = None) -> None:
    """Answer the contact's inbound messages up to this one, in arrival order, and send the
    replies and the read receipt in this same run (HIGH priority: the reply path)."""
    run = delivery.RunInfo.current(self.request.id, self.request.hostname)
    processing.answer_inbound(message_id, contact_id, run)


@project_task("flows.expire_sessions")
def expire_sessions() -> int:
    """Beat: end sessions idle longer than FLOW_SESSION_TIMEOUT, telling each user once."""
    return sessions.expire_sessions()
