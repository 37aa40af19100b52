"""What the bot says about fixtures, selections, money and tickets: pure text from rows.

No queries of its own (callers pass rows with the relations they read already loaded), so the
flow actions, the settlement notification and betting's refusals word things the same way.
``money_text`` is the one way an amount is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from .markets import MarketType, NormalisedOutcome, outcome_label
from .models import CENT, Bet, Fixture, Outcome, Ticket, TicketStatus

__all__ = ["MARKET_TITLES", "amount_text", "fixture_name", "money_text", "selection_label", "ticket_settled_text"]


def amount_text(amount: Decimal | int) -> str:
    """'1,234.50': an amount to the cent, with thousands separators."""
    return f"{Decimal(amount).quantize(CENT):,}"


def money_text(amount: Decimal | int, currency: str) -> str:
    """'USD 1,234.50'."""
    return f"{currency} {amount_text(amount)}"


def fixture_name(fixture: Fixture) -> str:
    """'Arsenal v Chelsea' (home first)."""
    return f"{fixture.home_team.name} v {fixture.away_team.name}"


def selection_label(outcome: Outcome, fixture: Fixture | None = None) -> str:
    """'Over 2.5 goals', 'Arsenal to win', 'Chelsea +1.25 (Asian handicap)'."""
    market = MarketType(outcome.market.market_type)
    fixture = fixture or outcome.market.fixture
    normalised = NormalisedOutcome(outcome.name, outcome.line)
    teams = {"Home": fixture.home_team.name, "Away": fixture.away_team.name}
    if market in (MarketType.MATCH_WINNER, MarketType.DRAW_NO_BET):
        base = "Draw" if outcome.name == "Draw" else f"{teams[outcome.name]} to win"
        return base + (" (draw no bet)" if market is MarketType.DRAW_NO_BET else "")
    if market is MarketType.FIRST_HALF_WINNER:
        return "Draw at half-time" if outcome.name == "Draw" else f"{teams[outcome.name]} leading at half-time"
    if market is MarketType.DOUBLE_CHANCE:
        return {"1X": f"{teams['Home']} or draw", "X2": f"{teams['Away']} or draw", "12": "Either team to win"}.get(
            outcome.name, outcome.name
        )
    if market in (MarketType.OVER_UNDER, MarketType.FIRST_HALF_OVER_UNDER):
        suffix = " goals" + (" (1st half)" if market.is_first_half else "")
        return outcome_label(market, normalised) + suffix
    if market in (MarketType.BTTS, MarketType.FIRST_HALF_BTTS):
        half = " in the 1st half" if market.is_first_half else ""
        return f"Both teams to score{half}: {outcome.name}"
    if market is MarketType.ODD_EVEN:
        return f"{outcome.name} number of goals"
    if market is MarketType.CORRECT_SCORE:
        return f"Correct score {outcome.name.replace(':', '-')}"
    label = outcome_label(market, normalised)
    for side, team in teams.items():
        label = label.replace(side, team, 1) if label.startswith(side) else label
    what = "Asian handicap" if market is MarketType.ASIAN_HANDICAP else "handicap"
    return f"{label} ({what})"


def ticket_settled_text(ticket: Ticket, bets: Sequence[Bet]) -> str:
    """The WhatsApp notification for a settled ticket."""
    currency = ticket.wallet.currency
    payout = money_text(ticket.payout or Decimal(0), currency)
    headline = {
        TicketStatus.WON: f"🎉 Ticket #{ticket.pk} WON! {payout} has been added to your wallet.",
        TicketStatus.LOST: f"Ticket #{ticket.pk} lost this time. Better luck next time! ⚽",
        TicketStatus.VOID: f"Ticket #{ticket.pk} was void: your stake of {payout} has been refunded.",
        TicketStatus.PARTIAL: f"Ticket #{ticket.pk} settled: {payout} has been added to your wallet.",
    }.get(TicketStatus(ticket.status), f"Ticket #{ticket.pk} settled.")
    marks = {"win": "✅", "half_win": "✅½", "lose": "❌", "half_lose": "❌½", "push": "↩️", "void": "↩️"}
    lines = [headline, ""]
    for bet in bets:
        fixture = bet.fixture
        score = ""
        if fixture.fulltime_home is not None and fixture.fulltime_away is not None:
            score = f" ({fixture.fulltime_home}-{fixture.fulltime_away})"
        lines.append(f"{marks.get(bet.result, '⏳')} {fixture_name(fixture)}{score}: {bet.selection} @ {bet.odds:.2f}")
    lines += [
        "",
        f"Stake {money_text(ticket.stake, currency)} · Balance {money_text(ticket.wallet.balance, currency)}",
    ]
    return "\n".join(lines)


# What the bot calls each market, in its lists.
MARKET_TITLES = {
    MarketType.MATCH_WINNER: "Match result (1X2)",
    MarketType.DOUBLE_CHANCE: "Double chance",
    MarketType.DRAW_NO_BET: "Draw no bet",
    MarketType.OVER_UNDER: "Total goals",
    MarketType.BTTS: "Both teams to score",
    MarketType.ASIAN_HANDICAP: "Asian handicap",
    MarketType.EUROPEAN_HANDICAP: "Handicap (3-way)",
    MarketType.ODD_EVEN: "Odd/even goals",
    MarketType.CORRECT_SCORE: "Correct score",
    MarketType.FIRST_HALF_WINNER: "Half-time result",
    MarketType.FIRST_HALF_OVER_UNDER: "1st half goals",
    MarketType.FIRST_HALF_BTTS: "1st half both score",
}

