"""Scenario 1, webhook ingest: signed single-message POSTs to gunicorn, against a bare view.

Both variants run on the same gunicorn (compose's options) at the same offered rates,
open loop. While the webhook variant runs, the I/O worker stops consuming ``celery`` so
the figure is ingest alone (verify, parse, store, enqueue, answer), not ingest competing
with the replies it triggers for two cores; the stored messages are deleted and their
tasks purged afterwards, so no later scenario inherits them.
"""

from __future__ import annotations

from bench.scenarios.base import ScenarioResult, Status, compare
from bench.scenarios.common import Context, NotAvailable, ack_row, ack_series, check_webhook, load
from bench.stack import FLOOR_OK_PATH, WEBHOOK_PATH

NAME = "webhook"
TITLE = "Webhook ingest"


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="POST answered")
    rates = ctx.scale([100, 200, 400], [40])
    duration = ctx.scale(10.0, 2.0)
    try:
        check_webhook(ctx)
        available = True
    except NotAvailable as exc:
        available = False
        result.status, result.reason = Status.NOT_AVAILABLE, f"project variant: {exc}"
    ctx.stack.wait_idle(ctx.scale(60, 20))
    if available:
        ctx.stack.consumer("celery_io_worker", "celery", active=False)
    created: list[str] = []
    try:
        for rate in rates:
            floor = load(ctx, f"bare view {rate}/s", FLOOR_OK_PATH, rate, duration)
            floor_row = ack_row(f"floor: bare Django view, {rate}/s", floor, floor=True)
            result.rows.append(floor_row)
            result.series.append(ack_series(f"floor {rate}/s", floor))
            if available:
                project = load(ctx, f"webhook {rate}/s", WEBHOOK_PATH, rate, duration)
                created += [r.wa_id for r in project.records]
                # each rate is compared with the floor measured at the same rate
                result.rows.append(compare(ack_row(f"webhook /webhooks/meta/, {rate}/s", project), floor_row))
                result.series.append(ack_series(f"webhook {rate}/s", project))
    finally:
        if available:
            _forget(ctx, created)
            ctx.stack.consumer("celery_io_worker", "celery", active=True)
    if available:
        result.notes.append("The I/O worker was not consuming during the webhook runs (ingest measured alone); "
                            "the contacts and messages they created were deleted and their tasks purged.")
    return result


def _forget(ctx: Context, wa_ids: list[str]) -> None:
    """Delete what the ingest runs stored, then drop their queued tasks."""
    from conversations.models import Contact

    for start in range(0, len(wa_ids), 500):
        Contact.objects.filter(wa_id__in=wa_ids[start:start + 500]).delete()
    ctx.stack.purge(["celery"])
