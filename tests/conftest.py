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
