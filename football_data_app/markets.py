"""API-Football bet types and outcome labels -> our markets and canonical outcomes.

API-Football names the same market differently per endpoint and reuses ids: pre-match
``/odds`` calls 1X2 ``"Match Winner"`` (bet id 1) while ``/odds/live`` calls it ``"Fulltime
Result"`` (id 59), and live id 21 is ``"3-Way Handicap"`` where pre-match 21 is
``"Odd/Even"``. So :func:`market_for` matches by name first and falls back to the id table
of the endpoint the caller names.

Handicap lines are always stored **from the home team's side** (``line`` = goals added to
the home score). That is how pre-match labels read: in ``"Home -1.25"`` / ``"Away -1.25"``
and ``"Home -1"`` / ``"Draw -1"`` / ``"Away -1"`` the number is the home handicap for every
selection (the pair's odds are complementary, e.g. Home -1.25 @2.71 / Away -1.25 @1.44 in a
real Marathonbet book, i.e. Away takes +1.25). Live values instead give each selection's own
handicap (``Home -1`` / ``Away 1``), so :func:`normalise_outcome` negates the live Away/Draw
handicap. One convention means one settlement rule and one unique key per selection; use
:func:`outcome_label` for the bettor's view ("Away +1.25").

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "LIVE_BET_IDS",
    "LIVE_BET_NAMES",
    "PREMATCH_BET_IDS",
    "PREMATCH_BET_NAMES",
    "MarketType",
    "NormalisedOutcome",
    "OutcomeError",
    "format_line",
    "market_for",
    "normalise_outcome",
    "outcome_label",
]


class MarketType(enum.StrEnum):
    MATCH_WINNER = "match_winner"
    DOUBLE_CHANCE = "double_chance"
    DRAW_NO_BET = "draw_no_bet"
    OVER_UNDER = "over_under"
    BTTS = "btts"
    ASIAN_HANDICAP = "asian_handicap"
    EUROPEAN_HANDICAP = "european_handicap"
    ODD_EVEN = "odd_even"
    CORRECT_SCORE = "correct_score"
    FIRST_HALF_WINNER = "first_half_winner"
    FIRST_HALF_OVER_UNDER = "first_half_over_under"
    FIRST_HALF_BTTS = "first_half_btts"

    @property
    def has_line(self) -> bool:
        """Selections of this market carry a line (goals total or handicap)."""
        return self in _LINE_MARKETS

    @property
    def is_first_half(self) -> bool:
        return self in _FIRST_HALF


_LINE_MARKETS = frozenset(
    {
        MarketType.OVER_UNDER,
        MarketType.FIRST_HALF_OVER_UNDER,
        MarketType.ASIAN_HANDICAP,
        MarketType.EUROPEAN_HANDICAP,
    }
)
_FIRST_HALF = frozenset(
    {MarketType.FIRST_HALF_WINNER, MarketType.FIRST_HALF_OVER_UNDER, MarketType.FIRST_HALF_BTTS}
)

# Pre-match /odds bet ids and names (as listed by /odds/bets).
PREMATCH_BET_IDS: dict[MarketType, int] = {
    MarketType.MATCH_WINNER: 1,
    MarketType.DRAW_NO_BET: 2,
    MarketType.ASIAN_HANDICAP: 4,
    MarketType.OVER_UNDER: 5,
    MarketType.FIRST_HALF_OVER_UNDER: 6,
    MarketType.BTTS: 8,
    MarketType.EUROPEAN_HANDICAP: 9,
    MarketType.CORRECT_SCORE: 10,
    MarketType.DOUBLE_CHANCE: 12,
    MarketType.FIRST_HALF_WINNER: 13,
    MarketType.ODD_EVEN: 21,
    MarketType.FIRST_HALF_BTTS: 34,
}
PREMATCH_BET_NAMES: dict[MarketType, str] = {
    MarketType.MATCH_WINNER: "Match Winner",
    MarketType.DRAW_NO_BET: "Home/Away",
    MarketType.ASIAN_HANDICAP: "Asian Handicap",
    MarketType.OVER_UNDER: "Goals Over/Under",
    MarketType.FIRST_HALF_OVER_UNDER: "Goals Over/Under First Half",
    MarketType.BTTS: "Both Teams Score",
    MarketType.EUROPEAN_HANDICAP: "Handicap Result",
    MarketType.CORRECT_SCORE: "Exact Score",
    MarketType.DOUBLE_CHANCE: "Double Chance",
    MarketType.FIRST_HALF_WINNER: "First Half Winner",
    MarketType.ODD_EVEN: "Odd/Even",
    MarketType.FIRST_HALF_BTTS: "Both Teams Score - First Half",
}

# /odds/live ids and names seen in real in-play bodies (/odds/live/bets). BTTS's live id is
# not confirmed from a real body; names are matched first, so an id change is harmless.
LIVE_BET_IDS: dict[MarketType, int] = {
    MarketType.MATCH_WINNER: 59,
    MarketType.DOUBLE_CHANCE: 72,
    MarketType.DRAW_NO_BET: 48,
    MarketType.OVER_UNDER: 36,
    MarketType.BTTS: 69,
    MarketType.ASIAN_HANDICAP: 33,
    MarketType.EUROPEAN_HANDICAP: 21,
    MarketType.ODD_EVEN: 68,
    MarketType.CORRECT_SCORE: 23,
    MarketType.FIRST_HALF_WINNER: 19,
}
LIVE_BET_NAMES: dict[MarketType, str] = {
    MarketType.MATCH_WINNER: "Fulltime Result",
    MarketType.DOUBLE_CHANCE: "Double Chance",
    MarketType.DRAW_NO_BET: "Draw No Bet",
    MarketType.OVER_UNDER: "Over/Under Line",
    MarketType.BTTS: "Both Teams To Score",
    MarketType.ASIAN_HANDICAP: "Asian Handicap",
    MarketType.EUROPEAN_HANDICAP: "3-Way Handicap",
    MarketType.ODD_EVEN: "Goals Odd/Even",
    MarketType.CORRECT_SCORE: "Final Score",
    MarketType.FIRST_HALF_WINNER: "1x2 (1st Half)",
}


def _name_key(name: str) -> str:
    return " ".join(name.lower().split())


_BY_NAME: dict[str, MarketType] = {
    _name_key(name): market
    for table in (PREMATCH_BET_NAMES, LIVE_BET_NAMES)
    for market, name in table.items()
}
_BY_NAME.update(
    {
        _name_key("Match Goals"): MarketType.OVER_UNDER,  # live, alongside "Over/Under Line"
        _name_key("Draw No Bet"): MarketType.DRAW_NO_BET,
        _name_key("Both Teams To Score"): MarketType.BTTS,
    }
)
_PREMATCH_BY_ID = {bet_id: market for market, bet_id in PREMATCH_BET_IDS.items()}
_LIVE_BY_ID = {bet_id: market for market, bet_id in LIVE_BET_IDS.items()}


def market_for(bet_id: int | None, name: str | None, *, live: bool = False) -> MarketType | None:
    """Our market for an API-Football bet, or None for a market we do not offer.

    ``live`` says which endpoint the bet came from, because ids are per endpoint.
    """
    if name:
        market = _BY_NAME.get(_name_key(name))
        if market is not None:
            return market
        # A named bet we do not know is not ours, even if its id collides with one of ours
        # (e.g. "Goals Over/Under - Second Half" must never be read as full-time totals).
        return None
    if bet_id is None:
        return None
    return (_LIVE_BY_ID if live else _PREMATCH_BY_ID).get(bet_id)


# --------------------------------------------------------------------------- outcomes


class OutcomeError(ValueError):
    """An outcome label this market cannot have (names the market and the label)."""


@dataclass(frozen=True, slots=True)
class NormalisedOutcome:
    """A selection in canonical form. ``line`` is the goals line for over/under and the
    *home* handicap for Asian/European handicap (see module docstring); None otherwise."""

    name: str
    line: Decimal | None = None

    @property
    def key(self) -> str:
        """Stable text id of the selection within its market (for unique constraints)."""
        if self.line is None:
            return self.name
        if self.name in ("Over", "Under"):
            return f"{self.name} {format_line(self.line)}"
        return f"{self.name} {format_line(self.line, signed=True)}"


_CENT = Decimal("0.01")
_QUARTER = Decimal("0.25")


def format_line(line: Decimal, *, signed: bool = False) -> str:
    """``Decimal("2.50")`` -> ``"2.5"``; signed: ``-1.25`` -> ``"-1.25"``, ``0`` -> ``"+0"``."""
    text = f"{line:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if signed and not text.startswith("-"):
        text = "+" + text
    return text


_THREE_WAY = {"home": "Home", "1": "Home", "draw": "Draw", "x": "Draw", "away": "Away", "2": "Away"}
_TWO_WAY = {"home": "Home", "1": "Home", "away": "Away", "2": "Away"}
_DOUBLE_CHANCE = {
    "1x": "1X", "x1": "1X", "home/draw": "1X", "draw/home": "1X", "home or draw": "1X",
    "12": "12", "21": "12", "home/away": "12", "away/home": "12", "home or away": "12",
    "x2": "X2", "2x": "X2", "draw/away": "X2", "away/draw": "X2", "away or draw": "X2",
    "draw or away": "X2",
}  # fmt: skip
_YES_NO = {"yes": "Yes", "no": "No"}
_ODD_EVEN = {"odd": "Odd", "even": "Even"}
_LABEL_WITH_LINE = re.compile(r"^\s*([A-Za-z]+)\s*([+-]?\s*\d+(?:\.\d+)?)?\s*$")
_SCORE = re.compile(r"^\s*(\d{1,2})\s*[:-]\s*(\d{1,2})\s*$")


def _parse_line(text: str, market: MarketType, value: str) -> Decimal:
    try:
        line = Decimal(text.replace(" ", ""))
    except InvalidOperation:
        raise OutcomeError(f"{market}: {value!r} has an unreadable line {text!r}") from None
    if not line.is_finite() or (line / _QUARTER) % 1 != 0:
        raise OutcomeError(f"{market}: {value!r} line {text!r} is not a multiple of 0.25")
    return line.quantize(_CENT)


def normalise_outcome(
    market: MarketType, value: str, handicap: str | None = None
) -> NormalisedOutcome:
    """Canonical selection for an API-Football label.

    ``value`` is the feed's label; ``handicap`` is the separate line field of /odds/live
    values (leave None for pre-match). Raises :class:`OutcomeError` for a label the market
    cannot have, so ingestion can count and skip it.
    """
    if not isinstance(value, str) or not value.strip():
        raise OutcomeError(f"{market}: empty outcome label")
    folded = " ".join(value.lower().split())

    if market in (MarketType.MATCH_WINNER, MarketType.FIRST_HALF_WINNER):
        return NormalisedOutcome(_lookup(_THREE_WAY, folded, market, value))
    if market is MarketType.DRAW_NO_BET:
        return NormalisedOutcome(_lookup(_TWO_WAY, folded, market, value))
    if market is MarketType.DOUBLE_CHANCE:
        return NormalisedOutcome(_lookup(_DOUBLE_CHANCE, folded, market, value))
    if market in (MarketType.BTTS, MarketType.FIRST_HALF_BTTS):
        return NormalisedOutcome(_lookup(_YES_NO, folded, market, value))
    if market is MarketType.ODD_EVEN:
        return NormalisedOutcome(_lookup(_ODD_EVEN, folded, market, value))
    if market is MarketType.CORRECT_SCORE:
        match = _SCORE.match(value)
        if match is None:
            raise OutcomeError(f"{market}: {value!r} is not a score like '2:1'")
        return NormalisedOutcome(f"{int(match.group(1))}:{int(match.group(2))}")
    return _with_line(market, value, handicap)


def _lookup(table: dict[str, str], folded: str, market: MarketType, value: str) -> str:
    try:
        return table[folded]
    except KeyError:
        expected = ", ".join(sorted(set(table.values())))
        raise OutcomeError(f"{market}: unknown outcome {value!r} (expected {expected})") from None


def _with_line(market: MarketType, value: str, handicap: str | None) -> NormalisedOutcome:
    match = _LABEL_WITH_LINE.match(value)
    if match is None:
        raise OutcomeError(f"{market}: cannot read outcome {value!r}")
    word, line_text = match.group(1).lower(), match.group(2)
    live_line = line_text is None
    if live_line:
        if handicap is None or not str(handicap).strip():
            raise OutcomeError(f"{market}: {value!r} has no line")
        line_text = str(handicap)
    line = _parse_line(line_text, market, value)

    if market in (MarketType.OVER_UNDER, MarketType.FIRST_HALF_OVER_UNDER):
        name = {"over": "Over", "under": "Under"}.get(word)
        if name is None:
            raise OutcomeError(f"{market}: unknown outcome {value!r} (expected Over, Under)")
        if line < 0:
            raise OutcomeError(f"{market}: {value!r} has a negative goals line")
        return NormalisedOutcome(name, line)

    table = _TWO_WAY if market is MarketType.ASIAN_HANDICAP else _THREE_WAY
    name = _lookup(table, word, market, value)
    if market is MarketType.EUROPEAN_HANDICAP and line % 1 != 0:
        raise OutcomeError(f"{market}: {value!r} line must be a whole number of goals")
    if live_line and name != "Home":
        # Live quotes each selection's own handicap; we store the home side's.
        line = -line
    return NormalisedOutcome(name, line + 0)  # + 0 turns -0.00 into 0.00


_DOUBLE_CHANCE_LABELS = {"1X": "Home or Draw", "12": "Home or Away", "X2": "Draw or Away"}


def outcome_label(market: MarketType, outcome: NormalisedOutcome) -> str:
    """The selection as a bettor reads it: each side with its own handicap."""
    if market is MarketType.DOUBLE_CHANCE:
        return _DOUBLE_CHANCE_LABELS.get(outcome.name, outcome.name)
    if outcome.line is None or market in (
        MarketType.OVER_UNDER,
        MarketType.FIRST_HALF_OVER_UNDER,
    ):
        return outcome.key
    if market is MarketType.ASIAN_HANDICAP:
        own = outcome.line if outcome.name == "Home" else -outcome.line
        return f"{outcome.name} {format_line(own + 0, signed=True)}"
    # European handicap: the handicap belongs to the home side for all three selections.
    return f"{outcome.name} (Home {format_line(outcome.line, signed=True)})"
