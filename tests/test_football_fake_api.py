"""The fake API-Football server over real HTTP (uvicorn on a loopback port, httpx client).

Every body is read back through the project's own parser (``feed``), so the fake and the
parser are checked against each other as well as against the real API's documented shapes.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from devtools import fake_feed
from devtools.fake_api_football import (
    DAILY_LIMIT_MESSAGE,
    FakeApiFootball,
    FakeFootballData,
    start_fake_api,
)
from football_data_app.feed import (
    FixtureStatus,
    parse_envelope,
    parse_fixtures,
    parse_leagues,
    parse_status,
)
from football_data_app.feed_fields import FeedError
from football_data_app.feed_odds import parse_live_odds, parse_odds
from football_data_app.markets import MarketType
from football_data_app.settlement import OutcomeResult, settle_fixture_outcome

KEY = {"x-apisports-key": "test-key"}
START = date(2025, 3, 1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[FakeApiFootball, str]]:
    fake, server = start_fake_api(FakeFootballData.generate(1, [39]))
    with server:
        yield fake, server.url


@pytest.fixture
def api(running) -> Iterator[tuple[FakeApiFootball, httpx.Client]]:
    """The shared server with fresh data, quota and log for each test."""
    fake, url = running
    fake.data = FakeFootballData.generate(45, [39, 140], start_date=START, seed=21)
    fake.daily_limit, fake.per_minute_limit, fake.latency = 7500, 300, 0.0
    fake.clock = FakeClock()
    fake.reset_quota()
    fake.clear_requests()
    with httpx.Client(base_url=url, timeout=10) as client:
        yield fake, client


def _quota(response: httpx.Response) -> tuple[int, int, int, int]:
    h = response.headers
    return (
        int(h["x-ratelimit-requests-limit"]),
        int(h["x-ratelimit-requests-remaining"]),
        int(h["X-RateLimit-Limit"]),
        int(h["X-RateLimit-Remaining"]),
    )


# --------------------------------------------------------------------------- key and quota


def test_missing_key_gets_the_token_error_and_is_not_counted(api):
    fake, client = api
    response = client.get("/fixtures", params={"league": 39, "season": 2024})
    assert response.status_code == 200
    env = parse_envelope(response.json())
    assert env.auth_failed and env.error_keys == ("token",) and env.response == []
    assert "Missing application key" in env.errors[0]
    assert _quota(response) == (7500, 7500, 300, 300)
    (record,) = fake.requests()
    assert record.api_key is None and not record.counted and record.error_keys == ("token",)


def test_wrong_key_is_refused(api):
    _fake, client = api
    response = client.get("/fixtures", params={"league": 39}, headers={"x-apisports-key": "guess"})
    assert parse_envelope(response.json()).auth_failed


def test_quota_headers_count_down_per_request(api):
    fake, client = api
    seen = [_quota(client.get("/leagues", headers=KEY)) for _ in range(3)]
    assert seen == [(7500, 7499, 300, 299), (7500, 7498, 300, 298), (7500, 7497, 300, 297)]
    assert fake.daily_remaining == 7497 and fake.minute_remaining == 297


def test_daily_quota_runs_out_with_the_real_error_body(api):
    fake, client = api
    fake.daily_limit = 3
    bodies = [client.get("/fixtures", params={"league": 39, "season": 2024}, headers=KEY) for _ in range(4)]
    assert [len(b.json()["response"]) for b in bodies[:3]] == [23, 23, 23]
    last = bodies[3]
    assert last.status_code == 200  # the real API reports errors in the body
    env = parse_envelope(last.json())
    assert env.quota_exhausted and not env.rate_limited
    assert env.errors == (DAILY_LIMIT_MESSAGE,)
    assert _quota(last)[:2] == (3, 0)
    with pytest.raises(FeedError, match="request limit for the day"):
        parse_fixtures(env)
    # /status is free and still answers, reporting the day's usage
    status = parse_status(client.get("/status", headers=KEY).json())
    assert (status.requests_current, status.requests_limit_day, status.requests_remaining) == (3, 3, 0)
    assert [r.counted for r in fake.requests()] == [True, True, True, False, False]


def test_per_minute_limit_then_the_window_rolls(api):
    fake, client = api
    fake.per_minute_limit = 2
    first = [client.get("/leagues", headers=KEY) for _ in range(2)]
    assert [_quota(r)[3] for r in first] == [1, 0]
    blocked = client.get("/leagues", headers=KEY)
    env = parse_envelope(blocked.json())
    assert env.rate_limited and not env.quota_exhausted
    assert "2 requests per minute" in env.errors[0]
    fake.clock.now += 59
    assert parse_envelope(client.get("/leagues", headers=KEY).json()).rate_limited
    fake.clock.now += 1
    again = client.get("/leagues", headers=KEY)
    assert parse_envelope(again.json()).ok and _quota(again)[3] == 1
    assert _quota(again)[1] == 7500 - 3  # refused requests did not use the daily quota


def test_exhaust_and_reset_controls(api):
    fake, client = api
    fake.exhaust_minute()
    assert parse_envelope(client.get("/leagues", headers=KEY).json()).rate_limited
    fake.reset_quota()
    fake.exhaust_daily_quota()
    assert parse_envelope(client.get("/leagues", headers=KEY).json()).quota_exhausted
    fake.set_daily_remaining(1)
    assert parse_envelope(client.get("/leagues", headers=KEY).json()).ok
    assert parse_envelope(client.get("/leagues", headers=KEY).json()).quota_exhausted


# --------------------------------------------------------------------------- data endpoints


def test_leagues(api):
    _fake, client = api
    leagues = parse_leagues(client.get("/leagues", params={"current": "true"}, headers=KEY).json())
    assert {league.api_id for league in leagues} == {39, 140}
    (league,) = parse_leagues(client.get("/leagues", params={"id": 140}, headers=KEY).json())
    assert league.name == "La Liga" and league.current_season.year == 2024


def test_fixtures_by_league_season_and_dates(api):
    _fake, client = api
    fixtures = parse_fixtures(client.get("/fixtures", params={"league": 39, "season": 2024}, headers=KEY).json())
    assert len(fixtures) == 23 and all(fx.league_api_id == 39 for fx in fixtures)
    assert [fx.kickoff for fx in fixtures] == sorted(fx.kickoff for fx in fixtures)
    on_day = parse_fixtures(client.get("/fixtures", params={"date": "2025-03-02"}, headers=KEY).json())
    assert on_day and all(fx.kickoff.date() == date(2025, 3, 2) for fx in on_day)
    window = parse_fixtures(
        client.get("/fixtures", params={"league": 140, "season": 2024, "from": "2025-03-01", "to": "2025-03-02"},
                   headers=KEY).json()
    )  # fmt: skip
    assert len(window) == 16 and all(fx.kickoff.date() <= date(2025, 3, 2) for fx in window)


def test_fixtures_by_ids_up_to_twenty(api):
    fake, client = api
    ids = fake.data.fixture_ids()
    fixtures = parse_fixtures(client.get("/fixtures", params={"ids": "-".join(map(str, ids[:20]))}, headers=KEY).json())
    assert sorted(fx.api_id for fx in fixtures) == sorted(ids[:20])
    too_many = parse_envelope(client.get("/fixtures", params={"ids": "-".join(map(str, ids[:21]))}, headers=KEY).json())
    assert too_many.error_keys == ("ids",) and "Maximum of 20" in too_many.errors[0]


def test_results_and_live_fixtures_follow_the_store(api):
    fake, client = api
    ids = fake.data.fixture_ids()
    fake.data.set_result(ids[0], 2, 2, 1, 0, status="AET", extratime=(1, 0))
    fake.data.set_result(ids[1], 0, 1, 0, 0)
    fake.data.set_status(ids[2], "PST")
    fake.data.set_status(ids[3], "2H")
    finished = parse_fixtures(client.get("/fixtures", params={"status": "FT-AET-PST"}, headers=KEY).json())
    by_id = {fx.api_id: fx for fx in finished}
    assert set(by_id) == {ids[0], ids[1], ids[2]}
    aet = by_id[ids[0]]
    assert aet.status is FixtureStatus.FINISHED_AET
    assert (aet.goals_home, aet.goals_away, aet.fulltime_home, aet.fulltime_away) == (3, 2, 2, 2)
    assert aet.home.api_id and settle_fixture_outcome(MarketType.MATCH_WINNER, "Draw", None, aet) is OutcomeResult.WIN
    assert settle_fixture_outcome(MarketType.MATCH_WINNER, "Away", None, by_id[ids[1]]) is OutcomeResult.WIN
    assert settle_fixture_outcome(MarketType.BTTS, "No", None, by_id[ids[2]]) is OutcomeResult.VOID
    (live,) = parse_fixtures(client.get("/fixtures", params={"live": "all"}, headers=KEY).json())
    assert live.api_id == ids[3] and live.status is FixtureStatus.LIVE and live.status_short == "2H"
    league = str(live.league_api_id)
    other = "140" if league == "39" else "39"
    assert len(parse_fixtures(client.get("/fixtures", params={"live": league}, headers=KEY).json())) == 1
    assert parse_fixtures(client.get("/fixtures", params={"live": other}, headers=KEY).json()) == ()


def test_odds_pages_like_the_real_api(api):
    fake, client = api
    seen, page, total = [], 1, None
    while total is None or page <= total:
        body = client.get("/odds", params={"league": 39, "season": 2024, "page": page}, headers=KEY).json()
        env = parse_envelope(body)
        assert env.paging.current == page
        total = env.paging.total
        seen.extend(record.fixture_api_id for record in parse_odds(env))
        page += 1
    assert total == 3
    league_ids = [fid for fid in fake.data.fixture_ids() if fake.data.fixture(fid)["league"]["id"] == 39]
    assert seen == league_ids  # every fixture once, in kick-off order
    assert [r.params.get("page") for r in fake.requests("/odds")] == ["1", "2", "3"]


def test_odds_for_one_fixture_with_bookmaker_and_bet_filters(api):
    fake, client = api
    fixture_id = fake.data.fixture_ids()[5]
    (record,) = parse_odds(client.get("/odds", params={"fixture": fixture_id}, headers=KEY).json())
    assert record.fixture_api_id == fixture_id and len(record.bookmakers) == 5
    (record,) = parse_odds(client.get("/odds", params={"fixture": fixture_id, "bookmaker": 8, "bet": 5},
                                      headers=KEY).json())  # fmt: skip
    (book,) = record.bookmakers
    assert book.name == "Bet365" and [m.name for m in book.markets] == ["Goals Over/Under"]


def test_pinned_odds_are_served_as_given(api):
    fake, client = api
    fixture_id = fake.data.fixture_ids()[0]
    item = fake_feed.odds_item(fake.data.fixture(fixture_id), bookmakers=1)
    item["bookmakers"][0]["bets"] = [{"id": 1, "name": "Match Winner", "values": [
        {"value": "Home", "odd": "2.10"}, {"value": "Draw", "odd": "3.30"}, {"value": "Away", "odd": "3.60"}]}]
    fake.data.put_odds(fixture_id, item)
    (record,) = parse_odds(client.get("/odds", params={"fixture": fixture_id}, headers=KEY).json())
    assert [str(o.odd) for o in record.bookmakers[0].markets[0].outcomes] == ["2.10", "3.30", "3.60"]


def test_live_odds_for_live_fixtures_only(api):
    fake, client = api
    ids = fake.data.fixture_ids()
    fake.data.set_status(ids[7], "1H")
    records = parse_live_odds(client.get("/odds/live", headers=KEY).json())
    assert [r.fixture_api_id for r in records] == [ids[7]]
    assert records[0].is_live and records[0].bookmakers[0].markets


# --------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("path", "params", "key", "fragment"),
    [
        ("/fixtures", {}, "required", "At least one parameter"),
        ("/fixtures", {"league": 39, "colour": "red"}, "colour", "do not exist"),
        ("/fixtures", {"date": "01/03/2025"}, "date", "valid date"),
        ("/fixtures", {"league": "EPL"}, "league", "integer"),
        ("/fixtures", {"from": "2025-03-01", "league": 39}, "to", "required"),
        ("/fixtures", {"ids": "1,2,3"}, "ids", "separated by '-'"),
        ("/odds", {"season": 2024}, "required", "Fixture, League or Date"),
        ("/odds", {"league": 39, "page": 0}, "page", "at least 1"),
        ("/leagues", {"current": "yes"}, "current", "true or false"),
    ],
)
def test_bad_parameters_get_errors_keyed_by_parameter(api, path, params, key, fragment):
    _fake, client = api
    response = client.get(path, params=params, headers=KEY)
    env = parse_envelope(response.json())
    assert response.status_code == 200 and env.error_keys == (key,)
    assert fragment in env.errors[0] and env.response == []


def test_unknown_endpoint_and_method(api):
    _fake, client = api
    missing = client.get("/teams/statistics", headers=KEY)
    assert missing.status_code == 404 and parse_envelope(missing.json()).error_keys == ("endpoint",)
    post = client.post("/fixtures", headers=KEY)
    assert post.status_code == 405 and parse_envelope(post.json()).error_keys == ("method",)


# --------------------------------------------------------------------------- log, latency, control


def test_request_log_records_path_params_and_time(api):
    fake, client = api
    before = time.time()
    client.get("/fixtures", params={"league": 39, "season": 2024}, headers=KEY)
    client.get("/odds", params={"fixture": 123}, headers=KEY)
    after = time.time()
    first, second = fake.requests()
    assert (first.path, first.params) == ("/fixtures", {"league": "39", "season": "2024"})
    assert (second.path, second.params) == ("/odds", {"fixture": "123"})
    assert before <= first.at <= second.at <= after and first.seq < second.seq
    assert [r.path for r in fake.requests("/odds")] == ["/odds"]


def test_latency_is_applied_without_serialising_requests(api):
    fake, client = api
    fake.set_latency(0.3)

    async def burst() -> float:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=10) as aclient:
            started = time.perf_counter()
            await asyncio.gather(*(aclient.get("/leagues", headers=KEY) for _ in range(4)))
            return time.perf_counter() - started

    elapsed = asyncio.run(burst())
    assert elapsed >= 0.3  # each answer waited
    assert elapsed < 4 * 0.3  # ...concurrently, not one after another
    with pytest.raises(ValueError, match="latency"):
        fake.set_latency(-1)


def test_control_endpoints_for_a_separate_process(api):
    fake, client = api
    assert client.get("/_fake/health").json() == {"ok": True}
    assert client.post("/_fake/quota", json={"daily_remaining": 0}).json()["daily_remaining"] == 0
    assert parse_envelope(client.get("/leagues", headers=KEY).json()).quota_exhausted
    client.post("/_fake/quota", json={"reset": True})
    fixture_id = fake.data.fixture_ids()[0]
    reply = client.post("/_fake/result", json={"fixture_id": fixture_id, "home": 3, "away": 1, "ht_home": 1,
                                               "ht_away": 1})  # fmt: skip
    assert reply.json()["fixture"]["score"]["fulltime"] == {"home": 3, "away": 1}
    (fx,) = parse_fixtures(client.get("/fixtures", params={"id": fixture_id}, headers=KEY).json())
    assert (fx.status_short, fx.fulltime_home, fx.halftime_away) == ("FT", 3, 1)
    log = client.get("/_fake/requests", params={"since": 0}).json()["requests"]
    assert [entry["path"] for entry in log] == ["/leagues", "/fixtures"]
    assert client.post("/_fake/result", json={"fixture_id": 1}).status_code == 400
    assert client.get("/_fake/nothing").status_code == 400


# --------------------------------------------------------------------------- store and config


def test_store_refuses_bad_input():
    data = FakeFootballData.generate(2, [39])
    bad = fake_feed.fixture_items(1, [39], first_id=5)[0]
    del bad["teams"]["home"]["id"]
    with pytest.raises(FeedError, match=r"teams\.home\.id: missing"):
        data.put_fixture(bad)
    with pytest.raises(KeyError, match="fixture 999 is not in the fake store"):
        data.set_status(999, "FT")
    fixture_id = data.fixture_ids()[0]
    with pytest.raises(ValueError, match="home: must be a non-negative int"):
        data.set_result(fixture_id, -1, 0)
    with pytest.raises(ValueError, match="give both or neither"):
        data.set_result(fixture_id, 1, 0, ht_home=1)
    with pytest.raises(ValueError, match="unknown API-Football short code"):
        data.set_result(fixture_id, 1, 0, status="DONE")
    with pytest.raises(ValueError, match="bookmakers"):
        FakeFootballData(bookmakers=0)


@pytest.mark.parametrize(
    ("config", "message"),
    [({"daily_limit": 0}, "daily_limit"), ({"per_minute_limit": "10"}, "per_minute_limit"),
     ({"latency": -0.5}, "latency")],
)  # fmt: skip
def test_server_config_is_checked(config, message):
    with pytest.raises(ValueError, match=message):
        FakeApiFootball(FakeFootballData(), **config)


def test_runs_as_its_own_process():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.servers", "football", "--port", str(port), "--fixtures", "12",
         "--leagues", "61", "--start-date", "2025-03-01", "--key", "k1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/_fake/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "fake API did not start"
                time.sleep(0.1)
        body = httpx.get(url + "/fixtures", params={"league": 61, "season": 2024},
                         headers={"x-apisports-key": "k1"}).json()  # fmt: skip
        assert len(parse_fixtures(body)) == 12
        assert parse_envelope(httpx.get(url + "/fixtures", params={"league": 61}).json()).auth_failed
    finally:
        proc.terminate()
        proc.wait(timeout=10)
