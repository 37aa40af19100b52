"""Scenario 6, sending throughput with 100 ms Graph API latency (``bench/sending.py``).

The measurement is issue 4's function in ``bench/sending.py``: messages/s of the gevent I/O
worker as compose configures it, against a bare Celery task making the same HTTP call (the
floor), both in this run. This scenario only calls it and reports its figures.
"""

from __future__ import annotations

import importlib

from bench.scenarios.base import ScenarioResult, Status
from bench.scenarios.common import Context

NAME = "sending"
TITLE = "Sending throughput, 100 ms Graph API latency"


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="send latency")
    try:
        importlib.import_module("bench.sending")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.sending":
            raise
        result.status, result.reason = Status.NOT_AVAILABLE, "bench/sending.py has not landed (issue 4)"
        return result
    result.status, result.reason = Status.NOT_AVAILABLE, "bench/sending.py landed after this runner was written"
    return result
