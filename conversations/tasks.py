"""Conversation tasks: the outbox sweepers. Thin: each calls one service function."""

from __future__ import annotations

from datetime import timedelta

from conversations.services import inbound, outbound
from whatsappcrm_backend.celery import project_task


@project_task("conversations.sweep_inbound")
def sweep_inbound() -> dict[str, int]:
    """Re-enqueue inbound messages accepted with a 200 but never processed (e.g. broker was down)."""
    return {
        "enqueued": inbound.enqueue_unprocessed(older_than=timedelta(seconds=30)),
        "statuses_applied": inbound.reconcile_status_events(),
    }


@project_task("conversations.sweep_outbound")
def sweep_outbound() -> int:
    """Re-enqueue outbound messages written but never sent (broker was down when they committed)."""
    return outbound.enqueue_unsent(older_than=timedelta(minutes=5))
