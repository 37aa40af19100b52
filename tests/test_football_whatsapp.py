"""Betting over WhatsApp, end to end: signed webhook POSTs in, the real gevent I/O worker runs
the flows and sends the replies, the real prefork football worker ingests from the fake
API-Football and settles, and everything the user reads is checked at the fake Graph API.

The conversation: browse leagues -> days -> matches -> markets -> a selection, stake, confirm;
the ticket is stored and the wallet debited; the match finishes; the results sync (on the
football worker) settles it; the win notification reaches the user; the wallet shows it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from conversations.models import Contact, Direction, Message, MessageStatus
from devtools import fake_feed
from devtools import webhook_payloads as simulate
from devtools.fake_api_football import FakeFootballData, start_fake_api
from devtools.fake_graph import FakeGraphAPI, start_fake_graph
from flows import services as flow_services
from football_data_app.client import MINUTE_WINDOW_KEY, QUOTA_EXHAUSTED_KEY
from football_data_app.feed import parse_fixture
from football_data_app.models import (
    ApiFootballAccount,
    Fixture,
    League,
    LedgerEntry,
    Outcome,
    SyncKind,
    SyncRun,
    SyncStatus,
    Ticket,
)
from football_data_app.services import bot_flows, upserts
from football_data_app.services.wallet import adjust, deposit, wallet_for
from football_data_app.tasks import sync_fixtures, sync_leagues, sync_odds, sync_results
from meta_integration.models import MetaAppConfig
from meta_integration.outbound import TEXT_BODY_MAX
from tests.support.waiting import wait_until
from whatsappcrm_backend.celery import enqueue

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

APP_SECRET = "football-test-app-secret-0123456789"
WEBHOOK_URL = "/webhooks/meta/"


@pytest.fixture(scope="module")
def graph() -> Iterator[tuple[FakeGraphAPI, str]]:
    fake, server = start_fake_graph()
    yield fake, server.url
    server.stop()


@pytest.fixture
def world(graph, io_worker, cpu_worker, redis_client) -> Iterator[dict[str, Any]]:
    """The business number at the fake Graph API, the default + football flows, and
    API-Football (the fake server) synced by the football worker."""
    fake_graph, graph_url = graph
    fake_graph.reset()
    MetaAppConfig.objects.update_or_create(
        phone_number_id=simulate.DEFAULT_PHONE_NUMBER_ID,
        defaults={
            "name": "Football test business", "display_phone_number": simulate.DEFAULT_DISPLAY_PHONE_NUMBER,
            "access_token": "EAAG-football-test", "app_secret": APP_SECRET, "verify_token": "verify",
            "graph_api_url": graph_url, "send_rate_per_second": 1000.0,
        },
    )  # fmt: skip
    flow_services.import_flow_files(flow_services.default_flow_paths())
    bot_flows.import_football_flows()

    redis_client.delete(QUOTA_EXHAUSTED_KEY, MINUTE_WINDOW_KEY, *redis_client.keys("football:lock:*"))
    data = FakeFootballData.generate(60, [39, 140], start_date=(timezone.now() + timedelta(days=1)).date())
    fake_api, server = start_fake_api(data)
    with server:
        ApiFootballAccount.objects.update_or_create(
            pk=1, defaults={"base_url": server.url, "api_key": "test-key", "requests_per_minute": 1000}
        )
        run_on_football_worker(sync_leagues, SyncKind.LEAGUES)
        League.objects.filter(api_id__in=[39, 140]).update(active=True)  # the operator's choice
        run_on_football_worker(sync_fixtures, SyncKind.FIXTURES)
        run_on_football_worker(sync_odds, SyncKind.ODDS)
        yield {"graph": fake_graph, "api": fake_api, "data": data, "cpu": cpu_worker, "io": io_worker}


def run_on_football_worker(task: Any, kind: SyncKind) -> SyncRun:
    before = SyncRun.objects.filter(kind=kind).count()
    enqueue(task)
    wait_until(lambda: SyncRun.objects.filter(kind=kind).exclude(status="running").count() > before,
               what=f"the {kind} sync")  # fmt: skip
    run = SyncRun.objects.filter(kind=kind).order_by("-id").first()
    assert run.status == SyncStatus.OK, (run.status, run.message)
    return run


def graph_text(body: dict[str, Any]) -> str:
    if body["type"] == "text":
        return body["text"]["body"]
    return body["interactive"]["body"]["text"]


class Phone:
    """A WhatsApp user: posts what Meta would post, reads what Meta was asked to deliver."""

    def __init__(self, client: Client, graph: FakeGraphAPI) -> None:
        self.client = client
        self.graph = graph
        self.wa_id = "2637" + str(random.randint(10**7, 10**8 - 1))
        self.read = 0
        self.last: list[dict[str, Any]] = []

    def post(self, message: dict[str, Any]) -> None:
        body = simulate.webhook_body([message], profile_name="Tendai Moyo")
        raw, headers = simulate.signed_request(body, APP_SECRET)
        headers = {key: value for key, value in headers.items() if key.lower() != "content-type"}
        response = self.client.post(WEBHOOK_URL, data=raw, content_type="application/json", headers=headers)
        assert response.status_code == 200, response.content

    def settled(self) -> bool:
        messages = Message.objects.filter(contact__wa_id=self.wa_id)
        return messages.exists() and not (
            messages.filter(direction=Direction.INBOUND, processed_at__isnull=True).exists()
            or messages.filter(direction=Direction.OUTBOUND, status=MessageStatus.PENDING).exists()
        )

    def replies(self) -> list[str]:
        wait_until(self.settled, what=f"{self.wa_id}'s replies")
        failed = Message.objects.filter(contact__wa_id=self.wa_id, status=MessageStatus.FAILED)
        assert not failed.exists(), list(failed.values("error_code", "error_title", "error_details", "text"))
        new = self.graph.messages(to=self.wa_id)[self.read :]
        self.read += len(new)
        self.last = [record.body for record in new]
        return [graph_text(body) for body in self.last]

    def say(self, text: str) -> list[str]:
        self.post(simulate.text(text, wa_id=self.wa_id))
        return self.replies()

    def tap(self, button_id: str, title: str) -> list[str]:
        self.post(simulate.button_reply(button_id, title, wa_id=self.wa_id))
        return self.replies()

    def pick(self, row_id: str, title: str) -> list[str]:
        self.post(simulate.list_reply(row_id, title, wa_id=self.wa_id))
        return self.replies()

    def rows(self) -> list[dict[str, str]]:
        """The rows of the list message among the last replies."""
        [listing] = [body for body in self.last if body["type"] == "interactive" and "sections" in
                     body["interactive"]["action"]]  # fmt: skip
        rows = [row for section in listing["interactive"]["action"]["sections"] for row in section["rows"]]
        assert 1 <= len(rows) <= 10 and all(len(row["title"]) <= 24 for row in rows)
        assert all(len(row.get("description", "")) <= 72 for row in rows)
        return rows

    def buttons(self) -> list[str]:
        [prompt] = [body for body in self.last if body["type"] == "interactive" and "buttons" in
                    body["interactive"]["action"]]  # fmt: skip
        return [button["reply"]["id"] for button in prompt["interactive"]["action"]["buttons"]]


def test_browse_bet_settle_and_get_told_over_whatsapp(client, world):
    graph = world["graph"]
    phone = Phone(client, graph)
    contact = Contact.objects.create(wa_id=phone.wa_id, profile_name="Tendai Moyo")
    wallet = wallet_for(contact)
    deposit(wallet, Decimal("50.00"), reference="test:topup", created_by="ops")

    # Leagues (from the main menu's "fixtures" option), then the prompt that goes with the list.
    replies = phone.say("menu")
    assert "What can I help you with today?" in replies[0]
    replies = phone.pick("fixtures", "Fixtures & odds")
    assert replies == ["Which league would you like to bet on?", "👆 Tap *Leagues* above to choose a league."]
    leagues = phone.rows()
    assert [row["title"] for row in leagues] == ["La Liga", "Premier League"]
    premier = next(row for row in leagues if row["title"] == "Premier League")
    assert premier["description"] == "England · 30 matches"

    phone.pick(premier["id"], premier["title"])
    days = phone.rows()
    assert [day["description"] for day in days] == ["8 matches", "8 matches", "8 matches", "6 matches"]
    phone.pick(days[0]["id"], days[0]["title"])
    matches = phone.rows()
    assert len(matches) == 8
    first_kickoff = min(Fixture.objects.filter(league__api_id=39).values_list("kickoff", flat=True))
    fixture = Fixture.objects.filter(league__api_id=39, kickoff=first_kickoff).order_by("id").first()
    row = next(r for r in matches if r["id"] == f"fx:{fixture.pk}")
    assert row["title"].startswith(fixture.home_team.name[:10])
    assert " · 1 " in row["description"] and " X " in row["description"]

    phone.pick(row["id"], row["title"])
    markets = phone.rows()
    assert markets[0]["title"] == "Match result (1X2)"
    assert markets[-1]["id"] == "more"  # 12 markets: 9 and a "More" row
    phone.pick(markets[0]["id"], markets[0]["title"])
    selections = phone.rows()
    assert [s["title"] for s in selections][1] == "Draw"
    home = Outcome.objects.get(pk=int(next(s["id"] for s in selections if s["title"].startswith(
        fixture.home_team.name[:10]))[3:]))  # fmt: skip
    assert home.market.market_type == "match_winner" and home.name == "Home"

    # Add it to the ticket, stake 10.00, confirm.
    [ticket_text] = phone.pick(f"oc:{home.pk}", fixture.home_team.name)
    assert ticket_text.startswith("Added ✅\n🎫 *Your ticket* (single)")
    assert f"@ {home.odds:.2f}" in ticket_text and phone.buttons() == ["stake", "add", "clear"]
    [ask] = phone.tap("stake", "Place bet")
    assert "Your balance is USD 50.00" in ask
    [preview] = phone.say("10")
    payout = (Decimal("10.00") * home.odds).quantize(Decimal("0.01"))
    assert f"Potential payout: *USD {payout:,}*" in preview
    assert phone.buttons() == ["confirm", "change_stake", "cancel"]
    [placed] = phone.tap("confirm", "✅ Confirm")
    ticket = Ticket.objects.get(wallet=wallet)
    assert placed.startswith(f"✅ Ticket #{ticket.pk} placed!")
    assert "Your balance is now USD 40.00" in placed
    bet = ticket.bets.get()
    assert (ticket.stake, bet.outcome_id, bet.odds, ticket.status) == (Decimal("10.00"), home.pk, home.odds, "open")
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("40.00")
    assert LedgerEntry.objects.get(ticket=ticket).amount == Decimal("-10.00")

    # The match is played (the clock moves past kick-off) and the home side wins 2-0.
    Fixture.objects.filter(pk=fixture.pk).update(kickoff=timezone.now() - timedelta(hours=3))
    world["data"].set_result(fixture.api_id, 2, 0, 1, 0)
    notified = len(graph.messages(to=phone.wa_id))
    enqueue(sync_results)
    graph.wait_for_messages(notified + 1, to=phone.wa_id, timeout=60)
    [notification] = [graph_text(r.body) for r in graph.messages(to=phone.wa_id)[notified:]]
    expected = (Decimal("10.00") * home.odds).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    assert notification.startswith(f"🎉 Ticket #{ticket.pk} WON! USD {expected:,} has been added to your wallet.")
    assert f"{fixture.home_team.name} v {fixture.away_team.name} (2-0)" in notification
    ticket.refresh_from_db()
    assert (ticket.status, ticket.payout) == ("won", expected) and ticket.notified_at is not None
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("40.00") + expected

    # Results and settlement ran on the prefork football worker, never on the gevent one.
    for kind in (SyncKind.RESULTS, SyncKind.SETTLE, SyncKind.ODDS):
        workers = set(SyncRun.objects.filter(kind=kind).values_list("worker", flat=True))
        assert workers and all(w.startswith(world["cpu"].hostname_prefix) for w in workers), (kind, workers)
    # ... and the notification was sent by the I/O worker (through conversations).
    note = Message.objects.filter(contact=contact, direction=Direction.OUTBOUND).order_by("-id").first()
    assert note.text.startswith("🎉")
    wait_until(lambda: Message.objects.get(pk=note.pk).status == MessageStatus.SENT, what="the notification's status")

    # The wallet shows it.
    phone.read = len(graph.messages(to=phone.wa_id))
    [summary] = phone.say("wallet")
    assert f"Balance: *USD {wallet.balance:,}*" in summary and "No open tickets." in summary
    [history] = phone.tap("history", "History")
    assert f"Winnings (ticket #{ticket.pk}): +{expected:,}" in history
    assert f"Stake (ticket #{ticket.pk}): -10.00" in history


def _to_the_stake_question(phone: Phone) -> str:
    """Menu -> fixtures -> Premier League -> first day -> first match -> match result -> home
    win -> "Place bet": returns the stake question."""
    phone.say("menu")
    phone.pick("fixtures", "Fixtures & odds")
    premier = next(row for row in phone.rows() if row["title"] == "Premier League")
    phone.pick(premier["id"], premier["title"])
    day = phone.rows()[0]
    phone.pick(day["id"], day["title"])
    match = phone.rows()[0]
    phone.pick(match["id"], match["title"])
    market = phone.rows()[0]
    phone.pick(market["id"], market["title"])
    selection = phone.rows()[0]
    phone.pick(selection["id"], selection["title"])
    [ask] = phone.tap("stake", "Place bet")
    return ask


def test_a_stake_over_the_limit_or_the_balance_is_refused_when_typed_and_asked_again(client, world):
    phone = Phone(client, world["graph"])
    contact = Contact.objects.create(wa_id=phone.wa_id, profile_name="Tendai Moyo")
    wallet = wallet_for(contact)
    deposit(wallet, Decimal("50.00"), reference=f"test:topup:{phone.wa_id}", created_by="ops")
    ask = _to_the_stake_question(phone)
    assert ask.startswith("💰 How much would you like to stake? Your balance is USD 50.00.")

    # Above the stake limit: refused at once with the limit, and the same question again.
    assert phone.say("1500") == ["❌ The stake must be between USD 1.00 and USD 1,000.00.", ask]
    # Above the balance (but within the limit): refused with the balance, asked again.
    assert phone.say("60") == [
        "❌ Your balance is USD 50.00, not enough for a stake of USD 60.00. Please top up or lower the stake.", ask,
    ]
    state = contact.flow_states.get()  # the conversation goes on, at the stake question
    assert (state.flow.name, state.step) == ("fixtures", "ask_stake")
    assert not Ticket.objects.filter(wallet=wallet).exists()

    # A stake that fits goes on to the preview.
    [preview] = phone.say("20")
    assert "Stake: USD 20.00" in preview and phone.buttons() == ["confirm", "change_stake", "cancel"]

    # The balance drops between the preview and Confirm: the last guard refuses the ticket and
    # asks for the stake again (with the balance as it is now) instead of ending the conversation.
    adjust(wallet, Decimal("-45.00"), note="test: spent elsewhere", created_by="ops")
    refused, again = phone.tap("confirm", "✅ Confirm")
    assert refused == "❌ Your balance is USD 5.00, not enough for a stake of USD 20.00. Please top up or lower the stake."
    assert again.startswith("💰 How much would you like to stake? Your balance is USD 5.00.")
    assert not Ticket.objects.filter(wallet=wallet).exists()
    [preview] = phone.say("5")
    assert "Stake: USD 5.00" in preview
    [placed] = phone.tap("confirm", "✅ Confirm")
    assert placed.startswith("✅ Ticket #") and "Your balance is now USD 0.00" in placed
    assert Ticket.objects.get(wallet=wallet).stake == Decimal("5.00")


def test_the_full_fixture_list_arrives_as_ordered_parts(client, world):
    graph = world["graph"]
    # A busy week: 80 more Premier League matches, so the list is longer than one message.
    start = (timezone.now() + timedelta(days=1)).date()
    extra = fake_feed.fixture_items(80, [39], start_date=start, first_id=1_300_000, seed=5)
    upserts.upsert_fixtures([parse_fixture(item) for item in extra])
    phone = Phone(client, graph)
    phone.say("fixtures")
    parts = phone.tap("all_text", "All matches as text")
    assert len(parts) >= 2 and all(len(part) <= TEXT_BODY_MAX for part in parts)
    assert parts[0].startswith("📋 *All matches this week*")
    full = "\n".join(parts)
    week = Fixture.objects.filter(kickoff__lte=timezone.now() + timedelta(days=7)).select_related(
        "home_team", "away_team"
    )
    assert week.count() > 100
    for fixture in week:
        assert f"{fixture.kickoff:%a %d %b %H:%M} {fixture.home_team.name} v {fixture.away_team.name}" in full
    assert full.index("*La Liga*") < full.index("*Premier League*")  # leagues in display order
    outbound = Message.objects.filter(contact__wa_id=phone.wa_id, direction=Direction.OUTBOUND)
    group = outbound.order_by("-id").first().group_id
    stored = list(outbound.filter(group_id=group).order_by("part_index").values_list("part_index", "text"))
    assert [index for index, _ in stored] == list(range(len(parts)))
    assert [text for _, text in stored] == parts  # delivered in part order, none dropped
