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

Pure module: no Django, no I/O. Malformed input raises :class:`FeedError` naming the path of
the offending field (``response[3].fixture.date: ...``) so a bad page is diagnosable from the
log line alone. Per-item parsers (:func:`parse_fixture`, :func:`parse_odds_item`, ...) let
ingestion skip one bad item and keep the rest of the page.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

__all__ = [
    "LIVE_BOOKMAKER_ID",
    "AccountStatus",
    "BetFilter",
    "BookmakerOdds",
    "Envelope",
    "FeedError",
    "FixtureRecord",
    "FixtureStatus",
    "LeagueRecord",
    "MarketOdds",
    "OddsRecord",
    "OutcomeOdds",
    "Paging",
    "SeasonRecord",
    "TeamRecord",
    "iter_outcomes",
    "parse_envelope",
    "parse_fixture",
    "parse_fixtures",
    "parse_league",
    "parse_leagues",
    "parse_live_odds",
    "parse_live_odds_item",
    "parse_odds",
    "parse_odds_item",
    "parse_status",
]

LIVE_BOOKMAKER_ID = 0
"""/odds/live has no bookmakers; its markets are exposed under this pseudo-bookmaker id so
pre-match and live odds share one record shape."""

_T = TypeVar("_T")


class FeedError(ValueError):
    """A body that is not what API-Football sends. The message names the field and why."""


# --------------------------------------------------------------------------- helpers


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FeedError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise FeedError(f"{path}: expected a list, got {type(value).__name__}")
    return value


def _get(obj: Mapping[str, Any], key: str, path: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise FeedError(f"{_at(path, key)}: missing") from None


def _int(value: Any, path: str) -> int:
    # bool is an int subclass; a True id is a bug upstream, not an id.
    if isinstance(value, bool):
        raise FeedError(f"{path}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise FeedError(f"{path}: expected an integer, got {value!r}")


def _opt_int(value: Any, path: str) -> int | None:
    return None if value is None else _int(value, path)


def _opt_str(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FeedError(f"{path}: expected a string, got {type(value).__name__}")


def _str(value: Any, path: str) -> str:
    result = _opt_str(value, path)
    if result is None:
        raise FeedError(f"{path}: expected a string, got null")
    return result


def _opt_bool(value: Any, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise FeedError(f"{path}: expected true/false, got {value!r}")


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool):
        raise FeedError(f"{path}: expected a decimal number, got a boolean")
    try:
        # str() first: Decimal(1.1) would carry the float's binary error into the odds.
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise FeedError(f"{path}: expected a decimal number, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise FeedError(f"{path}: expected a non-negative decimal number, got {value!r}")
    return result


def _datetime(value: Any, path: str) -> datetime:
    text = _str(value, path)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise FeedError(f"{path}: expected an ISO 8601 date-time, got {text!r}") from None
    if parsed.tzinfo is None:
        raise FeedError(f"{path}: date-time {text!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _opt_date(value: Any, path: str) -> date | None:
    if value is None:
        return None
    text = _str(value, path)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FeedError(f"{path}: expected a YYYY-MM-DD date, got {text!r}") from None


def _items(
    response: Any, path: str, parse: Callable[[Any, str], _T]
) -> tuple[_T, ...]:
    return tuple(parse(item, _at(path, i)) for i, item in enumerate(_list(response, path)))


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
    params = _mapping(raw_params, "parameters")

    raw_paging = body.get("paging") or {"current": 1, "total": 1}
    paging_obj = _mapping(raw_paging, "paging")
    paging = Paging(
        current=_int(paging_obj.get("current", 1), "paging.current"),
        total=_int(paging_obj.get("total", 1), "paging.total"),
    )
    results_raw = body.get("results")
    results = (
        _int(results_raw, "results")
        if results_raw is not None
        else (len(response) if isinstance(response, list) else 1)
    )
    return Envelope(
        get=_opt_str(body.get("get"), "get") or "",
        parameters={str(k): str(v) for k, v in params.items()},
        errors=errors,
        error_keys=error_keys,
        results=results,
        paging=paging,
        response=response,
    )


def _response_list(body: Envelope | Mapping[str, Any] | str | bytes) -> list[Any]:
    envelope = body if isinstance(body, Envelope) else parse_envelope(body)
    if envelope.errors:
        raise FeedError(f"errors: API-Football reported {'; '.join(envelope.errors)}")
    return _list(envelope.response, "response")


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
    response = _mapping(envelope.response, "response")
    sub = _mapping(_get(response, "subscription", "response"), "response.subscription")
    req = _mapping(_get(response, "requests", "response"), "response.requests")
    end_raw = sub.get("end")
    return AccountStatus(
        plan=_str(_get(sub, "plan", "response.subscription"), "response.subscription.plan"),
        active=bool(sub.get("active")),
        end=_datetime(end_raw, "response.subscription.end") if end_raw else None,
        requests_current=_int(
            _get(req, "current", "response.requests"), "response.requests.current"
        ),
        requests_limit_day=_int(
            _get(req, "limit_day", "response.requests"), "response.requests.limit_day"
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
    obj = _mapping(raw, path)
    coverage = obj.get("coverage") or {}
    return SeasonRecord(
        year=_int(_get(obj, "year", path), _at(path, "year")),
        start=_opt_date(obj.get("start"), _at(path, "start")),
        end=_opt_date(obj.get("end"), _at(path, "end")),
        current=bool(obj.get("current")),
        has_odds=bool(_mapping(coverage, _at(path, "coverage")).get("odds")),
    )


def parse_league(item: Any, path: str = "league") -> LeagueRecord:
    """One element of /leagues ``response``: ``{"league", "country", "seasons": [...]}``."""
    obj = _mapping(item, path)
    league_path = _at(path, "league")
    league = _mapping(_get(obj, "league", path), league_path)
    country = _mapping(obj.get("country") or {}, _at(path, "country"))
    return LeagueRecord(
        api_id=_int(_get(league, "id", league_path), _at(league_path, "id")),
        name=_str(_get(league, "name", league_path), _at(league_path, "name")),
        type=_opt_str(league.get("type"), _at(league_path, "type")) or "",
        country=_opt_str(country.get("name"), _at(path, "country.name")),
        country_code=_opt_str(country.get("code"), _at(path, "country.code")),
        logo=_opt_str(league.get("logo"), _at(league_path, "logo")),
        seasons=_items(obj.get("seasons") or [], _at(path, "seasons"), _season),
    )


def parse_leagues(body: Envelope | Mapping[str, Any] | str | bytes) -> tuple[LeagueRecord, ...]:
    return _items(_response_list(body), "response", parse_league)


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
    obj = _mapping(raw, path)
    return TeamRecord(
        api_id=_int(_get(obj, "id", path), _at(path, "id")),
        name=_str(_get(obj, "name", path), _at(path, "name")),
        code=_opt_str(obj.get("code"), _at(path, "code")),
        logo=_opt_str(obj.get("logo"), _at(path, "logo")),
    )


def _pair(parent: Mapping[str, Any], key: str, path: str) -> tuple[int | None, int | None]:
    raw = parent.get(key)
    if raw is None:
        return None, None
    obj = _mapping(raw, _at(path, key))
    return (
        _opt_int(obj.get("home"), _at(path, f"{key}.home")),
        _opt_int(obj.get("away"), _at(path, f"{key}.away")),
    )


def parse_fixture(item: Any, path: str = "fixture") -> FixtureRecord:
    """One element of /fixtures ``response``."""
    obj = _mapping(item, path)
    fx_path = _at(path, "fixture")
    fixture = _mapping(_get(obj, "fixture", path), fx_path)
    league_path = _at(path, "league")
    league = _mapping(_get(obj, "league", path), league_path)
    teams_path = _at(path, "teams")
    teams = _mapping(_get(obj, "teams", path), teams_path)
    status = _mapping(fixture.get("status") or {}, _at(fx_path, "status"))
    venue = fixture.get("venue") or {}
    score_path = _at(path, "score")
    score = _mapping(obj.get("score") or {}, score_path)

    if fixture.get("date") is not None:
        kickoff = _datetime(fixture["date"], _at(fx_path, "date"))
    elif fixture.get("timestamp") is not None:
        kickoff = datetime.fromtimestamp(
            _int(fixture["timestamp"], _at(fx_path, "timestamp")), tz=UTC
        )
    else:
        raise FeedError(f"{_at(fx_path, 'date')}: missing (and no timestamp)")

    short = _opt_str(status.get("short"), _at(fx_path, "status.short")) or ""
    goals_home, goals_away = _pair(obj, "goals", path)
    ht = _pair(score, "halftime", score_path)
    ft = _pair(score, "fulltime", score_path)
    et = _pair(score, "extratime", score_path)
    pen = _pair(score, "penalty", score_path)
    return FixtureRecord(
        api_id=_int(_get(fixture, "id", fx_path), _at(fx_path, "id")),
        league_api_id=_int(_get(league, "id", league_path), _at(league_path, "id")),
        season=_int(_get(league, "season", league_path), _at(league_path, "season")),
        round=_opt_str(league.get("round"), _at(league_path, "round")),
        kickoff=kickoff,
        venue=_opt_str(
            _mapping(venue, _at(fx_path, "venue")).get("name"), _at(fx_path, "venue.name")
        ),
        referee=_opt_str(fixture.get("referee"), _at(fx_path, "referee")),
        status=FixtureStatus.from_short(short),
        status_short=short,
        status_long=_opt_str(status.get("long"), _at(fx_path, "status.long")),
        elapsed=_opt_int(status.get("elapsed"), _at(fx_path, "status.elapsed")),
        home=_team(_get(teams, "home", teams_path), _at(teams_path, "home")),
        away=_team(_get(teams, "away", teams_path), _at(teams_path, "away")),
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
        league_name=_opt_str(league.get("name"), _at(league_path, "name")),
        league_country=_opt_str(league.get("country"), _at(league_path, "country")),
    )


def parse_fixtures(body: Envelope | Mapping[str, Any] | str | bytes) -> tuple[FixtureRecord, ...]:
    return _items(_response_list(body), "response", parse_fixture)


# --------------------------------------------------------------------------- /odds, /odds/live


@dataclass(frozen=True, slots=True)
class OutcomeOdds:
    """One priced selection as the feed labels it (normalise with ``markets.normalise_outcome``).

    Pre-match values carry the line in the label (``"Over 2.5"``); live values carry it in
    ``handicap`` (``value="Over", handicap="2.5"``) and may be ``suspended``.
    """

    value: str
    odd: Decimal
    handicap: str | None = None
    main: bool | None = None
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class MarketOdds:
    api_bet_id: int | None
    name: str
    outcomes: tuple[OutcomeOdds, ...]


@dataclass(frozen=True, slots=True)
class BookmakerOdds:
    api_id: int
    name: str
    markets: tuple[MarketOdds, ...]


@dataclass(frozen=True, slots=True)
class OddsRecord:
    """Odds for one fixture. Live records have one pseudo-bookmaker (``LIVE_BOOKMAKER_ID``)
    and the in-play flags; ``blocked``/``stopped`` mean "do not accept bets now"."""

    fixture_api_id: int
    league_api_id: int | None
    update: datetime
    bookmakers: tuple[BookmakerOdds, ...]
    is_live: bool = False
    stopped: bool = False
    blocked: bool = False
    finished: bool = False


# The odds parsers below run once per priced selection (millions per ingestion run), so they
# build no path strings on the happy path: errors carry a path relative to the current level
# ("[3].odd: ...") and each level prepends its own position on the way up.

BetFilter = Callable[[int | None, str], bool]
"""``(bet id, bet name) -> keep?``: lets ingestion skip markets it does not offer before
their values are parsed (real books price 100+ bet types; we use 12)."""


def _rget(obj: Mapping[str, Any], key: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise FeedError(f".{key}: missing") from None


def _nested(parse: Callable[[Any], _T], raw: Any, where: str) -> _T:
    try:
        return parse(raw)
    except FeedError as exc:
        raise FeedError(f"{where}{exc}") from None


def _each(raw: Any, where: str, parse: Callable[[Any], _T]) -> tuple[_T, ...]:
    if not isinstance(raw, list):
        raise FeedError(f"{where}: expected a list, got {type(raw).__name__}")
    out = []
    for index, item in enumerate(raw):
        try:
            out.append(parse(item))
        except FeedError as exc:
            raise FeedError(f"{where}[{index}]{exc}") from None
    return tuple(out)


def _outcome(raw: Any) -> OutcomeOdds:
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise FeedError(f": expected an object, got {type(raw).__name__}")
    get = raw.get
    value, odd, handicap, main, suspended = (
        get("value"), get("odd"), get("handicap"), get("main"), get("suspended")
    )
    if type(value) is not str:
        value = _str(_rget(raw, "value"), ".value")
    price = None
    if type(odd) is str:
        try:
            price = Decimal(odd)
        except InvalidOperation:
            price = None
        else:
            if not price.is_finite() or price < 0:
                price = None
    if price is None:  # slow path: accepts numbers, or raises naming the field
        price = _decimal(_rget(raw, "odd"), ".odd")
    if handicap is not None and type(handicap) is not str:
        handicap = _opt_str(handicap, ".handicap")
    if main is not None and type(main) is not bool:
        main = _opt_bool(main, ".main")
    if type(suspended) is not bool:
        suspended = bool(_opt_bool(suspended, ".suspended"))
    return OutcomeOdds(value, price, handicap, main, suspended)


def _markets(raw: Any, where: str, bet_filter: BetFilter | None) -> tuple[MarketOdds, ...]:
    if not isinstance(raw, list):
        raise FeedError(f"{where}: expected a list, got {type(raw).__name__}")
    out = []
    for index, bet in enumerate(raw):
        try:
            if not isinstance(bet, Mapping):
                raise FeedError(f": expected an object, got {type(bet).__name__}")
            bet_id = _opt_int(bet.get("id"), ".id")
            name = _str(_rget(bet, "name"), ".name")
            if bet_filter is not None and not bet_filter(bet_id, name):
                continue
            outcomes = _each(_rget(bet, "values"), ".values", _outcome)
        except FeedError as exc:
            raise FeedError(f"{where}[{index}]{exc}") from None
        out.append(MarketOdds(api_bet_id=bet_id, name=name, outcomes=outcomes))
    return tuple(out)


def _bookmaker(raw: Any, bet_filter: BetFilter | None) -> BookmakerOdds:
    if not isinstance(raw, Mapping):
        raise FeedError(f": expected an object, got {type(raw).__name__}")
    return BookmakerOdds(
        api_id=_int(_rget(raw, "id"), ".id"),
        name=_str(_rget(raw, "name"), ".name"),
        markets=_markets(_rget(raw, "bets"), ".bets", bet_filter),
    )


def _id_of(obj: Mapping[str, Any], key: str, *, required: bool) -> int | None:
    raw = obj.get(key)
    if raw is None:
        if required:
            raise FeedError(f".{key}: missing")
        return None
    sub = _mapping(raw, f".{key}")
    value = sub.get("id")
    if value is None and required:
        raise FeedError(f".{key}.id: missing")
    return _opt_int(value, f".{key}.id")


def _odds_item(item: Any, bet_filter: BetFilter | None) -> OddsRecord:
    obj = _mapping(item, "")
    raw_books = _rget(obj, "bookmakers")
    return OddsRecord(
        fixture_api_id=_id_of(obj, "fixture", required=True),  # type: ignore[arg-type]
        league_api_id=_id_of(obj, "league", required=False),
        update=_datetime(_rget(obj, "update"), ".update"),
        bookmakers=_each(raw_books, ".bookmakers", lambda raw: _bookmaker(raw, bet_filter)),
    )


def _live_odds_item(item: Any, bet_filter: BetFilter | None) -> OddsRecord:
    obj = _mapping(item, "")
    flags = _mapping(obj.get("status") or {}, ".status")
    markets = _markets(_rget(obj, "odds"), ".odds", bet_filter)
    return OddsRecord(
        fixture_api_id=_id_of(obj, "fixture", required=True),  # type: ignore[arg-type]
        league_api_id=_id_of(obj, "league", required=False),
        update=_datetime(_rget(obj, "update"), ".update"),
        bookmakers=(BookmakerOdds(api_id=LIVE_BOOKMAKER_ID, name="Live", markets=markets),),
        is_live=True,
        stopped=bool(_opt_bool(flags.get("stopped"), ".status.stopped")),
        blocked=bool(_opt_bool(flags.get("blocked"), ".status.blocked")),
        finished=bool(_opt_bool(flags.get("finished"), ".status.finished")),
    )


def parse_odds_item(
    item: Any, path: str = "odds", bet_filter: BetFilter | None = None
) -> OddsRecord:
    """One element of /odds (pre-match) ``response``; ``bet_filter`` drops unwanted bets."""
    return _nested(lambda raw: _odds_item(raw, bet_filter), item, path)


def parse_live_odds_item(
    item: Any, path: str = "odds", bet_filter: BetFilter | None = None
) -> OddsRecord:
    """One element of /odds/live ``response`` (``odds[]`` instead of ``bookmakers[].bets[]``)."""
    return _nested(lambda raw: _live_odds_item(raw, bet_filter), item, path)


def parse_odds(
    body: Envelope | Mapping[str, Any] | str | bytes, bet_filter: BetFilter | None = None
) -> tuple[OddsRecord, ...]:
    return _each(_response_list(body), "response", lambda raw: _odds_item(raw, bet_filter))


def parse_live_odds(
    body: Envelope | Mapping[str, Any] | str | bytes, bet_filter: BetFilter | None = None
) -> tuple[OddsRecord, ...]:
    return _each(_response_list(body), "response", lambda raw: _live_odds_item(raw, bet_filter))


def iter_outcomes(
    records: Iterable[OddsRecord],
) -> Iterable[tuple[OddsRecord, BookmakerOdds, MarketOdds, OutcomeOdds]]:
    """Flatten odds records for bulk ingestion (one tuple per priced selection)."""
    for record in records:
        for bookmaker in record.bookmakers:
            for market in bookmaker.markets:
                for outcome in market.outcomes:
                    yield record, bookmaker, market, outcome
