"""The Celery topology: queues, which worker consumes each, every task's route and priority.

This module is the single source of truth. Settings build ``task_queues`` and
``task_routes`` from it, the task decorator reads each task's queue, priority and
time limits from it, Beat's schedule lives here, and the routing check compares
it with the registered tasks and with docker-compose.yml. Nothing else in the
project names a queue or a broker priority number.

Why it is this strict: the systems this project learns from lost football tasks
to a queue name that drifted, ran an I/O queue on a solo pool, and wrote
``priority=9`` meaning "high" while Redis consumes 0 first.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import timedelta


class Pool(enum.StrEnum):
    GEVENT = "gevent"
    EVENTLET = "eventlet"
    THREADS = "threads"
    PREFORK = "prefork"
    SOLO = "solo"


class Workload(enum.StrEnum):
    """What a queue's tasks spend their time on, which decides the pools that fit it."""

    IO = "io"  # waiting on HTTP, Redis and the database: a green-thread pool
    CPU = "cpu"  # parsing, bulk upserts, settlement maths: processes


FITTING_POOLS: dict[Workload, frozenset[Pool]] = {
    Workload.IO: frozenset({Pool.GEVENT, Pool.EVENTLET}),
    Workload.CPU: frozenset({Pool.PREFORK}),
}


class Priority(enum.Enum):
    """Named priorities. Code says HIGH, never a number: the number depends on the broker."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


# Redis (kombu) consumes the *lowest* number first; RabbitMQ consumes the *highest*.
# The Redis numbers are exactly the transport's priority steps below, so no rounding.
REDIS_PRIORITY_STEPS = [0, 3, 6, 9]
_BROKER_PRIORITY: dict[str, dict[Priority, int]] = {
    "redis": {Priority.URGENT: 0, Priority.HIGH: 3, Priority.NORMAL: 6, Priority.LOW: 9},
    "amqp": {Priority.URGENT: 9, Priority.HIGH: 6, Priority.NORMAL: 3, Priority.LOW: 0},
}
AMQP_MAX_PRIORITY = 9


def broker_family(broker_url: str) -> str:
    """'redis' or 'amqp' for a broker URL; anything else is refused (its priority order is unknown)."""
    scheme = broker_url.split("://", 1)[0].lower()
    if scheme in {"redis", "rediss", "redis+socket", "sentinel"}:
        return "redis"
    if scheme in {"amqp", "amqps", "pyamqp"}:
        return "amqp"
    raise ValueError(f"unsupported broker URL scheme {scheme!r}: priorities are defined for Redis and RabbitMQ only")


def broker_priority(priority: Priority, broker_url: str) -> int:
    """The number to put on the wire for a named priority on this broker."""
    return _BROKER_PRIORITY[broker_family(broker_url)][priority]


@dataclass(frozen=True)
class QueueSpec:
    name: str
    workload: Workload
    worker_service: str  # the docker-compose service that consumes it
    purpose: str


@dataclass(frozen=True)
class TaskRoute:
    queue: str
    priority: Priority
    soft_time_limit: int  # seconds; the task gets SoftTimeLimitExceeded and can clean up
    time_limit: int  # seconds; the pool kills the task
    max_retries: int = 0


@dataclass(frozen=True)
class BeatEntry:
    task: str
    every: timedelta
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    description: str = ""
    queue: str | None = None  # only to state it; it must equal the task's own queue (checked)


IO_QUEUE = "celery"
CPU_QUEUE = "football_data"

QUEUES: dict[str, QueueSpec] = {
    IO_QUEUE: QueueSpec(
        IO_QUEUE,
        Workload.IO,
        "celery_io_worker",
        "flow processing, sending, read receipts, notifications, session expiry, sweepers, campaigns (LOW)",
    ),
    CPU_QUEUE: QueueSpec(
        CPU_QUEUE,
        Workload.CPU,
        "celery_cpu_worker",
        "every football_data_app task: leagues, fixtures, odds, results, settlement",
    ),
}

# Every project task, by its explicit name. A task missing here fails the routing check.
TASKS: dict[str, TaskRoute] = {
    # Probes used by health checks, the test harness and the benchmarks to see which
    # worker consumed a queue and how long a task waited.
    "diagnostics.probe_io": TaskRoute(IO_QUEUE, Priority.NORMAL, soft_time_limit=60, time_limit=90),
    "diagnostics.probe_cpu": TaskRoute(CPU_QUEUE, Priority.NORMAL, soft_time_limit=60, time_limit=90),
    # The reply path: inbound messages through the engine, the replies sent to the Graph API and
    # the read receipt in the same run; the send task carries retries, gaps and the sweeper's finds.
    "flows.process_message": TaskRoute(IO_QUEUE, Priority.HIGH, soft_time_limit=30, time_limit=45),
    "flows.expire_sessions": TaskRoute(IO_QUEUE, Priority.NORMAL, soft_time_limit=50, time_limit=60),
    "conversations.send_message": TaskRoute(IO_QUEUE, Priority.HIGH, soft_time_limit=30, time_limit=45,
                                            max_retries=8),
    # Campaigns: template broadcasts, behind every reply (LOW); a batch is at most
    # CAMPAIGN_BATCH_SIZE sends. The periodic check starts due ones and restarts dead chains.
    "campaigns.send_batch": TaskRoute(IO_QUEUE, Priority.LOW, soft_time_limit=120, time_limit=150, max_retries=5),
    "campaigns.tick": TaskRoute(IO_QUEUE, Priority.NORMAL, soft_time_limit=50, time_limit=60),
    # Outbox sweepers and housekeeping (Beat).
    "conversations.sweep_inbound": TaskRoute(IO_QUEUE, Priority.NORMAL, soft_time_limit=60, time_limit=90),
    "conversations.sweep_outbound": TaskRoute(IO_QUEUE, Priority.NORMAL, soft_time_limit=60, time_limit=90),
    "meta_integration.purge_webhook_events": TaskRoute(IO_QUEUE, Priority.LOW, soft_time_limit=300, time_limit=360),
    # Templates and media (issue 13): below the replies, which are HIGH.
    "meta_integration.sync_templates": TaskRoute(IO_QUEUE, Priority.LOW, soft_time_limit=120, time_limit=180),
    "conversations.download_media": TaskRoute(IO_QUEUE, Priority.NORMAL, soft_time_limit=120, time_limit=150,
                                              max_retries=5),
    # Football: ingestion (bulk upserts) and settlement, on the prefork CPU worker.
    "football_data.sync_leagues": TaskRoute(CPU_QUEUE, Priority.LOW, soft_time_limit=120, time_limit=180),
    "football_data.sync_fixtures": TaskRoute(CPU_QUEUE, Priority.LOW, soft_time_limit=300, time_limit=360),
    "football_data.sync_odds": TaskRoute(CPU_QUEUE, Priority.LOW, soft_time_limit=540, time_limit=600),
    "football_data.sync_live_odds": TaskRoute(CPU_QUEUE, Priority.NORMAL, soft_time_limit=50, time_limit=60),
    "football_data.sync_results": TaskRoute(CPU_QUEUE, Priority.NORMAL, soft_time_limit=120, time_limit=180),
    "football_data.settle_fixture": TaskRoute(CPU_QUEUE, Priority.HIGH, soft_time_limit=120, time_limit=180),
    "football_data.settle_due": TaskRoute(CPU_QUEUE, Priority.NORMAL, soft_time_limit=300, time_limit=360),
}

# Fallback routes by name prefix, for a task that is sent by name without its module
# imported. They are not the mechanism (every task declares its queue); the routing
# check fails when one of them matches no registered task.
FALLBACK_ROUTES: dict[str, str] = {
    "diagnostics.*": IO_QUEUE,
    "football_data.*": CPU_QUEUE,
}

# Beat: the schedule is defined here and synced into django-celery-beat's tables, where
# operators can see it and switch entries off without a deploy.
BEAT_SCHEDULE: dict[str, BeatEntry] = {
    "expire-idle-flow-sessions": BeatEntry(
        task="flows.expire_sessions", every=timedelta(seconds=15),
        description="End flow sessions idle longer than FLOW_SESSION_TIMEOUT and tell each user once",
    ),
    "sweep-unprocessed-inbound": BeatEntry(
        task="conversations.sweep_inbound", every=timedelta(seconds=10),
        description="Re-enqueue inbound messages stored but never processed (broker outage, lost task)",
    ),
    "purge-webhook-events": BeatEntry(
        task="meta_integration.purge_webhook_events", every=timedelta(hours=1),
        description="Delete webhook audit rows older than WEBHOOK_EVENT_RETENTION_DAYS",
    ),
    "sync-message-templates": BeatEntry(
        task="meta_integration.sync_templates", every=timedelta(hours=1),
        description="Message templates of every active number's business account, from the Graph API",
    ),
    "sweep-unsent-outbound": BeatEntry(
        task="conversations.sweep_outbound", every=timedelta(seconds=5),
        description="Re-enqueue replies written but never sent (broker outage, lost task, expired send lease)",
    ),
    "campaigns-tick": BeatEntry(
        task="campaigns.tick", every=timedelta(seconds=5),
        description="Start scheduled campaigns that are due, restart send chains a dead worker left, finish campaigns",
    ),
    "football-sync-leagues": BeatEntry(
        task="football_data.sync_leagues", every=timedelta(hours=24), queue=CPU_QUEUE,
        description="API-Football leagues and current seasons (never changes which leagues are active)",
    ),
    "football-sync-fixtures": BeatEntry(
        task="football_data.sync_fixtures", every=timedelta(hours=1), queue=CPU_QUEUE,
        description="Fixtures of the active leagues, yesterday to a week ahead (one request per league)",
    ),
    "football-sync-odds": BeatEntry(
        task="football_data.sync_odds", every=timedelta(hours=1), queue=CPU_QUEUE,
        description="Pre-match odds of the active leagues, page by page",
    ),
    "football-sync-live-odds": BeatEntry(
        task="football_data.sync_live_odds", every=timedelta(minutes=5), queue=CPU_QUEUE,
        description="In-play odds, one request for every league",
    ),
    "football-sync-results": BeatEntry(
        task="football_data.sync_results", every=timedelta(minutes=5), queue=CPU_QUEUE,
        description="Results of fixtures that should be over; queues their settlement",
    ),
    "football-settle-due": BeatEntry(
        task="football_data.settle_due", every=timedelta(minutes=10), queue=CPU_QUEUE,
        description="Settle finished fixtures still unsettled and send notifications a crash left unsent",
    ),
}

# The longest countdown/ETA any project task uses. Redis redelivers an unacknowledged
# message after the visibility timeout, so it must be longer than this (checked).
LONGEST_COUNTDOWN = timedelta(hours=1)
VISIBILITY_TIMEOUT = timedelta(hours=2)


def route_for(task_name: str) -> TaskRoute:
    try:
        return TASKS[task_name]
    except KeyError:
        raise LookupError(
            f"task {task_name!r} has no route in whatsappcrm_backend/topology.py TASKS; add one"
        ) from None


def queue_for(task_name: str) -> str | None:
    """The queue a task name resolves to: its explicit route, else a fallback pattern."""
    if task_name in TASKS:
        return TASKS[task_name].queue
    for pattern, queue in FALLBACK_ROUTES.items():
        if _matches(pattern, task_name):
            return queue
    return None


def _matches(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern
