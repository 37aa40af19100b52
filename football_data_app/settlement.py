"""Settlement maths: a final score settles a selection, selections settle a ticket.

All money is :class:`~decimal.Decimal`; floats are refused because 0.1 + 0.2 is not 0.3.

Rules (the usual bookmaker rules, stated so they can be checked):

* Markets settle on the **90-minute score** (plus stoppage time); extra time and penalties
  never count. API-Football's ``score.fulltime`` is that score, also for AET/PEN fixtures.
  First-half markets settle on the half-time score.
* Over/under and Asian handicap are "Asian" lines: a whole line that lands exactly (2 goals
  on 2.0, a one-goal win at -1) is a PUSH (stake back). A quarter line (2.25, -0.75) is half
  the stake on each neighbouring line (2.0 and 2.5; -0.5 and -1.0), so it can HALF_WIN or
  HALF_LOSE.
* Handicaps are given as the **home** team's line (``markets`` module docstring); the Away
  selection wins when the home side fails to cover it.
* European handicap is three-way on the adjusted score: at Home -1, a home win by 2+ is
  "Home", by exactly 1 is "Draw", anything else "Away". No pushes.
* Draw no bet: a draw is a PUSH. Odd/even counts total goals (0 is even).
* A void fixture (postponed, cancelled, abandoned) or a result decided off the pitch
  (awarded, walkover) voids the selection: it counts as odds 1.00.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .feed import FixtureRecord
from .markets import MarketType

__all__ = [
    "MissingScoreError",
    "OutcomeResult",
    "Score",
    "TicketSettlement",
    "TicketStatus",
    "bet_factor",
    "score_from_fixture",
    "settle_fixture_outcome",
    "settle_outcome",
    "ticket_payout",
]


class OutcomeResult(enum.StrEnum):
    WIN = "win"
    LOSE = "lose"
    PUSH = "push"
    HALF_WIN = "half_win"
    HALF_LOSE = "half_lose"
    VOID = "void"


class MissingScoreError(ValueError):
    """The score needed to settle this market is not known (e.g. no half-time score)."""


def _goals(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Score.{field} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"Score.{field} must not be negative, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Score:
    """The 90-minute score and, when known, the half-time score."""

    home: int
    away: int
    ht_home: int | None = None
    ht_away: int | None = None

    def __post_init__(self) -> None:
        _goals(self.home, "home")
        _goals(self.away, "away")
        if (self.ht_home is None) != (self.ht_away is None):
            raise ValueError("Score: give both half-time goals or neither")
        if self.ht_home is not None:
            _goals(self.ht_home, "ht_home")
            _goals(self.ht_away, "ht_away")
            if self.ht_home > self.home or self.ht_away > self.away:  # type: ignore[operator]
                raise ValueError(
                    f"Score: half-time {self.ht_home}-{self.ht_away} exceeds "
                    f"full-time {self.home}-{self.away}"
                )

    def first_half(self) -> Score:
        if self.ht_home is None or self.ht_away is None:
            raise MissingScoreError("half-time score is unknown; first-half markets cannot settle")
        return Score(self.ht_home, self.ht_away)


# --------------------------------------------------------------------------- one selection

_QUARTER = Decimal("0.25")
_HALF = Decimal("0.5")


def _single_line(margin: Decimal) -> OutcomeResult:
    if margin > 0:
        return OutcomeResult.WIN
    if margin < 0:
        return OutcomeResult.LOSE
    return OutcomeResult.PUSH


_SPLIT = {
    frozenset({OutcomeResult.WIN}): OutcomeResult.WIN,
    frozenset({OutcomeResult.LOSE}): OutcomeResult.LOSE,
    frozenset({OutcomeResult.PUSH}): OutcomeResult.PUSH,
    frozenset({OutcomeResult.WIN, OutcomeResult.PUSH}): OutcomeResult.HALF_WIN,
    frozenset({OutcomeResult.LOSE, OutcomeResult.PUSH}): OutcomeResult.HALF_LOSE,
}


def _asian(margin: Decimal, line: Decimal) -> OutcomeResult:
    """Settle an Asian line. ``margin`` is the selection's advantage *including* ``line``
    (e.g. goals - 2.25 for Over 2.25); a quarter line splits into the two lines 0.25 either
    side, which can never be a win and a loss at once (they are 0.5 apart)."""
    if (line / _HALF) % 1 == 0:  # whole or half line
        return _single_line(margin)
    halves = frozenset({_single_line(margin - _QUARTER), _single_line(margin + _QUARTER)})
    return _SPLIT[halves]


def _check_line(market: MarketType, line: Decimal | None) -> Decimal | None:
    if not market.has_line:
        if line is not None:
            raise ValueError(f"{market}: takes no line, got {line}")
        return None
    if line is None:
        raise ValueError(f"{market}: a line is required")
    if not isinstance(line, Decimal):
        raise TypeError(f"{market}: line must be a Decimal, got {type(line).__name__}")
    if not line.is_finite() or (line / _QUARTER) % 1 != 0:
        raise ValueError(f"{market}: line {line} is not a multiple of 0.25")
    if market is MarketType.EUROPEAN_HANDICAP and line % 1 != 0:
        raise ValueError(f"{market}: line {line} must be a whole number of goals")
    if market in (MarketType.OVER_UNDER, MarketType.FIRST_HALF_OVER_UNDER) and line < 0:
        raise ValueError(f"{market}: line {line} must not be negative")
    return line


def _three_way(diff: int | Decimal) -> str:
    return "Home" if diff > 0 else "Away" if diff < 0 else "Draw"


def _unknown(market: MarketType, outcome: str) -> ValueError:
    return ValueError(f"{market}: unknown outcome {outcome!r}")


def settle_outcome(
    market: MarketType, outcome: str, line: Decimal | None, score: Score
) -> OutcomeResult:
    """Result of one canonical selection (``markets.normalise_outcome`` names) on ``score``.

    Raises ValueError for an outcome/line the market cannot have, and
    :class:`MissingScoreError` for a first-half market without a half-time score.
    """
    line = _check_line(market, line)
    if market.is_first_half:
        score = score.first_half()
    home, away = score.home, score.away
    total = home + away

    def won(condition: bool) -> OutcomeResult:
        return OutcomeResult.WIN if condition else OutcomeResult.LOSE

    if market in (MarketType.MATCH_WINNER, MarketType.FIRST_HALF_WINNER):
        if outcome not in ("Home", "Draw", "Away"):
            raise _unknown(market, outcome)
        return won(_three_way(home - away) == outcome)

    if market is MarketType.DOUBLE_CHANCE:
        covers = {"1X": ("Home", "Draw"), "12": ("Home", "Away"), "X2": ("Draw", "Away")}
        if outcome not in covers:
            raise _unknown(market, outcome)
        return won(_three_way(home - away) in covers[outcome])

    if market is MarketType.DRAW_NO_BET:
        if outcome not in ("Home", "Away"):
            raise _unknown(market, outcome)
        if home == away:
            return OutcomeResult.PUSH
        return won(_three_way(home - away) == outcome)

    if market in (MarketType.BTTS, MarketType.FIRST_HALF_BTTS):
        if outcome not in ("Yes", "No"):
            raise _unknown(market, outcome)
        both = home > 0 and away > 0
        return won(both if outcome == "Yes" else not both)

    if market is MarketType.ODD_EVEN:
        if outcome not in ("Odd", "Even"):
            raise _unknown(market, outcome)
        return won((total % 2 == 1) == (outcome == "Odd"))

    if market is MarketType.CORRECT_SCORE:
        parts = outcome.split(":")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise _unknown(market, outcome)
        return won((int(parts[0]), int(parts[1])) == (home, away))

    assert line is not None  # every remaining market has a line (checked above)

    if market in (MarketType.OVER_UNDER, MarketType.FIRST_HALF_OVER_UNDER):
        if outcome == "Over":
            return _asian(total - line, line)
        if outcome == "Under":
            return _asian(line - total, line)
        raise _unknown(market, outcome)

    if market is MarketType.ASIAN_HANDICAP:
        home_margin = home + line - away
        if outcome == "Home":
            return _asian(home_margin, line)
        if outcome == "Away":
            return _asian(-home_margin, line)
        raise _unknown(market, outcome)

    if market is MarketType.EUROPEAN_HANDICAP:
        if outcome not in ("Home", "Draw", "Away"):
            raise _unknown(market, outcome)
        return won(_three_way(home + line - away) == outcome)

    raise ValueError(f"{market}: no settlement rule")  # pragma: no cover - enum is closed


def score_from_fixture(fixture: FixtureRecord) -> Score | None:
    """The settling score of a finished fixture, or None if it is not finished.

    For FT the final ``goals`` are the 90-minute score when ``score.fulltime`` is absent;
    for AET/PEN only ``score.fulltime`` is (``goals`` includes extra time).
    """
    if not fixture.status.is_finished:
        return None
    home, away = fixture.fulltime_home, fixture.fulltime_away
    if home is None or away is None:
        if fixture.status_short.upper() != "FT":
            raise MissingScoreError(
                f"fixture {fixture.api_id}: {fixture.status_short} without score.fulltime"
            )
        home, away = fixture.goals_home, fixture.goals_away
        if home is None or away is None:
            raise MissingScoreError(f"fixture {fixture.api_id}: finished without a score")
    ht_home, ht_away = fixture.halftime_home, fixture.halftime_away
    if ht_home is None or ht_away is None:
        ht_home = ht_away = None
    return Score(home, away, ht_home, ht_away)


def settle_fixture_outcome(
    market: MarketType, outcome: str, line: Decimal | None, fixture: FixtureRecord
) -> OutcomeResult | None:
    """Settle against a fixture record: VOID if it will not be played (or was decided off
    the pitch), the market result if it finished, None while it is still to be decided."""
    status = fixture.status
    if status.is_void or status.is_technical_result:
        _check_line(market, line)
        return OutcomeResult.VOID
    score = score_from_fixture(fixture)
    if score is None:
        return None
    return settle_outcome(market, outcome, line, score)


# --------------------------------------------------------------------------- tickets

_ONE = Decimal(1)
_TWO = Decimal(2)
_CENT = Decimal("0.01")


def _money(value: object, field: str) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"{field} must be a Decimal (or int), not a float")
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{field} must be a Decimal, got {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{field} must be finite, got {value}")
    return result


def bet_factor(result: OutcomeResult, odds: Decimal) -> Decimal:
    """What one unit staked on a selection returns (stake included).

    WIN -> odds, LOSE -> 0, PUSH/VOID -> 1, HALF_WIN -> (1 + odds) / 2 (half at odds, half
    returned), HALF_LOSE -> 1/2 (half lost, half returned).
    """
    odds = _money(odds, "odds")
    if odds < _ONE:
        raise ValueError(f"odds must be at least 1.00, got {odds}")
    if result is OutcomeResult.WIN:
        return odds
    if result is OutcomeResult.LOSE:
        return Decimal(0)
    if result in (OutcomeResult.PUSH, OutcomeResult.VOID):
        return _ONE
    if result is OutcomeResult.HALF_WIN:
        return (_ONE + odds) / _TWO
    if result is OutcomeResult.HALF_LOSE:
        return _ONE / _TWO
    raise TypeError(f"result must be an OutcomeResult, got {result!r}")


class TicketStatus(enum.StrEnum):
    WON = "won"  # every leg won, pushed or was void, at least one won
    LOST = "lost"  # some leg lost outright: payout 0
    VOID = "void"  # every leg void or pushed: stake refunded
    PARTIAL = "partial"  # no leg lost, some leg half-won/half-lost: payout by factors


@dataclass(frozen=True, slots=True)
class TicketSettlement:
    status: TicketStatus
    payout: Decimal  # credited to the wallet, stake included; cents, rounded down


def ticket_payout(
    stake: Decimal, legs: Sequence[tuple[OutcomeResult | None, Decimal]]
) -> TicketSettlement | None:
    """Settle a single (one leg) or an accumulator (several legs multiplied).

    ``legs`` are ``(result, odds)`` with result None while that leg is unsettled. A lost leg
    loses the ticket at once, even with other legs pending (that is why this returns a
    result early); otherwise any pending leg means None (not settled yet). Void and pushed
    legs count as odds 1.00. Payout = stake x product of :func:`bet_factor`, rounded *down*
    to the cent so rounding never pays out money that was not won.
    """
    stake = _money(stake, "stake")
    if stake <= 0:
        raise ValueError(f"stake must be positive, got {stake}")
    if not legs:
        raise ValueError("a ticket needs at least one leg")
    results: list[OutcomeResult | None] = []
    factor = _ONE
    for index, leg in enumerate(legs):
        try:
            result, odds = leg
        except (TypeError, ValueError):
            raise TypeError(f"legs[{index}] must be a (result, odds) pair, got {leg!r}") from None
        if result is not None and not isinstance(result, OutcomeResult):
            raise TypeError(
                f"legs[{index}] result must be an OutcomeResult or None, got {result!r}"
            )
        odds = _money(odds, f"legs[{index}] odds")
        if odds < _ONE:
            raise ValueError(f"legs[{index}] odds must be at least 1.00, got {odds}")
        results.append(result)
        if result is not None:
            factor *= bet_factor(result, odds)

    if OutcomeResult.LOSE in results:
        return TicketSettlement(TicketStatus.LOST, Decimal("0.00"))
    if None in results:
        return None
    if all(result in (OutcomeResult.VOID, OutcomeResult.PUSH) for result in results):
        return TicketSettlement(TicketStatus.VOID, stake.quantize(_CENT, rounding=ROUND_DOWN))
    payout = (stake * factor).quantize(_CENT, rounding=ROUND_DOWN)
    if any(result in (OutcomeResult.HALF_WIN, OutcomeResult.HALF_LOSE) for result in results):
        return TicketSettlement(TicketStatus.PARTIAL, payout)
    return TicketSettlement(TicketStatus.WON, payout)
