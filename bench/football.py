"""Football ingestion cost at 100 / 1,000 / 5,000 fixtures (odds from 5 bookmakers), and the
time to settle 10,000 bets.

``measure_football()`` runs in the calling process against its configured database (the
bench runner's fresh one, or ``python -m bench.football`` on a fresh SQLite file). The fake
API-Football runs as its own process, so generating and serialising its bodies does not
count against ingestion. For each size the football tables start empty; then:

* ``fixtures``: /leagues + one /fixtures request per league, upserted;
* ``odds``: every /odds page (10 fixtures per page), upserted;
* ``refresh``: the same odds again (what an hourly refresh costs when prices barely move).

Each figure has wall time, SQL statements (``executemany`` counts once) and API requests, so
the report shows how time and statements grow with the number of fixtures: statements per
page should stay flat. Settlement: 20 fixtures with results from the fake feed (mostly FT,
plus AET, PEN, PST, CANC, ABD), bets spread over every market of the house bookmaker,
singles and doubles; timed from results stored to every ticket settled and credited.
Notifications are left out (each is a queued message; the I/O side is measured elsewhere).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LEAGUES = (39, 140, 135, 78, 61)
SETTLE_FIXTURES = 20
DEPOSIT = Decimal("10000.00")

__all__ = ["FootballFigures", "IngestFigure", "SettleFigure", "StepFigure", "main", "measure_football"]


@dataclass(frozen=True)
class StepFigure:
    seconds: float
    statements: int
    requests: int
    pages: int
    rows: int

    @property
    def statements_per_page(self) -> float:
        return self.statements / self.pages if self.pages else 0.0


@dataclass(frozen=True)
class IngestFigure:
    fixtures: int
    bookmakers: int
    selections: int  # outcome rows after ingestion
    fixtures_step: StepFigure
    odds: StepFigure
    refresh: StepFigure

    @property
    def ms_per_fixture(self) -> float:
        return 1000 * (self.fixtures_step.seconds + self.odds.seconds) / self.fixtures


@dataclass(frozen=True)
class SettleFigure:
    bets: int
    tickets: int
    fixtures: int
    seconds: float
    statements: int

    @property
    def bets_per_second(self) -> float:
        return self.bets / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class FootballFigures:
    database: str
    ingest: tuple[IngestFigure, ...]
    settle: SettleFigure

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for figure, row in zip(self.ingest, data["ingest"], strict=True):
            row["ms_per_fixture"] = round(figure.ms_per_fixture, 3)
            for step in ("fixtures_step", "odds", "refresh"):
                row[step]["statements_per_page"] = round(getattr(figure, step).statements_per_page, 2)
        data["settle"]["bets_per_second"] = round(self.settle.bets_per_second, 1)
        return data

    def table(self) -> str:
        """A plain-text table for logs and the report."""
        lines = [
            f"{'fixtures':>8} {'selections':>10} {'fixtures s':>10} {'odds s':>8} {'odds stmts':>10} "
            f"{'stmts/page':>10} {'ms/fixture':>10} {'refresh s':>9} {'refresh stmts':>13}"
        ]
        for f in self.ingest:
            lines.append(
                f"{f.fixtures:>8,} {f.selections:>10,} {f.fixtures_step.seconds:>10.2f} {f.odds.seconds:>8.2f} "
                f"{f.odds.statements:>10,} {f.odds.statements_per_page:>10.1f} {f.ms_per_fixture:>10.2f} "
                f"{f.refresh.seconds:>9.2f} {f.refresh.statements:>13,}"
            )
        s = self.settle
        lines.append(
            f"settle: {s.bets:,} bets on {s.tickets:,} tickets over {s.fixtures} fixtures in {s.seconds:.2f} s "
            f"({s.bets_per_second:,.0f} bets/s, {s.statements:,} statements)"
        )
        return "\n".join(lines)


# --------------------------------------------------------------------------- measuring


class _Counter:
    """Counts SQL statements through ``connection.execute_wrapper`` (cheap: no query log)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def _measure() -> Iterator[dict[str, float]]:
    from django.db import connection

    counter, out = _Counter(), {}
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        yield out
    out["seconds"] = time.perf_counter() - started
    out["statements"] = counter.count


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _fake_api(fixtures: int, start: str, bookmakers: int) -> Iterator[str]:
    """``python -m devtools.servers football`` as a process; yields its base URL."""
    import httpx

    port = _free_port()
    command = [
        sys.executable, "-m", "devtools.servers", "football", "--port", str(port), "--any-key",
        "--fixtures", str(fixtures), "--leagues", ",".join(map(str, LEAGUES)), "--start-date", start,
        "--bookmakers", str(bookmakers), "--daily-limit", "10000000", "--per-minute", "1000000",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"fake API-Football exited: {process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/_fake/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("fake API-Football did not start within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wipe() -> None:
    """Empty the football tables (children first), fast: no ORM cascade collection. On
    PostgreSQL with TRUNCATE, which also resets the planner's row estimates (after a DELETE
    of 2M rows they would still say 2M, and every small UPDATE would get a JIT-compiled
    sequential-scan plan until autovacuum caught up)."""
    from django.db import connection

    from football_data_app import models

    order = [
        models.LedgerEntry, models.Bet, models.Ticket, models.Wallet, models.Outcome, models.Market,
        models.Fixture, models.Team, models.Bookmaker, models.League, models.SyncRun,
    ]  # fmt: skip
    tables = [connection.ops.quote_name(model._meta.db_table) for model in order]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)}")
            return
        for table in tables:
            cursor.execute(f"DELETE FROM {table}")


def _step(stats: Any, measured: dict[str, float]) -> StepFigure:
    return StepFigure(
        seconds=round(measured["seconds"], 3), statements=int(measured["statements"]), requests=stats.requests,
        pages=stats.pages, rows=stats.rows,
    )  # fmt: skip


def _ingest(fixtures: int, bookmakers: int, start: str, progress: Callable[[str], None]) -> IngestFigure:
    from football_data_app.client import MINUTE_WINDOW_KEY, QUOTA_EXHAUSTED_KEY
    from football_data_app.models import ApiFootballAccount, Outcome
    from football_data_app.services import api_account, ingestion

    _wipe()
    api_account.redis_client().delete(QUOTA_EXHAUSTED_KEY, MINUTE_WINDOW_KEY)
    with _fake_api(fixtures, start, bookmakers) as url:
        ApiFootballAccount.objects.update_or_create(
            pk=1, defaults={"base_url": url, "api_key": "bench-key", "requests_per_minute": 1_000_000}
        )
        days = 30 + fixtures // (8 * len(LEAGUES))
        with api_account.api_client() as client:
            progress(f"football: {fixtures:,} fixtures: leagues and fixtures")
            before = client.requests_made
            stats = ingestion.SyncStats()
            with _measure() as measured:
                ingestion.sync_leagues(client, stats=stats, activate=LEAGUES)
                ingestion.sync_fixtures(client, stats=stats, days_back=1, days_ahead=days)
            stats.requests = client.requests_made - before
            fixtures_step = _step(stats, measured)
            for label in ("odds", "refresh"):
                progress(f"football: {fixtures:,} fixtures: {label}")
                before, stats = client.requests_made, ingestion.SyncStats()
                with _measure() as measured:
                    ingestion.sync_odds(client, stats=stats)
                stats.requests = client.requests_made - before
                if label == "odds":
                    odds = _step(stats, measured)
                else:
                    refresh = _step(stats, measured)
    return IngestFigure(fixtures, bookmakers, Outcome.objects.count(), fixtures_step, odds, refresh)


def _place_bets(fixture_ids: Sequence[int], bets: int, rng: random.Random) -> tuple[int, int]:
    """Tickets straight into the tables (setup, not measured): 60% of the bets as singles,
    the rest as doubles on two different fixtures, 2.00 stake each, balances and ledger
    consistent. Returns (tickets, bets)."""
    from django.db import transaction

    from conversations.models import Contact
    from football_data_app.models import Bet, EntryKind, Fixture, LedgerEntry, Outcome, Ticket, TicketKind, Wallet
    from football_data_app.services import catalogue

    offers: dict[int, list[tuple[int, Decimal, str]]] = {}
    for fixture_id in fixture_ids:
        book = catalogue.house_bookmaker(Fixture.objects.get(pk=fixture_id))
        offers[fixture_id] = list(
            Outcome.objects.filter(market__fixture_id=fixture_id, market__bookmaker=book, active=True).values_list(
                "id", "odds", "key"
            )
        )
    singles = int(bets * 0.6)
    doubles = (bets - singles) // 2
    wallets_n = max(1, (singles + doubles) // 8)
    stake = Decimal("2.00")
    with transaction.atomic():
        Contact.objects.bulk_create([Contact(wa_id=f"26390{n:07d}", profile_name="Bench") for n in range(wallets_n)])
        contacts = list(Contact.objects.filter(wa_id__startswith="26390").order_by("id")[:wallets_n])
        Wallet.objects.bulk_create([Wallet(contact=c, balance=DEPOSIT) for c in contacts])
        wallets = list(Wallet.objects.filter(contact__in=contacts).order_by("id"))
        LedgerEntry.objects.bulk_create(
            [LedgerEntry(wallet=w, kind=EntryKind.DEPOSIT, amount=DEPOSIT, balance_after=DEPOSIT,
                         reference=f"bench:deposit:{w.pk}", created_by="bench") for w in wallets]
        )  # fmt: skip
        legs_per_ticket = [1] * singles + [2] * doubles
        tickets, plans = [], []
        for index, legs in enumerate(legs_per_ticket):
            chosen = rng.sample(list(fixture_ids), legs)
            picks = [(fixture_id, *rng.choice(offers[fixture_id])) for fixture_id in chosen]
            total = Decimal(1)
            for _, _, odds, _ in picks:
                total *= odds
            wallet = wallets[index % len(wallets)]
            tickets.append(
                Ticket(wallet=wallet, kind=TicketKind.SINGLE if legs == 1 else TicketKind.ACCUMULATOR, stake=stake,
                       total_odds=total.quantize(Decimal("0.001"), rounding=ROUND_DOWN),
                       potential_payout=(stake * total).quantize(Decimal("0.01"), rounding=ROUND_DOWN))
            )  # fmt: skip
            plans.append(picks)
        Ticket.objects.bulk_create(tickets, batch_size=2000)
        Bet.objects.bulk_create(
            [Bet(ticket=ticket, outcome_id=outcome_id, fixture_id=fixture_id, odds=odds, selection=key)
             for ticket, picks in zip(tickets, plans, strict=True) for fixture_id, outcome_id, odds, key in picks],
            batch_size=2000,
        )  # fmt: skip
        balances = {w.pk: DEPOSIT for w in wallets}
        entries = []
        for ticket in tickets:
            balances[ticket.wallet_id] -= stake
            entries.append(LedgerEntry(wallet_id=ticket.wallet_id, kind=EntryKind.STAKE, amount=-stake,
                                       balance_after=balances[ticket.wallet_id], reference=f"stake:ticket:{ticket.pk}",
                                       ticket=ticket, created_by="bench"))  # fmt: skip
        LedgerEntry.objects.bulk_create(entries, batch_size=2000)
        for wallet in wallets:
            wallet.balance = balances[wallet.pk]
        Wallet.objects.bulk_update(wallets, ["balance"], batch_size=2000)
    return len(tickets), singles + 2 * doubles


def _settle(fixtures: int, bets: int, start: str, progress: Callable[[str], None]) -> SettleFigure:
    from datetime import date

    from django.db import connection
    from django.utils import timezone

    from devtools import fake_feed
    from football_data_app.feed import parse_fixture
    from football_data_app.models import Fixture, Ticket, TicketStatus
    from football_data_app.services import settling, upserts
    from football_data_app.services.wallet import wallet_discrepancies

    # The same fixtures the fake served (same arguments and seed), finished by the results feed.
    items = fake_feed.fixture_items(fixtures, LEAGUES, start_date=date.fromisoformat(start))
    chosen = items[:SETTLE_FIXTURES]
    api_ids = [item["fixture"]["id"] for item in chosen]
    fixture_ids = list(Fixture.objects.filter(api_id__in=api_ids).values_list("id", flat=True))
    progress(f"football: placing {bets:,} bets")
    tickets, placed = _place_bets(fixture_ids, bets, random.Random(6))
    results = fake_feed.results_body(chosen)["response"]
    Fixture.objects.filter(id__in=fixture_ids).update(kickoff=timezone.now() - timedelta(hours=3))
    upserts.upsert_fixtures([parse_fixture(item) for item in results])
    if connection.vendor == "postgresql":  # planner statistics for the rows just loaded, as autovacuum would
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    progress(f"football: settling {placed:,} bets on {tickets:,} tickets")
    with _measure() as measured:
        for fixture_id in fixture_ids:
            settling.settle_fixture(fixture_id, settled_by="bench", notify=False)
    still_open = Ticket.objects.filter(status=TicketStatus.OPEN).count()
    if still_open or wallet_discrepancies():
        raise RuntimeError(f"settlement left {still_open} tickets open or a wallet off its ledger")
    return SettleFigure(placed, tickets, len(fixture_ids), round(measured["seconds"], 3), int(measured["statements"]))


def measure_football(
    *,
    sizes: Sequence[int] = (100, 1000, 5000),
    bets: int = 10_000,
    bookmakers: int = 5,
    progress: Callable[[str], None] = lambda _text: None,
) -> FootballFigures:
    """Ingest each size from an empty database, then settle ``bets`` bets (see the module
    docstring). Football syncs run by workers are kept out meanwhile (their run locks are
    held), so nothing else writes the tables being measured."""
    if not sizes or min(sizes) < SETTLE_FIXTURES or bets < 2:
        raise ValueError(f"sizes: each at least {SETTLE_FIXTURES} fixtures; bets: at least 2")
    from django.db import connection
    from django.utils import timezone

    from football_data_app.models import SyncKind
    from football_data_app.services import ingestion

    start = (timezone.now() + timedelta(days=1)).date().isoformat()
    with ExitStack() as locks:
        for kind in SyncKind:
            locks.enter_context(ingestion.run_lock(kind, 3600))
        ingest = tuple(_ingest(size, bookmakers, start, progress) for size in sizes)
        settle = _settle(sizes[-1], bets, start, progress)
        _wipe()
    return FootballFigures(connection.vendor, ingest, settle)


# --------------------------------------------------------------------------- standalone


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m bench.football [--quick] [--sizes 100,1000,5000] [--bets 10000]``: on a fresh
    SQLite file (or the empty database in ``DATABASE_URL``), production settings (no query log)."""
    import argparse
    import secrets
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.football")
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--bets", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="sizes 20,50 and 500 bets")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    sizes = (20, 50) if args.quick else tuple(int(part) for part in args.sizes.split(","))
    bets = 500 if args.quick else args.bets

    workdir = Path(tempfile.mkdtemp(prefix="bench-football-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whatsappcrm_backend.settings")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("VAR_DIR", str(workdir))
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    figures = measure_football(sizes=sizes, bets=bets, progress=lambda text: print(text, file=sys.stderr))
    print(figures.table())
    if args.json:
        args.json.write_text(json.dumps(figures.to_dict(), indent=2))


if __name__ == "__main__":
    main()
