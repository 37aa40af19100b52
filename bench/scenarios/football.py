"""Scenario 7, football ingestion at 100 / 1,000 / 5,000 fixtures and settlement of 10,000 bets.

The measurement is issue 6's function in ``bench/football.py`` (fake API-Football, odds
from 5 bookmakers): time and query count per size, to show how the cost grows, and the
time to settle 10,000 bets. This scenario only calls it and reports its figures.
"""

from __future__ import annotations

import importlib

from bench.scenarios.base import ScenarioResult, Status
from bench.scenarios.common import Context

NAME = "football"
TITLE = "Football ingestion and settlement"


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip())
    try:
        importlib.import_module("bench.football")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.football":
            raise
        result.status, result.reason = Status.NOT_AVAILABLE, "bench/football.py has not landed (issue 6)"
        return result
    result.status, result.reason = Status.NOT_AVAILABLE, "bench/football.py landed after this runner was written"
    return result
