"""Scenario 2, reply latency: a signed "hi" to the webhook -> the reply received by the fake Graph API.

Open loop at 80 messages/s, each from a new contact (so each gets the main menu). The
latency runs from the moment the POST was due to the moment the fake Graph API received
the first message for that contact: webhook, database, ``flows.process_message`` on the
gevent I/O worker, ``meta_integration.send_message``, the HTTP call. The fake answers
at once (status webhooks back to the project only with ``--graph-statuses``).

Floor, in the same run: a bare view on the same gunicorn enqueues a bare Celery chain
``process -> send`` (one HTTP POST to the fake) on the same Redis, on a gevent worker
with the I/O worker's compose options (``bench/floor_tasks.py``).
"""

from __future__ import annotations

from bench.scenarios.base import Row, ScenarioResult, Series, Status, compare
from bench.scenarios.common import Context, NotAvailable, check_reply, reply_run
from bench.stack import FLOOR_CHAIN_PATH, WEBHOOK_PATH

NAME = "reply"
TITLE = "Reply latency at 80 messages/s"
RATE = 80.0


def measure_floor(ctx: Context) -> tuple[Row, Series]:
    """The bare-chain floor at the scenario's rate (cached: scenario 3 compares with it too)."""
    if "reply_floor" not in ctx.cache:
        row, series, _result = reply_run(ctx, "floor: bare Celery chain", FLOOR_CHAIN_PATH, *_load_shape(ctx))
        ctx.cache["reply_floor"] = (Row(row.variant, row.offered, row.summary, floor=True, note=row.note), series)
    return ctx.cache["reply_floor"]


def _load_shape(ctx: Context) -> tuple[float, float, float]:
    """(rate, duration, drain): 80/s for 60 s, then at most 30 s for the last replies; quick: 20/s for 3 s."""
    return ctx.scale((RATE, 60.0, 30.0), (20.0, 3.0, 20.0))


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="POST due -> reply at fake Graph API")
    floor_row, floor_series = measure_floor(ctx)
    result.rows.append(floor_row)
    result.series.append(floor_series)
    try:
        settled = ctx.settle(ctx.scale(20, 15))
        if settled:
            result.notes.append(f"Before the first reply {settled}.")
        first = check_reply(ctx, timeout=ctx.scale(30.0, 15.0))
    except NotAvailable as exc:
        result.status, result.reason = Status.NOT_AVAILABLE, f"project variant: {exc}"
        return result
    result.notes.append(f"First reply (cold) took {first * 1000:.0f} ms.")
    row, series, _load = reply_run(ctx, f"project: webhook -> flows -> send ({WEBHOOK_PATH})", WEBHOOK_PATH,
                                   *_load_shape(ctx))
    ctx.cache["reply_project"] = (row, series)
    result.rows.append(compare(row, floor_row))
    result.series.append(series)
    return result
