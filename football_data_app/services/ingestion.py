"""Ingestion: reading API-Football page by page into the football tables.

``run_sync`` is what the tasks call: one run of a kind at a time across workers (a Redis
lock), recorded as a ``SyncRun`` row, and API trouble ends a run with a status and one log
line, never a traceback. Each ``sync_*`` fetches pages and hands each one to :mod:`.upserts`,
which writes it in its own transaction before the next page is fetched; a per-minute stop
raises :class:`SyncPaused` with where to resume, so nothing fetched is lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from ..client import ApiFootballClient, ApiRequestError, ApiUnavailable, AuthFailed, QuotaExhausted, RateLimited
from ..feed import Envelope, parse_fixture, parse_league
from ..feed_fields import FeedError
from ..models import ApiFootballAccount, Fixture, League, Market, Outcome, SyncKind, SyncRun, SyncStatus
from .api_account import api_client, redis_client
from .bulk import chunks, clip
from .settling import SETTLEABLE_STATUSES
from .upserts import PageResult, ingest_odds, upsert_fixtures, upsert_leagues

__all__ = [
    "RESULT_GRACE",
    "SyncPaused",
    "SyncStats",
    "run_lock",
    "run_sync",
    "sync_fixtures",
    "sync_leagues",
    "sync_live_odds",
    "sync_odds",
    "sync_results",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

IDS_PER_REQUEST = 20  # /fixtures?ids= takes at most 20 ids
RESULT_GRACE = timedelta(minutes=110)  # kick-off + 90 minutes + half-time + stoppage time


@dataclass
class SyncStats:
    """Counters one sync run accumulates (stored on its SyncRun row)."""

    requests: int = 0
    pages: int = 0
    items: int = 0
    rows: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, page: PageResult) -> None:
        self.pages += 1
        self.items += page.items
        self.rows += page.rows
        self.skipped += page.skipped
        self.notes.extend(page.notes[:5])


class SyncPaused(Exception):
    """The per-minute limit stopped a run part-way: continue with ``resume`` (task kwargs)
    after ``retry_after`` seconds. Nothing is lost: every finished page is committed."""

    def __init__(self, retry_after: float, resume: Mapping[str, Any]) -> None:
        self.retry_after = retry_after
        self.resume = dict(resume)
        super().__init__(f"paused for {retry_after:.0f}s; resume with {self.resume}")


_RELEASE_LOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@contextmanager
def run_lock(kind: str, ttl: int) -> Iterator[bool]:
    """Only one run of a sync kind at a time, across workers (Beat may overlap a slow run).
    Yields whether this caller holds it; a holder keeps ``run_sync`` of that kind out."""
    key, token = f"football:lock:{kind}", uuid.uuid4().hex
    client = redis_client()
    acquired = bool(client.set(key, token, nx=True, ex=max(ttl, 1)))
    try:
        yield acquired
    finally:
        if acquired:
            client.eval(_RELEASE_LOCK, 1, key, token)


SYNC_FUNCTIONS: dict[str, Callable[..., Any]] = {}


def run_sync(kind: SyncKind | str, *, worker: str = "", lock_ttl: int = 900, **kwargs: Any) -> SyncRun | None:
    """Run one sync, recorded as a SyncRun (with the worker that ran it).

    API trouble ends the run with a status and one log line, never a traceback: a spent
    daily quota is ``quota_exhausted`` (and the admin shows until when), a per-minute stop
    is ``partial`` with ``detail["resume"]`` for the task to continue from. Returns None
    when another run of the same kind holds the lock.
    """
    kind = SyncKind(kind)
    function = SYNC_FUNCTIONS[kind]
    with run_lock(kind, lock_ttl) as acquired:
        if not acquired:
            logger.info("football %s sync already running elsewhere; skipped", kind)
            return None
        run = SyncRun.objects.create(kind=kind, worker=clip(worker, 255))
        stats = SyncStats()
        client: ApiFootballClient | None = None
        try:
            client = api_client()  # raises AuthFailed when no key is configured
            function(client, stats=stats, **kwargs)
            run.status = SyncStatus.OK
        except SyncPaused as paused:
            run.status = SyncStatus.PARTIAL
            run.message = str(paused)
            run.detail = {"resume": paused.resume, "retry_after": paused.retry_after}
        except QuotaExhausted as exc:
            run.status = SyncStatus.QUOTA_EXHAUSTED
            run.message = str(exc)
            ApiFootballAccount.objects.filter(pk=1).update(
                exhausted_until=exc.until, last_error=str(exc)[:1000], last_error_at=timezone.now()
            )
            logger.warning("football %s sync stopped: %s", kind, exc)
        except (AuthFailed, ApiRequestError, ApiUnavailable, RateLimited) as exc:
            run.status = SyncStatus.FAILED
            run.message = f"{type(exc).__name__}: {exc}"
            ApiFootballAccount.objects.filter(pk=1).update(last_error=run.message[:1000], last_error_at=timezone.now())
            logger.warning("football %s sync failed: %s", kind, run.message)
        finally:
            if client is not None:
                stats.requests = client.requests_made
                client.close()
            run.finished_at = timezone.now()
            run.requests, run.pages, run.items = stats.requests, stats.pages, stats.items
            run.rows, run.skipped = stats.rows, stats.skipped
            if stats.notes:
                run.detail = {**run.detail, "notes": stats.notes[:50]}
            if run.status == SyncStatus.RUNNING:  # an unexpected exception is propagating
                run.status = SyncStatus.FAILED
                run.message = run.message or "crashed: see the worker log"
            run.save()
    return run


def _parse_items(envelope: Envelope, parse: Callable[[Any, str], _T]) -> tuple[list[_T], list[str]]:
    items = envelope.response if isinstance(envelope.response, list) else []
    good, bad = [], []
    for index, item in enumerate(items):
        try:
            good.append(parse(item, f"response[{index}]"))
        except FeedError as exc:
            bad.append(str(exc)[:300])
    return good, bad



def sync_leagues(
    client: ApiFootballClient, *, stats: SyncStats | None = None, activate: Iterable[int] = (), **params: Any
) -> SyncStats:
    """/leagues (current seasons by default) -> League rows."""
    stats = stats or SyncStats()
    params = params or {"current": "true"}
    try:
        envelope = client.leagues(**params)
    except RateLimited as exc:
        raise SyncPaused(exc.retry_after, {}) from None
    records, bad = _parse_items(envelope, parse_league)
    page = upsert_leagues(records, activate=activate)
    stats.add(PageResult(items=page.items + len(bad), rows=page.rows, skipped=len(bad), notes=tuple(bad[:5])))
    return stats


def _active_leagues(league_ids: Sequence[int] | None) -> list[League]:
    leagues = League.objects.filter(active=True, current_season__isnull=False).order_by("api_id")
    if league_ids is not None:
        leagues = leagues.filter(api_id__in=list(league_ids))
    return list(leagues)


def sync_fixtures(
    client: ApiFootballClient,
    *,
    stats: SyncStats | None = None,
    league_ids: Sequence[int] | None = None,
    days_back: int = 1,
    days_ahead: int = 7,
    now: datetime | None = None,
) -> SyncStats:
    """/fixtures for each active league's current season, from ``days_back`` to
    ``days_ahead`` days around today: one request (one page) per league."""
    stats = stats or SyncStats()
    now = now or timezone.now()
    start, end = (now - timedelta(days=days_back)).date(), (now + timedelta(days=days_ahead)).date()
    leagues = _active_leagues(league_ids)
    for index, league in enumerate(leagues):
        try:
            envelope = client.fixtures(
                league=league.api_id, season=league.current_season, from_=start.isoformat(), to=end.isoformat()
            )
        except RateLimited as exc:
            remaining = [item.api_id for item in leagues[index:]]
            raise SyncPaused(exc.retry_after, {"league_ids": remaining}) from None
        records, bad = _parse_items(envelope, parse_fixture)
        page = upsert_fixtures(records, now=now)
        stats.add(PageResult(items=page.items + len(bad), rows=page.rows, skipped=page.skipped + len(bad),
                             notes=(*page.notes, *bad[:5])))  # fmt: skip
    return stats


def sync_odds(
    client: ApiFootballClient,
    *,
    stats: SyncStats | None = None,
    league_ids: Sequence[int] | None = None,
    page: int = 1,
) -> SyncStats:
    """Pre-match /odds for each active league with odds coverage, page by page until
    ``paging.total``. Each page is written (and committed) before the next is fetched."""
    stats = stats or SyncStats()
    leagues = [league for league in _active_leagues(league_ids) if league.has_odds]
    for index, league in enumerate(leagues):
        current = page if index == 0 else 1
        while True:
            try:
                envelope = client.odds(league=league.api_id, season=league.current_season, page=current)
            except RateLimited as exc:
                remaining = [item.api_id for item in leagues[index:]]
                raise SyncPaused(exc.retry_after, {"league_ids": remaining, "page": current}) from None
            items = envelope.response if isinstance(envelope.response, list) else []
            stats.add(ingest_odds(items, live=False))  # one transaction per page
            if current >= envelope.paging.total:
                break
            current += 1
    return stats


def sync_live_odds(client: ApiFootballClient, *, stats: SyncStats | None = None) -> SyncStats:
    """/odds/live once per run (every live fixture of every league in one answer), written
    for the fixtures we know; live selections of fixtures that left the feed are closed."""
    stats = stats or SyncStats()
    now = timezone.now()
    try:
        envelope = client.live_odds()
    except RateLimited as exc:
        raise SyncPaused(exc.retry_after, {}) from None
    items = envelope.response if isinstance(envelope.response, list) else []
    with transaction.atomic():
        page = ingest_odds(items, live=True, now=now)
        ended = Market.objects.filter(is_live=True).exclude(fixture_id__in=list(page.fixture_ids))
        Outcome.objects.filter(market_id__in=ended.values("id"), active=True).update(active=False, suspended=True)
    stats.add(page)
    return stats


def sync_results(
    client: ApiFootballClient,
    *,
    stats: SyncStats | None = None,
    now: datetime | None = None,
    limit: int = 200,
) -> SyncStats:
    """Ask for the result of every unsettled fixture that should be over by now (20 ids per
    request). A fixture the feed does not return is flagged ``result_missing_since`` and
    waits: it is never settled on a guessed score."""
    stats = stats or SyncStats()
    now = now or timezone.now()
    due = list(
        Fixture.objects.filter(settled_at__isnull=True, manual_result=False, kickoff__lte=now - RESULT_GRACE)
        .exclude(status__in=[s.value for s in SETTLEABLE_STATUSES])
        .order_by("kickoff", "id")
        .values_list("api_id", flat=True)[:limit]
    )
    for batch in chunks(due, IDS_PER_REQUEST):
        try:
            envelope = client.fixtures(ids="-".join(str(api_id) for api_id in batch))
        except RateLimited as exc:
            raise SyncPaused(exc.retry_after, {}) from None
        records, bad = _parse_items(envelope, parse_fixture)
        with transaction.atomic():
            page = upsert_fixtures(records, now=now)
            missing = set(batch) - {record.api_id for record in records}
            if missing:
                Fixture.objects.filter(api_id__in=missing, result_missing_since__isnull=True).update(
                    result_missing_since=now, settlement_note="Not in the results feed: waiting for a result"
                )
        missing_notes = tuple(f"fixture {api_id}: missing from the results feed" for api_id in sorted(missing)[:5])
        stats.add(
            PageResult(
                items=page.items + len(bad), rows=page.rows, skipped=len(missing), notes=(*bad[:5], *missing_notes)
            )
        )
    return stats


SYNC_FUNCTIONS.update(
    {
        SyncKind.LEAGUES: sync_leagues,
        SyncKind.FIXTURES: sync_fixtures,
        SyncKind.ODDS: sync_odds,
        SyncKind.LIVE_ODDS: sync_live_odds,
        SyncKind.RESULTS: sync_results,
    }
)

