"""The demo's football data is a schedule a real league could have: each team at most once per
matchday and per day, matchdays on weekends, every pair once per half-season with home and
away swapped in the other half, and no team more than two home (or away) matches in a row.
Checked on the data the dev stack seeds and the fake API-Football serves, for every league."""

from __future__ import annotations

import argparse
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import pytest

from devtools import fake_api_football, fake_feed, seed

START = date(2026, 12, 8)  # a Tuesday


def _by_league(items: Iterable[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    leagues: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for item in items:
        leagues[item["league"]["id"]].append(item)
    return leagues


def _round(item: Mapping[str, Any]) -> int:
    return int(item["league"]["round"].rsplit(" - ", 1)[1])


def _teams(item: Mapping[str, Any]) -> tuple[int, int]:
    return item["teams"]["home"]["id"], item["teams"]["away"]["id"]


def _kickoff(item: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(item["fixture"]["date"])


def assert_believable(items: list[Mapping[str, Any]]) -> None:
    """What a real league's calendar satisfies, per league in ``items``."""
    assert items
    for league_id, fixtures in _by_league(items).items():
        n_teams = len(fake_feed._league_info(league_id)[5])
        rounds_per_half = n_teams - 1 if n_teams % 2 == 0 else n_teams
        per_day = Counter((team, _kickoff(fx).date()) for fx in fixtures for team in _teams(fx))
        assert max(per_day.values()) == 1, (league_id, per_day.most_common(3))
        per_round = Counter((team, _round(fx)) for fx in fixtures for team in _teams(fx))
        assert max(per_round.values()) == 1, (league_id, per_round.most_common(3))
        for fx in fixtures:  # matchdays are played at weekends
            assert _kickoff(fx).weekday() in (5, 6), (league_id, fx["fixture"]["date"])
        rounds = defaultdict(set)
        for fx in fixtures:
            rounds[_round(fx)].add(_kickoff(fx).isocalendar()[:2])
        assert all(len(weeks) == 1 for weeks in rounds.values()), league_id  # one weekend a matchday
        weeks = [next(iter(rounds[r])) for r in sorted(rounds)]
        assert len(set(weeks)) == len(weeks), league_id  # one matchday a weekend
        meetings = Counter(
            (frozenset(_teams(fx)), (_round(fx) - 1) // rounds_per_half) for fx in fixtures
        )
        assert max(meetings.values()) == 1, (league_id, meetings.most_common(2))
        venues = defaultdict(list)
        for fx in fixtures:
            venues[frozenset(_teams(fx))].append(_teams(fx))
        for pair, played in venues.items():
            if len(played) == 2:  # home in one half, away in the other
                assert played[0] == played[1][::-1], (league_id, pair, played)


def assert_alternating(items: list[Mapping[str, Any]]) -> None:
    for league_id, fixtures in _by_league(items).items():
        sides = defaultdict(list)
        for fx in sorted(fixtures, key=_round):
            home, away = _teams(fx)
            sides[home].append("H")
            sides[away].append("A")
        for team, seq in sides.items():
            longest = max(len(list(run)) for _, run in itertools.groupby(seq))
            assert longest <= 2, (league_id, team, "".join(seq))


def test_the_seeded_demo_fixtures_are_a_believable_calendar():
    items = seed.demo_fixture_items(START)
    assert len(items) == seed.DEMO_FIXTURES
    assert {item["league"]["id"] for item in items} == set(seed.DEMO_LEAGUES)
    assert_believable(items)
    assert min(_kickoff(item).date() for item in items) == date(2026, 12, 12)  # the first Saturday


def test_a_whole_season_of_every_league_is_a_double_round_robin():
    leagues = list(fake_feed.LEAGUES)
    sizes = {league_id: len(fake_feed._league_info(league_id)[5]) for league_id in leagues}
    # Enough fixtures for every league's full double round-robin, and a few of the next season.
    per_league = max(n * (n - 1) for n in sizes.values()) + 5
    items = fake_feed.fixture_items(per_league * len(leagues), leagues, start_date=START, seed=3, schedule="season")
    assert_believable([item for item in items if _round(item) <= 2 * (sizes[item["league"]["id"]] - 1)])
    assert_believable(items)  # the next season continues on later weekends, one matchday each
    assert_alternating([item for item in items if _round(item) <= 2 * (sizes[item["league"]["id"]] - 1)])
    for league_id, fixtures in _by_league(items).items():
        n = sizes[league_id]
        season = [fx for fx in fixtures if _round(fx) <= 2 * (n - 1)]
        assert len(season) == n * (n - 1)  # every ordered pair once: each pair home and away
        assert len({_teams(fx) for fx in season}) == n * (n - 1)


def test_an_odd_number_of_teams_gets_a_bye_each_round():
    rounds = fake_feed.round_robin(["A", "B", "C", "D", "E"])
    assert len(rounds) == 10 and all(len(pairs) == 2 for pairs in rounds)
    for pairs in rounds:
        playing = [team for pair in pairs for team in pair]
        assert len(playing) == len(set(playing)) == 4
    assert Counter(frozenset(pair) for pairs in rounds[:5] for pair in pairs) == {
        frozenset(p): 1 for p in itertools.combinations("ABCDE", 2)
    }


def test_the_fake_api_football_command_line_serves_a_season_by_default():
    parser = argparse.ArgumentParser()
    fake_api_football.add_arguments(parser)
    args = parser.parse_args(["--fixtures", "120", "--start-date", START.isoformat()])
    fake = fake_api_football.from_arguments(args)
    items = [fake.data.fixture(api_id) for api_id in fake.data.fixture_ids()]
    assert len(items) == 120
    assert_believable(items)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule must be one of"):
        fake_feed.fixture_items(3, schedule="random")
