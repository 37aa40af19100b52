"""What scenarios share: the run context, driving webhook load, and matching replies to requests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load import LoadResult, LoadSpec, run_load
from bench.scenarios.base import Row, Series, Summary
from bench.stack import APP_SECRET, DISPLAY_PHONE_NUMBER, PHONE_NUMBER_ID, WEBHOOK_PATH, Stack

# Each load run gets its own block of WhatsApp ids, so every request is a new contact and
# the reply to it is identified by the recipient alone.
_WA_BLOCK = 1_000_000
_WA_START = 26_377_000_000_000


class NotAvailable(Exception):
    """A part of the project the scenario needs has not landed; the message says which."""


@dataclass
class Context:
    stack: Stack
    quick: bool
    workdir: Path
    progress: Callable[[str], None]
    cache: dict[str, Any] = field(default_factory=dict)  # results shared between scenarios of one run
    football_sizes: tuple[int, ...] | None = None  # --football-sizes; None: the scenario's default
    campaign_recipients: int | None = None  # --campaign-recipients; None: the scenario's default
    campaign_user_rate: float | None = None  # --campaign-user-rate; None: half the reply knee
    bases: list[int] = field(default_factory=list)  # every block of WhatsApp ids handed out, in order
    _blocks: itertools.count = field(default_factory=itertools.count)

    def wa_base(self) -> int:
        """The first id of a new block of 1,000,000 WhatsApp ids (all share ``wa_prefix(base)``)."""
        base = _WA_START + next(self._blocks) * _WA_BLOCK
        self.bases.append(base)
        return base

    def scale(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full

    def settle(self, timeout: float) -> str:
        """Wait (bounded) for the system to be idle; if it is not, clear what earlier runs left.

        On a loaded machine a run the project could not keep up with leaves thousands of
        tasks behind, and the Beat sweepers would re-enqueue them from the database; the next
        measurement would then time that backlog. So: delete the contacts of every block
        handed out so far (their messages go with them), purge the queues, and wait for the
        tasks already running. Returns a note for the report, empty when nothing was cleared.
        """
        from bench.stack import FLOOR_QUEUE, PROJECT_QUEUES

        # A quick run measures nothing worth a full second of quiet per check (the smoke test
        # settles before every scenario and every load run).
        if self.stack.wait_idle(timeout, quiet=self.scale(1.0, 0.5)):
            return ""
        queues = [*PROJECT_QUEUES, FLOOR_QUEUE]
        dropped = self.stack.purge(queues)
        reserved = self.stack.unacked()  # running, or held by a worker until their countdown
        deleted = self.delete_contacts(self.bases)
        dropped += self.stack.purge(queues)  # what running tasks enqueued meanwhile
        self.stack.wait_idle(15)
        contacts = "the runs' contacts deleted" if deleted else "the runs' contacts could not be deleted"
        return (f"the system was still busy after {timeout:.0f} s ({dropped:,} queued and {reserved:,} reserved "
                f"tasks left by earlier runs): the queued ones were purged and {contacts} before this measurement")

    def delete_contacts(self, bases: list[int], attempts: int = 3) -> bool:
        """Delete the contacts of the given blocks of WhatsApp ids (their messages cascade).

        A task still running may insert a reply for one of them meanwhile, which the
        foreign key refuses at commit: try again, a little later.
        """
        from django.db import IntegrityError

        from conversations.models import Contact

        for attempt in range(attempts):
            try:
                for base in bases:
                    Contact.objects.filter(wa_id__startswith=wa_prefix(base)).delete()
                return True
            except IntegrityError:
                time.sleep(1.0 + attempt)
        return False


def load(ctx: Context, label: str, path: str, rate: float, duration: float, *, text: str = "hi",
         timeout: float = 10.0, warmup: bool = True) -> LoadResult:
    """Send ``rate``/s signed text webhooks to ``path`` for ``duration`` s, open loop.

    A full run first sends 2 s of unrecorded traffic to the same path, so imports, connection
    pools and caches of every process on the path are warm when the clock starts.
    """
    if warmup and not ctx.quick:
        load(ctx, f"{label} (warm-up)", path, min(rate, 40.0), 2.0, text=text, timeout=timeout, warmup=False)
    spec = LoadSpec(
        url=ctx.stack.url_for(path), rate=rate, duration=duration, max_requests=int(rate * duration) + 1,
        app_secret=APP_SECRET, phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY_PHONE_NUMBER,
        wa_id_base=ctx.wa_base(), text=text, timeout=timeout, drain_timeout=timeout,
    )
    total = spec.count

    def progress(sent: int, done: int) -> None:
        ctx.progress(f"{label}: {sent}/{total} sent, {done} answered")

    return run_load(spec, ctx.workdir, progress)


def wa_prefix(base: int) -> str:
    """The digits every WhatsApp id of the block starting at ``base`` begins with."""
    return str(base // _WA_BLOCK)


def error_note(result: LoadResult) -> str:
    """The failed requests of a load run, by cause (HTTP status or client error)."""
    causes: dict[str, int] = {}
    for record in result.records:
        if not record.ok:
            cause = f"HTTP {record.status}" if record.status is not None else (record.error or "?").split(":")[0]
            causes[cause] = causes.get(cause, 0) + 1
    return ", ".join(f"{count:,} {cause}" for cause, count in sorted(causes.items(), key=lambda c: -c[1]))


def ack_row(variant: str, result: LoadResult, *, floor: bool = False, note: str = "") -> Row:
    """A row for the HTTP answers themselves (webhook ingest)."""
    errors = error_note(result)
    note = "; ".join(n for n in (note, f"failed: {errors}" if errors else "") if n)
    ok = [r for r in result.records if r.ok]
    latencies = [r.latency for r in ok if r.latency is not None]
    window = (max(r.done_at for r in ok) - result.started_at) if ok else 0.0
    spec = result.spec
    return Row(variant, f"{spec.rate:g}/s for {spec.duration:g} s", Summary.of(latencies, attempted=len(result.records),
               window=window), floor=floor, note=note)


def ack_series(label: str, result: LoadResult) -> Series:
    ok = [r for r in result.records if r.ok and r.done_at is not None]
    return Series(label, tuple(r.latency for r in ok), tuple(r.done_at for r in ok), result.started_at)


def wait_for_replies(ctx: Context, wa_ids: set[str], since: int, timeout: float, label: str) -> dict[str, float]:
    """First accepted message the fake Graph API received for each of ``wa_ids`` (epoch)."""
    found: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while True:
        for record in ctx.stack.fake_messages(since):
            since = max(since, record["seq"])
            to = record.get("to")
            if to in wa_ids and to not in found:
                found[to] = record["received_at"]
        ctx.progress(f"{label}: {len(found)}/{len(wa_ids)} replies received")
        if len(found) >= len(wa_ids) or time.monotonic() > deadline:
            return found
        time.sleep(ctx.scale(1.0, 0.2))  # quick runs wait for a handful of replies: look often


def reply_run(ctx: Context, label: str, path: str, rate: float, duration: float,
              drain: float, *, warmup: bool = True) -> tuple[Row, Series, LoadResult]:
    """Open-loop webhooks to ``path``; latency = due time of the POST -> reply at the fake Graph API."""
    settled = ctx.settle(ctx.scale(20, 15))
    if warmup and not ctx.quick:
        load(ctx, f"{label} (warm-up)", path, min(rate, 40.0), 2.0, warmup=False)
        ctx.stack.wait_idle(30)
    since = ctx.stack.fake_last_seq()
    cpu_before = ctx.stack.cpu_seconds()
    result = load(ctx, label, path, rate, duration, warmup=False)
    accepted = {r.wa_id: r for r in result.records if r.ok}
    replies = wait_for_replies(ctx, set(accepted), since, drain, label)
    cpu = cpu_note(cpu_before, ctx.stack.cpu_seconds())
    latencies = [replies[w] - accepted[w].due_at for w in accepted if w in replies]
    window = (max(replies.values()) - result.started_at) if replies else 0.0
    acks = [r.latency for r in accepted.values() if r.latency is not None]
    errors = error_note(result)
    note = f"POSTs failed: {errors}; " if errors else ""
    if acks:
        acks.sort()
        note += f"webhook answered in {acks[len(acks) // 2] * 1000:.0f} ms p50"
    if cpu:
        note += f"; CPU s during the run: {cpu}"
    if settled:
        note += f"; {settled}"
    row = Row(label, f"{rate:g}/s for {duration:g} s",
              Summary.of(latencies, attempted=len(result.records), window=window), note=note)
    series = Series(label, tuple(latencies), tuple(replies.values()), result.started_at)
    return row, series, result


def cpu_note(before: dict[str, float], after: dict[str, float]) -> str:
    """Which of the system's processes used how much CPU between two readings (the busy ones)."""
    used = sorted(((after[n] - before.get(n, 0.0), n) for n in after), reverse=True)
    return ", ".join(f"{name} {seconds:.1f}" for seconds, name in used if seconds >= 0.05)


def check_webhook(ctx: Context) -> None:
    """Raise NotAvailable unless the project's webhook accepts a signed text message."""
    from devtools import webhook_payloads

    body = webhook_payloads.webhook_body([webhook_payloads.text("hi", wa_id=str(ctx.wa_base()))],
                                         phone_number_id=PHONE_NUMBER_ID, display_phone_number=DISPLAY_PHONE_NUMBER)
    status = ctx.stack.post_webhook(body)
    if status != 200:
        raise NotAvailable(f"POST {WEBHOOK_PATH} answered {status} to a signed text message (issue 3's webhook)")


def check_reply(ctx: Context, timeout: float = 30.0, path: str = WEBHOOK_PATH) -> float:
    """Raise NotAvailable unless a 'hi' to ``path`` gets a reply at the fake Graph API; returns the latency."""
    from devtools import webhook_payloads

    wa_id = str(ctx.wa_base())
    since = ctx.stack.fake_last_seq()
    body = webhook_payloads.webhook_body([webhook_payloads.text("hi", wa_id=wa_id)], phone_number_id=PHONE_NUMBER_ID,
                                         display_phone_number=DISPLAY_PHONE_NUMBER)
    started = time.time()
    status = ctx.stack.post_webhook(body, path, base=ctx.stack.url_for(path)[: -len(path)])
    if status != 200:
        raise NotAvailable(f"POST {path} answered {status} to a signed text message (issue 3's webhook)")
    replies = wait_for_replies(ctx, {wa_id}, since, timeout, "first reply")
    if wa_id not in replies:
        raise NotAvailable(f"a 'hi' got no reply at the fake Graph API within {timeout:g} s "
                           "(flows.process_message / send_message not doing it yet: issues 4 and 5)")
    return replies[wa_id] - started
