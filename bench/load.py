"""Open-loop load generator: signed webhook POSTs on a fixed schedule, from its own process.

Why open loop: a closed loop (send, wait, send) slows down when the server slows down,
so it never shows queueing. Here request ``i`` is due at ``t0 + i / rate`` whether or not
earlier ones finished, and its latency is counted from that due time (a request that had
to wait for a free connection is late, and the lateness is part of what it measures).

Why a separate process and raw sockets: the load generator must not share a GIL or an
event loop with anything it measures, and an ``httpx.AsyncClient`` juggling hundreds of
connections is itself slow enough to blur the figures. Requests are pre-built and
pre-signed before the clock starts, so the schedule loop only writes bytes.

Run: ``python -m bench.load --spec spec.json --out result.json`` (the runner does this
through :func:`run_load`). Every run is bounded: ``max_requests`` requests scheduled
within ``duration`` seconds, then at most ``drain_timeout`` seconds to collect answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from devtools import raw_http

__all__ = [
    "LoadError",
    "LoadResult",
    "LoadSpec",
    "RequestRecord",
    "build_requests",
    "main",
    "run_load",
    "run_schedule",
]


class LoadError(ValueError):
    """A load spec that cannot be run; ``field`` names the offending setting."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how fast, and for how long (every bound is explicit)."""

    url: str  # http://127.0.0.1:<port>/<path>
    rate: float  # requests per second offered
    duration: float  # seconds over which requests are scheduled
    max_requests: int  # hard cap on requests, whatever rate * duration says
    app_secret: str  # signs X-Hub-Signature-256 like Meta
    phone_number_id: str
    display_phone_number: str
    wa_id_base: int  # request i comes from WhatsApp user wa_id_base + i (one new contact each)
    text: str = "hi"
    timeout: float = 10.0  # per request, from the moment it was due
    max_connections: int = 256
    drain_timeout: float = 15.0  # after the last request was due

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise LoadError("url", f"must be http://host:port/path (plain HTTP, explicit port), got {self.url!r}")
        if not (self.rate > 0):
            raise LoadError("rate", f"must be > 0 requests/s, got {self.rate!r}")
        if not (self.duration > 0):
            raise LoadError("duration", f"must be > 0 s, got {self.duration!r}")
        if not isinstance(self.max_requests, int) or self.max_requests < 1:
            raise LoadError("max_requests", f"must be an int >= 1, got {self.max_requests!r}")
        if not self.app_secret:
            raise LoadError("app_secret", "required to sign the webhook like Meta")
        if not self.phone_number_id.isdigit():
            raise LoadError("phone_number_id", f"must be Meta's numeric id, got {self.phone_number_id!r}")
        if not isinstance(self.wa_id_base, int) or not (10**9 <= self.wa_id_base < 10**14):
            raise LoadError("wa_id_base", f"must give 10-15 digit WhatsApp ids, got {self.wa_id_base!r}")
        if not (self.timeout > 0) or not (self.drain_timeout >= 0):
            raise LoadError("timeout", "timeout must be > 0 and drain_timeout >= 0")
        if not isinstance(self.max_connections, int) or self.max_connections < 1:
            raise LoadError("max_connections", f"must be an int >= 1, got {self.max_connections!r}")

    @property
    def count(self) -> int:
        """How many requests this spec schedules."""
        return max(1, min(self.max_requests, int(self.rate * self.duration)))

    def wa_id(self, index: int) -> str:
        return str(self.wa_id_base + index)


@dataclass(frozen=True)
class RequestRecord:
    """One request: when it was due, sent and answered (epoch seconds), and how it ended."""

    index: int
    wa_id: str
    due_at: float
    sent_at: float | None
    done_at: float | None
    status: int | None  # HTTP status; None when no answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def latency(self) -> float | None:
        """Seconds from due time to the complete answer (open-loop latency)."""
        return None if self.done_at is None else self.done_at - self.due_at


@dataclass(frozen=True)
class LoadResult:
    spec: LoadSpec
    started_at: float  # epoch of t0 (request 0 was due then)
    records: tuple[RequestRecord, ...] = field(repr=False)

    def to_json(self) -> dict:
        return {
            "spec": asdict(self.spec),
            "started_at": self.started_at,
            "records": [
                [r.index, r.wa_id, r.due_at, r.sent_at, r.done_at, r.status, r.error] for r in self.records
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> LoadResult:
        spec = LoadSpec(**data["spec"])
        records = tuple(RequestRecord(*row) for row in data["records"])
        return cls(spec, data["started_at"], records)


# --------------------------------------------------------------------------- building requests


def build_requests(spec: LoadSpec) -> list[bytes]:
    """Every request of the run as raw HTTP/1.1 bytes: a signed single-text webhook POST each.

    Each comes from a new WhatsApp user (``wa_id_base + i``) with a fresh wamid, so the
    project creates one contact and one message per request and the reply to request ``i``
    is the first message the fake Graph API receives for that user.
    """
    from devtools import webhook_payloads

    parts = urlsplit(spec.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = f"{parts.hostname}:{parts.port}"
    out = []
    for index in range(spec.count):
        wa_id = spec.wa_id(index)
        body = webhook_payloads.webhook_body(
            [webhook_payloads.text(spec.text, wa_id=wa_id)],
            phone_number_id=spec.phone_number_id,
            display_phone_number=spec.display_phone_number,
            profile_name=f"Bench User {index}",
        )
        raw, headers = webhook_payloads.signed_request(body, spec.app_secret)
        head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(raw)}", "Connection: keep-alive"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        out.append(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + raw)
    return out


# --------------------------------------------------------------------------- the HTTP client


STALE_RETRIES = 8


class _Closed(Exception):
    """The connection ended before a complete response (a stale keep-alive, or a reset)."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return (status, keep the connection). A connection that
    ends before the response's head is ``_Closed`` (the request may be sent again)."""
    try:
        head = await raw_http.read_head(reader)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise _Closed(str(exc) or type(exc).__name__) from None
    return head.status, await raw_http.read_body(reader, head)


class _Pool:
    """Keep-alive connections to one host, at most ``limit`` open; waiters queue FIFO."""

    def __init__(self, host: str, port: int, limit: int):
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0
        self.freed = asyncio.Condition()

    async def get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        async with self.freed:
            while not self.idle and self.open >= self.limit:
                await self.freed.wait()
            if self.idle:
                reader, writer = self.idle.pop()
                return reader, writer, True
            self.open += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except BaseException:  # refused, or the request timed out while connecting
            await self.discard(None)
            raise
        return reader, writer, False

    async def put(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        async with self.freed:
            self.idle.append(conn)
            self.freed.notify()

    async def discard(self, writer: asyncio.StreamWriter | None) -> None:
        if writer is not None:
            writer.close()
        async with self.freed:
            self.open -= 1
            self.freed.notify()

    def close(self) -> None:
        for _reader, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _one(pool: _Pool, raw: bytes) -> tuple[float, int]:
    """Send one request; retry when a reused connection was stale, fail when a fresh one is closed.

    Gunicorn closes idle keep-alive connections after its keep-alive timeout, so after a
    pause several pooled connections can be stale at once: each is dropped in turn (the
    request never reached the application), as HTTP clients do.
    """
    for _attempt in range(STALE_RETRIES + 1):
        reader, writer, reused = await pool.get()
        sent = time.time()
        try:
            writer.write(raw)
            await writer.drain()
            status, keep = await _read_response(reader)
        except (_Closed, ConnectionError) as exc:
            await pool.discard(writer)
            if reused:
                continue  # the server closed an idle keep-alive connection: not the request's fault
            raise _Closed(str(exc)) from None
        except BaseException:
            await pool.discard(writer)
            raise
        if keep:
            await pool.put((reader, writer))
        else:
            await pool.discard(writer)
        return sent, status
    raise _Closed(f"{STALE_RETRIES + 1} pooled connections in a row were stale")


async def run_schedule(
    spec: LoadSpec,
    requests: Sequence[bytes],
    on_progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Send ``requests`` on the open-loop schedule and collect one record per request."""
    parts = urlsplit(spec.url)
    pool = _Pool(parts.hostname or "127.0.0.1", parts.port or 80, spec.max_connections)
    count = len(requests)
    results: list[RequestRecord | None] = [None] * count
    done = 0
    mono0 = time.monotonic() + 0.05
    wall0 = time.time() + (mono0 - time.monotonic())

    async def fire(index: int, due: float) -> None:
        nonlocal done
        sent: float | None = None
        try:
            sent, status = await asyncio.wait_for(_one(pool, requests[index]), timeout=spec.timeout)
            results[index] = RequestRecord(index, spec.wa_id(index), due, sent, time.time(), status)
        except TimeoutError:
            results[index] = RequestRecord(index, spec.wa_id(index), due, sent, None, None, "timeout")
        except (OSError, _Closed, ValueError, IndexError) as exc:
            results[index] = RequestRecord(index, spec.wa_id(index), due, sent, None, None,
                                           f"{type(exc).__name__}: {exc}"[:200])
        done += 1

    tasks = []
    last_report = 0.0
    for index in range(count):
        target = mono0 + index / spec.rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(index, wall0 + index / spec.rate)))
        if on_progress and time.monotonic() - last_report > 0.5:
            last_report = time.monotonic()
            on_progress(index + 1, done)
    deadline = time.monotonic() + spec.drain_timeout + spec.timeout
    pending = {t for t in tasks if not t.done()}
    while pending and time.monotonic() < deadline:
        _finished, pending = await asyncio.wait(pending, timeout=0.5)
        if on_progress:
            on_progress(count, done)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    pool.close()
    records = tuple(
        r if r is not None else RequestRecord(i, spec.wa_id(i), wall0 + i / spec.rate, None, None, None, "not finished")
        for i, r in enumerate(results)
    )
    return LoadResult(spec, wall0, records)


# --------------------------------------------------------------------------- process boundary


def run_load(
    spec: LoadSpec,
    workdir: Path,
    on_progress: Callable[[int, int], None] | None = None,
) -> LoadResult:
    """Run ``spec`` in a separate process (``python -m bench.load``) and return its records.

    The child prints ``progress <sent> <done>`` lines; ``on_progress`` gets them.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stem = f"load-{os.getpid()}-{time.monotonic_ns()}"
    spec_path, out_path = workdir / f"{stem}.spec.json", workdir / f"{stem}.out.json"
    spec_path.write_text(json.dumps(asdict(spec)))
    root = Path(__file__).resolve().parent.parent
    bound = spec.duration + spec.drain_timeout + spec.timeout + 60  # the child's own bounds, plus set-up
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--spec", str(spec_path), "--out", str(out_path)],
        cwd=root, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        started = time.monotonic()
        for line in process.stdout:
            if line.startswith("progress ") and on_progress:
                _word, sent, done = line.split()
                on_progress(int(sent), int(done))
            if time.monotonic() - started > bound:
                break
        process.wait(timeout=max(1.0, bound - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(f"load generator did not finish within {bound:.0f}s") from None
    if process.returncode != 0:
        raise RuntimeError(f"load generator exited with {process.returncode}")
    result = LoadResult.from_json(json.loads(out_path.read_text()))
    spec_path.unlink(missing_ok=True)
    out_path.unlink(missing_ok=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON file with the LoadSpec fields")
    parser.add_argument("--out", required=True, help="where to write the records (JSON)")
    args = parser.parse_args(argv)
    spec = LoadSpec(**json.loads(Path(args.spec).read_text()))
    requests = build_requests(spec)

    def progress(sent: int, done: int) -> None:
        print(f"progress {sent} {done}", flush=True)

    result = asyncio.run(run_schedule(spec, requests, progress))
    Path(args.out).write_text(json.dumps(result.to_json()))
    progress(len(result.records), sum(1 for r in result.records if r.done_at is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
