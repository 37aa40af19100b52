"""Football data (leagues, teams, fixtures, bookmakers, markets, outcomes) and betting
(wallets, ledger entries, tickets, bets), plus the API account and a log of task runs.

The invariants that money depends on live in the database, not only in Python:

* an outcome is unique per market and selection key; a market per fixture, bookmaker and
  type; an outcome a bet refers to cannot be deleted (``PROTECT``), so an odds refresh can
  only update it in place;
* a wallet balance is never negative (check constraint), every ledger entry has a unique
  ``reference`` (``stake:ticket:12``, ``win:ticket:12``), so settling twice cannot pay twice;
* a bet stores the odds it was placed at, whatever the outcome's odds become later.

Ids from API-Football are stored as ``api_id`` (unique); teams are identified by id, never by
name, because API-Football renames teams ("Bayern Munich" / "Bayern München").
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from conversations.models import Contact

from .feed import FixtureStatus
from .markets import MarketType
from .settlement import OutcomeResult

MONEY = {"max_digits": 14, "decimal_places": 2}
CENT = Decimal("0.01")  # the smallest amount a MONEY field holds
ODDS = {"max_digits": 9, "decimal_places": 3}
LINE = {"max_digits": 6, "decimal_places": 2}


def _choices(enum_cls: type) -> list[tuple[str, str]]:
    return [(member.value, member.value.replace("_", " ").capitalize()) for member in enum_cls]


FIXTURE_STATUS_CHOICES = _choices(FixtureStatus)
MARKET_TYPE_CHOICES = _choices(MarketType)
OUTCOME_RESULT_CHOICES = _choices(OutcomeResult)


# --------------------------------------------------------------------------- API account


class ApiFootballAccount(models.Model):
    """The API-Football account (one row) and what its last answers said about the quota.

    Blank ``base_url``/``api_key``/``requests_per_minute`` fall back to the environment
    settings; operators see the quota here and can point the app at another key without a
    deploy. Workers read this row, so every worker uses the same account.
    """

    base_url = models.URLField(blank=True, help_text="Blank: settings.API_FOOTBALL_URL")
    api_key = models.CharField(max_length=255, blank=True, help_text="Blank: settings.API_FOOTBALL_KEY")
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="The plan's per-minute limit; blank: settings.API_FOOTBALL_REQUESTS_PER_MINUTE"
    )
    daily_limit = models.PositiveIntegerField(null=True, blank=True)
    daily_remaining = models.IntegerField(null=True, blank=True)
    minute_limit = models.PositiveIntegerField(null=True, blank=True)
    minute_remaining = models.IntegerField(null=True, blank=True)
    quota_seen_at = models.DateTimeField(null=True, blank=True, help_text="When the last quota headers arrived")
    exhausted_until = models.DateTimeField(
        null=True, blank=True, help_text="The daily quota is spent: no request is made before this time"
    )
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API-Football account"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="apifootballaccount_single_row")]

    def __str__(self) -> str:
        if self.daily_remaining is None:
            return "API-Football (quota not seen yet)"
        return f"API-Football: {self.daily_remaining}/{self.daily_limit} requests left today"


class SyncKind(models.TextChoices):
    LEAGUES = "leagues", "Leagues"
    FIXTURES = "fixtures", "Fixtures"
    ODDS = "odds", "Odds"
    LIVE_ODDS = "live_odds", "Live odds"
    RESULTS = "results", "Results"
    SETTLE = "settle", "Settlement"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    PARTIAL = "partial", "Partial (resumes later)"
    QUOTA_EXHAUSTED = "quota_exhausted", "Daily quota exhausted"
    FAILED = "failed", "Failed"


class SyncRun(models.Model):
    """One run of an ingestion or settlement task: what it did, and which worker ran it."""

    kind = models.CharField(max_length=16, choices=SyncKind.choices)
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    worker = models.CharField(max_length=255, blank=True, help_text="Celery hostname of the worker that ran it")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requests = models.PositiveIntegerField(default=0, help_text="API-Football requests made")
    pages = models.PositiveIntegerField(default=0)
    items = models.PositiveIntegerField(default=0, help_text="Feed items (leagues, fixtures, odds records) read")
    rows = models.PositiveIntegerField(default=0, help_text="Rows inserted or updated")
    skipped = models.PositiveIntegerField(default=0, help_text="Items or selections skipped as unreadable/unknown")
    message = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["kind", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} at {self.started_at:%Y-%m-%d %H:%M:%S}"


# --------------------------------------------------------------------------- football data


class League(models.Model):
    api_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=32, blank=True)
    country = models.CharField(max_length=255, blank=True)
    country_code = models.CharField(max_length=16, blank=True)
    logo = models.URLField(blank=True)
    current_season = models.PositiveIntegerField(null=True, blank=True)
    has_odds = models.BooleanField(default=False, help_text="API-Football covers odds for the current season")
    active = models.BooleanField(
        default=False, db_index=True, help_text="Operators choose: only active leagues are synced and offered"
    )
    display_order = models.IntegerField(default=100)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.country})" if self.country else self.name


class Team(models.Model):
    api_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=255)
    code = models.CharField(max_length=16, blank=True)
    logo = models.URLField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Fixture(models.Model):
    """A match. ``fulltime_*`` is the 90-minute score that settles markets; ``goals_*``
    includes extra time. Settlement state is kept here so operators see what waits."""

    api_id = models.PositiveIntegerField(unique=True)
    league = models.ForeignKey(League, on_delete=models.PROTECT, related_name="fixtures")
    season = models.PositiveIntegerField()
    round = models.CharField(max_length=128, blank=True)
    kickoff = models.DateTimeField(db_index=True)
    venue = models.CharField(max_length=255, blank=True)
    referee = models.CharField(max_length=255, blank=True)
    home_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="home_fixtures")
    away_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="away_fixtures")
    status = models.CharField(max_length=16, choices=FIXTURE_STATUS_CHOICES, default=FixtureStatus.SCHEDULED)
    status_short = models.CharField(max_length=8, blank=True)
    status_long = models.CharField(max_length=64, blank=True)
    elapsed = models.PositiveSmallIntegerField(null=True, blank=True)
    goals_home = models.PositiveSmallIntegerField(null=True, blank=True)
    goals_away = models.PositiveSmallIntegerField(null=True, blank=True)
    halftime_home = models.PositiveSmallIntegerField(null=True, blank=True)
    halftime_away = models.PositiveSmallIntegerField(null=True, blank=True)
    fulltime_home = models.PositiveSmallIntegerField(null=True, blank=True, help_text="90-minute score")
    fulltime_away = models.PositiveSmallIntegerField(null=True, blank=True, help_text="90-minute score")
    extratime_home = models.PositiveSmallIntegerField(null=True, blank=True)
    extratime_away = models.PositiveSmallIntegerField(null=True, blank=True)
    penalty_home = models.PositiveSmallIntegerField(null=True, blank=True)
    penalty_away = models.PositiveSmallIntegerField(null=True, blank=True)
    manual_result = models.BooleanField(
        default=False, help_text="An operator set the status/score by hand: feed updates no longer overwrite it"
    )
    odds_updated_at = models.DateTimeField(null=True, blank=True)
    result_missing_since = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="Asked for a result and the feed did not return this fixture: it waits (never assumed)",
    )
    settled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    settlement_note = models.CharField(max_length=255, blank=True, help_text="Why settlement is waiting")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kickoff", "id"]
        indexes = [
            models.Index(fields=["league", "kickoff"]),
            models.Index(fields=["status", "settled_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(home_team=F("away_team")), name="fixture_teams_differ"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in FixtureStatus]), name="fixture_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.home_team} v {self.away_team} ({self.kickoff:%Y-%m-%d %H:%M})"

    @property
    def fixture_status(self) -> FixtureStatus:
        return FixtureStatus(self.status)


class Bookmaker(models.Model):
    """A bookmaker from /odds; api_id 0 is the pseudo-bookmaker of /odds/live."""

    api_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["api_id"]

    def __str__(self) -> str:
        return self.name


class Market(models.Model):
    # Not indexed alone: the unique (fixture, bookmaker, market_type) index starts with it.
    fixture = models.ForeignKey(Fixture, on_delete=models.CASCADE, related_name="markets", db_index=False)
    bookmaker = models.ForeignKey(Bookmaker, on_delete=models.PROTECT, related_name="markets")
    market_type = models.CharField(max_length=32, choices=MARKET_TYPE_CHOICES)
    api_bet_id = models.PositiveIntegerField(null=True, blank=True)
    name = models.CharField(max_length=255, blank=True, help_text="The feed's name for the bet")
    is_live = models.BooleanField(default=False)
    suspended = models.BooleanField(default=False, help_text="Live feed stopped/blocked: no bets")
    feed_updated_at = models.DateTimeField(null=True, blank=True, help_text="The feed's 'update' time")
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["fixture", "bookmaker", "market_type"]
        constraints = [
            models.UniqueConstraint(fields=["fixture", "bookmaker", "market_type"], name="market_unique_per_book"),
            models.CheckConstraint(
                condition=Q(market_type__in=[m.value for m in MarketType]), name="market_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_market_type_display()} ({self.bookmaker})"


class Outcome(models.Model):
    """A priced selection. ``key`` is the canonical selection (``Over 2.5``, ``Home -1.25``:
    the line is the home side's for handicaps); updated in place by every odds refresh."""

    # Not indexed alone: the unique (market, key) index starts with it (one B-tree fewer to
    # maintain for the table ingestion writes most).
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="outcomes", db_index=False)
    key = models.CharField(max_length=32)
    name = models.CharField(max_length=16)
    line = models.DecimalField(null=True, blank=True, **LINE)
    odds = models.DecimalField(**ODDS)
    active = models.BooleanField(default=True, help_text="Still offered by the last odds refresh")
    suspended = models.BooleanField(default=False)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(
        max_length=16, choices=OUTCOME_RESULT_CHOICES, blank=True, default="", help_text="Blank until settled"
    )
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["market", "id"]
        constraints = [
            models.UniqueConstraint(fields=["market", "key"], name="outcome_unique_per_market"),
            models.CheckConstraint(condition=Q(odds__gte=Decimal("1")), name="outcome_odds_at_least_one"),
            models.CheckConstraint(
                condition=Q(result__in=["", *[r.value for r in OutcomeResult]]), name="outcome_result_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} @ {self.odds}"


# --------------------------------------------------------------------------- money


class Wallet(models.Model):
    """A contact's balance. ``balance`` is a cached sum of the ledger, changed only together
    with a LedgerEntry in one transaction; the constraint makes a negative balance impossible."""

    contact = models.OneToOneField(Contact, on_delete=models.PROTECT, related_name="wallet")
    balance = models.DecimalField(default=Decimal("0.00"), **MONEY)
    currency = models.CharField(max_length=3, default="USD")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_not_negative")]

    def __str__(self) -> str:
        return f"{self.contact}: {self.currency} {self.balance}"


class EntryKind(models.TextChoices):
    DEPOSIT = "deposit", "Deposit"
    STAKE = "stake", "Stake"
    WIN = "win", "Win"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


class LedgerEntry(models.Model):
    """One balance change. ``reference`` is unique: the same event can never be booked twice."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = models.DecimalField(help_text="Signed: stakes are negative", **MONEY)
    balance_after = models.DecimalField(**MONEY)
    reference = models.CharField(max_length=128, unique=True)
    ticket = models.ForeignKey("Ticket", null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    note = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=150, blank=True, help_text="system, or the operator")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_after_not_negative"),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["deposit", "win", "refund"], amount__gt=0)
                    | Q(kind="stake", amount__lt=0)
                    | Q(kind="adjustment")
                ),
                name="ledger_amount_sign_fits_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["deposit", "adjustment"]) | Q(ticket__isnull=False),
                name="ledger_bet_entries_have_ticket",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.amount}"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    VOID = "void", "Void (refunded)"
    PARTIAL = "partial", "Partly won/lost"


class TicketKind(models.TextChoices):
    SINGLE = "single", "Single"
    ACCUMULATOR = "accumulator", "Accumulator"


class Ticket(models.Model):
    """A bet slip: one bet (single) or several multiplied (accumulator)."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="tickets")
    kind = models.CharField(max_length=16, choices=TicketKind.choices)
    stake = models.DecimalField(**MONEY)
    total_odds = models.DecimalField(max_digits=16, decimal_places=3, help_text="Product of the legs' odds")
    potential_payout = models.DecimalField(**MONEY)
    status = models.CharField(max_length=16, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    payout = models.DecimalField(null=True, blank=True, **MONEY)
    placed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    settled_by = models.CharField(max_length=255, blank=True, help_text="Worker hostname or operator")
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        indexes = [models.Index(fields=["status", "settled_at", "notified_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(stake__gt=0), name="ticket_stake_positive"),
            models.CheckConstraint(condition=Q(total_odds__gte=Decimal("1")), name="ticket_odds_at_least_one"),
            models.CheckConstraint(
                condition=Q(status="open", payout__isnull=True, settled_at__isnull=True)
                | (~Q(status="open") & Q(payout__isnull=False, settled_at__isnull=False)),
                name="ticket_settlement_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"Ticket #{self.pk} ({self.status})"


class Bet(models.Model):
    """One leg of a ticket, with the odds it was placed at."""

    # Not indexed alone: the unique (ticket, fixture) index starts with it.
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="bets", db_index=False)
    outcome = models.ForeignKey(Outcome, on_delete=models.PROTECT, related_name="bets")
    fixture = models.ForeignKey(Fixture, on_delete=models.PROTECT, related_name="bets")
    odds = models.DecimalField(help_text="The odds at placement: what the bet is paid at", **ODDS)
    selection = models.CharField(max_length=128, help_text="What the user saw, e.g. 'Over 2.5 goals'")
    result = models.CharField(
        max_length=16, choices=OUTCOME_RESULT_CHOICES, blank=True, default="", help_text="Blank until settled"
    )

    class Meta:
        ordering = ["ticket", "id"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "fixture"], name="bet_one_leg_per_fixture"),
            models.CheckConstraint(condition=Q(odds__gte=Decimal("1")), name="bet_odds_at_least_one"),
            models.CheckConstraint(
                condition=Q(result__in=["", *[r.value for r in OutcomeResult]]), name="bet_result_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.selection} @ {self.odds}"
