"""Development data for ``manage.py devstack_seed``: the admin login, the shipped flows, and
football samples (leagues, fixtures and odds from the fake feed, the football flows, a funded
wallet for the simulator's demo contact).

Each part creates what is missing and never overwrites what exists, so what an operator
changed in admin survives every ``./scripts/run``; ``reset`` puts the shipped flows back.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from conversations.models import Contact
from devtools import fake_feed
from devtools.webhook_payloads import DEFAULT_PROFILE_NAME, DEFAULT_WA_ID
from flows.services.documents import default_flow_paths, import_flow_files
from football_data_app.feed import parse_fixture, parse_league
from football_data_app.services.bot_flows import import_football_flows
from football_data_app.services.bulk import chunks
from football_data_app.services.upserts import ingest_odds, upsert_fixtures, upsert_leagues
from football_data_app.services.wallet import deposit, wallet_for

__all__ = [
    "DEMO_DEPOSIT_REFERENCE",
    "DEMO_FIXTURES",
    "DEMO_LEAGUES",
    "SEEDERS",
    "demo_fixture_items",
    "seed_flows",
    "seed_football",
]

DEMO_LEAGUES = (39, 140, 135)
DEMO_DEPOSIT_REFERENCE = "seed:demo-wallet"
DEMO_FIXTURES = 48  # 16 a league: nearly two matchdays of the Premier League, three of the others


def seed_flows(*, reset: bool = False) -> str:
    """Create the shipped flows (``flows/default_flows/*.json``) that are missing.

    A flow that exists is left as it is, so an operator's edits in admin survive every
    restart of the dev stack; ``reset`` puts the shipped version back (the edits are lost).
    """
    return str(import_flow_files(default_flow_paths(), keep_existing=not reset))


def demo_fixture_items(start: date) -> list[dict]:
    """The demo's fixtures from ``start``: the first matchdays of each demo league's season, as
    a real league could play them (each team once per matchday, one matchday per weekend)."""
    return fake_feed.fixture_items(DEMO_FIXTURES, DEMO_LEAGUES, start_date=start, seed=7, schedule="season")


def seed_football(*, reset: bool = False) -> str:
    """Sample leagues, fixtures from tomorrow on, odds from 5 bookmakers (from ``fake_feed``),
    the football flows, and a funded wallet for the simulator's demo contact. Running it
    again the same day changes nothing; football flows edited in admin are kept unless
    ``reset``."""
    start = (timezone.now() + timedelta(days=1)).date()
    with transaction.atomic():
        upsert_leagues(
            [parse_league(item) for item in fake_feed.league_items(fake_feed.LEAGUES)], activate=DEMO_LEAGUES
        )
        items = demo_fixture_items(start)
        upsert_fixtures([parse_fixture(item) for item in items])
        for page in chunks(items, 10):
            ingest_odds([fake_feed.odds_item(item, seed=7) for item in page])
        contact, _ = Contact.objects.get_or_create(wa_id=DEFAULT_WA_ID, defaults={"profile_name": DEFAULT_PROFILE_NAME})
        wallet = wallet_for(contact)
        deposit(wallet, Decimal("100.00"), reference=DEMO_DEPOSIT_REFERENCE, note="Development seed",
                created_by="devstack_seed")  # fmt: skip
    try:
        flows = import_football_flows(keep_existing=not reset)
    except ImportError:  # the flows app is not installed
        flows = "flows app missing"
    return f"{len(items)} fixtures with odds in {len(DEMO_LEAGUES)} leagues; demo wallet {wallet.balance}; {flows}"


# What ``devstack_seed`` runs, in order, by the name it reports each under.
SEEDERS = (("flows", seed_flows), ("football", seed_football))
