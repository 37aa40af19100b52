"""Betting: placing a ticket (a single or an accumulator) and debiting its stake.

Every check runs inside one transaction holding the wallet's row lock, and a refusal
(:class:`BetRefused`, worded for the bettor) is raised before anything is written. The
stake is parsed by :func:`parse_stake`, the one place that decides what a valid stake is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..feed import FixtureStatus
from ..models import CENT, Bet, EntryKind, Outcome, Ticket, TicketKind, Wallet
from ..texts import fixture_name, money_text, selection_label
from .wallet import Posting, WalletError, book, parse_amount

__all__ = ["BetRefused", "RefusalCode", "Selection", "check_stake", "parse_stake", "place_ticket"]

class RefusalCode(StrEnum):
    """Why a ticket was refused (the flow branches on some: ``odds_changed`` shows new prices)."""

    EMPTY = "empty"
    TOO_MANY_LEGS = "too_many_legs"
    SAME_FIXTURE = "same_fixture"
    INVALID_STAKE = "invalid_stake"
    UNKNOWN_SELECTION = "unknown_selection"
    FIXTURE_STARTED = "fixture_started"
    SUSPENDED = "suspended"
    NOT_OFFERED = "not_offered"
    ODDS_CHANGED = "odds_changed"
    INSUFFICIENT_FUNDS = "insufficient_funds"


class BetRefused(Exception):
    """A ticket that cannot be placed. ``message`` is written for the bettor; nothing was
    written to the database."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class Selection:
    """One leg to place: an outcome and, optionally, the odds the bettor was shown (a price
    that moved since refuses the ticket rather than silently changing the bet)."""

    outcome_id: int
    odds: Decimal | None = None


def parse_stake(value: Any, currency: str) -> Decimal:
    """A stake as the bettor typed it (``"12.50"``, ``10``): an exact amount to the cent
    between ``FOOTBALL_MIN_STAKE`` and ``FOOTBALL_MAX_STAKE``, else :class:`BetRefused`
    (``invalid_stake``) with a message for the bettor in ``currency``."""
    minimum = Decimal(settings.FOOTBALL_MIN_STAKE)
    maximum = Decimal(settings.FOOTBALL_MAX_STAKE)
    try:
        stake = parse_amount(value, "stake")
    except WalletError:
        raise BetRefused(RefusalCode.INVALID_STAKE, "Please send the stake as an amount, e.g. 5 or 12.50.") from None
    if not minimum <= stake <= maximum:
        raise BetRefused(
            RefusalCode.INVALID_STAKE,
            f"The stake must be between {money_text(minimum, currency)} and {money_text(maximum, currency)}.",
        )
    return stake


def _check_funds(wallet: Wallet, stake: Decimal) -> None:
    if wallet.balance < stake:
        raise BetRefused(
            RefusalCode.INSUFFICIENT_FUNDS,
            f"Your balance is {money_text(wallet.balance, wallet.currency)}, not enough for a stake of "
            f"{money_text(stake, wallet.currency)}. Please top up or lower the stake.",
        )


def check_stake(wallet: Wallet, stake: Any) -> Decimal:
    """The stake as the bettor typed it, checked when they type it: within the stake limits
    and covered by the balance now, else :class:`BetRefused` with the words ``place_ticket``
    would use. ``place_ticket`` checks both again under the wallet's lock (the balance may
    change between the two)."""
    amount = parse_stake(stake, wallet.currency)
    _check_funds(wallet, amount)
    return amount


def place_ticket(wallet: Wallet, selections: Sequence[Selection], stake: Any, *, now: datetime | None = None) -> Ticket:
    """Place a single (one selection) or an accumulator (several, multiplied).

    Everything is checked inside one transaction holding the wallet's row lock, and any
    refusal raises :class:`BetRefused` before anything is written: no ticket, no ledger
    entry, no balance change. The stake is debited by a ``stake:ticket:<id>`` entry.
    """
    now = now or timezone.now()
    max_legs = settings.FOOTBALL_MAX_LEGS
    if not selections:
        raise BetRefused(RefusalCode.EMPTY, "Your ticket is empty: pick at least one selection first.")
    if len(selections) > max_legs:
        raise BetRefused(RefusalCode.TOO_MANY_LEGS, f"A ticket can have at most {max_legs} selections.")
    stake = parse_stake(stake, wallet.currency)
    with transaction.atomic():
        locked = Wallet.objects.select_for_update().get(pk=wallet.pk)
        outcomes = Outcome.objects.select_related(
            "market__bookmaker", "market__fixture__home_team", "market__fixture__away_team"
        ).in_bulk([selection.outcome_id for selection in selections])
        legs: list[tuple[Outcome, str]] = []
        fixtures_seen: set[int] = set()
        for selection in selections:
            outcome = outcomes.get(selection.outcome_id)
            if outcome is None:
                raise BetRefused(
                    RefusalCode.UNKNOWN_SELECTION, "One of your selections no longer exists. Please pick again."
                )
            fixture = outcome.market.fixture
            label = selection_label(outcome, fixture)
            where = f"{label} ({fixture_name(fixture)})"
            if fixture.pk in fixtures_seen:
                raise BetRefused(
                    RefusalCode.SAME_FIXTURE,
                    f"A ticket can have one selection per match: {fixture_name(fixture)} is on it twice.",
                )
            fixtures_seen.add(fixture.pk)
            if fixture.status != FixtureStatus.SCHEDULED or fixture.kickoff <= now or outcome.result:
                raise BetRefused(
                    RefusalCode.FIXTURE_STARTED,
                    f"{fixture_name(fixture)} has already kicked off, so betting on it is closed.",
                )
            if outcome.market.is_live:
                raise BetRefused(RefusalCode.NOT_OFFERED, f"In-play betting is not available: {where}.")
            if not outcome.active:
                raise BetRefused(
                    RefusalCode.NOT_OFFERED, f"{where} is no longer offered. Please pick another selection."
                )
            if outcome.suspended or outcome.market.suspended:
                raise BetRefused(
                    RefusalCode.SUSPENDED,
                    f"Betting on {where} is suspended right now. Please try again later or pick another.",
                )
            if selection.odds is not None and Decimal(str(selection.odds)) != outcome.odds:
                raise BetRefused(
                    RefusalCode.ODDS_CHANGED,
                    f"The odds for {where} changed from {Decimal(str(selection.odds)):.2f} to {outcome.odds:.2f}. "
                    "Please confirm again at the new odds.",
                )
            legs.append((outcome, label))
        total_odds = math.prod((outcome.odds for outcome, _ in legs), start=Decimal(1))
        _check_funds(locked, stake)
        ticket = Ticket.objects.create(
            wallet=locked,
            kind=TicketKind.ACCUMULATOR if len(legs) > 1 else TicketKind.SINGLE,
            stake=stake,
            total_odds=total_odds.quantize(Decimal("0.001"), rounding=ROUND_DOWN),
            potential_payout=(stake * total_odds).quantize(CENT, rounding=ROUND_DOWN),
        )
        Bet.objects.bulk_create(
            [
                Bet(
                    ticket=ticket,
                    outcome=outcome,
                    fixture=outcome.market.fixture,
                    odds=outcome.odds,
                    selection=label[:128],
                )
                for outcome, label in legs
            ]
        )
        debit = Posting(
            locked.pk, EntryKind.STAKE, -stake, f"stake:ticket:{ticket.pk}", note=f"Ticket #{ticket.pk}",
            created_by="bettor", ticket=ticket,
        )  # fmt: skip
        book({locked.pk: locked}, [debit], now=now)
    wallet.balance = locked.balance
    return ticket
