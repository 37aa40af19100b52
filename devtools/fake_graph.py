"""A fake Meta Graph API (WhatsApp Cloud API ``/messages``) for tests, benchmarks and the simulator.

The project's only outside dependency on the send path is Meta. Tests and benchmarks need a
stand-in that behaves like Meta where it matters to a sender:

* it validates bodies with the same rules the project enforces (``message_bodies.validate_outbound``)
  and answers with Meta's exact success and error JSON, so a client's parsing is exercised;
* it can be slow (latency, jitter) without blocking: latency is ``asyncio.sleep``, so hundreds
  of in-flight requests overlap the way they do against the real API;
* it fails on demand: scripted Meta errors (429 pair-rate, 131026 undeliverable, 5xx ...),
  dropped connections and hangs, optionally only for one recipient;
* it records every request with arrival/response times, for assertions and for the
  simulator UI (``GET /_fake/requests?since=<seq>`` is a gap-free poll);
* it can call the project back: signed ``sent``/``delivered``/``read`` status webhooks, built
  with ``webhook_payloads`` and signed with ``signatures.sign_body`` exactly as Meta signs them.

It is a raw ASGI app (no web framework) and imports no Django: run it in-process with
``start_fake_graph()`` or as its own process with ``python -m devtools.servers graph``.
State lives in memory behind a lock, because tests read it from another thread than the
uvicorn loop that writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

from devtools import fake_graph_assets, webhook_payloads
from devtools.fake_graph_scripting import (
    DEFAULT_STATUSES,
    FakeConfigError,
    Fault,
    FaultKind,
    RecordedRequest,
    RequestKind,
    WebhookDelivery,
    _check_int,
    _webhook_config,
    _WebhookConfig,
)
from devtools.fake_graph_status_webhooks import _status_body, _StatusPoster
from meta_integration.message_bodies import OutboundValidationError, validate_outbound

__all__ = [
    "FakeGraphAPI",
    "add_arguments",
    "from_arguments",
    "graph_error_body",
    "start_fake_graph",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_RECORDS = 50_000  # a long benchmark must not grow memory without bound
_MESSAGES_PATH = re.compile(r"^/(v\d+\.\d+)/(\d+)/messages/?$")
_JSON = b"application/json; charset=UTF-8"


def _fbtrace_id() -> str:
    return secrets.token_urlsafe(17)[:23]


def graph_error_body(code: int, details: str | None = None, *, message: str | None = None) -> dict:
    """Meta's Graph API error JSON for ``code`` (``{"error": {...}}``).

    WhatsApp errors (100 and the 5-6 digit codes) carry ``error_data.details``; Graph-level
    ones (1, 2, 4, 190, 2500...) do not, as on the real API.
    """
    info = webhook_payloads.meta_error(code)
    error: dict[str, Any] = {
        "message": message if message is not None else info.message,
        "type": "OAuthException",
        "code": code,
    }
    if code == 100 or code >= 10000:
        error["error_data"] = {
            "messaging_product": "whatsapp",
            "details": details if details is not None else info.details,
        }
    error["fbtrace_id"] = _fbtrace_id()
    return {"error": error}


class _Reply:
    """What to answer: a JSON response, or a deliberate connection drop."""

    __slots__ = ("drop", "headers", "payload", "status")

    def __init__(
        self, status: int | None, payload: Any = None, headers: Sequence = (), drop: bool = False
    ):
        self.status = status
        self.payload = payload
        self.headers = list(headers)
        self.drop = drop


class FakeGraphAPI:
    """The fake Graph API as an ASGI app, plus a Python API for in-process tests.

    ``access_token``: when set, only that bearer token is accepted; otherwise any non-empty
    token is. Only the newest ``max_records`` requests (and webhook deliveries) are kept.
    ``reset()`` returns to the constructor's configuration.
    """

    def __init__(
        self,
        *,
        latency_ms: int = 0,
        jitter_ms: int = 0,
        access_token: str | None = None,
        webhook_url: str | None = None,
        app_secret: str | None = None,
        statuses: Iterable[str] | None = DEFAULT_STATUSES,
        status_delay_ms: int = 50,
        waba_id: str = webhook_payloads.DEFAULT_WABA_ID,
        display_phone_number: str = webhook_payloads.DEFAULT_DISPLAY_PHONE_NUMBER,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_records: int = MAX_RECORDS,
        template_page_size: int = 4,
        media_url_ttl_seconds: float = 300.0,
    ):
        _check_int(latency_ms, "latency_ms")
        _check_int(jitter_ms, "jitter_ms")
        _check_int(max_body_bytes, "max_body_bytes", minimum=1)
        _check_int(max_records, "max_records", minimum=1)
        if access_token is not None and (not isinstance(access_token, str) or not access_token):
            raise FakeConfigError("access_token", "must be a non-empty string or None")
        self.access_token = access_token
        self.waba_id = waba_id
        self.display_phone_number = display_phone_number
        self.max_body_bytes = max_body_bytes
        self._initial = (
            latency_ms,
            jitter_ms,
            _webhook_config(webhook_url, app_secret, statuses, status_delay_ms),
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seq = 0
        self._generation = 0  # bumped by reset(): webhooks scheduled before it are abandoned
        self._records: deque[RecordedRequest] = deque(maxlen=max_records)
        self._deliveries: deque[WebhookDelivery] = deque(maxlen=max_records)
        self._faults: list[list[Any]] = []  # [Fault, remaining]
        self._latency_ms, self._jitter_ms, self._webhook = self._initial
        self._tasks: set[asyncio.Task] = set()
        self._posters: dict[asyncio.AbstractEventLoop, _StatusPoster] = {}
        # Templates per WABA and media objects (devtools/fake_graph_assets.py).
        self.templates = fake_graph_assets.FakeTemplates(
            waba_id, page_size=template_page_size, error_body=graph_error_body)
        self.media = fake_graph_assets.FakeMedia(url_ttl_seconds=media_url_ttl_seconds, error_body=graph_error_body)

    # ------------------------------------------------------------------ Python API

    def requests(
        self, to: str | None = None, since: int = 0, limit: int | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests (all kinds, rejected ones included) with ``seq > since``, oldest
        first; at most ``limit`` of them (poll again from the last one's ``seq``)."""
        with self._lock:
            found = [r for r in self._records if r.seq > since and _same_number(to, r.to)]
        return found if limit is None else found[:limit]

    def messages(self, to: str | None = None) -> list[RecordedRequest]:
        """Only message sends Meta would have accepted (HTTP 200, not read receipts)."""
        return [r for r in self.requests(to) if r.kind is RequestKind.MESSAGE and r.ok]

    def deliveries(self) -> list[WebhookDelivery]:
        """Status webhooks attempted so far, in the order they finished."""
        with self._lock:
            return list(self._deliveries)

    def wait_for_messages(
        self, count: int, *, to: str | None = None, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Block until ``count`` successful sends (to ``to``) are recorded.

        For sends made elsewhere (a Celery worker, another thread); raises ``TimeoutError``.
        """
        self._wait(lambda: self._count_ok(to) >= count, timeout, f"{count} messages")
        return self.messages(to)

    def wait_for_deliveries(self, count: int, *, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Block until ``count`` status webhooks have been attempted."""
        self._wait(lambda: len(self._deliveries) >= count, timeout, f"{count} webhook deliveries")
        return self.deliveries()

    def reset(self) -> None:
        """Forget requests, deliveries and faults; restore constructor latency and webhook.

        Status webhooks still pending from before the reset are abandoned, so one test's
        leftovers never reach the next test's receiver.
        """
        with self._lock:
            self._generation += 1
            self._records.clear()
            self._deliveries.clear()
            self._faults.clear()
            self._latency_ms, self._jitter_ms, self._webhook = self._initial
        self.templates.reset()
        self.media.reset()

    def clear_requests(self) -> int:
        with self._lock:
            count = len(self._records)
            self._records.clear()
            self._deliveries.clear()
            return count

    def add_fault(
        self,
        code: int | None = None,
        http_status: int | None = None,
        *,
        times: int = 1,
        to: str | None = None,
        kind: FaultKind | str = FaultKind.ERROR,
        delay_ms: int = 0,
        details: str | None = None,
    ) -> Fault:
        """Script a failure for the next ``times`` valid sends (only to ``to`` if given)."""
        fault = Fault(kind, code, http_status, times, to, delay_ms, details)
        with self._lock:
            self._faults.append([fault, fault.times])
        return fault

    def faults(self) -> list[tuple[Fault, int]]:
        """Pending faults with how many uses each has left."""
        with self._lock:
            return [(f, n) for f, n in self._faults]

    def clear_faults(self) -> None:
        """Drop scripted faults and set latency/jitter to zero."""
        with self._lock:
            self._faults.clear()
            self._latency_ms = self._jitter_ms = 0

    def set_latency(self, ms: int, jitter_ms: int = 0) -> None:
        """Every Graph request takes at least ``ms`` (plus up to ``jitter_ms``) to answer."""
        _check_int(ms, "latency_ms")
        _check_int(jitter_ms, "jitter_ms")
        with self._lock:
            self._latency_ms, self._jitter_ms = ms, jitter_ms

    def configure_webhook(
        self,
        url: str | None,
        app_secret: str | None,
        *,
        statuses: Iterable[str] | None = DEFAULT_STATUSES,
        status_delay_ms: int = 50,
    ) -> None:
        """POST signed status webhooks for every accepted message to ``url`` (None disables)."""
        config = _webhook_config(url, app_secret, statuses, status_delay_ms)
        with self._lock:
            self._webhook = config

    # ------------------------------------------------------------------ internals

    def _count_ok(self, to: str | None) -> int:
        return sum(
            1 for r in self._records
            if r.kind is RequestKind.MESSAGE and r.ok and _same_number(to, r.to)
        )

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake Graph API: no {what} within {timeout}s")
                self._changed.wait(remaining)

    def _record(self, **fields: Any) -> RecordedRequest:
        with self._changed:
            self._seq += 1
            record = RecordedRequest(seq=self._seq, **fields)
            self._records.append(record)
            self._changed.notify_all()
        return record

    def _take_fault(self, to: str | None) -> Fault | None:
        with self._lock:
            for slot in self._faults:
                fault, _remaining = slot
                if _same_number(fault.to, to):
                    slot[1] -= 1
                    if slot[1] <= 0:
                        self._faults.remove(slot)
                    return fault
        return None

    def _latency_seconds(self) -> float:
        with self._lock:
            latency, jitter = self._latency_ms, self._jitter_ms
        return (latency + (random.uniform(0, jitter) if jitter else 0)) / 1000

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        received_monotonic, received_at = time.monotonic(), time.time()
        path: str = scope["path"]
        method: str = scope["method"]
        upload = method == "POST" and path.rstrip("/").endswith("/media")
        limit = fake_graph_assets.UPLOAD_MAX_BYTES if upload else self.max_body_bytes
        raw, too_large = await _read_body(receive, limit)
        if raw is None:  # client went away before sending its body
            return
        if path.startswith("/_fake/"):
            reply = self._control(method, path, scope.get("query_string", b""), raw)
            await _send_reply(send, reply)
            return

        await asyncio.sleep(self._latency_seconds())
        reply, meta = self._graph(method, path, scope, raw, too_large)
        fault = meta.get("fault")
        if fault is not None and fault.kind is FaultKind.TIMEOUT:
            await asyncio.sleep(fault.delay_ms / 1000)
        self._record(
            method=method,
            path=path,
            version=meta.get("version"),
            phone_number_id=meta.get("phone_number_id"),
            kind=meta.get("kind", RequestKind.OTHER),
            to=meta.get("to"),
            body=meta.get("body"),
            received_monotonic=received_monotonic,
            received_at=received_at,
            responded_monotonic=time.monotonic(),
            responded_at=time.time(),
            http_status=None if reply.drop else reply.status,
            response=fake_graph_assets.summary(reply.payload),
            wamid=meta.get("wamid"),
            fault=fault,
        )
        await _send_reply(send, reply)
        if meta.get("wamid") and meta.get("wa_id"):
            callback_data = meta["body"].get("biz_opaque_callback_data")
            self._schedule_statuses(
                meta["wamid"],
                meta["wa_id"],
                meta["phone_number_id"],
                callback_data if isinstance(callback_data, str) else None,
            )

    async def _lifespan(self, receive, send) -> None:
        """Minimal lifespan support, for servers run with lifespan enabled."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _graph(
        self, method: str, path: str, scope: dict, raw: bytes, too_large: bool
    ) -> tuple[_Reply, dict[str, Any]]:
        """Decide the answer to one Graph API call (pure apart from fault consumption)."""
        meta: dict[str, Any] = {}
        token = _bearer_token(scope)
        authorized = bool(token) and (self.access_token is None or token == self.access_token)
        asset = fake_graph_assets.handle(self.templates, self.media, method, path, scope, raw, authorized)
        if asset is not None:
            return _Reply(*asset), meta
        match = _MESSAGES_PATH.match(path)
        if match is None:
            body = graph_error_body(2500, message=f"Unknown path components: {path}")
            return _Reply(404, body), meta
        meta["version"], meta["phone_number_id"] = match.group(1), match.group(2)
        if method != "POST":
            message = f"Unsupported {method.lower()} request."
            return _Reply(400, graph_error_body(100, "Use POST to send messages.", message=message)), meta

        token = _bearer_token(scope)
        if not token or (self.access_token is not None and token != self.access_token):
            message = "Invalid OAuth access token - Cannot parse access token"
            error = graph_error_body(190, message=message)
            challenge = f'OAuth "Facebook Platform" "invalid_token" "{message}"'.encode()
            return _Reply(401, error, [(b"www-authenticate", challenge)]), meta

        if too_large:
            details = f"Request body exceeds {self.max_body_bytes} bytes."
            return _Reply(413, graph_error_body(100, details, message="(#100) Invalid parameter")), meta
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            details = f"Request body is not valid JSON: {exc}"
            return _Reply(400, graph_error_body(100, details, message="(#100) Invalid parameter")), meta
        meta["body"] = payload
        if isinstance(payload, Mapping):
            is_receipt = "status" in payload  # the same test message_bodies.validate_outbound uses
            meta["kind"] = RequestKind.READ_RECEIPT if is_receipt else RequestKind.MESSAGE
            if isinstance(payload.get("to"), str):
                meta["to"] = payload["to"]
        try:
            if not isinstance(payload, Mapping):
                raise OutboundValidationError("body", "must be a JSON object")
            validate_outbound(payload)
        except OutboundValidationError as exc:
            error = graph_error_body(100, str(exc), message="(#100) Invalid parameter")
            return _Reply(400, error), meta
        if payload.get("type") == "template":  # as Meta: the template must exist, be approved and fit
            refusal = self.templates.check_send(meta["phone_number_id"], payload["template"])
            if refusal is not None:
                code, details = refusal
                return _Reply(webhook_payloads.meta_error(code).http_status, graph_error_body(code, details)), meta

        fault = self._take_fault(meta.get("to"))
        if fault is not None:
            meta["fault"] = fault
            if fault.kind is not FaultKind.ERROR:
                return _Reply(None, drop=True), meta
            assert fault.code is not None and fault.http_status is not None
            return _Reply(fault.http_status, graph_error_body(fault.code, fault.details)), meta

        if meta["kind"] is RequestKind.READ_RECEIPT:
            return _Reply(200, {"success": True}), meta
        to = meta.get("to", "")
        wa_id = _digits(to)
        try:
            wamid = webhook_payloads.new_wamid(wa_id, outgoing=True)
        except ValueError:
            wa_id, wamid = "", webhook_payloads.new_wamid(outgoing=True)
        meta["wamid"], meta["wa_id"] = wamid, wa_id
        sent: dict[str, Any] = {"id": wamid}
        if payload.get("type") == "template":
            sent["message_status"] = "accepted"
        result = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id or to}],
            "messages": [sent],
        }
        return _Reply(200, result), meta

    # ------------------------------------------------------------------ status webhooks

    def _schedule_statuses(
        self, wamid: str, wa_id: str, phone_number_id: str, callback_data: str | None
    ) -> None:
        with self._lock:
            config, generation = self._webhook, self._generation
        if not config.enabled:
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver_statuses(config, generation, wamid, wa_id, phone_number_id, callback_data)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_statuses(
        self,
        config: _WebhookConfig,
        generation: int,
        wamid: str,
        wa_id: str,
        phone_number_id: str,
        callback_data: str | None,
    ) -> None:
        """POST each configured status for one message, strictly in order, never raising.

        ``callback_data`` is the send's ``biz_opaque_callback_data``: Meta echoes it in every
        status of that message, so the fake does too.
        """
        poster = self._status_poster()
        try:
            for state in config.statuses:
                await asyncio.sleep(config.status_delay_ms / 1000)
                if generation != self._generation:
                    return
                raw = _status_body(
                    wamid, state, wa_id, phone_number_id, self.display_phone_number, self.waba_id,
                    callback_data,
                )
                http_status, error = await poster.post(config.url or "", raw, config.app_secret or "")
                if error:
                    logger.warning(
                        "fake Graph: %s webhook for %s to %s failed: %s", state, wamid, config.url, error
                    )
                delivery = WebhookDelivery(wamid, state, config.url or "", http_status, error, time.time())
                with self._changed:
                    if generation != self._generation:
                        return
                    self._deliveries.append(delivery)
                    self._changed.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception:  # a fake must never take its server down
            logger.exception("fake Graph: status webhooks for %s aborted", wamid)

    def _status_poster(self) -> _StatusPoster:
        """One keep-alive poster per event loop (connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        poster = self._posters.get(loop)
        if poster is None:
            poster = self._posters[loop] = _StatusPoster()
        return poster

    async def aclose(self) -> None:
        """Cancel pending status webhooks (used at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        poster = self._posters.pop(asyncio.get_running_loop(), None)
        if poster is not None:
            poster.close()

    # ------------------------------------------------------------------ control endpoints

    def _control(self, method: str, path: str, query_string: bytes, raw: bytes) -> _Reply:
        try:
            return self._control_unchecked(method, path, query_string, raw)
        except FakeConfigError as exc:
            return _Reply(400, {"error": {"field": exc.field, "message": exc.message}})

    def _control_unchecked(self, method: str, path: str, query_string: bytes, raw: bytes) -> _Reply:
        route = (method, path.rstrip("/"))
        asset = fake_graph_assets.control(self.templates, self.media, method, path, query_string, raw)
        if asset is not None:  # /_fake/templates, /_fake/media
            return _Reply(*asset)
        if route == ("GET", "/_fake/health"):
            with self._lock:
                count, last = len(self._records), self._seq
            return _Reply(200, {"status": "ok", "requests": count, "last_seq": last})
        if route == ("GET", "/_fake/requests"):
            query = parse_qs(query_string.decode("latin-1"))
            to = query.get("to", [None])[0] or None
            since_text = query.get("since", ["0"])[0]
            if not since_text.isdigit():
                raise FakeConfigError("since", f"must be a sequence number, got {since_text!r}")
            limit_text = query.get("limit", [""])[0]
            if limit_text and (not limit_text.isdigit() or int(limit_text) < 1):
                raise FakeConfigError("limit", f"must be a positive int, got {limit_text!r}")
            records = self.requests(
                to=to, since=int(since_text), limit=int(limit_text) if limit_text else None
            )
            with self._lock:
                last = self._seq
            return _Reply(200, {"requests": [r.to_dict() for r in records], "last_seq": last})
        if route == ("DELETE", "/_fake/requests"):
            return _Reply(200, {"cleared": self.clear_requests()})
        if route == ("GET", "/_fake/webhooks"):
            return _Reply(200, {"deliveries": [d.to_dict() for d in self.deliveries()]})
        if route == ("GET", "/_fake/faults"):
            return _Reply(200, self._faults_state())
        if route == ("POST", "/_fake/faults"):
            data = _json_object(raw)
            unknown = sorted(set(data) - {"faults", "latency_ms", "jitter_ms"})
            if unknown:
                raise FakeConfigError(unknown[0], "unknown key (use faults, latency_ms, jitter_ms)")
            faults = data.get("faults", [])
            if not isinstance(faults, list):
                raise FakeConfigError("faults", "must be a list of fault objects")
            parsed = [Fault.from_dict(item) for item in faults]  # all-or-nothing
            if "latency_ms" in data or "jitter_ms" in data:
                with self._lock:
                    latency, jitter = self._latency_ms, self._jitter_ms
                self.set_latency(data.get("latency_ms", latency), data.get("jitter_ms", jitter))
            with self._lock:
                self._faults.extend([f, f.times] for f in parsed)
            return _Reply(200, self._faults_state())
        if route == ("DELETE", "/_fake/faults"):
            self.clear_faults()
            return _Reply(200, self._faults_state())
        if route == ("GET", "/_fake/config"):
            with self._lock:
                return _Reply(200, self._webhook.to_dict())
        if route == ("POST", "/_fake/config"):
            data = _json_object(raw)
            unknown = sorted(set(data) - {"webhook_url", "app_secret", "statuses", "status_delay_ms"})
            if unknown:
                raise FakeConfigError(unknown[0], "unknown config key")
            with self._lock:
                current = self._webhook
            merged = replace(
                current,
                url=data.get("webhook_url", current.url),
                app_secret=data.get("app_secret", current.app_secret),
            )
            self.configure_webhook(
                merged.url,
                merged.app_secret,
                statuses=data.get("statuses", current.statuses),
                status_delay_ms=data.get("status_delay_ms", current.status_delay_ms),
            )
            with self._lock:
                return _Reply(200, self._webhook.to_dict())
        known_paths = {"/_fake/health", "/_fake/requests", "/_fake/webhooks", "/_fake/faults", "/_fake/config"}
        if route[1] in known_paths:
            return _Reply(405, {"error": {"field": "method", "message": f"{method} not allowed on {path}"}})
        return _Reply(404, {"error": {"field": "path", "message": f"no control endpoint {path}"}})

    def _faults_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": [dict(f.to_dict(), remaining=n) for f, n in self._faults],
                "latency_ms": self._latency_ms,
                "jitter_ms": self._jitter_ms,
            }


# --------------------------------------------------------------------------- helpers


def _digits(number: str | None) -> str:
    return re.sub(r"\D", "", number or "")


def _same_number(wanted: str | None, actual: str | None) -> bool:
    """``None`` matches anything; otherwise compare digits, so "+263 77..." == "26377..."."""
    return wanted is None or (actual is not None and _digits(wanted) == _digits(actual))


async def _read_body(receive, limit: int) -> tuple[bytes | None, bool]:
    """Read the whole request body; keep at most ``limit`` bytes. None if the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), size > limit


def _bearer_token(scope: dict) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FakeConfigError("body", f"is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FakeConfigError("body", "must be a JSON object")
    return data


async def _send_reply(send, reply: _Reply) -> None:
    if reply.drop:
        await _drop_connection(send)
        return
    raw = isinstance(reply.payload, bytes)  # media bytes: their content type is in reply.headers
    body = reply.payload if raw else json.dumps(reply.payload, separators=(",", ":")).encode()
    headers = [
        *([] if raw else [(b"content-type", _JSON)]),
        (b"content-length", str(len(body)).encode()),
        (b"x-fb-trace-id", _fbtrace_id().encode()),
        *reply.headers,
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send) -> None:
    """Close the connection with no response at all, like a network failure.

    ASGI has no "abort" event. Under uvicorn, ``send`` is bound to the request cycle, whose
    transport can be aborted; the two ``sleep(0)`` let uvicorn see the disconnect so it does
    not try to send a 500 itself. Elsewhere, fall back to promising a body and never sending
    it: servers must then close the connection, which clients see as a protocol error.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
    )


# --------------------------------------------------------------------------- running it


def start_fake_graph(host: str = "127.0.0.1", port: int = 0, **config: Any):
    """Start a ``FakeGraphAPI(**config)`` on a real socket in a background thread.

    Returns ``(fake, server)``; ``server.url`` is the Graph base URL to configure the client
    with (``{url}/v21.0/{phone_number_id}/messages``). Stop with ``server.stop()``.
    """
    from devtools.servers import run_in_thread

    fake = FakeGraphAPI(**config)
    return fake, run_in_thread(fake, host=host, port=port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line of ``python -m devtools.servers graph``."""
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--jitter-ms", type=int, default=0)
    parser.add_argument("--access-token", default=None, help="accept only this bearer token")
    parser.add_argument("--webhook-url", default=None, help="where to POST status webhooks")
    parser.add_argument("--app-secret", default=None, help="signs the status webhooks")
    parser.add_argument(
        "--statuses", default=",".join(DEFAULT_STATUSES), help="comma list, e.g. sent,delivered"
    )
    parser.add_argument("--status-delay-ms", type=int, default=50)
    parser.add_argument("--max-records", type=int, default=MAX_RECORDS)


def from_arguments(args: argparse.Namespace) -> FakeGraphAPI:
    """The fake the command line describes (see ``add_arguments``)."""
    return FakeGraphAPI(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        access_token=args.access_token,
        webhook_url=args.webhook_url,
        app_secret=args.app_secret,
        statuses=[s for s in args.statuses.split(",") if s],
        status_delay_ms=args.status_delay_ms,
        max_records=args.max_records,
    )
