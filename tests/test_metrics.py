"""Prometheus metrics and trace logging, measured from real workers, a real broker and real requests.

The real-worker tests start the compose worker commands with ``-A tests.test_metrics``
instead of ``-A whatsappcrm_backend``: this module exposes the project's Celery app as
``app`` and connects the metrics and logging hooks when imported, exactly as
``ProjectConfig.ready`` does in production, so the tests do not depend on that wiring.
Each test that needs Redis gets its own embedded redis-server (broker and metrics store),
so counts are exact and the session's workers can neither consume nor add anything.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib
from celery import signals
from celery.exceptions import Retry
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from tests.support import workers
from whatsappcrm_backend import health, metrics, topology
from whatsappcrm_backend.celery import app, enqueue
from whatsappcrm_backend.embedded_redis import EmbeddedRedis
from whatsappcrm_backend.logging import (
    ContextFilter,
    KeyValueFormatter,
    connect_task_logging,
    event_logger,
    format_context,
    log_context,
)
from whatsappcrm_backend.tasks import probe_cpu, probe_io

connect_task_metrics = metrics.connect_task_metrics
connect_task_metrics()
connect_task_logging()

__all__ = ["app"]


def _webhook_view(request: HttpRequest) -> HttpResponse:
    time.sleep(0.06)  # a webhook that does real work: well above the 0.05 s bucket
    try:
        json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "malformed JSON"}, status=400)
    return HttpResponse("ok")


def _other_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("not a webhook")


urlpatterns = [
    path("metrics", health.metrics_view),
    path("webhooks/test/", _webhook_view),
    path("api/other/", _other_view),
]

urls = pytest.mark.urls("tests.test_metrics")


@pytest.fixture
def broker_conn(private_redis):
    with app.connection_for_write(url=private_redis) as conn:
        yield conn


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def family(samples, name: str) -> dict[frozenset, float]:
    """Every series of one sample name, keyed by its labels (compared whole, for a readable diff)."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def series_names(samples) -> set[str]:
    return {name for name, _labels in samples}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _worker_argv(service: str) -> list[str]:
    from whatsappcrm_backend.routing_check import compose_command

    argv = compose_command(service)
    argv[argv.index("-A") + 1] = "tests.test_metrics"
    return argv


# --- tasks through real workers ----------------------------------------------------------

@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
@urls
def test_task_latency_failures_and_queue_wait_from_real_workers(client, private_redis, broker_conn):
    from tests.support.probes import wait_for_records
    from tests.support.workers import launch_worker, start_workers, stop_workers

    key = f"test:probe:{uuid.uuid4().hex}"
    probe_io.apply_async(args=[key, "slow-1", 0.3], connection=broker_conn)
    probe_io.apply_async(args=[key, "slow-2", 0.3], connection=broker_conn)
    probe_io.apply_async(args=[key, "broken", "soon"], connection=broker_conn)  # sleep("soon"): TypeError
    probe_cpu.apply_async(args=[key, "cpu"], connection=broker_conn)
    time.sleep(1.0)  # every task waits at least this long in the queue

    env = {"REDIS_URL": private_redis, "CELERY_BROKER_URL": private_redis}
    io_worker, cpu_worker = start_workers([
        launch_worker("celery_io_worker", env=env, argv=_worker_argv("celery_io_worker")),
        launch_worker("celery_cpu_worker", env=env, argv=_worker_argv("celery_cpu_worker")),
    ])
    try:
        redis_client = redis_lib.Redis.from_url(private_redis)
        records = wait_for_records(redis_client, key, 3)
        # The postrun hook writes just after the task body: wait for all four runs.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            samples = scrape(client)
            runs = sum(v for (name, _), v in samples.items() if name == "whatsappcrm_task_runs_total")
            if runs >= 4:
                break
            time.sleep(0.2)
    finally:
        stop_workers([io_worker, cpu_worker])

    io_task, cpu_task = "diagnostics.probe_io", "diagnostics.probe_cpu"
    assert family(samples, "whatsappcrm_task_runs_total") == {
        frozenset({("task", io_task), ("queue", "celery"), ("state", "SUCCESS")}): 2,
        frozenset({("task", io_task), ("queue", "celery"), ("state", "FAILURE")}): 1,
        frozenset({("task", cpu_task), ("queue", "football_data"), ("state", "SUCCESS")}): 1,
    }
    assert family(samples, "whatsappcrm_task_failures_total") == {
        frozenset({("task", io_task), ("exception", "TypeError")}): 1,
    }

    duration = "whatsappcrm_task_duration_seconds"
    assert value(samples, duration + "_count", task=io_task, queue="celery") == 3
    # The failing run is instant; the two 0.3 s sleeps cannot be in the 0.25 s bucket.
    assert value(samples, duration + "_bucket", task=io_task, queue="celery", le="0.25") == 1
    assert value(samples, duration + "_bucket", task=io_task, queue="celery", le="+Inf") == 3
    assert 0.6 <= value(samples, duration + "_sum", task=io_task, queue="celery") < 5
    assert value(samples, duration + "_count", task=cpu_task, queue="football_data") == 1

    wait = "whatsappcrm_task_queue_wait_seconds"
    assert value(samples, wait + "_count", task=io_task, queue="celery") == 3
    assert value(samples, wait + "_count", task=cpu_task, queue="football_data") == 1
    assert value(samples, wait + "_bucket", task=io_task, queue="celery", le="1.0") == 0  # all waited > 1 s
    assert value(samples, wait + "_sum", task=io_task, queue="celery") >= 3.0

    # Trace logging: the worker's own lines for a task carry its id.
    for record in records:
        lines = [line for line in (io_worker.log() + cpu_worker.log()).splitlines()
                 if f"[{record['task_id']}] succeeded" in line]
        assert lines, f"no success line for {record['task_id']}"
        assert f"task_id={record['task_id']}" in lines[0]
        assert f"task={record['task']}" in lines[0]


def _redis_stats(client: redis_lib.Redis) -> tuple[int, int]:
    """(commands, reads) the server processed, not counting this INFO itself.

    A pipeline arrives in one read event on loopback, so ``total_reads_processed`` counts
    round trips; the INFO asking is counted by the next call, hence the -1.
    """
    stats = client.info("stats")
    return stats["total_commands_processed"], stats["total_reads_processed"]


def _run_and_count(store: redis_lib.Redis, broker: redis_lib.Redis, send) -> tuple[int, int]:
    """Commands and round trips the metrics store received for the task run(s) ``send`` publishes."""
    commands_before, reads_before = _redis_stats(store)
    send()
    deadline = time.monotonic() + 30
    idle_polls = 0
    while True:
        time.sleep(0.05)
        # Idle on three polls in a row: between taking a message off the queue and recording it
        # as unacknowledged, kombu's worker holds it in neither place (seen as "idle" before the
        # task ran, when the suite ran loaded).
        idle_polls = idle_polls + 1 if workers.broker_is_idle(broker) else 0
        if idle_polls >= 3:
            break
        assert time.monotonic() < deadline, "the worker did not finish"
    commands_after, reads_after = _redis_stats(store)
    return commands_after - commands_before - 1, reads_after - reads_before - 1


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
@urls
def test_one_round_trip_per_task_run_and_expired_sessions_reach_metrics(client, settings):
    """The gevent worker writes each run's metrics in one pipeline; the expiry job's count is cluster-wide.

    The metrics store is a redis-server of its own, separate from the broker, so every
    command it receives is a metrics write from the worker.
    """
    from datetime import timedelta

    from django.utils import timezone

    from conversations.models import Contact
    from flows.models import ContactFlowState, Flow
    from tests.support.workers import start_worker

    with EmbeddedRedis() as broker_server, EmbeddedRedis() as store_server:
        settings.CELERY_BROKER_URL = broker_server.url
        settings.REDIS_URL = store_server.url
        store, broker = redis_lib.Redis.from_url(store_server.url), redis_lib.Redis.from_url(broker_server.url)
        env = {"REDIS_URL": store_server.url, "CELERY_BROKER_URL": broker_server.url}
        worker = start_worker("celery_io_worker", env=env, argv=_worker_argv("celery_io_worker"))
        try:
            with app.connection_for_write(url=broker_server.url) as conn:
                def expire() -> None:
                    app.send_task("flows.expire_sessions", connection=conn)

                def fail() -> None:
                    probe_io.apply_async(args=["unused", "broken", "soon"], connection=conn)  # TypeError

                _run_and_count(store, broker, expire)  # warm-up: the worker's first connection
                # queue wait (bucket + sum), run state, duration (bucket + sum): 5 commands, 1 trip
                assert [_run_and_count(store, broker, expire) for _ in range(3)] == [(5, 1)] * 3
                # ... and the failure counter in the same trip
                assert _run_and_count(store, broker, fail) == (6, 1)

                settings.FLOW_SESSION_TIMEOUT = 300
                flow = Flow.objects.create(name="bet_slip", trigger_keywords=["bet"])
                idle_since = timezone.now() - timedelta(seconds=600)
                for n in range(2):
                    # Blocked contacts are not told, so no send task runs beside the expiry.
                    contact = Contact.objects.create(wa_id=f"25471200000{n}", blocked=True)
                    ContactFlowState.objects.create(contact=contact, flow=flow, step="stake",
                                                    last_activity_at=idle_since)
                assert value(scrape(client), "whatsappcrm_flow_sessions_expired_total") == 0
                # the expired-sessions counter joins the run's batch: 6 commands, still 1 trip
                assert _run_and_count(store, broker, expire) == (6, 1)
        finally:
            worker.kill()  # its brokers are this test's own; every run it was given has finished
        assert not ContactFlowState.objects.exists()
        samples = scrape(client)
        assert value(samples, "whatsappcrm_flow_sessions_expired_total") == 2
        runs = family(samples, "whatsappcrm_task_runs_total")
        assert runs[frozenset({("task", "flows.expire_sessions"), ("queue", "celery"), ("state", "SUCCESS")})] == 5
        assert value(samples, "whatsappcrm_task_failures_total", task="diagnostics.probe_io",
                     exception="TypeError") == 1
        assert value(samples, "whatsappcrm_task_queue_wait_seconds_count", task="flows.expire_sessions",
                     queue="celery") == 5


@pytest.mark.django_db
@urls
def test_one_round_trip_per_webhook_request(client, settings, private_redis):
    middleware = "whatsappcrm_backend.metrics.WebhookMetricsMiddleware"
    settings.MIDDLEWARE = [middleware, *(m for m in settings.MIDDLEWARE if m != middleware)]
    store = redis_lib.Redis.from_url(private_redis)
    body = json.dumps({"object": "whatsapp_business_account", "entry": []})
    client.post("/webhooks/test/", body, content_type="application/json")  # the first connection
    commands, reads = _redis_stats(store)
    assert client.post("/webhooks/test/", body, content_type="application/json").status_code == 200
    after_commands, after_reads = _redis_stats(store)
    assert (after_commands - commands - 1, after_reads - reads - 1) == (2, 1)  # bucket + sum, one trip


def test_observations_inside_a_batch_are_written_once_at_its_end(private_redis):
    store = redis_lib.Redis.from_url(private_redis)
    metrics.record_webhook(0.01, 200)  # connect
    commands, reads = _redis_stats(store)
    with metrics.batched():
        metrics.record_task_retry("diagnostics.probe_io", "ConnectionError")
        metrics.record_sessions_expired(3)
        with metrics.batched():  # nested: joins the outer batch
            metrics.record_task_failure("diagnostics.probe_io", "TypeError")
        assert _redis_stats(store)[0] - commands == 1  # nothing written yet (only the INFO)
    after_commands, after_reads = _redis_stats(store)
    assert (after_commands - commands - 2, after_reads - reads - 2) == (3, 1)
    raw = store.hgetall(metrics.FLOW_SESSIONS_EXPIRED.key)
    assert {k.decode(): int(v) for k, v in raw.items()} == {"[]": 3}


@pytest.mark.django_db
@urls
def test_retries_are_counted_by_cause(client, private_redis):
    # Celery sends task_retry from its tracer when a task calls self.retry(); no project
    # task retries yet, so send the signal exactly as the tracer does.
    signals.task_retry.send(sender=probe_io, request=None, reason=Retry(exc=ConnectionError("503")), einfo=None)
    signals.task_retry.send(sender=probe_io, request=None, reason=Retry(exc=ConnectionError("503")), einfo=None)
    signals.task_retry.send(sender=probe_io, request=None, reason=Retry(), einfo=None)
    samples = scrape(client)
    retries = "whatsappcrm_task_retries_total"
    assert value(samples, retries, task="diagnostics.probe_io", exception="ConnectionError") == 2
    assert value(samples, retries, task="diagnostics.probe_io", exception="Retry") == 1


def test_publishing_stamps_sent_at_for_the_worker(private_redis, broker_conn):
    before = time.time()
    probe_io.apply_async(args=["unused"], connection=broker_conn)
    raw = redis_lib.Redis.from_url(private_redis).lrange("celery:6", 0, -1)  # NORMAL's list on Redis
    assert len(raw) == 1
    headers = json.loads(raw[0])["headers"]
    assert before <= headers["sent_at"] <= time.time()


def test_queue_wait_uses_the_eta_and_survives_clock_skew():
    now = 1_000_000.0
    assert metrics.queue_wait_seconds(now - 5, None, now) == 5
    assert metrics.queue_wait_seconds(now - 5, "1970-01-12T13:46:38+00:00", now) == 2  # ETA 3 s after sending
    assert metrics.queue_wait_seconds(now + 2, None, now) == 0  # publisher's clock ahead
    assert metrics.queue_wait_seconds(None, None, now) is None
    assert metrics.queue_wait_seconds("junk", None, now) is None
    assert metrics.queue_wait_seconds(now - 5, "not a date", now) == 5


# --- webhooks ----------------------------------------------------------------------------

@pytest.mark.django_db
@urls
def test_webhook_latency_and_status_only_for_webhook_paths(client, settings, private_redis):
    middleware = "whatsappcrm_backend.metrics.WebhookMetricsMiddleware"
    settings.MIDDLEWARE = [middleware, *(m for m in settings.MIDDLEWARE if m != middleware)]
    body = json.dumps({"object": "whatsapp_business_account", "entry": []})
    for _ in range(2):
        assert client.post("/webhooks/test/", body, content_type="application/json").status_code == 200
    assert client.post("/webhooks/test/", "{not json", content_type="application/json").status_code == 400
    assert client.generic("BREW", "/webhooks/test/", body).status_code == 200
    assert client.get("/api/other/").status_code == 200

    samples = scrape(client)
    name = "whatsappcrm_webhook_duration_seconds"
    assert value(samples, name + "_count", method="POST", status="200") == 2
    assert value(samples, name + "_count", method="POST", status="400") == 1
    assert value(samples, name + "_count", method="other", status="200") == 1  # no label per invented method
    assert value(samples, name + "_bucket", method="POST", status="200", le="0.05") == 0
    assert value(samples, name + "_bucket", method="POST", status="200", le="+Inf") == 2
    assert value(samples, name + "_sum", method="POST", status="200") >= 0.12
    webhook_series = [labels for (n, labels) in samples if n == name + "_count"]
    assert len(webhook_series) == 3  # /api/other/ and /metrics itself were not recorded


# --- live gauges ---------------------------------------------------------------------------

@pytest.mark.django_db
@urls
def test_messages_by_direction_type_and_status(client, private_redis):
    from conversations.models import Contact, Message

    alice = Contact.objects.create(wa_id="254700000001", profile_name="Alice")
    bob = Contact.objects.create(wa_id="254700000002", profile_name="Bob")
    Message.objects.create(contact=alice, direction="in", message_type="text", text="hi",
                           wamid="wamid.HBgLMjU0NzAwMDAwMDAxFQIAEhgUM0E", status="received")
    Message.objects.create(contact=bob, direction="in", message_type="text", text="menu",
                           wamid="wamid.HBgLMjU0NzAwMDAwMDAyFQIAEhgUM0E", status="received")
    Message.objects.create(contact=bob, direction="in", message_type="interactive", text="Fixtures",
                           wamid="wamid.HBgLMjU0NzAwMDAwMDAyFQIAEhgUM0F", status="received")
    Message.objects.create(contact=alice, direction="out", message_type="text", text="Welcome!", status="read",
                           wamid="wamid.OUT1")
    Message.objects.create(contact=bob, direction="out", message_type="interactive", text="Main menu",
                           status="delivered", wamid="wamid.OUT2")
    Message.objects.create(contact=bob, direction="out", message_type="text", text="Odds", status="pending")
    Message.objects.create(contact=bob, direction="out", message_type="text", text="Odds", status="failed",
                           error_code=131047)

    samples = scrape(client)
    name = "whatsappcrm_messages"
    assert value(samples, name, direction="in", type="text", status="received") == 2
    assert value(samples, name, direction="in", type="interactive", status="received") == 1
    assert value(samples, name, direction="out", type="text", status="read") == 1
    assert value(samples, name, direction="out", type="interactive", status="delivered") == 1
    assert value(samples, name, direction="out", type="text", status="pending") == 1
    assert value(samples, name, direction="out", type="text", status="failed") == 1
    assert sum(v for (n, _), v in samples.items() if n == name) == 7
    assert value(samples, "whatsappcrm_metrics_source_up", source="database") == 1


@pytest.mark.django_db
@urls
def test_queue_depth_per_queue_and_priority(client, private_redis, broker_conn):
    from whatsappcrm_backend.topology import Priority

    key = "test:probe:never-run"
    for _ in range(3):
        enqueue(probe_io, key, priority=Priority.LOW, connection=broker_conn)
    for _ in range(2):
        enqueue(probe_io, key, priority=Priority.HIGH, connection=broker_conn)
    enqueue(probe_io, key, connection=broker_conn)  # its own route: NORMAL
    enqueue(probe_cpu, key, priority=Priority.URGENT, connection=broker_conn)

    samples = scrape(client)
    depth = "whatsappcrm_queue_depth"
    assert value(samples, depth, queue="celery", priority="low") == 3
    assert value(samples, depth, queue="celery", priority="high") == 2
    assert value(samples, depth, queue="celery", priority="normal") == 1
    assert value(samples, depth, queue="celery", priority="urgent") == 0
    assert value(samples, depth, queue="football_data", priority="urgent") == 1
    assert value(samples, depth, queue="football_data", priority="low") == 0
    assert value(samples, "whatsappcrm_queue_unacked") == 0
    # The per-priority lists are the ones kombu itself counts.
    channel = broker_conn.default_channel
    for queue in topology.QUEUES:
        ours = sum(v for (n, labels), v in samples.items() if n == depth and ("queue", queue) in labels)
        assert ours == channel.queue_declare(queue=queue, passive=True).message_count

    channel.queue_purge(topology.IO_QUEUE)
    samples = scrape(client)
    assert value(samples, depth, queue="celery", priority="low") == 0


@pytest.mark.django_db
@urls
def test_api_football_quota_from_the_agreed_key(client, private_redis, caplog):
    store = redis_lib.Redis.from_url(private_redis)
    quota = "whatsappcrm_api_football_quota_remaining"
    assert quota not in series_names(scrape(client))  # not written yet: no made-up value

    store.set(metrics.QUOTA_REMAINING_KEY, "87")
    assert value(scrape(client), quota) == 87

    store.set(metrics.QUOTA_REMAINING_KEY, "lots")
    with caplog.at_level(logging.WARNING, logger="whatsappcrm_backend.metrics"):
        samples = scrape(client)
    assert quota not in series_names(samples)
    assert "apifootball:quota:remaining holds b'lots'" in caplog.text
    assert value(samples, "whatsappcrm_metrics_source_up", source="redis") == 1


@pytest.mark.django_db
@urls
def test_flow_sessions_active_overdue_and_expired(client, settings, private_redis):
    from datetime import timedelta

    from django.utils import timezone

    from conversations.models import Contact
    from flows.models import ContactFlowState, Flow

    settings.FLOW_SESSION_TIMEOUT = 300
    flow = Flow.objects.create(name="bet_slip", trigger_keywords=["bet"])
    now = timezone.now()
    for n, idle in enumerate([10, 120, 299, 301, 3600]):
        contact = Contact.objects.create(wa_id=f"25471100000{n}")
        ContactFlowState.objects.create(contact=contact, flow=flow, step="stake",
                                        last_activity_at=now - timedelta(seconds=idle))
    samples = scrape(client)
    assert value(samples, "whatsappcrm_flow_sessions", state="active") == 3
    assert value(samples, "whatsappcrm_flow_sessions", state="overdue") == 2
    assert value(samples, "whatsappcrm_flow_sessions_expired_total") == 0

    metrics.record_sessions_expired(2)
    metrics.record_sessions_expired(0)
    assert value(scrape(client), "whatsappcrm_flow_sessions_expired_total") == 2


@pytest.mark.django_db
@urls
def test_redis_down_drops_observations_and_flags_the_source(client, settings, private_redis, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="whatsappcrm_backend.metrics"):
        metrics.record_task("diagnostics.probe_io", "celery", 0.2, "SUCCESS")  # must not raise
        metrics.record_webhook(0.01, 200)
    assert time.monotonic() - started < 2 * metrics.REDIS_TIMEOUT_SECONDS + 0.5
    samples = scrape(client)
    assert value(samples, "whatsappcrm_metrics_source_up", source="redis") == 0
    assert value(samples, "whatsappcrm_metrics_source_up", source="database") == 1
    assert value(samples, "whatsappcrm_metrics_source_up", source="broker") == 1
    assert "whatsappcrm_queue_depth" in series_names(samples)


def test_bad_observations_are_refused_with_the_field():
    with pytest.raises(ValueError, match="seconds must be a non-negative number"):
        metrics.record_task("diagnostics.probe_io", "celery", -0.1, "SUCCESS")
    with pytest.raises(ValueError, match="seconds must be a non-negative number"):
        metrics.record_webhook(float("nan"), 200)
    with pytest.raises(ValueError, match="count must be a non-negative int"):
        metrics.record_sessions_expired(-1)
    with pytest.raises(ValueError, match="count must be a non-negative int"):
        metrics.record_sessions_expired(2.5)


def test_stored_histograms_ignore_fields_from_another_bucket_set():
    raw = {
        '["t","q","le","0.5"]': 2.0,
        '["t","q","le","+Inf"]': 1.0,
        '["t","q","le","0.3"]': 5.0,  # a bound this version does not have
        '["t","q","sum"]': 1.7,
        "not json": 1.0,
    }
    series = metrics.histogram_series(raw, label_count=2)
    assert list(series) == [("t", "q")]
    only = series[("t", "q")]
    assert only.count == 3
    assert dict(only.buckets)["0.25"] == 0
    assert dict(only.buckets)["0.5"] == 2
    assert only.sum == 1.7
    assert metrics.bucket_bound(0.5) == "0.5"  # Prometheus buckets are "less than or equal"
    assert metrics.bucket_bound(0.5001) == "1.0"
    assert metrics.bucket_bound(1e6) == "+Inf"


def test_the_apps_register_their_database_gauges_and_metrics_imports_no_app():
    import ast
    from pathlib import Path

    from conversations.gauges import message_gauges
    from flows.gauges import session_gauges

    tree = ast.parse(Path(metrics.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    apps = {"conversations", "flows", "football_data_app", "meta_integration"}
    assert not {name for name in imported if name.split(".")[0] in apps}
    # Registered by ConversationsConfig.ready and FlowsConfig.ready, in INSTALLED_APPS order.
    assert metrics._gauge_readers == [message_gauges, session_gauges]
    metrics.register_gauges(message_gauges)  # again: still once
    assert metrics._gauge_readers == [message_gauges, session_gauges]


@pytest.mark.django_db
@urls
def test_a_failing_registered_gauge_marks_the_database_source_down(client, monkeypatch, private_redis):
    def broken() -> Iterator:
        raise RuntimeError("table gone")
        yield

    monkeypatch.setattr(metrics, "_gauge_readers", [*metrics._gauge_readers, broken])
    samples = scrape(client)
    assert value(samples, "whatsappcrm_metrics_source_up", source="database") == 0
    assert value(samples, "whatsappcrm_metrics_source_up", source="redis") == 1
    assert "whatsappcrm_messages" not in series_names(samples)  # the source is all or nothing, as before


# --- /metrics access -------------------------------------------------------------------------

@pytest.mark.django_db
@urls
def test_metrics_token_when_configured(client, settings, private_redis):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert "Bearer" in missing.json()["error"]
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    samples = scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert "whatsappcrm_queue_depth" in series_names(samples)


# --- trace logging ---------------------------------------------------------------------------

@pytest.fixture
def log_lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(KeyValueFormatter("%(levelname)s %(name)s %(message)s"))
    log = logging.getLogger("tests.trace")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)


def test_log_lines_carry_the_bound_ids_and_event_fields(log_lines):
    log, stream = log_lines
    events = event_logger("tests.trace")
    with log_context(message_id=42, contact="254700000001"):
        events.info("reply queued", wamid="wamid.HBgLMjU0", parts=2)
        with log_context(task_id="c0ffee"):
            log.warning("send retried")
    log.info("outside")
    lines = stream.getvalue().splitlines()
    assert lines[0] == ("INFO tests.trace reply queued message_id=42 contact=254700000001 "
                        "wamid=wamid.HBgLMjU0 parts=2")
    assert lines[1] == "WARNING tests.trace send retried message_id=42 contact=254700000001 task_id=c0ffee"
    assert lines[2] == "INFO tests.trace outside"


def test_ids_stay_on_the_first_line_of_a_traceback(log_lines):
    log, stream = log_lines
    with log_context(message_id=7):
        try:
            raise RuntimeError("graph api down")
        except RuntimeError:
            log.exception("send failed")
    first, *rest = stream.getvalue().splitlines()
    assert first == "ERROR tests.trace send failed message_id=7"
    assert rest[0].startswith("Traceback")


def test_values_with_spaces_or_quotes_are_quoted():
    assert format_context({"text": 'say "hi" now', "empty": "", "none": None, "n": 3}) == (
        'text="say \\"hi\\" now" empty="" n=3'
    )
    assert len(format_context({"big": "x" * 1000})) < 220


def test_a_running_task_logs_with_its_task_id(log_lines, private_redis):
    log, stream = log_lines

    def inside(task_id=None, **_):
        log.info("inside the task")

    # Connected after the project's hooks, so it runs once the task id is bound.
    signals.task_prerun.connect(inside, weak=False, dispatch_uid="tests.inside")
    try:
        probe_cpu.apply(args=[f"test:probe:{uuid.uuid4().hex}"], task_id="t-123")  # in-process, real signals
    finally:
        signals.task_prerun.disconnect(dispatch_uid="tests.inside")
    log.info("after the task")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "INFO tests.trace inside the task task_id=t-123 task=diagnostics.probe_cpu",
        "INFO tests.trace after the task",
    ]


def test_the_logging_dict_for_settings_renders_ids(tmp_path):
    # dictConfig replaces every handler of the process, so run it where that harms nothing.
    import subprocess
    import sys

    script = (
        "import logging, logging.config\n"
        "from whatsappcrm_backend.logging import logging_config, log_context, event_logger\n"
        "logging.config.dictConfig(logging_config('INFO'))\n"
        "with log_context(message_id=9, contact='254700000009'):\n"
        "    event_logger('conversations').info('inbound stored', wamid='wamid.X1')\n"
        "logging.getLogger('django.db.backends').info('hidden')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].endswith(" INFO conversations inbound stored message_id=9 contact=254700000009 wamid=wamid.X1")
