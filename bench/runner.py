"""Run benchmark scenarios against one freshly started system and write the report.

``python -m bench all`` (or scenario names) starts the stack (``bench/stack.py``), runs
each scenario in order with a progress line, stops the stack, and writes
``REPORT.md`` plus plots. Bounded: each scenario bounds its own counts and waits, and
the run as a whole stops starting scenarios once its time budget is spent (the ones
left are reported as not run). ``--quick`` scales everything down to seconds.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bench.report import RunInfo, machine_info, package_versions, write_report
from bench.scenarios import SCENARIOS
from bench.scenarios.base import ScenarioResult, Status
from bench.scenarios.common import Context
from bench.stack import Stack, StackOptions

DEFAULT_OUTPUT = Path(__file__).resolve().parent
FULL_BUDGET_SECONDS = 14 * 60
QUICK_BUDGET_SECONDS = 4 * 60


class Progress:
    """One status line: rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, stream: TextIO = sys.stderr, interval: float | None = None):
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self.prefix = ""
        self.started = time.monotonic()
        self._last = 0.0
        self._width = 0

    def phase(self, prefix: str) -> None:
        self.prefix = prefix
        self._last = 0.0
        self.update("starting")

    def update(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        elapsed = int(now - self.started)
        line = f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {self.prefix}: {text}"
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(f"{self.prefix}: {text}\n")
        self.stream.flush()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["all"],
                        help=f"'all' or any of: {', '.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="scale every scenario down to a few seconds")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="where REPORT.md and plots/ go (default: bench/)")
    parser.add_argument("--graph-statuses", default="",
                        help="status webhooks the fake Graph API posts back per message, e.g. sent,delivered,read "
                             "in the scenarios that do not choose their own (default: none; see bench/README.md)")
    parser.add_argument("--football-sizes", default="",
                        help="fixture counts for the football scenario, e.g. 100,1000,5000 (default: 100,1000)")
    parser.add_argument("--campaign-recipients", type=int, default=0,
                        help="recipients of the campaign scenario (default: 10,000; --quick: 300)")
    parser.add_argument("--campaign-user-rate", type=float, default=0.0,
                        help="new users per second writing during the campaign scenario (default: half the reply "
                             "knee of the same run, else 20; --quick: 10)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs after a good run")
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenarios in (["all"], []) else args.scenarios
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from: all, {', '.join(SCENARIOS)}")
    args.names = names
    if args.campaign_recipients < 0:
        parser.error(f"--campaign-recipients: a count >= 1, got {args.campaign_recipients}")
    if args.campaign_user_rate < 0:
        parser.error(f"--campaign-user-rate: a rate > 0, got {args.campaign_user_rate}")
    try:
        args.football_sizes = tuple(int(n) for n in args.football_sizes.split(",") if n) or None
    except ValueError:
        parser.error(f"--football-sizes: comma-separated fixture counts, got {args.football_sizes!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    load_before = _loadavg()
    budget = QUICK_BUDGET_SECONDS if args.quick else FULL_BUDGET_SECONDS
    deadline = time.monotonic() + budget
    progress = Progress()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    stack = Stack(StackOptions(
        workdir=workdir,
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        multipart_gap_seconds=0.2 if args.quick else 2.0,
        graph_statuses=tuple(s for s in args.graph_statuses.split(",") if s),
    ))
    results: list[ScenarioResult] = []
    progress.phase("stack")
    try:
        stack.start(on_step=progress.update)
    except Exception:
        progress.done(f"could not start the system; logs in {workdir}")
        raise
    progress.done(f"up ({stack.database_label}, Redis {stack.env['REDIS_URL']})")
    configuration = stack.describe()
    redis_version = ""
    try:
        ctx = Context(stack, args.quick, workdir, progress.update, football_sizes=args.football_sizes,
                      campaign_recipients=args.campaign_recipients or None,
                      campaign_user_rate=args.campaign_user_rate or None)
        redis_version = str(stack.redis.info("server").get("redis_version", ""))
        for index, name in enumerate(args.names, 1):
            module = SCENARIOS[name]
            progress.phase(f"{index}/{len(args.names)} {name}")
            if time.monotonic() > deadline:
                result = ScenarioResult(name, module.TITLE, Status.NOT_AVAILABLE,
                                        f"not run: the run's {budget // 60}-minute budget was spent")
            else:
                try:
                    settled = ctx.settle(ctx.scale(20, 15))
                except Exception as exc:  # noqa: BLE001 - measure anyway, and say so
                    settled = f"clearing what earlier runs left failed ({type(exc).__name__}: {exc})"
                try:
                    result = _run_one(module, ctx)
                except KeyboardInterrupt:  # Ctrl-C: keep what the finished scenarios measured
                    results.append(ScenarioResult(name, module.TITLE, Status.NOT_AVAILABLE, "interrupted (Ctrl-C)"))
                    progress.done("interrupted; writing the report of the scenarios that finished")
                    break
                if settled:
                    result.notes.insert(0, f"Before this scenario {settled}.")
            results.append(result)
            progress.done(f"{result.status.value} in {result.seconds:.0f} s"
                          + (f" ({result.reason})" if result.reason else ""))
    finally:
        progress.phase("stack")
        progress.update("stopping")
        stack.stop()
        progress.done("stopped")
    finished = datetime.now(UTC)
    versions = package_versions()
    if redis_version:
        versions["redis-server"] = redis_version
    machine = machine_info()
    machine["load average (1 min) before / after"] = f"{load_before} / {_loadavg()} (other processes share the cores)"
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    info = RunInfo(started, finished, args.quick, command, machine, versions, configuration)
    report = write_report(info, results, args.output)
    print(f"report: {report}", file=sys.stderr)
    failed = [r for r in results if r.status is Status.FAILED]
    if failed or args.keep_logs:
        print(f"process logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def _loadavg() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def _run_one(module, ctx: Context) -> ScenarioResult:
    started = time.monotonic()
    try:
        result = module.run(ctx)
    except Exception as exc:  # noqa: BLE001 - one broken scenario must not lose the others' figures
        result = ScenarioResult(module.NAME, module.TITLE, Status.FAILED,
                                f"{type(exc).__name__}: {exc}".strip()[:500])
        result.notes.append("Traceback (last lines): " + " / ".join(
            line.strip() for line in traceback.format_exc().strip().splitlines()[-6:]))
    result.seconds = time.monotonic() - started
    return result
