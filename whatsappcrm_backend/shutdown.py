"""A worker asked to stop stops within ``WORKER_SHUTDOWN_GRACE_SECONDS``, broker or not.

Why: Celery's warm shutdown can wait forever when the broker is gone. Seen on the gevent
worker with Redis dead: the heartbeat greenlet sits in kombu's reconnect loop holding the
event dispatcher's lock, and the shutdown waits for that lock; SIGTERM was ignored and a
devstack killed with SIGKILL left the worker orphaned. Running tasks are not at risk from
the deadline: with ``acks_late`` a message not acknowledged is redelivered.

The deadline is an OS thread (not a greenlet: it must fire even if the gevent hub is
stuck), armed by ``worker_shutting_down`` in the worker's main process. When it fires it
logs, kills the pool's child processes (prefork) and exits with ``EXIT_CODE``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import Any

logger = logging.getLogger(__name__)

EXIT_CODE = 70  # EX_SOFTWARE: the worker did not shut down cleanly

_armed = False


def _original(module: str, name: str) -> Any:
    """``module.name`` as it was before gevent's monkey-patching (or as it is, without gevent)."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        return monkey.get_original(module, name)
    return getattr(__import__(module), name)


def _expire(grace: float) -> None:
    _original("time", "sleep")(grace)
    try:
        logger.error("worker: shutdown did not finish within WORKER_SHUTDOWN_GRACE_SECONDS=%s; exiting", grace)
        for handler in logging.getLogger().handlers:
            handler.flush()
        from billiard.process import active_children

        for child in active_children():  # prefork: no orphaned pool processes
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGKILL)
    finally:
        os._exit(EXIT_CODE)


def arm_shutdown_deadline(grace: float) -> bool:
    """Exit the process ``grace`` seconds from now unless it has exited by then. Once per process."""
    global _armed
    if _armed:
        return False
    _armed = True
    _original("_thread", "start_new_thread")(_expire, (grace,))
    return True


def _on_worker_shutting_down(**_: Any) -> None:
    from django.conf import settings

    arm_shutdown_deadline(settings.WORKER_SHUTDOWN_GRACE_SECONDS)


def connect_shutdown_deadline() -> None:
    """Arm the deadline whenever a worker starts shutting down (warm or cold). Idempotent."""
    from celery import signals

    signals.worker_shutting_down.connect(
        _on_worker_shutting_down, dispatch_uid="whatsappcrm.shutdown_deadline", weak=False
    )
