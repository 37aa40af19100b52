"""Deterministic, realistic API-Football v3 bodies for tests, benchmarks and dev data.

Same arguments (and ``seed``) give byte-identical bodies. Scores and odds come from one
model: each fixture gets home/away goal expectations (derived from its id and the seed),
goals are Poisson, and every price is the fair price of that model *settled with the
project's own rules* (:func:`settlement.settle_outcome`, push/half results included) divided
by a bookmaker margin. So generated odds are coherent across markets and bookmakers, and a
result body for the same fixtures plays out the same model (:mod:`devtools.fake_feed_goal_model`).

Speed matters (benchmarks ingest 5,000 fixtures x 5 bookmakers): fair prices are cached per
goal-expectation pair on a coarse grid and formatted prices per bookmaker margin, so a
fixture's odds are mostly dict construction. Generated bodies are fresh dicts each call.
"""

from __future__ import annotations

import contextlib
import gc
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from devtools.fake_feed_goal_model import (
    _FIRST_HALF_SHARE,
    _collapse,
    _fair_odds,
    _fixture_rng,
    _fmt_line,
    _poisson,
    _prematch_bets,
    _score_matrix,
    goal_expectations,
)
from football_data_app.markets import (
    LIVE_BET_IDS,
    LIVE_BET_NAMES,
    MarketType,
)

__all__ = [
    "BOOKMAKERS",
    "DEFAULT_RESULT_STATUSES",
    "LEAGUES",
    "STATUS_LONG",
    "envelope",
    "fixture_items",
    "fixtures_bodies",
    "league_items",
    "leagues_body",
    "live_odds_body",
    "live_odds_item",
    "odds_item",
    "odds_page",
    "odds_pages",
    "results_body",
    "round_robin",
    "with_status",
]

MEDIA = "https://media.api-sports.io/football"

# (name, type, country, country code, flag code, teams as (api id, name, code, venue, city))
LEAGUES: dict[int, tuple[str, str, str, str | None, str, tuple[tuple[int, str, str], ...]]] = {
    39: ("Premier League", "League", "England", "GB-ENG", "gb-eng", (
        (33, "Manchester United", "MUN"), (34, "Newcastle", "NEW"), (35, "Bournemouth", "BOU"),
        (36, "Fulham", "FUL"), (39, "Wolves", "WOL"), (40, "Liverpool", "LIV"),
        (42, "Arsenal", "ARS"), (45, "Everton", "EVE"), (46, "Leicester", "LEI"),
        (47, "Tottenham", "TOT"), (48, "West Ham", "WES"), (49, "Chelsea", "CHE"),
        (50, "Manchester City", "MAC"), (51, "Brighton", "BRI"), (52, "Crystal Palace", "CRY"),
        (55, "Brentford", "BRE"), (65, "Nottingham Forest", "NOT"), (66, "Aston Villa", "AST"),
    )),
    140: ("La Liga", "League", "Spain", "ES", "es", (
        (529, "Barcelona", "BAR"), (541, "Real Madrid", "REA"), (530, "Atletico Madrid", "MAD"),
        (536, "Sevilla", "SEV"), (548, "Real Sociedad", "RSO"), (543, "Real Betis", "BET"),
        (533, "Villarreal", "VIL"), (531, "Athletic Club", "BIL"), (532, "Valencia", "VAL"),
        (727, "Osasuna", "OSA"),
    )),
    135: ("Serie A", "League", "Italy", "IT", "it", (
        (489, "AC Milan", "MIL"), (505, "Inter", "INT"), (496, "Juventus", "JUV"),
        (492, "Napoli", "NAP"), (497, "AS Roma", "ROM"), (487, "Lazio", "LAZ"),
        (499, "Atalanta", "ATA"), (502, "Fiorentina", "FIO"), (500, "Bologna", "BOL"),
        (503, "Torino", "TOR"),
    )),
    78: ("Bundesliga", "League", "Germany", "DE", "de", (
        (157, "Bayern München", "BAY"), (165, "Borussia Dortmund", "DOR"),
        (168, "Bayer Leverkusen", "LEV"), (173, "RB Leipzig", "LEI"),
        (169, "Eintracht Frankfurt", "EIN"), (172, "VfB Stuttgart", "STU"),
        (161, "VfL Wolfsburg", "WOL"), (163, "Borussia Mönchengladbach", "MOE"),
        (160, "SC Freiburg", "FRE"), (167, "1899 Hoffenheim", "HOF"),
    )),
    61: ("Ligue 1", "League", "France", "FR", "fr", (
        (85, "Paris Saint Germain", "PAR"), (81, "Marseille", "MAR"), (80, "Lyon", "LYO"),
        (91, "Monaco", "MON"), (79, "Lille", "LIL"), (84, "Nice", "NIC"),
        (94, "Rennes", "REN"), (116, "Lens", "LEN"), (93, "Reims", "REI"),
        (106, "Stade Brestois 29", "BRE"),
    )),
    2: ("UEFA Champions League", "Cup", "World", None, "world", (
        (50, "Manchester City", "MAC"), (541, "Real Madrid", "REA"),
        (157, "Bayern München", "BAY"), (85, "Paris Saint Germain", "PAR"),
        (505, "Inter", "INT"), (529, "Barcelona", "BAR"), (42, "Arsenal", "ARS"),
        (165, "Borussia Dortmund", "DOR"),
    )),
}  # fmt: skip

# Illustrative API-Football bookmaker ids/names, with the margin each one prices at.
BOOKMAKERS: tuple[tuple[int, str, float], ...] = (
    (8, "Bet365", 1.055),
    (6, "Bwin", 1.065),
    (11, "1xBet", 1.045),
    (16, "Unibet", 1.06),
    (2, "Marathonbet", 1.05),
    (7, "William Hill", 1.07),
    (4, "Pinnacle", 1.03),
    (1, "10Bet", 1.065),
    (3, "Betfair", 1.04),
    (9, "Dafabet", 1.05),
)

STATUS_LONG = {
    "TBD": "Time To Be Defined", "NS": "Not Started", "1H": "First Half", "HT": "Halftime",
    "2H": "Second Half", "ET": "Extra Time", "BT": "Break Time", "P": "Penalty In Progress",
    "SUSP": "Match Suspended", "INT": "Match Interrupted", "LIVE": "In Progress",
    "FT": "Match Finished", "AET": "Match Finished", "PEN": "Match Finished",
    "PST": "Match Postponed", "CANC": "Match Cancelled", "ABD": "Match Abandoned",
    "AWD": "Technical Loss", "WO": "WalkOver",
}  # fmt: skip

DEFAULT_RESULT_STATUSES: tuple[str, ...] = (
    "FT", "FT", "FT", "FT", "FT", "FT", "AET", "PEN", "PST", "CANC", "ABD",
)  # fmt: skip
"""Cycled over the fixtures of :func:`results_body`: mostly FT, every exceptional kind."""

_KICKOFF_SLOTS = (time(12, 30), time(15, 0), time(17, 30), time(20, 0))


def _league_info(league_id: int) -> tuple[str, str, str, str | None, str, tuple]:
    info = LEAGUES.get(league_id)
    if info is not None:
        return info
    teams = tuple(
        (league_id * 100 + n, f"League {league_id} Team {n}", f"T{n:02d}") for n in range(1, 13)
    )
    return (f"League {league_id}", "League", "Testland", "TL", "tl", teams)


@contextlib.contextmanager
def _bulk() -> Iterator[None]:
    """Pause the cyclic GC while building millions of small acyclic dicts: each generation-2
    pass rescans everything built so far, which made 5,000 fixtures' odds 6x slower."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def envelope(
    get: str,
    parameters: Mapping[str, Any] | None,
    response: list[Any] | dict[str, Any],
    *,
    page: int = 1,
    total: int = 1,
    errors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An API-Football envelope around ``response`` (``parameters`` ``[]`` when empty, as
    the real API sends)."""
    params = {str(k): str(v) for k, v in (parameters or {}).items()}
    return {
        "get": get,
        "parameters": params or [],
        "errors": dict(errors) if errors else [],
        "results": len(response) if isinstance(response, list) else 1,
        "paging": {"current": page, "total": total},
        "response": response,
    }


# --------------------------------------------------------------------------- leagues


def league_items(league_ids: Iterable[int] | None = None, season: int = 2024) -> list[dict]:
    items = []
    for league_id in league_ids if league_ids is not None else LEAGUES:
        name, kind, country, code, flag, _teams = _league_info(league_id)
        seasons = [
            {
                "year": year,
                "start": f"{year}-08-{10 + (year % 7):02d}",
                "end": f"{year + 1}-05-{18 + (year % 7):02d}",
                "current": year == season,
                "coverage": {
                    "fixtures": {
                        "events": True, "lineups": True,
                        "statistics_fixtures": True, "statistics_players": True,
                    },
                    "standings": kind == "League", "players": True, "top_scorers": True,
                    "top_assists": True, "top_cards": True, "injuries": True,
                    "predictions": True, "odds": year >= season - 1,
                },
            }
            for year in (season - 2, season - 1, season)
        ]
        items.append(
            {
                "league": {
                    "id": league_id,
                    "name": name,
                    "type": kind,
                    "logo": f"{MEDIA}/leagues/{league_id}.png",
                },
                "country": {
                    "name": country,
                    "code": code,
                    "flag": f"https://media.api-sports.io/flags/{flag}.svg",
                },
                "seasons": seasons,
            }
        )
    return items


def leagues_body(league_ids: Iterable[int] | None = None, season: int = 2024) -> dict[str, Any]:
    """A /leagues body (all known leagues by default), ``season`` current and covering odds."""
    return envelope("leagues", {"season": season}, league_items(league_ids, season))


# --------------------------------------------------------------------------- fixtures


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _team_dict(team: tuple[int, str, str], winner: bool | None) -> dict[str, Any]:
    return {
        "id": team[0],
        "name": team[1],
        "logo": f"{MEDIA}/teams/{team[0]}.png",
        "winner": winner,
    }


def _pair(home: int | None, away: int | None) -> dict[str, int | None]:
    return {"home": home, "away": away}


def _play(status: str, fixture_id: int, seed: int) -> dict[str, Any]:
    """Scores for a fixture in ``status``: goals, score.*, elapsed, winner."""
    lam_home, lam_away = goal_expectations(fixture_id, seed)
    rng = _fixture_rng(seed, fixture_id, 1)
    h1 = _poisson(rng, lam_home * _FIRST_HALF_SHARE)
    a1 = _poisson(rng, lam_away * _FIRST_HALF_SHARE)
    h2 = _poisson(rng, lam_home * (1 - _FIRST_HALF_SHARE))
    a2 = _poisson(rng, lam_away * (1 - _FIRST_HALF_SHARE))
    none = _pair(None, None)
    out: dict[str, Any] = {
        "elapsed": None, "goals": none, "halftime": none, "fulltime": none,
        "extratime": none, "penalty": none, "winner": (None, None),
    }  # fmt: skip

    def decided(home: int, away: int) -> tuple[bool | None, bool | None]:
        return (home > away, away > home) if home != away else (None, None)

    if status in ("NS", "TBD", "PST", "CANC"):
        return out
    if status == "1H":
        elapsed = 1 + rng.randrange(45)
        h = h1 if rng.random() < elapsed / 45 else 0
        a = a1 if rng.random() < elapsed / 45 else 0
        out.update(elapsed=elapsed, goals=_pair(h, a))
        return out
    out["halftime"] = _pair(h1, a1)
    if status == "HT":
        out.update(elapsed=45, goals=_pair(h1, a1))
        return out
    if status in ("2H", "SUSP", "INT", "LIVE"):
        elapsed = 46 + rng.randrange(44)
        share = (elapsed - 45) / 45
        h = h1 + sum(1 for _ in range(h2) if rng.random() < share)
        a = a1 + sum(1 for _ in range(a2) if rng.random() < share)
        out.update(elapsed=elapsed, goals=_pair(h, a))
        return out
    if status == "ABD":
        elapsed = 50 + rng.randrange(35)
        out.update(elapsed=elapsed, goals=_pair(h1 + h2 // 2, a1 + a2 // 2))
        return out
    if status in ("AWD", "WO"):
        # Decided off the pitch: API-Football reports the awarded 3-0 as goals only.
        home_awarded = rng.random() < 0.5
        goals = (3, 0) if home_awarded else (0, 3)
        out.update(goals=_pair(*goals), halftime=none, winner=decided(*goals))
        return out

    home, away = h1 + h2, a1 + a2
    if status == "FT":
        out.update(elapsed=90, goals=_pair(home, away), fulltime=_pair(home, away),
                   winner=decided(home, away))  # fmt: skip
        return out
    # Knock-out statuses: 90 minutes ended level, so level the second half.
    level = max(home, away)
    h2 += level - home
    a2 += level - away
    ft = (h1 + h2, a1 + a2)
    if status in ("ET", "BT", "P", "AET"):
        eh, ea = (1, 0) if rng.random() < 0.5 else (0, 1)
        if status == "BT":
            eh = ea = 0
        total = (ft[0] + eh, ft[1] + ea)
        out.update(elapsed=120 if status in ("AET", "P") else 105, goals=_pair(*total),
                   fulltime=_pair(*ft), extratime=_pair(eh, ea))  # fmt: skip
        if status == "AET":
            out["winner"] = decided(*total)
        return out
    # PEN: level after extra time too, decided on penalties.
    pens = (5, 4) if rng.random() < 0.5 else (3, 4)
    out.update(elapsed=120, goals=_pair(*ft), fulltime=_pair(*ft), extratime=_pair(0, 0),
               penalty=_pair(*pens), winner=decided(*pens))  # fmt: skip
    return out


def _fixture_item(
    fixture_id: int,
    league_id: int,
    season: int,
    round_name: str,
    home: tuple[int, str, str],
    away: tuple[int, str, str],
    kickoff: datetime,
    status: str,
    seed: int,
) -> dict[str, Any]:
    name, _kind, country, _code, flag, _teams = _league_info(league_id)
    played = _play(status, fixture_id, seed)
    started = played["elapsed"] is not None or status in ("FT", "AET", "PEN")
    first = int(kickoff.timestamp())
    second_half = (played["elapsed"] or 0) > 45 or status in ("FT", "AET", "PEN")
    second = first + 3600 if second_half else None
    return {
        "fixture": {
            "id": fixture_id,
            "referee": f"Referee {fixture_id % 37}, {country}",
            "timezone": "UTC",
            "date": _iso(kickoff),
            "timestamp": first,
            "periods": {"first": first if started else None, "second": second},
            "venue": {"id": home[0] * 10, "name": f"{home[1]} Stadium", "city": country},
            "status": {
                "long": STATUS_LONG.get(status, status),
                "short": status,
                "elapsed": played["elapsed"],
                "extra": None,
            },
        },
        "league": {
            "id": league_id,
            "name": name,
            "country": country,
            "logo": f"{MEDIA}/leagues/{league_id}.png",
            "flag": f"https://media.api-sports.io/flags/{flag}.svg",
            "season": season,
            "round": round_name,
        },
        "teams": {
            "home": _team_dict(home, played["winner"][0]),
            "away": _team_dict(away, played["winner"][1]),
        },
        "goals": played["goals"],
        "score": {
            "halftime": played["halftime"],
            "fulltime": played["fulltime"],
            "extratime": played["extratime"],
            "penalty": played["penalty"],
        },
    }


SCHEDULES = ("packed", "season")
"""How :func:`fixture_items` lays fixtures out: ``packed`` (volume for tests and benchmarks: 8
random pairings per league per day, a team may play twice a day) or ``season`` (what a real
league could have: a double round-robin, one matchday per weekend; the demo data)."""

# A matchday's kick-offs: most on Saturday, the last third on Sunday.
_SATURDAY_SLOTS = (time(12, 30), time(15, 0), time(15, 0), time(15, 0), time(17, 30), time(20, 0))
_SUNDAY_SLOTS = (time(14, 0), time(16, 30), time(19, 0))


def round_robin(teams: Sequence[Any]) -> list[list[tuple[Any, Any]]]:
    """A double round-robin by the circle method: ``2(n-1)`` rounds of ``(home, away)`` pairs.

    Every team plays once per round (an odd count gets a bye each round), every pair meets once
    per half, and the second half repeats the first with home and away swapped. The fixed team
    changes venue every round and the rotating ones keep the side they sit on, so no team plays
    more than two home (or away) matches in a row, across the half-season turn too.
    """
    slots: list[Any] = list(teams) + ([None] if len(teams) % 2 else [])
    n = len(slots)
    if n < 2:
        return []
    fixed, rest = slots[0], slots[1:]
    first_half = []
    for number in range(n - 1):
        circle = [fixed, *rest]
        pairs = []
        for i in range(n // 2):
            a, b = circle[i], circle[n - 1 - i]
            if a is not None and b is not None:
                pairs.append((a, b) if number % 2 == 0 else (b, a))
        first_half.append(pairs)
        rest = rest[-1:] + rest[:-1]
    return first_half + [[(away, home) for home, away in pairs] for pairs in first_half]


def _season_slot(start: date, matchday: int, index: int, per_matchday: int) -> datetime:
    """Kick-off of match ``index`` of ``matchday`` (0-based): matchdays on consecutive weekends
    from the first Saturday on or after ``start``; the last third of a matchday on Sunday."""
    saturday = start + timedelta(days=(5 - start.weekday()) % 7, weeks=matchday)
    on_sunday = per_matchday // 3
    on_saturday = per_matchday - on_sunday
    if index < on_saturday:
        return datetime.combine(saturday, _SATURDAY_SLOTS[index % len(_SATURDAY_SLOTS)], UTC)
    sunday_index = index - on_saturday
    return datetime.combine(saturday + timedelta(days=1), _SUNDAY_SLOTS[sunday_index % len(_SUNDAY_SLOTS)], UTC)


def fixture_items(
    n_fixtures: int,
    league_ids: Sequence[int] = (39,),
    season: int = 2024,
    start_date: date | None = None,
    statuses: Sequence[str] = ("NS",),
    seed: int = 0,
    first_id: int = 1_100_000,
    schedule: str = "packed",
) -> list[dict[str, Any]]:
    """``n_fixtures`` /fixtures response items, round-robin over ``league_ids`` from
    ``start_date`` (default 2024-08-17), ``statuses`` cycled in order so every listed status
    appears. Ids are ``first_id``, ``first_id + 1``, ...

    ``schedule`` (see :data:`SCHEDULES`): ``packed``, 8 per league per day with random
    pairings; ``season``, each league's fixtures in the order of a double round-robin
    (:func:`round_robin`, the teams shuffled by ``seed``), one matchday per weekend, each team
    once per matchday; after the last matchday the next season's first follows."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if n_fixtures < 0:
        raise ValueError(f"n_fixtures must not be negative, got {n_fixtures}")
    if not league_ids:
        raise ValueError("league_ids must name at least one league")
    if not statuses:
        raise ValueError("statuses must name at least one status")
    unknown = [code for code in statuses if code not in STATUS_LONG]
    if unknown:
        raise ValueError(f"statuses: unknown API-Football short codes {unknown}")
    with _bulk():
        build = _build_season if schedule == "season" else _build_fixtures
        return build(
            n_fixtures, league_ids, season, start_date or date(2024, 8, 17), statuses, seed,
            first_id,
        )  # fmt: skip


def _build_fixtures(
    n_fixtures: int,
    league_ids: Sequence[int],
    season: int,
    start: date,
    statuses: Sequence[str],
    seed: int,
    first_id: int,
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items = []
    per_league_count: dict[int, int] = {}
    for i in range(n_fixtures):
        league_id = league_ids[i % len(league_ids)]
        teams = _league_info(league_id)[5]
        n = per_league_count.get(league_id, 0)
        per_league_count[league_id] = n + 1
        home, away = rng.sample(teams, 2)
        day, slot = divmod(n, 8)
        kickoff = datetime.combine(
            start + timedelta(days=day), _KICKOFF_SLOTS[slot % len(_KICKOFF_SLOTS)], UTC
        )
        round_name = f"Regular Season - {1 + n // max(len(teams) // 2, 1)}"
        items.append(
            _fixture_item(first_id + i, league_id, season, round_name, home, away, kickoff,
                          statuses[i % len(statuses)], seed)
        )
    return items


def _build_season(
    n_fixtures: int,
    league_ids: Sequence[int],
    season: int,
    start: date,
    statuses: Sequence[str],
    seed: int,
    first_id: int,
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    calendars: dict[int, list[tuple[int, int, int, tuple, tuple]]] = {}
    for league_id in dict.fromkeys(league_ids):
        teams = list(_league_info(league_id)[5])
        rng.shuffle(teams)
        rounds = round_robin(teams)
        calendars[league_id] = [
            (matchday, index, len(pairs), home, away)
            for matchday, pairs in enumerate(rounds)
            for index, (home, away) in enumerate(pairs)
        ]
    items = []
    per_league_count: dict[int, int] = {}
    for i in range(n_fixtures):
        league_id = league_ids[i % len(league_ids)]
        calendar = calendars[league_id]
        n = per_league_count.get(league_id, 0)
        per_league_count[league_id] = n + 1
        cycle, position = divmod(n, len(calendar))
        matchday, index, per_matchday, home, away = calendar[position]
        matchday += cycle * (calendar[-1][0] + 1)  # the next season continues on the next weekends
        kickoff = _season_slot(start, matchday, index, per_matchday)
        round_name = f"Regular Season - {1 + matchday}"
        items.append(
            _fixture_item(first_id + i, league_id, season, round_name, home, away, kickoff,
                          statuses[i % len(statuses)], seed)
        )
    return items


def fixtures_bodies(
    n_fixtures: int,
    league_ids: Sequence[int] = (39,),
    season: int = 2024,
    start_date: date | None = None,
    statuses: Sequence[str] = ("NS",),
    seed: int = 0,
    first_id: int = 1_100_000,
) -> list[dict[str, Any]]:
    """/fixtures bodies, one per league (as ``/fixtures?league=L&season=S`` answers); see
    :func:`fixture_items` for the arguments. /fixtures is not paginated."""
    items = fixture_items(n_fixtures, league_ids, season, start_date, statuses, seed, first_id)
    bodies = []
    for league_id in dict.fromkeys(league_ids):
        response = [item for item in items if item["league"]["id"] == league_id]
        bodies.append(envelope("fixtures", {"league": league_id, "season": season}, response))
    return bodies


def with_status(item: Mapping[str, Any], status: str, seed: int = 0) -> dict[str, Any]:
    """The same fixture (id, teams, kickoff, league) moved to ``status``, scores played out
    by the fixture's goal model."""
    if status not in STATUS_LONG:
        raise ValueError(f"status: unknown API-Football short code {status!r}")
    fixture, league, teams = item["fixture"], item["league"], item["teams"]

    def team(raw: Mapping[str, Any]) -> tuple[int, str, str]:
        return (raw["id"], raw["name"], "")

    return _fixture_item(
        fixture["id"], league["id"], league["season"], league.get("round") or "",
        team(teams["home"]), team(teams["away"]),
        datetime.fromisoformat(fixture["date"]), status, seed,
    )  # fmt: skip


def results_body(
    fixtures: Iterable[Mapping[str, Any]],
    statuses: Sequence[str] = DEFAULT_RESULT_STATUSES,
    seed: int = 0,
) -> dict[str, Any]:
    """A /fixtures body with ``fixtures`` (response items) finished: ``statuses`` is cycled,
    by default mostly FT plus AET, PEN, PST, CANC and ABD."""
    if not statuses:
        raise ValueError("statuses must name at least one status")
    items = [
        with_status(item, statuses[i % len(statuses)], seed) for i, item in enumerate(fixtures)
    ]
    return envelope("fixtures", {"ids": "-".join(str(i["fixture"]["id"]) for i in items)}, items)


# --------------------------------------------------------------------------- /odds


def _fixture_ref(fixture: int | Mapping[str, Any], season: int) -> dict[str, Any]:
    if isinstance(fixture, Mapping):
        return fixture
    kickoff = datetime(2024, 8, 17, 15, tzinfo=UTC)
    return {
        "fixture": {"id": fixture, "date": _iso(kickoff), "timestamp": int(kickoff.timestamp())},
        "league": {"id": 39, "season": season},
    }


def odds_item(
    fixture: int | Mapping[str, Any], bookmakers: int = 5, seed: int = 0, season: int = 2024
) -> dict[str, Any]:
    """One /odds response item: ``bookmakers`` bookmakers, each pricing every market of
    :mod:`markets` plus one market we do not offer ("Second Half Winner")."""
    if not 1 <= bookmakers <= len(BOOKMAKERS):
        raise ValueError(f"bookmakers must be 1..{len(BOOKMAKERS)}, got {bookmakers}")
    ref = _fixture_ref(fixture, season)
    fixture_id = ref["fixture"]["id"]
    lam_home, lam_away = goal_expectations(fixture_id, seed)
    rng = _fixture_rng(seed, fixture_id, 2)
    league_id = ref["league"]["id"]
    name, _kind, country, _code, flag, _teams = _league_info(league_id)
    kickoff = datetime.fromisoformat(ref["fixture"]["date"])
    books = []
    for book_id, book_name, margin in BOOKMAKERS[:bookmakers]:
        # A little per-fixture disagreement between books, on a grid so prices cache.
        jitter = round(margin + 0.004 * (rng.randrange(7) - 3), 3)
        bets = [
            {"id": bet_id, "name": bet_name,
             "values": [{"value": label, "odd": odd} for label, odd in values]}
            for bet_id, bet_name, values in _prematch_bets(lam_home, lam_away, jitter)
        ]  # fmt: skip
        books.append({"id": book_id, "name": book_name, "bets": bets})
    return {
        "league": {
            "id": league_id,
            "name": name,
            "country": country,
            "logo": f"{MEDIA}/leagues/{league_id}.png",
            "flag": f"https://media.api-sports.io/flags/{flag}.svg",
            "season": ref["league"].get("season", season),
        },
        "fixture": {
            "id": fixture_id,
            "timezone": "UTC",
            "date": ref["fixture"]["date"],
            "timestamp": ref["fixture"].get("timestamp", int(kickoff.timestamp())),
        },
        "update": _iso(kickoff - timedelta(hours=20, minutes=fixture_id % 60)),
        "bookmakers": books,
    }


def odds_page(
    fixtures: Sequence[int | Mapping[str, Any]],
    page: int,
    bookmakers: int = 5,
    page_size: int = 10,
    seed: int = 0,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Page ``page`` (1-based) of /odds over ``fixtures``, built without the other pages."""
    if page_size < 1:
        raise ValueError(f"page_size must be positive, got {page_size}")
    total = max(1, math.ceil(len(fixtures) / page_size))
    if page < 1:
        raise ValueError(f"page must be at least 1, got {page}")
    chunk = fixtures[(page - 1) * page_size : page * page_size]
    response = [odds_item(fixture, bookmakers, seed) for fixture in chunk]
    params = dict(parameters or {})
    if page > 1:
        params["page"] = page
    return envelope("odds", params, response, page=page, total=total)


def odds_pages(
    fixtures: Sequence[int | Mapping[str, Any]],
    bookmakers: int = 5,
    page_size: int = 10,
    seed: int = 0,
    parameters: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every /odds page for ``fixtures`` (ids or /fixtures items), ``paging`` as the real API:
    ``{"current": n, "total": pages}``, ``page_size`` fixtures per page."""
    fixtures = list(fixtures)
    total = max(1, math.ceil(len(fixtures) / page_size)) if page_size > 0 else 1
    with _bulk():
        return [
            odds_page(fixtures, page, bookmakers, page_size, seed, parameters)
            for page in range(1, total + 1)
        ]


# --------------------------------------------------------------------------- /odds/live


def _live_value(label: str, odd: float, handicap: str | None, main: bool | None) -> dict:
    return {"value": label, "odd": f"{odd:.3f}".rstrip("0").rstrip("."),
            "handicap": handicap, "main": main, "suspended": False}  # fmt: skip


def live_odds_item(fixture: Mapping[str, Any], seed: int = 0, margin: float = 1.06) -> dict:
    """One /odds/live item for a live /fixtures item: prices for the *rest* of the match
    given its current score and minute, labelled the live way (value + handicap)."""
    fx = fixture["fixture"]
    fixture_id = fx["id"]
    elapsed = fx["status"].get("elapsed") or 0
    goals_home = fixture["goals"]["home"] or 0
    goals_away = fixture["goals"]["away"] or 0
    lam_home, lam_away = goal_expectations(fixture_id, seed)
    remaining = max(90 - elapsed, 0) / 90
    rest = _score_matrix(lam_home * remaining, lam_away * remaining, 7)
    final = [(goals_home + h, goals_away + a, p) for h, a, p in rest]

    def priced(market: MarketType, labels: list[tuple[str, str | None, bool | None]]) -> dict:
        dist = _collapse(market, final)
        values = []
        for label, handicap, main in labels:
            fair = _fair_odds(market, label, handicap, dist)
            values.append(_live_value(label, min(max(fair / margin, 1.01), 501.0), handicap, main))
        return {"id": LIVE_BET_IDS[market], "name": LIVE_BET_NAMES[market], "values": values}

    total_now = goals_home + goals_away
    ou_lines = [total_now + 0.5, total_now + 1.5, total_now + 2.5]
    diff = goals_home - goals_away
    ah = [-diff + step * 0.5 for step in (-1, 0, 1)]  # home handicap; away's is its negation
    odds = [
        priced(MarketType.MATCH_WINNER, [(s, None, None) for s in ("Home", "Draw", "Away")]),
        priced(MarketType.DOUBLE_CHANCE, [
            (s, None, None) for s in ("Home or Draw", "Away or Draw", "Home or Away")
        ]),
        priced(MarketType.DRAW_NO_BET, [("Home", None, None), ("Away", None, None)]),
        priced(MarketType.OVER_UNDER, [
            (word, _fmt_line(line, False), line == ou_lines[1])
            for line in ou_lines for word in ("Over", "Under")
        ]),
        priced(MarketType.BTTS, [("Yes", None, None), ("No", None, None)]),
        priced(MarketType.ASIAN_HANDICAP, [
            item for line in ah for item in (
                ("Home", _fmt_line(line, False), line == ah[1]),
                ("Away", _fmt_line(-line + 0.0, False), line == ah[1]),
            )
        ]),
        priced(MarketType.ODD_EVEN, [("Odd", None, None), ("Even", None, None)]),
        priced(MarketType.CORRECT_SCORE, [
            (f"{goals_home + h}-{goals_away + a}", None, None) for h in range(3) for a in range(3)
        ]),
    ]  # fmt: skip
    rng = _fixture_rng(seed, fixture_id, 3)
    for market in odds:  # the odd selection suspended, as in real in-play feeds
        for value in market["values"]:
            if rng.random() < 0.03:
                value["suspended"] = True
    minutes = min(elapsed, 90)
    return {
        "fixture": {
            "id": fixture_id,
            "status": {"long": fx["status"]["long"], "elapsed": elapsed,
                       "seconds": f"{minutes}:{fixture_id % 60:02d}"},
        },
        "league": {"id": fixture["league"]["id"], "season": fixture["league"]["season"]},
        "teams": {
            "home": {"id": fixture["teams"]["home"]["id"], "goals": goals_home},
            "away": {"id": fixture["teams"]["away"]["id"], "goals": goals_away},
        },
        "status": {"stopped": False, "blocked": False, "finished": False},
        "update": _iso(datetime.fromisoformat(fx["date"]) + timedelta(minutes=elapsed + 2)),
        "odds": odds,
    }  # fmt: skip


def live_odds_body(fixtures: Iterable[Mapping[str, Any]], seed: int = 0) -> dict[str, Any]:
    """An /odds/live body for the given live /fixtures items."""
    return envelope("odds/live", {}, [live_odds_item(item, seed) for item in fixtures])

