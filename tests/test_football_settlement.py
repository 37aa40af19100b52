"""Settlement rules: every market on concrete scores, Asian lines, tickets and payouts.

The tables are written out by hand from the bookmaker rules (not computed by the code under
test); the property tests check the rules against each other (a quarter line is the average
of its two neighbours, Home and Away are mirror images, Over and Under are complements).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools import fake_feed
from football_data_app.feed import parse_fixture
from football_data_app.markets import MarketType
from football_data_app.settlement import (
    MissingScoreError,
    OutcomeResult,
    Score,
    TicketSettlement,
    TicketStatus,
    bet_factor,
    score_from_fixture,
    settle_fixture_outcome,
    settle_outcome,
    ticket_payout,
)

M = MarketType
R = OutcomeResult
D = Decimal
WIN, LOSE, PUSH, HW, HL, VOID = R.WIN, R.LOSE, R.PUSH, R.HALF_WIN, R.HALF_LOSE, R.VOID


def _s(text: str, ht: str | None = None) -> Score:
    home, away = (int(x) for x in text.split("-"))
    if ht is None:
        return Score(home, away)
    ht_home, ht_away = (int(x) for x in ht.split("-"))
    return Score(home, away, ht_home, ht_away)


# (market, outcome, line, full-time, half-time, expected)
TABLE = [
    # 1X2
    (M.MATCH_WINNER, "Home", None, "2-1", None, WIN),
    (M.MATCH_WINNER, "Draw", None, "2-1", None, LOSE),
    (M.MATCH_WINNER, "Away", None, "2-1", None, LOSE),
    (M.MATCH_WINNER, "Draw", None, "0-0", None, WIN),
    (M.MATCH_WINNER, "Away", None, "1-3", None, WIN),
    # double chance
    (M.DOUBLE_CHANCE, "1X", None, "1-1", None, WIN),
    (M.DOUBLE_CHANCE, "1X", None, "3-0", None, WIN),
    (M.DOUBLE_CHANCE, "1X", None, "0-1", None, LOSE),
    (M.DOUBLE_CHANCE, "12", None, "1-1", None, LOSE),
    (M.DOUBLE_CHANCE, "12", None, "0-2", None, WIN),
    (M.DOUBLE_CHANCE, "X2", None, "2-2", None, WIN),
    (M.DOUBLE_CHANCE, "X2", None, "2-1", None, LOSE),
    # draw no bet
    (M.DRAW_NO_BET, "Home", None, "1-0", None, WIN),
    (M.DRAW_NO_BET, "Home", None, "1-1", None, PUSH),
    (M.DRAW_NO_BET, "Away", None, "0-0", None, PUSH),
    (M.DRAW_NO_BET, "Away", None, "1-0", None, LOSE),
    # over/under: half, whole and quarter lines
    (M.OVER_UNDER, "Over", D("2.5"), "2-1", None, WIN),
    (M.OVER_UNDER, "Over", D("2.5"), "1-1", None, LOSE),
    (M.OVER_UNDER, "Under", D("2.5"), "1-1", None, WIN),
    (M.OVER_UNDER, "Over", D("2"), "1-1", None, PUSH),
    (M.OVER_UNDER, "Under", D("2"), "2-0", None, PUSH),
    (M.OVER_UNDER, "Over", D("2"), "2-1", None, WIN),
    (M.OVER_UNDER, "Over", D("2.25"), "1-1", None, HL),  # half on 2 (push), half on 2.5 (lose)
    (M.OVER_UNDER, "Under", D("2.25"), "1-1", None, HW),
    (M.OVER_UNDER, "Over", D("2.25"), "2-1", None, WIN),
    (M.OVER_UNDER, "Over", D("2.75"), "2-1", None, HW),  # half on 2.5 (win), half on 3 (push)
    (M.OVER_UNDER, "Under", D("2.75"), "2-1", None, HL),
    (M.OVER_UNDER, "Under", D("2.75"), "1-1", None, WIN),
    (M.OVER_UNDER, "Under", D("0.5"), "0-0", None, WIN),
    (M.OVER_UNDER, "Over", D("0.75"), "0-1", None, HW),
    # BTTS
    (M.BTTS, "Yes", None, "1-1", None, WIN),
    (M.BTTS, "Yes", None, "3-0", None, LOSE),
    (M.BTTS, "No", None, "0-0", None, WIN),
    (M.BTTS, "No", None, "2-1", None, LOSE),
    # Asian handicap (line = home handicap)
    (M.ASIAN_HANDICAP, "Home", D("-0.5"), "1-0", None, WIN),
    (M.ASIAN_HANDICAP, "Away", D("-0.5"), "1-0", None, LOSE),
    (M.ASIAN_HANDICAP, "Home", D("-0.5"), "1-1", None, LOSE),
    (M.ASIAN_HANDICAP, "Home", D("-1"), "1-0", None, PUSH),  # win by exactly one
    (M.ASIAN_HANDICAP, "Away", D("-1"), "1-0", None, PUSH),
    (M.ASIAN_HANDICAP, "Home", D("-1"), "2-0", None, WIN),
    (M.ASIAN_HANDICAP, "Home", D("-1.5"), "2-1", None, LOSE),
    (M.ASIAN_HANDICAP, "Away", D("-1.5"), "2-1", None, WIN),  # away +1.5
    (M.ASIAN_HANDICAP, "Home", D("0"), "1-1", None, PUSH),
    (M.ASIAN_HANDICAP, "Home", D("-0.25"), "1-1", None, HL),  # half on 0 (push), half -0.5 (lose)
    (M.ASIAN_HANDICAP, "Away", D("-0.25"), "1-1", None, HW),
    (M.ASIAN_HANDICAP, "Home", D("-0.75"), "1-0", None, HW),  # half -0.5 (win), half -1 (push)
    (M.ASIAN_HANDICAP, "Away", D("-0.75"), "1-0", None, HL),
    (M.ASIAN_HANDICAP, "Home", D("-0.75"), "2-0", None, WIN),
    (M.ASIAN_HANDICAP, "Home", D("-1.25"), "2-1", None, HL),
    (M.ASIAN_HANDICAP, "Home", D("0.25"), "0-1", None, LOSE),
    (M.ASIAN_HANDICAP, "Home", D("0.25"), "1-1", None, HW),  # half +0 (push), half +0.5 (win)
    (M.ASIAN_HANDICAP, "Away", D("0.25"), "1-1", None, HL),
    (M.ASIAN_HANDICAP, "Home", D("1"), "0-1", None, PUSH),
    (M.ASIAN_HANDICAP, "Home", D("1.75"), "0-2", None, HL),  # half +1.5 (lose), half +2 (push)
    # European handicap: three-way on the adjusted score
    (M.EUROPEAN_HANDICAP, "Home", D("-1"), "2-0", None, WIN),
    (M.EUROPEAN_HANDICAP, "Draw", D("-1"), "2-0", None, LOSE),
    (M.EUROPEAN_HANDICAP, "Home", D("-1"), "1-0", None, LOSE),
    (M.EUROPEAN_HANDICAP, "Draw", D("-1"), "1-0", None, WIN),  # won by exactly one
    (M.EUROPEAN_HANDICAP, "Away", D("-1"), "1-0", None, LOSE),
    (M.EUROPEAN_HANDICAP, "Away", D("-1"), "1-1", None, WIN),
    (M.EUROPEAN_HANDICAP, "Home", D("1"), "0-0", None, WIN),
    (M.EUROPEAN_HANDICAP, "Draw", D("1"), "0-1", None, WIN),
    (M.EUROPEAN_HANDICAP, "Away", D("1"), "0-2", None, WIN),
    (M.EUROPEAN_HANDICAP, "Draw", D("-2"), "3-1", None, WIN),
    # odd/even on total goals
    (M.ODD_EVEN, "Even", None, "0-0", None, WIN),  # 0 is even
    (M.ODD_EVEN, "Odd", None, "0-0", None, LOSE),
    (M.ODD_EVEN, "Odd", None, "2-1", None, WIN),
    (M.ODD_EVEN, "Even", None, "2-2", None, WIN),
    # correct score
    (M.CORRECT_SCORE, "2:1", None, "2-1", None, WIN),
    (M.CORRECT_SCORE, "1:2", None, "2-1", None, LOSE),
    (M.CORRECT_SCORE, "0:0", None, "0-0", None, WIN),
    (M.CORRECT_SCORE, "10:0", None, "10-0", None, WIN),
    # first half markets settle on the half-time score
    (M.FIRST_HALF_WINNER, "Home", None, "1-2", "1-0", WIN),
    (M.FIRST_HALF_WINNER, "Away", None, "1-2", "1-0", LOSE),
    (M.FIRST_HALF_WINNER, "Draw", None, "3-0", "0-0", WIN),
    (M.FIRST_HALF_OVER_UNDER, "Over", D("0.5"), "3-0", "0-0", LOSE),
    (M.FIRST_HALF_OVER_UNDER, "Under", D("1"), "3-1", "1-0", PUSH),
    (M.FIRST_HALF_OVER_UNDER, "Over", D("1.25"), "2-0", "1-0", HL),
    (M.FIRST_HALF_OVER_UNDER, "Over", D("1.5"), "2-1", "1-1", WIN),
    (M.FIRST_HALF_BTTS, "Yes", None, "2-2", "1-0", LOSE),  # both scored, not both by half-time
    (M.FIRST_HALF_BTTS, "Yes", None, "1-1", "1-1", WIN),
    (M.FIRST_HALF_BTTS, "No", None, "1-1", "0-1", WIN),
]


@pytest.mark.parametrize(("market", "outcome", "line", "ft", "ht", "expected"), TABLE)
def test_settlement_table(market, outcome, line, ft, ht, expected):
    assert settle_outcome(market, outcome, line, _s(ft, ht)) is expected


def test_every_market_is_in_the_table():
    assert {row[0] for row in TABLE} == set(MarketType)


# --------------------------------------------------------------------------- properties

_MIRROR = {WIN: LOSE, LOSE: WIN, PUSH: PUSH, HW: HL, HL: HW}
scores = st.builds(Score, st.integers(0, 9), st.integers(0, 9))
handicaps = st.integers(-16, 16).map(lambda q: D(q) / 4)
goal_lines = st.integers(0, 24).map(lambda q: D(q) / 4)


@given(scores, handicaps)
def test_asian_handicap_home_and_away_are_mirror_images(score, line):
    home = settle_outcome(M.ASIAN_HANDICAP, "Home", line, score)
    assert settle_outcome(M.ASIAN_HANDICAP, "Away", line, score) is _MIRROR[home]


@given(scores, goal_lines)
def test_over_and_under_are_mirror_images(score, line):
    over = settle_outcome(M.OVER_UNDER, "Over", line, score)
    assert settle_outcome(M.OVER_UNDER, "Under", line, score) is _MIRROR[over]


@given(scores, st.integers(-8, 7).map(lambda q: D(q) / 2 + D("0.25")),
       st.sampled_from(["Home", "Away"]), st.decimals("1.01", "20", places=2))  # fmt: skip
def test_a_quarter_handicap_pays_the_average_of_its_two_halves(score, line, side, odds):
    quarter = bet_factor(settle_outcome(M.ASIAN_HANDICAP, side, line, score), odds)
    lower = bet_factor(settle_outcome(M.ASIAN_HANDICAP, side, line - D("0.25"), score), odds)
    upper = bet_factor(settle_outcome(M.ASIAN_HANDICAP, side, line + D("0.25"), score), odds)
    assert quarter == (lower + upper) / 2


@given(scores, st.integers(0, 11).map(lambda q: D(q) / 2 + D("0.25")), st.decimals("1.01", "20", places=2))
def test_a_quarter_total_pays_the_average_of_its_two_halves(score, line, odds):
    for side in ("Over", "Under"):
        quarter = bet_factor(settle_outcome(M.OVER_UNDER, side, line, score), odds)
        lower = bet_factor(settle_outcome(M.OVER_UNDER, side, line - D("0.25"), score), odds)
        upper = bet_factor(settle_outcome(M.OVER_UNDER, side, line + D("0.25"), score), odds)
        assert quarter == (lower + upper) / 2


@given(scores, st.integers(-4, 4).map(D))
def test_exactly_one_european_handicap_outcome_wins(score, line):
    results = [settle_outcome(M.EUROPEAN_HANDICAP, o, line, score) for o in ("Home", "Draw", "Away")]
    assert results.count(WIN) == 1 and results.count(LOSE) == 2


@given(scores)
def test_exactly_one_1x2_outcome_and_two_double_chances_win(score):
    assert [settle_outcome(M.MATCH_WINNER, o, None, score) for o in ("Home", "Draw", "Away")].count(WIN) == 1
    assert [settle_outcome(M.DOUBLE_CHANCE, o, None, score) for o in ("1X", "12", "X2")].count(WIN) == 2


@given(scores)
def test_european_handicap_zero_is_the_match_result(score):
    for outcome in ("Home", "Draw", "Away"):
        assert settle_outcome(M.EUROPEAN_HANDICAP, outcome, D(0), score) is settle_outcome(
            M.MATCH_WINNER, outcome, None, score
        )


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((M.MATCH_WINNER, "1", None, _s("1-0")), ValueError, "unknown outcome '1'"),
        ((M.DOUBLE_CHANCE, "Home/Draw", None, _s("1-0")), ValueError, "unknown outcome"),
        ((M.DRAW_NO_BET, "Draw", None, _s("1-0")), ValueError, "unknown outcome"),
        ((M.CORRECT_SCORE, "2-1", None, _s("2-1")), ValueError, "unknown outcome"),
        ((M.CORRECT_SCORE, "a:b", None, _s("2-1")), ValueError, "unknown outcome"),
        ((M.OVER_UNDER, "Exactly", D("2.5"), _s("1-0")), ValueError, "unknown outcome"),
        ((M.ASIAN_HANDICAP, "Draw", D("0"), _s("1-0")), ValueError, "unknown outcome"),
        ((M.BTTS, "Y", None, _s("1-0")), ValueError, "unknown outcome"),
        ((M.ODD_EVEN, "odd", None, _s("1-0")), ValueError, "unknown outcome"),
        ((M.OVER_UNDER, "Over", None, _s("1-0")), ValueError, "a line is required"),
        ((M.MATCH_WINNER, "Home", D("0.5"), _s("1-0")), ValueError, "takes no line"),
        ((M.OVER_UNDER, "Over", D("2.3"), _s("1-0")), ValueError, "not a multiple of 0.25"),
        ((M.OVER_UNDER, "Over", D("-0.5"), _s("1-0")), ValueError, "must not be negative"),
        ((M.EUROPEAN_HANDICAP, "Home", D("-0.5"), _s("1-0")), ValueError, "whole number"),
        ((M.ASIAN_HANDICAP, "Home", -0.5, _s("1-0")), TypeError, "must be a Decimal"),
        ((M.ASIAN_HANDICAP, "Home", D("NaN"), _s("1-0")), ValueError, "not a multiple"),
        ((M.FIRST_HALF_WINNER, "Home", None, _s("1-0")), MissingScoreError, "half-time score is unknown"),
    ],
)
def test_bad_settlement_input_is_refused(args, error, message):
    with pytest.raises(error, match=message):
        settle_outcome(*args)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((-1, 0), ValueError, "Score.home must not be negative"),
        ((1, "2"), TypeError, "Score.away must be an int"),
        ((True, 0), TypeError, "Score.home must be an int"),
        ((1, 1, 1), ValueError, "both half-time goals or neither"),
        ((1, 1, 2, 0), ValueError, "half-time 2-0 exceeds full-time 1-1"),
        ((1, 1, 0, -1), ValueError, "ht_away must not be negative"),
    ],
)
def test_impossible_scores_are_refused(args, error, message):
    with pytest.raises(error, match=message):
        Score(*args)


# --------------------------------------------------------------------------- bet factor


@pytest.mark.parametrize(
    ("result", "odds", "factor"),
    [
        (WIN, D("1.85"), D("1.85")),
        (LOSE, D("1.85"), D("0")),
        (PUSH, D("1.85"), D("1")),
        (VOID, D("7.50"), D("1")),
        (HW, D("1.90"), D("1.45")),  # half at 1.90 + half back: (1 + 1.90) / 2
        (HL, D("1.90"), D("0.5")),
        (WIN, D("1.00"), D("1.00")),
    ],
)
def test_bet_factor(result, odds, factor):
    assert bet_factor(result, odds) == factor


@pytest.mark.parametrize(
    ("odds", "error", "message"),
    [(D("0.95"), ValueError, "at least 1.00"), (1.85, TypeError, "not a float"), ("1.85", TypeError, "Decimal")],
)
def test_bet_factor_refuses_bad_odds(odds, error, message):
    with pytest.raises(error, match=message):
        bet_factor(WIN, odds)


# --------------------------------------------------------------------------- tickets


@pytest.mark.parametrize(
    ("stake", "legs", "expected"),
    [
        # singles
        (D("10"), [(WIN, D("1.85"))], TicketSettlement(TicketStatus.WON, D("18.50"))),
        (D("10"), [(LOSE, D("1.85"))], TicketSettlement(TicketStatus.LOST, D("0.00"))),
        (D("10"), [(PUSH, D("1.85"))], TicketSettlement(TicketStatus.VOID, D("10.00"))),
        (D("10"), [(VOID, D("1.85"))], TicketSettlement(TicketStatus.VOID, D("10.00"))),
        (D("10"), [(HW, D("1.90"))], TicketSettlement(TicketStatus.PARTIAL, D("14.50"))),
        (D("10"), [(HL, D("1.90"))], TicketSettlement(TicketStatus.PARTIAL, D("5.00"))),
        # accumulators: 5 x 1.50 x 2.10 x 1.85 = 29.1375 -> 29.13 (never rounded up)
        (D("5"), [(WIN, D("1.50")), (WIN, D("2.10")), (WIN, D("1.85"))],
         TicketSettlement(TicketStatus.WON, D("29.13"))),
        # a void leg counts as 1.00: 5 x 1.50 x 1.85 = 13.875 -> 13.87
        (D("5"), [(WIN, D("1.50")), (VOID, D("2.10")), (WIN, D("1.85"))],
         TicketSettlement(TicketStatus.WON, D("13.87"))),
        (D("5"), [(WIN, D("1.50")), (PUSH, D("2.10"))], TicketSettlement(TicketStatus.WON, D("7.50"))),
        (D("5"), [(VOID, D("1.50")), (VOID, D("2.10")), (PUSH, D("3.00"))],
         TicketSettlement(TicketStatus.VOID, D("5.00"))),
        (D("5"), [(WIN, D("1.50")), (LOSE, D("2.10")), (WIN, D("1.85"))],
         TicketSettlement(TicketStatus.LOST, D("0.00"))),
        # half results multiply in: 20 x 2.00 x (1 + 1.90)/2 = 58.00; 20 x 2.00 x 0.5 = 20.00
        (D("20"), [(WIN, D("2.00")), (HW, D("1.90"))], TicketSettlement(TicketStatus.PARTIAL, D("58.00"))),
        (D("20"), [(WIN, D("2.00")), (HL, D("1.90"))], TicketSettlement(TicketStatus.PARTIAL, D("20.00"))),
        # a lost leg settles the ticket even while other legs are still open
        (D("5"), [(None, D("1.50")), (LOSE, D("2.10"))], TicketSettlement(TicketStatus.LOST, D("0.00"))),
        # anything else still open: not settled yet
        (D("5"), [(WIN, D("1.50")), (None, D("2.10"))], None),
        (D("5"), [(None, D("1.50"))], None),
        # odd stakes and odds: 0.30 x 3.33 = 0.999 -> 0.99
        (D("0.30"), [(WIN, D("3.33"))], TicketSettlement(TicketStatus.WON, D("0.99"))),
        (7, [(WIN, D("2.5"))], TicketSettlement(TicketStatus.WON, D("17.50"))),
    ],
)  # fmt: skip
def test_ticket_payout(stake, legs, expected):
    assert ticket_payout(stake, legs) == expected


def test_long_accumulator_keeps_exact_decimal_arithmetic():
    legs = [(WIN, D("1.10"))] * 20
    settlement = ticket_payout(D("1"), legs)
    assert settlement.payout == D("6.72")  # 1.1 ** 20 = 6.7274999493256...
    assert settlement.status is TicketStatus.WON


@pytest.mark.parametrize(
    ("stake", "legs", "error", "message"),
    [
        (D("0"), [(WIN, D("2"))], ValueError, "stake must be positive"),
        (D("-5"), [(WIN, D("2"))], ValueError, "stake must be positive"),
        (10.0, [(WIN, D("2"))], TypeError, "stake must be a Decimal .* not a float"),
        (D("Infinity"), [(WIN, D("2"))], ValueError, "stake must be finite"),
        (D("10"), [], ValueError, "at least one leg"),
        (D("10"), [(WIN,)], TypeError, r"legs\[0\] must be a \(result, odds\) pair"),
        (D("10"), [(WIN, D("2")), ("win", D("2"))], TypeError, r"legs\[1\] result must be an OutcomeResult"),
        (D("10"), [(WIN, 2.0)], TypeError, r"legs\[0\] odds must be a Decimal .* not a float"),
        (D("10"), [(WIN, D("0.5"))], ValueError, r"legs\[0\] odds must be at least 1.00"),
        (D("10"), [(None, D("0.5"))], ValueError, r"legs\[0\] odds must be at least 1.00"),
    ],
)
def test_bad_tickets_are_refused(stake, legs, error, message):
    with pytest.raises(error, match=message):
        ticket_payout(stake, legs)


# --------------------------------------------------------------------------- fixtures


def _fixture(status: str, seed: int = 0):
    (item,) = fake_feed.fixture_items(1, [2], statuses=(status,), seed=seed)
    return parse_fixture(item)


@pytest.mark.parametrize("status", ["AET", "PEN"])
def test_knockout_fixtures_settle_on_the_90_minute_score(status):
    fixture = _fixture(status)
    score = score_from_fixture(fixture)
    assert (score.home, score.away) == (fixture.fulltime_home, fixture.fulltime_away)
    assert score.home == score.away  # level after 90 minutes, whoever went through
    assert settle_fixture_outcome(M.MATCH_WINNER, "Draw", None, fixture) is WIN
    assert settle_fixture_outcome(M.DRAW_NO_BET, "Home", None, fixture) is PUSH


def test_finished_fixture_settles_on_its_score():
    fixture = _fixture("FT")
    score = score_from_fixture(fixture)
    assert (score.home, score.away) == (fixture.goals_home, fixture.goals_away)
    assert (score.ht_home, score.ht_away) == (fixture.halftime_home, fixture.halftime_away)
    total = score.home + score.away
    expected = WIN if total > 2 else LOSE
    assert settle_fixture_outcome(M.OVER_UNDER, "Over", D("2.5"), fixture) is expected


@pytest.mark.parametrize("status", ["PST", "CANC", "ABD", "AWD", "WO"])
def test_fixtures_not_played_out_void_every_selection(status):
    fixture = _fixture(status)
    assert settle_fixture_outcome(M.MATCH_WINNER, "Home", None, fixture) is VOID
    assert settle_fixture_outcome(M.ASIAN_HANDICAP, "Away", D("-0.75"), fixture) is VOID
    with pytest.raises(ValueError, match="a line is required"):  # still validates the selection
        settle_fixture_outcome(M.ASIAN_HANDICAP, "Away", None, fixture)


@pytest.mark.parametrize("status", ["NS", "1H", "HT", "2H", "ET", "P", "SUSP", "INT"])
def test_fixtures_not_finished_are_pending(status):
    fixture = _fixture(status)
    assert score_from_fixture(fixture) is None
    assert settle_fixture_outcome(M.MATCH_WINNER, "Home", None, fixture) is None


def test_ft_fixture_without_fulltime_falls_back_to_goals_but_aet_does_not():
    (item,) = fake_feed.fixture_items(1, [39], statuses=("FT",), seed=3)
    item["score"]["fulltime"] = {"home": None, "away": None}
    fixture = parse_fixture(item)
    assert (score_from_fixture(fixture).home, score_from_fixture(fixture).away) == (
        fixture.goals_home, fixture.goals_away,
    )  # fmt: skip
    (item,) = fake_feed.fixture_items(1, [2], statuses=("AET",), seed=3)
    item["score"]["fulltime"] = {"home": None, "away": None}
    with pytest.raises(MissingScoreError, match=r"AET without score\.fulltime"):
        score_from_fixture(parse_fixture(item))


def test_fixture_without_half_time_score_cannot_settle_first_half_markets():
    (item,) = fake_feed.fixture_items(1, [39], statuses=("FT",), seed=3)
    item["score"]["halftime"] = {"home": None, "away": None}
    fixture = parse_fixture(item)
    assert settle_fixture_outcome(M.MATCH_WINNER, "Home", None, fixture) in (WIN, LOSE)
    with pytest.raises(MissingScoreError):
        settle_fixture_outcome(M.FIRST_HALF_WINNER, "Home", None, fixture)
