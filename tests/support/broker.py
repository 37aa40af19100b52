"""The test broker between tests: empty the project's queues, settle what workers hold,
clear what a killed worker left unacknowledged. Used by conftest.py's fixtures and by
tests that start their own workers.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import redis as redis_lib
from django.conf import settings

from tests.support import workers
from whatsappcrm_backend import topology
from whatsappcrm_backend.celery import app as celery_app


def purge_project_queues() -> None:
    """Drop every message waiting on the project's queues (all priority levels)."""
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in topology.QUEUES:
            try:
                channel.queue_purge(name)
            except celery_app.connection_for_write().channel_errors:  # not declared yet: nothing to purge
                pass


UNACKED_KEY = "unacked"  # kombu's Redis transport: messages taken by a worker, by delivery tag
_revoked: set[str] = set()  # held tasks revoked by settle_broker in this session


def _unacked_tasks(client: redis_lib.Redis) -> tuple[set[str], set[str]]:
    """Ids of tasks a worker has taken but not acknowledged: (running or due, held for a later ETA).

    A task with a countdown is taken at once and held by the worker until its ETA; it is not
    running, and waiting for it would wait out its countdown (up to the 15 s bound here).
    """
    now = datetime.now(UTC)
    running: set[str] = set()
    held: set[str] = set()
    for raw in client.hvals(UNACKED_KEY):
        try:
            headers = json.loads(raw)[0]["headers"]
            task_id, eta = headers["id"], headers.get("eta")
            due = eta is None or datetime.fromisoformat(eta) <= now
        except (ValueError, KeyError, IndexError, TypeError):
            running.add(str(raw))  # not a Celery task message: count it as busy
            continue
        (running if due else held).add(task_id)
    return running, held


def settle_broker(client: redis_lib.Redis, timeout: float) -> bool:
    """Drop waiting messages, revoke tasks held for a later ETA, wait for running tasks to end.

    A revoked task is discarded by its worker when its ETA comes, so it cannot write into a
    later test. True once nothing runs; False if tasks still run after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    ask_workers_at = time.monotonic() + 1.0
    while True:
        purge_project_queues()
        running, held = _unacked_tasks(client)
        newly_held = held - _revoked
        if newly_held:
            celery_app.control.revoke(sorted(newly_held))
            _revoked.update(newly_held)
        if not (running - _revoked) and workers.queues_are_empty(client):
            return True
        if time.monotonic() > deadline:
            return False
        if time.monotonic() > ask_workers_at:
            _forget_finished(client, running - _revoked)
            ask_workers_at = time.monotonic() + 1.0
        time.sleep(0.05)


def _forget_finished(client: redis_lib.Redis, task_ids: set[str]) -> None:
    """Drop unacknowledged entries of tasks that no worker runs, holds or has reserved.

    The gevent worker now and then leaves a finished task's entry unacknowledged (seen with
    400 short probe tasks: 1-3 entries left although they ran). Waiting for it would cost
    this and every later test the full bound. Nothing is dropped unless a worker answered:
    a worker too busy to answer may be running them.
    """
    inspector = celery_app.control.inspect(timeout=1.0)
    answers = [answer for answer in (inspector.active(), inspector.reserved(), inspector.scheduled()) if answer]
    if len(answers) < 3:
        return
    known = {
        task.get("id") or (task.get("request") or {}).get("id")
        for answer in answers
        for tasks in answer.values()
        for task in tasks
    }
    stale = task_ids - known
    if not stale:
        return
    for tag, raw in client.hgetall(UNACKED_KEY).items():
        try:
            if json.loads(raw)[0]["headers"]["id"] in stale:
                client.hdel(UNACKED_KEY, tag)
                client.zrem(f"{UNACKED_KEY}_index", tag)
        except (ValueError, KeyError, IndexError, TypeError):
            continue


def clear_broker() -> None:
    """After the last worker of a module stopped: drop every message, waiting or taken."""
    purge_project_queues()
    if broker_family() not in {"redis", "rediss"}:
        return
    client = redis_lib.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.delete(UNACKED_KEY, f"{UNACKED_KEY}_index", f"{UNACKED_KEY}_mutex")
    finally:
        client.close()


def broker_family() -> str:
    return settings.CELERY_BROKER_URL.split("://", 1)[0]


def discard_workers(*started: workers.WorkerProcess) -> None:
    """Kill workers whose work the test has already checked, and drop what they held.

    A warm shutdown (~3 s for an idle gevent worker) buys nothing once every send the test
    waits for is recorded: the broker is cleared as after the module-scoped workers.
    """
    for worker in started:
        worker.kill()
    clear_broker()
