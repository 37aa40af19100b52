"""Ingestion from API-Football over real HTTP: the fake API server serves realistic bodies
(``fake_feed``), the real client fetches them, the real services write them.

What must hold: running a sync twice changes nothing; the number of SQL statements per page
does not depend on how many pages there are; an odds refresh updates selections in place and
never deletes one a bet refers to; the live feed is fetched once per run; a spent quota stops
the run with a clear status instead of a traceback.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Contact
from devtools import fake_feed
from devtools.fake_api_football import FakeApiFootball, FakeFootballData, start_fake_api
from football_data_app.client import (
    MINUTE_WINDOW_KEY,
    QUOTA_EXHAUSTED_KEY,
    QUOTA_LIMIT_KEY,
    QUOTA_REMAINING_KEY,
    ApiFootballClient,
    ApiRequestError,
    AuthFailed,
    MinuteLimiter,
    QuotaExhausted,
)
from football_data_app.feed import FixtureStatus
from football_data_app.markets import MarketType, market_for
from football_data_app.models import (
    ApiFootballAccount,
    Bookmaker,
    Fixture,
    League,
    Market,
    Outcome,
    SyncKind,
    SyncStatus,
    Team,
)
from football_data_app.services import api_account, betting, ingestion, settling
from football_data_app.services.wallet import deposit, wallet_for

pytestmark = pytest.mark.django_db

KICKOFF_DAY = date(2024, 8, 17)
NOW = datetime(2024, 8, 17, 9, 0, tzinfo=UTC)  # before the first kick-off of the generated fixtures


@pytest.fixture(autouse=True)
def clean_redis(redis_client) -> Iterator[None]:
    keys = [QUOTA_EXHAUSTED_KEY, QUOTA_REMAINING_KEY, QUOTA_LIMIT_KEY, MINUTE_WINDOW_KEY]
    redis_client.delete(*keys, *redis_client.keys("football:lock:*"))
    yield
    redis_client.delete(*keys, *redis_client.keys("football:lock:*"))


@contextmanager
def serve(data: FakeFootballData, *, per_minute: int = 1000, **config) -> Iterator[FakeApiFootball]:
    """Run the fake API and point the account (what every worker reads) at it."""
    fake, server = start_fake_api(data, **config)
    with server:
        ApiFootballAccount.objects.update_or_create(
            pk=1, defaults={"base_url": server.url, "api_key": "test-key", "requests_per_minute": per_minute}
        )
        yield fake


def client() -> ApiFootballClient:
    return api_account.api_client()


def load_leagues_and_fixtures(league_ids=(39, 140)) -> None:
    with client() as api:
        ingestion.sync_leagues(api, activate=league_ids)
        ingestion.sync_fixtures(api, now=NOW)


FIXTURE_FIELDS = (
    "id", "api_id", "league_id", "kickoff", "home_team_id", "away_team_id", "status", "status_short",
    "goals_home", "goals_away", "fulltime_home", "fulltime_away", "halftime_home", "halftime_away",
)  # fmt: skip


def snapshot() -> dict[str, list]:
    """Every row ingestion writes, with ids (an update in place keeps them) and without
    bookkeeping timestamps."""
    return {
        "leagues": list(League.objects.order_by("id").values("id", "api_id", "name", "active", "current_season")),
        "teams": list(Team.objects.order_by("id").values("id", "api_id", "name")),
        "fixtures": list(Fixture.objects.order_by("id").values(*FIXTURE_FIELDS)),
        "bookmakers": list(Bookmaker.objects.order_by("id").values("id", "api_id", "name")),
        "markets": list(Market.objects.order_by("id").values("id", "fixture_id", "bookmaker_id", "market_type")),
        "outcomes": list(
            Outcome.objects.order_by("id").values("id", "market_id", "key", "line", "odds", "active", "suspended")
        ),
    }


def same_structure_odds(items: list[dict], template_fixture: dict) -> dict[int, dict]:
    """Realistic odds (5 bookmakers, every market) with the same selections for every
    fixture, so pages are the same size and statement counts can be compared exactly."""
    template = fake_feed.odds_item(template_fixture, bookmakers=5)
    pinned = {}
    for item in items:
        odds = copy.deepcopy(template)
        odds["fixture"].update(id=item["fixture"]["id"], date=item["fixture"]["date"])
        odds["league"]["id"] = item["league"]["id"]
        pinned[item["fixture"]["id"]] = odds
    return pinned


def offered_selections(odds_item: dict) -> int:
    return sum(
        len(bet["values"])
        for book in odds_item["bookmakers"]
        for bet in book["bets"]
        if market_for(bet["id"], bet["name"]) is not None
    )


# --------------------------------------------------------------------------- leagues and fixtures


def test_league_sync_is_idempotent_and_never_reactivates_a_league_an_operator_turned_off():
    with serve(FakeFootballData.generate(4, [39, 140, 135])):
        with client() as api:
            ingestion.sync_leagues(api, activate=[39, 140])
            assert dict(League.objects.values_list("api_id", "active")) == {39: True, 140: True, 135: False}
            League.objects.filter(api_id=39).update(active=False)  # the operator turns it off
            League.objects.filter(api_id=135).update(active=True)  # and another on
            before = snapshot()
            ingestion.sync_leagues(api, activate=[39, 140])
    assert snapshot() == before
    premier = League.objects.get(api_id=39)
    assert (premier.active, premier.name, premier.current_season, premier.has_odds) == (
        False, "Premier League", 2024, True,
    )  # fmt: skip


def test_fixture_sync_maps_every_status_keeps_the_90_minute_score_and_is_idempotent():
    codes = list(fake_feed.STATUS_LONG)
    data = FakeFootballData.generate(2 * len(codes), [39, 140], statuses=codes)
    with serve(data) as fake:
        load_leagues_and_fixtures()
        first = snapshot()
        with client() as api:
            ingestion.sync_fixtures(api, now=NOW)
        assert snapshot() == first
        assert len(fake.requests("/fixtures")) == 4  # one request per active league per run

    assert Fixture.objects.count() == 2 * len(codes)
    stored = {f.api_id: f for f in Fixture.objects.select_related("home_team", "away_team")}
    for fixture_id in data.fixture_ids():
        item = data.fixture(fixture_id)
        fixture = stored[fixture_id]
        short = item["fixture"]["status"]["short"]
        assert fixture.status == FixtureStatus.from_short(short), short
        assert fixture.status_short == short
        assert fixture.home_team.api_id == item["teams"]["home"]["id"]
        assert (fixture.fulltime_home, fixture.fulltime_away) == tuple(item["score"]["fulltime"].values())
        assert (fixture.goals_home, fixture.goals_away) == tuple(item["goals"].values())
    aet = next(f for f in stored.values() if f.status_short == "AET")
    assert aet.status == FixtureStatus.FINISHED_AET
    assert aet.goals_home + aet.goals_away == aet.fulltime_home + aet.fulltime_away + 1  # one goal in extra time
    assert {f.status for f in stored.values()} >= {"postponed", "cancelled", "abandoned", "finished_pen", "live"}
    # Teams are identified by API id: a team playing in two leagues is one row.
    assert Team.objects.count() == len({t for f in stored.values() for t in (f.home_team_id, f.away_team_id)})


def test_fixtures_of_inactive_leagues_are_not_fetched():
    with serve(FakeFootballData.generate(10, [39, 140])) as fake:
        with client() as api:
            ingestion.sync_leagues(api, activate=[39])
            ingestion.sync_fixtures(api, now=NOW)
    assert [r.params["league"] for r in fake.requests("/fixtures")] == ["39"]
    assert set(Fixture.objects.values_list("league__api_id", flat=True)) == {39}


# --------------------------------------------------------------------------- odds


def odds_data() -> tuple[FakeFootballData, dict[int, dict]]:
    """League 39: 10 fixtures (one /odds page); league 140: 30 fixtures (three pages)."""
    data = FakeFootballData(seed=0)
    data.put_leagues(fake_feed.league_items([39, 140]))
    items = fake_feed.fixture_items(10, [39]) + fake_feed.fixture_items(30, [140], first_id=1_200_000)
    data.put_fixtures(items)
    pinned = same_structure_odds(items, items[0])
    for fixture_id, odds in pinned.items():
        data.put_odds(fixture_id, odds)
    return data, pinned


def statements_per_page(queries: list[dict]) -> list[int]:
    """Split a capture at the one statement every API answer writes (the quota on the
    account row) and count the statements each page took."""
    pages, current = [], None
    for query in queries:
        if query["sql"].startswith("UPDATE") and "apifootballaccount" in query["sql"]:
            if current is not None:
                pages.append(current)
            current = 0
        elif current is not None:
            current += 1
    pages.append(current)
    return pages


def test_odds_statements_per_page_do_not_depend_on_the_number_of_pages():
    data, pinned = odds_data()
    per_page_selections = 10 * offered_selections(next(iter(pinned.values())))
    with serve(data) as fake:
        load_leagues_and_fixtures()
        with client() as api, CaptureQueriesContext(connection) as one_page:
            ingestion.sync_odds(api, league_ids=[39])
        with client() as api, CaptureQueriesContext(connection) as three_pages:
            ingestion.sync_odds(api, league_ids=[140])
        assert [r.params.get("page") for r in fake.requests("/odds")] == ["1", "1", "2", "3"]

    one, three = statements_per_page(one_page.captured_queries), statements_per_page(three_pages.captured_queries)
    assert len(one) == 1 and len(three) == 3
    assert three == one * 3, (one, three)
    # Bulk, not per row: a page of 10 fixtures x 5 bookmakers writes ~4,000 selections.
    assert Outcome.objects.filter(market__fixture__league__api_id=39).count() == per_page_selections
    assert one[0] < per_page_selections / 50, one


def test_odds_ingestion_twice_gives_the_same_rows_and_skips_markets_we_do_not_offer():
    data, pinned = odds_data()
    with serve(data):
        load_leagues_and_fixtures()
        with client() as api:
            ingestion.sync_odds(api)
        first = snapshot()
        with client() as api:
            ingestion.sync_odds(api)
    assert snapshot() == first
    template = next(iter(pinned.values()))
    assert Outcome.objects.count() == 40 * offered_selections(template)
    assert Bookmaker.objects.count() == 5
    assert set(Market.objects.values_list("market_type", flat=True)) == {m.value for m in MarketType}
    assert not Market.objects.filter(name="Second Half Winner").exists()

    # The stored price is the feed's price for that bookmaker and selection.
    fixture_id = next(iter(pinned))
    book = template["bookmakers"][0]
    totals = next(bet for bet in book["bets"] if bet["name"] == "Goals Over/Under")
    over = next(v for v in totals["values"] if v["value"] == "Over 2.5")
    stored = Outcome.objects.get(
        market__fixture__api_id=fixture_id, market__bookmaker__api_id=book["id"],
        market__market_type=MarketType.OVER_UNDER, key="Over 2.5",
    )  # fmt: skip
    assert stored.odds == Decimal(over["odd"])
    assert stored.line == Decimal("2.50")
    # Handicap lines are the home side's, whichever side the selection is.
    away = Outcome.objects.filter(market__market_type=MarketType.ASIAN_HANDICAP, name="Away").first()
    assert away.key.startswith("Away ") and away.line is not None


def test_an_odds_refresh_updates_in_place_deactivates_what_left_the_feed_and_keeps_bets_at_their_odds():
    data = FakeFootballData.generate(3, [39], start_date=(timezone.now() + timedelta(days=2)).date())
    fixture_id = data.fixture_ids()[0]
    original = fake_feed.odds_item(data.fixture(fixture_id), bookmakers=2)
    data.put_odds(fixture_id, original)
    with serve(data):
        with client() as api:
            ingestion.sync_leagues(api, activate=[39])
            ingestion.sync_fixtures(api)
            ingestion.sync_odds(api)
        home = Outcome.objects.get(
            market__fixture__api_id=fixture_id, market__bookmaker__api_id=8,
            market__market_type=MarketType.MATCH_WINNER, key="Home",
        )  # fmt: skip
        btts_ids = set(
            Outcome.objects.filter(
                market__fixture__api_id=fixture_id, market__bookmaker__api_id=8, market__market_type=MarketType.BTTS
            ).values_list("id", flat=True)
        )
        wallet = wallet_for(Contact.objects.create(wa_id="263770000001"))
        deposit(wallet, Decimal("50.00"))
        ticket = betting.place_ticket(wallet, [betting.Selection(home.pk)], Decimal("10.00"))
        placed_odds = home.odds

        # The bookmaker moves the price and stops offering both-teams-to-score.
        changed = copy.deepcopy(original)
        bet365 = changed["bookmakers"][0]
        winner = next(bet for bet in bet365["bets"] if bet["name"] == "Match Winner")
        winner["values"][0]["odd"] = str(placed_odds + Decimal("0.75"))
        bet365["bets"] = [bet for bet in bet365["bets"] if bet["name"] != "Both Teams Score"]
        data.put_odds(fixture_id, changed)
        with client() as api:
            ingestion.sync_odds(api)

    home.refresh_from_db()
    assert home.odds == placed_odds + Decimal("0.75") and home.active  # same row, new price
    bet = ticket.bets.get()
    assert bet.outcome_id == home.pk and bet.odds == placed_odds  # the bet keeps its odds
    gone = Outcome.objects.filter(id__in=btts_ids)
    assert gone.count() == 2 and not gone.filter(active=True).exists()  # deactivated, not deleted
    other_book = Outcome.objects.filter(market__fixture__api_id=fixture_id, market__bookmaker__api_id=6)
    assert not other_book.filter(active=False).exists()


def test_a_malformed_item_or_unknown_label_is_counted_and_the_rest_of_the_page_is_written():
    data = FakeFootballData.generate(3, [39])
    ids = data.fixture_ids()
    bad_label = fake_feed.odds_item(data.fixture(ids[0]), bookmakers=1)
    next(b for b in bad_label["bookmakers"][0]["bets"] if b["name"] == "Match Winner")["values"].append(
        {"value": "Nobody", "odd": "3.10"}
    )
    data.put_odds(ids[0], bad_label)
    broken = fake_feed.odds_item(data.fixture(ids[1]), bookmakers=1)
    del broken["update"]
    data.put_odds(ids[1], broken)
    with serve(data):
        with client() as api:
            ingestion.sync_leagues(api, activate=[39])
            ingestion.sync_fixtures(api, now=NOW)
        run = ingestion.run_sync(SyncKind.ODDS)
    assert run.status == SyncStatus.OK
    assert run.skipped >= 2
    assert any("update: missing" in note for note in run.detail["notes"])
    assert any("'Nobody'" in note for note in run.detail["notes"])
    assert set(Market.objects.values_list("fixture__api_id", flat=True)) == {ids[0], ids[2]}
    assert Outcome.objects.filter(market__fixture__api_id=ids[0], market__market_type="match_winner").count() == 3


def test_live_odds_are_fetched_once_per_run_for_every_league_and_deduplicated():
    data = FakeFootballData.generate(6, [39, 140], statuses=("2H",))
    fixture = data.fixture(data.fixture_ids()[0])
    live = fake_feed.live_odds_item(fixture)
    totals = next(bet for bet in live["odds"] if bet["name"] == "Over/Under Line")
    main_over = next(v for v in totals["values"] if v["value"] == "Over" and v["main"])
    # Real live feeds repeat a line (alternative and main quote): the main one must win.
    totals["values"].insert(0, {**main_over, "odd": "9.99", "main": False})
    data.put_live_odds(fixture["fixture"]["id"], live)
    with serve(data) as fake:
        with client() as api:
            ingestion.sync_leagues(api, activate=[39, 140])
            ingestion.sync_fixtures(api, now=NOW)
            ingestion.sync_live_odds(api)
            first = snapshot()
            ingestion.sync_live_odds(api)
        assert len(fake.requests("/odds/live")) == 2  # once per run, never per league
    assert snapshot() == first
    live_markets = Market.objects.filter(is_live=True)
    assert set(live_markets.values_list("fixture__league__api_id", flat=True)) == {39, 140}
    assert set(live_markets.values_list("bookmaker__api_id", flat=True)) == {0}
    over = Outcome.objects.get(
        market__is_live=True, market__fixture__api_id=fixture["fixture"]["id"],
        market__market_type=MarketType.OVER_UNDER, key=f"Over {main_over['handicap']}",
    )  # fmt: skip
    assert over.odds == Decimal(main_over["odd"])
    suspended = sum(1 for item in data.live_odds({}) for bet in item["odds"] for v in bet["values"] if v["suspended"])
    assert Outcome.objects.filter(market__is_live=True, suspended=True).count() == suspended


# --------------------------------------------------------------------------- results


def test_results_sync_asks_20_ids_per_request_and_flags_a_fixture_missing_from_the_feed():
    past = (timezone.now() - timedelta(days=5)).date()  # 25 matches over four days, all over by now
    data = FakeFootballData.generate(25, [39], start_date=past)
    ids = data.fixture_ids()
    with serve(data) as fake:
        with client() as api:
            ingestion.sync_leagues(api, activate=[39])
            ingestion.sync_fixtures(api, days_back=6)
            assert Fixture.objects.filter(status=FixtureStatus.SCHEDULED).count() == 25
            data.set_result(ids[0], 2, 1, 1, 0)
            data.set_status(ids[1], "PST")
            data.set_result(ids[2], 1, 1, 0, 0, status="PEN", extratime=(0, 0), penalty=(4, 3))
            # A fixture we have that the feed has never heard of (deleted upstream, say).
            ghost = Fixture.objects.get(api_id=ids[3])
            Fixture.objects.filter(pk=ghost.pk).update(api_id=9_999_999)
            ingestion.sync_results(api)
        requests = fake.requests("/fixtures")[-2:]
    assert [len(r.params["ids"].split("-")) for r in requests] == [20, 5]
    finished = Fixture.objects.get(api_id=ids[0])
    assert (finished.status, finished.fulltime_home, finished.fulltime_away) == ("finished", 2, 1)
    assert Fixture.objects.get(api_id=ids[1]).status == FixtureStatus.POSTPONED
    assert Fixture.objects.get(api_id=ids[2]).status == FixtureStatus.FINISHED_PEN
    ghost.refresh_from_db()
    assert ghost.result_missing_since is not None and "Not in the results feed" in ghost.settlement_note
    settleable = set(settling.settleable_fixture_ids())
    assert {Fixture.objects.get(api_id=i).pk for i in ids[:3]} <= settleable
    assert ghost.pk not in settleable  # it waits: never settled on an assumed score


# --------------------------------------------------------------------------- quota and limits


def test_a_spent_daily_quota_stops_the_run_with_a_status_not_a_traceback(caplog, redis_client):
    data, _ = odds_data()
    with serve(data, daily_limit=6) as fake:
        load_leagues_and_fixtures()  # 3 requests: leagues + 2 leagues' fixtures
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            run = ingestion.run_sync(SyncKind.ODDS)
        assert run.status == SyncStatus.QUOTA_EXHAUSTED
        assert "quota" in run.message
        # The 6th answer said 0 remaining: no request was spent learning the quota was gone.
        assert len(fake.requests()) == 6 and fake.daily_remaining == 0
        assert run.requests == 3 and run.pages == 3
        assert redis_client.get(QUOTA_REMAINING_KEY) == b"0"
        assert ApiFootballAccount.objects.get().exhausted_until > timezone.now()
        assert api_account.quota_status()["blocked_until"] is not None
        warnings = [r for r in caplog.records if r.name.startswith("football_data_app")]
        assert warnings and all(r.exc_info is None for r in warnings)

        # Every later run stops before the network until the block is lifted.
        again = ingestion.run_sync(SyncKind.FIXTURES)
        assert again.status == SyncStatus.QUOTA_EXHAUSTED and again.requests == 0
        assert len(fake.requests()) == 6
        fake.reset_quota()
        api_account.clear_quota_block()
        assert ingestion.run_sync(SyncKind.ODDS).status == SyncStatus.OK


def test_quota_refused_by_the_api_blocks_further_requests(redis_client):
    data = FakeFootballData.generate(2, [39])
    with serve(data) as fake:
        fake.exhaust_daily_quota()
        with client() as api, pytest.raises(QuotaExhausted):
            api.leagues()
        with client() as api, pytest.raises(QuotaExhausted):
            api.leagues()
        assert [r.error_keys for r in fake.requests()] == [("requests",)]  # the second never left
        assert redis_client.get(QUOTA_REMAINING_KEY) == b"0"


def test_remaining_quota_is_published_in_redis_for_the_metrics_exporter(redis_client):
    with serve(FakeFootballData.generate(2, [39]), daily_limit=100) as fake:
        with client() as api:
            api.leagues()
            api.leagues()
        assert redis_client.get(QUOTA_REMAINING_KEY) == b"98" == str(fake.daily_remaining).encode()
        assert redis_client.get(QUOTA_LIMIT_KEY) == b"100"
        assert ApiFootballAccount.objects.get().daily_remaining == 98


def test_the_per_minute_limit_pauses_a_run_which_resumes_where_it_stopped(redis_client):
    data, pinned = odds_data()
    with serve(data) as fake:
        load_leagues_and_fixtures()
        redis_client.delete(MINUTE_WINDOW_KEY)
        ApiFootballAccount.objects.update(requests_per_minute=2)
        run = ingestion.run_sync(SyncKind.ODDS)
        assert run.status == SyncStatus.PARTIAL
        assert run.detail["resume"] == {"league_ids": [140], "page": 2}
        assert 0 < run.detail["retry_after"] <= 60
        redis_client.delete(MINUTE_WINDOW_KEY)  # the minute passes
        ApiFootballAccount.objects.update(requests_per_minute=1000)
        assert ingestion.run_sync(SyncKind.ODDS, **run.detail["resume"]).status == SyncStatus.OK
        pages = [(r.params["league"], r.params.get("page")) for r in fake.requests("/odds")]
    assert pages == [("39", "1"), ("140", "1"), ("140", "2"), ("140", "3")]  # nothing fetched twice
    assert Outcome.objects.count() == 40 * offered_selections(next(iter(pinned.values())))


def test_the_minute_limiter_is_shared_by_every_client_on_the_same_redis(redis_client):
    redis_client.delete("test:limiter")
    first = MinuteLimiter(redis_client, 3, key="test:limiter")
    second = MinuteLimiter(redis_client, 3, key="test:limiter")
    grants = [first.try_acquire(), second.try_acquire(), first.try_acquire()]
    assert grants == [0.0, 0.0, 0.0]
    assert 59 < second.try_acquire() <= 60
    redis_client.delete("test:limiter")


def test_a_missing_api_key_ends_the_run_with_a_message_not_a_traceback(settings):
    settings.API_FOOTBALL_KEY = ""
    ApiFootballAccount.objects.update_or_create(pk=1, defaults={"base_url": "http://127.0.0.1:9", "api_key": ""})
    run = ingestion.run_sync(SyncKind.LEAGUES)
    assert run.status == SyncStatus.FAILED and run.requests == 0
    assert "key is not configured" in run.message
    assert "key is not configured" in ApiFootballAccount.objects.get().last_error


def test_bad_configuration_and_bad_requests_fail_with_a_clear_error(redis_client):
    with pytest.raises(ValueError, match="limit"):
        MinuteLimiter(redis_client, 0)
    with pytest.raises(ValueError, match="base_url"):
        ApiFootballClient(base_url="", api_key="k", redis=redis_client, requests_per_minute=10)
    with pytest.raises(AuthFailed, match="not configured"):
        ApiFootballClient(base_url="http://x", api_key="", redis=redis_client, requests_per_minute=10)
    with serve(FakeFootballData.generate(2, [39])) as fake:
        ApiFootballAccount.objects.update(api_key="wrong-key")
        with client() as api, pytest.raises(AuthFailed, match="Invalid application key"):
            api.leagues()
        ApiFootballAccount.objects.update(api_key="test-key")
        with client() as api, pytest.raises(ApiRequestError, match="season"):
            api.fixtures(league=39, season="last")
        run = ingestion.run_sync(SyncKind.LEAGUES)
        assert run.status == SyncStatus.OK
        fake.set_latency(0)
