"""Scenario 6, sending throughput with 100 ms Graph API latency (``bench/sending.py``).

The measurement is issue 4's ``bench.sending.measure_sending``: a backlog of sends, each to
its own recipient, drained by the gevent I/O worker as compose configures it (the project's
send task as ``send_to_contact`` enqueues it: row, throughput token, claim, POST, wamid), against a
bare Celery task making the same POST on the floor worker (same pool and concurrency),
with the fake Graph API answering every request after 100 ms. The business number's
80/s limit is lifted for the run, so the figure is the send path's own cost. "Latency"
here is each message's arrival at the fake, counted from when consumption resumed.
"""

from __future__ import annotations

import importlib

from bench.scenarios.base import Row, ScenarioResult, Series, Status, Summary
from bench.scenarios.common import Context

NAME = "sending"
TITLE = "Sending throughput, 100 ms Graph API latency"
LATENCY_MS = 100


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="arrival at the fake after consumption resumed")
    try:
        sending = importlib.import_module("bench.sending")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.sending":
            raise
        result.status, result.reason = Status.NOT_AVAILABLE, "bench/sending.py has not landed (issue 4)"
        return result
    messages = ctx.scale(1000, 40)
    figures = sending.measure_sending(
        ctx.stack, wa_id_base=ctx.wa_base(), messages=messages, latency_ms=LATENCY_MS,
        warmup=ctx.scale(100, 5), timeout=ctx.scale(180.0, 60.0), progress=ctx.progress,
    )
    for run_, floor in ((figures.floor, True), (figures.project, False)):
        variant = "floor: bare Celery task, same POST" if floor else "project: send_to_contact -> send task"
        note = f"{run_.duplicates} duplicate sends" if run_.duplicates else ""
        row = Row(variant, f"{run_.messages:,} queued, {figures.latency_ms} ms Graph latency",
                  Summary.of(run_.arrivals, attempted=run_.messages, window=run_.seconds), floor=floor, note=note)
        result.add_rows([row])
        result.series.append(Series(variant, run_.arrivals, run_.arrivals, 0.0))
    result.notes.append(f"{figures.concurrency_note}; project / floor throughput = {figures.ratio:.2f}.")
    if figures.project.received < figures.project.messages or figures.project.duplicates:
        result.status = Status.FAILED
        result.reason = (f"project sent {figures.project.received}/{figures.project.messages} "
                         f"with {figures.project.duplicates} duplicates")
    return result
