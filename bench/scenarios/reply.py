"""Scenario 2, reply latency: a ladder of offered rates, with Meta's status webhooks for every reply.

Open loop at 20, 40, 60, 80, 100, 120 and 160 messages/s (15 s each: steps of 20 around the
80/s that Meta allows a business number, so the knee is known to within 20/s), each message from a new contact
(so each gets the main menu). The latency runs from the moment the POST was due to the
moment the fake Graph API received the first message for that contact: webhook, database,
the project's tasks on the gevent I/O worker, the HTTP call. For every message it accepts
the fake posts the status webhooks sent, delivered and read back (50 ms apart, signed, as
Meta does; its sender is a few raw keep-alive sockets in the fake's own process, cheap
enough not to starve the cores), so the project also ingests three statuses per reply.

Floor, in the same run, with the same status traffic: the bare Django of
``bench/floor_web.py`` on its own gunicorn (compose's options) publishes the bare Celery
chain ``process -> send`` of ``bench/floor_tasks.py`` (one HTTP POST to the fake) on the
same Redis, on a gevent worker with the I/O worker's compose options; the statuses go to
its bare view.

A rate is answered in full when every POST was accepted and every user got a reply within
the drain time; the **knee** is the highest offered rate answered in full with p99 <= 1 s.
Each variant's ladder stops after its first rate that is not (above it latency only
measures the length of the queue), and what that rate left is purged before the next run;
when that is the first rate, half of it is offered once more, so the knee has a name.
"""

from __future__ import annotations

from bench.scenarios.base import Row, ScenarioResult, Series, Status, Table, compare
from bench.scenarios.common import Context, NotAvailable, check_reply, reply_run
from bench.stack import FLOOR_CHAIN_PATH, FLOOR_OK_PATH, WEBHOOK_PATH

NAME = "reply"
TITLE = "Reply latency, a ladder of offered rates with status webhooks"
RATE = 80.0  # the rate scenario 3 compares with (Meta's default per business number)
KNEE_P99 = 1.0
STATUSES = ("sent", "delivered", "read")


def measure_floor(ctx: Context) -> tuple[Row, Series]:
    """The bare-chain floor at ``RATE`` (from this scenario's ladder when it ran; scenario 3 uses it)."""
    if "reply_floor" not in ctx.cache:
        rate, duration, drain = _load_shape(ctx)
        row, series, _result = reply_run(ctx, "floor: bare Celery chain", FLOOR_CHAIN_PATH, rate, duration, drain)
        ctx.cache["reply_floor"] = (Row(row.variant, row.offered, row.summary, floor=True, note=row.note), series)
    return ctx.cache["reply_floor"]


def _load_shape(ctx: Context) -> tuple[float, float, float]:
    """(rate, duration, drain) of scenario 3: 80/s for 60 s then at most 30 s; quick: 20/s for 2 s."""
    return ctx.scale((RATE, 60.0, 30.0), (20.0, 2.0, 15.0))


def answered_in_full(row: Row) -> bool:
    summary = row.summary
    return summary.count > 0 and summary.completed == summary.count and summary.p99 is not None \
        and summary.p99 <= KNEE_P99


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="POST due -> reply at fake Graph API")
    rates = ctx.scale([20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 160.0], [20.0])
    duration, drain = ctx.scale(15.0, 2.0), ctx.scale(10.0, 10.0)
    stack = ctx.stack
    try:
        settled = ctx.settle(ctx.scale(20, 15))
        if settled:
            result.notes.append(f"Before the first reply {settled}.")
        first = check_reply(ctx, timeout=ctx.scale(30.0, 15.0))
        project_available = True
        result.notes.append(f"First reply (cold, no statuses) took {first * 1000:.0f} ms.")
    except NotAvailable as exc:
        project_available = False
        result.status, result.reason = Status.NOT_AVAILABLE, f"project variant: {exc}"
    knees: dict[str, float | None] = {}
    lowest: dict[str, float] = {}  # the lowest rate each variant was offered
    floors: dict[float, Row] = {}
    variants = [("floor", FLOOR_CHAIN_PATH, f"{stack.floor_url}{FLOOR_OK_PATH}")]
    if project_available:
        variants.append(("project", WEBHOOK_PATH, None))
    try:
        for variant, path, status_url in variants:
            stack.set_graph_statuses(STATUSES, status_url)
            if variant == "floor":
                check_reply(ctx, timeout=ctx.scale(30.0, 15.0), path=path)  # its first task pays for imports
            knees[variant] = None
            ladder = list(rates)
            while ladder:
                rate = ladder.pop(0)
                lowest[variant] = min(rate, lowest.get(variant, rate))
                label = ("floor: bare view + bare Celery chain" if variant == "floor"
                         else f"project: {WEBHOOK_PATH} -> tasks -> Graph API")
                row, series, _load = reply_run(ctx, f"{label}, {rate:g}/s", path, rate, duration, drain,
                                               warmup=rate == rates[0])
                if variant == "floor":
                    row = Row(row.variant, row.offered, row.summary, floor=True, note=row.note)
                    floors[rate] = row
                elif rate in floors:
                    row = compare(row, floors[rate])  # each rate against the floor at the same rate
                result.rows.append(row)
                result.series.append(series)
                if rate == _load_shape(ctx)[0]:  # scenario 3 compares with this rate
                    ctx.cache[f"reply_{variant}"] = (row, series)
                if answered_in_full(row):
                    knees[variant] = rate
                    continue
                higher = [r for r in rates if r > rate]
                if higher:
                    result.notes.append(f"The {variant} did not answer {rate:g}/s in full with p99 <= "
                                        f"{KNEE_P99:g} s; {', '.join(f'{r:g}' for r in higher)}/s not offered.")
                if rate == rates[0] and not ctx.quick:
                    ladder = [rate / 2]  # below the first rung: one more, lower, so the knee has a name
                    continue
                break
    finally:
        stack.set_graph_statuses(stack.options.graph_statuses)
    knee_rows = []
    for variant, knee in knees.items():
        knee_rows.append((variant, f"{knee:g}/s" if knee else f"below {lowest.get(variant, rates[0]):g}/s"))
    floor_knee, project_knee = knees.get("floor"), knees.get("project")
    ctx.cache["reply_knee"] = project_knee  # the campaign scenario offers half of it
    ratio = ""
    if project_available:
        if floor_knee and project_knee:
            ratio = f"{project_knee / floor_knee:.2f}"
        knee_rows.append(("project / floor", ratio or "-"))
        result.headline = (f"knee (full, p99 <= {KNEE_P99:g} s, with statuses): project "
                           f"{knee_rows[1][1]}, floor {knee_rows[0][1]}")
    result.tables.append(Table(f"Knee: the highest offered rate answered in full with p99 <= {KNEE_P99:g} s "
                               f"(ladder {', '.join(f'{r:g}' for r in rates)}/s, {duration:g} s each, "
                               f"statuses {', '.join(STATUSES)} for every reply)",
                               ("variant", "knee"), tuple(knee_rows)))
    return result
