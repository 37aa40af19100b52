"""/healthz and /readyz against real workers, a real broker and broken brokers.

Each test that needs a broker gets its own embedded redis-server: the session's
``io_worker``/``cpu_worker`` fixtures consume the shared broker, and a readiness test
that stops a worker must not be fooled by (or disturb) workers it did not start.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.urls import path

from whatsappcrm_backend import health, topology

urlpatterns = [
    path("healthz", health.healthz),
    path("readyz", health.readyz),
]

pytestmark = pytest.mark.urls("tests.test_health")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never answers: the broker that hangs instead of refusing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    listener.close()


def _readyz(client) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = client.get("/readyz")
    return response.status_code, response.json(), time.monotonic() - started


def test_healthz_answers_without_touching_dependencies(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_readyz_reports_the_queue_whose_worker_stopped(client, private_redis):
    from tests.support.workers import launch_worker, start_workers

    env = {"REDIS_URL": private_redis, "CELERY_BROKER_URL": private_redis}
    io, cpu = start_workers([launch_worker("celery_io_worker", env=env), launch_worker("celery_cpu_worker", env=env)])
    try:
        # A worker answers the control bus a moment after it logs "ready": allow a few probes.
        deadline = time.monotonic() + 20
        while True:
            status, body, _ = _readyz(client)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 200, body
        assert body["status"] == "ok"
        assert body["problems"] == []
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["broker"] == "ok"
        assert io.hostname_prefix in body["checks"][f"queue:{topology.IO_QUEUE}"]
        assert cpu.hostname_prefix in body["checks"][f"queue:{topology.CPU_QUEUE}"]

        cpu.stop()
        status, body, elapsed = _readyz(client)
        assert status == 503, body
        assert body["status"] == "unavailable"
        assert body["problems"] == ["queue football_data: no live consumer"]
        assert body["checks"][f"queue:{topology.IO_QUEUE}"].startswith("ok")
        assert body["checks"]["database"] == "ok"
        assert elapsed < health.DEADLINE_SECONDS + 1
    finally:  # their broker is this test's own: nothing they hold matters any more
        cpu.kill()
        io.kill()


@pytest.mark.django_db(transaction=True)
def test_readyz_without_any_worker_names_every_queue(client, private_redis):
    status, body, _ = _readyz(client)
    assert status == 503
    assert sorted(body["problems"]) == sorted(f"queue {q}: no live consumer" for q in topology.QUEUES)
    assert body["checks"]["broker"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_readyz_503_fast_when_the_broker_refuses_connections(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    status, body, elapsed = _readyz(client)
    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("OperationalError")
    assert "Connection refused" in body["checks"]["broker"]
    for queue in topology.QUEUES:
        assert body["checks"][f"queue:{queue}"].startswith("not checked: broker unreachable")
    assert elapsed < 2.0


@pytest.mark.django_db(transaction=True)
def test_readyz_503_within_the_deadline_when_the_broker_never_answers(client, settings, silent_server):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    status, body, elapsed = _readyz(client)
    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] != "ok"
    assert any(problem.startswith("broker: ") for problem in body["problems"])
    assert elapsed < health.DEADLINE_SECONDS + 1.0


def test_readyz_503_names_the_database_when_it_refuses(client, private_redis):
    # No django_db mark: pytest-django makes every database access raise, which is
    # exactly what a driver does when the server is gone.
    status, body, _ = _readyz(client)
    assert status == 503
    assert body["checks"]["database"] != "ok"
    assert body["problems"][0].startswith("database: ")
    assert body["checks"]["broker"] == "ok"


def test_readyz_503_when_the_broker_url_is_unusable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:notaport/0"
    status, body, _ = _readyz(client)
    assert status == 503
    assert body["checks"]["broker"] != "ok"
    assert all(problem for problem in body["problems"])


def test_readiness_deadline_bounds_a_slow_check(settings, silent_server):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    started = time.monotonic()
    result = health.readiness(deadline_seconds=0.3)
    assert time.monotonic() - started < 1.0
    checks = {check.name: check for check in result.checks}
    assert not result.ok
    assert checks["broker"].detail == "no answer before the readiness deadline"
    assert checks["queue:football_data"].problem == "queue football_data: no answer before the readiness deadline"


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_readyz_stops_waiting_once_every_known_worker_answered(client, private_redis):
    """/readyz took 1.02 s on every call: it waited a quiet second for more workers. Once it
    knows how many answer, it stops when they have; a worker that goes away is still reported
    on the next call (nothing is cached)."""
    from tests.support.workers import launch_worker, start_workers

    env = {"REDIS_URL": private_redis, "CELERY_BROKER_URL": private_redis}
    io, cpu = start_workers([launch_worker("celery_io_worker", env=env), launch_worker("celery_cpu_worker", env=env)])
    try:
        deadline = time.monotonic() + 20
        while True:
            status, body, _ = _readyz(client)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 200, body
        assert body["consumer_probe"] == "full"  # the first complete answer: two workers

        for _ in range(3):
            status, body, _ = _readyz(client)
            assert status == 200, body
            assert body["consumer_probe"] == "fast", body
            assert io.hostname_prefix in body["checks"][f"queue:{topology.IO_QUEUE}"]
            assert cpu.hostname_prefix in body["checks"][f"queue:{topology.CPU_QUEUE}"]

        cpu.stop()
        status, body, _ = _readyz(client)
        assert status == 503, body
        assert body["problems"] == ["queue football_data: no live consumer"]
        assert body["consumer_probe"] == "full"
    finally:  # their broker is this test's own: nothing they hold matters any more
        cpu.kill()
        io.kill()
