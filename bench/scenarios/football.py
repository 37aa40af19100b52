"""Scenario 7, football ingestion at 100 / 1,000 (/ 5,000) fixtures and settlement of 10,000 bets.

The measurement is issue 6's ``bench.football.measure_football`` (fake API-Football in its
own process, odds from 5 bookmakers), run in the benchmark's process on the run's fresh
database: wall time, SQL statements and API requests per step and size, then the time to
settle 10,000 bets. The 5,000-fixture size runs only with ``--football-sizes 100,1000,5000``
(it alone takes longer than the 15-minute budget of the whole run). There is no bare-Celery
floor for this one: the reference is the smallest size, and "vs smallest" shows how the
cost per fixture grows (1.00x = linear).
"""

from __future__ import annotations

import importlib

from bench.scenarios.base import Curve, ScenarioResult, Status, Table, fmt_seconds
from bench.scenarios.common import Context

NAME = "football"
TITLE = "Football ingestion and settlement"
# 5,000 fixtures (odds from 5 bookmakers, then a refresh) took about 14 minutes on the 2-core
# machine alone, more than the whole run's budget: `--football-sizes 100,1000,5000` adds it.
DEFAULT_SIZES = (100, 1000)


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            curve_axes=("fixtures (log)", "seconds (log)"))
    try:
        football = importlib.import_module("bench.football")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.football":
            raise
        result.status, result.reason = Status.NOT_AVAILABLE, "bench/football.py has not landed (issue 6)"
        return result
    figures = football.measure_football(
        sizes=ctx.football_sizes or ctx.scale(DEFAULT_SIZES, (20, 30)), bets=ctx.scale(10_000, 200),
        progress=ctx.progress,
    )
    base = figures.ingest[0].ms_per_fixture
    rows = []
    for figure in figures.ingest:
        rows.append((
            f"{figure.fixtures:,}", f"{figure.selections:,}",
            fmt_seconds(figure.fixtures_step.seconds), f"{figure.fixtures_step.statements:,}",
            fmt_seconds(figure.odds.seconds), f"{figure.odds.statements:,}", f"{figure.odds.pages:,}",
            f"{figure.odds.statements_per_page:.1f}",
            f"{figure.fixtures_step.requests + figure.odds.requests:,}",
            f"{figure.ms_per_fixture:.2f}", f"{figure.ms_per_fixture / base:.2f}x" if base else "-",
            fmt_seconds(figure.refresh.seconds), f"{figure.refresh.statements:,}",
        ))
    result.tables.append(Table(
        f"Ingestion ({figures.database}): fixtures, then odds pages, then the same odds again (refresh).",
        ("fixtures", "selections", "fixtures time", "fixtures stmts", "odds time", "odds stmts", "odds pages",
         "stmts / page", "API requests", "ms / fixture", "vs smallest", "refresh time", "refresh stmts"),
        tuple(rows),
    ))
    settle = figures.settle
    result.tables.append(Table(
        "Settlement: results stored -> every ticket settled and credited (notifications left out).",
        ("bets", "tickets", "fixtures", "time", "statements", "bets / s"),
        ((f"{settle.bets:,}", f"{settle.tickets:,}", f"{settle.fixtures}", fmt_seconds(settle.seconds),
          f"{settle.statements:,}", f"{settle.bets_per_second:,.0f}"),),
    ))
    largest = figures.ingest[-1]
    result.headline = (f"{largest.fixtures:,} fixtures ingested in "
                       f"{fmt_seconds(largest.fixtures_step.seconds + largest.odds.seconds)} "
                       f"({largest.ms_per_fixture:.2f} ms/fixture, {largest.ms_per_fixture / base:.2f}x the smallest); "
                       f"{settle.bets:,} bets settled in {fmt_seconds(settle.seconds)}" if base else "")
    sizes = tuple(float(f.fixtures) for f in figures.ingest)
    for label, step in (("fixtures", "fixtures_step"), ("odds", "odds"), ("odds refresh", "refresh")):
        result.curves.append(Curve(label, sizes, tuple(max(getattr(f, step).seconds, 1e-3) for f in figures.ingest)))
    return result
