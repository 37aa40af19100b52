"""Real workers, real broker: each queue is consumed by its worker, priorities and isolation hold."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.probes import wait_for_records
from whatsappcrm_backend import topology
from whatsappcrm_backend.celery import enqueue
from whatsappcrm_backend.tasks import probe_cpu, probe_io

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def test_each_queue_is_consumed_by_the_worker_compose_assigns(io_worker, cpu_worker, redis_client, probe_key):
    enqueue(probe_io, probe_key, "io")
    enqueue(probe_cpu, probe_key, "cpu")
    records = {r["label"]: r for r in wait_for_records(redis_client, probe_key, 2)}
    assert records["io"]["hostname"].startswith(io_worker.hostname_prefix)
    assert records["io"]["queue"] == topology.IO_QUEUE
    assert records["cpu"]["hostname"].startswith(cpu_worker.hostname_prefix)
    assert records["cpu"]["queue"] == topology.CPU_QUEUE
    assert records["cpu"]["pid"] != cpu_worker.process.pid  # ran in a prefork child, not the main process


def _priority_outcome(records: list[dict]) -> dict:
    high = next(r for r in records if r["label"] == "high")
    lows = sorted((r for r in records if r["label"] == "low"), key=lambda r: r["started_at"])
    return {
        "high_wait_s": high["started_at"] - high["sent_at"],
        "backlog_drain_s": lows[-1]["finished_at"] - lows[0]["started_at"],
        "lows_started_after_high": sum(1 for r in lows if r["started_at"] > high["started_at"]),
        "lows": len(lows),
    }


def run_priority_scenario(key: str, n_low: int, low_sleep: float) -> None:
    """Queue a LOW backlog on the I/O queue, then one HIGH task (same code on every broker)."""
    for _ in range(n_low):
        enqueue(probe_io, key, "low", low_sleep, time.time(), priority=topology.Priority.LOW)
    enqueue(probe_io, key, "high", 0.0, time.time(), priority=topology.Priority.HIGH)


N_LOW, LOW_SLEEP = 400, 0.1  # 400 x 100 ms on 20 green threads: a 2 s backlog
N_LOW_AMQP = 200  # RabbitMQ under a green pool drains far slower (see the closing note): a smaller backlog


def test_high_priority_overtakes_a_low_backlog_on_redis(io_worker, redis_client, probe_key, capsys):
    run_priority_scenario(probe_key, N_LOW, LOW_SLEEP)
    outcome = _priority_outcome(wait_for_records(redis_client, probe_key, N_LOW + 1))
    with capsys.disabled():
        print(f"\n[priority/redis] {json.dumps(outcome)}")
    # Started before the backlog drained: most of the backlog was still waiting.
    assert outcome["lows_started_after_high"] > N_LOW // 2, outcome


AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _amqp_available() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


def _wait_for_label(client, key: str, label: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in client.lrange(key, 0, -1):
            record = json.loads(raw)
            if record["label"] == label:
                return record
        time.sleep(0.05)
    raise AssertionError(f"no {label!r} probe record in {key} after {timeout}s")


@pytest.mark.skipif(not _amqp_available(), reason="RabbitMQ is not listening on 127.0.0.1:5672")
def test_high_priority_overtakes_a_low_backlog_on_rabbitmq(django_db_setup, redis_client, probe_key, capsys):
    """Same scenario on RabbitMQ, where 9 is consumed first: the named priority maps accordingly.

    The sender runs in its own process so that its settings, like the worker's, are
    built for RabbitMQ (queues declared with x-max-priority, priorities mapped 9-first).
    The backlog is not waited out (a green pool drains RabbitMQ slowly: ~20 s): once the
    HIGH task ran the worker is stopped warm, so every LOW task that had started finished
    and recorded itself; the others had not started before HIGH.
    """
    from tests.support.workers import run_django_snippet, start_worker, worker_env

    amqp = {"CELERY_BROKER_URL": AMQP_URL}
    delete_queues = (
        "from whatsappcrm_backend.celery import app\n"
        "with app.connection_for_write() as conn:\n"
        "    for queue in ('celery', 'football_data'):\n"
        "        try: conn.default_channel.queue_delete(queue)\n"
        "        except conn.channel_errors: pass\n"
    )
    # Queues left by an earlier run may have been declared differently: start clean.
    run_django_snippet(delete_queues, worker_env(amqp))
    worker = start_worker("celery_io_worker", env=amqp)
    try:
        run_django_snippet(
            "from tests.test_worker_topology import run_priority_scenario\n"
            f"run_priority_scenario({probe_key!r}, {N_LOW_AMQP}, {LOW_SLEEP})\n",
            worker_env(amqp),
        )
        high = _wait_for_label(redis_client, probe_key, "high", timeout=120)
    finally:
        worker.stop()
        run_django_snippet(delete_queues, worker_env(amqp))  # the rest of the backlog
    lows = [r for r in map(json.loads, redis_client.lrange(probe_key, 0, -1)) if r["label"] == "low"]
    outcome = {
        "high_wait_s": high["started_at"] - high["sent_at"],
        "lows_started_before_high": sum(1 for r in lows if r["started_at"] < high["started_at"]),
        "lows": N_LOW_AMQP,
    }
    outcome["lows_started_after_high"] = N_LOW_AMQP - outcome["lows_started_before_high"]
    with capsys.disabled():
        print(f"\n[priority/rabbitmq] {json.dumps(outcome)}")
    assert outcome["lows_started_after_high"] > N_LOW_AMQP // 2, outcome


def test_io_queue_does_not_wait_behind_a_cpu_backlog(io_worker, cpu_worker, redis_client, probe_key, capsys):
    n_cpu, cpu_sleep = 12, 1.0  # 12 s of work on a concurrency-2 prefork worker: a 6 s backlog
    for _ in range(n_cpu):
        enqueue(probe_cpu, probe_key, "cpu", cpu_sleep, time.time())
    time.sleep(0.2)  # the CPU worker is now busy and the backlog is queued
    enqueue(probe_io, probe_key, "io", 0.0, time.time())
    io = next(r for r in wait_for_records(redis_client, probe_key, 1, timeout=10) if r["label"] == "io")
    wait = io["started_at"] - io["sent_at"]
    records = wait_for_records(redis_client, probe_key, n_cpu + 1, timeout=60)
    cpu_runs = [r for r in records if r["label"] == "cpu"]
    with capsys.disabled():
        print(f"\n[isolation] io wait {wait * 1000:.1f} ms; cpu backlog drained in "
              f"{max(r['finished_at'] for r in cpu_runs) - min(r['started_at'] for r in cpu_runs):.1f} s")
    assert io["hostname"].startswith(io_worker.hostname_prefix)
    assert io["started_at"] < max(r["started_at"] for r in cpu_runs)
    assert all(r["hostname"].startswith(cpu_worker.hostname_prefix) for r in cpu_runs)
