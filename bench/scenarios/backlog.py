"""Scenario 3, queue isolation: reply latency while ``football_data`` holds 10,000 tasks.

Before the load starts (80/s for 30 s), 10,000 ``diagnostics.probe_cpu`` tasks (50 ms each) are queued
on ``football_data``, so the prefork CPU worker is busy for the whole run and its queue
stays deep; then the same 80 messages/s as scenario 2. Replies run on ``celery`` and the
gevent worker, so they should not notice. The queue's depth before and after is
reported; what is left is purged afterwards.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

from bench.scenarios import reply
from bench.scenarios.base import ScenarioResult, Status, compare
from bench.scenarios.common import Context, NotAvailable, check_reply, reply_run
from bench.stack import WEBHOOK_PATH

NAME = "backlog"
TITLE = "Reply latency with 10,000 tasks on football_data"
PROBE_SLEEP = 0.05


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="POST due -> reply at fake Graph API")
    floor_row, floor_series = reply.measure_floor(ctx)
    result.rows.append(floor_row)
    result.series.append(floor_series)
    if "reply_project" in ctx.cache:
        quiet_row, quiet_series = ctx.cache["reply_project"]
        result.rows.append(compare(replace(quiet_row, variant=f"{quiet_row.variant} (no backlog, scenario 2)"),
                                   floor_row))
        result.series.append(replace(quiet_series, label="project, no backlog"))
    try:
        settled = ctx.settle(ctx.scale(20, 15))
        if settled:
            result.notes.append(f"Before the first reply {settled}.")
        check_reply(ctx, timeout=ctx.scale(30.0, 15.0))
    except NotAvailable as exc:
        result.status, result.reason = Status.NOT_AVAILABLE, f"project variant: {exc}"
        return result
    backlog = ctx.scale(10_000, 60)
    key = f"bench:backlog:{uuid.uuid4().hex}"
    depth_before = _fill(ctx, backlog, key)
    try:
        rate, _duration, drain = reply._load_shape(ctx)
        row, series, _load = reply_run(ctx, f"project with {backlog:,} tasks on football_data", WEBHOOK_PATH,
                                       rate, ctx.scale(30.0, 2.0), drain)
        depth_after = ctx.stack.queue_depth("football_data")
        ran = int(ctx.stack.redis.llen(key))
    finally:
        purged = ctx.stack.purge(["football_data"])
        ctx.stack.redis.delete(key)
    row = replace(row, note=f"{row.note}; football_data depth {depth_before:,} -> {depth_after:,}, "
                            f"{ran:,} probes ran meanwhile")
    result.rows.append(compare(row, floor_row))
    result.series.append(replace(series, label="project, football backlog"))
    result.notes.append(f"{purged:,} football_data tasks left were purged after the run.")
    return result


def _fill(ctx: Context, count: int, key: str) -> int:
    """Queue ``count`` CPU probes on football_data at their own (NORMAL) priority."""
    from whatsappcrm_backend.celery import app, enqueue
    from whatsappcrm_backend.tasks import probe_cpu

    with app.producer_or_acquire() as producer:
        for index in range(count):
            enqueue(probe_cpu, key, "backlog", PROBE_SLEEP, time.time(), producer=producer)
            if index % 1000 == 0:
                ctx.progress(f"queueing football_data backlog: {index:,}/{count:,}")
    return ctx.stack.queue_depth("football_data")
