"""Everything the football app changes: ingestion, settlement, wallets and tickets.

Tasks, flow actions and the admin call these functions; each does its own transactions.

**Ingestion** (``sync_*``) reads API-Football page by page and writes each page with bulk
upserts (:func:`bulk_upsert`: one ``INSERT ... ON CONFLICT DO UPDATE`` per table per page):
a fixed number of statements per page whatever the number of rows, on SQLite and
PostgreSQL alike, and running a sync twice changes nothing. An odds refresh
updates outcomes in place (a bet keeps the odds it was placed at on its own row) and only
ever *deactivates* a selection the feed stopped offering; markets and outcomes are never
deleted (bets refer to them).

**Settlement** runs results -> outcomes -> bets -> tickets -> wallet -> notification. It is
exactly-once in effect: a ticket moves out of ``open`` only while its row is locked, and the
credit is a ledger entry with a unique reference (``win:ticket:<id>``) written in the same
transaction, so running it twice, concurrently, or again after a crash pays once. A fixture
is settled only from a score the feed (or an operator) gave; one missing from the results
feed waits, flagged for operators.

**Money** is Decimal, and a wallet's balance changes only together with a ledger entry, under
a row lock; a database constraint makes a negative balance impossible.
"""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import redis as redis_lib
from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from conversations.models import Contact

from . import fake_feed
from .client import (
    ApiFootballClient,
    ApiRequestError,
    ApiUnavailable,
    AuthFailed,
    Quota,
    QuotaExhausted,
    RateLimited,
)
from .feed import (
    Envelope,
    FeedError,
    FixtureRecord,
    FixtureStatus,
    LeagueRecord,
    OddsRecord,
    OutcomeOdds,
    parse_fixture,
    parse_league,
    parse_live_odds_item,
    parse_odds_item,
)
from .markets import MarketType, NormalisedOutcome, OutcomeError, market_for, normalise_outcome, outcome_label
from .models import (
    ApiFootballAccount,
    Bet,
    Bookmaker,
    EntryKind,
    Fixture,
    League,
    LedgerEntry,
    Market,
    Outcome,
    SyncKind,
    SyncRun,
    SyncStatus,
    Team,
    Ticket,
    TicketKind,
    TicketStatus,
    Wallet,
)
from .settlement import MissingScoreError, OutcomeResult, Score, settle_outcome, ticket_payout

__all__ = [
    "FOOTBALL_FLOWS_PATH",
    "BetRefused",
    "FixtureSettlement",
    "InsufficientFunds",
    "PageResult",
    "RefusalCode",
    "Selection",
    "SyncPaused",
    "SyncStats",
    "WalletError",
    "adjust",
    "api_client",
    "bettable_fixtures",
    "bulk_set",
    "bulk_upsert",
    "clear_quota_block",
    "deposit",
    "fixture_list_text",
    "fixture_markets",
    "fixture_name",
    "fixtures_on",
    "house_bookmaker",
    "import_football_flows",
    "ingest_odds",
    "ledger_total",
    "notify_settled_tickets",
    "place_ticket",
    "post_entry",
    "quota_status",
    "record_settlement_run",
    "redis_client",
    "refresh_quota",
    "run_lock",
    "run_sync",
    "seed_development_data",
    "selection_label",
    "set_manual_result",
    "settle_due",
    "settle_fixture",
    "settle_tickets",
    "settleable_fixture_ids",
    "sync_fixtures",
    "sync_leagues",
    "sync_live_odds",
    "sync_odds",
    "sync_results",
    "ticket_settled_text",
    "upcoming_days",
    "upcoming_leagues",
    "upsert_fixtures",
    "upsert_leagues",
    "void_fixture",
    "wallet_discrepancies",
    "wallet_for",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

CENT = Decimal("0.01")
IDS_PER_REQUEST = 20  # /fixtures?ids= takes at most 20 ids
SQL_CHUNK = 900  # ids per IN (...) list: well inside every backend's parameter limit
BATCH_ROWS = 2000  # rows per INSERT: 2000 x <=16 columns stays under PostgreSQL's 65535 parameters
RESULT_GRACE = timedelta(minutes=110)  # kick-off + 90 minutes + half-time + stoppage time
FOOTBALL_FLOWS_PATH = Path(__file__).resolve().parent / "default_flows" / "football.json"

SETTLEABLE_STATUSES = frozenset(
    status for status in FixtureStatus if status.is_finished or status.is_void or status.is_technical_result
)


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _cut(value: str | None, length: int) -> str:
    return (value or "")[:length]


# --------------------------------------------------------------------------- account, Redis, client

_redis: redis_lib.Redis | None = None


def redis_client() -> redis_lib.Redis:
    """One Redis client per process (redis-py rebuilds its pool after a fork)."""
    global _redis
    if _redis is None:
        _redis = redis_lib.Redis.from_url(settings.REDIS_URL)
    return _redis


def account() -> ApiFootballAccount:
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
        max_wait=_setting("API_FOOTBALL_MAX_WAIT_SECONDS", 5.0) if max_wait is None else max_wait,
        on_quota=record_quota,
    )


def quota_status() -> dict[str, Any]:
    """What the admin shows: the stored quota and whether requests are blocked."""
    from .client import QUOTA_EXHAUSTED_KEY, QUOTA_REMAINING_KEY

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
    from .client import QUOTA_EXHAUSTED_KEY

    redis_client().delete(QUOTA_EXHAUSTED_KEY)
    ApiFootballAccount.objects.filter(pk=1).update(exhausted_until=None)


def refresh_quota() -> dict[str, Any]:
    """Ask /status (free: it does not count against the quota) and store the answer."""
    from .feed import parse_status

    with api_client() as client:
        status = parse_status(client.status())
    account()
    record_quota(Quota(status.requests_limit_day, status.requests_remaining, None, None))
    return quota_status()


# --------------------------------------------------------------------------- run bookkeeping


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
        run = SyncRun.objects.create(kind=kind, worker=_cut(worker, 255))
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


# --------------------------------------------------------------------------- upserts


@dataclass(frozen=True)
class PageResult:
    """What writing one page did."""

    items: int = 0
    rows: int = 0
    skipped: int = 0
    notes: tuple[str, ...] = ()
    fixture_ids: tuple[int, ...] = ()


@transaction.atomic
def upsert_leagues(records: Iterable[LeagueRecord], *, activate: Iterable[int] = ()) -> PageResult:
    """Insert or update leagues. ``active`` is never written for an existing league: it is
    the operators' choice, so a sync never re-activates a league they turned off. New
    leagues start inactive unless their id is in ``activate``."""
    unique = {record.api_id: record for record in records}
    if not unique:
        return PageResult()
    wanted = set(activate)
    known = set(League.objects.filter(api_id__in=list(unique)).values_list("api_id", flat=True))
    rows = []
    for record in unique.values():
        season = record.current_season
        rows.append(
            League(
                api_id=record.api_id,
                name=_cut(record.name, 255),
                type=_cut(record.type, 32),
                country=_cut(record.country, 255),
                country_code=_cut(record.country_code, 16),
                logo=_cut(record.logo, 200),
                current_season=season.year if season else None,
                has_odds=bool(season and season.has_odds),
                active=record.api_id in wanted and record.api_id not in known,
            )
        )
    bulk_upsert(
        rows,
        unique_fields=["api_id"],
        update_fields=["name", "type", "country", "country_code", "logo", "current_season", "has_odds", "updated_at"],
    )
    return PageResult(items=len(unique), rows=len(rows))


def _upsert_teams(records: Iterable[FixtureRecord]) -> dict[int, int]:
    teams = {team.api_id: team for record in records for team in (record.home, record.away)}
    if not teams:
        return {}
    bulk_upsert(
        [
            Team(api_id=t.api_id, name=_cut(t.name, 255), code=_cut(t.code, 16), logo=_cut(t.logo, 200))
            for t in teams.values()
        ],
        unique_fields=["api_id"],
        update_fields=["name", "code", "logo"],
    )
    return dict(Team.objects.filter(api_id__in=list(teams)).values_list("api_id", "id"))


_FIXTURE_FEED_FIELDS = [
    "league", "season", "round", "kickoff", "venue", "referee", "home_team", "away_team",
    "status", "status_short", "status_long", "elapsed", "goals_home", "goals_away",
    "halftime_home", "halftime_away", "fulltime_home", "fulltime_away", "extratime_home",
    "extratime_away", "penalty_home", "penalty_away", "result_missing_since", "settled_at",
    "settlement_note", "updated_at",
]  # fmt: skip


@transaction.atomic
def upsert_fixtures(records: Sequence[FixtureRecord], *, now: datetime | None = None) -> PageResult:
    """Insert or update fixtures (and their teams) in a fixed number of statements.

    Fixtures of leagues we do not know are skipped. A fixture an operator set by hand, or one
    already settled on a played result, is never rewritten by the feed. A fixture voided
    (postponed, say) that the feed brings back to life is re-opened: its settlement is
    cleared so new bets on it settle on the match actually played (old bets keep their own
    result).
    """
    now = now or timezone.now()
    unique = {record.api_id: record for record in records}
    if not unique:
        return PageResult()
    leagues = dict(
        League.objects.filter(api_id__in={r.league_api_id for r in unique.values()}).values_list("api_id", "id")
    )
    teams = _upsert_teams(unique.values())
    existing = {
        api_id: (settled_at, manual, status)
        for api_id, settled_at, manual, status in Fixture.objects.filter(api_id__in=list(unique)).values_list(
            "api_id", "settled_at", "manual_result", "status"
        )
    }
    rows, notes, reopened, skipped = [], [], [], 0
    for record in unique.values():
        if record.league_api_id not in leagues:
            skipped += 1
            continue
        if record.home.api_id == record.away.api_id:
            skipped += 1
            notes.append(f"fixture {record.api_id}: home and away are the same team")
            continue
        settled_at, note = None, ""
        if record.api_id in existing:
            settled_at, manual, status = existing[record.api_id]
            if manual or (settled_at is not None and not FixtureStatus(status).is_void):
                continue
            if settled_at is not None and not record.status.is_void:
                reopened.append(record.api_id)
                settled_at, note = None, f"Re-opened {now:%Y-%m-%d %H:%M}: the feed says {record.status_short}"
        rows.append(
            Fixture(
                api_id=record.api_id,
                league_id=leagues[record.league_api_id],
                season=record.season,
                round=_cut(record.round, 128),
                kickoff=record.kickoff,
                venue=_cut(record.venue, 255),
                referee=_cut(record.referee, 255),
                home_team_id=teams[record.home.api_id],
                away_team_id=teams[record.away.api_id],
                status=record.status.value,
                status_short=_cut(record.status_short, 8),
                status_long=_cut(record.status_long, 64),
                elapsed=record.elapsed,
                goals_home=record.goals_home,
                goals_away=record.goals_away,
                halftime_home=record.halftime_home,
                halftime_away=record.halftime_away,
                fulltime_home=record.fulltime_home,
                fulltime_away=record.fulltime_away,
                extratime_home=record.extratime_home,
                extratime_away=record.extratime_away,
                penalty_home=record.penalty_home,
                penalty_away=record.penalty_away,
                result_missing_since=None,
                settled_at=settled_at,
                settlement_note=note,
            )
        )
    if rows:
        bulk_upsert(rows, unique_fields=["api_id"], update_fields=_FIXTURE_FEED_FIELDS)
    if reopened:
        Outcome.objects.filter(market__fixture__api_id__in=reopened).update(result="", settled_at=None)
    return PageResult(items=len(unique), rows=len(rows), skipped=skipped, notes=tuple(notes))


def _keep_outcome(current: tuple[OutcomeOdds, NormalisedOutcome] | None, new: OutcomeOdds) -> bool:
    """Live over/under lists the same line more than once; the ``main`` one wins."""
    return current is None or (new.main is True and current[0].main is not True)


PG_MAX_PARAMETERS = 65535


def _quoted(connection: Any, model: type, names: Sequence[str]) -> list[str]:
    meta, quote = model._meta, connection.ops.quote_name
    return [quote(meta.get_field(name).column) for name in names]


def _execute_rows(connection: Any, head: str, row: str, tail: str, params: Sequence[Sequence[Any]]) -> None:
    """Run ``head VALUES row, row, ... tail`` for every row of ``params``.

    SQLite runs one prepared single-row statement per row in C (``executemany``): fastest
    there, and free of its 32,766-parameter limit. Elsewhere (PostgreSQL) ``executemany``
    would be a round trip per row, so the rows go in multi-row ``VALUES`` statements of up to
    65,535 parameters: one statement for any page ingestion writes (4,000 selections x 10).
    """
    if not params:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.executemany(f"{head} VALUES {row} {tail}", params)
            return
        size = max(1, PG_MAX_PARAMETERS // len(params[0]))
        for start in range(0, len(params), size):
            chunk = params[start : start + size]
            cursor.execute(f"{head} VALUES {', '.join([row] * len(chunk))} {tail}", [v for r in chunk for v in r])


def _upsert_rows(
    model: type, insert: Sequence[str], unique: Sequence[str], update: Sequence[str], params: Sequence[Sequence[Any]]
) -> None:
    """``INSERT ... ON CONFLICT (unique) DO UPDATE SET col = excluded.col`` for ``model``,
    spelt the same by SQLite (3.24+) and PostgreSQL (9.5+). Only column names from the
    model's own metadata (quoted) are interpolated; every value is a parameter."""
    connection = connections[router.db_for_write(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    assignments = ", ".join(f"{column} = excluded.{column}" for column in _quoted(connection, model, update))
    head = f"INSERT INTO {table} ({', '.join(_quoted(connection, model, insert))})"
    row = f"({', '.join(['%s'] * len(insert))})"
    tail = f"ON CONFLICT ({', '.join(_quoted(connection, model, unique))}) DO UPDATE SET {assignments}"
    _execute_rows(connection, head, row, tail, params)


def bulk_upsert(objs: Sequence[Any], *, unique_fields: Sequence[str], update_fields: Sequence[str]) -> int:
    """Insert or update ``objs`` (unsaved instances of one model) in one statement.

    What ``bulk_create(update_conflicts=True, unique_fields=..., update_fields=...)`` does,
    except that it is one statement per call whatever the backend (``bulk_create`` splits
    into batches of 999 // fields rows on SQLite: a page of 600 markets took 6 statements and
    one of 1,000 fixtures 39), which is what keeps ingestion's statements per page constant.
    Values are prepared as ``bulk_create`` prepares them (``pre_save`` for ``auto_now``,
    then ``get_db_prep_save``). Returns the number of rows.
    """
    if not objs:
        return 0
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    params = [tuple(field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields) for obj in objs]
    _upsert_rows(model, [f.name for f in fields], unique_fields, update_fields, params)
    return len(objs)


def bulk_set(objs: Sequence[Any], fields: Sequence[str]) -> int:
    """Write ``fields`` of ``objs`` (saved instances of one model, rows the caller holds
    locked: it writes values, not expressions) in one statement.

    ``bulk_update`` builds a CASE per field per row, which was 75% of the time settling 2,000
    bets. Here SQLite runs ``UPDATE ... WHERE pk = %s`` per row (``executemany``), PostgreSQL
    one ``UPDATE ... FROM (VALUES ...)`` join (each value cast to its column's type).
    """
    if not objs:
        return 0
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    meta, quote = model._meta, connection.ops.quote_name
    targets = [meta.get_field(name) for name in fields]
    params = [
        (*(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in targets), obj.pk)
        for obj in objs
    ]
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in targets)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", params)  # noqa: S608
            return len(objs)
        names = [quote(field.column) for field in targets]
        casts = [f"%s::{field.cast_db_type(connection)}" for field in [*targets, meta.pk]]
        row = f"({', '.join(casts)})"
        assignments = ", ".join(f"{name} = v.{name}" for name in names)
        size = max(1, PG_MAX_PARAMETERS // len(casts))
        for start in range(0, len(params), size):
            chunk = params[start : start + size]
            values = ", ".join([row] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v({', '.join(names)}, {pk}) "  # noqa: S608
                f"WHERE {table}.{pk} = v.{pk}",
                [value for item in chunk for value in item],
            )
    return len(objs)


_OUTCOME_INSERT = (
    "market", "key", "name", "line", "odds", "suspended", "active", "refreshed_at", "result", "settled_at",
)  # fmt: skip
_OUTCOME_UPDATE = ("name", "line", "odds", "suspended", "active", "refreshed_at")


def _upsert_outcomes(rows: Sequence[tuple[int, str, str, Decimal | None, Decimal, bool]], now: datetime) -> None:
    """:func:`bulk_upsert` for a page of selections, from plain tuples.

    Selections are ~90% of what ingestion writes (a page of 10 fixtures x 5 bookmakers is
    ~4,000 of them), so they skip model instances and per-field preparation: 0.04 s a page
    against 0.86 s through ``bulk_create``, measured on SQLite. ``result`` and
    ``settled_at`` are written only for new rows, so a refresh never un-settles one.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(Outcome)]
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(now)
    params = [
        (
            market_id, key, name,
            None if line is None else ops.adapt_decimalfield_value(line, 6, 2),
            ops.adapt_decimalfield_value(odds, 9, 3),
            suspended, True, stamp, "", None,
        )
        for market_id, key, name, line, odds, suspended in rows
    ]  # fmt: skip
    _upsert_rows(Outcome, _OUTCOME_INSERT, ("market", "key"), _OUTCOME_UPDATE, params)


@transaction.atomic
def ingest_odds(items: Sequence[Any], *, live: bool = False, now: datetime | None = None) -> PageResult:
    """Write one page of /odds (or the /odds/live body) in a fixed number of statements.

    Unknown markets are skipped before their values are parsed; a malformed item or an
    outcome label a market cannot have is counted and skipped, never fatal for the page.
    Selections the feed no longer offers for these fixtures are deactivated, not deleted.
    """
    now = now or timezone.now()
    parse = parse_live_odds_item if live else parse_odds_item

    def bet_filter(bet_id: int | None, name: str) -> bool:
        return market_for(bet_id, name, live=live) is not None

    records: list[OddsRecord] = []
    notes: list[str] = []
    skipped = 0
    for index, item in enumerate(items):
        try:
            records.append(parse(item, f"response[{index}]", bet_filter))
        except FeedError as exc:
            skipped += 1
            notes.append(str(exc)[:300])
    fixtures = dict(Fixture.objects.filter(api_id__in={r.fixture_api_id for r in records}).values_list("api_id", "id"))
    books = {book.api_id: book.name for r in records for book in r.bookmakers}
    if not fixtures or not books:
        return PageResult(items=len(items), skipped=skipped + len(records), notes=tuple(notes))
    bulk_upsert(
        [Bookmaker(api_id=api_id, name=_cut(name, 255)) for api_id, name in books.items()],
        unique_fields=["api_id"],
        update_fields=["name"],
    )
    book_ids = dict(Bookmaker.objects.filter(api_id__in=list(books)).values_list("api_id", "id"))

    markets: dict[tuple[int, int, MarketType], Market] = {}
    selections: dict[tuple[int, int, MarketType], dict[str, tuple[OutcomeOdds, NormalisedOutcome]]] = {}
    suspended_keys: set[tuple[int, int, MarketType]] = set()
    for record in records:
        fixture_id = fixtures.get(record.fixture_api_id)
        if fixture_id is None:
            skipped += 1
            continue
        stopped = record.stopped or record.blocked or record.finished
        for book in record.bookmakers:
            for bet in book.markets:
                market_type = market_for(bet.api_bet_id, bet.name, live=live)
                if market_type is None:
                    continue
                key = (fixture_id, book_ids[book.api_id], market_type)
                if key not in markets:
                    markets[key] = Market(
                        fixture_id=fixture_id,
                        bookmaker_id=key[1],
                        market_type=market_type.value,
                        api_bet_id=bet.api_bet_id,
                        name=_cut(bet.name, 255),
                        is_live=live,
                        suspended=stopped,
                        feed_updated_at=record.update,
                        refreshed_at=now,
                    )
                    selections[key] = {}
                if stopped:
                    suspended_keys.add(key)
                chosen = selections[key]
                for value in bet.outcomes:
                    try:
                        normalised = normalise_outcome(market_type, value.value, value.handicap)
                    except OutcomeError as exc:
                        skipped += 1
                        if len(notes) < 20:
                            notes.append(f"fixture {record.fixture_api_id}: {exc}")
                        continue
                    if value.odd < 1:
                        skipped += 1
                        continue
                    if _keep_outcome(chosen.get(normalised.key), value):
                        chosen[normalised.key] = (value, normalised)
    if not markets:
        return PageResult(items=len(items), skipped=skipped, notes=tuple(notes))
    bulk_upsert(
        list(markets.values()),
        unique_fields=["fixture", "bookmaker", "market_type"],
        update_fields=["api_bet_id", "name", "is_live", "suspended", "feed_updated_at", "refreshed_at"],
    )
    fixture_ids = sorted({key[0] for key in markets})
    market_ids = {
        (fixture_id, bookmaker_id, MarketType(market_type)): market_id
        for market_id, fixture_id, bookmaker_id, market_type in Market.objects.filter(
            fixture_id__in=fixture_ids, is_live=live
        ).values_list("id", "fixture_id", "bookmaker_id", "market_type")
    }
    thousandth = Decimal("0.001")
    outcomes = [
        (
            market_ids[key],
            normalised.key,
            normalised.name,
            normalised.line,
            value.odd.quantize(thousandth, rounding=ROUND_DOWN),
            value.suspended or key in suspended_keys,
        )
        for key, chosen in selections.items()
        for value, normalised in chosen.values()
    ]
    _upsert_outcomes(outcomes, now)
    # Every market of these fixtures (any bookmaker, this feed): what the page did not refresh
    # is no longer offered. By market id, so the update uses the (market, key) index.
    Outcome.objects.filter(market_id__in=list(market_ids.values()), active=True, refreshed_at__lt=now).update(
        active=False
    )
    Fixture.objects.filter(id__in=fixture_ids).update(odds_updated_at=now)
    return PageResult(
        items=len(items), rows=len(markets) + len(outcomes), skipped=skipped, notes=tuple(notes),
        fixture_ids=tuple(fixture_ids),
    )  # fmt: skip


def _parse_items(envelope: Envelope, parse: Callable[[Any, str], _T]) -> tuple[list[_T], list[str]]:
    items = envelope.response if isinstance(envelope.response, list) else []
    good, bad = [], []
    for index, item in enumerate(items):
        try:
            good.append(parse(item, f"response[{index}]"))
        except FeedError as exc:
            bad.append(str(exc)[:300])
    return good, bad


# --------------------------------------------------------------------------- syncs


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
    for batch in _chunks(due, IDS_PER_REQUEST):
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


# --------------------------------------------------------------------------- settlement


@dataclass(frozen=True)
class FixtureSettlement:
    """What one ``settle_fixture`` call did. ``state``: settled / waiting / not_due."""

    fixture_id: int
    state: str
    outcomes: int = 0
    bets: int = 0
    tickets: tuple[int, ...] = ()
    note: str = ""


def settleable_fixture_ids(*, limit: int = 500) -> list[int]:
    """Fixtures that are over (played, void or decided off the pitch) and not yet settled."""
    return list(
        Fixture.objects.filter(settled_at__isnull=True, status__in=[s.value for s in SETTLEABLE_STATUSES])
        .order_by("kickoff", "id")
        .values_list("id", flat=True)[:limit]
    )


def _settling_score(fixture: Fixture) -> Score:
    """The 90-minute score (and half-time score when known). Raises MissingScoreError
    rather than guess; ``goals`` stand in only for a plain FT, where they are the same."""
    home, away = fixture.fulltime_home, fixture.fulltime_away
    if home is None or away is None:
        if fixture.status_short.upper() != "FT":
            raise MissingScoreError(f"{fixture.status_short or fixture.status} without a 90-minute score")
        home, away = fixture.goals_home, fixture.goals_away
        if home is None or away is None:
            raise MissingScoreError("finished without a score")
    ht_home, ht_away = fixture.halftime_home, fixture.halftime_away
    if ht_home is None or ht_away is None:
        ht_home = ht_away = None
    try:
        return Score(home, away, ht_home, ht_away)
    except ValueError as exc:
        raise MissingScoreError(f"inconsistent score: {exc}") from None


def settle_fixture(
    fixture_id: int, *, settled_by: str = "", now: datetime | None = None, notify: bool = True
) -> FixtureSettlement:
    """Settle a fixture's outcomes and bets, then the tickets they complete.

    Safe to run any number of times, concurrently too: outcomes and bets are only written
    while unsettled (under the fixture's row lock), tickets through :func:`settle_tickets`.
    """
    now = now or timezone.now()
    with transaction.atomic():
        fixture = Fixture.objects.select_for_update().filter(pk=fixture_id).first()
        if fixture is None:
            raise LookupError(f"fixture {fixture_id} does not exist")
        status = FixtureStatus(fixture.status)
        void = status.is_void or status.is_technical_result
        score = None
        if not void:
            if not status.is_finished:
                return FixtureSettlement(fixture_id, "not_due", note=f"status is {status}")
            try:
                score = _settling_score(fixture)
            except MissingScoreError as exc:
                note = f"Waiting: {exc}"[:255]
                Fixture.objects.filter(pk=fixture_id).update(settlement_note=note)
                logger.warning("fixture %s (%s) not settled: %s", fixture_id, fixture.api_id, exc)
                return FixtureSettlement(fixture_id, "waiting", note=note)
        results: dict[OutcomeResult, list[int]] = defaultdict(list)
        waiting = 0
        open_outcomes = Outcome.objects.filter(market__fixture_id=fixture_id, result="").values_list(
            "id", "name", "line", "market__market_type"
        )
        for outcome_id, name, line, market_type in open_outcomes:
            if void:
                results[OutcomeResult.VOID].append(outcome_id)
                continue
            try:
                results[settle_outcome(MarketType(market_type), name, line, score)].append(outcome_id)
            except MissingScoreError:
                waiting += 1
            except ValueError as exc:  # a stored selection the rules cannot read: leave it for an operator
                waiting += 1
                logger.error("fixture %s outcome %s not settled: %s", fixture_id, outcome_id, exc)
        for result, ids in results.items():
            for chunk in _chunks(ids, SQL_CHUNK):
                Outcome.objects.filter(id__in=chunk, result="").update(result=result.value, settled_at=now)
        bets = (
            Bet.objects.filter(fixture_id=fixture_id, result="")
            .exclude(outcome__result="")
            .update(result=Subquery(Outcome.objects.filter(pk=OuterRef("outcome_id")).values("result")[:1]))
        )
        note = f"{waiting} first-half selection(s) wait for a half-time score" if waiting else ""
        Fixture.objects.filter(pk=fixture_id).update(
            settled_at=None if waiting else now, settlement_note=note, result_missing_since=None
        )
        ticket_ids = list(
            Bet.objects.filter(fixture_id=fixture_id, ticket__status=TicketStatus.OPEN)
            .order_by()  # no default ordering: a plain DISTINCT over the bet index
            .values_list("ticket_id", flat=True)
            .distinct()
        )
    settled = settle_tickets(ticket_ids, settled_by=settled_by, now=now)
    if notify and settled:
        notify_settled_tickets(settled, limit=len(settled))
    outcomes = sum(len(ids) for ids in results.values())
    return FixtureSettlement(
        fixture_id, "waiting" if waiting else "settled", outcomes=outcomes, bets=bets, tickets=tuple(settled), note=note
    )


def record_settlement_run(
    result: FixtureSettlement, *, worker: str = "", started_at: datetime | None = None
) -> SyncRun:
    """A SyncRun row for a settlement task, so operators (and tests) see who settled what."""
    now = timezone.now()
    run = SyncRun.objects.create(
        kind=SyncKind.SETTLE,
        status=SyncStatus.OK if result.state != "waiting" else SyncStatus.PARTIAL,
        worker=_cut(worker, 255),
        finished_at=now,
        items=result.outcomes,
        rows=result.bets + len(result.tickets),
        message=f"fixture {result.fixture_id}: {result.state} {result.note}".strip(),
        detail={
            "fixture_id": result.fixture_id,
            "state": result.state,
            "tickets": list(result.tickets),
            "pid": os.getpid(),
        },
    )
    if started_at is not None:  # auto_now_add stamped the row's creation; record when the work began
        SyncRun.objects.filter(pk=run.pk).update(started_at=started_at)
        run.started_at = started_at
    return run


def settle_tickets(ticket_ids: Sequence[int], *, settled_by: str = "", now: datetime | None = None) -> list[int]:
    """Settle the open tickets among ``ticket_ids`` whose legs allow it; returns those settled.

    Per chunk, one transaction: lock the open tickets (a concurrent run waits, then sees them
    settled and skips them), lock their wallets, write status + payout, the credit entries
    (unique reference per ticket) and the new balances together.
    """
    now = now or timezone.now()
    settled: list[int] = []
    for chunk in _chunks(sorted(set(ticket_ids)), 500):
        with transaction.atomic():
            tickets = list(
                Ticket.objects.select_for_update().filter(pk__in=chunk, status=TicketStatus.OPEN).order_by("pk")
            )
            if not tickets:
                continue
            legs: dict[int, list[tuple[OutcomeResult | None, Decimal]]] = defaultdict(list)
            for ticket_id, result, odds in Bet.objects.filter(ticket_id__in=[t.pk for t in tickets]).values_list(
                "ticket_id", "result", "odds"
            ):
                legs[ticket_id].append((OutcomeResult(result) if result else None, odds))
            done = []
            for ticket in tickets:
                outcome = ticket_payout(ticket.stake, legs[ticket.pk])
                if outcome is not None:
                    done.append((ticket, outcome))
            if not done:
                continue
            wallets = {
                wallet.pk: wallet
                for wallet in Wallet.objects.select_for_update()
                .filter(pk__in=sorted({t.wallet_id for t, _ in done}))
                .order_by("pk")
            }
            entries, touched = [], set()
            for ticket, outcome in done:
                ticket.status = outcome.status.value
                ticket.payout = outcome.payout
                ticket.settled_at = now
                ticket.settled_by = _cut(settled_by, 255)
                if outcome.payout > 0:
                    wallet = wallets[ticket.wallet_id]
                    wallet.balance += outcome.payout
                    kind = EntryKind.REFUND if outcome.status.value == TicketStatus.VOID else EntryKind.WIN
                    entries.append(
                        LedgerEntry(
                            wallet=wallet,
                            kind=kind,
                            amount=outcome.payout,
                            balance_after=wallet.balance,
                            reference=f"{kind}:ticket:{ticket.pk}",
                            ticket=ticket,
                            note=f"Ticket #{ticket.pk} {outcome.status.value}",
                            created_by=_cut(settled_by or "system", 150),
                        )
                    )
                    touched.add(wallet.pk)
            bulk_set([ticket for ticket, _ in done], ["status", "payout", "settled_at", "settled_by"])
            LedgerEntry.objects.bulk_create(entries, batch_size=BATCH_ROWS)
            changed = [wallets[pk] for pk in sorted(touched)]
            for wallet in changed:
                wallet.updated_at = now
            bulk_set(changed, ["balance", "updated_at"])
            settled.extend(ticket.pk for ticket, _ in done)
    return settled


def settle_due(*, settled_by: str = "", limit: int = 200, notify: bool = True) -> dict[str, int]:
    """The sweeper: settle every fixture that is over but unsettled, and send notifications
    that a crash left unsent. Beat runs it; results sync also enqueues fixtures directly."""
    counts = {"fixtures": 0, "tickets": 0, "waiting": 0, "notified": 0}
    for fixture_id in settleable_fixture_ids(limit=limit):
        started_at = timezone.now()
        outcome = settle_fixture(fixture_id, settled_by=settled_by, notify=False)
        record_settlement_run(outcome, worker=settled_by, started_at=started_at)
        counts["fixtures"] += outcome.state == "settled"
        counts["waiting"] += outcome.state == "waiting"
        counts["tickets"] += len(outcome.tickets)
    if notify:
        counts["notified"] = notify_settled_tickets(limit=limit)
    return counts


def _money_text(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount.quantize(CENT):,}"


def fixture_name(fixture: Fixture) -> str:
    return f"{fixture.home_team.name} v {fixture.away_team.name}"


def selection_label(outcome: Outcome, fixture: Fixture | None = None) -> str:
    """'Over 2.5 goals', 'Arsenal to win', 'Chelsea +1.25 (Asian handicap)'."""
    market = MarketType(outcome.market.market_type)
    fixture = fixture or outcome.market.fixture
    normalised = NormalisedOutcome(outcome.name, outcome.line)
    teams = {"Home": fixture.home_team.name, "Away": fixture.away_team.name}
    if market in (MarketType.MATCH_WINNER, MarketType.DRAW_NO_BET):
        base = "Draw" if outcome.name == "Draw" else f"{teams[outcome.name]} to win"
        return base + (" (draw no bet)" if market is MarketType.DRAW_NO_BET else "")
    if market is MarketType.FIRST_HALF_WINNER:
        return "Draw at half-time" if outcome.name == "Draw" else f"{teams[outcome.name]} leading at half-time"
    if market is MarketType.DOUBLE_CHANCE:
        return {"1X": f"{teams['Home']} or draw", "X2": f"{teams['Away']} or draw", "12": "Either team to win"}.get(
            outcome.name, outcome.name
        )
    if market in (MarketType.OVER_UNDER, MarketType.FIRST_HALF_OVER_UNDER):
        suffix = " goals" + (" (1st half)" if market.is_first_half else "")
        return outcome_label(market, normalised) + suffix
    if market in (MarketType.BTTS, MarketType.FIRST_HALF_BTTS):
        half = " in the 1st half" if market.is_first_half else ""
        return f"Both teams to score{half}: {outcome.name}"
    if market is MarketType.ODD_EVEN:
        return f"{outcome.name} number of goals"
    if market is MarketType.CORRECT_SCORE:
        return f"Correct score {outcome.name.replace(':', '-')}"
    label = outcome_label(market, normalised)
    for side, team in teams.items():
        label = label.replace(side, team, 1) if label.startswith(side) else label
    what = "Asian handicap" if market is MarketType.ASIAN_HANDICAP else "handicap"
    return f"{label} ({what})"


def ticket_settled_text(ticket: Ticket, bets: Sequence[Bet]) -> str:
    """The WhatsApp notification for a settled ticket."""
    currency = ticket.wallet.currency
    payout = _money_text(ticket.payout or Decimal(0), currency)
    headline = {
        TicketStatus.WON: f"🎉 Ticket #{ticket.pk} WON! {payout} has been added to your wallet.",
        TicketStatus.LOST: f"Ticket #{ticket.pk} lost this time. Better luck next time! ⚽",
        TicketStatus.VOID: f"Ticket #{ticket.pk} was void: your stake of {payout} has been refunded.",
        TicketStatus.PARTIAL: f"Ticket #{ticket.pk} settled: {payout} has been added to your wallet.",
    }.get(TicketStatus(ticket.status), f"Ticket #{ticket.pk} settled.")
    marks = {"win": "✅", "half_win": "✅½", "lose": "❌", "half_lose": "❌½", "push": "↩️", "void": "↩️"}
    lines = [headline, ""]
    for bet in bets:
        fixture = bet.fixture
        score = ""
        if fixture.fulltime_home is not None and fixture.fulltime_away is not None:
            score = f" ({fixture.fulltime_home}-{fixture.fulltime_away})"
        lines.append(f"{marks.get(bet.result, '⏳')} {fixture_name(fixture)}{score}: {bet.selection} @ {bet.odds:.2f}")
    lines += [
        "",
        f"Stake {_money_text(ticket.stake, currency)} · Balance {_money_text(ticket.wallet.balance, currency)}",
    ]
    return "\n".join(lines)


def notify_settled_tickets(ticket_ids: Sequence[int] | None = None, *, limit: int = 500) -> int:
    """Tell each owner their ticket settled, once: the ``notified_at`` conditional update and
    the outbound message row commit together. Sent through ``conversations``, so the
    Graph API call runs on the I/O queue. Returns how many were sent."""
    from conversations.services.outbound import NoBusinessNumberError, send_to_contact
    from meta_integration.outbound import OutboundValidationError

    tickets = Ticket.objects.filter(settled_at__isnull=False, notified_at__isnull=True).select_related(
        "wallet__contact"
    )
    if ticket_ids is not None:
        tickets = tickets.filter(pk__in=list(ticket_ids))
    sent = 0
    for ticket in tickets.prefetch_related("bets__fixture__home_team", "bets__fixture__away_team").order_by("pk")[
        :limit
    ]:
        contact = ticket.wallet.contact
        try:
            with transaction.atomic():
                if not Ticket.objects.filter(pk=ticket.pk, notified_at__isnull=True).update(notified_at=timezone.now()):
                    continue
                if contact.blocked:
                    continue
                ticket.wallet.refresh_from_db(fields=["balance"])
                send_to_contact(contact, {"type": "text", "body": ticket_settled_text(ticket, list(ticket.bets.all()))})
                sent += 1
        except (NoBusinessNumberError, OutboundValidationError) as exc:
            logger.warning("ticket %s: settlement notification not sent (will retry): %s", ticket.pk, exc)
    return sent


def set_manual_result(
    fixture: Fixture,
    *,
    home: int,
    away: int,
    ht_home: int | None = None,
    ht_away: int | None = None,
    by: str,
    settle: bool = True,
) -> FixtureSettlement | None:
    """An operator's result (90-minute score) for a fixture, then settle it (``settle=False``:
    the caller queues settlement on the football worker). The feed will not overwrite it.
    Refused for a fixture already settled (payouts cannot be undone here)."""
    Score(home, away, ht_home, ht_away)  # validates: ints, non-negative, half-time <= full-time
    if not by:
        raise ValueError("by: name the operator who entered the result")
    updated = Fixture.objects.filter(pk=fixture.pk, settled_at__isnull=True).update(
        status=FixtureStatus.FINISHED.value, status_short="FT", status_long="Result entered by an operator",
        fulltime_home=home, fulltime_away=away, goals_home=home, goals_away=away,
        halftime_home=ht_home, halftime_away=ht_away, manual_result=True, result_missing_since=None,
        settlement_note=f"Result {home}-{away} entered by {by}"[:255],
    )  # fmt: skip
    if not updated:
        raise ValueError(f"fixture {fixture.pk} is already settled; its result cannot be changed here")
    return settle_fixture(fixture.pk, settled_by=by) if settle else None


def void_fixture(fixture: Fixture, *, by: str, reason: str = "", settle: bool = True) -> FixtureSettlement | None:
    """Void a fixture by hand (stakes refunded, accumulator legs count as odds 1.00)."""
    if not by:
        raise ValueError("by: name the operator who voided the fixture")
    updated = Fixture.objects.filter(pk=fixture.pk, settled_at__isnull=True).update(
        status=FixtureStatus.CANCELLED.value, status_short="CANC", status_long="Voided by an operator",
        manual_result=True, result_missing_since=None, settlement_note=f"Voided by {by}: {reason}"[:255],
    )  # fmt: skip
    if not updated:
        raise ValueError(f"fixture {fixture.pk} is already settled; it cannot be voided")
    return settle_fixture(fixture.pk, settled_by=by) if settle else None


# --------------------------------------------------------------------------- wallets


class WalletError(ValueError):
    """A ledger entry that cannot be written (bad amount, reference reused, ...)."""


class InsufficientFunds(WalletError):
    """The entry would make the balance negative."""


def _amount(value: Any, field_name: str = "amount") -> Decimal:
    if isinstance(value, float) or isinstance(value, bool):
        raise WalletError(f"{field_name}: must be a Decimal (or a string/int), not {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, (str, int)) else value
    except InvalidOperation:
        raise WalletError(f"{field_name}: {value!r} is not a number") from None
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise WalletError(f"{field_name}: {value!r} is not a finite amount")
    if amount != amount.quantize(CENT):
        raise WalletError(f"{field_name}: {value} has more than 2 decimal places")
    return amount.quantize(CENT)


def wallet_for(contact: Contact) -> Wallet:
    return Wallet.objects.get_or_create(contact=contact, defaults={"currency": _setting("FOOTBALL_CURRENCY", "USD")})[0]


def post_entry(
    wallet: Wallet,
    *,
    kind: EntryKind | str,
    amount: Any,
    reference: str,
    note: str = "",
    created_by: str = "system",
    ticket: Ticket | None = None,
) -> LedgerEntry:
    """Book one balance change, idempotently by ``reference``: posting the same entry again
    returns the existing one; reusing a reference for a different entry is refused."""
    kind = EntryKind(kind)
    amount = _amount(amount)
    if amount == 0:
        raise WalletError("amount: must not be zero")
    if kind in (EntryKind.DEPOSIT, EntryKind.WIN, EntryKind.REFUND) and amount < 0:
        raise WalletError(f"amount: a {kind.label.lower()} must be positive, got {amount}")
    if kind is EntryKind.STAKE and amount > 0:
        raise WalletError(f"amount: a stake is booked as a negative amount, got {amount}")
    if not reference or len(reference) > 128:
        raise WalletError("reference: required, at most 128 characters")

    def existing_or_error() -> LedgerEntry | None:
        entry = LedgerEntry.objects.filter(reference=reference).first()
        if entry is None:
            return None
        if (entry.wallet_id, entry.kind, entry.amount) != (wallet.pk, kind.value, amount):
            raise WalletError(f"reference: {reference!r} is already used by another ledger entry")
        return entry

    try:
        with transaction.atomic():
            entry = existing_or_error()
            if entry is not None:
                return entry
            locked = Wallet.objects.select_for_update().get(pk=wallet.pk)
            balance = locked.balance + amount
            if balance < 0:
                raise InsufficientFunds(f"amount: {amount} would take the balance of {locked.balance} below zero")
            Wallet.objects.filter(pk=wallet.pk).update(balance=balance, updated_at=timezone.now())
            entry = LedgerEntry.objects.create(
                wallet=locked, kind=kind, amount=amount, balance_after=balance, reference=reference,
                ticket=ticket, note=_cut(note, 255), created_by=_cut(created_by, 150),
            )  # fmt: skip
    except IntegrityError:
        entry = existing_or_error()  # a concurrent post of the same reference won
        if entry is None:
            raise
        return entry
    wallet.balance = balance
    return entry


def deposit(
    wallet: Wallet, amount: Any, *, reference: str | None = None, note: str = "", created_by: str = "system"
) -> LedgerEntry:
    return post_entry(
        wallet, kind=EntryKind.DEPOSIT, amount=amount, reference=reference or f"deposit:{uuid.uuid4().hex}",
        note=note, created_by=created_by,
    )  # fmt: skip


def adjust(wallet: Wallet, amount: Any, *, note: str, reference: str | None = None, created_by: str) -> LedgerEntry:
    """An operator's correction (either sign); it needs a reason."""
    if not note or not note.strip():
        raise WalletError("note: an adjustment needs a reason")
    return post_entry(
        wallet, kind=EntryKind.ADJUSTMENT, amount=amount, reference=reference or f"adjustment:{uuid.uuid4().hex}",
        note=note, created_by=created_by,
    )  # fmt: skip


def ledger_total(wallet: Wallet) -> Decimal:
    total = wallet.entries.aggregate(total=Sum("amount"))["total"]
    return (total or Decimal("0")).quantize(CENT)


def wallet_discrepancies() -> list[tuple[int, Decimal, Decimal]]:
    """(wallet id, balance, ledger total) for every wallet whose balance is not its ledger's sum."""
    totals = dict(
        LedgerEntry.objects.values("wallet_id").annotate(total=Sum("amount")).values_list("wallet_id", "total")
    )
    return [
        (wallet_id, balance, (totals.get(wallet_id) or Decimal(0)).quantize(CENT))
        for wallet_id, balance in Wallet.objects.values_list("id", "balance")
        if balance != (totals.get(wallet_id) or Decimal(0))
    ]


# --------------------------------------------------------------------------- tickets


class RefusalCode(StrEnum):
    EMPTY = "empty"
    TOO_MANY_LEGS = "too_many_legs"
    SAME_FIXTURE = "same_fixture"
    INVALID_STAKE = "invalid_stake"
    UNKNOWN_SELECTION = "unknown_selection"
    FIXTURE_STARTED = "fixture_started"
    SUSPENDED = "suspended"
    NOT_OFFERED = "not_offered"
    ODDS_CHANGED = "odds_changed"
    INSUFFICIENT_FUNDS = "insufficient_funds"


class BetRefused(Exception):
    """A ticket that cannot be placed. ``message`` is written for the bettor; nothing was
    written to the database."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class Selection:
    """One leg to place: an outcome and, optionally, the odds the bettor was shown (a price
    that moved since refuses the ticket rather than silently changing the bet)."""

    outcome_id: int
    odds: Decimal | None = None


def _stake(value: Any, currency: str) -> Decimal:
    minimum = Decimal(str(_setting("FOOTBALL_MIN_STAKE", "1.00")))
    maximum = Decimal(str(_setting("FOOTBALL_MAX_STAKE", "1000.00")))
    try:
        stake = _amount(value, "stake")
    except WalletError:
        raise BetRefused(RefusalCode.INVALID_STAKE, "Please send the stake as an amount, e.g. 5 or 12.50.") from None
    if not minimum <= stake <= maximum:
        raise BetRefused(
            RefusalCode.INVALID_STAKE,
            f"The stake must be between {_money_text(minimum, currency)} and {_money_text(maximum, currency)}.",
        )
    return stake


def place_ticket(wallet: Wallet, selections: Sequence[Selection], stake: Any, *, now: datetime | None = None) -> Ticket:
    """Place a single (one selection) or an accumulator (several, multiplied).

    Everything is checked inside one transaction holding the wallet's row lock, and any
    refusal raises :class:`BetRefused` before anything is written: no ticket, no ledger
    entry, no balance change. The stake is debited by a ``stake:ticket:<id>`` entry.
    """
    now = now or timezone.now()
    max_legs = int(_setting("FOOTBALL_MAX_LEGS", 10))
    if not selections:
        raise BetRefused(RefusalCode.EMPTY, "Your ticket is empty: pick at least one selection first.")
    if len(selections) > max_legs:
        raise BetRefused(RefusalCode.TOO_MANY_LEGS, f"A ticket can have at most {max_legs} selections.")
    stake = _stake(stake, wallet.currency)
    with transaction.atomic():
        locked = Wallet.objects.select_for_update().get(pk=wallet.pk)
        outcomes = Outcome.objects.select_related(
            "market__bookmaker", "market__fixture__home_team", "market__fixture__away_team"
        ).in_bulk([selection.outcome_id for selection in selections])
        legs: list[tuple[Outcome, str]] = []
        fixtures_seen: set[int] = set()
        for selection in selections:
            outcome = outcomes.get(selection.outcome_id)
            if outcome is None:
                raise BetRefused(
                    RefusalCode.UNKNOWN_SELECTION, "One of your selections no longer exists. Please pick again."
                )
            fixture = outcome.market.fixture
            label = selection_label(outcome, fixture)
            where = f"{label} ({fixture_name(fixture)})"
            if fixture.pk in fixtures_seen:
                raise BetRefused(
                    RefusalCode.SAME_FIXTURE,
                    f"A ticket can have one selection per match: {fixture_name(fixture)} is on it twice.",
                )
            fixtures_seen.add(fixture.pk)
            if fixture.status != FixtureStatus.SCHEDULED or fixture.kickoff <= now or outcome.result:
                raise BetRefused(
                    RefusalCode.FIXTURE_STARTED,
                    f"{fixture_name(fixture)} has already kicked off, so betting on it is closed.",
                )
            if outcome.market.is_live:
                raise BetRefused(RefusalCode.NOT_OFFERED, f"In-play betting is not available: {where}.")
            if not outcome.active:
                raise BetRefused(
                    RefusalCode.NOT_OFFERED, f"{where} is no longer offered. Please pick another selection."
                )
            if outcome.suspended or outcome.market.suspended:
                raise BetRefused(
                    RefusalCode.SUSPENDED,
                    f"Betting on {where} is suspended right now. Please try again later or pick another.",
                )
            if selection.odds is not None and Decimal(str(selection.odds)) != outcome.odds:
                raise BetRefused(
                    RefusalCode.ODDS_CHANGED,
                    f"The odds for {where} changed from {Decimal(str(selection.odds)):.2f} to {outcome.odds:.2f}. "
                    "Please confirm again at the new odds.",
                )
            legs.append((outcome, label))
        total_odds = math.prod((outcome.odds for outcome, _ in legs), start=Decimal(1))
        if locked.balance < stake:
            raise BetRefused(
                RefusalCode.INSUFFICIENT_FUNDS,
                f"Your balance is {_money_text(locked.balance, locked.currency)}, not enough for a stake of "
                f"{_money_text(stake, locked.currency)}. Please top up or lower the stake.",
            )
        ticket = Ticket.objects.create(
            wallet=locked,
            kind=TicketKind.ACCUMULATOR if len(legs) > 1 else TicketKind.SINGLE,
            stake=stake,
            total_odds=total_odds.quantize(Decimal("0.001"), rounding=ROUND_DOWN),
            potential_payout=(stake * total_odds).quantize(CENT, rounding=ROUND_DOWN),
        )
        Bet.objects.bulk_create(
            [
                Bet(
                    ticket=ticket,
                    outcome=outcome,
                    fixture=outcome.market.fixture,
                    odds=outcome.odds,
                    selection=label[:128],
                )
                for outcome, label in legs
            ]
        )
        balance = locked.balance - stake
        Wallet.objects.filter(pk=locked.pk).update(balance=balance, updated_at=now)
        LedgerEntry.objects.create(
            wallet=locked, kind=EntryKind.STAKE, amount=-stake, balance_after=balance,
            reference=f"stake:ticket:{ticket.pk}", ticket=ticket, note=f"Ticket #{ticket.pk}", created_by="bettor",
        )  # fmt: skip
    wallet.balance = balance
    return ticket


# --------------------------------------------------------------------------- browsing (for the WhatsApp flows)


def bettable_fixtures(now: datetime | None = None):
    """Fixtures open for pre-match betting: scheduled, in an active league, not kicked off."""
    now = now or timezone.now()
    return Fixture.objects.filter(
        league__active=True, status=FixtureStatus.SCHEDULED.value, kickoff__gt=now, settled_at__isnull=True
    )


def upcoming_leagues(now: datetime | None = None) -> list[tuple[League, int]]:
    """Active leagues with fixtures open for betting, with how many."""
    counts = dict(bettable_fixtures(now).values("league_id").annotate(n=Count("id")).values_list("league_id", "n"))
    return [(league, counts[league.pk]) for league in League.objects.filter(pk__in=list(counts))]


def upcoming_days(league: League, now: datetime | None = None) -> list[tuple[date, int]]:
    rows = (
        bettable_fixtures(now)
        .filter(league=league)
        .annotate(day=TruncDate("kickoff"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    return [(row["day"], row["n"]) for row in rows]


def fixtures_on(league: League, day: date, now: datetime | None = None) -> list[Fixture]:
    return list(
        bettable_fixtures(now)
        .filter(league=league, kickoff__date=day)
        .select_related("home_team", "away_team")
        .order_by("kickoff", "id")
    )


def house_bookmaker(fixture: Fixture) -> Bookmaker | None:
    """The bookmaker whose prices the bot offers for a fixture: the configured one
    (``API_FOOTBALL_BOOKMAKER_ID``) when it prices the fixture, else the lowest id that does."""
    preferred = _setting("API_FOOTBALL_BOOKMAKER_ID", None)
    books = Bookmaker.objects.filter(
        markets__fixture=fixture, markets__is_live=False, markets__outcomes__active=True
    ).distinct()
    if preferred is not None:
        book = books.filter(api_id=int(preferred)).first()
        if book is not None:
            return book
    return books.order_by("api_id").first()


MARKET_ORDER = list(MarketType)
MARKET_TITLES = {
    MarketType.MATCH_WINNER: "Match result (1X2)",
    MarketType.DOUBLE_CHANCE: "Double chance",
    MarketType.DRAW_NO_BET: "Draw no bet",
    MarketType.OVER_UNDER: "Total goals",
    MarketType.BTTS: "Both teams to score",
    MarketType.ASIAN_HANDICAP: "Asian handicap",
    MarketType.EUROPEAN_HANDICAP: "Handicap (3-way)",
    MarketType.ODD_EVEN: "Odd/even goals",
    MarketType.CORRECT_SCORE: "Correct score",
    MarketType.FIRST_HALF_WINNER: "Half-time result",
    MarketType.FIRST_HALF_OVER_UNDER: "1st half goals",
    MarketType.FIRST_HALF_BTTS: "1st half both score",
}


def fixture_markets(fixture: Fixture) -> list[tuple[Market, list[Outcome]]]:
    """The house bookmaker's open markets for a fixture, in a fixed order, with their
    bettable outcomes (active, not suspended)."""
    book = house_bookmaker(fixture)
    if book is None:
        return []
    markets = {
        market.market_type: market
        for market in Market.objects.filter(fixture=fixture, bookmaker=book, is_live=False, suspended=False)
    }
    outcomes: dict[int, list[Outcome]] = defaultdict(list)
    for outcome in Outcome.objects.filter(
        market__in=list(markets.values()), active=True, suspended=False, result=""
    ).order_by("line", "id"):
        outcomes[outcome.market_id].append(outcome)
    return [
        (markets[m.value], outcomes[markets[m.value].pk])
        for m in MARKET_ORDER
        if m.value in markets and outcomes[markets[m.value].pk]
    ]


def fixture_list_text(now: datetime | None = None, *, days: int = 7) -> str:
    """Every fixture open for betting in the next ``days`` days with its 1X2 odds, as text
    (long: the bot sends it as ordered parts)."""
    now = now or timezone.now()
    fixtures = (
        bettable_fixtures(now)
        .filter(kickoff__lte=now + timedelta(days=days))
        .select_related("league", "home_team", "away_team")
        .order_by("league__display_order", "league__name", "kickoff", "id")
    )
    prices: dict[tuple[int, str], Decimal] = {}
    for fixture_id, name, odds in Outcome.objects.filter(
        market__fixture__in=fixtures, market__market_type=MarketType.MATCH_WINNER.value, market__is_live=False,
        active=True, suspended=False,
    ).order_by("market__bookmaker__api_id").values_list("market__fixture_id", "name", "odds"):  # fmt: skip
        prices.setdefault((fixture_id, name), odds)  # one bookmaker's prices per fixture, as a bettor sees them
    lines: list[str] = []
    league_id = None
    for fixture in fixtures:
        if fixture.league_id != league_id:
            league_id = fixture.league_id
            lines += ["", f"*{fixture.league.name}*"] if lines else [f"*{fixture.league.name}*"]
        odds = " / ".join(
            f"{prices[(fixture.pk, name)]:.2f}" if (fixture.pk, name) in prices else "-"
            for name in ("Home", "Draw", "Away")
        )
        lines.append(f"{fixture.kickoff:%a %d %b %H:%M} {fixture_name(fixture)} · {odds}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- development data


def import_football_flows(*, keep_existing: bool = False) -> str:
    """Load ``default_flows/football.json`` through the flows app's importer (idempotent);
    ``keep_existing`` leaves flows that exist as they are (the seed keeps admin edits)."""
    from flows.services import import_flow_document

    document = json.loads(FOOTBALL_FLOWS_PATH.read_text(encoding="utf-8"))
    return str(import_flow_document(document, source=FOOTBALL_FLOWS_PATH.name, keep_existing=keep_existing))


DEMO_LEAGUES = (39, 140, 135)
DEMO_DEPOSIT_REFERENCE = "seed:demo-wallet"


def seed_development_data(*, reset: bool = False) -> str:
    """Sample leagues, fixtures from tomorrow on, odds from 5 bookmakers (from ``fake_feed``),
    the football flows, and a funded wallet for the simulator's demo contact. Running it
    again the same day changes nothing; football flows edited in admin are kept unless
    ``reset``."""
    from meta_integration.simulate import DEFAULT_PROFILE_NAME, DEFAULT_WA_ID

    start = (timezone.now() + timedelta(days=1)).date()
    with transaction.atomic():
        upsert_leagues(
            [parse_league(item) for item in fake_feed.league_items(fake_feed.LEAGUES)], activate=DEMO_LEAGUES
        )
        items = fake_feed.fixture_items(48, DEMO_LEAGUES, start_date=start, seed=7)
        upsert_fixtures([parse_fixture(item) for item in items])
        for page in _chunks(items, 10):
            ingest_odds([fake_feed.odds_item(item, seed=7) for item in page])
        contact, _ = Contact.objects.get_or_create(wa_id=DEFAULT_WA_ID, defaults={"profile_name": DEFAULT_PROFILE_NAME})
        wallet = wallet_for(contact)
        deposit(wallet, Decimal("100.00"), reference=DEMO_DEPOSIT_REFERENCE, note="Development seed",
                created_by="devstack_seed")  # fmt: skip
    try:
        flows = import_football_flows(keep_existing=not reset)
    except ImportError:  # the flows app is not installed
        flows = "flows app missing"
    return f"{len(items)} fixtures with odds in {len(DEMO_LEAGUES)} leagues; demo wallet {wallet.balance}; {flows}"
