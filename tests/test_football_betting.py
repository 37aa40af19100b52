"""Wallets and tickets: the ledger is the truth, placement refuses with a message a bettor can
act on and writes nothing, and no path makes a balance negative."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from conversations.models import Contact
from devtools import fake_feed
from flows.engine_types import ActionCall, ContactView
from football_data_app import actions
from football_data_app.feed import parse_fixture, parse_league
from football_data_app.markets import PREMATCH_BET_IDS, PREMATCH_BET_NAMES, MarketType
from football_data_app.models import Bet, EntryKind, Fixture, LedgerEntry, Outcome, Ticket, Wallet
from football_data_app.services import betting, upserts
from football_data_app.services.betting import BetRefused, RefusalCode, Selection
from football_data_app.services.wallet import (
    InsufficientFunds,
    Posting,
    WalletError,
    adjust,
    book,
    deposit,
    ledger_total,
    post_entry,
    wallet_discrepancies,
    wallet_for,
)

D = Decimal
M = MarketType


def make_fixtures(n: int = 3) -> list[Fixture]:
    """Fixtures two days out with 1X2 and totals priced by one bookmaker, via the real ingestion."""
    upserts.upsert_leagues([parse_league(item) for item in fake_feed.league_items([39])], activate=[39])
    items = fake_feed.fixture_items(n, [39], start_date=(timezone.now() + timedelta(days=2)).date())
    upserts.upsert_fixtures([parse_fixture(item) for item in items])
    odds = []
    for item in items:
        priced = fake_feed.odds_item(item, bookmakers=1)
        priced["bookmakers"][0]["bets"] = [
            {"id": PREMATCH_BET_IDS[M.MATCH_WINNER], "name": PREMATCH_BET_NAMES[M.MATCH_WINNER],
             "values": [{"value": "Home", "odd": "2.10"}, {"value": "Draw", "odd": "3.40"},
                        {"value": "Away", "odd": "3.60"}]},
            {"id": PREMATCH_BET_IDS[M.OVER_UNDER], "name": PREMATCH_BET_NAMES[M.OVER_UNDER],
             "values": [{"value": "Over 2.5", "odd": "1.95"}, {"value": "Under 2.5", "odd": "1.85"}]},
        ]  # fmt: skip
        odds.append(priced)
    upserts.ingest_odds(odds)
    return [Fixture.objects.get(api_id=item["fixture"]["id"]) for item in items]


def pick(fixture: Fixture, key: str = "Home", market: MarketType = M.MATCH_WINNER) -> Outcome:
    return Outcome.objects.get(market__fixture=fixture, market__market_type=market, key=key)


def wallet(amount: str = "0.00", wa_id: str = "263771110000") -> Wallet:
    w = wallet_for(Contact.objects.create(wa_id=wa_id, profile_name="Rudo"))
    if D(amount):
        deposit(w, D(amount), reference=f"deposit:{wa_id}")
    return w


def ledger_state(w: Wallet) -> tuple:
    w.refresh_from_db()
    return (
        w.balance,
        list(LedgerEntry.objects.filter(wallet=w).values_list("reference", "amount")),
        Ticket.objects.count(),
    )


# --------------------------------------------------------------------------- placing tickets


@pytest.mark.django_db
def test_a_single_debits_the_stake_through_the_ledger_and_stores_its_odds():
    fixture = make_fixtures(1)[0]
    w = wallet("25.00")
    home = pick(fixture)
    ticket = betting.place_ticket(w, [Selection(home.pk, odds=D("2.10"))], "10.50")
    assert (ticket.kind, ticket.status, ticket.stake, ticket.total_odds) == ("single", "open", D("10.50"), D("2.100"))
    assert ticket.potential_payout == D("22.05")
    bet = ticket.bets.get()
    assert (bet.outcome_id, bet.fixture_id, bet.odds) == (home.pk, fixture.pk, D("2.10"))
    assert bet.selection == f"{fixture.home_team.name} to win"
    w.refresh_from_db()
    assert w.balance == D("14.50")
    stake = LedgerEntry.objects.get(ticket=ticket)
    assert (stake.kind, stake.amount, stake.balance_after, stake.reference) == (
        "stake", D("-10.50"), D("14.50"), f"stake:ticket:{ticket.pk}",
    )  # fmt: skip
    assert ledger_total(w) == w.balance


@pytest.mark.django_db
def test_an_accumulator_multiplies_the_odds_and_refuses_two_legs_on_one_match():
    a, b, _ = make_fixtures()
    w = wallet("100.00")
    ticket = betting.place_ticket(w, [Selection(pick(a).pk), Selection(pick(b, "Over 2.5", M.OVER_UNDER).pk)], 4)
    assert (ticket.kind, ticket.total_odds, ticket.potential_payout) == ("accumulator", D("4.095"), D("16.38"))
    before = ledger_state(w)
    with pytest.raises(BetRefused) as refused:
        betting.place_ticket(w, [Selection(pick(a).pk), Selection(pick(a, "Over 2.5", M.OVER_UNDER).pk)], 4)
    assert refused.value.code is RefusalCode.SAME_FIXTURE
    assert f"{a.home_team.name} v {a.away_team.name}" in refused.value.message
    assert ledger_state(w) == before


@pytest.mark.django_db
def test_insufficient_funds_is_refused_with_the_balance_and_changes_nothing():
    fixture = make_fixtures(1)[0]
    w = wallet("5.00")
    before = ledger_state(w)
    with pytest.raises(BetRefused) as refused:
        betting.place_ticket(w, [Selection(pick(fixture).pk)], D("10.00"))
    assert refused.value.code is RefusalCode.INSUFFICIENT_FUNDS
    assert refused.value.message == (
        "Your balance is USD 5.00, not enough for a stake of USD 10.00. Please top up or lower the stake."
    )
    assert ledger_state(w) == before and not Bet.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["kicked_off", "live", "finished"])
def test_a_fixture_that_has_started_is_refused(how):
    fixture = make_fixtures(1)[0]
    w = wallet("50.00")
    home = pick(fixture)
    if how == "kicked_off":  # the clock passed kick-off before the feed said so
        Fixture.objects.filter(pk=fixture.pk).update(kickoff=timezone.now() - timedelta(minutes=1))
    else:
        Fixture.objects.filter(pk=fixture.pk).update(status="live" if how == "live" else "finished")
    before = ledger_state(w)
    with pytest.raises(BetRefused) as refused:
        betting.place_ticket(w, [Selection(home.pk)], 5)
    assert refused.value.code is RefusalCode.FIXTURE_STARTED
    assert refused.value.message == (
        f"{fixture.home_team.name} v {fixture.away_team.name} has already kicked off, so betting on it is closed."
    )
    assert ledger_state(w) == before


@pytest.mark.django_db
def test_a_suspended_or_withdrawn_selection_is_refused():
    fixture = make_fixtures(1)[0]
    w = wallet("50.00")
    home, over = pick(fixture), pick(fixture, "Over 2.5", M.OVER_UNDER)
    Outcome.objects.filter(pk=home.pk).update(suspended=True)
    Outcome.objects.filter(pk=over.pk).update(active=False)  # an odds refresh stopped offering it
    before = ledger_state(w)
    with pytest.raises(BetRefused) as suspended:
        betting.place_ticket(w, [Selection(home.pk)], 5)
    assert suspended.value.code is RefusalCode.SUSPENDED
    assert suspended.value.message.startswith(f"Betting on {fixture.home_team.name} to win (")
    assert "is suspended right now" in suspended.value.message
    with pytest.raises(BetRefused) as withdrawn:
        betting.place_ticket(w, [Selection(over.pk)], 5)
    assert withdrawn.value.code is RefusalCode.NOT_OFFERED
    assert "Over 2.5 goals" in withdrawn.value.message and "no longer offered" in withdrawn.value.message
    assert ledger_state(w) == before


@pytest.mark.django_db
def test_odds_that_moved_since_the_bettor_saw_them_are_refused_with_the_new_price():
    fixture = make_fixtures(1)[0]
    w = wallet("50.00")
    home = pick(fixture)
    Outcome.objects.filter(pk=home.pk).update(odds=D("1.90"))
    before = ledger_state(w)
    with pytest.raises(BetRefused) as refused:
        betting.place_ticket(w, [Selection(home.pk, odds=D("2.10"))], 5)
    assert refused.value.code is RefusalCode.ODDS_CHANGED
    assert "changed from 2.10 to 1.90" in refused.value.message
    assert ledger_state(w) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stake", "code"),
    [
        ("0", RefusalCode.INVALID_STAKE),
        ("-5", RefusalCode.INVALID_STAKE),
        ("0.50", RefusalCode.INVALID_STAKE),  # below the minimum stake
        ("1000000", RefusalCode.INVALID_STAKE),  # above the maximum stake
        ("2.555", RefusalCode.INVALID_STAKE),  # not money
        ("ten", RefusalCode.INVALID_STAKE),
        (2.5, RefusalCode.INVALID_STAKE),  # a float is never money
    ],
)
def test_bad_stakes_are_refused(stake, code):
    fixture, w = make_fixtures(1)[0], wallet("50.00")
    with pytest.raises(BetRefused) as refused:
        betting.place_ticket(w, [Selection(pick(fixture).pk)], stake)
    assert refused.value.code is code
    assert "stake" in refused.value.message
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_empty_oversized_and_unknown_tickets_are_refused():
    fixture = make_fixtures(1)[0]
    w = wallet("50.00")
    with pytest.raises(BetRefused) as empty:
        betting.place_ticket(w, [], 5)
    assert empty.value.code is RefusalCode.EMPTY
    with pytest.raises(BetRefused) as too_many:
        betting.place_ticket(w, [Selection(pick(fixture).pk)] * 11, 5)
    assert too_many.value.code is RefusalCode.TOO_MANY_LEGS
    with pytest.raises(BetRefused) as unknown:
        betting.place_ticket(w, [Selection(999_999)], 5)
    assert unknown.value.code is RefusalCode.UNKNOWN_SELECTION


@pytest.mark.django_db(transaction=True)
def test_concurrent_tickets_can_never_spend_the_same_money_twice():
    fixtures = make_fixtures(3)
    w = wallet("25.00")
    outcomes = [pick(f) for f in fixtures]
    results: list[str] = []
    barrier = threading.Barrier(3)

    def bet(outcome: Outcome) -> None:
        try:
            barrier.wait()
            betting.place_ticket(Wallet.objects.get(pk=w.pk), [Selection(outcome.pk)], D("10.00"))
            results.append("placed")
        except BetRefused as exc:
            results.append(exc.code)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=bet, args=(outcome,)) for outcome in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["insufficient_funds", "placed", "placed"]
    w.refresh_from_db()
    assert w.balance == D("5.00") == ledger_total(w)


# --------------------------------------------------------------------------- the ledger


@pytest.mark.django_db
def test_deposits_are_idempotent_by_reference_and_a_reused_reference_is_refused():
    w = wallet()
    first = deposit(w, D("20.00"), reference="mpesa:QK81X", created_by="ops")
    again = deposit(w, D("20.00"), reference="mpesa:QK81X", created_by="ops")
    assert again.pk == first.pk
    w.refresh_from_db()
    assert w.balance == D("20.00")
    with pytest.raises(WalletError, match="already used"):
        deposit(w, D("25.00"), reference="mpesa:QK81X")
    assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db
def test_adjustments_need_a_reason_and_can_never_make_a_balance_negative():
    w = wallet("10.00")
    with pytest.raises(WalletError, match="reason"):
        adjust(w, D("-2.00"), note=" ", created_by="ops")
    with pytest.raises(InsufficientFunds, match="below zero"):
        adjust(w, D("-10.01"), note="chargeback", created_by="ops")
    entry = adjust(w, D("-10.00"), note="chargeback", created_by="ops")
    assert (entry.kind, entry.amount, entry.balance_after, entry.created_by) == ("adjustment", D("-10.00"), 0, "ops")
    assert wallet_discrepancies() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "amount", "message"),
    [
        ("deposit", 10.5, "not float"),
        ("deposit", "1.005", "more than 2 decimal places"),
        ("deposit", "-5", "must be positive"),
        ("deposit", "0", "must not be zero"),
        ("stake", "5", "negative amount"),
        ("win", "abc", "not a number"),
        ("deposit", "NaN", "finite"),
    ],
)
def test_bad_ledger_entries_are_refused_naming_the_field(kind, amount, message):
    w = wallet()
    with pytest.raises(WalletError, match=message) as error:
        post_entry(w, kind=kind, amount=amount, reference="ref:1")
    assert str(error.value).startswith("amount:")
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_the_database_itself_refuses_a_negative_balance_and_a_duplicate_reference():
    w = wallet("5.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(pk=w.pk).update(balance=D("-0.01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            wallet=w, kind="deposit", amount=D("1.00"), balance_after=D("6.00"), reference="deposit:263771110000"
        )


@pytest.mark.django_db
def test_admin_deposits_and_adjusts_only_through_the_ledger_and_a_resubmitted_form_books_once(admin_client):
    w = wallet()
    url = "/admin/football_data_app/wallet/"
    form = {"action": "deposit", "_selected_action": [w.pk], "amount": "25.00", "note": "cash at the shop",
            "reference": "form-7f3a"}  # fmt: skip
    admin_client.post(url, form)
    admin_client.post(url, form)  # the operator pressed the button twice
    w.refresh_from_db()
    assert w.balance == D("25.00")
    entry = LedgerEntry.objects.get(wallet=w)
    assert (entry.kind, entry.created_by, entry.note) == ("deposit", "admin", "cash at the shop")
    refused = admin_client.post(
        url, {**form, "action": "adjust", "amount": "-30.00", "note": "chargeback", "reference": "form-8b1c"},
        follow=True,
    )  # fmt: skip
    assert "below zero" in refused.content.decode()
    admin_client.post(url, {**form, "action": "adjust", "amount": "-5.00", "note": "fee", "reference": "form-9d2e"})
    w.refresh_from_db()
    assert w.balance == D("20.00") == ledger_total(w)
    page = admin_client.get(f"{url}{w.pk}/change/").content.decode()
    assert "matches the ledger" in page


@pytest.mark.django_db
def test_book_writes_running_balances_for_several_wallets_and_refuses_an_overdraft_before_writing():
    a, b = wallet("10.00", "263771110001"), wallet("5.00", "263771110002")
    locked = {w.pk: w for w in Wallet.objects.select_for_update().filter(pk__in=[a.pk, b.pk])}
    entries = book(locked, [
        Posting(a.pk, EntryKind.ADJUSTMENT, D("-4.00"), "test:1", note="fee", created_by="ops"),
        Posting(b.pk, EntryKind.ADJUSTMENT, D("-5.00"), "test:2", note="fee", created_by="ops"),
        Posting(a.pk, EntryKind.DEPOSIT, D("1.50"), "test:3"),
    ])  # fmt: skip
    assert [(e.reference, e.balance_after) for e in entries] == [
        ("test:1", D("6.00")), ("test:2", D("0.00")), ("test:3", D("7.50")),
    ]  # fmt: skip
    assert all(entry.pk for entry in entries)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.balance, b.balance) == (D("7.50"), D("0.00"))
    assert wallet_discrepancies() == []

    # The second posting would overdraw: nothing is written, not even the first (no savepoint here).
    before = ledger_state(a)
    locked = {a.pk: Wallet.objects.select_for_update().get(pk=a.pk)}
    with pytest.raises(InsufficientFunds, match="below zero"):
        book(locked, [
            Posting(a.pk, EntryKind.DEPOSIT, D("1.00"), "test:4"),
            Posting(a.pk, EntryKind.ADJUSTMENT, D("-9.00"), "test:5", note="chargeback"),
        ])  # fmt: skip
    assert ledger_state(a) == before and locked[a.pk].balance == D("7.50")


def slip_call(w: Wallet, outcome: Outcome, stake: Any) -> ActionCall:
    leg = {"outcome": outcome.pk, "fixture": outcome.market.fixture_id, "odds": str(outcome.odds), "label": "Home",
           "match": "A v B"}  # fmt: skip
    return ActionCall("football.preview_ticket", {"slip": [leg], "stake": stake}, {}, ContactView(w.contact.wa_id))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stake", "message"),
    [
        ("2.555", "Please send the stake as an amount, e.g. 5 or 12.50."),
        ("5000", "The stake must be between USD 1.00 and USD 1,000.00."),
        (None, "Please send the stake as an amount, e.g. 5 or 12.50."),
    ],
)
def test_the_preview_refuses_a_stake_with_the_words_placing_would_use(stake, message):
    fixture, w = make_fixtures(1)[0], wallet("50.00")
    call = slip_call(w, pick(fixture), stake)
    preview = actions.preview_ticket(call)
    assert preview.variables == {"nothing": True}
    assert [reply["body"] for reply in preview.replies] == [f"❌ {message}"]
    placed = actions.place_ticket(call)
    assert placed.variables == {"placed": False, "refusal": "invalid_stake"}
    assert [reply["body"] for reply in placed.replies] == [f"❌ {message}"]
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_the_preview_shows_the_stake_placing_books():
    fixture, w = make_fixtures(1)[0], wallet("50.00")
    call = slip_call(w, pick(fixture), "12.5")
    preview = actions.preview_ticket(call)
    assert "Stake: USD 12.50" in preview.variables["preview_text"]
    assert "Your balance: USD 50.00" in preview.variables["preview_text"]
    placed = actions.place_ticket(call)
    assert placed.variables["placed"] is True
    assert Ticket.objects.get().stake == D("12.50")
    assert "Your balance is now USD 37.50" in placed.replies[0]["body"]
