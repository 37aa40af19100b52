"""The goal model behind the fake API-Football's scores and odds.

Each fixture gets home/away goal expectations (derived from its id and the seed); goals are
Poisson; every price is the fair price of that model *settled with the project's own rules*
(:func:`settlement.settle_outcome`, push/half results included) divided by a bookmaker
margin. Fair prices are cached per goal-expectation pair on a coarse grid. Used by
:mod:`devtools.fake_feed`; no Django.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache

from football_data_app.markets import (
    PREMATCH_BET_IDS,
    PREMATCH_BET_NAMES,
    MarketType,
    normalise_outcome,
)
from football_data_app.settlement import OutcomeResult, Score, settle_outcome

__all__ = ["goal_expectations"]

_FIRST_HALF_SHARE = 0.45  # share of goals scored before half-time


def _fixture_rng(seed: int, fixture_id: int, stream: int) -> random.Random:
    # Independent, order-free streams: any fixture's data can be built without the others.
    return random.Random((seed * 1_000_003 + fixture_id) * 16 + stream)


def goal_expectations(fixture_id: int, seed: int = 0) -> tuple[float, float]:
    """Expected 90-minute goals (home, away) for a fixture, on a 0.15 grid (so prices cache)."""
    rng = _fixture_rng(seed, fixture_id, 0)
    home = 0.8 + 0.15 * rng.randrange(11)  # 0.80 .. 2.30
    away = 0.5 + 0.15 * rng.randrange(10)  # 0.50 .. 1.85
    return round(home, 2), round(away, 2)


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _pmf(lam: float, n: int) -> list[float]:
    probs, p = [], math.exp(-lam)
    for k in range(n + 1):
        probs.append(p)
        p *= lam / (k + 1)
    return probs


def _score_matrix(lam_home: float, lam_away: float, max_goals: int) -> list[tuple[int, int, float]]:
    ph, pa = _pmf(lam_home, max_goals), _pmf(lam_away, max_goals)
    cells = [(h, a, ph[h] * pa[a]) for h in range(max_goals + 1) for a in range(max_goals + 1)]
    total = sum(p for _, _, p in cells)
    return [(h, a, p / total) for h, a, p in cells]


# What a market's result depends on, so the matrix can be collapsed before settling.
_DIFF = {MarketType.MATCH_WINNER, MarketType.DOUBLE_CHANCE, MarketType.DRAW_NO_BET,
         MarketType.ASIAN_HANDICAP, MarketType.EUROPEAN_HANDICAP, MarketType.FIRST_HALF_WINNER}
_TOTAL = {MarketType.OVER_UNDER, MarketType.ODD_EVEN, MarketType.FIRST_HALF_OVER_UNDER}
_BOTH = {MarketType.BTTS, MarketType.FIRST_HALF_BTTS}  # fmt: skip


def _collapse(market: MarketType, cells: list[tuple[int, int, float]]) -> list[tuple[Score, float]]:
    grouped: dict[tuple[int, int], float] = {}
    for h, a, p in cells:
        if market in _DIFF:
            key = (max(h - a, 0), max(a - h, 0))
        elif market in _TOTAL:
            key = (h + a, 0)
        elif market in _BOTH:
            key = (min(h, 1), min(a, 1))
        elif h <= 4 and a <= 4:
            key = (h, a)
        else:  # correct score: no listed score is above 4 goals a side, one bucket for those
            key = (9, 9)
        grouped[key] = grouped.get(key, 0.0) + p
    half = market.is_first_half
    return [
        (Score(h, a, h, a) if half else Score(h, a), p) for (h, a), p in grouped.items()
    ]


def _fair_odds(market: MarketType, label: str, handicap: str | None, dist) -> float:
    """Odds at which the selection returns the stake on average, under the settlement rules."""
    outcome = normalise_outcome(market, label, handicap)
    p = dict.fromkeys(OutcomeResult, 0.0)
    for score, prob in dist:
        p[settle_outcome(market, outcome.name, outcome.line, score)] += prob
    # E[return] = o*P(win) + (1+o)/2*P(half win) + P(push) + P(half lose)/2 = 1, solved for o.
    numerator = 1 - p[OutcomeResult.HALF_WIN] / 2 - p[OutcomeResult.PUSH]
    numerator -= p[OutcomeResult.HALF_LOSE] / 2
    denominator = p[OutcomeResult.WIN] + p[OutcomeResult.HALF_WIN] / 2
    if denominator < 1 / 500:
        return 500.0
    return max(numerator / denominator, 1.0)


def _fmt_line(line: float, signed: bool) -> str:
    line = line + 0.0 if line else 0.0  # never "-0"
    text = f"{line:.2f}".rstrip("0").rstrip(".") if line % 1 else f"{line:.0f}"
    if signed:
        return ("+" + text) if line >= 0 else text
    return text


def _ou_label(word: str, line: float) -> str:
    # Pre-match prints whole lines with ".0" ("Over 2.0"), halves/quarters as is.
    return f"{word} {line:.1f}" if line % 1 == 0 else f"{word} {_fmt_line(line, False)}"


def _prematch_catalogue(lam_home: float, lam_away: float) -> list[tuple[MarketType, list[str]]]:
    centre = -round((lam_home - lam_away) * 4) / 4  # home handicap nearest to a fair line
    ah_lines = [centre + step * 0.25 for step in (-2, -1, 0, 1, 2)]
    eh_lines = (-1, 1, -2) if lam_home - lam_away > 0.6 else (-1, 1)
    scores = [(h, a) for h in range(4) for a in range(4)] + [(4, 0), (4, 1), (0, 4), (1, 4)]
    return [
        (MarketType.MATCH_WINNER, ["Home", "Draw", "Away"]),
        (MarketType.DRAW_NO_BET, ["Home", "Away"]),
        (MarketType.ASIAN_HANDICAP, [
            f"{side} {_fmt_line(line, True)}" for line in ah_lines for side in ("Home", "Away")
        ]),
        (MarketType.OVER_UNDER, [
            _ou_label(word, line)
            for line in (0.5, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.5)
            for word in ("Over", "Under")
        ]),
        (MarketType.FIRST_HALF_OVER_UNDER, [
            _ou_label(word, line) for line in (0.5, 1.0, 1.5) for word in ("Over", "Under")
        ]),
        (MarketType.BTTS, ["Yes", "No"]),
        (MarketType.EUROPEAN_HANDICAP, [
            f"{side} {_fmt_line(line, True)}" for line in eh_lines
            for side in ("Home", "Draw", "Away")
        ]),
        (MarketType.CORRECT_SCORE, [f"{h}:{a}" for h, a in scores]),
        (MarketType.DOUBLE_CHANCE, ["Home/Draw", "Home/Away", "Draw/Away"]),
        (MarketType.FIRST_HALF_WINNER, ["Home", "Draw", "Away"]),
        (MarketType.ODD_EVEN, ["Odd", "Even"]),
        (MarketType.FIRST_HALF_BTTS, ["Yes", "No"]),
    ]  # fmt: skip


@lru_cache(maxsize=512)
def _prematch_fair(lam_home: float, lam_away: float) -> tuple[tuple[MarketType, tuple], ...]:
    full = _score_matrix(lam_home, lam_away, 9)
    half = _score_matrix(lam_home * _FIRST_HALF_SHARE, lam_away * _FIRST_HALF_SHARE, 6)
    table = []
    for market, labels in _prematch_catalogue(lam_home, lam_away):
        dist = _collapse(market, half if market.is_first_half else full)
        table.append(
            (market, tuple((label, _fair_odds(market, label, None, dist)) for label in labels))
        )
    # One market we do not offer, so ingestion's "skipped unknown market" path is exercised.
    second_half = _collapse(MarketType.MATCH_WINNER, _score_matrix(
        lam_home * (1 - _FIRST_HALF_SHARE), lam_away * (1 - _FIRST_HALF_SHARE), 7
    ))  # fmt: skip
    table.append((None, tuple(
        (label, _fair_odds(MarketType.MATCH_WINNER, label, None, second_half))
        for label in ("Home", "Draw", "Away")
    )))  # fmt: skip
    return tuple(table)


def _price(fair: float, margin: float) -> str:
    return f"{min(max(fair / margin, 1.01), 501.0):.2f}"


@lru_cache(maxsize=8192)
def _prematch_bets(lam_home: float, lam_away: float, margin: float) -> tuple:
    bets = []
    for market, values in _prematch_fair(lam_home, lam_away):
        if market is None:
            bet_id, name = 3, "Second Half Winner"
        else:
            bet_id, name = PREMATCH_BET_IDS[market], PREMATCH_BET_NAMES[market]
        bets.append((bet_id, name, tuple((label, _price(o, margin)) for label, o in values)))
    return tuple(bets)
