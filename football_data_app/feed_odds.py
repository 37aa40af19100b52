"""API-Football /odds (pre-match) and /odds/live response bodies -> typed, frozen records.

Pre-match odds come as ``bookmakers[].bets[].values[]``; live odds as ``odds[].values[]``
with in-play flags. Both become :class:`OddsRecord` (live under the pseudo-bookmaker
:data:`LIVE_BOOKMAKER_ID`), so ingestion writes them one way.

Pure module: no Django, no I/O. Malformed input raises :class:`FeedError` naming the path of
the offending field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from .feed import Envelope, response_items
from .feed_fields import (
    FeedError,
    read_datetime,
    read_decimal,
    read_int,
    read_mapping,
    read_opt_bool,
    read_opt_int,
    read_opt_str,
    read_str,
)

__all__ = [
    "LIVE_BOOKMAKER_ID",
    "BetFilter",
    "BookmakerOdds",
    "MarketOdds",
    "OddsRecord",
    "OutcomeOdds",
    "iter_outcomes",
    "parse_live_odds",
    "parse_live_odds_item",
    "parse_odds",
    "parse_odds_item",
]

LIVE_BOOKMAKER_ID = 0
"""/odds/live has no bookmakers; its markets are exposed under this pseudo-bookmaker id so
pre-match and live odds share one record shape."""

_T = TypeVar("_T")


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
        value = read_str(_rget(raw, "value"), ".value")
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
        price = read_decimal(_rget(raw, "odd"), ".odd")
    if handicap is not None and type(handicap) is not str:
        handicap = read_opt_str(handicap, ".handicap")
    if main is not None and type(main) is not bool:
        main = read_opt_bool(main, ".main")
    if type(suspended) is not bool:
        suspended = bool(read_opt_bool(suspended, ".suspended"))
    return OutcomeOdds(value, price, handicap, main, suspended)


def _markets(raw: Any, where: str, bet_filter: BetFilter | None) -> tuple[MarketOdds, ...]:
    if not isinstance(raw, list):
        raise FeedError(f"{where}: expected a list, got {type(raw).__name__}")
    out = []
    for index, bet in enumerate(raw):
        try:
            if not isinstance(bet, Mapping):
                raise FeedError(f": expected an object, got {type(bet).__name__}")
            bet_id = read_opt_int(bet.get("id"), ".id")
            name = read_str(_rget(bet, "name"), ".name")
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
        api_id=read_int(_rget(raw, "id"), ".id"),
        name=read_str(_rget(raw, "name"), ".name"),
        markets=_markets(_rget(raw, "bets"), ".bets", bet_filter),
    )


def _id_of(obj: Mapping[str, Any], key: str, *, required: bool) -> int | None:
    raw = obj.get(key)
    if raw is None:
        if required:
            raise FeedError(f".{key}: missing")
        return None
    sub = read_mapping(raw, f".{key}")
    value = sub.get("id")
    if value is None and required:
        raise FeedError(f".{key}.id: missing")
    return read_opt_int(value, f".{key}.id")


def _odds_item(item: Any, bet_filter: BetFilter | None) -> OddsRecord:
    obj = read_mapping(item, "")
    raw_books = _rget(obj, "bookmakers")
    return OddsRecord(
        fixture_api_id=_id_of(obj, "fixture", required=True),  # type: ignore[arg-type]
        league_api_id=_id_of(obj, "league", required=False),
        update=read_datetime(_rget(obj, "update"), ".update"),
        bookmakers=_each(raw_books, ".bookmakers", lambda raw: _bookmaker(raw, bet_filter)),
    )


def _live_odds_item(item: Any, bet_filter: BetFilter | None) -> OddsRecord:
    obj = read_mapping(item, "")
    flags = read_mapping(obj.get("status") or {}, ".status")
    markets = _markets(_rget(obj, "odds"), ".odds", bet_filter)
    return OddsRecord(
        fixture_api_id=_id_of(obj, "fixture", required=True),  # type: ignore[arg-type]
        league_api_id=_id_of(obj, "league", required=False),
        update=read_datetime(_rget(obj, "update"), ".update"),
        bookmakers=(BookmakerOdds(api_id=LIVE_BOOKMAKER_ID, name="Live", markets=markets),),
        is_live=True,
        stopped=bool(read_opt_bool(flags.get("stopped"), ".status.stopped")),
        blocked=bool(read_opt_bool(flags.get("blocked"), ".status.blocked")),
        finished=bool(read_opt_bool(flags.get("finished"), ".status.finished")),
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
    return _each(response_items(body), "response", lambda raw: _odds_item(raw, bet_filter))


def parse_live_odds(
    body: Envelope | Mapping[str, Any] | str | bytes, bet_filter: BetFilter | None = None
) -> tuple[OddsRecord, ...]:
    return _each(response_items(body), "response", lambda raw: _live_odds_item(raw, bet_filter))


def iter_outcomes(
    records: Iterable[OddsRecord],
) -> Iterable[tuple[OddsRecord, BookmakerOdds, MarketOdds, OutcomeOdds]]:
    """Flatten odds records for bulk ingestion (one tuple per priced selection)."""
    for record in records:
        for bookmaker in record.bookmakers:
            for market in bookmaker.markets:
                for outcome in market.outcomes:
                    yield record, bookmaker, market, outcome
