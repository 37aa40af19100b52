"""Conversation tasks: sending and the outbox sweepers. Thin: each calls one service function.

``send_message`` carries what the inline send in ``flows.process_message`` could not finish
at once: a retry after a transient error, a refused throughput token, the next part of a
reply after its gap, and whatever the sweeper finds unsent. Queue, priority and time limits
come from the topology table.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import redis as redis_lib
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

from conversations.models import MessageMedia
from conversations.services import delivery, inbound, media, outbound
from whatsappcrm_backend.celery import project_task

logger = logging.getLogger(__name__)

# Infrastructure blips (database, Redis) around the HTTP call: retry the task. The send lease
# in the database keeps such a retry from sending twice.
_INFRA_ERRORS = (OperationalError, InterfaceError, redis_lib.ConnectionError, redis_lib.TimeoutError)


@project_task(
    "conversations.send_message",
    bind=True,
    autoretry_for=_INFRA_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
)
def send_message(self, message_id: int) -> str:
    """Send the stored outbound message ``message_id`` and what follows it in its contact's chain."""
    run = delivery.RunInfo.current(self.request.id, self.request.hostname)
    return delivery.send_chain(message_id, run).result.value


@project_task("conversations.sweep_inbound")
def sweep_inbound() -> dict[str, int]:
    """Re-enqueue inbound messages accepted with a 200 but never processed (e.g. broker was down),
    and media downloads that never started or stalled."""
    return {
        "enqueued": inbound.enqueue_unprocessed(older_than=timedelta(seconds=settings.INBOUND_SWEEP_AFTER_SECONDS)),
        "statuses_applied": inbound.reconcile_status_events(),
        "media_enqueued": media.enqueue_missing(),
    }


@project_task("conversations.sweep_outbound")
def sweep_outbound() -> int:
    """Re-enqueue replies written but never sent (broker down, task lost, a run that died)."""
    return outbound.enqueue_unsent()


@project_task("conversations.download_media", bind=True)
def download_media(self, message_id: int) -> str:
    """Download, check and store the file of an inbound media message (below the replies).
    Meta or the network failing is retried with backoff; after the last try the file is
    marked failed with the reason."""
    try:
        row = media.download(message_id)
    except (media.MediaError, *_INFRA_ERRORS) as exc:
        if self.request.retries >= self.max_retries:
            row = MessageMedia.objects.filter(message_id=message_id).first()
            if row is not None:
                media.mark_failed(row, f"gave up after {self.request.retries + 1} attempts: {exc}")
            return "failed"
        countdown = min(settings.META_RETRY_MAX_SECONDS, 5 * settings.META_RETRY_BASE_SECONDS * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from exc
    return row.status if row is not None else "not media"


@worker_ready.connect  # gevent/solo: the process that runs the tasks
@worker_process_init.connect  # prefork: each child (a forked client is rebuilt anyway)
def _warm_up(**kwargs: Any) -> None:
    try:
        delivery.warm_up()
    except Exception:  # never stop a worker from starting; the first send retries it
        logger.exception("could not warm up the Graph API client")
