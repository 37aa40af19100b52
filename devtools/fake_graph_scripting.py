"""What a test scripts into the fake Graph API and what the fake records.

Scripted faults (:class:`Fault`: a Meta error, a dropped connection or a hang, optionally for
one recipient), the status-webhook settings, and the records the fake keeps of every request
(:class:`RecordedRequest`) and every webhook it posted (:class:`WebhookDelivery`). Plain data,
no Django; :mod:`devtools.fake_graph` serves them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from devtools import webhook_payloads

__all__ = [
    "DEFAULT_STATUSES",
    "FakeConfigError",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "RequestKind",
    "WebhookDelivery",
]

DEFAULT_STATUSES: tuple[str, ...] = ("sent", "delivered", "read")

# When a scripted error names only an HTTP status, use the code Meta pairs with it.
_DEFAULT_CODE_FOR_STATUS = {400: 131000, 401: 190, 403: 131005, 429: 130429, 500: 131000, 503: 131016}


class FakeConfigError(ValueError):
    """Bad fault or webhook configuration; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class FaultKind(StrEnum):
    ERROR = "error"  # answer with Meta's error JSON for ``code``
    DROP_CONNECTION = "drop_connection"  # close the socket without any response
    TIMEOUT = "timeout"  # hang ``delay_ms``, then close without response


class RequestKind(StrEnum):
    MESSAGE = "message"
    READ_RECEIPT = "read_receipt"
    OTHER = "other"  # unparseable body, unknown path...


def _check_int(value: object, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FakeConfigError(name, f"must be an int >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class Fault:
    """One scripted failure, applied to the next ``times`` valid sends (to ``to`` if given).

    Faults are matched only after auth and body validation pass, so a scripted failure hits
    exactly the sends that would otherwise have succeeded. The first matching fault in the
    queue wins.
    """

    kind: FaultKind = FaultKind.ERROR
    code: int | None = None
    http_status: int | None = None
    times: int = 1
    to: str | None = None
    delay_ms: int = 0
    details: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", FaultKind(self.kind))
        except ValueError:
            allowed = [k.value for k in FaultKind]
            raise FakeConfigError("kind", f"must be one of {allowed}, got {self.kind!r}") from None
        _check_int(self.times, "times", minimum=1)
        _check_int(self.delay_ms, "delay_ms")
        if self.to is not None and (not isinstance(self.to, str) or not self.to):
            raise FakeConfigError("to", f"must be a recipient number, got {self.to!r}")
        if self.details is not None and not isinstance(self.details, str):
            raise FakeConfigError("details", f"must be a string, got {self.details!r}")
        if self.kind is FaultKind.TIMEOUT and self.delay_ms <= 0:
            raise FakeConfigError("delay_ms", "a timeout fault needs delay_ms > 0 (how long to hang)")
        if self.kind is not FaultKind.ERROR:
            if self.code is not None or self.http_status is not None:
                raise FakeConfigError("code", f"a {self.kind.value} fault sends no response")
            return
        if self.code is None and self.http_status is None:
            raise FakeConfigError("code", "an error fault needs a code and/or an http_status")
        if self.http_status is not None:
            _check_int(self.http_status, "http_status", minimum=400)
            if self.http_status > 599:
                raise FakeConfigError("http_status", f"must be 400..599, got {self.http_status}")
        code = self.code
        if code is None:
            code = _DEFAULT_CODE_FOR_STATUS.get(self.http_status or 0, 131000)
            object.__setattr__(self, "code", code)
        try:
            info = webhook_payloads.meta_error(code)
        except ValueError as exc:
            raise FakeConfigError("code", str(exc)) from None
        if self.http_status is None:
            object.__setattr__(self, "http_status", info.http_status)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build from control-endpoint JSON, refusing unknown keys (typos would be silent)."""
        if not isinstance(data, Mapping):
            raise FakeConfigError("fault", f"must be a JSON object, got {data!r}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FakeConfigError(unknown[0], f"unknown fault field (known: {sorted(known)})")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, with what it answered.

    ``seq`` increases in the order records are completed (never reused, even across
    ``reset()``), so ``requests(since=seq)`` polling never misses one. ``http_status`` is None
    when the connection was dropped or timed out on purpose.
    """

    seq: int
    method: str
    path: str
    version: str | None
    phone_number_id: str | None
    kind: RequestKind
    to: str | None
    body: Any
    received_monotonic: float
    received_at: float
    responded_monotonic: float
    responded_at: float
    http_status: int | None
    response: Any
    wamid: str | None = None
    fault: Fault | None = None

    @property
    def duration_ms(self) -> float:
        return (self.responded_monotonic - self.received_monotonic) * 1000

    @property
    def ok(self) -> bool:
        return self.http_status == 200

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["kind"] = self.kind.value
        out["fault"] = self.fault.to_dict() if self.fault else None
        out["duration_ms"] = round(self.duration_ms, 3)
        return out


@dataclass(frozen=True)
class WebhookDelivery:
    """One status webhook the fake POSTed (or failed to POST) to the project."""

    wamid: str
    status: str
    url: str
    http_status: int | None
    error: str | None
    sent_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _WebhookConfig:
    url: str | None = None
    app_secret: str | None = None
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    status_delay_ms: int = 50

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.app_secret and self.statuses)

    def to_dict(self) -> dict[str, Any]:
        return {
            "webhook_url": self.url,
            "app_secret_set": bool(self.app_secret),
            "statuses": list(self.statuses),
            "status_delay_ms": self.status_delay_ms,
        }


def _webhook_config(
    url: str | None,
    app_secret: str | None,
    statuses: Iterable[str] | None,
    status_delay_ms: int,
) -> _WebhookConfig:
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://[^/]+", url)):
        raise FakeConfigError("webhook_url", f"must be an http(s) URL, got {url!r}")
    if app_secret is not None and (not isinstance(app_secret, str) or not app_secret):
        raise FakeConfigError("app_secret", "must be a non-empty string")
    if url and not app_secret:
        raise FakeConfigError("app_secret", "is required to sign webhooks sent to webhook_url")
    if statuses is None:
        statuses = DEFAULT_STATUSES
    if isinstance(statuses, str) or not isinstance(statuses, Iterable):
        raise FakeConfigError("statuses", f"must be a list of statuses, got {statuses!r}")
    statuses = tuple(statuses)
    allowed = [s.value for s in webhook_payloads.MessageStatus]
    for item in statuses:
        if item not in allowed:
            raise FakeConfigError("statuses", f"{item!r} is not one of {allowed}")
    _check_int(status_delay_ms, "status_delay_ms")
    return _WebhookConfig(url, app_secret, statuses, status_delay_ms)
