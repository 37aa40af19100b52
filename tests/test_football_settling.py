"""Settlement through the database: results -> outcomes -> bets -> tickets -> wallet credit.

Bets are placed with the real ``place_ticket`` on selections ingested from API-Football-
shaped bodies, results arrive as /fixtures items, and the expected payouts are written out
by hand (stake 10.00 at the odds listed), so the whole pipeline is checked, not only the
maths. The real-worker tests run settlement on prefork ``football_data`` workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count
from django.utils import timezone

from conversations.models import Contact, Direction, Message
from devtools import fake_feed
from devtools.fake_api_football import FakeFootballData, start_fake_api
from football_data_app.client import MINUTE_WINDOW_KEY, QUOTA_EXHAUSTED_KEY
from football_data_app.feed import FixtureStatus, parse_fixture, parse_league
from football_data_app.markets import PREMATCH_BET_IDS, PREMATCH_BET_NAMES, MarketType
from football_data_app.models import (
    ApiFootballAccount,
    EntryKind,
    Fixture,
    LedgerEntry,
    Outcome,
    SyncKind,
    SyncRun,
    SyncStatus,
    Ticket,
    TicketStatus,
)
from football_data_app.services import betting, settling, upserts
from football_data_app.services.wallet import deposit, ledger_total, wallet_discrepancies, wallet_for
from football_data_app.tasks import settle_due, settle_fixture, sync_fixtures
from meta_integration.models import MetaAppConfig
from tests.support.broker import purge_project_queues
from tests.support.waiting import wait_until
from whatsappcrm_backend.celery import enqueue

D = Decimal
M = MarketType
STAKE = D("10.00")


# --------------------------------------------------------------------------- helpers


class Feed:
    """A tiny API-Football: fixtures from ``fake_feed``, results played out by the fake store."""

    def __init__(self, n: int = 1, *, kickoff_in: timedelta = timedelta(days=2), first_id: int = 1_100_000):
        upserts.upsert_leagues([parse_league(item) for item in fake_feed.league_items([39])], activate=[39])
        self.data = FakeFootballData(seed=3)
        start = (timezone.now() + kickoff_in).date()
        self.items = fake_feed.fixture_items(n, [39], start_date=start, first_id=first_id, seed=3)
        self.data.put_fixtures(self.items)
        upserts.upsert_fixtures([parse_fixture(item) for item in self.items])
        self.fixtures = [Fixture.objects.get(api_id=item["fixture"]["id"]) for item in self.items]

    def offer(self, index: int, bets: dict[MarketType, list[tuple[str, str]]], book=(8, "Bet365")) -> None:
        """Ingest an /odds item pricing ``bets`` ({market: [(label, odd)]}) for fixture ``index``."""
        item = fake_feed.odds_item(self.items[index], bookmakers=1)
        item["bookmakers"] = [{
            "id": book[0], "name": book[1],
            "bets": [
                {"id": PREMATCH_BET_IDS[m], "name": PREMATCH_BET_NAMES[m],
                 "values": [{"value": label, "odd": odd} for label, odd in values]}
                for m, values in bets.items()
            ],
        }]  # fmt: skip
        result = upserts.ingest_odds([item])
        assert result.skipped == 0, result.notes

    def result(self, index: int, home: int, away: int, ht: tuple[int, int] | None = None, **kwargs) -> Fixture:
        """The results feed reports a final score (``status`` etc. as ``FakeFootballData.set_result``)."""
        fixture_id = self.items[index]["fixture"]["id"]
        item = self.data.set_result(fixture_id, home, away, *(ht or (None, None)), **kwargs)
        upserts.upsert_fixtures([parse_fixture(item)])
        return Fixture.objects.get(api_id=fixture_id)

    def status(self, index: int, code: str) -> Fixture:
        fixture_id = self.items[index]["fixture"]["id"]
        upserts.upsert_fixtures([parse_fixture(self.data.set_status(fixture_id, code))])
        return Fixture.objects.get(api_id=fixture_id)


def outcome(fixture: Fixture, market: MarketType, key: str) -> Outcome:
    return Outcome.objects.get(market__fixture=fixture, market__market_type=market, key=key, market__is_live=False)


def funded_wallet(wa_id: str = "263770000100", amount: str = "1000.00"):
    wallet = wallet_for(Contact.objects.create(wa_id=wa_id, profile_name="Bettor"))
    deposit(wallet, D(amount), reference=f"test-deposit:{wa_id}")
    return wallet


def single(wallet, fixture: Fixture, market: MarketType, key: str, stake: Decimal = STAKE) -> Ticket:
    return betting.place_ticket(wallet, [betting.Selection(outcome(fixture, market, key).pk)], stake)


def credits(ticket: Ticket) -> list[tuple[str, Decimal]]:
    return list(LedgerEntry.objects.filter(ticket=ticket).exclude(kind=EntryKind.STAKE).values_list("kind", "amount"))


# --------------------------------------------------------------------------- every market


EVERY_MARKET = {
    M.MATCH_WINNER: [("Home", "2.10"), ("Draw", "3.40"), ("Away", "3.60")],
    M.DOUBLE_CHANCE: [("Home/Draw", "1.30"), ("Draw/Away", "1.80"), ("Home/Away", "1.25")],
    M.DRAW_NO_BET: [("Home", "1.55"), ("Away", "2.45")],
    M.OVER_UNDER: [
        ("Over 2.5", "1.95"), ("Under 2.5", "1.85"), ("Over 3.0", "2.40"), ("Under 3.0", "1.55"),
        ("Over 2.75", "2.20"), ("Under 2.75", "1.70"), ("Over 3.25", "2.60"), ("Under 3.25", "1.48"),
    ],
    M.BTTS: [("Yes", "1.75"), ("No", "2.00")],
    M.ASIAN_HANDICAP: [
        ("Home -1", "2.05"), ("Away -1", "1.80"), ("Home -0.75", "1.90"), ("Away -0.75", "1.95"),
        ("Home -1.5", "2.80"), ("Away -1.5", "1.42"),
    ],
    M.EUROPEAN_HANDICAP: [("Home -1", "3.20"), ("Draw -1", "3.50"), ("Away -1", "1.90")],
    M.ODD_EVEN: [("Odd", "1.90"), ("Even", "1.90")],
    M.CORRECT_SCORE: [("2:1", "8.50"), ("1:1", "6.50"), ("1:0", "7.00")],
    M.FIRST_HALF_WINNER: [("Home", "2.90"), ("Draw", "2.10"), ("Away", "4.20")],
    M.FIRST_HALF_OVER_UNDER: [("Over 1.0", "2.30"), ("Under 0.5", "3.00"), ("Over 0.5", "1.40")],
    M.FIRST_HALF_BTTS: [("Yes", "5.00"), ("No", "1.20")],
}  # fmt: skip

# Final 2-1, half-time 1-0. (market, selection key, ticket status, credited amount) for 10.00.
EXPECTED_2_1 = [
    (M.MATCH_WINNER, "Home", "won", "21.00"),
    (M.MATCH_WINNER, "Draw", "lost", "0.00"),
    (M.MATCH_WINNER, "Away", "lost", "0.00"),
    (M.DOUBLE_CHANCE, "1X", "won", "13.00"),
    (M.DOUBLE_CHANCE, "X2", "lost", "0.00"),
    (M.DOUBLE_CHANCE, "12", "won", "12.50"),
    (M.DRAW_NO_BET, "Home", "won", "15.50"),
    (M.DRAW_NO_BET, "Away", "lost", "0.00"),
    (M.OVER_UNDER, "Over 2.5", "won", "19.50"),
    (M.OVER_UNDER, "Under 2.5", "lost", "0.00"),
    (M.OVER_UNDER, "Over 3", "void", "10.00"),  # three goals on a whole line: push, stake back
    (M.OVER_UNDER, "Under 3", "void", "10.00"),
    (M.OVER_UNDER, "Over 2.75", "partial", "16.00"),  # half at 2.20 on 2.5, half back on 3.0
    (M.OVER_UNDER, "Under 2.75", "partial", "5.00"),  # half lost on 2.5, half back on 3.0
    (M.OVER_UNDER, "Over 3.25", "partial", "5.00"),  # half back on 3.0, half lost on 3.5
    (M.OVER_UNDER, "Under 3.25", "partial", "12.40"),  # half back on 3.0, half won at 1.48 on 3.5
    (M.BTTS, "Yes", "won", "17.50"),
    (M.BTTS, "No", "lost", "0.00"),
    (M.ASIAN_HANDICAP, "Home -1", "void", "10.00"),  # won by exactly one at -1: push
    (M.ASIAN_HANDICAP, "Away -1", "void", "10.00"),
    (M.ASIAN_HANDICAP, "Home -0.75", "partial", "14.50"),  # half won on -0.5, half back on -1
    (M.ASIAN_HANDICAP, "Away -0.75", "partial", "5.00"),
    (M.ASIAN_HANDICAP, "Home -1.5", "lost", "0.00"),
    (M.ASIAN_HANDICAP, "Away -1.5", "won", "14.20"),
    (M.EUROPEAN_HANDICAP, "Home -1", "lost", "0.00"),
    (M.EUROPEAN_HANDICAP, "Draw -1", "won", "35.00"),  # 2-1 with home -1 is 1-1
    (M.EUROPEAN_HANDICAP, "Away -1", "lost", "0.00"),
    (M.ODD_EVEN, "Odd", "won", "19.00"),
    (M.ODD_EVEN, "Even", "lost", "0.00"),
    (M.CORRECT_SCORE, "2:1", "won", "85.00"),
    (M.CORRECT_SCORE, "1:1", "lost", "0.00"),
    (M.FIRST_HALF_WINNER, "Home", "won", "29.00"),
    (M.FIRST_HALF_WINNER, "Draw", "lost", "0.00"),
    (M.FIRST_HALF_OVER_UNDER, "Over 1", "void", "10.00"),  # one first-half goal on 1.0: push
    (M.FIRST_HALF_OVER_UNDER, "Under 0.5", "lost", "0.00"),
    (M.FIRST_HALF_OVER_UNDER, "Over 0.5", "won", "14.00"),
    (M.FIRST_HALF_BTTS, "No", "won", "12.00"),
    (M.FIRST_HALF_BTTS, "Yes", "lost", "0.00"),
]


@pytest.mark.django_db
def test_every_offered_market_settles_on_a_concrete_score_and_credits_the_wallet():
    feed = Feed()
    feed.offer(0, EVERY_MARKET)
    fixture = feed.fixtures[0]
    wallet = funded_wallet()
    tickets = {(m, key): single(wallet, fixture, m, key) for m, key, _, _ in EXPECTED_2_1}
    assert wallet.balance == D("1000.00") - STAKE * len(EXPECTED_2_1)

    settled = feed.result(0, 2, 1, ht=(1, 0))
    outcome_ = settling.settle_fixture(settled.pk, settled_by="test")
    assert outcome_.state == "settled" and len(outcome_.tickets) == len(EXPECTED_2_1)

    for market, key, status, credited in EXPECTED_2_1:
        ticket = Ticket.objects.get(pk=tickets[(market, key)].pk)
        assert (ticket.status, ticket.payout) == (status, D(credited)), (market, key)
        expected_entries = [] if credited == "0.00" else [("refund" if status == "void" else "win", D(credited))]
        assert credits(ticket) == expected_entries, (market, key)
    wallet.refresh_from_db()
    total_credit = sum(D(credited) for *_, credited in EXPECTED_2_1)
    assert wallet.balance == D("1000.00") - STAKE * len(EXPECTED_2_1) + total_credit
    assert ledger_total(wallet) == wallet.balance
    assert wallet_discrepancies() == []
    fixture.refresh_from_db()
    assert fixture.settled_at is not None and fixture.settlement_note == ""
    assert not Outcome.objects.filter(market__fixture=fixture, result="").exists()


@pytest.mark.django_db
def test_markets_settle_on_the_90_minute_score_never_extra_time_or_penalties():
    feed = Feed()
    feed.offer(0, {M.MATCH_WINNER: [("Home", "2.50"), ("Draw", "3.10"), ("Away", "2.90")],
                   M.OVER_UNDER: [("Over 2.5", "1.90"), ("Under 2.5", "1.90")]})  # fmt: skip
    wallet = funded_wallet()
    draw = single(wallet, feed.fixtures[0], M.MATCH_WINNER, "Draw")
    home = single(wallet, feed.fixtures[0], M.MATCH_WINNER, "Home")
    under = single(wallet, feed.fixtures[0], M.OVER_UNDER, "Under 2.5")
    # 1-1 after 90 minutes, 3-1 after extra time.
    fixture = feed.result(0, 1, 1, ht=(0, 1), status="AET", extratime=(2, 0))
    assert (fixture.goals_home, fixture.goals_away) == (3, 1)
    settling.settle_fixture(fixture.pk)
    assert [Ticket.objects.get(pk=t.pk).status for t in (draw, home, under)] == ["won", "lost", "won"]


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["PST", "CANC", "ABD"])
def test_a_fixture_that_is_not_played_voids_its_bets_and_refunds_the_stake(code):
    feed = Feed()
    feed.offer(0, {M.MATCH_WINNER: [("Home", "2.10"), ("Draw", "3.40"), ("Away", "3.60")]})
    wallet = funded_wallet(amount="50.00")
    ticket = single(wallet, feed.fixtures[0], M.MATCH_WINNER, "Away", stake=D("12.50"))
    fixture = feed.status(0, code)
    assert fixture.fixture_status.is_void
    settling.settle_fixture(fixture.pk)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.payout) == (TicketStatus.VOID, D("12.50"))
    assert credits(ticket) == [("refund", D("12.50"))]
    assert LedgerEntry.objects.get(ticket=ticket, kind="refund").reference == f"refund:ticket:{ticket.pk}"
    wallet.refresh_from_db()
    assert wallet.balance == D("50.00")


@pytest.mark.django_db
def test_accumulators_multiply_void_legs_count_as_one_and_a_lost_leg_loses_at_once():
    feed = Feed(4)
    for index in range(4):
        feed.offer(index, {M.MATCH_WINNER: [("Home", "2.00"), ("Draw", "3.00"), ("Away", "1.50")]})
    a, b, c, d = feed.fixtures
    wallet = funded_wallet()

    def acca(*legs) -> Ticket:
        selections = [betting.Selection(outcome(fx, M.MATCH_WINNER, key).pk) for fx, key in legs]
        return betting.place_ticket(wallet, selections, STAKE)

    void_leg = acca((a, "Home"), (b, "Draw"), (c, "Away"))  # b is postponed
    lost_early = acca((a, "Away"), (d, "Home"))  # a ends 2-0: lost before d is played
    pending = acca((a, "Home"), (d, "Home"))
    assert void_leg.kind == "accumulator" and void_leg.potential_payout == D("90.00")

    settling.settle_fixture(feed.result(0, 2, 0, ht=(1, 0)).pk)
    assert Ticket.objects.get(pk=lost_early.pk).status == TicketStatus.LOST
    assert Ticket.objects.get(pk=pending.pk).status == TicketStatus.OPEN
    assert Ticket.objects.get(pk=void_leg.pk).status == TicketStatus.OPEN

    settling.settle_fixture(feed.status(1, "PST").pk)
    settling.settle_fixture(feed.result(2, 0, 1, ht=(0, 0)).pk)
    void_leg.refresh_from_db()
    assert (void_leg.status, void_leg.payout) == (TicketStatus.WON, D("30.00"))  # 10 x 2.00 x 1 x 1.50
    assert credits(void_leg) == [("win", D("30.00"))]

    settling.settle_fixture(feed.result(3, 1, 1, ht=(0, 0)).pk)
    assert Ticket.objects.get(pk=pending.pk).status == TicketStatus.LOST
    assert credits(Ticket.objects.get(pk=lost_early.pk)) == []


@pytest.mark.django_db
def test_a_ticket_is_paid_at_the_odds_it_was_placed_at_after_the_odds_changed():
    feed = Feed()
    feed.offer(0, {M.MATCH_WINNER: [("Home", "2.10"), ("Draw", "3.40"), ("Away", "3.60")]})
    wallet = funded_wallet()
    ticket = single(wallet, feed.fixtures[0], M.MATCH_WINNER, "Home")
    feed.offer(0, {M.MATCH_WINNER: [("Home", "3.75"), ("Draw", "3.00"), ("Away", "2.20")]})  # the price drifts
    home = outcome(feed.fixtures[0], M.MATCH_WINNER, "Home")
    assert home.odds == D("3.75") and ticket.bets.get().outcome_id == home.pk

    settling.settle_fixture(feed.result(0, 1, 0, ht=(0, 0)).pk)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.payout) == (TicketStatus.WON, D("21.00"))  # 10.00 x 2.10, not x 3.75
    assert ticket.bets.get().odds == D("2.10")


@pytest.mark.django_db
def test_settling_twice_pays_once_and_notifies_once():
    MetaAppConfig.objects.create(
        name="Test", phone_number_id="106540352242922", access_token="token", app_secret="secret", verify_token="v"
    )
    feed = Feed()
    feed.offer(0, {M.MATCH_WINNER: [("Home", "2.10"), ("Draw", "3.40"), ("Away", "3.60")]})
    wallet = funded_wallet()
    ticket = single(wallet, feed.fixtures[0], M.MATCH_WINNER, "Home")
    fixture = feed.result(0, 3, 0, ht=(2, 0))
    first = settling.settle_fixture(fixture.pk)
    second = settling.settle_fixture(fixture.pk)
    swept = settling.settle_due()
    assert first.tickets == (ticket.pk,) and second.tickets == () and swept["tickets"] == 0
    assert credits(ticket) == [("win", D("21.00"))]
    wallet.refresh_from_db()
    assert wallet.balance == D("1011.00")
    notes = Message.objects.filter(contact=wallet.contact, direction=Direction.OUTBOUND)
    assert notes.count() == 1
    assert "WON" in notes.get().text and "21.00" in notes.get().text and "Home" not in notes.get().text


@pytest.mark.django_db
def test_a_finished_fixture_without_a_90_minute_score_waits_and_says_why():
    feed = Feed()
    feed.offer(0, {M.MATCH_WINNER: [("Home", "2.10"), ("Draw", "3.40"), ("Away", "3.60")],
                   M.FIRST_HALF_WINNER: [("Home", "2.90"), ("Draw", "2.10"), ("Away", "4.20")]})  # fmt: skip
    wallet = funded_wallet()
    full = single(wallet, feed.fixtures[0], M.MATCH_WINNER, "Home")
    half = single(wallet, feed.fixtures[0], M.FIRST_HALF_WINNER, "Home")
    fixture = feed.result(0, 1, 1, status="PEN", extratime=(0, 0), penalty=(5, 4))
    Fixture.objects.filter(pk=fixture.pk).update(fulltime_home=None, fulltime_away=None)  # the feed lost it
    waiting = settling.settle_fixture(fixture.pk)
    assert waiting.state == "waiting" and "90-minute score" in waiting.note
    fixture.refresh_from_db()
    assert fixture.settled_at is None and "90-minute score" in fixture.settlement_note
    assert Ticket.objects.filter(status=TicketStatus.OPEN).count() == 2
    assert not LedgerEntry.objects.exclude(kind__in=["stake", "deposit"]).exists()

    # Full-time known, half-time not: full-time markets settle, first-half ones wait.
    Fixture.objects.filter(pk=fixture.pk).update(fulltime_home=1, fulltime_away=1, halftime_home=None)
    partial = settling.settle_fixture(fixture.pk)
    assert partial.state == "waiting" and "half-time" in partial.note
    assert Ticket.objects.get(pk=full.pk).status == TicketStatus.LOST
    assert Ticket.objects.get(pk=half.pk).status == TicketStatus.OPEN
    assert fixture.pk in settling.settleable_fixture_ids()  # still listed for operators and the sweeper


@pytest.mark.django_db
def test_operators_can_enter_a_result_or_void_a_fixture_once():
    feed = Feed(2, kickoff_in=timedelta(days=-1))
    for index in range(2):
        feed.offer(index, {M.MATCH_WINNER: [("Home", "2.10"), ("Draw", "3.40"), ("Away", "3.60")]})
    wallet = funded_wallet()
    Fixture.objects.update(kickoff=timezone.now() + timedelta(hours=1))
    first = single(wallet, feed.fixtures[0], M.MATCH_WINNER, "Away")
    second = single(wallet, feed.fixtures[1], M.MATCH_WINNER, "Home")
    with pytest.raises(ValueError, match="half-time"):
        settling.set_manual_result(feed.fixtures[0], home=0, away=1, ht_home=2, ht_away=0, by="ops")
    with pytest.raises(ValueError, match="operator"):
        settling.void_fixture(feed.fixtures[1], by="")

    settling.set_manual_result(feed.fixtures[0], home=0, away=1, ht_home=0, ht_away=0, by="ops")
    settling.void_fixture(feed.fixtures[1], by="ops", reason="played behind closed doors, result annulled")
    assert (Ticket.objects.get(pk=first.pk).status, Ticket.objects.get(pk=second.pk).status) == ("won", "void")
    assert Ticket.objects.get(pk=first.pk).settled_by == "ops"
    with pytest.raises(ValueError, match="already settled"):
        settling.void_fixture(feed.fixtures[0], by="ops")
    # The feed can no longer overwrite an operator's result.
    upserts.upsert_fixtures([parse_fixture(feed.data.set_result(feed.items[0]["fixture"]["id"], 5, 0))])
    assert Fixture.objects.get(pk=feed.fixtures[0].pk).fulltime_home == 0


# --------------------------------------------------------------------------- real workers


@contextmanager
def fake_api_for_workers(data: FakeFootballData, redis_client) -> Iterator[None]:
    redis_client.delete(QUOTA_EXHAUSTED_KEY, MINUTE_WINDOW_KEY, *redis_client.keys("football:lock:*"))
    _fake, server = start_fake_api(data)
    with server:
        ApiFootballAccount.objects.update_or_create(
            pk=1, defaults={"base_url": server.url, "api_key": "test-key", "requests_per_minute": 1000}
        )
        yield


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_ingestion_and_settlement_run_on_the_prefork_football_worker_never_the_gevent_one(
    io_worker, cpu_worker, redis_client
):
    data = FakeFootballData.generate(6, [39], start_date=(timezone.now() + timedelta(days=1)).date())
    upserts.upsert_leagues([parse_league(item) for item in fake_feed.league_items([39])], activate=[39])
    with fake_api_for_workers(data, redis_client):
        enqueue(sync_fixtures)
        wait_until(lambda: SyncRun.objects.filter(kind=SyncKind.FIXTURES).exclude(status="running").exists(),
                   timeout=90.0, what="the fixtures sync")  # fmt: skip
    assert Fixture.objects.count() == 6
    fixture = Fixture.objects.first()
    upserts.upsert_fixtures([parse_fixture(data.set_result(fixture.api_id, 1, 0, 0, 0))])
    enqueue(settle_fixture, fixture.pk)
    wait_until(lambda: SyncRun.objects.filter(kind=SyncKind.SETTLE).exists(), timeout=90.0, what="the settlement")

    runs = list(SyncRun.objects.values_list("kind", "status", "worker"))
    assert {kind for kind, _, _ in runs} == {"fixtures", "settle"}
    assert all(status == SyncStatus.OK for _, status, _ in runs), runs
    for _, _, worker in runs:
        assert worker.startswith(cpu_worker.hostname_prefix), worker
        assert not worker.startswith(io_worker.hostname_prefix)


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_settlement_enqueued_repeatedly_on_two_prefork_workers_pays_each_ticket_once():
    from tests.support.workers import launch_worker, start_workers, stop_workers

    MetaAppConfig.objects.create(
        name="Test", phone_number_id="106540352242922", access_token="token", app_secret="secret", verify_token="v",
        graph_api_url="http://127.0.0.1:9",  # nothing listens: sends fail later, on the I/O queue; not our concern
    )  # fmt: skip
    feed = Feed()
    feed.offer(0, {M.MATCH_WINNER: [("Home", "2.10"), ("Draw", "3.40"), ("Away", "3.60")]})
    fixture = feed.fixtures[0]
    home, draw = outcome(fixture, M.MATCH_WINNER, "Home"), outcome(fixture, M.MATCH_WINNER, "Draw")
    wallets = [funded_wallet(f"2637700{n:05d}", "100.00") for n in range(100)]
    for wallet in wallets:
        for selection in (home, home, draw, home, home, draw):
            betting.place_ticket(wallet, [betting.Selection(selection.pk)], STAKE)
    feed.result(0, 2, 0, ht=(1, 0))

    purge_project_queues()
    workers = start_workers([launch_worker("celery_cpu_worker"), launch_worker("celery_cpu_worker")])
    try:
        for _ in range(4):
            enqueue(settle_fixture, fixture.pk)
        enqueue(settle_due)
        notifications = Message.objects.filter(direction=Direction.OUTBOUND)
        wait_until(lambda: SyncRun.objects.filter(kind=SyncKind.SETTLE).count() >= 4, timeout=90.0,
                   what="four settlement runs")
        wait_until(lambda: notifications.count() >= 600, timeout=90.0, what="a notification per ticket")
        time.sleep(2)  # anything still running (a duplicate would show up now)
    finally:
        stop_workers(workers)
        purge_project_queues()

    runs = list(
        SyncRun.objects.filter(kind=SyncKind.SETTLE).values_list("worker", "detail", "started_at", "finished_at")
    )
    assert all(worker.startswith("cpu-") for worker, *_ in runs), runs  # prefork football workers only
    assert len({detail["pid"] for _, detail, *_ in runs}) >= 2  # really ran in more than one process
    assert sum(len(detail["tickets"]) for _, detail, *_ in runs) == 600  # each ticket settled by exactly one run
    overlapping = sum(1 for a in runs for b in runs if a is not b and a[2] < b[3] and b[2] < a[3]) // 2
    print(f"\n[settle] {len(runs)} runs, {overlapping} overlapping pairs")
    assert LedgerEntry.objects.filter(kind=EntryKind.WIN).count() == 400
    per_ticket = LedgerEntry.objects.filter(ticket__isnull=False).values("ticket").annotate(n=Count("id"))
    assert not per_ticket.filter(n__gt=2).exists()  # a stake, and at most one credit
    for wallet in wallets:
        wallet.refresh_from_db()
        assert wallet.balance == D("100.00") - 6 * STAKE + 4 * D("21.00")
    assert wallet_discrepancies() == []
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 600  # one notification per ticket


@pytest.mark.django_db
def test_settlement_timestamps_are_recorded():
    feed = Feed()
    feed.offer(0, {M.BTTS: [("Yes", "1.80"), ("No", "1.95")]})
    wallet = funded_wallet()
    ticket = single(wallet, feed.fixtures[0], M.BTTS, "No")
    before = datetime.now(UTC)
    settling.settle_fixture(feed.result(0, 0, 0, ht=(0, 0)).pk, settled_by="cpu@test")
    ticket.refresh_from_db()
    assert ticket.settled_at >= before and ticket.settled_by == "cpu@test"
    assert FixtureStatus(Fixture.objects.get(pk=feed.fixtures[0].pk).status) is FixtureStatus.FINISHED


# --------------------------------------------------------------------------- operators in admin


@pytest.mark.django_db
def test_admin_enters_a_result_or_voids_and_settlement_is_queued_for_the_football_worker(
    admin_client, django_capture_on_commit_callbacks
):
    feed = Feed(2)
    for index in range(2):
        feed.offer(index, {M.MATCH_WINNER: [("Home", "2.10"), ("Draw", "3.40"), ("Away", "3.60")]})
    wallet = funded_wallet()
    home = single(wallet, feed.fixtures[0], M.MATCH_WINNER, "Home")
    draw = single(wallet, feed.fixtures[1], M.MATCH_WINNER, "Draw")
    url = "/admin/football_data_app/fixture/"

    refused = admin_client.post(
        url, {"action": "void", "_selected_action": [feed.fixtures[1].pk], "reason": ""}, follow=True
    )
    assert "Give a reason for voiding." in refused.content.decode()
    with django_capture_on_commit_callbacks() as queued:
        admin_client.post(url, {"action": "enter_result", "_selected_action": [feed.fixtures[0].pk],
                                "home": "3", "away": "1", "ht_home": "1", "ht_away": "1"})  # fmt: skip
        admin_client.post(url, {"action": "void", "_selected_action": [feed.fixtures[1].pk],
                                "reason": "pitch waterlogged, not rescheduled"})  # fmt: skip
    assert len(queued) == 2  # one settlement task per fixture, sent when the admin's transaction commits
    entered, voided = (Fixture.objects.get(pk=f.pk) for f in feed.fixtures)
    assert (entered.fulltime_home, entered.fulltime_away, entered.manual_result) == (3, 1, True)
    assert "entered by admin" in entered.settlement_note
    assert voided.status == FixtureStatus.CANCELLED and "pitch waterlogged" in voided.settlement_note
    for fixture in (entered, voided):  # what the queued tasks run on the worker
        settling.settle_fixture(fixture.pk)
    assert Ticket.objects.get(pk=home.pk).status == TicketStatus.WON
    assert Ticket.objects.get(pk=draw.pk).status == TicketStatus.VOID
    page = admin_client.get(f"{url}?settlement=settled").content.decode()
    assert f"{entered.home_team.name} v {entered.away_team.name}" in page
