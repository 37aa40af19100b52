"""Shared fixtures: real Redis, real Celery workers started from docker-compose.yml."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib
from django.conf import settings

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
@pytest.fixture(scope="module")
def io_worker(django_db_setup, django_db_blocker):
    """The gevent I/O worker exactly as compose runs it, on the test database and broker."""
    from tests.workers import start_worker

    purge_project_queues()
    worker = start_worker("celery_io_worker")
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def cpu_worker(django_db_setup, django_db_blocker):
    """The prefork CPU worker exactly as compose runs it."""
    from tests.workers import start_worker

    worker = start_worker("celery_cpu_worker")
    yield worker
    worker.stop()


@pytest.fixture
def probe_key(redis_client) -> Iterator[str]:
    key = f"test:probe:{uuid.uuid4().hex}"
    yield key
    redis_client.delete(key)


def _broker_is_idle(client: redis_lib.Redis) -> bool:
    """No message waiting on a project queue and none taken by a worker but not yet acknowledged."""
    from whatsappcrm_backend.topology import REDIS_PRIORITY_STEPS

    sep = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("sep", ":")
    keys = [name if step == 0 else f"{name}{sep}{step}" for name in topology.QUEUES for step in REDIS_PRIORITY_STEPS]
    pipe = client.pipeline()
    for key in keys:
        pipe.llen(key)
    pipe.hlen("unacked")
    return not any(pipe.execute())


@pytest.fixture(autouse=True)
def _quiesce_workers_before_flush(request):
    """Real-worker tests: let in-flight tasks finish before pytest-django truncates the tables.

    A task still writing while the test database is flushed deadlocks the TRUNCATE on
    PostgreSQL. Teardown runs before the database fixture's (this fixture depends on it).
    """
    marker = request.node.get_closest_marker("django_db")
    uses_workers = request.node.get_closest_marker("workers") is not None
    if not (marker and marker.kwargs.get("transaction") and uses_workers):
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    if settings.CELERY_BROKER_URL.split("://", 1)[0] not in {"redis", "rediss"}:
        return
    import time

    client = redis_lib.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        purge_project_queues()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not _broker_is_idle(client):
            time.sleep(0.1)
    finally:
        client.close()
