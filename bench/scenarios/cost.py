"""Scenario ``cost``: what one exchange costs, stage by stage, against the bare floor.

For each of N new users (``bench/cost.py``, in one process per variant): the signed "hi"
webhook through Django's WSGI handler with the project's middleware, every task it
published consumed from the real Redis and run through Celery's worker request machinery
(Django's worker fixup included) in the order the broker hands them out, the tasks those
publish as further stages, the Graph API call to the fake Graph API (its own process), then the status
webhooks sent, delivered and read for each reply, each its own POST. The stages are the
tasks the project actually published, found at run time.

Floor, same run, same Redis and fake: the bare Django of ``bench/floor_web.py`` (no apps,
no middleware, no database) publishing the bare chain of ``bench/floor_tasks.py`` (own
Celery app on kombu's redis transport), consumed the same way: bare view + 1 publish /
consume + publish / consume + 1 POST / three bare status POSTs.

Meanwhile the workers do not consume the queues, Beat is paused and the fake's own status
webhooks are off. Figures are per exchange (mean over the measured users, after a few
unmeasured ones). PostgreSQL server ms is the CPU of the backends this process used
(``/proc/<pid>/schedstat``; only when PostgreSQL runs on this machine). Redis: commands
(round trips).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.scenarios.base import ScenarioResult, Status, Table
from bench.scenarios.common import Context
from bench.stack import (
    APP_SECRET,
    DISPLAY_PHONE_NUMBER,
    FLOOR_QUEUE,
    PHONE_NUMBER_ID,
    ROOT,
)

NAME = "cost"
TITLE = "Cost per message, stage by stage"
BRPOP_SECONDS = 2.5  # over the BRPOP timeout of kombu's redis transport (1 s, the project's included), with margin
COLUMNS = ("stage", "CPU ms", "PG server ms", "statements", "new DB connections", "Redis commands (round trips)")


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip())
    users, warmup = ctx.scale(200, 5), ctx.scale(5, 1)
    stack = ctx.stack
    stack.set_graph_statuses([])
    consumers = (("floor_worker", FLOOR_QUEUE), ("celery_io_worker", "celery"))
    stopped: list[tuple[str, str]] = []
    stack.pause("celery_beat", True)
    try:
        for service, queue in consumers:
            stack.consumer(service, queue, active=False)
            stopped.append((service, queue))
        time.sleep(BRPOP_SECONDS)  # a BRPOP a worker issued before cancelling may still take one
        stack.purge([queue for _service, queue in consumers])
        figures = {mode: _measure(ctx, mode, users, warmup) for mode in ("floor", "project")}
    finally:
        stack.pause("celery_beat", False)
        for service, queue in stopped:
            stack.consumer(service, queue, active=True)
        stack.set_graph_statuses(stack.options.graph_statuses)
    floor, project = figures["floor"], figures["project"]
    pg = bool(project.get("pg_readable"))
    result.tables.append(_table(f"Project, per exchange ({users} new users)", project, pg))
    result.tables.append(_table(f"Floor, per exchange ({users} new users)", floor, pg))
    totals = _totals(project["stages"], users), _totals(floor["stages"], users)
    rows = []
    for label, (p, f) in (("CPU ms", (totals[0]["cpu_ms"], totals[1]["cpu_ms"])),
                          ("CPU + PG server ms", (totals[0]["cpu_ms"] + totals[0]["pg_ms"],
                                                  totals[1]["cpu_ms"] + totals[1]["pg_ms"])),
                          ("statements", (totals[0]["statements"], totals[1]["statements"])),
                          ("new DB connections", (totals[0]["connections"], totals[1]["connections"])),
                          ("Redis round trips", (totals[0]["redis_round_trips"], totals[1]["redis_round_trips"]))):
        rows.append((label, _num(p), _num(f), f"{p / f:.1f}x" if f else "-"))
    result.tables.append(Table("Project vs floor, totals per exchange", ("figure", "project", "floor", "ratio"),
                               tuple(rows)))
    whole = totals[0]["cpu_ms"] + totals[0]["pg_ms"]
    server = f" (PostgreSQL server included: {totals[0]['pg_ms']:.1f} ms)" if pg else " (database server not read)"
    result.headline = (f"project {whole:.1f} ms CPU per exchange{server}, floor "
                       f"{totals[1]['cpu_ms'] + totals[1]['pg_ms']:.1f} ms; {_num(totals[0]['statements'])} "
                       f"statements, {_num(totals[0]['connections'])} new connections")
    if whole > 0:
        result.notes.append(f"At {whole:.1f} ms of CPU per exchange, 2 cores do at most {2000 / whole:.0f} "
                            "exchanges/s (the project alone, nothing else on the machine).")
    if not pg:
        result.notes.append("PostgreSQL server CPU not read (SQLite, or PostgreSQL on another machine).")
    for note in project.get("notes", []) + floor.get("notes", []):
        result.notes.append(note)
    if not project["stages"]:
        result.status, result.reason = Status.FAILED, "the project variant measured no stage"
    return result


def _measure(ctx: Context, mode: str, users: int, warmup: int) -> dict[str, Any]:
    stack = ctx.stack
    env = dict(stack.env)
    if mode == "floor":
        env.pop("DJANGO_SETTINGS_MODULE", None)
    argv = [sys.executable, "-m", "bench.cost", mode, "--users", str(users), "--warmup", str(warmup),
            "--wa-base", str(ctx.wa_base()), "--graph-url", stack.graph_url, "--app-secret", APP_SECRET,
            "--phone-number-id", PHONE_NUMBER_ID, "--display-phone-number", DISPLAY_PHONE_NUMBER]
    ctx.progress(f"{mode}: {users} exchanges")
    log = ctx.workdir / f"cost-{mode}.log"
    with open(log, "wb") as stderr:
        done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr,
                              timeout=ctx.scale(600, 120))
    if done.returncode != 0:
        raise RuntimeError(f"bench.cost {mode} exited {done.returncode}: "
                           f"{log.read_text(errors='replace')[-1500:]}")
    return json.loads(done.stdout)


def _per(stage: dict[str, Any], users: int) -> dict[str, float]:
    return {k: stage[k] / users for k in ("cpu_ms", "pg_ms", "statements", "connections", "redis_commands",
                                          "redis_round_trips", "runs")}


def _totals(stages: list[dict[str, Any]], users: int) -> dict[str, float]:
    total = {k: 0.0 for k in ("cpu_ms", "pg_ms", "statements", "connections", "redis_commands",
                              "redis_round_trips", "runs")}
    for stage in stages:
        for key, value in _per(stage, users).items():
            total[key] += value
    return total


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.005 else f"{value:.2f}"


def _row(name: str, figures: dict[str, float], pg: bool, bold: bool = False) -> tuple[str, ...]:
    cells = (name, f"{figures['cpu_ms']:.1f}", f"{figures['pg_ms']:.1f}" if pg else "-", _num(figures["statements"]),
             _num(figures["connections"]),
             f"{_num(figures['redis_commands'])} ({_num(figures['redis_round_trips'])})")
    return tuple(f"**{c}**" for c in cells) if bold else cells


def _table(caption: str, data: dict[str, Any], pg: bool) -> Table:
    users = data["users"]
    rows = []
    for stage in data["stages"]:
        per = _per(stage, users)
        runs = per["runs"]
        name = stage["stage"] if abs(runs - 1) < 0.005 else f"{stage['stage']} ({runs:.2f} runs per exchange)"
        rows.append(_row(name, per, pg))
    rows.append(_row("total", _totals(data["stages"], users), pg, bold=True))
    return Table(caption, COLUMNS, tuple(rows))
