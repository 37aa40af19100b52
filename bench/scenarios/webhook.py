"""Scenario 1, webhook ingest: signed single-message POSTs to gunicorn, against a bare view.

Both variants run on the same gunicorn (compose's options), open loop, at a ladder of
offered rates (50, 100, 200, 400/s for 10 s each); the ladder stops after the first rate
the webhook cannot keep up with (under 90 % of the offered rate answered), since above
it latency only measures the length of the queue. While the webhook variant runs, the
I/O worker stops consuming ``celery``, so the figure is ingest alone (verify, parse,
store, enqueue, answer), not ingest competing with the replies it triggers for two cores.
After each run the benchmark waits until gunicorn has worked through requests the load
generator gave up on; at the end it deletes what the runs stored and purges their tasks,
so no later scenario inherits them.
"""

from __future__ import annotations

from bench.scenarios.base import ScenarioResult, Status, compare
from bench.scenarios.common import (
    Context,
    NotAvailable,
    ack_row,
    ack_series,
    check_webhook,
    load,
)
from bench.stack import FLOOR_OK_PATH, WEBHOOK_PATH

NAME = "webhook"
TITLE = "Webhook ingest"
SATURATED = 0.9  # answered / offered below this: the server cannot keep up


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="POST due -> answer")
    rates = ctx.scale([50, 100, 200, 400], [40])
    duration = ctx.scale(10.0, 2.0)
    try:
        check_webhook(ctx)
        available = True
    except NotAvailable as exc:
        available = False
        result.status, result.reason = Status.NOT_AVAILABLE, f"project variant: {exc}"
    if available:
        ctx.stack.consumer("celery_io_worker", "celery", active=False)
    first_block = len(ctx.bases)
    try:
        for rate in rates:
            floor = load(ctx, f"bare view {rate}/s", FLOOR_OK_PATH, rate, duration)
            floor_row = ack_row(f"floor: bare Django view, {rate}/s", floor, floor=True)
            result.rows.append(floor_row)
            result.series.append(ack_series(f"floor {rate}/s", floor))
            _drain(ctx, result)
            if not available:
                continue
            project = load(ctx, f"webhook {rate}/s", WEBHOOK_PATH, rate, duration)
            row = ack_row(f"webhook /webhooks/meta/, {rate}/s", project)
            # each rate is compared with the floor measured at the same rate
            result.rows.append(compare(row, floor_row))
            result.series.append(ack_series(f"webhook {rate}/s", project))
            _drain(ctx, result)
            if row.summary.completed < SATURATED * row.summary.count or \
                    row.summary.throughput < SATURATED * rate:
                result.notes.append(f"The webhook could not keep up with {rate}/s; higher rates were not offered.")
                break
    finally:
        if available:
            _forget(ctx, ctx.bases[first_block:])
            ctx.stack.consumer("celery_io_worker", "celery", active=True)
    if available:
        result.notes.append("The I/O worker was not consuming during the webhook runs (ingest measured alone); "
                            "the contacts and messages they created were deleted and their tasks purged.")
    return result


def _drain(ctx: Context, result: ScenarioResult) -> None:
    if not ctx.stack.wait_web_drained(ctx.scale(120, 20)):
        result.notes.append("gunicorn was still working through abandoned requests when the next run started.")


def _forget(ctx: Context, bases: list[int]) -> None:
    """Delete what the ingest runs (and their warm-ups) stored, then drop their queued tasks."""
    ctx.delete_contacts(bases)
    ctx.stack.purge(["celery"])
