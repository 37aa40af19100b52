"""Sending throughput at 100 ms Graph API latency: the project's send path against its floor.

Both variants drain the same backlog to the same fake Graph API (each request answered after
``latency_ms``), on the same broker, gevent pool and concurrency:

* **project**: ``conversations.services.sending.send_to_contact`` writes the rows, then the
  compose I/O worker runs the send task ``send_to_contact`` enqueued for each: load the row, attempt
  record and throughput token in Redis, claim, POST, store the wamid.
* **floor**: ``bench.floor_tasks.send``, a bare Celery task making the same POST with the same
  pooled httpx client settings and nothing else, on the stack's floor worker.

Each backlog is queued while its worker is told to stop consuming, then consumption resumes
and the clock runs from that moment to the last arrival at the fake. The business number's
throughput limit is raised for the run (and restored), so the figure is the send path's
cost, not Meta's 80/s. Needs a running ``bench.stack.Stack`` with Django set up in this
process (``Stack.start()`` does both).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.stack import Stack

__all__ = ["DrainRun", "SendingFigures", "measure_sending"]

UNBOUND_RATE = 100_000.0  # messages/s: the throughput limit never binds during the run


@dataclass(frozen=True)
class DrainRun:
    """One backlog drained: ``per_second`` = received / seconds from resume to last arrival."""

    label: str
    messages: int
    received: int
    duplicates: int  # more than one accepted request for one recipient
    seconds: float
    per_second: float
    arrivals: tuple[float, ...]  # seconds after consumption resumed, sorted


@dataclass(frozen=True)
class SendingFigures:
    latency_ms: int
    concurrency_note: str
    project: DrainRun
    floor: DrainRun

    @property
    def ratio(self) -> float:
        """Project throughput / floor throughput (1.0 = the send path costs nothing extra)."""
        return self.project.per_second / self.floor.per_second if self.floor.per_second else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        for run in ("project", "floor"):
            data[run].pop("arrivals")
        return data


def measure_sending(
    stack: Stack,
    *,
    wa_id_base: int,
    messages: int = 2000,
    latency_ms: int = 100,
    warmup: int = 100,
    timeout: float = 180.0,
    progress: Callable[[str], None] = lambda _text: None,
) -> SendingFigures:
    """Drain ``messages`` sends through the project and through the floor; return both rates.

    ``wa_id_base``: the first of ``2 * (messages + warmup)`` consecutive WhatsApp ids that no
    other scenario uses (every message goes to its own recipient, as replies to many users do).
    """
    if messages < 1 or warmup < 0:
        raise ValueError(f"messages/warmup: need messages >= 1 and warmup >= 0, got {messages}/{warmup}")
    from meta_integration.models import MetaAppConfig

    config = MetaAppConfig.objects.get(phone_number_id=_bench_phone_number_id())
    saved_rate = config.send_rate_per_second
    MetaAppConfig.objects.filter(pk=config.pk).update(send_rate_per_second=UNBOUND_RATE)
    stack.set_graph_latency(latency_ms)
    ids = iter(range(wa_id_base, wa_id_base + 2 * (messages + warmup)))
    try:
        runs = {}
        for variant in ("project", "floor"):
            if warmup:  # connection pools, imports and caches warm before the clock starts
                warm = _drain(stack, variant, f"{variant} warm-up", _take(ids, warmup), timeout, progress)
                if not warm.received:
                    raise RuntimeError(
                        f"{variant}: none of {warmup} warm-up sends reached the fake Graph API in {timeout:g} s; "
                        f"see the {_VARIANTS[variant][0]} log (is the conversations Outbox registered?)"
                    )
            runs[variant] = _drain(stack, variant, variant, _take(ids, messages), timeout, progress)
    finally:
        stack.set_graph_latency(0)
        MetaAppConfig.objects.filter(pk=config.pk).update(send_rate_per_second=saved_rate)
        _forget_contacts(wa_id_base, 2 * (messages + warmup))
    note = "compose celery_io_worker (gevent) vs bench floor worker (same pool and concurrency)"
    return SendingFigures(latency_ms, note, runs["project"], runs["floor"])


def _take(ids: Iterator[int], count: int) -> list[str]:
    return [str(next(ids)) for _ in range(count)]


# ------------------------------------------------------------------ the two variants


def _bench_phone_number_id() -> str:
    from bench.stack import PHONE_NUMBER_ID

    return PHONE_NUMBER_ID


def _queue_project(wa_ids: list[str]) -> None:
    """Write contacts and pending rows; the sends are enqueued on commit (worker paused)."""
    from django.db import transaction
    from django.utils import timezone

    from conversations.models import Contact
    from conversations.services.sending import send_to_contact
    from meta_integration.models import MetaAppConfig

    config = MetaAppConfig.objects.get(phone_number_id=_bench_phone_number_id())
    now = timezone.now()
    Contact.objects.bulk_create(
        [Contact(wa_id=wa_id, app_config=config, last_inbound_at=now) for wa_id in wa_ids], batch_size=500
    )
    with transaction.atomic():
        for contact in Contact.objects.filter(wa_id__in=wa_ids).order_by("pk"):
            send_to_contact(contact, {"type": "text", "body": f"Your odds for today, {contact.wa_id}"})


def _queue_floor(wa_ids: list[str]) -> None:
    from bench.floor_tasks import FLOOR_QUEUE, send

    for wa_id in wa_ids:
        send.apply_async(args=(wa_id, f"Your odds for today, {wa_id}"), queue=FLOOR_QUEUE)


# variant -> (stack service, queue it consumes, how to queue a backlog)
_VARIANTS: dict[str, tuple[str, str, Callable[[list[str]], None]]] = {
    "project": ("celery_io_worker", "celery", _queue_project),
    "floor": ("floor_worker", "bench_floor", _queue_floor),
}


def _drain(
    stack: Stack, variant: str, label: str, wa_ids: list[str], timeout: float, progress: Callable[[str], None]
) -> DrainRun:
    service, queue, queue_backlog = _VARIANTS[variant]
    stack.wait_idle(60)
    since = stack.fake_last_seq()  # before queueing: a send slipping out before the pause still counts
    stack.consumer(service, queue, active=False)
    try:
        progress(f"{label}: queueing {len(wa_ids)} sends")
        queue_backlog(wa_ids)
    finally:
        resumed = time.time()
        stack.consumer(service, queue, active=True)
    wanted, seen, duplicates = set(wa_ids), {}, 0
    deadline = time.monotonic() + timeout
    while len(seen) < len(wanted) and time.monotonic() < deadline:
        time.sleep(0.5)
        for record in stack.fake_messages(since):
            since = max(since, record["seq"])
            to = record.get("to")
            if to in wanted:
                if to in seen:
                    duplicates += 1
                else:
                    seen[to] = record["received_at"]
        progress(f"{label}: {len(seen)}/{len(wanted)} received")
    arrivals = tuple(sorted(t - resumed for t in seen.values()))
    seconds = arrivals[-1] if arrivals else 0.0
    per_second = len(arrivals) / seconds if seconds > 0 else 0.0
    return DrainRun(label, len(wa_ids), len(arrivals), duplicates, seconds, per_second, arrivals)


def _forget_contacts(first: int, count: int) -> None:
    """Delete what the run wrote (contacts and, by cascade, their messages)."""
    from conversations.models import Contact

    Contact.objects.filter(wa_id__in=[str(n) for n in range(first, first + count)]).delete()
