"""API-Football v3 over httpx: one request -> one validated :class:`feed.Envelope`.

What the client takes care of, so ingestion code never has to:

* the ``x-apisports-key`` header and a base URL (the real API or the fake one);
* the plan's **per-minute** limit, shared by every worker process through Redis (a sliding
  window: at most ``requests_per_minute`` requests in any 60 seconds, whichever worker sends
  them). A short wait is slept; a long one raises :class:`RateLimited` with the wait, so a
  task can re-schedule itself instead of holding a worker slot for a minute;
* the **daily** quota, read from the ``x-ratelimit-requests-*`` headers of every answer and
  written to Redis (``apifootball:quota:remaining`` is read by the metrics exporter). When
  API-Football says the day's requests are spent, or the headers say none remain, a Redis
  flag blocks every further request until 00:00 UTC (when the quota resets), so hundreds of
  tasks do not each spend a request to learn the same thing; they get
  :class:`QuotaExhausted` without a network call;
* API-Football's habit of answering errors with HTTP 200: the body's ``errors`` decide.

No Django here: the caller passes the Redis client and the settings.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import redis as redis_lib

from .feed import Envelope, parse_envelope
from .feed_fields import FeedError

__all__ = [
    "QUOTA_EXHAUSTED_KEY",
    "QUOTA_LIMIT_KEY",
    "QUOTA_REMAINING_KEY",
    "ApiFootballClient",
    "ApiFootballError",
    "ApiRequestError",
    "ApiUnavailable",
    "AuthFailed",
    "MinuteLimiter",
    "Quota",
    "QuotaExhausted",
    "RateLimited",
    "next_quota_reset",
    "quota_from_headers",
]

logger = logging.getLogger(__name__)

QUOTA_REMAINING_KEY = "apifootball:quota:remaining"
QUOTA_LIMIT_KEY = "apifootball:quota:limit"
QUOTA_EXHAUSTED_KEY = "apifootball:quota:exhausted"
MINUTE_WINDOW_KEY = "apifootball:ratelimit:minute"
USER_AGENT = "whatsappcrm-football/1"


class ApiFootballError(Exception):
    """Base class: API-Football could not give us the data."""


class QuotaExhausted(ApiFootballError):
    """The plan's daily requests are spent; nothing is sent before ``until``."""

    def __init__(self, until: datetime, message: str = "") -> None:
        self.until = until
        super().__init__(message or f"API-Football daily quota exhausted until {until:%Y-%m-%d %H:%M} UTC")


class RateLimited(ApiFootballError):
    """Too many requests this minute: try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message or f"API-Football per-minute limit reached; retry in {retry_after:.1f}s")


class AuthFailed(ApiFootballError):
    """The key is missing, wrong or suspended: retrying will not help."""


class ApiUnavailable(ApiFootballError):
    """Network error, timeout, 5xx or a body that is not an API-Football envelope: retry later."""


class ApiRequestError(ApiFootballError):
    """API-Football refused the parameters (``errors`` keyed by parameter): a bug on our side."""


@dataclass(frozen=True, slots=True)
class Quota:
    """What the response headers said. ``None`` where a header was missing."""

    daily_limit: int | None
    daily_remaining: int | None
    minute_limit: int | None
    minute_remaining: int | None


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def quota_from_headers(headers: Mapping[str, str]) -> Quota:
    """Read the quota headers (names matched case-insensitively): the per-minute pair is
    spelt ``X-RateLimit-*``, the daily one ``x-ratelimit-requests-*``."""
    headers = {str(key).lower(): value for key, value in headers.items()}
    return Quota(
        daily_limit=_header_int(headers, "x-ratelimit-requests-limit"),
        daily_remaining=_header_int(headers, "x-ratelimit-requests-remaining"),
        minute_limit=_header_int(headers, "x-ratelimit-limit"),
        minute_remaining=_header_int(headers, "x-ratelimit-remaining"),
    )


def next_quota_reset(now: datetime) -> datetime:
    """API-Football resets daily quotas at 00:00 UTC."""
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


# KEYS[1]: sorted set of request times. ARGV: limit, window (s), member id.
# Returns "0" when granted, else the seconds until a slot frees (as a string: Lua truncates numbers).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(math.max(0.001, tonumber(oldest[2]) + window - now))
"""


class MinuteLimiter:
    """At most ``limit`` grants in any ``window`` seconds, across every process using ``key``.

    A sliding window (not a fixed minute) because API-Football's window starts at the first
    request, not on the clock's minute: a fixed window could send twice the limit across a
    boundary. Redis' own clock is used, so hosts with skewed clocks agree.
    """

    def __init__(self, redis: redis_lib.Redis, limit: int, *, window: float = 60.0, key: str = MINUTE_WINDOW_KEY):
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit: must be a positive int, got {limit!r}")
        if window <= 0:
            raise ValueError(f"window: must be positive, got {window!r}")
        self.redis = redis
        self.limit = limit
        self.window = window
        self.key = key
        self._script = redis.register_script(_ACQUIRE)

    def try_acquire(self) -> float:
        """0.0 if a request may go now (and it is counted), else seconds to wait."""
        wait = self._script(keys=[self.key], args=[self.limit, self.window, uuid.uuid4().hex])
        return float(wait.decode() if isinstance(wait, bytes) else wait)


class ApiFootballClient:
    """A synchronous client; one per task run (it holds an httpx connection pool).

    ``on_quota`` is called with the :class:`Quota` of every answer that carried quota
    headers (the Django side stores it for the admin). ``max_wait`` is the longest
    per-minute wait slept inside a call; a longer one raises :class:`RateLimited`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        redis: redis_lib.Redis,
        requests_per_minute: int,
        timeout: float = 20.0,
        max_wait: float = 5.0,
        http: httpx.Client | None = None,
        on_quota: Callable[[Quota], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url:
            raise ValueError("base_url: required (the API-Football URL, e.g. https://v3.football.api-sports.io)")
        if not api_key:
            raise AuthFailed("API-Football key is not configured (set API_FOOTBALL_KEY or the account in admin)")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.redis = redis
        self.limiter = MinuteLimiter(redis, requests_per_minute)
        self.max_wait = max_wait
        self.on_quota = on_quota
        self.clock = clock
        self.sleep = sleep
        self.requests_made = 0
        self.last_quota: Quota | None = None
        self._own_http = http is None
        self.http = http or httpx.Client(
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        )

    def __enter__(self) -> ApiFootballClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def __repr__(self) -> str:  # never print the key
        return f"ApiFootballClient({self.base_url!r})"

    # -- quota state shared through Redis --------------------------------------------

    def exhausted_until(self) -> datetime | None:
        raw = self.redis.get(QUOTA_EXHAUSTED_KEY)
        if raw is None:
            return None
        try:
            return datetime.fromtimestamp(float(raw), tz=UTC)
        except ValueError:
            return None

    def _mark_exhausted(self) -> datetime:
        until = next_quota_reset(self.clock())
        seconds = max(1, int((until - self.clock()).total_seconds()) + 1)
        self.redis.set(QUOTA_EXHAUSTED_KEY, str(until.timestamp()), ex=seconds)
        self.redis.set(QUOTA_REMAINING_KEY, 0)
        return until

    def _record_quota(self, quota: Quota) -> None:
        if quota.daily_remaining is None and quota.minute_remaining is None:
            return
        self.last_quota = quota
        pipe = self.redis.pipeline(transaction=False)
        if quota.daily_remaining is not None:
            pipe.set(QUOTA_REMAINING_KEY, quota.daily_remaining)
        if quota.daily_limit is not None:
            pipe.set(QUOTA_LIMIT_KEY, quota.daily_limit)
        pipe.execute()
        if self.on_quota is not None:
            self.on_quota(quota)

    # -- requests --------------------------------------------------------------------

    def _acquire(self) -> None:
        while True:
            wait = self.limiter.try_acquire()
            if wait <= 0:
                return
            if wait > self.max_wait:
                raise RateLimited(wait)
            self.sleep(wait)

    def get(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Envelope:
        """GET ``/endpoint`` and return the envelope; raise an :class:`ApiFootballError`
        subclass for anything that did not produce data."""
        until = self.exhausted_until()
        if until is not None:
            raise QuotaExhausted(until)
        clean = {key: str(value) for key, value in (params or {}).items() if value is not None}
        self._acquire()
        url = f"{self.base_url}/{endpoint.lstrip('/')}"
        try:
            response = self.http.get(url, params=clean, headers={"x-apisports-key": self.api_key})
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"GET /{endpoint}: {type(exc).__name__}: {exc}") from exc
        self.requests_made += 1
        quota = quota_from_headers(response.headers)
        self._record_quota(quota)
        if response.status_code == 429:
            raise RateLimited(60.0, f"GET /{endpoint}: HTTP 429")
        if response.status_code in (401, 403):
            raise AuthFailed(f"GET /{endpoint}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ApiUnavailable(f"GET /{endpoint}: HTTP {response.status_code}")
        try:
            envelope = parse_envelope(response.content)
        except FeedError as exc:
            raise ApiUnavailable(f"GET /{endpoint}: {exc}") from None
        if envelope.quota_exhausted:
            raise QuotaExhausted(self._mark_exhausted(), f"GET /{endpoint}: {'; '.join(envelope.errors)}")
        if envelope.rate_limited:
            raise RateLimited(60.0, f"GET /{endpoint}: {'; '.join(envelope.errors)}")
        if envelope.auth_failed:
            raise AuthFailed(f"GET /{endpoint}: {'; '.join(envelope.errors)}")
        if envelope.errors:
            detail = "; ".join(f"{key}: {msg}" for key, msg in zip(envelope.error_keys, envelope.errors, strict=False))
            raise ApiRequestError(f"GET /{endpoint} {clean}: {detail}")
        if quota.daily_remaining is not None and quota.daily_remaining <= 0:
            # This answer is good, but the next request would be refused: stop here.
            until = self._mark_exhausted()
            logger.warning("API-Football daily quota spent; no requests until %s", until.isoformat())
        return envelope

    # -- endpoints -------------------------------------------------------------------

    def leagues(self, **params: Any) -> Envelope:
        return self.get("leagues", params)

    def fixtures(self, **params: Any) -> Envelope:
        """``/fixtures``: by ``league``+``season`` (+ ``from``/``to``), ``ids`` (up to 20,
        '-'-joined), or ``live="all"``."""
        if "from_" in params:
            params["from"] = params.pop("from_")
        return self.get("fixtures", params)

    def odds(self, **params: Any) -> Envelope:
        """``/odds`` (pre-match), paged: pass ``page``; the envelope's ``paging.total`` says how many."""
        return self.get("odds", params)

    def live_odds(self, **params: Any) -> Envelope:
        return self.get("odds/live", params)

    def status(self) -> Envelope:
        """``/status`` does not count against the quota; it works even when the quota is spent."""
        url = f"{self.base_url}/status"
        try:
            response = self.http.get(url, headers={"x-apisports-key": self.api_key})
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"GET /status: {type(exc).__name__}: {exc}") from exc
        try:
            envelope = parse_envelope(response.content)
        except FeedError as exc:
            raise ApiUnavailable(f"GET /status: {exc}") from None
        if envelope.auth_failed:
            raise AuthFailed(f"GET /status: {'; '.join(envelope.errors)}")
        return envelope
