"""API-Football v3 parsing, market normalisation and the fake feed generators.

Hand-written bodies follow the shapes API-Football really sends (taken from real responses:
PHP-style ``"parameters": []``, errors as ``[]`` or a dict, odds as strings, live odds with
``handicap``/``main``/``suspended``); generated bodies come from ``fake_feed``.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from devtools import fake_feed, fake_feed_goal_model
from football_data_app.feed import (
    FixtureStatus,
    parse_envelope,
    parse_fixture,
    parse_fixtures,
    parse_leagues,
    parse_status,
)
from football_data_app.feed_fields import FeedError
from football_data_app.feed_odds import LIVE_BOOKMAKER_ID, iter_outcomes, parse_live_odds, parse_odds, parse_odds_item
from football_data_app.markets import (
    LIVE_BET_IDS,
    PREMATCH_BET_IDS,
    MarketType,
    NormalisedOutcome,
    OutcomeError,
    market_for,
    normalise_outcome,
    outcome_label,
)
from football_data_app.settlement import score_from_fixture

M = MarketType
D = Decimal


def _fixture_item(short: str = "FT", **overrides) -> dict:
    """Tottenham 4-1 West Ham, 2024-10-19, as /fixtures returns it."""
    item = {
        "fixture": {
            "id": 1208099,
            "referee": "A. Madley",
            "timezone": "UTC",
            "date": "2024-10-19T11:30:00+00:00",
            "timestamp": 1729337400,
            "periods": {"first": 1729337400, "second": 1729341000},
            "venue": {"id": 593, "name": "Tottenham Hotspur Stadium", "city": "London"},
            "status": {"long": "Match Finished", "short": short, "elapsed": 90, "extra": 8},
        },
        "league": {
            "id": 39,
            "name": "Premier League",
            "country": "England",
            "logo": "https://media.api-sports.io/football/leagues/39.png",
            "flag": "https://media.api-sports.io/flags/gb-eng.svg",
            "season": 2024,
            "round": "Regular Season - 8",
        },
        "teams": {
            "home": {"id": 47, "name": "Tottenham",
                     "logo": "https://media.api-sports.io/football/teams/47.png", "winner": True},
            "away": {"id": 48, "name": "West Ham",
                     "logo": "https://media.api-sports.io/football/teams/48.png", "winner": False},
        },
        "goals": {"home": 4, "away": 1},
        "score": {
            "halftime": {"home": 1, "away": 1},
            "fulltime": {"home": 4, "away": 1},
            "extratime": {"home": None, "away": None},
            "penalty": {"home": None, "away": None},
        },
    }  # fmt: skip
    for path, value in overrides.items():
        target = item
        *parents, leaf = path.split("__")
        for key in parents:
            target = target[key]
        target[leaf] = value
    return item


def _body(get: str, response, parameters=None, errors=None, paging=(1, 1)) -> dict:
    return {
        "get": get,
        "parameters": parameters if parameters is not None else [],
        "errors": errors if errors is not None else [],
        "results": len(response) if isinstance(response, list) else 1,
        "paging": {"current": paging[0], "total": paging[1]},
        "response": response,
    }


# --------------------------------------------------------------------------- envelope


def test_envelope_of_a_normal_answer():
    body = _body("fixtures", [_fixture_item()], parameters={"league": "39", "season": "2024"})
    env = parse_envelope(body)
    assert env.ok and env.errors == () and env.error_keys == ()
    assert env.get == "fixtures"
    assert env.parameters == {"league": "39", "season": "2024"}
    assert env.results == 1 and env.paging.current == 1 and env.paging.total == 1
    assert not env.paging.has_next
    assert not (env.quota_exhausted or env.rate_limited or env.auth_failed)


def test_envelope_from_raw_json_bytes_and_php_empty_parameters():
    env = parse_envelope(json.dumps(_body("status", [])).encode())
    assert env.parameters == {} and env.ok


@pytest.mark.parametrize(
    ("errors", "flag"),
    [
        ({"requests": "You have reached the request limit for the day, Go to "
                      "https://dashboard.api-football.com to upgrade your plan."}, "quota_exhausted"),
        ({"rateLimit": "Too many requests. Your rate limit is 10 requests per minute."},
         "rate_limited"),
        ({"token": "Error/Missing application key. Go to "
                   "https://www.api-football.com/documentation-v3 to learn how to get your API "
                   "application key."}, "auth_failed"),
    ],
)  # fmt: skip
def test_error_envelopes_raise_exactly_one_flag(errors, flag):
    env = parse_envelope(_body("fixtures", [], errors=errors))
    assert not env.ok
    assert env.errors == tuple(errors.values())
    assert env.error_keys == tuple(errors)
    flags = {name: getattr(env, name) for name in ("quota_exhausted", "rate_limited", "auth_failed")}
    assert flags == {name: name == flag for name in flags}


def test_errors_given_as_a_list_are_normalised():
    env = parse_envelope(_body("odds", [], errors=["You have reached the request limit for the day"]))
    assert env.errors == ("You have reached the request limit for the day",)
    assert env.quota_exhausted


def test_validation_error_keyed_by_parameter():
    errors = {"date": "The Date field must contain a valid date (YYYY-MM-DD)."}
    env = parse_envelope(_body("fixtures", [], errors=errors))
    assert env.error_keys == ("date",) and not env.quota_exhausted and not env.rate_limited
    with pytest.raises(FeedError, match="valid date"):
        parse_fixtures(env)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        ("[]", "expected a JSON object"),
        ({"message": "You are not subscribed to this API."}, "missing errors, response"),
        ({"errors": [], "get": "fixtures"}, "missing response"),
        ({"errors": 5, "response": []}, "errors: expected a list or an object"),
        ({"errors": [], "response": "nope"}, "response: expected a list or an object"),
        ({"errors": [], "response": [], "paging": {"current": "one", "total": 1}},
         "paging.current: expected an integer"),
        ({"errors": [], "response": [], "parameters": "league=39"},
         "parameters: expected an object"),
    ],
)  # fmt: skip
def test_not_an_envelope_is_refused_with_the_reason(body, message):
    with pytest.raises(FeedError, match=message):
        parse_envelope(body)


def test_feed_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_envelope("{}")


def test_status_endpoint():
    body = _body("status", {
        "account": {"firstname": "Ada", "lastname": "L", "email": "ada@example.com"},
        "subscription": {"plan": "Pro", "end": "2026-12-01T00:00:00+00:00", "active": True},
        "requests": {"current": 1234, "limit_day": 7500},
    })  # fmt: skip
    status = parse_status(body)
    assert status.plan == "Pro" and status.active
    assert status.end == datetime(2026, 12, 1, tzinfo=UTC)
    assert status.requests_remaining == 7500 - 1234


# --------------------------------------------------------------------------- fixtures


def test_finished_fixture_parses_every_field():
    (fx,) = parse_fixtures(_body("fixtures", [_fixture_item()]))
    assert fx.api_id == 1208099 and fx.league_api_id == 39 and fx.season == 2024
    assert fx.round == "Regular Season - 8"
    assert fx.kickoff == datetime(2024, 10, 19, 11, 30, tzinfo=UTC)
    assert fx.venue == "Tottenham Hotspur Stadium" and fx.referee == "A. Madley"
    assert fx.status is FixtureStatus.FINISHED and fx.status_short == "FT"
    assert fx.elapsed == 90
    assert (fx.home.api_id, fx.home.name, fx.away.name) == (47, "Tottenham", "West Ham")
    assert fx.home.logo.endswith("/teams/47.png") and fx.home.code is None
    assert (fx.goals_home, fx.goals_away) == (4, 1)
    assert (fx.halftime_home, fx.halftime_away) == (1, 1)
    assert (fx.fulltime_home, fx.fulltime_away) == (4, 1)
    assert fx.extratime_home is None and fx.penalty_away is None
    assert fx.league_name == "Premier League" and fx.league_country == "England"


def test_kickoff_with_an_offset_is_converted_to_utc():
    fx = parse_fixture(_fixture_item(fixture__date="2024-10-19T13:30:00+02:00"))
    assert fx.kickoff == datetime(2024, 10, 19, 11, 30, tzinfo=UTC)
    assert fx.kickoff.utcoffset().total_seconds() == 0


def test_kickoff_falls_back_to_the_timestamp():
    fx = parse_fixture(_fixture_item(fixture__date=None))
    assert fx.kickoff == datetime.fromtimestamp(1729337400, tz=UTC)


def test_after_extra_time_the_90_minute_score_is_fulltime():
    item = _fixture_item("AET", goals={"home": 2, "away": 1}, score={
        "halftime": {"home": 0, "away": 1}, "fulltime": {"home": 1, "away": 1},
        "extratime": {"home": 1, "away": 0}, "penalty": {"home": None, "away": None},
    })  # fmt: skip
    fx = parse_fixture(item)
    assert fx.status is FixtureStatus.FINISHED_AET and fx.status.is_finished
    assert (fx.goals_home, fx.goals_away) == (2, 1)
    assert (fx.fulltime_home, fx.fulltime_away) == (1, 1)
    assert (fx.extratime_home, fx.extratime_away) == (1, 0)
    score = score_from_fixture(fx)
    assert (score.home, score.away, score.ht_home, score.ht_away) == (1, 1, 0, 1)


_STATUS_TABLE = [
    # short, status, finished, void, started
    ("TBD", FixtureStatus.SCHEDULED, False, False, False),
    ("NS", FixtureStatus.SCHEDULED, False, False, False),
    ("1H", FixtureStatus.LIVE, False, False, True),
    ("HT", FixtureStatus.LIVE, False, False, True),
    ("2H", FixtureStatus.LIVE, False, False, True),
    ("ET", FixtureStatus.LIVE, False, False, True),
    ("BT", FixtureStatus.LIVE, False, False, True),
    ("P", FixtureStatus.LIVE, False, False, True),
    ("SUSP", FixtureStatus.LIVE, False, False, True),
    ("INT", FixtureStatus.LIVE, False, False, True),
    ("LIVE", FixtureStatus.LIVE, False, False, True),
    ("FT", FixtureStatus.FINISHED, True, False, True),
    ("AET", FixtureStatus.FINISHED_AET, True, False, True),
    ("PEN", FixtureStatus.FINISHED_PEN, True, False, True),
    ("PST", FixtureStatus.POSTPONED, False, True, False),
    ("CANC", FixtureStatus.CANCELLED, False, True, False),
    ("ABD", FixtureStatus.ABANDONED, False, True, True),
    ("AWD", FixtureStatus.AWARDED, False, False, True),
    ("WO", FixtureStatus.WALKOVER, False, False, True),
    ("XYZ", FixtureStatus.UNKNOWN, False, False, False),
    ("", FixtureStatus.UNKNOWN, False, False, False),
]


@pytest.mark.parametrize(("short", "status", "finished", "void", "started"), _STATUS_TABLE)
def test_every_status_code(short, status, finished, void, started):
    fx = parse_fixture(_fixture_item(short))
    assert fx.status is status
    assert fx.status_short == short
    assert (fx.status.is_finished, fx.status.is_void, fx.status.is_started) == (
        finished, void, started,
    )  # fmt: skip
    assert fx.status.is_technical_result == (short in ("AWD", "WO"))


def test_status_codes_are_case_and_space_tolerant_and_missing_is_unknown():
    assert FixtureStatus.from_short(" ft ") is FixtureStatus.FINISHED
    assert FixtureStatus.from_short(None) is FixtureStatus.UNKNOWN


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda i: i["fixture"].pop("id"), r"response\[0\]\.fixture\.id: missing"),
        (lambda i: i["fixture"].update(id="abc"), r"fixture\.id: expected an integer"),
        (lambda i: i["fixture"].update(id=True), r"fixture\.id: expected an integer, got a bool"),
        (lambda i: i["fixture"].update(date="19/10/2024", timestamp=None),
         r"fixture\.date: expected an ISO 8601"),
        (lambda i: i["fixture"].update(date="2024-10-19T11:30:00"), r"has no UTC offset"),
        (lambda i: i["fixture"].update(date=None, timestamp=None), r"fixture\.date: missing"),
        (lambda i: i["teams"].pop("home"), r"teams\.home: missing"),
        (lambda i: i["teams"]["away"].update(name=None), r"teams\.away\.name: expected a string"),
        (lambda i: i["goals"].update(home="four"), r"goals\.home: expected an integer"),
        (lambda i: i["score"].update(fulltime=[4, 1]), r"score\.fulltime: expected an object"),
        (lambda i: i.pop("league"), r"response\[0\]\.league: missing"),
        (lambda i: i["league"].pop("season"), r"league\.season: missing"),
    ],
)  # fmt: skip
def test_malformed_fixtures_name_the_field(mutate, message):
    item = _fixture_item()
    mutate(item)
    with pytest.raises(FeedError, match=message):
        parse_fixtures(_body("fixtures", [item]))


def test_a_list_that_is_not_a_list_of_objects_is_refused():
    with pytest.raises(FeedError, match=r"response\[0\]: expected an object, got str"):
        parse_fixtures(_body("fixtures", ["1208099"]))


def test_status_body_is_not_a_fixture_list():
    with pytest.raises(FeedError, match="response: expected a list"):
        parse_fixtures(_body("status", {"requests": {"current": 1, "limit_day": 100}}))


# --------------------------------------------------------------------------- leagues


def test_leagues_with_seasons_and_odds_coverage():
    item = {
        "league": {"id": 39, "name": "Premier League", "type": "League",
                   "logo": "https://media.api-sports.io/football/leagues/39.png"},
        "country": {"name": "England", "code": "GB-ENG",
                    "flag": "https://media.api-sports.io/flags/gb-eng.svg"},
        "seasons": [
            {"year": 2010, "start": "2010-08-14", "end": "2011-05-17", "current": False,
             "coverage": {"fixtures": {"events": True}, "standings": True, "odds": False}},
            {"year": 2024, "start": "2024-08-16", "end": "2025-05-25", "current": True,
             "coverage": {"fixtures": {"events": True}, "standings": True, "odds": True}},
        ],
    }  # fmt: skip
    (league,) = parse_leagues(_body("leagues", [item], parameters={"id": "39"}))
    assert (league.api_id, league.name, league.type) == (39, "Premier League", "League")
    assert (league.country, league.country_code) == ("England", "GB-ENG")
    assert [s.year for s in league.seasons] == [2010, 2024]
    assert league.current_season.year == 2024 and league.current_season.has_odds
    assert not league.seasons[0].has_odds
    assert league.seasons[1].start == date(2024, 8, 16)


def test_league_with_a_bad_season_date_names_it():
    body = fake_feed.leagues_body([39])
    body["response"][0]["seasons"][1]["start"] = "16/08/2023"
    with pytest.raises(FeedError, match=r"response\[0\]\.seasons\[1\]\.start: expected a YYYY"):
        parse_leagues(body)


# --------------------------------------------------------------------------- odds

_ODDS_ITEM = {
    "league": {"id": 39, "name": "Premier League", "country": "England",
               "logo": "https://media.api-sports.io/football/leagues/39.png",
               "flag": "https://media.api-sports.io/flags/gb-eng.svg", "season": 2024},
    "fixture": {"id": 1208139, "timezone": "UTC", "date": "2024-11-23T12:30:00+00:00",
                "timestamp": 1732365000},
    "update": "2024-11-22T10:00:05+00:00",
    "bookmakers": [
        {"id": 2, "name": "Marathonbet", "bets": [
            {"id": 1, "name": "Match Winner", "values": [
                {"value": "Home", "odd": "1.73"}, {"value": "Draw", "odd": "3.80"},
                {"value": "Away", "odd": "4.95"}]},
            {"id": 4, "name": "Asian Handicap", "values": [
                {"value": "Home -1.25", "odd": "2.71"}, {"value": "Away -1.25", "odd": "1.44"},
                {"value": "Home +0", "odd": "1.26"}, {"value": "Away +0", "odd": "3.56"}]},
            {"id": 5, "name": "Goals Over/Under", "values": [
                {"value": "Over 2.0", "odd": "1.50"}, {"value": "Under 2.0", "odd": "2.52"},
                {"value": "Over 2.25", "odd": "1.76"}, {"value": "Under 2.25", "odd": "2.05"}]},
            {"id": 26, "name": "Goals Over/Under - Second Half", "values": [
                {"value": "Over 1.5", "odd": "2.22"}, {"value": "Under 1.5", "odd": "1.64"}]},
            {"id": 10, "name": "Exact Score", "values": [
                {"value": "1:0", "odd": "5.65"}, {"value": "2:1", "odd": "9.00"}]},
        ]},
        {"id": 8, "name": "Bet365", "bets": [
            {"id": 1, "name": "Match Winner", "values": [
                {"value": "Home", "odd": "1.75"}, {"value": "Draw", "odd": "3.75"},
                {"value": "Away", "odd": "4.75"}]},
            {"id": 9, "name": "Handicap Result", "values": [
                {"value": "Home -1", "odd": "3.15"}, {"value": "Away -1", "odd": "2.06"},
                {"value": "Draw -1", "odd": "3.35"}]},
            {"id": 12, "name": "Double Chance", "values": [
                {"value": "Home/Draw", "odd": "1.18"}, {"value": "Home/Away", "odd": "1.30"},
                {"value": "Draw/Away", "odd": "2.10"}]},
        ]},
    ],
}  # fmt: skip


def test_prematch_odds_with_several_bookmakers_and_bet_types():
    body = _body("odds", [_ODDS_ITEM], parameters={"league": "39", "season": "2024",
                                                   "page": "2"}, paging=(2, 3))  # fmt: skip
    env = parse_envelope(body)
    assert env.paging.current == 2 and env.paging.total == 3 and env.paging.has_next
    (record,) = parse_odds(env)
    assert record.fixture_api_id == 1208139 and record.league_api_id == 39
    assert record.update == datetime(2024, 11, 22, 10, 0, 5, tzinfo=UTC)
    assert not record.is_live
    assert [b.name for b in record.bookmakers] == ["Marathonbet", "Bet365"]
    marathon = record.bookmakers[0]
    assert [m.api_bet_id for m in marathon.markets] == [1, 4, 5, 26, 10]
    winner = marathon.markets[0].outcomes
    assert [(o.value, o.odd) for o in winner] == [
        ("Home", D("1.73")), ("Draw", D("3.80")), ("Away", D("4.95")),
    ]  # fmt: skip
    assert winner[0].odd == D("1.73") and str(winner[1].odd) == "3.80"  # exact, not float
    assert winner[0].handicap is None and winner[0].suspended is False
    assert len(list(iter_outcomes([record]))) == 3 + 4 + 4 + 2 + 2 + 3 + 3 + 3


def test_bet_filter_skips_markets_before_parsing_them():
    item = copy.deepcopy(_ODDS_ITEM)
    item["bookmakers"][0]["bets"][3]["values"][0]["odd"] = "garbage"  # second-half market
    keep = lambda bet_id, name: market_for(bet_id, name) is not None  # noqa: E731
    record = parse_odds_item(item, bet_filter=keep)
    assert [m.name for m in record.bookmakers[0].markets] == [
        "Match Winner", "Asian Handicap", "Goals Over/Under", "Exact Score",
    ]  # fmt: skip
    with pytest.raises(FeedError, match=r"bookmakers\[0\]\.bets\[3\]\.values\[0\]\.odd"):
        parse_odds_item(item)


def test_numeric_odds_are_accepted_exactly():
    item = copy.deepcopy(_ODDS_ITEM)
    item["bookmakers"][0]["bets"][0]["values"][0]["odd"] = 1.1
    record = parse_odds_item(item)
    assert record.bookmakers[0].markets[0].outcomes[0].odd == D("1.1")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda i: i["bookmakers"][1]["bets"][2]["values"][1].update(odd="n/a"),
         r"response\[0\]\.bookmakers\[1\]\.bets\[2\]\.values\[1\]\.odd: expected a decimal"),
        (lambda i: i["bookmakers"][1]["bets"][2]["values"][1].update(odd="-1.5"),
         r"values\[1\]\.odd: expected a non-negative decimal"),
        (lambda i: i["bookmakers"][1]["bets"][2]["values"][1].update(odd="NaN"),
         r"values\[1\]\.odd: expected a non-negative decimal"),
        (lambda i: i["bookmakers"][0]["bets"][1]["values"][0].pop("value"),
         r"bookmakers\[0\]\.bets\[1\]\.values\[0\]\.value: missing"),
        (lambda i: i["bookmakers"][0]["bets"][1].update(values={"Home": "1.5"}),
         r"bookmakers\[0\]\.bets\[1\]\.values: expected a list"),
        (lambda i: i["bookmakers"][0]["bets"].append("Match Winner"),
         r"bookmakers\[0\]\.bets\[5\]: expected an object"),
        (lambda i: i["bookmakers"][1].pop("id"), r"bookmakers\[1\]\.id: missing"),
        (lambda i: i.pop("fixture"), r"response\[0\]\.fixture: missing"),
        (lambda i: i.update(update="yesterday"), r"response\[0\]\.update: expected an ISO"),
        (lambda i: i["bookmakers"][0]["bets"][0]["values"][0].update(suspended="no"),
         r"values\[0\]\.suspended: expected true/false"),
    ],
)  # fmt: skip
def test_malformed_odds_name_the_field(mutate, message):
    item = copy.deepcopy(_ODDS_ITEM)
    mutate(item)
    with pytest.raises(FeedError, match=message):
        parse_odds(_body("odds", [item]))


_LIVE_ITEM = {
    "fixture": {"id": 1206332, "status": {"long": "First Half", "elapsed": 35,
                                          "seconds": "34:43"}},
    "league": {"id": 287, "season": 2024},
    "teams": {"home": {"id": 2641, "goals": 0}, "away": {"id": 12329, "goals": 0}},
    "status": {"stopped": False, "blocked": True, "finished": False},
    "update": "2025-02-26T16:34:30+00:00",
    "odds": [
        {"id": 59, "name": "Fulltime Result", "values": [
            {"value": "Home", "odd": "1.69", "handicap": None, "main": None, "suspended": False},
            {"value": "Draw", "odd": "3.75", "handicap": None, "main": None, "suspended": False},
            {"value": "Away", "odd": "4.52", "handicap": None, "main": None, "suspended": True},
        ]},
        {"id": 33, "name": "Asian Handicap", "values": [
            {"value": "Home", "odd": "2.05", "handicap": "-1", "main": True, "suspended": False},
            {"value": "Away", "odd": "1.8", "handicap": "1", "main": True, "suspended": False},
            {"value": "Home", "odd": "1.45", "handicap": "0", "main": False, "suspended": False},
            {"value": "Away", "odd": "2.675", "handicap": "0", "main": False, "suspended": False},
        ]},
        {"id": 36, "name": "Over/Under Line", "values": [
            {"value": "Over", "odd": "1.975", "handicap": "2.5", "main": True, "suspended": False},
            {"value": "Under", "odd": "1.875", "handicap": "2.5", "main": True,
             "suspended": False},
        ]},
        {"id": 21, "name": "3-Way Handicap", "values": [
            {"value": "Home", "odd": "6", "handicap": "-1", "main": True, "suspended": False},
            {"value": "Draw", "odd": "3.25", "handicap": "1", "main": True, "suspended": False},
            {"value": "Away", "odd": "1.533", "handicap": "1", "main": True, "suspended": False},
        ]},
        {"id": 23, "name": "Final Score", "values": [
            {"value": "1-0", "odd": "3.6", "handicap": None, "main": None, "suspended": False},
            {"value": "0-0", "odd": "0", "handicap": None, "main": None, "suspended": True},
        ]},
        {"id": 16, "name": "How many goals will Away Team score?", "values": [
            {"value": "No goal", "odd": "1.363", "handicap": None, "main": None,
             "suspended": False},
        ]},
    ],
}  # fmt: skip


def test_live_odds_shape_with_handicaps_and_suspension():
    (record,) = parse_live_odds(_body("odds/live", [_LIVE_ITEM]))
    assert record.is_live and record.blocked and not record.stopped and not record.finished
    assert record.fixture_api_id == 1206332 and record.league_api_id == 287
    (book,) = record.bookmakers
    assert book.api_id == LIVE_BOOKMAKER_ID
    result, _ah, ou, _eh, cs, _other = book.markets
    assert [o.suspended for o in result.outcomes] == [False, False, True]
    assert ou.outcomes[0].handicap == "2.5" and ou.outcomes[0].main is True
    assert cs.outcomes[1].odd == D("0")

    normalised = {
        m.name: [normalise_outcome(market_for(m.api_bet_id, m.name, live=True), o.value,
                                   o.handicap).key for o in m.outcomes]
        for m in book.markets if market_for(m.api_bet_id, m.name, live=True)
    }  # fmt: skip
    assert normalised == {
        "Fulltime Result": ["Home", "Draw", "Away"],
        # live quotes each side's own handicap; stored as the home side's line
        "Asian Handicap": ["Home -1", "Away -1", "Home +0", "Away +0"],
        "Over/Under Line": ["Over 2.5", "Under 2.5"],
        "3-Way Handicap": ["Home -1", "Draw -1", "Away -1"],
        "Final Score": ["1:0", "0:0"],
    }


# --------------------------------------------------------------------------- markets


@pytest.mark.parametrize(
    ("bet_id", "name", "live", "market"),
    [
        (1, "Match Winner", False, M.MATCH_WINNER),
        (12, "Double Chance", False, M.DOUBLE_CHANCE),
        (2, "Home/Away", False, M.DRAW_NO_BET),
        (5, "Goals Over/Under", False, M.OVER_UNDER),
        (8, "Both Teams Score", False, M.BTTS),
        (4, "Asian Handicap", False, M.ASIAN_HANDICAP),
        (9, "Handicap Result", False, M.EUROPEAN_HANDICAP),
        (21, "Odd/Even", False, M.ODD_EVEN),
        (10, "Exact Score", False, M.CORRECT_SCORE),
        (13, "First Half Winner", False, M.FIRST_HALF_WINNER),
        (6, "Goals Over/Under First Half", False, M.FIRST_HALF_OVER_UNDER),
        (34, "Both Teams Score - First Half", False, M.FIRST_HALF_BTTS),
        (59, "Fulltime Result", True, M.MATCH_WINNER),
        (21, "3-Way Handicap", True, M.EUROPEAN_HANDICAP),  # 21 is Odd/Even pre-match
        (25, "Match Goals", True, M.OVER_UNDER),
        (68, "Goals Odd/Even", True, M.ODD_EVEN),
        (23, "Final Score", True, M.CORRECT_SCORE),
        (19, "1x2 (1st Half)", True, M.FIRST_HALF_WINNER),
        (None, "  goals   over/under ", False, M.OVER_UNDER),  # spacing/case tolerant
        (5, None, False, M.OVER_UNDER),  # no name: trust the endpoint's id
        (21, "", True, M.EUROPEAN_HANDICAP),
        (21, "", False, M.ODD_EVEN),
        (3, "Second Half Winner", False, None),
        (26, "Goals Over/Under - Second Half", False, None),
        (5, "Corners Over Under", False, None),  # known id, unknown name: not ours
        (999, None, False, None),
        (None, None, False, None),
    ],
)
def test_market_for(bet_id, name, live, market):
    assert market_for(bet_id, name, live=live) is market


def test_bet_id_tables_are_one_to_one():
    assert len(set(PREMATCH_BET_IDS.values())) == len(PREMATCH_BET_IDS) == len(MarketType)
    assert len(set(LIVE_BET_IDS.values())) == len(LIVE_BET_IDS)


@pytest.mark.parametrize(
    ("market", "value", "handicap", "expected"),
    [
        (M.MATCH_WINNER, "Home", None, ("Home", None)),
        (M.MATCH_WINNER, "draw", None, ("Draw", None)),
        (M.MATCH_WINNER, "2", None, ("Away", None)),
        (M.FIRST_HALF_WINNER, "X", None, ("Draw", None)),
        (M.DOUBLE_CHANCE, "Home/Draw", None, ("1X", None)),
        (M.DOUBLE_CHANCE, "Home/Away", None, ("12", None)),
        (M.DOUBLE_CHANCE, "Draw/Away", None, ("X2", None)),
        (M.DOUBLE_CHANCE, "Away or Draw", None, ("X2", None)),
        (M.DRAW_NO_BET, "Away", None, ("Away", None)),
        (M.OVER_UNDER, "Over 2.5", None, ("Over", D("2.5"))),
        (M.OVER_UNDER, "Under 2.0", None, ("Under", D("2"))),
        (M.OVER_UNDER, "Over 2.25", None, ("Over", D("2.25"))),
        (M.OVER_UNDER, "Over", "3.5", ("Over", D("3.5"))),
        (M.FIRST_HALF_OVER_UNDER, "Under 0.5", None, ("Under", D("0.5"))),
        (M.ASIAN_HANDICAP, "Home -1.5", None, ("Home", D("-1.5"))),
        (M.ASIAN_HANDICAP, "Away +0.25", None, ("Away", D("0.25"))),
        (M.ASIAN_HANDICAP, "Home +0", None, ("Home", D("0"))),
        (M.ASIAN_HANDICAP, "Away", "0.75", ("Away", D("-0.75"))),
        (M.ASIAN_HANDICAP, "Home", "-0.25", ("Home", D("-0.25"))),
        (M.EUROPEAN_HANDICAP, "Home -1", None, ("Home", D("-1"))),
        (M.EUROPEAN_HANDICAP, "Draw +2", None, ("Draw", D("2"))),
        (M.EUROPEAN_HANDICAP, "Away", "1", ("Away", D("-1"))),
        (M.BTTS, "Yes", None, ("Yes", None)),
        (M.FIRST_HALF_BTTS, "no", None, ("No", None)),
        (M.ODD_EVEN, "Even", None, ("Even", None)),
        (M.CORRECT_SCORE, "2:1", None, ("2:1", None)),
        (M.CORRECT_SCORE, "0-0", None, ("0:0", None)),
        (M.CORRECT_SCORE, "10:02", None, ("10:2", None)),
    ],
)
def test_normalise_outcome(market, value, handicap, expected):
    outcome = normalise_outcome(market, value, handicap)
    assert (outcome.name, outcome.line) == expected


@pytest.mark.parametrize(
    ("market", "value", "handicap", "message"),
    [
        (M.MATCH_WINNER, "Tottenham", None, "unknown outcome 'Tottenham'"),
        (M.MATCH_WINNER, "   ", None, "empty outcome label"),
        (M.DRAW_NO_BET, "Draw", None, "unknown outcome 'Draw'"),
        (M.DOUBLE_CHANCE, "Home", None, "unknown outcome"),
        (M.OVER_UNDER, "Over", None, "has no line"),
        (M.OVER_UNDER, "Over 2.3", None, "not a multiple of 0.25"),
        (M.OVER_UNDER, "Over -1.5", None, "negative goals line"),
        (M.OVER_UNDER, "Exactly 2", None, "expected Over, Under"),
        (M.OVER_UNDER, "Over 2.5 goals", None, "cannot read"),
        (M.ASIAN_HANDICAP, "Draw -0.5", None, "unknown outcome"),
        (M.ASIAN_HANDICAP, "Home", "abc", "unreadable line"),
        (M.EUROPEAN_HANDICAP, "Home -0.5", None, "whole number"),
        (M.BTTS, "Maybe", None, "expected No, Yes"),
        (M.CORRECT_SCORE, "Other", None, "not a score"),
        (M.CORRECT_SCORE, "2:x", None, "not a score"),
    ],
)
def test_bad_outcome_labels_are_refused(market, value, handicap, message):
    with pytest.raises(OutcomeError, match=message):
        normalise_outcome(market, value, handicap)


def test_outcome_keys_and_bettor_labels():
    away = normalise_outcome(M.ASIAN_HANDICAP, "Away -1.25")
    assert away.key == "Away -1.25"  # the feed's label: the home side's line
    assert outcome_label(M.ASIAN_HANDICAP, away) == "Away +1.25"  # what the bettor backs
    home = normalise_outcome(M.ASIAN_HANDICAP, "Home +0")
    assert home.key == "Home +0" and outcome_label(M.ASIAN_HANDICAP, home) == "Home +0"
    assert normalise_outcome(M.OVER_UNDER, "Over 2.50").key == "Over 2.5"
    assert normalise_outcome(M.OVER_UNDER, "Over 2.5") == normalise_outcome(M.OVER_UNDER, "Over", "2.50")
    assert outcome_label(M.EUROPEAN_HANDICAP, normalise_outcome(M.EUROPEAN_HANDICAP, "Draw -1")) == (
        "Draw (Home -1)"
    )  # fmt: skip
    assert outcome_label(M.DOUBLE_CHANCE, NormalisedOutcome("X2")) == "Draw or Away"


# --------------------------------------------------------------------------- fake feed


def test_generated_fixtures_parse_with_every_status():
    statuses = tuple(fake_feed.STATUS_LONG)
    bodies = fake_feed.fixtures_bodies(len(statuses) * 2, league_ids=[39, 140], statuses=statuses,
                                       start_date=date(2025, 1, 4), seed=7)  # fmt: skip
    assert [parse_envelope(b).parameters["league"] for b in bodies] == ["39", "140"]
    fixtures = [fx for body in bodies for fx in parse_fixtures(body)]
    assert len(fixtures) == len(statuses) * 2
    assert {fx.status_short for fx in fixtures} == set(statuses)
    assert all(fx.kickoff.date() >= date(2025, 1, 4) for fx in fixtures)
    for fx in fixtures:
        assert fx.home.api_id != fx.away.api_id
        if fx.status.is_finished:
            score = score_from_fixture(fx)
            assert score.ht_home <= score.home and score.ht_away <= score.away
        if fx.status_short in ("AET", "PEN"):
            assert fx.fulltime_home == fx.fulltime_away  # level after 90 minutes
            assert fx.goals_home == fx.fulltime_home + fx.extratime_home
        if fx.status_short == "PEN":
            assert fx.penalty_home != fx.penalty_away
        if fx.status.is_void and fx.status_short != "ABD":
            assert fx.goals_home is None
        if fx.status_short == "NS":
            assert fx.elapsed is None and fx.goals_home is None


def test_generators_are_deterministic_and_seeded():
    a = fake_feed.fixture_items(30, [39, 61], seed=3)
    b = fake_feed.fixture_items(30, [39, 61], seed=3)
    c = fake_feed.fixture_items(30, [39, 61], seed=4)
    assert json.dumps(a) == json.dumps(b) and json.dumps(a) != json.dumps(c)
    assert json.dumps(fake_feed.odds_pages(a[:3], seed=3)) == json.dumps(
        fake_feed.odds_pages(b[:3], seed=3)
    )


def test_generated_odds_pages_page_like_the_real_api():
    items = fake_feed.fixture_items(23, [39], seed=1)
    pages = fake_feed.odds_pages(items, bookmakers=3, page_size=10, seed=1,
                                 parameters={"league": 39, "season": 2024})  # fmt: skip
    envs = [parse_envelope(page) for page in pages]
    assert [(e.paging.current, e.paging.total) for e in envs] == [(1, 3), (2, 3), (3, 3)]
    assert [e.results for e in envs] == [10, 10, 3]
    assert envs[1].parameters == {"league": "39", "season": "2024", "page": "2"}
    records = [r for env in envs for r in parse_odds(env)]
    assert [r.fixture_api_id for r in records] == [i["fixture"]["id"] for i in items]
    assert fake_feed.odds_page(items, 2, bookmakers=3, seed=1,
                               parameters={"league": 39, "season": 2024}) == pages[1]  # fmt: skip


def test_generated_odds_cover_every_market_and_normalise():
    (record,) = parse_odds(fake_feed.odds_pages([fake_feed.fixture_items(1, seed=2)[0]],
                                                bookmakers=5, seed=2)[0])  # fmt: skip
    assert len(record.bookmakers) == 5
    assert len({b.api_id for b in record.bookmakers}) == 5
    for book in record.bookmakers:
        found = {market_for(m.api_bet_id, m.name): m for m in book.markets}
        assert set(found) == set(MarketType) | {None}  # plus one market we do not offer
        for market in MarketType:
            keys = [normalise_outcome(market, o.value).key for o in found[market].outcomes]
            assert len(keys) == len(set(keys)), market
            assert all(o.odd >= D("1.01") for o in found[market].outcomes)
        # Prices carry a bookmaker margin: implied probabilities of 1X2 sum above 1.
        overround = sum(1 / o.odd for o in found[M.MATCH_WINNER].outcomes)
        assert D("1.01") < overround < D("1.15")


def test_generated_prices_follow_the_goal_model():
    # The fixture with the strongest home side is priced shorter on Home than the weakest.
    items = fake_feed.fixture_items(40, [39], seed=5)
    strength = {i["fixture"]["id"]: fake_feed_goal_model.goal_expectations(i["fixture"]["id"], 5)
                for i in items}  # fmt: skip
    strongest = max(items, key=lambda i: strength[i["fixture"]["id"]][0] - strength[i["fixture"]["id"]][1])
    weakest = min(items, key=lambda i: strength[i["fixture"]["id"]][0] - strength[i["fixture"]["id"]][1])

    def home_price(item):
        (record,) = parse_odds(fake_feed.odds_pages([item], bookmakers=1, seed=5)[0])
        winner = next(m for m in record.bookmakers[0].markets if m.api_bet_id == 1)
        return winner.outcomes[0].odd

    assert home_price(strongest) < home_price(weakest)


def test_results_body_finishes_fixtures_including_exceptional_ones():
    items = fake_feed.fixture_items(11, [2], seed=9)
    body = fake_feed.results_body(items, seed=9)
    fixtures = parse_fixtures(body)
    assert [fx.api_id for fx in fixtures] == [i["fixture"]["id"] for i in items]
    assert [fx.status_short for fx in fixtures] == list(fake_feed.DEFAULT_RESULT_STATUSES)
    assert [fx.kickoff for fx in fixtures] == [parse_fixture(i).kickoff for i in items]
    for fx in fixtures:
        if fx.status.is_finished:
            assert score_from_fixture(fx) is not None
    with pytest.raises(ValueError, match="unknown API-Football short code"):
        fake_feed.results_body(items, statuses=("DONE",))


def test_generated_live_odds_parse_and_normalise():
    live = fake_feed.fixture_items(4, [39], statuses=("1H", "2H", "HT", "ET"), seed=11)
    records = parse_live_odds(fake_feed.live_odds_body(live, seed=11))
    assert [r.fixture_api_id for r in records] == [i["fixture"]["id"] for i in live]
    for record in records:
        assert record.is_live
        for market in record.bookmakers[0].markets:
            kind = market_for(market.api_bet_id, market.name, live=True)
            assert kind is not None
            for outcome in market.outcomes:
                normalise_outcome(kind, outcome.value, outcome.handicap)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fake_feed.fixture_items(-1), "must not be negative"),
        (lambda: fake_feed.fixture_items(3, league_ids=[]), "at least one league"),
        (lambda: fake_feed.fixture_items(3, statuses=("NS", "PLAYING")), "unknown API-Football"),
        (lambda: fake_feed.odds_item(1, bookmakers=0), "bookmakers must be"),
        (lambda: fake_feed.odds_page([1, 2], 0), "page must be at least 1"),
        (lambda: fake_feed.odds_page([1, 2], 1, page_size=0), "page_size must be positive"),
    ],
)
def test_generator_arguments_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()
