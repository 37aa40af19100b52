"""Flow actions for football: browse leagues -> days -> fixtures -> markets -> selections,
build a ticket, confirm it, and look at the wallet. Registered in ``apps.py``.

The flows in ``default_flows/football.json`` call these by name. Lists are WhatsApp list
messages within WhatsApp's limits (at most 10 rows: 9 choices and a "More" row that pages;
titles 24 characters, descriptions 72); each list action stores its options in a variable
the following question reads with ``expect.choices_from``, so a typed title works as well as
a tap. Paging and "back" use fixed ids (``more``, ``back``) that the flow's transitions match.

Actions run inside the process-message transaction (see ``flows.actions``): they only read
and write the database, and a ticket is placed or refused in the same transaction as the reply
that says so. A refusal is an ordinary reply with the reason; only a bug raises.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Sum, Value, When
from django.utils import timezone

from conversations.models import Contact
from conversations.services.sending import split_text
from flows.engine_types import ActionCall, ActionResult

from .markets import MarketType
from .models import Fixture, League, LedgerEntry, Market, Outcome, Ticket, TicketStatus, Wallet
from .services import betting, catalogue
from .services.betting import BetRefused, RefusalCode, Selection
from .services.wallet import wallet_for
from .texts import MARKET_TITLES, amount_text, fixture_name, money_text, selection_label

__all__ = [
    "ACTIONS",
    "PAGE_SIZE",
    "add_to_slip",
    "fixtures_text",
    "list_days",
    "list_fixtures",
    "list_leagues",
    "list_outcomes",
    "open_tickets",
    "place_ticket",
    "preview_ticket",
    "register",
    "show_markets",
    "wallet_history",
    "wallet_summary",
]

PAGE_SIZE = 9  # rows per list page; the tenth row is "More"
MORE = "more"
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
BODY_MAX = 1024  # a buttons body (the slip and the preview are shown in one)


# --------------------------------------------------------------------------- formatting (pure)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _odds(value: Decimal | str) -> str:
    return f"{Decimal(str(value)):.2f}"


def _local(moment) -> Any:
    return timezone.localtime(moment)


def _page(inputs: Mapping[str, Any]) -> int:
    """The page to show: the next one after "More", else the first."""
    current = inputs.get("page") or 1
    try:
        current = max(int(current), 1)
    except (TypeError, ValueError):
        current = 1
    return current + 1 if inputs.get("pick") == MORE else 1


def _paged(items: Sequence[Any], page: int) -> tuple[Sequence[Any], int, bool]:
    """The items of ``page`` (wrapping to the first page past the end), the page, and
    whether a further page exists."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    if page > pages:
        page = 1
    start = (page - 1) * PAGE_SIZE
    return items[start : start + PAGE_SIZE], page, page < pages


def list_message(
    *,
    body: str,
    button: str,
    section: str,
    rows: Sequence[tuple[str, str, str]],
    more: bool,
    page: int,
    header: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A WhatsApp list spec (within its limits) and the matching choices for ``choices_from``.

    ``rows`` are (id, title, description); titles/descriptions are shortened to fit.
    """
    spec_rows = [
        {"id": row_id, "title": _cut(title, ROW_TITLE_MAX), "description": _cut(description, ROW_DESCRIPTION_MAX)}
        for row_id, title, description in rows
    ]
    if more:
        spec_rows.append({"id": MORE, "title": "➡️ More", "description": f"Show page {page + 1}"})
    spec: dict[str, Any] = {
        "type": "list",
        "body": _cut(body, 4096),
        "button": _cut(button, 20),
        "sections": [{"title": _cut(section, 24), "rows": spec_rows}],
    }
    if header:
        spec["header"] = _cut(header, 60)
    choices = [{"id": row["id"], "title": row["title"]} for row in spec_rows]
    return spec, choices


def _nothing(text: str) -> ActionResult:
    return ActionResult(variables={"nothing": True}, replies=({"type": "text", "body": text},))


def _id(value: Any, prefix: str) -> int | None:
    """``"fx:12"`` -> 12 (None for anything else, e.g. a stale or typed value)."""
    if not isinstance(value, str) or not value.startswith(prefix + ":"):
        return None
    try:
        return int(value.split(":", 1)[1])
    except ValueError:
        return None


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or not value.startswith("day:"):
        return None
    try:
        return date.fromisoformat(value[4:])
    except ValueError:
        return None


# --------------------------------------------------------------------------- browsing


def list_leagues(call: ActionCall) -> ActionResult:
    """Leagues with fixtures open for betting."""
    leagues = catalogue.upcoming_leagues(call.now)
    if not leagues:
        return _nothing("There are no matches open for betting right now. Please check back later ⚽")
    shown, page, more = _paged(leagues, _page(call.inputs))
    rows = [
        (f"lg:{league.pk}", league.name, f"{league.country or 'International'} · {count} match{'es' * (count != 1)}")
        for league, count in shown
    ]
    spec, choices = list_message(
        header="⚽ Fixtures & odds", body="Which league would you like to bet on?", button="Leagues",
        section="Leagues", rows=rows, more=more, page=page,
    )  # fmt: skip
    return ActionResult(variables={"nothing": False, "league_choices": choices, "league_page": page}, replies=(spec,))


def list_days(call: ActionCall) -> ActionResult:
    league = League.objects.filter(pk=_id(call.inputs.get("league"), "lg"), active=True).first()
    if league is None:
        return _nothing("That league is no longer available. Send *fixtures* to see what's on.")
    days = catalogue.upcoming_days(league, call.now)
    if not days:
        return _nothing(f"There are no {league.name} matches open for betting right now.")
    shown, page, more = _paged(days, _page(call.inputs))
    rows = [
        (f"day:{day.isoformat()}", f"{day:%a %d %b}", f"{count} match{'es' * (count != 1)}") for day, count in shown
    ]
    spec, choices = list_message(
        header=league.name, body="Which day?", button="Match days", section="Match days", rows=rows, more=more,
        page=page,
    )  # fmt: skip
    return ActionResult(variables={"nothing": False, "day_choices": choices, "day_page": page}, replies=(spec,))


def _match_odds(fixture_ids: Iterable[int]) -> dict[int, dict[str, Decimal]]:
    """1X2 prices per fixture from the house bookmaker (the configured one, else the lowest id)."""
    preferred = settings.API_FOOTBALL_BOOKMAKER_ID
    rows = (
        Outcome.objects.filter(
            market__fixture_id__in=list(fixture_ids), market__market_type=MarketType.MATCH_WINNER.value,
            market__is_live=False, active=True, suspended=False,
        )
        .annotate(rank=Case(When(market__bookmaker__api_id=preferred, then=Value(0)), default=Value(1),
                            output_field=IntegerField()))
        .order_by("rank", "market__bookmaker__api_id")
        .values_list("market__fixture_id", "market__bookmaker_id", "name", "odds")
    )  # fmt: skip
    book: dict[int, int] = {}
    prices: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for fixture_id, bookmaker_id, name, odds in rows:
        if book.setdefault(fixture_id, bookmaker_id) == bookmaker_id:
            prices[fixture_id][name] = odds
    return prices


def _prices_text(prices: Mapping[str, Decimal]) -> str:
    if not prices:
        return "odds coming soon"
    return " · ".join(f"{label} {_odds(prices[name])}" for name, label in (("Home", "1"), ("Draw", "X"), ("Away", "2"))
                      if name in prices)  # fmt: skip


def list_fixtures(call: ActionCall) -> ActionResult:
    league = League.objects.filter(pk=_id(call.inputs.get("league"), "lg"), active=True).first()
    day = _day(call.inputs.get("day"))
    if league is None or day is None:
        return _nothing("Those matches are no longer available. Send *fixtures* to start again.")
    fixtures = catalogue.fixtures_on(league, day, call.now)
    if not fixtures:
        return _nothing(f"There are no {league.name} matches left to bet on for {day:%a %d %b}.")
    shown, page, more = _paged(fixtures, _page(call.inputs))
    prices = _match_odds(f.pk for f in shown)
    rows = [
        (f"fx:{f.pk}", fixture_name(f), f"{_local(f.kickoff):%H:%M} · {_prices_text(prices.get(f.pk, {}))}")
        for f in shown
    ]
    spec, choices = list_message(
        header=f"{league.name} · {day:%a %d %b}", body="Tap a match to see its markets and odds.", button="Matches",
        section="Matches", rows=rows, more=more, page=page,
    )  # fmt: skip
    return ActionResult(variables={"nothing": False, "fixture_choices": choices, "fixture_page": page}, replies=(spec,))


def _open_fixture(value: Any, now) -> Fixture | None:
    fixture_id = _id(value, "fx")
    fixtures = catalogue.bettable_fixtures(now).select_related("league", "home_team", "away_team")
    return fixtures.filter(pk=fixture_id).first()


def show_markets(call: ActionCall) -> ActionResult:
    fixture = _open_fixture(call.inputs.get("fixture"), call.now)
    if fixture is None:
        return _nothing("Betting on that match has closed. Send *fixtures* to pick another one.")
    board = catalogue.fixture_markets(fixture)
    if not board:
        return _nothing(f"There are no odds for {fixture_name(fixture)} yet. Please check back later.")
    shown, page, more = _paged(board, _page(call.inputs))
    rows = []
    for market, outcomes in shown:
        market_type = MarketType(market.market_type)
        summary = ", ".join(f"{_short_label(o, market_type, fixture)} {_odds(o.odds)}" for o in outcomes[:3])
        rows.append((f"mk:{market.pk}", MARKET_TITLES[MarketType(market.market_type)], summary))
    body = (
        f"*{fixture_name(fixture)}*\n{_local(fixture.kickoff):%a %d %b %H:%M} · {fixture.league.name}\n"
        "Choose a market:"
    )
    spec, choices = list_message(body=body, button="Markets", section="Markets", rows=rows, more=more, page=page)
    return ActionResult(variables={"nothing": False, "market_choices": choices, "market_page": page}, replies=(spec,))


def _short_label(outcome: Outcome, market: MarketType, fixture: Fixture) -> str:
    """A selection in a few characters: 'Arsenal', 'Draw', 'Over 2.5', '2-1', 'Chelsea +1.25'."""
    teams = {"Home": fixture.home_team.name, "Away": fixture.away_team.name}
    if market is MarketType.CORRECT_SCORE:
        return outcome.name.replace(":", "-")
    if outcome.line is None or market in (MarketType.OVER_UNDER, MarketType.FIRST_HALF_OVER_UNDER):
        return teams.get(outcome.name, outcome.key)
    if market is MarketType.EUROPEAN_HANDICAP:  # the line is the home side's for all three selections
        return f"{teams.get(outcome.name, outcome.name)} (H {_signed(outcome.line)})"
    own = outcome.line if outcome.name == "Home" else -outcome.line
    return f"{teams[outcome.name]} {_signed(own)}"


def _signed(line: Decimal) -> str:
    text = f"{line.normalize():f}" if line else "0"
    return f"+{text}" if line > 0 else text


def list_outcomes(call: ActionCall) -> ActionResult:
    market_id = _id(call.inputs.get("market"), "mk")
    market = (
        Market.objects.select_related("fixture__home_team", "fixture__away_team", "fixture__league")
        .filter(pk=market_id, is_live=False, suspended=False, fixture__in=catalogue.bettable_fixtures(call.now))
        .first()
    )
    if market is None:
        return _nothing("Betting on that match has closed. Send *fixtures* to pick another one.")
    outcomes = list(market.outcomes.filter(active=True, suspended=False, result=""))
    if not outcomes:
        return _nothing("That market is not available right now. Please pick another one.")
    outcomes.sort(key=lambda o: (o.line if o.line is not None else Decimal(0), o.pk))
    shown, page, more = _paged(outcomes, _page(call.inputs))
    fixture, market_type = market.fixture, MarketType(market.market_type)
    for o in shown:
        o.market = market  # selection_label reads the market type; no query per row
    rows = [
        (
            f"oc:{o.pk}",
            _short_label(o, market_type, fixture),
            f"@ {_odds(o.odds)} · {selection_label(o, fixture)}",
        )
        for o in shown
    ]
    title = MARKET_TITLES[MarketType(market.market_type)]
    spec, choices = list_message(
        body=f"*{fixture_name(fixture)}*\n{title}: pick your selection.", button="Selections",
        section=title, rows=rows, more=more, page=page,
    )  # fmt: skip
    return ActionResult(variables={"nothing": False, "outcome_choices": choices, "outcome_page": page}, replies=(spec,))


# --------------------------------------------------------------------------- the ticket


def _contact(call: ActionCall) -> Contact:
    return Contact.objects.get(wa_id=call.contact.wa_id)


def _wallet(call: ActionCall) -> Wallet:
    return wallet_for(_contact(call))


def _legs(raw: Any) -> list[dict[str, Any]]:
    """The slip variable, defensively: a list of {outcome, odds, label, match, fixture}."""
    if not isinstance(raw, list):
        return []
    return [leg for leg in raw if isinstance(leg, Mapping) and isinstance(leg.get("outcome"), int)]


def _total_odds(legs: Sequence[Mapping[str, Any]]) -> Decimal:
    total = Decimal(1)
    for leg in legs:
        total *= Decimal(str(leg["odds"]))
    return total


def slip_text(legs: Sequence[Mapping[str, Any]], *, note: str = "") -> str:
    """The ticket as the bettor sees it, within a buttons body's 1024 characters."""
    lines = [note] if note else []
    kind = "single" if len(legs) == 1 else f"accumulator, {len(legs)} selections"
    lines.append(f"🎫 *Your ticket* ({kind})")
    for leg in legs:
        lines.append(f"• {leg['label']} — {leg['match']} @ {_odds(leg['odds'])}")
    lines.append(f"Total odds: {_odds(_total_odds(legs))}")
    return _cut("\n".join(lines), BODY_MAX)


def add_to_slip(call: ActionCall) -> ActionResult:
    """Add the picked selection (one per match: a second pick on a match replaces the first)."""
    outcome_id = _id(call.inputs.get("outcome"), "oc")
    legs = _legs(call.inputs.get("slip"))
    outcome = (
        Outcome.objects.select_related("market__fixture__home_team", "market__fixture__away_team")
        .filter(pk=outcome_id, active=True, suspended=False, market__is_live=False)
        .first()
    )
    if outcome is None or not catalogue.bettable_fixtures(call.now).filter(pk=outcome.market.fixture_id).exists():
        return _nothing("Sorry, that selection is no longer available. Send *fixtures* to pick again.")
    fixture = outcome.market.fixture
    leg = {
        "outcome": outcome.pk,
        "fixture": fixture.pk,
        "odds": str(outcome.odds),
        "label": selection_label(outcome, fixture),
        "match": fixture_name(fixture),
    }
    replaced = any(existing["fixture"] == fixture.pk for existing in legs)
    legs = [existing for existing in legs if existing["fixture"] != fixture.pk]
    max_legs = settings.FOOTBALL_MAX_LEGS
    note = "Replaced your earlier pick on this match." if replaced else "Added ✅"
    if len(legs) >= max_legs:
        note = f"A ticket can have at most {max_legs} selections; that one was not added."
    else:
        legs.append(leg)
    wallet = _wallet(call)
    return ActionResult(
        variables={
            "nothing": False,
            "slip": legs,
            "slip_text": slip_text(legs, note=note),
            "balance_text": money_text(wallet.balance, wallet.currency),
        }
    )


def check_stake(call: ActionCall) -> ActionResult:
    """The stake checked as soon as it is typed: one above the stake limit or the balance is
    refused with its reason and ``stake_ok`` false, so the flow asks for it again instead of
    letting the bettor reach *Confirm* with a ticket that cannot be placed."""
    wallet = _wallet(call)
    balance = money_text(wallet.balance, wallet.currency)
    try:
        betting.check_stake(wallet, call.inputs.get("stake"))
    except BetRefused as refused:
        return ActionResult(
            variables={"stake_ok": False, "balance_text": balance},
            replies=({"type": "text", "body": f"❌ {refused.message}"},),
        )
    return ActionResult(variables={"stake_ok": True, "balance_text": balance})


def balance(call: ActionCall) -> ActionResult:
    """The bettor's balance now, as ``balance_text`` (the stake question shows it)."""
    wallet = _wallet(call)
    return ActionResult(variables={"balance_text": money_text(wallet.balance, wallet.currency)})


def preview_ticket(call: ActionCall) -> ActionResult:
    """The slip with its stake and potential payout, for the bettor to confirm. A stake that
    placing would refuse is refused here already, with the same words."""
    legs = _legs(call.inputs.get("slip"))
    if not legs:
        return _nothing("Your ticket is empty. Send *fixtures* to pick a match.")
    wallet = _wallet(call)
    try:
        stake = betting.parse_stake(call.inputs.get("stake"), wallet.currency)
    except BetRefused as refused:
        return _nothing(f"❌ {refused.message}")
    total = _total_odds(legs)
    payout = (stake * total).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    lines = [
        slip_text(legs),
        "",
        f"Stake: {money_text(stake, wallet.currency)}",
        f"Potential payout: *{money_text(payout, wallet.currency)}*",
        f"Your balance: {money_text(wallet.balance, wallet.currency)}",
    ]
    if wallet.balance < stake:
        lines.append("⚠️ Your balance is lower than the stake.")
    return ActionResult(variables={"nothing": False, "preview_text": _cut("\n".join(lines), BODY_MAX)})


def place_ticket(call: ActionCall) -> ActionResult:
    """Place the slip at the odds the bettor confirmed; a refusal is replied with its reason.
    Moved odds update the slip so the flow can show the new prices for confirmation."""
    legs = _legs(call.inputs.get("slip"))
    wallet = _wallet(call)
    selections = [Selection(leg["outcome"], odds=Decimal(str(leg["odds"]))) for leg in legs]
    try:
        ticket = betting.place_ticket(wallet, selections, call.inputs.get("stake"), now=call.now)
    except BetRefused as refused:
        variables: dict[str, Any] = {"placed": False, "refusal": refused.code.value}
        if refused.code is RefusalCode.ODDS_CHANGED:
            current = dict(Outcome.objects.filter(pk__in=[leg["outcome"] for leg in legs]).values_list("pk", "odds"))
            variables["slip"] = [{**leg, "odds": str(current.get(leg["outcome"], leg["odds"]))} for leg in legs]
        return ActionResult(variables=variables, replies=({"type": "text", "body": f"❌ {refused.message}"},))
    currency = wallet.currency
    body = (
        f"✅ Ticket #{ticket.pk} placed!\n"
        f"Stake {money_text(ticket.stake, currency)} at odds {_odds(ticket.total_odds)} · "
        f"potential payout {money_text(ticket.potential_payout, currency)}.\n"
        f"Your balance is now {money_text(wallet.balance, currency)}. I'll message you when it settles. Good luck! 🍀"
    )
    return ActionResult(
        variables={"placed": True, "refusal": "", "slip": [], "ticket_id": ticket.pk},
        replies=({"type": "text", "body": body},),
    )


# --------------------------------------------------------------------------- wallet


def wallet_summary(call: ActionCall) -> ActionResult:
    wallet = _wallet(call)
    open_stakes = Ticket.objects.filter(wallet=wallet, status=TicketStatus.OPEN).aggregate(
        n=Count("id"), stake=Sum("stake")
    )
    lines = [f"👛 *Your wallet*\nBalance: *{money_text(wallet.balance, wallet.currency)}*"]
    if open_stakes["n"]:
        lines.append(f"Open tickets: {open_stakes['n']} (staked {money_text(open_stakes['stake'], wallet.currency)})")
    else:
        lines.append("No open tickets.")
    return ActionResult(variables={"wallet_text": "\n".join(lines)})


_ENTRY_WORDS = {
    "deposit": "Deposit",
    "stake": "Stake",
    "win": "Winnings",
    "refund": "Refund",
    "adjustment": "Adjustment",
}


def wallet_history(call: ActionCall) -> ActionResult:
    wallet = _wallet(call)
    entries = list(LedgerEntry.objects.filter(wallet=wallet).order_by("-created_at", "-id")[:10])
    if not entries:
        return ActionResult(replies=({"type": "text", "body": "No wallet activity yet."},))
    lines = ["📒 *Recent activity*"]
    for entry in entries:
        what = _ENTRY_WORDS.get(entry.kind, entry.kind)
        if entry.ticket_id:
            what += f" (ticket #{entry.ticket_id})"
        sign = "+" if entry.amount > 0 else "-"
        lines.append(f"{_local(entry.created_at):%d %b %H:%M} {what}: {sign}{amount_text(abs(entry.amount))}")
    lines.append(f"Balance: {money_text(wallet.balance, wallet.currency)}")
    return ActionResult(replies=({"type": "text", "body": "\n".join(lines)},))


def open_tickets(call: ActionCall) -> ActionResult:
    wallet = _wallet(call)
    tickets = list(
        Ticket.objects.filter(wallet=wallet, status=TicketStatus.OPEN)
        .prefetch_related("bets__fixture__home_team", "bets__fixture__away_team")
        .order_by("-placed_at", "-id")[:10]
    )
    if not tickets:
        return ActionResult(
            replies=({"type": "text", "body": "You have no open tickets. Send *fixtures* to place one."},)
        )
    lines = ["🎫 *Open tickets*"]
    for ticket in tickets:
        lines.append(
            f"\n#{ticket.pk} · stake {money_text(ticket.stake, wallet.currency)} · odds {_odds(ticket.total_odds)} · "
            f"pays {money_text(ticket.potential_payout, wallet.currency)}"
        )
        lines.extend(
            f"• {bet.selection} — {fixture_name(bet.fixture)} @ {_odds(bet.odds)}" for bet in ticket.bets.all()
        )
    return ActionResult(replies=({"type": "text", "body": "\n".join(lines)},))


def fixtures_text(call: ActionCall) -> ActionResult:
    """Every fixture open for betting this week as text. Longer than one WhatsApp message
    (4096 characters) it is returned as ordered parts, which the flow sends as one group."""
    text = catalogue.fixture_list_text(call.now)
    if not text:
        return _nothing("There are no matches open for betting right now.")
    header = "📋 *All matches this week* (1 · X · 2 odds)\n\n"
    return ActionResult(
        variables={"nothing": False},
        replies=tuple({"type": "text", "body": part} for part in split_text(header + text)),
    )


# --------------------------------------------------------------------------- registration


def _inputs(*names: str, types: Mapping[str, Any] | None = None):
    from flows.actions import ActionInput, InputType

    types = types or {}
    return [ActionInput(name, types.get(name, InputType.STRING), required=False) for name in names]


def _actions():
    from flows.actions import InputType

    return {
        "football.list_leagues": (list_leagues, _inputs("page", "pick"), "Leagues open for betting (list)"),
        "football.list_days": (list_days, _inputs("league", "page", "pick"), "Match days of a league (list)"),
        "football.list_fixtures": (list_fixtures, _inputs("league", "day", "page", "pick"), "Matches of a day (list)"),
        "football.show_markets": (show_markets, _inputs("fixture", "page", "pick"), "A match's markets (list)"),
        "football.list_outcomes": (list_outcomes, _inputs("market", "page", "pick"), "A market's selections (list)"),
        "football.add_to_slip": (add_to_slip, _inputs("outcome", "slip", types={"slip": InputType.LIST}),
                                 "Add a selection to the ticket"),
        "football.check_stake": (check_stake, _inputs("stake"), "Check a typed stake (limits and balance)"),
        "football.balance": (balance, [], "The balance now, as balance_text"),
        "football.preview_ticket": (preview_ticket, _inputs("slip", "stake", types={"slip": InputType.LIST}),
                                    "Ticket, stake and potential payout"),
        "football.place_ticket": (place_ticket, _inputs("slip", "stake", types={"slip": InputType.LIST}),
                                  "Place the ticket (debits the stake)"),
        "football.wallet_summary": (wallet_summary, [], "Balance and open stakes"),
        "football.wallet_history": (wallet_history, [], "Recent ledger entries"),
        "football.open_tickets": (open_tickets, [], "Open tickets"),
        "football.fixtures_text": (fixtures_text, [], "All matches this week as (multi-part) text"),
    }  # fmt: skip


ACTIONS = (
    "football.list_leagues", "football.list_days", "football.list_fixtures", "football.show_markets",
    "football.list_outcomes", "football.add_to_slip", "football.check_stake", "football.preview_ticket",
    "football.place_ticket", "football.balance",
    "football.wallet_summary", "football.wallet_history", "football.open_tickets", "football.fixtures_text",
)  # fmt: skip


def register() -> None:
    """Register every football action with the flows registry (idempotent)."""
    from flows.actions import register_action

    for name, (function, inputs, description) in _actions().items():
        register_action(name, function, inputs=inputs, description=description)
