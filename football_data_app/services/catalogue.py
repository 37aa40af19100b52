"""What the bot offers: fixtures open for betting, by league and day, and their markets.

Read-only queries for the flow actions (``football_data_app.actions``): a fixture is open
for pre-match betting while it is scheduled, in an active league and not kicked off, and
the bot shows one bookmaker's prices per fixture (:func:`house_bookmaker`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from ..feed import FixtureStatus
from ..markets import MarketType
from ..models import Bookmaker, Fixture, League, Market, Outcome
from ..texts import fixture_name

__all__ = [
    "bettable_fixtures",
    "fixture_list_text",
    "fixture_markets",
    "fixtures_on",
    "house_bookmaker",
    "upcoming_days",
    "upcoming_leagues",
]

def bettable_fixtures(now: datetime | None = None) -> QuerySet[Fixture]:
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
    """The days a league has fixtures open for betting, with how many, in order."""
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
    """A league's fixtures open for betting on ``day``, by kick-off."""
    return list(
        bettable_fixtures(now)
        .filter(league=league, kickoff__date=day)
        .select_related("home_team", "away_team")
        .order_by("kickoff", "id")
    )


def house_bookmaker(fixture: Fixture) -> Bookmaker | None:
    """The bookmaker whose prices the bot offers for a fixture: the configured one
    (``API_FOOTBALL_BOOKMAKER_ID``) when it prices the fixture, else the lowest id that does."""
    preferred = settings.API_FOOTBALL_BOOKMAKER_ID
    books = Bookmaker.objects.filter(
        markets__fixture=fixture, markets__is_live=False, markets__outcomes__active=True
    ).distinct()
    if preferred is not None:
        book = books.filter(api_id=int(preferred)).first()
        if book is not None:
            return book
    return books.order_by("api_id").first()


MARKET_ORDER = list(MarketType)  # the order markets are listed in


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


