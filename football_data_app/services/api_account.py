"""The API-Football account: a configured client, the shared Redis, and the quota the admin shows.

Workers read the account row (``ApiFootballAccount``, pk 1) for the URL, key and per-minute
limit, falling back to the environment settings; every answer's quota headers are stored
back on it, so operators see what is left and until when requests are blocked.
"""

from __future__ import annotations

from typing import Any

import redis as redis_lib
from django.conf import settings
from django.utils import timezone

from ..client import QUOTA_EXHAUSTED_KEY, QUOTA_REMAINING_KEY, ApiFootballClient, Quota
from ..feed import parse_status
from ..models import ApiFootballAccount

__all__ = [
    "account",
    "api_client",
    "clear_quota_block",
    "quota_status",
    "record_quota",
    "redis_client",
    "refresh_quota",
]

_redis: redis_lib.Redis | None = None


def redis_client() -> redis_lib.Redis:
    """One Redis client per process (redis-py rebuilds its pool after a fork)."""
    global _redis
    if _redis is None:
        _redis = redis_lib.Redis.from_url(settings.REDIS_URL)
    return _redis


def account() -> ApiFootballAccount:
    """The account row (there is one: pk 1), created on first use."""
    return ApiFootballAccount.objects.get_or_create(pk=1)[0]


def record_quota(quota: Quota) -> None:
    """Store the quota headers of the last answer for the admin (one UPDATE)."""
    values: dict[str, Any] = {"quota_seen_at": timezone.now()}
    for name in ("daily_limit", "daily_remaining", "minute_limit", "minute_remaining"):
        if getattr(quota, name) is not None:
            values[name] = getattr(quota, name)
    if quota.daily_remaining:
        values["exhausted_until"] = None
    ApiFootballAccount.objects.filter(pk=1).update(**values)


def api_client(*, max_wait: float | None = None) -> ApiFootballClient:
    """A client for the configured account (the admin row, else the environment settings)."""
    row = account()
    return ApiFootballClient(
        base_url=row.base_url or settings.API_FOOTBALL_URL,
        api_key=row.api_key or settings.API_FOOTBALL_KEY,
        redis=redis_client(),
        requests_per_minute=row.requests_per_minute or settings.API_FOOTBALL_REQUESTS_PER_MINUTE,
        max_wait=settings.API_FOOTBALL_MAX_WAIT_SECONDS if max_wait is None else max_wait,
        on_quota=record_quota,
    )


def quota_status() -> dict[str, Any]:
    """What the admin shows: the stored quota and whether requests are blocked."""
    row = account()
    blocked = redis_client().get(QUOTA_EXHAUSTED_KEY)
    remaining = redis_client().get(QUOTA_REMAINING_KEY)
    return {
        "daily_limit": row.daily_limit,
        "daily_remaining": int(remaining) if remaining is not None else row.daily_remaining,
        "minute_limit": row.minute_limit,
        "minute_remaining": row.minute_remaining,
        "seen_at": row.quota_seen_at,
        "blocked_until": row.exhausted_until if blocked is not None else None,
        "last_error": row.last_error,
    }


def clear_quota_block() -> None:
    """Let requests go again before 00:00 UTC (after a plan upgrade, say)."""
    redis_client().delete(QUOTA_EXHAUSTED_KEY)
    ApiFootballAccount.objects.filter(pk=1).update(exhausted_until=None)


def refresh_quota() -> dict[str, Any]:
    """Ask /status (free: it does not count against the quota) and store the answer."""
    with api_client() as client:
        status = parse_status(client.status())
    account()
    record_quota(Quota(status.requests_limit_day, status.requests_remaining, None, None))
    return quota_status()

