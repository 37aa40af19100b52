"""Celery tasks at the Meta boundary. Thin on purpose: the work is in ``services_outbound``.

Queue, priority, time limits and ``max_retries`` come from the topology table. A task that
must run again (a transient error, no throughput token, a recipient in back-off) retries
itself with a countdown, so no worker slot is held while waiting. The send task's attempt
budget is counted in the database (``Message.attempts``), not in Celery's retry counter,
because waiting for a token is not an attempt and redeliveries must count too.
"""

from __future__ import annotations

import logging
from typing import Any

import redis as redis_lib
from celery.signals import worker_process_init, worker_ready
from django.db import InterfaceError, OperationalError

from meta_integration import services, services_outbound
from whatsappcrm_backend.celery import project_task

logger = logging.getLogger(__name__)

# Infrastructure blips (database, Redis) before or after the HTTP call: retry the task. The
# attempt record in Redis keeps such a retry from sending twice.
_INFRA_ERRORS = (OperationalError, InterfaceError, redis_lib.ConnectionError, redis_lib.TimeoutError)


@project_task(
    "meta_integration.send_message",
    bind=True,
    autoretry_for=_INFRA_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
)
def send_message(self, message_id: int) -> str:
    """Send the stored outbound message ``message_id`` (HIGH priority, I/O queue)."""
    run = services_outbound.RunInfo.current(self.request.id, self.request.hostname)
    outcome = services_outbound.deliver(message_id, run)
    if outcome.reschedule:
        raise self.retry(countdown=outcome.delay, max_retries=None)
    return outcome.result.value


@project_task("meta_integration.send_read_receipt", bind=True)
def send_read_receipt(self, app_config_id: int, wamid: str, typing_indicator: bool = False) -> str:
    """Mark an inbound message read, optionally with a typing indicator (NORMAL priority)."""
    outcome = services_outbound.mark_read(
        app_config_id, wamid, typing_indicator=typing_indicator, retries_done=self.request.retries
    )
    if outcome.reschedule:
        raise self.retry(countdown=outcome.delay)
    return outcome.result.value


@project_task("meta_integration.purge_webhook_events")
def purge_webhook_events() -> int:
    """Beat: delete webhook audit rows older than WEBHOOK_EVENT_RETENTION_DAYS."""
    return services.purge_webhook_events()


@worker_ready.connect  # gevent/solo: the process that runs the tasks
@worker_process_init.connect  # prefork: each child (a forked client is rebuilt anyway)
def _warm_up(**kwargs: Any) -> None:
    try:
        services_outbound.warm_up()
    except Exception:  # never stop a worker from starting; the first send retries it
        logger.exception("could not warm up the Graph API client")
