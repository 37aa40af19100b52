"""The REST API tests' starting data: the API mounted on its own urlconf (this module, so
the tests do not depend on the project's urls.py), and a world made the way production makes
it (messages through the webhook parser and the inbound store, the bot's answers, shipped
flows, API-Football-shaped fixtures and odds, a ticket from ``place_ticket``, a user and a
token per role). The ``base_world`` and ``world`` fixtures over it are in conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.urls import include, path
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.models import Campaign, Segment
from conversations.models import Contact, Label, Message
from devtools import fake_feed
from devtools import webhook_payloads as simulate
from flows import services as flow_services
from flows.models import ContactFlowState, Flow
from football_data_app.feed import parse_fixture, parse_league
from football_data_app.models import Outcome, Ticket, Wallet
from football_data_app.services import betting, upserts
from football_data_app.services.wallet import deposit, wallet_for
from meta_integration.models import MessageTemplate, MetaAppConfig
from meta_integration.payloads import parse_webhook
from whatsappcrm_backend.api import AGENT_GROUP, READ_ONLY_GROUP, Role, ensure_role_groups

URLCONF = __name__
urlpatterns = [path("api/", include("whatsappcrm_backend.api"))]

ANONYMOUS = "anonymous"


@dataclass
class World:
    config: MetaAppConfig
    contact: Contact  # chatting with the bot, in main_menu
    waiting: Contact  # asked for a human
    state: ContactFlowState
    flow: Flow
    wallet: Wallet
    ticket: Ticket
    label: Label
    campaigns: dict[str, Campaign] = field(default_factory=dict)  # by state: draft, running, paused
    users: dict[Any, User] = field(default_factory=dict)
    tokens: dict[Any, str] = field(default_factory=dict)

    def client(self, role: Any) -> APIClient:
        client = APIClient()
        if role != ANONYMOUS:
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[role]}")
        return client


def receive(config: MetaAppConfig, wa_id: str, text: str, name: str = "Tendai Moyo") -> Message:
    """A text from a WhatsApp user through the webhook parser and the inbound store, then the bot."""
    body = simulate.webhook_body(
        [simulate.text(text, wa_id=wa_id)],
        phone_number_id=config.phone_number_id,
        profile_name=name,
    )
    from conversations.services.inbound import store_messages

    stored = store_messages(parse_webhook(body).messages, config)
    flow_services.process_inbound(stored[-1].id)
    return Message.objects.get(pk=stored[-1].id)


def make_users() -> tuple[dict[Any, User], dict[Any, str]]:
    ensure_role_groups()
    users = {  # no passwords: tokens and force_login, so no slow password hashing
        Role.NONE: User.objects.create_user("nobody"),
        Role.READ_ONLY: User.objects.create_user("rudo.readonly"),
        Role.AGENT: User.objects.create_user("tariro.agent"),
        Role.ADMIN: User.objects.create_user("farai.admin", is_staff=True),
    }
    users[Role.READ_ONLY].groups.add(Group.objects.get(name=READ_ONLY_GROUP))
    users[Role.AGENT].groups.add(Group.objects.get(name=AGENT_GROUP))
    tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
    return users, tokens


def build_world() -> dict[str, Any]:
    config = MetaAppConfig.objects.create(
        name="Main number", phone_number_id=simulate.DEFAULT_PHONE_NUMBER_ID, access_token="token",
        app_secret="secret", verify_token="verify",
    )  # fmt: skip
    flow_services.import_flow_files(flow_services.default_flow_paths())
    receive(config, "263771234567", "hi")
    contact = Contact.objects.get(wa_id="263771234567")
    receive(config, "263772000111", "hello", name="Chipo Banda")
    waiting = Contact.objects.get(wa_id="263772000111")
    flow_services.start_handover(waiting.pk)

    upserts.upsert_leagues([parse_league(item) for item in fake_feed.league_items([39])], activate=[39])
    items = fake_feed.fixture_items(2, [39], start_date=(timezone.now() + timedelta(days=2)).date(), seed=3)
    upserts.upsert_fixtures([parse_fixture(item) for item in items])
    upserts.ingest_odds([fake_feed.odds_item(item, bookmakers=1, seed=3) for item in items])
    wallet = wallet_for(contact)
    deposit(wallet, Decimal("100.00"), reference="test:seed-deposit", note="Cash at the shop")
    outcome = Outcome.objects.filter(market__fixture__api_id=items[0]["fixture"]["id"], active=True).first()
    ticket = betting.place_ticket(wallet, [betting.Selection(outcome.pk)], Decimal("10.00"))
    label = Label.objects.create(name="weekend-bettor", color="#16a34a")
    users, tokens = make_users()
    campaigns = _campaigns(config)
    return {
        "ids": {
            "config": config.pk, "contact": contact.pk, "waiting": waiting.pk,
            "state": ContactFlowState.objects.get(contact=contact).pk, "flow": Flow.objects.get(name="main_menu").pk,
            "wallet": wallet.pk, "ticket": ticket.pk, "label": label.pk, "campaigns": campaigns,
        },
        "users": {role: user.pk for role, user in users.items()},
        "tokens": tokens,
    }  # fmt: skip


def _campaigns(config: MetaAppConfig) -> dict[str, int]:
    """A campaign in each state the campaign actions start from (everyone is its segment)."""
    template = MessageTemplate.objects.create(
        app_config=config, name="weekend_fixtures_campaign", language="en_US", status="APPROVED",
        components=[{"type": "BODY", "text": "Hi {{1}}, the weekend fixtures are out."}],
    )
    segment = Segment.objects.create(name="everyone")
    return {
        state: Campaign.objects.create(
            name=f"Fixtures ({state})", app_config=config, template=template, segment=segment, state=state,
            variables={"body.1": {"field": "name", "fallback": "there"}},
        ).pk
        for state in ("draft", "running", "paused")
    }


def world_from(base: dict[str, Any]) -> World:
    """Fresh objects for a test from ``build_world``'s ids (never instances another test changed)."""
    ids = base["ids"]
    return World(
        config=MetaAppConfig.objects.get(pk=ids["config"]),
        contact=Contact.objects.get(pk=ids["contact"]),
        waiting=Contact.objects.get(pk=ids["waiting"]),
        state=ContactFlowState.objects.get(pk=ids["state"]),
        flow=Flow.objects.get(pk=ids["flow"]),
        wallet=Wallet.objects.get(pk=ids["wallet"]),
        ticket=Ticket.objects.get(pk=ids["ticket"]),
        label=Label.objects.get(pk=ids["label"]),
        campaigns={state: Campaign.objects.get(pk=pk) for state, pk in ids["campaigns"].items()},
        users={role: User.objects.get(pk=pk) for role, pk in base["users"].items()},
        tokens=dict(base["tokens"]),
    )
