"""Writing parsed feed pages: leagues, teams, fixtures, bookmakers, markets and selections.

Each function writes one page (one transaction) with bulk upserts (:mod:`.bulk`): a fixed
number of statements per page whatever the number of rows, on SQLite and PostgreSQL alike,
and writing the same page twice changes nothing. An odds refresh updates selections in
place (a bet keeps the odds it was placed at on its own row) and only ever *deactivates* a
selection the feed stopped offering; markets and outcomes are never deleted (bets refer to
them). The syncs that fetch these pages are in :mod:`.ingestion`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from ..feed import FixtureRecord, FixtureStatus, LeagueRecord
from ..feed_fields import FeedError
from ..feed_odds import OddsRecord, OutcomeOdds, parse_live_odds_item, parse_odds_item
from ..markets import MarketType, NormalisedOutcome, OutcomeError, market_for, normalise_outcome
from ..models import Bookmaker, Fixture, League, Market, Outcome, Team
from .bulk import bulk_upsert, clip, upsert_rows

__all__ = ["PageResult", "ingest_odds", "upsert_fixtures", "upsert_leagues"]

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
                name=clip(record.name, 255),
                type=clip(record.type, 32),
                country=clip(record.country, 255),
                country_code=clip(record.country_code, 16),
                logo=clip(record.logo, 200),
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
            Team(api_id=t.api_id, name=clip(t.name, 255), code=clip(t.code, 16), logo=clip(t.logo, 200))
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
                round=clip(record.round, 128),
                kickoff=record.kickoff,
                venue=clip(record.venue, 255),
                referee=clip(record.referee, 255),
                home_team_id=teams[record.home.api_id],
                away_team_id=teams[record.away.api_id],
                status=record.status.value,
                status_short=clip(record.status_short, 8),
                status_long=clip(record.status_long, 64),
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
    upsert_rows(Outcome, _OUTCOME_INSERT, ("market", "key"), _OUTCOME_UPDATE, params)


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
        [Bookmaker(api_id=api_id, name=clip(name, 255)) for api_id, name in books.items()],
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
                        name=clip(bet.name, 255),
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
