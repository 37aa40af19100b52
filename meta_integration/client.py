"""The Graph API client: one POST to ``/{version}/{phone-number-id}/messages``, typed in and out.

Why a module of its own: the send task must tell apart "Meta accepted it" (a wamid),
"Meta refused it" (an HTTP status plus Meta's error code, title and details, which decide
retry or fail), and "no answer" (the request may or may not have reached Meta). Each of
those is a type here, so callers branch on types, not on dict lookups.

One ``httpx.Client`` per process, created lazily and re-created after a fork (a pool's
sockets must never be shared by a parent and a prefork child). Its pool is bounded: httpcore
scans the whole pool on every request, so a pool much larger than the worker's concurrency
costs throughput (see DESIGN.md). No Django here: the caller passes timeouts and limits.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any

import httpx

from meta_integration.errors import ErrorClass, classify_error
from meta_integration.message_bodies import read_receipt

__all__ = [
    "GraphAPIError",
    "GraphEndpoint",
    "GraphError",
    "GraphNoResponse",
    "SendResult",
    "download",
    "get_json",
    "http_client",
    "mark_read",
    "post_multipart",
    "send",
]


@dataclass(frozen=True)
class GraphEndpoint:
    """Where and as whom to call: one business number on one Graph API version."""

    base_url: str
    api_version: str
    phone_number_id: str
    access_token: str

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^/]+", self.base_url or ""):
            raise ValueError(f"base_url: must be an http(s) URL, got {self.base_url!r}")
        if not re.fullmatch(r"v\d+\.\d+", self.api_version or ""):
            raise ValueError(f"api_version: must look like 'v23.0', got {self.api_version!r}")
        if not (self.phone_number_id or "").isdigit():
            raise ValueError(f"phone_number_id: must be Meta's numeric id, got {self.phone_number_id!r}")
        if not self.access_token:
            raise ValueError("access_token: required to call the Graph API")

    @property
    def messages_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.api_version}/{self.phone_number_id}/messages"

    def __repr__(self) -> str:  # never print the token
        return f"GraphEndpoint({self.messages_url!r})"


@dataclass(frozen=True)
class SendResult:
    """Meta accepted the message: ``wamid`` identifies it in later status webhooks."""

    wamid: str
    wa_id: str | None  # the recipient's WhatsApp id as Meta resolved it
    message_status: str | None  # "accepted" for templates, absent otherwise
    http_status: int


class GraphError(Exception):
    """A call that did not succeed. ``error_class`` says what to do about it."""

    http_status: int | None
    code: int | None
    title: str
    details: str

    def __init__(self, http_status: int | None, code: int | None, title: str, details: str) -> None:
        self.http_status = http_status
        self.code = code
        self.title = title
        self.details = details
        prefix = f"HTTP {http_status}" if http_status is not None else "no response"
        super().__init__(f"{prefix}, code {code}: {title}" + (f" ({details})" if details else ""))

    @property
    def error_class(self) -> ErrorClass:
        return classify_error(self.http_status, self.code)


class GraphAPIError(GraphError):
    """Meta answered with an error (HTTP status and, usually, Meta's error JSON)."""

    def __init__(
        self,
        http_status: int,
        code: int | None,
        title: str,
        details: str,
        *,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(http_status, code, title, details)
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.retry_after = retry_after


class GraphNoResponse(GraphError):
    """No answer arrived: connection refused/dropped, or a timeout.

    ``may_have_arrived`` is False only when the request certainly never reached Meta (the
    connection was never made, or no pooled connection was free); then a retry cannot
    duplicate. Otherwise Meta may have accepted it and we cannot know.
    """

    def __init__(self, title: str, details: str, *, may_have_arrived: bool) -> None:
        super().__init__(None, None, title, details)
        self.may_have_arrived = may_have_arrived


# ------------------------------------------------------------------ the shared HTTP client


class _NoCookies(CookieJar):
    """The Graph API sets no cookies and needs none; httpx parses every response's headers
    into its jar all the same (a visible share of a send's CPU), so this jar keeps nothing."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


_lock = threading.Lock()
_client: httpx.Client | None = None
_client_pid: int | None = None
_client_key: tuple[float, int] | None = None


def http_client(timeout: float, max_connections: int) -> httpx.Client:
    """This process's shared client (per pid: a forked child builds its own).

    A change of ``timeout``/``max_connections`` (tests, settings reload) builds a new one.
    """
    global _client, _client_pid, _client_key
    pid, key = os.getpid(), (float(timeout), int(max_connections))
    client = _client
    if client is not None and _client_pid == pid and _client_key == key:
        return client
    with _lock:
        if _client is None or _client_pid != pid or _client_key != key:
            if _client is not None and _client_pid == pid:
                _client.close()
            # An inherited client from the parent is dropped, not closed: closing would
            # touch sockets the parent still uses.
            _client = httpx.Client(
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0), pool=timeout),
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
                headers={"User-Agent": "whatsappcrm-backend"},
                cookies=_NoCookies(),
            )
            _client_pid, _client_key = pid, key
        return _client


# ------------------------------------------------------------------ calls


def send(endpoint: GraphEndpoint, payload: Mapping[str, Any], http: httpx.Client) -> SendResult:
    """POST one message body (already built and validated by ``message_bodies``) to Meta.

    Returns the accepted message's wamid; raises ``GraphAPIError`` or ``GraphNoResponse``.
    """
    response = _post(endpoint, payload, http)
    data = _json(response)
    try:
        message = data["messages"][0]
        wamid = message["id"]
        if not isinstance(wamid, str) or not wamid:
            raise TypeError
    except (KeyError, IndexError, TypeError):
        raise GraphAPIError(
            response.status_code, None, "Unexpected success response",
            f"no messages[0].id in {response.text[:300]!r}",
        ) from None
    contacts = data.get("contacts") or [{}]
    wa_id = contacts[0].get("wa_id") if isinstance(contacts[0], Mapping) else None
    return SendResult(wamid, wa_id, message.get("message_status"), response.status_code)


def mark_read(
    endpoint: GraphEndpoint, wamid: str, http: httpx.Client, *, typing_indicator: bool = False
) -> None:
    """Mark an inbound message read (optionally showing "typing..."); raises like ``send``."""
    response = _post(endpoint, read_receipt(wamid, typing_indicator), http)
    data = _json(response)
    if data.get("success") is not True:
        raise GraphAPIError(
            response.status_code, None, "Unexpected read receipt response", response.text[:300]
        )


def get_json(
    url: str, access_token: str, http: httpx.Client, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """GET a Graph API object or page (templates, a media object) as a JSON object;
    raises ``GraphAPIError`` / ``GraphNoResponse`` like ``send``."""
    return _json(_call(http, "GET", url, access_token, params=params))


def post_multipart(
    url: str, access_token: str, http: httpx.Client, data: Mapping[str, str], files: Mapping[str, Any]
) -> dict[str, Any]:
    """POST a multipart form (a media upload) and return Meta's JSON answer."""
    return _json(_call(http, "POST", url, access_token, data=data, files=files))


def download(url: str, access_token: str, http: httpx.Client, max_bytes: int) -> bytes:
    """The bytes behind a media URL, fetched with the token; stops reading (and raises
    ``ValueError``) past ``max_bytes`` so an oversized file never sits in memory whole."""
    headers = {"Authorization": f"Bearer {access_token}"}
    try:
        with http.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise _api_error(response)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ValueError(f"{declared} bytes, more than the {max_bytes} allowed")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"more than the {max_bytes} bytes allowed")
                chunks.append(chunk)
            return b"".join(chunks)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise GraphNoResponse(type(exc).__name__, str(exc) or "could not connect", may_have_arrived=False) from exc
    except httpx.TransportError as exc:
        raise GraphNoResponse(type(exc).__name__, str(exc) or "connection lost", may_have_arrived=True) from exc


def _call(http: httpx.Client, method: str, url: str, access_token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token}"}
    try:
        response = http.request(method, url, headers=headers, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise GraphNoResponse(type(exc).__name__, str(exc) or "could not connect", may_have_arrived=False) from exc
    except httpx.TransportError as exc:  # timeouts, dropped connections
        raise GraphNoResponse(type(exc).__name__, str(exc) or "connection lost", may_have_arrived=True) from exc
    if response.status_code != 200:
        raise _api_error(response)
    return response


def _post(endpoint: GraphEndpoint, payload: Mapping[str, Any], http: httpx.Client) -> httpx.Response:
    headers = {"Authorization": f"Bearer {endpoint.access_token}"}
    try:
        response = http.post(endpoint.messages_url, json=payload, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise GraphNoResponse(type(exc).__name__, str(exc) or "could not connect", may_have_arrived=False) from exc
    except httpx.TimeoutException as exc:
        raise GraphNoResponse(type(exc).__name__, str(exc) or "timed out", may_have_arrived=True) from exc
    except httpx.TransportError as exc:  # dropped connection, protocol error
        raise GraphNoResponse(type(exc).__name__, str(exc) or "connection lost", may_have_arrived=True) from exc
    if response.status_code != 200:
        raise _api_error(response)
    return response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise GraphAPIError(
            response.status_code, None, "Response is not a JSON object", response.text[:300]
        )
    return data


_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")


def _api_error(response: httpx.Response) -> GraphAPIError:
    """Meta's ``{"error": {...}}`` as a typed error; a non-JSON body (a proxy's HTML 502)
    still gives the HTTP status, which is enough to classify it."""
    retry_after = _retry_after(response.headers.get("retry-after"))
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, Mapping):
        title = response.reason_phrase or f"HTTP {response.status_code}"
        return GraphAPIError(response.status_code, None, title, response.text[:500], retry_after=retry_after)
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    subcode = error.get("error_subcode")
    title = error.get("error_user_title") or _CODE_PREFIX.sub("", str(error.get("message") or "")) or "Error"
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, Mapping) else None
    details = details or error.get("error_user_msg") or ""
    return GraphAPIError(
        response.status_code,
        code,
        str(title),
        str(details),
        subcode=subcode if isinstance(subcode, int) else None,
        fbtrace_id=error.get("fbtrace_id"),
        retry_after=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 3600 else None
