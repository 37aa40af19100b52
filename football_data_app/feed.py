"""API-Football v3 response bodies -> typed, frozen records.

Every API-Football answer is the same envelope::

    {"get": "fixtures", "parameters": {"league": "39", "season": "2024"},
     "errors": [], "results": 380, "paging": {"current": 1, "total": 1},
     "response": [...]}

Errors arrive with HTTP 200 *inside* the body, either as ``[]`` / ``{}`` (none) or as a dict
keyed by what went wrong, e.g. ``{"requests": "You have reached the request limit for the
day..."}``, ``{"rateLimit": "Too many requests..."}`` or ``{"token": "Error/Missing
application key..."}``. :func:`parse_envelope` normalises both spellings so callers branch on
flags (``quota_exhausted``, ``rate_limited``, ``auth_failed``) instead of string-matching.

This module reads the envelope, /status, /leagues and /fixtures; /odds and /odds/live are
:mod:`football_data_app.feed_odds`, the field readers and :class:`FeedError` are
:mod:`football_data_app.feed_fields`.

Pure module: no Django, no I/O. Malformed input raises :class:`FeedError` naming the path of
the offending field (``response[3].fixture.date: ...``) so a bad page is diagnosable from the
log line alone. Per-item parsers (:func:`parse_fixture`, :func:`parse_league`, ...) let
ingestion skip one bad item and keep the rest of the page.
"""
from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from json_shape import join_path

from .feed_fields import (
    FeedError,
    read_datetime,
    read_int,
    read_items,
    read_key,
    read_list,
    read_mapping,
    read_opt_date,
    read_opt_int,
    read_opt_str,
    read_str,
)

__all__ = [
    "AccountStatus",
    "Envelope",
    "FixtureRecord",
    "FixtureStatus",
    "LeagueRecord",
    "Paging",
    "SeasonRecord",
    "TeamRecord",
    "parse_envelope",
    "parse_fixture",
    "parse_fixtures",
    "parse_league",
    "parse_leagues",
    "parse_status",
    "response_items",
]

# --------------------------------------------------------------------------- envelope


@dataclass(frozen=True, slots=True)
class Paging:
    current: int
    total: int

    @property
    def has_next(self) -> bool:
        return self.current < self.total


@dataclass(frozen=True, slots=True)
class Envelope:
    """The outer shape of every API-Football answer, errors normalised.

    ``errors`` holds the messages, ``error_keys`` what API-Football keyed them by (``token``,
    ``requests``, ``rateLimit``, or a parameter name for a validation error).
    """

    get: str
    parameters: Mapping[str, str]
    errors: tuple[str, ...]
    error_keys: tuple[str, ...]
    results: int
    paging: Paging
    response: list[Any] | dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def quota_exhausted(self) -> bool:
        """The plan's *daily* quota is used up: stop calling until the quota resets."""
        return "requests" in self.error_keys or any(
            "request limit for the day" in message.lower() for message in self.errors
        )

    @property
    def rate_limited(self) -> bool:
        """Too many requests this *minute*: back off for a minute and retry."""
        return "ratelimit" in (key.lower() for key in self.error_keys) or any(
            "too many requests" in message.lower() for message in self.errors
        )

    @property
    def auth_failed(self) -> bool:
        """The key is missing, wrong or suspended: retrying will not help."""
        return "token" in self.error_keys


def _normalise_errors(raw: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if raw is None:
        return (), ()
    if isinstance(raw, Mapping):
        keys = tuple(str(key) for key in raw)
        messages = tuple(str(value) for value in raw.values())
        return keys, messages
    if isinstance(raw, list):
        keys: list[str] = []
        messages: list[str] = []
        for item in raw:
            if isinstance(item, Mapping):  # [{"time": "..."}] has been seen in the wild
                keys.extend(str(key) for key in item)
                messages.extend(str(value) for value in item.values())
            else:
                keys.append("")
                messages.append(str(item))
        return tuple(keys), tuple(messages)
    if isinstance(raw, str):
        return ("",), (raw,)
    raise FeedError(f"errors: expected a list or an object, got {type(raw).__name__}")


def parse_envelope(body: Mapping[str, Any] | str | bytes) -> Envelope:
    """Validate and normalise an API-Football body (a decoded dict, or raw JSON text/bytes).

    ``parameters`` is ``[]`` when a request had none (a PHP-ism); it becomes ``{}``.
    """
    if isinstance(body, (str, bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise FeedError(f"body: not JSON ({exc})") from None
    if not isinstance(body, Mapping):
        raise FeedError(f"body: expected a JSON object, got {type(body).__name__}")
    missing = [key for key in ("errors", "response") if key not in body]
    if missing:
        raise FeedError(f"body: not an API-Football envelope (missing {', '.join(missing)})")

    error_keys, errors = _normalise_errors(body["errors"])
    response = body["response"]
    if not isinstance(response, (list, dict)):
        raise FeedError(f"response: expected a list or an object, got {type(response).__name__}")

    raw_params = body.get("parameters") or {}
    if isinstance(raw_params, list):  # only ever seen empty
        raw_params = {}
    params = read_mapping(raw_params, "parameters")

    raw_paging = body.get("paging") or {"current": 1, "total": 1}
    paging_obj = read_mapping(raw_paging, "paging")
    paging = Paging(
        current=read_int(paging_obj.get("current", 1), "paging.current"),
        total=read_int(paging_obj.get("total", 1), "paging.total"),
    )
    results_raw = body.get("results")
    results = (
        read_int(results_raw, "results")
        if results_raw is not None
        else (len(response) if isinstance(response, list) else 1)
    )
    return Envelope(
        get=read_opt_str(body.get("get"), "get") or "",
        parameters={str(k): str(v) for k, v in params.items()},
        errors=errors,
        error_keys=error_keys,
        results=results,
        paging=paging,
        response=response,
    )


def response_items(body: Envelope | Mapping[str, Any] | str | bytes) -> list[Any]:
    envelope = body if isinstance(body, Envelope) else parse_envelope(body)
    if envelope.errors:
        raise FeedError(f"errors: API-Football reported {'; '.join(envelope.errors)}")
    return read_list(envelope.response, "response")


# --------------------------------------------------------------------------- /status


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """/status: the plan and today's usage. /status calls do not count against the quota."""

    plan: str
    active: bool
    end: datetime | None
    requests_current: int
    requests_limit_day: int

    @property
    def requests_remaining(self) -> int:
        return max(self.requests_limit_day - self.requests_current, 0)


def parse_status(body: Envelope | Mapping[str, Any] | str | bytes) -> AccountStatus:
    envelope = body if isinstance(body, Envelope) else parse_envelope(body)
    if envelope.errors:
        raise FeedError(f"errors: API-Football reported {'; '.join(envelope.errors)}")
    response = read_mapping(envelope.response, "response")
    sub = read_mapping(read_key(response, "subscription", "response"), "response.subscription")
    req = read_mapping(read_key(response, "requests", "response"), "response.requests")
    end_raw = sub.get("end")
    return AccountStatus(
        plan=read_str(read_key(sub, "plan", "response.subscription"), "response.subscription.plan"),
        active=bool(sub.get("active")),
        end=read_datetime(end_raw, "response.subscription.end") if end_raw else None,
        requests_current=read_int(
            read_key(req, "current", "response.requests"), "response.requests.current"
        ),
        requests_limit_day=read_int(
            read_key(req, "limit_day", "response.requests"), "response.requests.limit_day"
        ),
    )


# --------------------------------------------------------------------------- /leagues


@dataclass(frozen=True, slots=True)
class SeasonRecord:
    year: int
    start: date | None
    end: date | None
    current: bool
    has_odds: bool


@dataclass(frozen=True, slots=True)
class LeagueRecord:
    api_id: int
    name: str
    type: str
    country: str | None
    country_code: str | None
    logo: str | None
    seasons: tuple[SeasonRecord, ...]

    @property
    def current_season(self) -> SeasonRecord | None:
        return next((season for season in self.seasons if season.current), None)


def _season(raw: Any, path: str) -> SeasonRecord:
    obj = read_mapping(raw, path)
    coverage = obj.get("coverage") or {}
    return SeasonRecord(
        year=read_int(read_key(obj, "year", path), join_path(path, "year")),
        start=read_opt_date(obj.get("start"), join_path(path, "start")),
        end=read_opt_date(obj.get("end"), join_path(path, "end")),
        current=bool(obj.get("current")),
        has_odds=bool(read_mapping(coverage, join_path(path, "coverage")).get("odds")),
    )


def parse_league(item: Any, path: str = "league") -> LeagueRecord:
    """One element of /leagues ``response``: ``{"league", "country", "seasons": [...]}``."""
    obj = read_mapping(item, path)
    league_path = join_path(path, "league")
    league = read_mapping(read_key(obj, "league", path), league_path)
    country = read_mapping(obj.get("country") or {}, join_path(path, "country"))
    return LeagueRecord(
        api_id=read_int(read_key(league, "id", league_path), join_path(league_path, "id")),
        name=read_str(read_key(league, "name", league_path), join_path(league_path, "name")),
        type=read_opt_str(league.get("type"), join_path(league_path, "type")) or "",
        country=read_opt_str(country.get("name"), join_path(path, "country.name")),
        country_code=read_opt_str(country.get("code"), join_path(path, "country.code")),
        logo=read_opt_str(league.get("logo"), join_path(league_path, "logo")),
        seasons=read_items(obj.get("seasons") or [], join_path(path, "seasons"), _season),
    )


def parse_leagues(body: Envelope | Mapping[str, Any] | str | bytes) -> tuple[LeagueRecord, ...]:
    return read_items(response_items(body), "response", parse_league)


# --------------------------------------------------------------------------- /fixtures


class FixtureStatus(enum.StrEnum):
    """Where a fixture is in its life, collapsed from API-Football's short status codes.

    The raw code is kept on :class:`FixtureRecord` (``status_short``) because LIVE covers
    several phases (1H, HT, 2H, ET, BT, P, SUSP, INT, LIVE) that only display cares about.
    """

    SCHEDULED = "scheduled"
    LIVE = "live"
    FINISHED = "finished"
    FINISHED_AET = "finished_aet"
    FINISHED_PEN = "finished_pen"
    POSTPONED = "postponed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"
    AWARDED = "awarded"
    WALKOVER = "walkover"
    UNKNOWN = "unknown"

    @classmethod
    def from_short(cls, code: str | None) -> FixtureStatus:
        """Map a short code; an unknown or missing code is UNKNOWN, never an exception,
        because API-Football adds codes without notice and one new code must not stop
        ingestion of a whole league."""
        return _STATUS_BY_SHORT.get((code or "").strip().upper(), cls.UNKNOWN)

    @property
    def is_finished(self) -> bool:
        """Played to a result that settles markets (FT, AET, PEN)."""
        return self in _FINISHED

    @property
    def is_void(self) -> bool:
        """Not played (postponed, cancelled, abandoned): bets on it are void."""
        return self in _VOID

    @property
    def is_technical_result(self) -> bool:
        """Result decided off the pitch (awarded, walkover): the score is not a played score."""
        return self in (FixtureStatus.AWARDED, FixtureStatus.WALKOVER)

    @property
    def is_started(self) -> bool:
        """Kick-off has happened (or the fixture is already decided); pre-match betting is over."""
        return self in _STARTED


_STATUS_BY_SHORT: dict[str, FixtureStatus] = {
    "TBD": FixtureStatus.SCHEDULED,
    "NS": FixtureStatus.SCHEDULED,
    **{
        code: FixtureStatus.LIVE
        for code in ("1H", "HT", "2H", "ET", "BT", "P", "SUSP", "INT", "LIVE")
    },
    "FT": FixtureStatus.FINISHED,
    "AET": FixtureStatus.FINISHED_AET,
    "PEN": FixtureStatus.FINISHED_PEN,
    "PST": FixtureStatus.POSTPONED,
    "CANC": FixtureStatus.CANCELLED,
    "ABD": FixtureStatus.ABANDONED,
    "AWD": FixtureStatus.AWARDED,
    "WO": FixtureStatus.WALKOVER,
}
_FINISHED = frozenset(
    {FixtureStatus.FINISHED, FixtureStatus.FINISHED_AET, FixtureStatus.FINISHED_PEN}
)
_VOID = frozenset({FixtureStatus.POSTPONED, FixtureStatus.CANCELLED, FixtureStatus.ABANDONED})
_STARTED = frozenset(
    {
        FixtureStatus.LIVE,
        *_FINISHED,
        FixtureStatus.ABANDONED,
        FixtureStatus.AWARDED,
        FixtureStatus.WALKOVER,
    }
)


@dataclass(frozen=True, slots=True)
class TeamRecord:
    api_id: int
    name: str
    code: str | None
    logo: str | None


@dataclass(frozen=True, slots=True)
class FixtureRecord:
    """One fixture. ``fulltime_*`` is the 90-minute score (what settles markets);
    ``goals_*`` is the running/final score including extra time but not penalties;
    ``extratime_*`` counts only goals scored in extra time."""

    api_id: int
    league_api_id: int
    season: int
    round: str | None
    kickoff: datetime
    venue: str | None
    referee: str | None
    status: FixtureStatus
    status_short: str
    status_long: str | None
    elapsed: int | None
    home: TeamRecord
    away: TeamRecord
    goals_home: int | None
    goals_away: int | None
    halftime_home: int | None
    halftime_away: int | None
    fulltime_home: int | None
    fulltime_away: int | None
    extratime_home: int | None
    extratime_away: int | None
    penalty_home: int | None
    penalty_away: int | None
    league_name: str | None = None
    league_country: str | None = None


def _team(raw: Any, path: str) -> TeamRecord:
    obj = read_mapping(raw, path)
    return TeamRecord(
        api_id=read_int(read_key(obj, "id", path), join_path(path, "id")),
        name=read_str(read_key(obj, "name", path), join_path(path, "name")),
        code=read_opt_str(obj.get("code"), join_path(path, "code")),
        logo=read_opt_str(obj.get("logo"), join_path(path, "logo")),
    )


def _pair(parent: Mapping[str, Any], key: str, path: str) -> tuple[int | None, int | None]:
    raw = parent.get(key)
    if raw is None:
        return None, None
    obj = read_mapping(raw, join_path(path, key))
    return (
        read_opt_int(obj.get("home"), join_path(path, f"{key}.home")),
        read_opt_int(obj.get("away"), join_path(path, f"{key}.away")),
    )


def parse_fixture(item: Any, path: str = "fixture") -> FixtureRecord:
    """One element of /fixtures ``response``."""
    obj = read_mapping(item, path)
    fx_path = join_path(path, "fixture")
    fixture = read_mapping(read_key(obj, "fixture", path), fx_path)
    league_path = join_path(path, "league")
    league = read_mapping(read_key(obj, "league", path), league_path)
    teams_path = join_path(path, "teams")
    teams = read_mapping(read_key(obj, "teams", path), teams_path)
    status = read_mapping(fixture.get("status") or {}, join_path(fx_path, "status"))
    venue = fixture.get("venue") or {}
    score_path = join_path(path, "score")
    score = read_mapping(obj.get("score") or {}, score_path)

    if fixture.get("date") is not None:
        kickoff = read_datetime(fixture["date"], join_path(fx_path, "date"))
    elif fixture.get("timestamp") is not None:
        kickoff = datetime.fromtimestamp(
            read_int(fixture["timestamp"], join_path(fx_path, "timestamp")), tz=UTC
        )
    else:
        raise FeedError(f"{join_path(fx_path, 'date')}: missing (and no timestamp)")

    short = read_opt_str(status.get("short"), join_path(fx_path, "status.short")) or ""
    goals_home, goals_away = _pair(obj, "goals", path)
    ht = _pair(score, "halftime", score_path)
    ft = _pair(score, "fulltime", score_path)
    et = _pair(score, "extratime", score_path)
    pen = _pair(score, "penalty", score_path)
    return FixtureRecord(
        api_id=read_int(read_key(fixture, "id", fx_path), join_path(fx_path, "id")),
        league_api_id=read_int(read_key(league, "id", league_path), join_path(league_path, "id")),
        season=read_int(read_key(league, "season", league_path), join_path(league_path, "season")),
        round=read_opt_str(league.get("round"), join_path(league_path, "round")),
        kickoff=kickoff,
        venue=read_opt_str(
            read_mapping(venue, join_path(fx_path, "venue")).get("name"), join_path(fx_path, "venue.name")
        ),
        referee=read_opt_str(fixture.get("referee"), join_path(fx_path, "referee")),
        status=FixtureStatus.from_short(short),
        status_short=short,
        status_long=read_opt_str(status.get("long"), join_path(fx_path, "status.long")),
        elapsed=read_opt_int(status.get("elapsed"), join_path(fx_path, "status.elapsed")),
        home=_team(read_key(teams, "home", teams_path), join_path(teams_path, "home")),
        away=_team(read_key(teams, "away", teams_path), join_path(teams_path, "away")),
        goals_home=goals_home,
        goals_away=goals_away,
        halftime_home=ht[0],
        halftime_away=ht[1],
        fulltime_home=ft[0],
        fulltime_away=ft[1],
        extratime_home=et[0],
        extratime_away=et[1],
        penalty_home=pen[0],
        penalty_away=pen[1],
        league_name=read_opt_str(league.get("name"), join_path(league_path, "name")),
        league_country=read_opt_str(league.get("country"), join_path(league_path, "country")),
    )


def parse_fixtures(body: Envelope | Mapping[str, Any] | str | bytes) -> tuple[FixtureRecord, ...]:
    return read_items(response_items(body), "response", parse_fixture)

