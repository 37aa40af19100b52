"""Shared fixtures: real Redis, real Celery workers started from docker-compose.yml."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis as redis_lib
from django.conf import settings

from tests import workers
from whatsappcrm_backend import topology
from whatsappcrm_backend.celery import app as celery_app


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def purge_project_queues() -> None:
    """Drop every message waiting on the project's queues (all priority levels)."""
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in topology.QUEUES:
            try:
                channel.queue_purge(name)
            except celery_app.connection_for_write().channel_errors:  # not declared yet: nothing to purge
                pass


# Workers live for one test module: a module that starts its own worker (another pool, a
# crash test) must be the only consumer of the queue, not share it with one left running.
# At the module's end nothing a worker still holds matters (the last test's teardown waited
# for running tasks, see below): it is killed at once and what it held is dropped, instead of
# a warm shutdown (~3 s for an idle gevent worker) that puts held messages back on the queue
# for the next module.
@pytest.fixture(scope="module")
def io_worker(django_db_setup, django_db_blocker):
    """The gevent I/O worker exactly as compose runs it, on the test database and broker."""
    from tests.workers import start_worker

    purge_project_queues()
    worker = start_worker("celery_io_worker")
    yield worker
    worker.kill()
    clear_broker()


@pytest.fixture(scope="module")
def cpu_worker(django_db_setup, django_db_blocker):
    """The prefork CPU worker exactly as compose runs it."""
    from tests.workers import start_worker

    purge_project_queues()
    worker = start_worker("celery_cpu_worker")
    yield worker
    worker.kill()
    clear_broker()


@pytest.fixture
def broker():
    """A broker nothing consumes (its own Redis database): every task a test publishes stays
    there to be read back (``tests.test_inbound_support.isolated_broker``)."""
    from tests.test_inbound_support import isolated_broker

    with isolated_broker() as isolated:
        yield isolated


@pytest.fixture
def probe_key(redis_client) -> Iterator[str]:
    key = f"test:probe:{uuid.uuid4().hex}"
    yield key
    redis_client.delete(key)


UNACKED_KEY = "unacked"  # kombu's Redis transport: messages taken by a worker, by delivery tag
_revoked: set[str] = set()  # held tasks revoked by _settle_broker in this session


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


def _settle_broker(client: redis_lib.Redis, timeout: float) -> bool:
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
    if _broker_family() not in {"redis", "rediss"}:
        return
    client = redis_lib.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.delete(UNACKED_KEY, f"{UNACKED_KEY}_index", f"{UNACKED_KEY}_mutex")
    finally:
        client.close()


def _broker_family() -> str:
    return settings.CELERY_BROKER_URL.split("://", 1)[0]


@pytest.fixture(autouse=True)
def _quiesce_workers_before_flush(request):
    """Real-worker tests: let in-flight tasks finish before pytest-django truncates the tables.

    A task still writing while the test database is flushed deadlocks the TRUNCATE on
    PostgreSQL. Teardown runs before the database fixture's (this fixture depends on it).
    Tasks held for a later ETA are revoked rather than waited for.
    """
    marker = request.node.get_closest_marker("django_db")
    uses_workers = request.node.get_closest_marker("workers") is not None
    if not (marker and marker.kwargs.get("transaction") and uses_workers):
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    if _broker_family() not in {"redis", "rediss"}:
        return
    client = redis_lib.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        _settle_broker(client, timeout=15)
    finally:
        client.close()
