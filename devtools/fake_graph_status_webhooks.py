"""The fake Graph API's status webhooks: one status webhook's bytes, and the raw keep-alive
HTTP/1.1 poster that delivers them signed as Meta signs them (``X-Hub-Signature-256``).

No Django; used by :mod:`devtools.fake_graph`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from devtools import raw_http


def _status_body(
    wamid: str,
    state: str,
    wa_id: str,
    phone_number_id: str,
    display_phone_number: str,
    waba_id: str,
    callback_data: str | None,
) -> bytes:
    """One status webhook's bytes, shaped as ``webhook_body(statuses=[status(...)])`` of ``webhook_payloads``.

    Built directly (no validation, no pricing ids from ``secrets``): the fake posts three per
    message, and at benchmark rates its CPU is taken from the cores the project runs on.
    """
    item: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": str(int(time.time())),
        "recipient_id": wa_id,
    }
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    if state != "failed":
        conversation: dict[str, Any] = {"id": wamid[-32:], "origin": {"type": "service"}}
        if state == "sent":
            conversation["expiration_timestamp"] = str(int(item["timestamp"]) + 24 * 3600)
        item["conversation"] = conversation
        item["pricing"] = {
            "billable": False,
            "pricing_model": "PMP",
            "category": "service",
            "type": "free_customer_service",
        }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{
            "id": waba_id,
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": display_phone_number,
                        "phone_number_id": phone_number_id,
                    },
                    "statuses": [item],
                },
                "field": "messages",
            }],
        }],
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class _StatusPoster:
    """Signed webhook POSTs over raw keep-alive HTTP/1.1 connections, pooled per (host, port, TLS).

    An ``httpx.AsyncClient`` cost the fake more CPU per status than the project spent
    receiving it, which on a 2-core benchmark machine turned every latency into a measure of
    the fake. This writes one pre-formatted request per status and reads the answer's status
    line, headers and body (Content-Length or chunked); a pooled connection the server
    closed meanwhile is retried once on a fresh one.
    """

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout
        self._idle: dict[tuple[str, int, bool], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(self, url: str, raw: bytes, app_secret: str) -> tuple[int | None, str | None]:
        """POST ``raw`` signed with ``app_secret``; (HTTP status, error text or None)."""
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        tls = parts.scheme == "https"
        if tls and self._tls is None:
            self._tls = ssl.create_default_context()  # built once: it costs milliseconds
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        signature = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
        request = (
            f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nUser-Agent: facebookexternalua\r\n"
            f"X-Hub-Signature-256: sha256={signature}\r\nContent-Length: {len(raw)}\r\n\r\n"
        ).encode("latin-1") + raw
        key = (host, port, tls)
        for attempt in range(2):
            idle = self._idle.setdefault(key, [])
            reused = bool(idle)
            try:
                if reused:
                    reader, writer = idle.pop()
                else:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port, ssl=self._tls if tls else None),
                        self.timeout,
                    )
            except (TimeoutError, OSError) as exc:
                return None, f"ConnectError: {exc or type(exc).__name__}"
            try:
                writer.write(request)
                status, keep_alive = await asyncio.wait_for(raw_http.read_response(reader), self.timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                if reused and attempt == 0 and not isinstance(exc, TimeoutError):
                    continue  # the server closed an idle connection: once more on a new one
                return None, f"{type(exc).__name__}: {exc}"
            if keep_alive:
                idle.append((reader, writer))
            else:
                writer.close()
            return status, (f"HTTP {status}" if status >= 300 else None)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for idle in self._idle.values():
            for _reader, writer in idle:
                writer.close()
        self._idle.clear()
