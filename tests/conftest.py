"""Shared fixtures: real Redis, real Celery workers started from docker-compose.yml, the fake
Graph API, the business number and the shipped flows. Helpers (no fixtures, no tests) are in
the ``tests.support`` package, which pytest does not collect.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib
from django.conf import settings

from tests.support.broker import broker_family, clear_broker, purge_project_queues, settle_broker

collect_ignore = ["support"]  # helpers only: nothing there is a test, whatever it is named


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


# Workers live for one test module: a module that starts its own worker (another pool, a
# crash test) must be the only consumer of the queue, not share it with one left running.
# At the module's end nothing a worker still holds matters (the last test's teardown waited
# for running tasks, see below): it is killed at once and what it held is dropped, instead of
# a warm shutdown (~3 s for an idle gevent worker) that puts held messages back on the queue
# for the next module.
@pytest.fixture(scope="module")
def io_worker(django_db_setup, django_db_blocker):
    """The gevent I/O worker exactly as compose runs it, on the test database and broker."""
    from tests.support.workers import start_worker

    purge_project_queues()
    worker = start_worker("celery_io_worker")
    yield worker
    worker.kill()
    clear_broker()


@pytest.fixture(scope="module")
def cpu_worker(django_db_setup, django_db_blocker):
    """The prefork CPU worker exactly as compose runs it."""
    from tests.support.workers import start_worker

    purge_project_queues()
    worker = start_worker("celery_cpu_worker")
    yield worker
    worker.kill()
    clear_broker()


@pytest.fixture
def broker():
    """A broker nothing consumes (its own Redis database): every task a test publishes stays
    there to be read back (``tests.support.inbound.isolated_broker``)."""
    from tests.support.inbound import isolated_broker

    with isolated_broker() as isolated:
        yield isolated


@pytest.fixture(scope="module")
def gevent_worker(django_db_setup, django_db_blocker):
    """The compose I/O worker with a short retry backoff (``tests.support.outbound``)."""
    from tests.support.outbound import start_io_worker

    worker = start_io_worker()
    yield worker
    worker.kill()  # as io_worker: the last test already waited for running tasks
    clear_broker()


@pytest.fixture(scope="module")
def graph_token() -> str | None:
    """The bearer token the module's fake Graph API accepts (None: any). Override per module."""
    from tests.support.outbound import TOKEN

    return TOKEN


@pytest.fixture(scope="module")
def fake_server(graph_token):
    """The fake Graph API on a real socket, one per module: ``(fake, base url)``."""
    from devtools.fake_graph import start_fake_graph

    fake, server = start_fake_graph(access_token=graph_token)
    yield fake, server.url
    server.stop()


@pytest.fixture
def fake(fake_server):
    """The module's fake Graph API with an empty request log and no faults."""
    fake_api, _url = fake_server
    fake_api.reset()
    return fake_api


@pytest.fixture
def graph_url(fake_server) -> str:
    return fake_server[1]


@pytest.fixture
def app_config(db):
    """The business number the ``simulate`` builders address (``tests.support.inbound``)."""
    from tests.support.inbound import make_app_config

    return make_app_config()


@pytest.fixture
def default_flows(db) -> None:
    """The shipped flows, loaded through the import service (as devstack_seed does)."""
    from tests.support.flows import import_defaults

    import_defaults()


@pytest.fixture
def private_redis(settings) -> Iterator[str]:
    """A fresh redis-server used as this test's broker and metrics store (and thrown away)."""
    from whatsappcrm_backend.embedded_redis import EmbeddedRedis

    with EmbeddedRedis() as server:
        settings.CELERY_BROKER_URL = server.url
        settings.REDIS_URL = server.url
        yield server.url


@pytest.fixture(scope="module")
def base_world(django_db_setup, django_db_blocker):
    """The REST API tests' starting data (``tests.support.api.build_world``), built once per
    module inside a transaction that is rolled back at the end (Django's setUpTestData, for
    pytest): each test runs in a savepoint within it, so all start from the same data."""
    from django.db import transaction

    from tests.support.api import build_world

    with django_db_blocker.unblock(), transaction.atomic():
        built = build_world()
        yield built
        transaction.set_rollback(True)


@pytest.fixture
def world(base_world, db):
    """Fresh objects of the REST API tests' world for this test."""
    from tests.support.api import world_from

    return world_from(base_world)


@pytest.fixture
def probe_key(redis_client) -> Iterator[str]:
    key = f"test:probe:{uuid.uuid4().hex}"
    yield key
    redis_client.delete(key)


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
    if broker_family() not in {"redis", "rediss"}:
        return
    client = redis_lib.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        settle_broker(client, timeout=15)
    finally:
        client.close()
