"""Settlement: results -> outcomes -> bets -> tickets -> wallet -> notification.

The rules (what a score makes of a selection, what a ticket pays) are the pure
:mod:`football_data_app.settlement`; this module applies them to the rows. It is
exactly-once in effect: a ticket moves out of ``open`` only while its row is locked, and the
credit is a ledger entry with a unique reference (``win:ticket:<id>``) written in the same
transaction (:func:`.wallet.book`), so running it twice, concurrently, or again after a crash
pays once. A fixture is settled only from a score the feed (or an operator) gave; one
missing from the results feed waits, flagged for operators.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ..feed import FixtureStatus
from ..markets import MarketType
from ..models import Bet, EntryKind, Fixture, Outcome, SyncKind, SyncRun, SyncStatus, Ticket, TicketStatus, Wallet
from ..settlement import MissingScoreError, OutcomeResult, Score, settle_outcome, ticket_payout
from ..texts import ticket_settled_text
from .bulk import SQL_CHUNK, bulk_set, chunks, clip
from .wallet import Posting, book

__all__ = [
    "SETTLEABLE_STATUSES",
    "FixtureSettlement",
    "notify_settled_tickets",
    "record_settlement_run",
    "set_manual_result",
    "settle_due",
    "settle_fixture",
    "settle_tickets",
    "settleable_fixture_ids",
    "void_fixture",
]

logger = logging.getLogger(__name__)

# Over: played, void, or decided off the pitch.
SETTLEABLE_STATUSES = frozenset(
    status for status in FixtureStatus if status.is_finished or status.is_void or status.is_technical_result
)

@dataclass(frozen=True)
class FixtureSettlement:
    """What one ``settle_fixture`` call did. ``state``: settled / waiting / not_due."""

    fixture_id: int
    state: str
    outcomes: int = 0
    bets: int = 0
    tickets: tuple[int, ...] = ()
    note: str = ""


def settleable_fixture_ids(*, limit: int = 500) -> list[int]:
    """Fixtures that are over (played, void or decided off the pitch) and not yet settled."""
    return list(
        Fixture.objects.filter(settled_at__isnull=True, status__in=[s.value for s in SETTLEABLE_STATUSES])
        .order_by("kickoff", "id")
        .values_list("id", flat=True)[:limit]
    )


def _settling_score(fixture: Fixture) -> Score:
    """The 90-minute score (and half-time score when known). Raises MissingScoreError
    rather than guess; ``goals`` stand in only for a plain FT, where they are the same."""
    home, away = fixture.fulltime_home, fixture.fulltime_away
    if home is None or away is None:
        if fixture.status_short.upper() != "FT":
            raise MissingScoreError(f"{fixture.status_short or fixture.status} without a 90-minute score")
        home, away = fixture.goals_home, fixture.goals_away
        if home is None or away is None:
            raise MissingScoreError("finished without a score")
    ht_home, ht_away = fixture.halftime_home, fixture.halftime_away
    if ht_home is None or ht_away is None:
        ht_home = ht_away = None
    try:
        return Score(home, away, ht_home, ht_away)
    except ValueError as exc:
        raise MissingScoreError(f"inconsistent score: {exc}") from None


def settle_fixture(
    fixture_id: int, *, settled_by: str = "", now: datetime | None = None, notify: bool = True
) -> FixtureSettlement:
    """Settle a fixture's outcomes and bets, then the tickets they complete.

    Safe to run any number of times, concurrently too: outcomes and bets are only written
    while unsettled (under the fixture's row lock), tickets through :func:`settle_tickets`.
    """
    now = now or timezone.now()
    with transaction.atomic():
        fixture = Fixture.objects.select_for_update().filter(pk=fixture_id).first()
        if fixture is None:
            raise LookupError(f"fixture {fixture_id} does not exist")
        status = FixtureStatus(fixture.status)
        void = status.is_void or status.is_technical_result
        score = None
        if not void:
            if not status.is_finished:
                return FixtureSettlement(fixture_id, "not_due", note=f"status is {status}")
            try:
                score = _settling_score(fixture)
            except MissingScoreError as exc:
                note = f"Waiting: {exc}"[:255]
                Fixture.objects.filter(pk=fixture_id).update(settlement_note=note)
                logger.warning("fixture %s (%s) not settled: %s", fixture_id, fixture.api_id, exc)
                return FixtureSettlement(fixture_id, "waiting", note=note)
        results: dict[OutcomeResult, list[int]] = defaultdict(list)
        waiting = 0
        open_outcomes = Outcome.objects.filter(market__fixture_id=fixture_id, result="").values_list(
            "id", "name", "line", "market__market_type"
        )
        for outcome_id, name, line, market_type in open_outcomes:
            if void:
                results[OutcomeResult.VOID].append(outcome_id)
                continue
            try:
                results[settle_outcome(MarketType(market_type), name, line, score)].append(outcome_id)
            except MissingScoreError:
                waiting += 1
            except ValueError as exc:  # a stored selection the rules cannot read: leave it for an operator
                waiting += 1
                logger.error("fixture %s outcome %s not settled: %s", fixture_id, outcome_id, exc)
        for result, ids in results.items():
            for chunk in chunks(ids, SQL_CHUNK):
                Outcome.objects.filter(id__in=chunk, result="").update(result=result.value, settled_at=now)
        bets = (
            Bet.objects.filter(fixture_id=fixture_id, result="")
            .exclude(outcome__result="")
            .update(result=Subquery(Outcome.objects.filter(pk=OuterRef("outcome_id")).values("result")[:1]))
        )
        note = f"{waiting} first-half selection(s) wait for a half-time score" if waiting else ""
        Fixture.objects.filter(pk=fixture_id).update(
            settled_at=None if waiting else now, settlement_note=note, result_missing_since=None
        )
        ticket_ids = list(
            Bet.objects.filter(fixture_id=fixture_id, ticket__status=TicketStatus.OPEN)
            .order_by()  # no default ordering: a plain DISTINCT over the bet index
            .values_list("ticket_id", flat=True)
            .distinct()
        )
    settled = settle_tickets(ticket_ids, settled_by=settled_by, now=now)
    if notify and settled:
        notify_settled_tickets(settled, limit=len(settled))
    outcomes = sum(len(ids) for ids in results.values())
    return FixtureSettlement(
        fixture_id, "waiting" if waiting else "settled", outcomes=outcomes, bets=bets, tickets=tuple(settled), note=note
    )


def record_settlement_run(
    result: FixtureSettlement, *, worker: str = "", started_at: datetime | None = None
) -> SyncRun:
    """A SyncRun row for a settlement task, so operators (and tests) see who settled what."""
    now = timezone.now()
    run = SyncRun.objects.create(
        kind=SyncKind.SETTLE,
        status=SyncStatus.OK if result.state != "waiting" else SyncStatus.PARTIAL,
        worker=clip(worker, 255),
        finished_at=now,
        items=result.outcomes,
        rows=result.bets + len(result.tickets),
        message=f"fixture {result.fixture_id}: {result.state} {result.note}".strip(),
        detail={
            "fixture_id": result.fixture_id,
            "state": result.state,
            "tickets": list(result.tickets),
            "pid": os.getpid(),
        },
    )
    if started_at is not None:  # auto_now_add stamped the row's creation; record when the work began
        SyncRun.objects.filter(pk=run.pk).update(started_at=started_at)
        run.started_at = started_at
    return run


def settle_tickets(ticket_ids: Sequence[int], *, settled_by: str = "", now: datetime | None = None) -> list[int]:
    """Settle the open tickets among ``ticket_ids`` whose legs allow it; returns those settled.

    Per chunk, one transaction: lock the open tickets (a concurrent run waits, then sees them
    settled and skips them), lock their wallets, write status + payout, the credit entries
    (unique reference per ticket) and the new balances together.
    """
    now = now or timezone.now()
    settled: list[int] = []
    for chunk in chunks(sorted(set(ticket_ids)), 500):
        with transaction.atomic():
            tickets = list(
                Ticket.objects.select_for_update().filter(pk__in=chunk, status=TicketStatus.OPEN).order_by("pk")
            )
            if not tickets:
                continue
            legs: dict[int, list[tuple[OutcomeResult | None, Decimal]]] = defaultdict(list)
            for ticket_id, result, odds in Bet.objects.filter(ticket_id__in=[t.pk for t in tickets]).values_list(
                "ticket_id", "result", "odds"
            ):
                legs[ticket_id].append((OutcomeResult(result) if result else None, odds))
            done = []
            for ticket in tickets:
                outcome = ticket_payout(ticket.stake, legs[ticket.pk])
                if outcome is not None:
                    done.append((ticket, outcome))
            if not done:
                continue
            wallets = {
                wallet.pk: wallet
                for wallet in Wallet.objects.select_for_update()
                .filter(pk__in=sorted({t.wallet_id for t, _ in done}))
                .order_by("pk")
            }
            credits = []
            for ticket, outcome in done:
                ticket.status = outcome.status.value
                ticket.payout = outcome.payout
                ticket.settled_at = now
                ticket.settled_by = clip(settled_by, 255)
                if outcome.payout > 0:
                    kind = EntryKind.REFUND if outcome.status.value == TicketStatus.VOID else EntryKind.WIN
                    credits.append(
                        Posting(
                            ticket.wallet_id, kind, outcome.payout, f"{kind}:ticket:{ticket.pk}",
                            note=f"Ticket #{ticket.pk} {outcome.status.value}", created_by=settled_by or "system",
                            ticket=ticket,
                        )
                    )  # fmt: skip
            bulk_set([ticket for ticket, _ in done], ["status", "payout", "settled_at", "settled_by"])
            book(wallets, credits, now=now)
            settled.extend(ticket.pk for ticket, _ in done)
    return settled


def settle_due(*, settled_by: str = "", limit: int = 200, notify: bool = True) -> dict[str, int]:
    """The sweeper: settle every fixture that is over but unsettled, and send notifications
    that a crash left unsent. Beat runs it; results sync also enqueues fixtures directly."""
    counts = {"fixtures": 0, "tickets": 0, "waiting": 0, "notified": 0}
    for fixture_id in settleable_fixture_ids(limit=limit):
        started_at = timezone.now()
        outcome = settle_fixture(fixture_id, settled_by=settled_by, notify=False)
        record_settlement_run(outcome, worker=settled_by, started_at=started_at)
        counts["fixtures"] += outcome.state == "settled"
        counts["waiting"] += outcome.state == "waiting"
        counts["tickets"] += len(outcome.tickets)
    if notify:
        counts["notified"] = notify_settled_tickets(limit=limit)
    return counts




def notify_settled_tickets(ticket_ids: Sequence[int] | None = None, *, limit: int = 500) -> int:
    """Tell each owner their ticket settled, once: the ``notified_at`` conditional update and
    the outbound message row commit together. Sent through ``conversations``, so the
    Graph API call runs on the I/O queue. Returns how many were sent."""
    from conversations.services.sending import NoBusinessNumberError, OutboundValidationError, send_to_contact

    tickets = Ticket.objects.filter(settled_at__isnull=False, notified_at__isnull=True).select_related(
        "wallet__contact"
    )
    if ticket_ids is not None:
        tickets = tickets.filter(pk__in=list(ticket_ids))
    sent = 0
    for ticket in tickets.prefetch_related("bets__fixture__home_team", "bets__fixture__away_team").order_by("pk")[
        :limit
    ]:
        contact = ticket.wallet.contact
        try:
            with transaction.atomic():
                if not Ticket.objects.filter(pk=ticket.pk, notified_at__isnull=True).update(notified_at=timezone.now()):
                    continue
                if contact.blocked:
                    continue
                ticket.wallet.refresh_from_db(fields=["balance"])
                send_to_contact(contact, {"type": "text", "body": ticket_settled_text(ticket, list(ticket.bets.all()))})
                sent += 1
        except (NoBusinessNumberError, OutboundValidationError) as exc:
            logger.warning("ticket %s: settlement notification not sent (will retry): %s", ticket.pk, exc)
    return sent


def set_manual_result(
    fixture: Fixture,
    *,
    home: int,
    away: int,
    ht_home: int | None = None,
    ht_away: int | None = None,
    by: str,
    settle: bool = True,
) -> FixtureSettlement | None:
    """An operator's result (90-minute score) for a fixture, then settle it (``settle=False``:
    the caller queues settlement on the football worker). The feed will not overwrite it.
    Refused for a fixture already settled (payouts cannot be undone here)."""
    Score(home, away, ht_home, ht_away)  # validates: ints, non-negative, half-time <= full-time
    if not by:
        raise ValueError("by: name the operator who entered the result")
    updated = Fixture.objects.filter(pk=fixture.pk, settled_at__isnull=True).update(
        status=FixtureStatus.FINISHED.value, status_short="FT", status_long="Result entered by an operator",
        fulltime_home=home, fulltime_away=away, goals_home=home, goals_away=away,
        halftime_home=ht_home, halftime_away=ht_away, manual_result=True, result_missing_since=None,
        settlement_note=f"Result {home}-{away} entered by {by}"[:255],
    )  # fmt: skip
    if not updated:
        raise ValueError(f"fixture {fixture.pk} is already settled; its result cannot be changed here")
    return settle_fixture(fixture.pk, settled_by=by) if settle else None


def void_fixture(fixture: Fixture, *, by: str, reason: str = "", settle: bool = True) -> FixtureSettlement | None:
    """Void a fixture by hand (stakes refunded, accumulator legs count as odds 1.00)."""
    if not by:
        raise ValueError("by: name the operator who voided the fixture")
    updated = Fixture.objects.filter(pk=fixture.pk, settled_at__isnull=True).update(
        status=FixtureStatus.CANCELLED.value, status_short="CANC", status_long="Voided by an operator",
        manual_result=True, result_missing_since=None, settlement_note=f"Voided by {by}: {reason}"[:255],
    )  # fmt: skip
    if not updated:
        raise ValueError(f"fixture {fixture.pk} is already settled; it cannot be voided")
    return settle_fixture(fixture.pk, settled_by=by) if settle else None

