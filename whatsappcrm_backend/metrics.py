"""Cluster-wide Prometheus metrics: counters and histograms kept in Redis, read at scrape time.

Why Redis and not ``prometheus_client``'s in-process metrics: the work happens in many
processes (gunicorn workers, the gevent worker, prefork children recycled every 100
tasks, Beat), in separate containers. In-process counters would be scraped from
whichever web process answered ``/metrics`` and lost whenever a child is recycled.
So every process adds its observations to Redis hashes (short timeouts, errors logged
and dropped: metrics never fail a task or a webhook), in one pipelined round trip per
task run and per webhook request: everything observed while a run or a request is under
way (queue wait, duration, state, failure, retry, and what the task itself records, e.g.
expired sessions) is collected by ``batched`` and written when it ends,
and ``ClusterCollector`` turns those hashes, plus a few live reads (queue depths in the
broker, the API-Football quota, and the database gauges the apps register with
``register_gauges``: messages, flow sessions), into Prometheus families on each scrape.

Storage: one hash per family under ``KEY_PREFIX``. A counter's field is the JSON list
of its label values; a histogram stores, per label set, one non-cumulative count per
bucket bound (``[..labels, "le", "0.5"]``) and a sum (``[..labels, "sum"]``). Changing
``BUCKETS`` therefore needs a new ``KEY_PREFIX`` version.
"""

from __future__ import annotations

import contextvars
import enum
import json
import logging
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from whatsappcrm_backend import topology

__all__ = [
    "BUCKETS",
    "FAMILIES",
    "KEY_PREFIX",
    "QUOTA_REMAINING_KEY",
    "ClusterCollector",
    "Family",
    "HistogramSeries",
    "Kind",
    "WebhookMetricsMiddleware",
    "batched",
    "bucket_bound",
    "connect_task_metrics",
    "histogram_series",
    "queue_wait_seconds",
    "record_sessions_expired",
    "record_task",
    "record_task_failure",
    "record_task_retry",
    "record_task_wait",
    "record_webhook",
    "register_gauges",
]

logger = logging.getLogger(__name__)

KEY_PREFIX = "metrics:v1:"

# The Redis key the football ingestion writes after every API-Football response
# (the ``x-ratelimit-requests-remaining`` header): an integer, requests left today.
QUOTA_REMAINING_KEY = "apifootball:quota:remaining"

# Seconds. Wide on purpose: one set serves 5 ms webhook answers and 2-minute ingestion tasks.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

MAX_LABEL_CHARS = 100
# Redis must answer a metrics write quickly or the observation is dropped.
REDIS_TIMEOUT_SECONDS = 0.5


class Kind(enum.Enum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Family:
    """A metric family stored in Redis: its Prometheus name, type, help text and label names."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.name


TASK_RUNS = Family("whatsappcrm_task_runs_total", Kind.COUNTER,
                   "Celery task runs that finished in a worker, by task, queue and final state "
                   "(SUCCESS, FAILURE, RETRY, ...).", ("task", "queue", "state"))
TASK_FAILURES = Family("whatsappcrm_task_failures_total", Kind.COUNTER,
                       "Celery task failures by task and exception class, including failures the worker "
                       "records itself (hard time limit, worker lost).", ("task", "exception"))
TASK_RETRIES = Family("whatsappcrm_task_retries_total", Kind.COUNTER,
                      "Celery task retries by task and the exception that caused them.", ("task", "exception"))
TASK_DURATION = Family("whatsappcrm_task_duration_seconds", Kind.HISTOGRAM,
                       "Time a Celery task ran in the worker.", ("task", "queue"))
TASK_QUEUE_WAIT = Family("whatsappcrm_task_queue_wait_seconds", Kind.HISTOGRAM,
                         "Time from publishing a Celery task (or its ETA) to a worker starting it.",
                         ("task", "queue"))
WEBHOOK_DURATION = Family("whatsappcrm_webhook_duration_seconds", Kind.HISTOGRAM,
                          "Time to answer a request under /webhooks/, by method and HTTP status.",
                          ("method", "status"))
FLOW_SESSIONS_EXPIRED = Family("whatsappcrm_flow_sessions_expired_total", Kind.COUNTER,
                               "Flow sessions ended by the idle-expiry job.", ())

FAMILIES: tuple[Family, ...] = (
    TASK_RUNS, TASK_FAILURES, TASK_RETRIES, TASK_DURATION, TASK_QUEUE_WAIT, WEBHOOK_DURATION, FLOW_SESSIONS_EXPIRED,
)


# --- pure helpers ----------------------------------------------------------------------

def _bound_text(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def bucket_bound(seconds: float, buckets: Sequence[float] = BUCKETS) -> str:
    """The ``le`` label of the smallest bucket that holds ``seconds`` (Prometheus buckets are <=)."""
    index = bisect_left(buckets, seconds)
    return _bound_text(buckets[index]) if index < len(buckets) else "+Inf"


def _label(value: Any) -> str:
    text = "" if value is None else str(value)
    return text[:MAX_LABEL_CHARS]


def _field(parts: Iterable[Any]) -> str:
    return json.dumps([_label(part) for part in parts], separators=(",", ":"))


def _check_labels(family: Family, labels: Sequence[Any]) -> None:
    if len(labels) != len(family.labels):
        raise ValueError(f"{family.name} takes labels {family.labels}, got {len(labels)} values")


def _check_seconds(name: str, seconds: float) -> float:
    value = float(seconds)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {seconds!r}")
    return value


@dataclass(frozen=True)
class HistogramSeries:
    """One label set of a stored histogram: cumulative ``(le, count)`` pairs ending in +Inf, and the sum."""

    buckets: tuple[tuple[str, float], ...]
    sum: float

    @property
    def count(self) -> float:
        return self.buckets[-1][1]


def histogram_series(raw: Mapping[str, float], label_count: int,
                     buckets: Sequence[float] = BUCKETS) -> dict[tuple[str, ...], HistogramSeries]:
    """Turn a histogram hash (field -> value) into cumulative series per label set.

    Fields this version does not know (another bucket set, garbage) are ignored rather
    than producing a histogram Prometheus would reject.
    """
    bounds = [_bound_text(b) for b in buckets] + ["+Inf"]
    counts: dict[tuple[str, ...], dict[str, float]] = {}
    sums: dict[tuple[str, ...], float] = {}
    for field, value in raw.items():
        try:
            parts = json.loads(field)
        except ValueError:
            continue
        if not isinstance(parts, list) or len(parts) < label_count + 1:
            continue
        labels, rest = tuple(parts[:label_count]), parts[label_count:]
        if rest == ["sum"]:
            sums[labels] = float(value)
        elif len(rest) == 2 and rest[0] == "le" and rest[1] in bounds:
            counts.setdefault(labels, {})[rest[1]] = float(value)
    series: dict[tuple[str, ...], HistogramSeries] = {}
    for labels, per_bound in counts.items():
        running = 0.0
        cumulative = []
        for bound in bounds:
            running += per_bound.get(bound, 0.0)
            cumulative.append((bound, running))
        series[labels] = HistogramSeries(tuple(cumulative), sums.get(labels, 0.0))
    return series


def counter_series(raw: Mapping[str, float], label_count: int) -> dict[tuple[str, ...], float]:
    """A counter hash (JSON label list -> value) as label tuples -> value."""
    series: dict[tuple[str, ...], float] = {}
    for field, value in raw.items():
        try:
            parts = json.loads(field)
        except ValueError:
            continue
        if isinstance(parts, list) and len(parts) == label_count:
            series[tuple(parts)] = float(value)
    return series


def queue_wait_seconds(sent_at: Any, eta: Any, now: float) -> float | None:
    """How long a task waited for a worker: from publishing, or from its ETA if it had one.

    ``None`` when the message carries no ``sent_at`` (published by a process without the
    hook, or run eagerly). Clock skew between hosts can make it negative: clamped to 0.
    """
    try:
        start = float(sent_at)
    except (TypeError, ValueError):
        return None
    if eta:
        try:
            eta_ts = eta.timestamp() if isinstance(eta, datetime) else datetime.fromisoformat(str(eta)).timestamp()
        except ValueError:
            eta_ts = None
        if eta_ts is not None:
            start = max(start, eta_ts)
    return max(0.0, now - start)


# --- writing ---------------------------------------------------------------------------

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_last_drop_log = 0.0
_dropped = 0


def _redis_url() -> str:
    from django.conf import settings

    return settings.REDIS_URL


def _client(url: str | None = None) -> redis.Redis:
    url = url or _redis_url()
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url)
            if client is None:
                client = redis.Redis.from_url(
                    url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                    health_check_interval=30,
                )
                _clients[url] = client
    return client


def _note_dropped(exc: BaseException) -> None:
    """Log dropped observations at most once a minute per process, with how many were lost."""
    global _last_drop_log, _dropped
    _dropped += 1
    now = time.monotonic()
    if now - _last_drop_log >= 60.0:
        logger.warning("metrics: Redis unavailable, dropped %d observation(s): %r", _dropped, exc)
        _last_drop_log, _dropped = now, 0


Op = tuple[str, str, str, float]  # (command, key, field, amount)


def _counter_op(family: Family, labels: Sequence[Any], amount: float = 1) -> Op:
    _check_labels(family, labels)
    return ("hincrby", family.key, _field(labels), int(amount))


def _observe_ops(family: Family, labels: Sequence[Any], seconds: float) -> list[Op]:
    _check_labels(family, labels)
    return [
        ("hincrby", family.key, _field([*labels, "le", bucket_bound(seconds)]), 1),
        ("hincrbyfloat", family.key, _field([*labels, "sum"]), seconds),
    ]


# Observations made while a task run or webhook request is under way (per greenlet/thread:
# contextvars are greenlet-local under gevent), written in one round trip when it ends.
_batch: contextvars.ContextVar[list[Op] | None] = contextvars.ContextVar("metrics_batch", default=None)


def _apply(ops: Sequence[Op], redis_url: str | None = None) -> None:
    batch = _batch.get()
    if batch is not None and redis_url is None:
        batch.extend(ops)
        return
    _write(ops, redis_url)


def _write(ops: Sequence[Op], redis_url: str | None = None) -> None:
    if not ops:
        return
    try:
        with _client(redis_url).pipeline(transaction=False) as pipe:
            for command, key, field, amount in ops:
                getattr(pipe, command)(key, field, amount)
            pipe.execute()
    except (redis.RedisError, OSError) as exc:
        _note_dropped(exc)


@contextmanager
def batched(redis_url: str | None = None) -> Iterator[None]:
    """Collect every observation recorded inside and write them in one round trip at the end.

    Nested use joins the outer batch. The task hooks and the webhook middleware use it.
    """
    if _batch.get() is not None:
        yield
        return
    ops: list[Op] = []
    token = _batch.set(ops)
    try:
        yield
    finally:
        _batch.reset(token)
        _write(ops, redis_url)


def record_task(task: str, queue: str, seconds: float, state: str, *, redis_url: str | None = None) -> None:
    """One finished task run: its duration and final state."""
    seconds = _check_seconds("seconds", seconds)
    _apply([_counter_op(TASK_RUNS, (task, queue, state)), *_observe_ops(TASK_DURATION, (task, queue), seconds)],
           redis_url)


def record_task_wait(task: str, queue: str, seconds: float, *, redis_url: str | None = None) -> None:
    """How long a task sat in the broker before a worker started it."""
    _apply(_observe_ops(TASK_QUEUE_WAIT, (task, queue), _check_seconds("seconds", seconds)), redis_url)


def record_task_failure(task: str, exception: str, *, redis_url: str | None = None) -> None:
    _apply([_counter_op(TASK_FAILURES, (task, exception))], redis_url)


def record_task_retry(task: str, exception: str, *, redis_url: str | None = None) -> None:
    _apply([_counter_op(TASK_RETRIES, (task, exception))], redis_url)


_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def record_webhook(seconds: float, status: int, method: str = "POST", *, redis_url: str | None = None) -> None:
    """One webhook request. Unknown methods are labelled ``other`` so callers cannot add label values."""
    method = method.upper() if method and method.upper() in _HTTP_METHODS else "other"
    _apply(_observe_ops(WEBHOOK_DURATION, (method, int(status)), _check_seconds("seconds", seconds)), redis_url)


def record_sessions_expired(count: int, *, redis_url: str | None = None) -> None:
    """For the session-expiry job: how many sessions it just ended (expired rows may be deleted)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative int, got {count!r}")
    if count:
        _apply([_counter_op(FLOW_SESSIONS_EXPIRED, (), count)], redis_url)


# --- Celery signal hooks ---------------------------------------------------------------

@dataclass
class _Run:
    """A task run in progress: when it started and the observations to write when it ends."""

    started: float
    ops: list[Op]
    token: contextvars.Token | None


# task_id -> its run. Bounded: a task killed before postrun leaves its entry behind.
_runs: dict[str, _Run] = {}
_MAX_RUNS = 10_000


def _queue_of(task: Any) -> str:
    delivery = getattr(task.request, "delivery_info", None) or {}
    return delivery.get("routing_key") or topology.queue_for(task.name) or "unknown"


def _stamp_sent_at(headers: dict | None = None, **_: Any) -> None:
    # Celery copies message headers into task.request, so the worker reads it back as
    # task.request.sent_at. Always overwritten: a retry is a new wait.
    if headers is not None:
        headers["sent_at"] = time.time()


def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Start the run's batch: its wait now, its duration/state/failure/retry at postrun."""
    if task is None or task_id is None:
        return
    if len(_runs) >= _MAX_RUNS:
        _runs.clear()
    ops: list[Op] = []
    request = task.request
    if not getattr(request, "is_eager", False):
        wait = queue_wait_seconds(request.get("sent_at"), request.get("eta"), time.time())
        if wait is not None:
            ops.extend(_observe_ops(TASK_QUEUE_WAIT, (task.name, _queue_of(task)), wait))
    # The task body, task_failure and task_retry run in this greenlet/thread: they join ops.
    token = _batch.set(ops) if _batch.get() is None else None
    _runs[task_id] = _Run(time.monotonic(), ops, token)


def _on_postrun(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    run = _runs.pop(task_id, None) if task_id is not None else None
    if run is None:
        return
    if run.token is not None:
        try:
            _batch.reset(run.token)
        except ValueError:  # not the context prerun ran in (should not happen): detach anyway
            _batch.set(None)
    if task is not None:
        run.ops.append(_counter_op(TASK_RUNS, (task.name, _queue_of(task), state or "UNKNOWN")))
        run.ops.extend(_observe_ops(TASK_DURATION, (task.name, _queue_of(task)), time.monotonic() - run.started))
    _write(run.ops)


def _on_failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    # In the run's batch when raised by the task; written at once when the worker records
    # the failure itself (hard time limit, worker lost), outside any run.
    name = getattr(sender, "name", None) or "unknown"
    record_task_failure(name, type(exception).__name__ if exception is not None else "unknown")


def _on_retry(sender: Any = None, reason: Any = None, **_: Any) -> None:
    name = getattr(sender, "name", None) or "unknown"
    cause = getattr(reason, "exc", None)
    record_task_retry(name, type(cause).__name__ if cause is not None else type(reason).__name__)


def connect_task_metrics() -> None:
    """Record every task's queue wait, duration, state, failures and retries. Idempotent.

    Call it in every process that publishes or runs tasks (``ProjectConfig.ready``): the
    publisher stamps ``sent_at`` on the message, the worker measures.
    """
    from celery import signals

    hooks: tuple[tuple[Any, Callable[..., None]], ...] = (
        (signals.before_task_publish, _stamp_sent_at),
        (signals.task_prerun, _on_prerun),
        (signals.task_postrun, _on_postrun),
        (signals.task_failure, _on_failure),
        (signals.task_retry, _on_retry),
    )
    for signal, receiver in hooks:
        signal.connect(receiver, dispatch_uid=f"whatsappcrm.metrics.{receiver.__name__}", weak=False)


# --- Django middleware -----------------------------------------------------------------

class WebhookMetricsMiddleware:
    """Time every request under ``/webhooks/`` (put it first in MIDDLEWARE to time the whole stack)."""

    path_prefix = "/webhooks/"

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if not request.path.startswith(self.path_prefix):
            return self.get_response(request)
        with batched():  # the duration and anything recorded by the view: one round trip
            started = time.perf_counter()
            response = self.get_response(request)
            record_webhook(time.perf_counter() - started, response.status_code, request.method)
        return response


# --- reading: the gauges the apps register -----------------------------------------------

GaugeReader = Callable[[], Iterable[Metric]]

_gauge_readers: list[GaugeReader] = []


def register_gauges(reader: GaugeReader) -> None:
    """Have every scrape call ``reader`` for live gauges read from the database.

    Each app registers its own in ``AppConfig.ready`` (conversations its messages, flows its
    sessions), so this module imports no app. Readers run in registration order, which is
    INSTALLED_APPS order, under the ``database`` source: one that raises marks the source
    down for that scrape. Registering the same reader again changes nothing.
    """
    if reader not in _gauge_readers:
        _gauge_readers.append(reader)


# --- reading: the scrape-time collector -------------------------------------------------

class ClusterCollector:
    """Reads the stored families and the live gauges on every scrape.

    Each source (Redis, database, broker) is read independently: when one is down the
    others are still exported, and ``whatsappcrm_metrics_source_up`` says which failed.
    ``redis_url``/``broker_url`` default to the settings at scrape time.
    """

    def __init__(self, redis_url: str | None = None, broker_url: str | None = None) -> None:
        self.redis_url = redis_url
        self.broker_url = broker_url

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration time: that would hit Redis and the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("whatsappcrm_metrics_source_up",
                               "1 if this scrape could read the source, 0 if it failed (see the logs).",
                               labels=["source"])
        for source, reader in (("redis", self._stored), ("database", self._database), ("broker", self._broker)):
            try:
                families = list(reader())
            except Exception:  # a scrape reports what it can; the failure is logged and flagged
                logger.exception("metrics: could not read %s", source)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    # Redis: stored counters/histograms and the API-Football quota.
    def _stored(self) -> Iterator[Metric]:
        client = _client(self.redis_url)
        with client.pipeline(transaction=False) as pipe:
            for family in FAMILIES:
                pipe.hgetall(family.key)
            pipe.get(QUOTA_REMAINING_KEY)
            *hashes, quota = pipe.execute()
        for family, raw in zip(FAMILIES, hashes, strict=True):
            decoded = {field.decode(): float(value) for field, value in raw.items()}
            if family.kind is Kind.COUNTER:
                metric = CounterMetricFamily(family.name, family.help, labels=list(family.labels))
                series = counter_series(decoded, len(family.labels))
                if not family.labels and not series:
                    series = {(): 0.0}  # a label-less counter exists from the start
                for labels, value in sorted(series.items()):
                    metric.add_metric(list(labels), value)
            else:
                metric = HistogramMetricFamily(family.name, family.help, labels=list(family.labels))
                for labels, series in sorted(histogram_series(decoded, len(family.labels)).items()):
                    metric.add_metric(list(labels), list(series.buckets), series.sum)
            yield metric
        remaining = _parse_quota(quota)
        if remaining is not None:
            yield GaugeMetricFamily("whatsappcrm_api_football_quota_remaining",
                                    "API-Football requests left today, as its last response reported.",
                                    value=remaining)

    # Database: the gauges the apps registered (conversations: messages; flows: sessions).
    def _database(self) -> Iterator[Metric]:
        for reader in _gauge_readers:
            yield from reader()

    # Broker: queue depth per queue and priority, messages delivered but not acknowledged.
    def _broker(self) -> Iterator[Metric]:
        from whatsappcrm_backend.celery import app

        url = self.broker_url or _broker_url()
        if topology.broker_family(url) != "redis":
            return  # RabbitMQ: its management API already exports queue depth
        timeouts = {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
        with app.connection_for_read(url=url, transport_options=timeouts) as conn:
            channel = conn.default_channel
            names = _priority_names()
            keys = [(queue, names.get(step, str(step)), _priority_list_key(queue, step, channel.sep))
                    for queue in topology.QUEUES for step in channel.priority_steps]
            with channel.client.pipeline() as pipe:
                for _queue, _priority, key in keys:
                    pipe.llen(key)
                pipe.hlen(channel.unacked_key)
                *lengths, unacked = pipe.execute()
        depth = GaugeMetricFamily("whatsappcrm_queue_depth",
                                  "Messages waiting in a Celery queue, by named priority.",
                                  labels=["queue", "priority"])
        for (queue, priority, _key), length in zip(keys, lengths, strict=True):
            depth.add_metric([queue, priority], length)
        yield depth
        yield GaugeMetricFamily("whatsappcrm_queue_unacked",
                                "Messages delivered to workers and not yet acknowledged (all queues).",
                                value=unacked)


def _broker_url() -> str:
    from django.conf import settings

    return settings.CELERY_BROKER_URL


def _priority_names() -> dict[int, str]:
    """Redis priority step -> the project's name for it (0 -> urgent, 3 -> high, ...)."""
    return {topology.broker_priority(p, "redis://"): p.value for p in topology.Priority}


def _priority_list_key(queue: str, step: int, sep: str) -> str:
    """kombu's Redis list for a queue at a priority step: ``queue`` for 0, else ``queue + sep + step``.

    Mirrors ``kombu.transport.redis.Channel._q_for_pri`` (kombu 5.7).
    """
    return f"{queue}{sep}{step}" if step else queue


def _parse_quota(raw: bytes | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        logger.warning("metrics: %s holds %r, not a number; quota not exported", QUOTA_REMAINING_KEY, raw[:50])
        return None
    return value if math.isfinite(value) else None
