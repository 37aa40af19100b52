"""What every scenario reports, and the statistics behind it (pure: no Django, no I/O).

A scenario returns a :class:`ScenarioResult`: rows of latency/throughput figures, each
compared with a floor row measured in the same run, plus the raw samples the report
plots. Scenarios whose figures are not latencies (football ingestion cost) add a plain
:class:`Table`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    OK = "ok"
    NOT_AVAILABLE = "not available"  # a part of the project it needs has not landed
    FAILED = "failed"  # it ran and broke: a bug in the project or the benchmark


def fmt_seconds(value: float | None) -> str:
    """A duration for a report cell: ms below a second, s above."""
    if value is None:
        return "-"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.01:
        return f"{value * 1000:.0f} ms"
    return f"{value * 1000:.1f} ms"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("values: cannot take a percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"q: must be within 0..100, got {q!r}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """Latency percentiles (seconds) and throughput (per second) of one measured variant."""

    count: int  # attempted
    completed: int  # finished successfully (the latencies)
    errors: int
    throughput: float
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, latencies: Sequence[float], *, attempted: int, window: float) -> Summary:
        """Summarise successful ``latencies`` out of ``attempted``, over a ``window`` of seconds."""
        if attempted < len(latencies):
            raise ValueError(f"attempted: {attempted} is fewer than the {len(latencies)} completed")
        throughput = len(latencies) / window if window > 0 else 0.0
        if not latencies:
            return cls(attempted, 0, attempted, throughput, None, None, None, None)
        return cls(
            attempted, len(latencies), attempted - len(latencies), throughput,
            percentile(latencies, 50), percentile(latencies, 95), percentile(latencies, 99), max(latencies),
        )


@dataclass(frozen=True)
class Row:
    """One measured variant. ``floor`` marks the reference that other rows are divided by."""

    variant: str
    offered: str  # what was asked of the system, e.g. "80/s for 60 s" or "2,000 x 50 ms backlog"
    summary: Summary
    floor: bool = False
    ratio_p50: float | None = None  # p50 / floor p50 (1.0 = as fast as the floor)
    ratio_throughput: float | None = None  # throughput / floor throughput
    note: str = ""


def compare(row: Row, floor: Row | None) -> Row:
    """``row`` with its ratios to ``floor`` filled in (when both have the figures)."""
    if floor is None or row.floor:
        return row
    ratio_p50 = None
    if row.summary.p50 is not None and floor.summary.p50:
        ratio_p50 = row.summary.p50 / floor.summary.p50
    ratio_tput = row.summary.throughput / floor.summary.throughput if floor.summary.throughput else None
    return Row(row.variant, row.offered, row.summary, row.floor, ratio_p50, ratio_tput, row.note)


@dataclass(frozen=True)
class Table:
    """A plain table for figures that are not latencies (e.g. ingestion time and queries)."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        for index, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"rows[{index}]: has {len(row)} cells for {len(self.columns)} columns")


@dataclass(frozen=True)
class Series:
    """Raw samples of one variant, for the plots: latencies and completion times (epoch)."""

    label: str
    latencies: tuple[float, ...]
    completions: tuple[float, ...] = ()
    start: float = 0.0  # epoch the variant started (x = 0 on the throughput plot)


@dataclass(frozen=True)
class Curve:
    """A measured cost against a size (e.g. seconds per number of fixtures), for a line plot."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.xs) != len(self.ys):
            raise ValueError(f"ys: {len(self.ys)} values for {len(self.xs)} xs")


@dataclass
class ScenarioResult:
    name: str
    title: str
    status: Status = Status.OK
    reason: str = ""
    description: str = ""
    rows: list[Row] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    curve_axes: tuple[str, str] = ("size", "cost")
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    latency_label: str = "latency"
    headline: str = ""  # the summary line, when the rows do not say it (e.g. cost tables)

    def add_rows(self, rows: Iterable[Row]) -> None:
        """Add rows, comparing each with the floor row among them (or already present)."""
        rows = list(rows)
        floor = next((r for r in [*self.rows, *rows] if r.floor), None)
        self.rows.extend(compare(r, floor) for r in rows)


def per_second(times: Iterable[float], start: float) -> list[tuple[float, int]]:
    """Completions counted in 1-second bins from ``start``: [(bin start s, count), ...]."""
    counts: dict[int, int] = {}
    for moment in times:
        slot = math.floor(moment - start)
        counts[slot] = counts.get(slot, 0) + 1
    if not counts:
        return []
    first, last = min(0, *counts), max(counts)
    return [(float(s), counts.get(s, 0)) for s in range(first, last + 1)]
