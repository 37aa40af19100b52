"""A fake API-Football v3 server (raw ASGI, no framework) for tests, benchmarks and dev.

It answers ``GET /leagues``, ``/fixtures``, ``/odds``, ``/odds/live`` and ``/status`` with the
real API's envelope and response headers, backed by :class:`FakeFootballData` (built from
:mod:`fake_feed`, and editable by tests: put a fixture, set a score, pin odds). What a client
has to get right is reproduced:

* the ``x-apisports-key`` header: missing or wrong -> ``errors: {"token": ...}``;
* quota headers on every answer: ``x-ratelimit-requests-limit`` /
  ``x-ratelimit-requests-remaining`` (per day) and ``X-RateLimit-Limit`` /
  ``X-RateLimit-Remaining`` (per minute), decremented per counted request;
* running out: ``errors: {"requests": "You have reached the request limit for the day..."}``
  or ``errors: {"rateLimit": "Too many requests..."}``, with HTTP 200 like the real API, so a
  client that only checks the status code is caught;
* parameter validation errors keyed by parameter, ``/odds`` paging (10 per page);
* latency (``asyncio.sleep``, so concurrent requests overlap) and a request log.

Quota model (documented because the real one is not): every authenticated request to a data
endpoint counts against both windows, including ones answered with a validation error;
``/status``, refused requests (bad key, quota out) and ``/_fake/*`` control calls do not. The
minute window is fixed (60 s from its first request); the daily one resets only via
:meth:`FakeApiFootball.reset_quota`.

Run in-process with :func:`start_fake_api` (uvicorn in a thread, free loopback port) or as a
process with ``python -m devtools.servers football --port 8002``. No Django.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from devtools import fake_feed
from football_data_app.feed import FixtureStatus, parse_fixture

__all__ = [
    "DAILY_LIMIT_MESSAGE",
    "MISSING_KEY_MESSAGE",
    "ODDS_PAGE_SIZE",
    "FakeApiFootball",
    "FakeFootballData",
    "RecordedRequest",
    "add_arguments",
    "from_arguments",
    "start_fake_api",
]

logger = logging.getLogger(__name__)

ODDS_PAGE_SIZE = 10
MAX_IDS = 20
MAX_RECORDS = 50_000  # a long benchmark must not grow memory without bound
MISSING_KEY_MESSAGE = (
    "Error/Missing application key. Go to https://www.api-football.com/documentation-v3 "
    "to learn how to get your API application key."
)
WRONG_KEY_MESSAGE = "Error/Invalid application key. Check your key on https://dashboard.api-football.com."
DAILY_LIMIT_MESSAGE = (
    "You have reached the request limit for the day, Go to https://dashboard.api-football.com "
    "to upgrade your plan."
)
_JSON = b"application/json"

_FIXTURE_PARAMS = frozenset(
    {"id", "ids", "live", "date", "league", "season", "team", "from", "to", "round", "status", "timezone"}
)
_ODDS_PARAMS = frozenset({"fixture", "league", "season", "date", "timezone", "page", "bookmaker", "bet"})
_LIVE_ODDS_PARAMS = frozenset({"fixture", "league", "bet"})
_LEAGUE_PARAMS = frozenset({"id", "name", "country", "code", "season", "type", "current", "search"})


class _ParamError(Exception):
    """A bad query parameter; answered as ``errors: {field: message}`` like the real API."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# --------------------------------------------------------------------------- the data


def _kickoff(item: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(item["fixture"]["date"]).astimezone(UTC)


class FakeFootballData:
    """What the fake API knows: leagues, fixtures and (pinned or generated) odds.

    Thread-safe: tests edit it from the test thread while uvicorn reads it from its own.
    Pre-match odds exist for every fixture (generated from the fixture's goal model unless
    pinned with :meth:`put_odds`); live odds for fixtures whose status is live.
    """

    def __init__(self, *, seed: int = 0, bookmakers: int = 5, season: int = 2024):
        if not 1 <= bookmakers <= len(fake_feed.BOOKMAKERS):
            raise ValueError(f"bookmakers: must be 1..{len(fake_feed.BOOKMAKERS)}, got {bookmakers}")
        self.seed = seed
        self.bookmakers = bookmakers
        self.season = season
        self._lock = threading.RLock()
        self._leagues: dict[int, dict[str, Any]] = {}
        self._fixtures: dict[int, dict[str, Any]] = {}
        self._odds: dict[int, dict[str, Any]] = {}
        self._live_odds: dict[int, dict[str, Any]] = {}
        self._order: list[tuple[int, dict[str, Any]]] | None = None  # kick-off order, rebuilt on write

    @classmethod
    def generate(
        cls,
        n_fixtures: int = 50,
        league_ids: Sequence[int] = (39, 140),
        *,
        season: int = 2024,
        start_date: date | None = None,
        statuses: Sequence[str] = ("NS",),
        seed: int = 0,
        bookmakers: int = 5,
        schedule: str = "packed",
    ) -> FakeFootballData:
        """A store with the leagues and ``n_fixtures`` generated fixtures (see ``fake_feed``;
        ``schedule="season"`` for fixtures a real league could have)."""
        data = cls(seed=seed, bookmakers=bookmakers, season=season)
        data.put_leagues(fake_feed.league_items(league_ids, season))
        data.put_fixtures(
            fake_feed.fixture_items(n_fixtures, league_ids, season, start_date, statuses, seed, schedule=schedule)
        )
        return data

    # -- editing ---------------------------------------------------------------------

    def put_leagues(self, items: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            for item in items:
                self._leagues[int(item["league"]["id"])] = copy.deepcopy(dict(item))

    def put_fixtures(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Add or replace fixtures (/fixtures response items). Each is checked with the
        project's parser first, so a malformed test fixture fails here, naming the field."""
        checked = [(parse_fixture(item).api_id, copy.deepcopy(dict(item))) for item in items]
        with self._lock:
            self._fixtures.update(checked)
            self._order = None

    def put_fixture(self, item: Mapping[str, Any]) -> None:
        self.put_fixtures([item])

    def fixture(self, fixture_id: int) -> dict[str, Any]:
        """A copy of the stored fixture item (KeyError if unknown)."""
        with self._lock:
            return copy.deepcopy(self._require(fixture_id))

    def fixture_ids(self) -> list[int]:
        """Ids in kick-off order."""
        return [fid for fid, _ in self._in_order()]

    def set_status(self, fixture_id: int, status: str) -> dict[str, Any]:
        """Move a fixture to ``status`` with scores played out by its goal model."""
        with self._lock:
            item = fake_feed.with_status(self._require(fixture_id), status, self.seed)
            self._fixtures[fixture_id] = item
            self._order = None
            return copy.deepcopy(item)

    def set_result(
        self,
        fixture_id: int,
        home: int,
        away: int,
        ht_home: int | None = None,
        ht_away: int | None = None,
        *,
        status: str = "FT",
        extratime: tuple[int, int] | None = None,
        penalty: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """Give a fixture an exact result. ``home``/``away`` is the 90-minute score; for AET
        pass ``extratime`` goals, for PEN also ``penalty`` (goals then include extra time)."""
        if status not in fake_feed.STATUS_LONG:
            raise ValueError(f"status: unknown API-Football short code {status!r}")
        for name, value in (("home", home), ("away", away)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}: must be a non-negative int, got {value!r}")
        if (ht_home is None) != (ht_away is None):
            raise ValueError("ht_home/ht_away: give both or neither")
        with self._lock:
            item = copy.deepcopy(self._require(fixture_id))
            et = extratime or (0, 0)
            total = (home + et[0], away + et[1])
            none = {"home": None, "away": None}
            item["fixture"]["status"].update(
                short=status,
                long=fake_feed.STATUS_LONG[status],
                elapsed=120 if extratime is not None or penalty is not None else 90,
            )
            item["goals"] = {"home": total[0], "away": total[1]}
            item["score"] = {
                "halftime": {"home": ht_home, "away": ht_away} if ht_home is not None else none,
                "fulltime": {"home": home, "away": away},
                "extratime": {"home": et[0], "away": et[1]} if extratime is not None else none,
                "penalty": {"home": penalty[0], "away": penalty[1]} if penalty else none,
            }
            decider = penalty or total
            winner = (decider[0] > decider[1], decider[1] > decider[0]) if decider[0] != decider[1] else (None, None)
            item["teams"]["home"]["winner"], item["teams"]["away"]["winner"] = winner
            self._fixtures[fixture_id] = item
            self._order = None
            self._live_odds.pop(fixture_id, None)
            return copy.deepcopy(item)

    def put_odds(self, fixture_id: int, item: Mapping[str, Any]) -> None:
        """Pin the /odds response item for a fixture (instead of generated odds)."""
        with self._lock:
            self._require(fixture_id)
            self._odds[fixture_id] = copy.deepcopy(dict(item))

    def put_live_odds(self, fixture_id: int, item: Mapping[str, Any]) -> None:
        with self._lock:
            self._require(fixture_id)
            self._live_odds[fixture_id] = copy.deepcopy(dict(item))

    # -- reading (under the lock; used by the app) ------------------------------------

    def _require(self, fixture_id: int) -> dict[str, Any]:
        try:
            return self._fixtures[fixture_id]
        except KeyError:
            raise KeyError(f"fixture {fixture_id} is not in the fake store") from None

    def _in_order(self) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            if self._order is None:
                self._order = sorted(self._fixtures.items(), key=lambda pair: (_kickoff(pair[1]), pair[0]))
            return self._order

    def leagues(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._leagues.values())
        if "id" in params:
            items = [i for i in items if i["league"]["id"] == _int_param(params, "id")]
        if "type" in params:
            items = [i for i in items if i["league"]["type"].lower() == params["type"].lower()]
        if "country" in params:
            items = [i for i in items if (i["country"]["name"] or "").lower() == params["country"].lower()]
        if "name" in params:
            items = [i for i in items if i["league"]["name"].lower() == params["name"].lower()]
        if "search" in params:
            items = [i for i in items if params["search"].lower() in i["league"]["name"].lower()]
        if "season" in params:
            year = _int_param(params, "season")
            items = [i for i in items if any(s["year"] == year for s in i["seasons"])]
        if "current" in params:
            wanted = _bool_param(params, "current")
            items = [i for i in items if any(s["current"] for s in i["seasons"]) == wanted]
        return items

    def fixtures(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        ids: set[int] | None = None
        if "id" in params:
            ids = {_int_param(params, "id")}
        if "ids" in params:
            ids = set(_ids_param(params["ids"]))
        day = _date_param(params, "date") if "date" in params else None
        start = _date_param(params, "from") if "from" in params else None
        end = _date_param(params, "to") if "to" in params else None
        if (start is None) != (end is None):
            missing = "to" if start is not None else "from"
            raise _ParamError(missing, f"The {missing.title()} field is required with From/To.")
        league = _int_param(params, "league") if "league" in params else None
        season = _int_param(params, "season") if "season" in params else None
        team = _int_param(params, "team") if "team" in params else None
        statuses = set(params["status"].upper().split("-")) if "status" in params else None
        live_leagues: set[int] | None = None
        live = "live" in params
        if live and params["live"].lower() != "all":
            live_leagues = set(_ids_param(params["live"], field="live"))

        out = []
        for fid, item in self._in_order():
            if ids is not None and fid not in ids:
                continue
            if league is not None and item["league"]["id"] != league:
                continue
            if season is not None and item["league"]["season"] != season:
                continue
            if team is not None and team not in (item["teams"]["home"]["id"], item["teams"]["away"]["id"]):
                continue
            if "round" in params and item["league"]["round"] != params["round"]:
                continue
            short = item["fixture"]["status"]["short"]
            if statuses is not None and short not in statuses:
                continue
            if live:
                if FixtureStatus.from_short(short) is not FixtureStatus.LIVE:
                    continue
                if live_leagues is not None and item["league"]["id"] not in live_leagues:
                    continue
            kickoff_day = _kickoff(item).date()
            if day is not None and kickoff_day != day:
                continue
            if start is not None and end is not None and not start <= kickoff_day <= end:
                continue
            out.append(item)
        return out

    def odds(self, params: Mapping[str, str]) -> tuple[list[dict[str, Any]], int, int]:
        """(items of the requested page, page, total pages)."""
        if not {"fixture", "league", "date"} & params.keys():
            raise _ParamError("required", "At least one of Fixture, League or Date is required.")
        page = _int_param(params, "page") if "page" in params else 1
        if page < 1:
            raise _ParamError("page", "The Page field must be at least 1.")
        selection = {k: params[k] for k in ("league", "season", "date") if k in params}
        if "fixture" in params:
            selection["id"] = params["fixture"]
        fixtures = self.fixtures(selection)
        total = max(1, math.ceil(len(fixtures) / ODDS_PAGE_SIZE))
        chunk = fixtures[(page - 1) * ODDS_PAGE_SIZE : page * ODDS_PAGE_SIZE]
        bookmaker = _int_param(params, "bookmaker") if "bookmaker" in params else None
        bet = _int_param(params, "bet") if "bet" in params else None
        items = []
        for fixture in chunk:
            with self._lock:
                pinned = self._odds.get(fixture["fixture"]["id"])
            item = copy.deepcopy(pinned) if pinned else fake_feed.odds_item(fixture, self.bookmakers, self.seed)
            if bookmaker is not None:
                item["bookmakers"] = [b for b in item["bookmakers"] if b["id"] == bookmaker]
            if bet is not None:
                for book in item["bookmakers"]:
                    book["bets"] = [b for b in book["bets"] if b["id"] == bet]
                item["bookmakers"] = [b for b in item["bookmakers"] if b["bets"]]
            if item["bookmakers"]:
                items.append(item)
        return items, page, total

    def live_odds(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        selection: dict[str, str] = {"live": "all"}
        if "fixture" in params:
            selection["id"] = params["fixture"]
        if "league" in params:
            selection["league"] = params["league"]
        bet = _int_param(params, "bet") if "bet" in params else None
        items = []
        for fixture in self.fixtures(selection):
            with self._lock:
                pinned = self._live_odds.get(fixture["fixture"]["id"])
            item = copy.deepcopy(pinned) if pinned else fake_feed.live_odds_item(fixture, self.seed)
            if bet is not None:
                item["odds"] = [b for b in item["odds"] if b["id"] == bet]
            items.append(item)
        return items


def _int_param(params: Mapping[str, str], field: str) -> int:
    value = params[field]
    if not value.isdigit():
        raise _ParamError(field, f"The {field.title()} field must contain an integer.")
    return int(value)


def _bool_param(params: Mapping[str, str], field: str) -> bool:
    value = params[field].lower()
    if value not in ("true", "false"):
        raise _ParamError(field, f"The {field.title()} field must contain true or false.")
    return value == "true"


def _ids_param(raw: str, field: str = "ids") -> list[int]:
    parts = raw.split("-")
    if not all(part.isdigit() for part in parts):
        raise _ParamError(field, f"The {field.title()} field must contain ids separated by '-'.")
    if field == "ids" and len(parts) > MAX_IDS:
        raise _ParamError(field, f"Maximum of {MAX_IDS} fixtures ids.")
    return [int(part) for part in parts]


def _date_param(params: Mapping[str, str], field: str) -> date:
    try:
        return date.fromisoformat(params[field])
    except ValueError:
        raise _ParamError(field, f"The {field.title()} field must contain a valid date (YYYY-MM-DD).") from None


def _check_params(params: Mapping[str, str], allowed: frozenset[str], *, required: bool) -> None:
    for name in params:
        if name not in allowed:
            raise _ParamError(name, f"The {name.title()} field do not exist.")
    if required and not params:
        raise _ParamError("required", "At least one parameter is required.")


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it. ``at`` is wall-clock time (``time.time()``)."""

    seq: int
    method: str
    path: str
    params: dict[str, str]
    api_key: str | None
    at: float
    status: int
    error_keys: tuple[str, ...]
    counted: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"error_keys": list(self.error_keys)}


@dataclass(slots=True)
class _Reply:
    status: int
    body: dict[str, Any]
    headers: list[tuple[bytes, bytes]]


class FakeApiFootball:
    """The ASGI app. ``api_keys``: keys accepted in ``x-apisports-key`` (empty: any key)."""

    def __init__(
        self,
        data: FakeFootballData | None = None,
        *,
        api_keys: Iterable[str] = ("test-key",),
        daily_limit: int = 7500,
        per_minute_limit: int = 300,
        latency: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        max_records: int = MAX_RECORDS,
    ):
        for name, value in (("daily_limit", daily_limit), ("per_minute_limit", per_minute_limit)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: must be a positive int, got {value!r}")
        if latency < 0:
            raise ValueError(f"latency: must not be negative, got {latency}")
        self.data = data if data is not None else FakeFootballData.generate()
        self.api_keys = frozenset(api_keys)
        self._lock = threading.Lock()
        self.clock = clock
        self.daily_limit = daily_limit
        self.per_minute_limit = per_minute_limit
        self.latency = latency
        self._daily_used = 0
        self._minute_started: float | None = None
        self._minute_used = 0
        self._seq = 0
        self._records: list[RecordedRequest] = []
        self._max_records = max_records

    # -- test controls ---------------------------------------------------------------

    @property
    def daily_remaining(self) -> int:
        with self._lock:
            return max(self.daily_limit - self._daily_used, 0)

    @property
    def minute_remaining(self) -> int:
        with self._lock:
            self._roll_minute()
            return max(self.per_minute_limit - self._minute_used, 0)

    def set_daily_remaining(self, remaining: int) -> None:
        with self._lock:
            self._daily_used = self.daily_limit - max(0, min(remaining, self.daily_limit))

    def exhaust_daily_quota(self) -> None:
        self.set_daily_remaining(0)

    def exhaust_minute(self) -> None:
        """Use up this minute's requests (they come back when the minute window rolls)."""
        with self._lock:
            self._roll_minute()
            if self._minute_started is None:
                self._minute_started = self.clock()
            self._minute_used = self.per_minute_limit

    def reset_quota(self) -> None:
        with self._lock:
            self._daily_used = 0
            self._minute_used = 0
            self._minute_started = None

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"latency: must not be negative, got {seconds}")
        self.latency = seconds

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._records if path is None or r.path == path]

    def clear_requests(self) -> int:
        with self._lock:
            count = len(self._records)
            self._records.clear()
            return count

    # -- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        path = scope["path"].rstrip("/") or "/"
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if path.startswith("/_fake/"):
            body = await _read_body(receive)
            reply = self._control(method, path, params, body)
        else:
            api_key = _header(scope, b"x-apisports-key")
            reply = self._answer(method, path, params, api_key)
            if self.latency:
                await asyncio.sleep(self.latency)
        payload = json.dumps(reply.body, separators=(",", ":")).encode()
        headers = [(b"content-type", _JSON), (b"content-length", str(len(payload)).encode()), *reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _roll_minute(self) -> None:
        now = self.clock()
        if self._minute_started is not None and now - self._minute_started >= 60:
            self._minute_started = None
            self._minute_used = 0

    def _quota_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-requests-limit", str(self.daily_limit).encode()),
            (b"x-ratelimit-requests-remaining", str(max(self.daily_limit - self._daily_used, 0)).encode()),
            (b"X-RateLimit-Limit", str(self.per_minute_limit).encode()),
            (b"X-RateLimit-Remaining", str(max(self.per_minute_limit - self._minute_used, 0)).encode()),
        ]

    def _answer(self, method: str, path: str, params: dict[str, str], api_key: str | None) -> _Reply:
        get = path.lstrip("/")
        counted = False
        body: dict[str, Any] | None = None
        with self._lock:
            self._roll_minute()
            status, error = self._refusal(method, path, api_key)
            if error is not None:
                body = fake_feed.envelope(get, params, [], errors=error)
            elif path == "/status":
                body = self._status_body()
            else:
                counted = True
                self._daily_used += 1
                if self._minute_started is None:
                    self._minute_started = self.clock()
                self._minute_used += 1
            headers = self._quota_headers()
        if body is None:  # build outside the lock: generating odds pages takes milliseconds
            body = self._data_body(path, get, params)
        errors = body.get("errors") or {}
        with self._lock:
            self._seq += 1
            self._records.append(
                RecordedRequest(
                    seq=self._seq, method=method, path=path, params=params, api_key=api_key,
                    at=time.time(), status=status, error_keys=tuple(errors), counted=counted,
                )
            )  # fmt: skip
            if len(self._records) > self._max_records:
                del self._records[: len(self._records) - self._max_records]
        return _Reply(status, body, headers)

    def _refusal(self, method: str, path: str, api_key: str | None) -> tuple[int, dict[str, str] | None]:
        """Why a request gets no data (HTTP status, errors), checked in the real API's order.
        Caller holds the lock."""
        if method != "GET":
            return 405, {"method": "Only GET is allowed."}
        if path not in _ENDPOINTS:
            return 404, {"endpoint": "This endpoint do not exist."}
        if not api_key:
            return 200, {"token": MISSING_KEY_MESSAGE}
        if self.api_keys and api_key not in self.api_keys:
            return 200, {"token": WRONG_KEY_MESSAGE}
        if path == "/status":  # free: does not count and works with the quota used up
            return 200, None
        if self._daily_used >= self.daily_limit:
            return 200, {"requests": DAILY_LIMIT_MESSAGE}
        if self._minute_used >= self.per_minute_limit:
            limit = self.per_minute_limit
            return 200, {"rateLimit": f"Too many requests. Your rate limit is {limit} requests per minute."}
        return 200, None

    def _data_body(self, path: str, get: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            if path == "/leagues":
                _check_params(params, _LEAGUE_PARAMS, required=False)
                return fake_feed.envelope(get, params, self.data.leagues(params))
            if path == "/fixtures":
                _check_params(params, _FIXTURE_PARAMS, required=True)
                return fake_feed.envelope(get, params, self.data.fixtures(params))
            if path == "/odds":
                _check_params(params, _ODDS_PARAMS, required=True)
                items, page, total = self.data.odds(params)
                return fake_feed.envelope(get, params, items, page=page, total=total)
            _check_params(params, _LIVE_ODDS_PARAMS, required=False)  # /odds/live
            return fake_feed.envelope(get, params, self.data.live_odds(params))
        except _ParamError as exc:
            return fake_feed.envelope(get, params, [], errors={exc.field: exc.message})

    def _status_body(self) -> dict[str, Any]:
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        return fake_feed.envelope("status", {}, {
            "account": {"firstname": "Fake", "lastname": "Football", "email": "fake@example.com"},
            "subscription": {"plan": "Pro", "end": end.isoformat(), "active": True},
            "requests": {"current": self._daily_used, "limit_day": self.daily_limit},
        })  # fmt: skip

    # -- control endpoints (for the fake run as its own process) ----------------------

    def _control(self, method: str, path: str, params: dict[str, str], raw: bytes) -> _Reply:
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            return _Reply(200, self._control_route(method, path, params, body), [])
        except (ValueError, KeyError, TypeError) as exc:
            return _Reply(400, {"error": str(exc)}, [])

    def _control_route(self, method: str, path: str, params: dict[str, str], body: dict) -> dict[str, Any]:
        route = (method, path)
        if route == ("GET", "/_fake/health"):
            return {"ok": True}
        if route == ("GET", "/_fake/requests"):
            since = int(params.get("since", "0"))
            return {"requests": [r.to_dict() for r in self.requests() if r.seq > since]}
        if route == ("DELETE", "/_fake/requests"):
            return {"cleared": self.clear_requests()}
        if route == ("GET", "/_fake/quota"):
            return {"daily_remaining": self.daily_remaining, "minute_remaining": self.minute_remaining}
        if route == ("POST", "/_fake/quota"):
            if body.get("reset"):
                self.reset_quota()
            if "daily_remaining" in body:
                self.set_daily_remaining(int(body["daily_remaining"]))
            if body.get("exhaust_minute"):
                self.exhaust_minute()
            if "latency" in body:
                self.set_latency(float(body["latency"]))
            return {"daily_remaining": self.daily_remaining, "minute_remaining": self.minute_remaining}
        if route == ("POST", "/_fake/result"):
            fixture_id = int(body["fixture_id"])
            if "home" in body:
                item = self.data.set_result(
                    fixture_id, int(body["home"]), int(body["away"]), body.get("ht_home"), body.get("ht_away"),
                    status=body.get("status", "FT"),
                )  # fmt: skip
            else:
                item = self.data.set_status(fixture_id, body["status"])
            return {"fixture": item}
        raise KeyError(f"no control route {method} {path}")


_ENDPOINTS = frozenset({"/leagues", "/fixtures", "/odds", "/odds/live", "/status"})


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive, limit: int = 1024 * 1024) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ValueError("control body too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


# --------------------------------------------------------------------------- running it


def start_fake_api(
    data: FakeFootballData | None = None, host: str = "127.0.0.1", port: int = 0, **config: Any
):
    """Start ``FakeApiFootball(data, **config)`` on a real socket in a background thread.

    Returns ``(fake, server)``; ``server.url`` is the base URL to give the API-Football client
    (in place of ``https://v3.football.api-sports.io``). Stop with ``server.stop()``.
    """
    from devtools.servers import run_in_thread

    fake = FakeApiFootball(data, **config)
    return fake, run_in_thread(fake, host=host, port=port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command line of ``python -m devtools.servers football``."""
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--key", action="append", dest="keys", help="accepted x-apisports-key (repeatable)")
    parser.add_argument("--any-key", action="store_true", help="accept any non-empty key")
    parser.add_argument("--fixtures", type=int, default=200, help="generated fixtures")
    parser.add_argument("--leagues", default="39,140,135,78,61", help="comma list of league ids")
    parser.add_argument("--season", type=int, default=2024)
    parser.add_argument("--start-date", default=None, help="first kick-off day (YYYY-MM-DD); default today")
    parser.add_argument("--bookmakers", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schedule", choices=fake_feed.SCHEDULES, default="season",
                        help="season: a league's round-robin, one matchday per weekend; packed: 8 a day per league")
    parser.add_argument("--daily-limit", type=int, default=7500)
    parser.add_argument("--per-minute", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=0)


def from_arguments(args: argparse.Namespace) -> FakeApiFootball:
    """The fake the command line describes (see ``add_arguments``)."""
    start = date.fromisoformat(args.start_date) if args.start_date else datetime.now(UTC).date()
    data = FakeFootballData.generate(
        args.fixtures,
        [int(x) for x in args.leagues.split(",") if x.strip()],
        season=args.season,
        start_date=start,
        seed=args.seed,
        bookmakers=args.bookmakers,
        schedule=args.schedule,
    )
    keys = () if args.any_key else (args.keys or ["test-key"])
    logger.info("fake API-Football with %d fixtures", args.fixtures)
    return FakeApiFootball(
        data,
        api_keys=keys,
        daily_limit=args.daily_limit,
        per_minute_limit=args.per_minute,
        latency=args.latency_ms / 1000,
    )
