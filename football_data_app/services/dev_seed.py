"""Development data for ``manage.py devstack_seed``: sample leagues, fixtures and odds from the
fake feed, the football flows, and a funded wallet for the simulator's demo contact.

Development only. This is the one module of the app's services that imports a fake
(``football_data_app.fake_feed``, for sample feed items) and the simulator's demo contact
(``meta_integration.simulate``); nothing in production imports this module (the
``devstack_seed`` command, refused outside DEBUG, does), and it moves to the development
package together with the fakes.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from conversations.models import Contact

from .. import fake_feed
from ..feed import parse_fixture, parse_league
from .bot_flows import import_football_flows
from .bulk import chunks
from .upserts import ingest_odds, upsert_fixtures, upsert_leagues
from .wallet import deposit, wallet_for

__all__ = ["DEMO_DEPOSIT_REFERENCE", "DEMO_LEAGUES", "seed_development_data"]

DEMO_LEAGUES = (39, 140, 135)
DEMO_DEPOSIT_REFERENCE = "seed:demo-wallet"


def seed_development_data(*, reset: bool = False) -> str:
    """Sample leagues, fixtures from tomorrow on, odds from 5 bookmakers (from ``fake_feed``),
    the football flows, and a funded wallet for the simulator's demo contact. Running it
    again the same day changes nothing; football flows edited in admin are kept unless
    ``reset``."""
    from meta_integration.simulate import DEFAULT_PROFILE_NAME, DEFAULT_WA_ID

    start = (timezone.now() + timedelta(days=1)).date()
    with transaction.atomic():
        upsert_leagues(
            [parse_league(item) for item in fake_feed.league_items(fake_feed.LEAGUES)], activate=DEMO_LEAGUES
        )
        items = fake_feed.fixture_items(48, DEMO_LEAGUES, start_date=start, seed=7)
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
