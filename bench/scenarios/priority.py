"""Scenario 4, priority on one queue: how long an urgent task waits behind a backlog.

On the ``celery`` queue and the gevent I/O worker as compose runs it: 2,000 probe tasks
of 50 ms are queued, then 20 urgent probes are sent 100 ms apart while the backlog
drains. The wait is the time from sending an urgent probe to its start. Three variants:

* floor: the same 20 probes on an idle queue (the least a task can wait);
* backlog at LOW, urgent at HIGH (the project's named priorities);
* backlog and urgent at the same priority (what "no priority" gives: first in, first out).
"""

from __future__ import annotations

import json
import time
import uuid

from bench.scenarios.base import Row, ScenarioResult, Series, Summary
from bench.scenarios.common import Context

NAME = "priority"
TITLE = "HIGH vs LOW on one queue with a backlog"
TASK_SLEEP = 0.05
URGENT_SPACING = 0.1


def run(ctx: Context) -> ScenarioResult:
    from whatsappcrm_backend.topology import Priority

    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="wait before start")
    backlog, urgent = ctx.scale((2000, 20), (150, 5))
    variants = [
        ("floor: urgent on an idle queue", 0, None, Priority.HIGH, True),
        ("urgent HIGH behind LOW backlog", backlog, Priority.LOW, Priority.HIGH, False),
        ("urgent and backlog at the same priority (no priority)", backlog, Priority.NORMAL, Priority.NORMAL, False),
    ]
    for label, size, backlog_priority, urgent_priority, floor in variants:
        settled = ctx.settle(ctx.scale(20, 15))
        if settled:
            result.notes.append(f"{label}: {settled}.")
        waits, completions, start = _measure(ctx, label, size, backlog_priority, urgent, urgent_priority)
        offered = f"{urgent} urgent" + (f" behind {size:,} x {TASK_SLEEP * 1000:.0f} ms" if size else "")
        window = (max(completions) - start) if completions else 0.0
        row = Row(label, offered, Summary.of(waits, attempted=urgent, window=window), floor=floor,
                  note="" if floor else f"backlog {backlog_priority.name if backlog_priority else '-'}, "
                                        f"urgent {urgent_priority.name}")
        result.add_rows([row])
        result.series.append(Series(label, tuple(waits), tuple(completions), start))
    result.notes.append("Throughput here is urgent tasks started per second of the variant, not a capacity figure.")
    return result


def _measure(ctx: Context, label: str, size: int, backlog_priority, urgent: int,
             urgent_priority) -> tuple[list[float], list[float], float]:
    from whatsappcrm_backend.celery import app, enqueue
    from whatsappcrm_backend.tasks import probe_io

    key_backlog = f"bench:priority:backlog:{uuid.uuid4().hex}"
    key_urgent = f"bench:priority:urgent:{uuid.uuid4().hex}"
    redis = ctx.stack.redis
    try:
        with app.producer_or_acquire() as producer:
            for index in range(size):
                enqueue(probe_io, key_backlog, "backlog", TASK_SLEEP, time.time(), priority=backlog_priority,
                        producer=producer)
                if index % 500 == 0:
                    ctx.progress(f"{label}: queueing backlog {index:,}/{size:,}")
            start = time.time()
            for index in range(urgent):
                enqueue(probe_io, key_urgent, "urgent", 0.0, time.time(), priority=urgent_priority, producer=producer)
                left = ctx.stack.queue_depth("celery")
                ctx.progress(f"{label}: urgent {index + 1}/{urgent} sent, backlog left {left:,}")
                time.sleep(URGENT_SPACING)
        # Bounded: the backlog drains in about size * 50 ms / 20 slots; allow three times that.
        deadline = time.monotonic() + 30 + size * TASK_SLEEP / 20 * 3
        while redis.llen(key_urgent) < urgent and time.monotonic() < deadline:
            ctx.progress(f"{label}: {redis.llen(key_urgent)}/{urgent} urgent started, "
                         f"backlog left {ctx.stack.queue_depth('celery'):,}")
            time.sleep(0.2)
        records = [json.loads(raw) for raw in redis.lrange(key_urgent, 0, -1)]
    finally:
        if size:
            ctx.stack.purge(["celery"])  # what is left of the backlog
        redis.delete(key_backlog, key_urgent)
    waits = [r["started_at"] - r["sent_at"] for r in records]
    return waits, [r["started_at"] for r in records], start
