"""Admin for football data and betting.

Operators: switch leagues on and off (a sync never overrides them), see what waits for a
result and why, enter a result or void a fixture by hand (settlement then runs on the
football worker), suspend markets or selections, read tickets with their bets, and move
money only through ledger entries (deposit / adjustment actions; a wallet's balance is never
edited directly). The API account page shows the daily quota and whether requests are
blocked until the quota resets.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from whatsappcrm_backend.admin_permissions import CannotAdd, CannotChange, CannotDelete

from .models import (
    ApiFootballAccount,
    Bet,
    Bookmaker,
    Fixture,
    League,
    LedgerEntry,
    Market,
    Outcome,
    SyncRun,
    Team,
    Ticket,
    Wallet,
)
from .services import api_account, ingestion, settling
from .services.wallet import WalletError, adjust, deposit, ledger_total
from .texts import fixture_name


def _operator(request: HttpRequest) -> str:
    return request.user.get_username() or "operator"


def _enqueue_settlement(fixture_ids: list[int]) -> None:
    from .tasks import enqueue_settlement

    for fixture_id in fixture_ids:
        enqueue_settlement(fixture_id)


# --------------------------------------------------------------------------- API account and runs


@admin.register(ApiFootballAccount)
class ApiFootballAccountAdmin(admin.ModelAdmin):
    list_display = ["__str__", "daily_remaining", "daily_limit", "minute_remaining", "quota_seen_at", "blocked"]
    readonly_fields = [
        "daily_limit", "daily_remaining", "minute_limit", "minute_remaining", "quota_seen_at", "exhausted_until",
        "blocked", "last_error", "last_error_at",
    ]  # fmt: skip
    fieldsets = [
        ("Account (blank: the environment settings)", {"fields": ["base_url", "api_key", "requests_per_minute"]}),
        ("Quota (from the last answer's headers)", {"fields": readonly_fields}),
    ]
    actions = ["check_quota", "lift_block"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "api_key":
            kwargs["widget"] = forms.PasswordInput(render_value=True)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not ApiFootballAccount.objects.exists()

    @admin.display(description="Requests blocked until")
    def blocked(self, account: ApiFootballAccount) -> str:
        until = api_account.quota_status()["blocked_until"]
        return f"{until:%Y-%m-%d %H:%M} UTC (daily quota spent)" if until else "not blocked"

    @admin.action(description="Check the quota now (/status, does not count)")
    def check_quota(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            status = api_account.refresh_quota()
        except Exception as exc:  # noqa: BLE001 - shown to the operator, whatever went wrong
            self.message_user(request, f"Could not reach API-Football: {exc}", messages.ERROR)
            return
        self.message_user(request, f"{status['daily_remaining']} of {status['daily_limit']} requests left today.")

    @admin.action(description="Lift the quota block (after a plan upgrade)")
    def lift_block(self, request: HttpRequest, queryset: QuerySet) -> None:
        api_account.clear_quota_block()
        self.message_user(request, "Requests to API-Football are allowed again.")


@admin.register(SyncRun)
class SyncRunAdmin(CannotAdd, CannotChange, admin.ModelAdmin):
    list_display = [
        "started_at",
        "kind",
        "status",
        "worker",
        "requests",
        "pages",
        "items",
        "rows",
        "skipped",
        "message",
    ]
    list_filter = ["kind", "status"]
    date_hierarchy = "started_at"


# --------------------------------------------------------------------------- football data


@admin.register(League)
class LeagueAdmin(admin.ModelAdmin):
    list_display = ["name", "country", "api_id", "current_season", "has_odds", "active", "display_order"]
    list_editable = ["active", "display_order"]
    list_filter = ["active", "has_odds", "type", "country"]
    search_fields = ["name", "country", "=api_id"]
    readonly_fields = ["api_id", "name", "type", "country", "country_code", "logo", "current_season", "has_odds"]
    actions = ["activate", "deactivate"]

    @admin.action(description="Activate: sync and offer these leagues")
    def activate(self, request: HttpRequest, queryset: QuerySet[League]) -> None:
        self.message_user(request, f"{queryset.update(active=True)} league(s) activated.")

    @admin.action(description="Deactivate: stop syncing and offering these leagues")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[League]) -> None:
        self.message_user(request, f"{queryset.update(active=False)} league(s) deactivated; syncs will not undo this.")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "api_id"]
    search_fields = ["name", "=api_id"]


class AwaitingResultFilter(admin.SimpleListFilter):
    """What operators must look at: over but not settled, and why."""

    title = "settlement"
    parameter_name = "settlement"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("waiting", "Should be over, not settled"),
            ("missing", "Missing from the results feed"),
            ("settled", "Settled"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Fixture]) -> QuerySet[Fixture]:
        if self.value() == "waiting":
            return queryset.filter(settled_at__isnull=True, kickoff__lte=timezone.now() - ingestion.RESULT_GRACE)
        if self.value() == "missing":
            return queryset.filter(settled_at__isnull=True, result_missing_since__isnull=False)
        if self.value() == "settled":
            return queryset.filter(settled_at__isnull=False)
        return queryset


class FixtureActionForm(ActionForm):
    home = forms.IntegerField(required=False, min_value=0, label="90' home")
    away = forms.IntegerField(required=False, min_value=0, label="90' away")
    ht_home = forms.IntegerField(required=False, min_value=0, label="HT home")
    ht_away = forms.IntegerField(required=False, min_value=0, label="HT away")
    reason = forms.CharField(required=False, label="Void reason")


class MarketInline(CannotAdd, CannotDelete, admin.TabularInline):
    model = Market
    extra = 0
    fields = ["bookmaker", "market_type", "is_live", "suspended", "outcome_count", "open_link"]
    readonly_fields = ["bookmaker", "market_type", "is_live", "outcome_count", "open_link"]
    show_change_link = True

    @admin.display(description="selections")
    def outcome_count(self, market: Market) -> int:
        return market.outcomes.count()

    @admin.display(description="")
    def open_link(self, market: Market) -> str:
        return format_html('<a href="{}">odds</a>', reverse("admin:football_data_app_market_change", args=[market.pk]))


@admin.register(Fixture)
class FixtureAdmin(admin.ModelAdmin):
    list_display = ["kickoff", "match", "league", "status", "score", "settled_at", "waiting_reason"]
    list_filter = [AwaitingResultFilter, "status", "league", "manual_result"]
    search_fields = ["home_team__name", "away_team__name", "=api_id"]
    date_hierarchy = "kickoff"
    list_select_related = ["league", "home_team", "away_team"]
    readonly_fields = [f.name for f in Fixture._meta.fields if f.name != "id"]
    inlines = [MarketInline]
    action_form = FixtureActionForm
    actions = ["enter_result", "void", "settle_now"]

    @admin.display(description="match")
    def match(self, fixture: Fixture) -> str:
        return fixture_name(fixture)

    @admin.display(description="90' (HT)")
    def score(self, fixture: Fixture) -> str:
        if fixture.fulltime_home is None:
            return "-"
        half = f" ({fixture.halftime_home}-{fixture.halftime_away})" if fixture.halftime_home is not None else ""
        return f"{fixture.fulltime_home}-{fixture.fulltime_away}{half}"

    @admin.display(description="waiting because")
    def waiting_reason(self, fixture: Fixture) -> str:
        if fixture.settled_at:
            return ""
        if fixture.result_missing_since:
            return f"missing from the results feed since {fixture.result_missing_since:%Y-%m-%d %H:%M}"
        return fixture.settlement_note

    def _field(self, request: HttpRequest, name: str) -> int | None:
        raw = request.POST.get(name, "").strip()
        return int(raw) if raw.isdigit() else None

    @admin.action(description="Enter the result from the score fields above, then settle")
    def enter_result(self, request: HttpRequest, queryset: QuerySet[Fixture]) -> None:
        home, away = self._field(request, "home"), self._field(request, "away")
        ht_home, ht_away = self._field(request, "ht_home"), self._field(request, "ht_away")
        if home is None or away is None:
            self.message_user(request, "Fill in the 90-minute home and away goals first.", messages.ERROR)
            return
        done = []
        for fixture in queryset:
            try:
                with transaction.atomic():
                    settling.set_manual_result(
                        fixture, home=home, away=away, ht_home=ht_home, ht_away=ht_away, by=_operator(request),
                        settle=False,
                    )  # fmt: skip
                    _enqueue_settlement([fixture.pk])
            except ValueError as exc:
                self.message_user(request, f"{fixture}: {exc}", messages.ERROR)
            else:
                done.append(fixture.pk)
        if done:
            self.message_user(request, f"Result entered for {len(done)} fixture(s); settlement is queued.")

    @admin.action(description="Void (refund every stake), with the reason above")
    def void(self, request: HttpRequest, queryset: QuerySet[Fixture]) -> None:
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, "Give a reason for voiding.", messages.ERROR)
            return
        done = 0
        for fixture in queryset:
            try:
                with transaction.atomic():
                    settling.void_fixture(fixture, by=_operator(request), reason=reason, settle=False)
                    _enqueue_settlement([fixture.pk])
            except ValueError as exc:
                self.message_user(request, f"{fixture}: {exc}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} fixture(s) voided; refunds are queued.")

    @admin.action(description="Settle now (finished, void or awarded fixtures)")
    def settle_now(self, request: HttpRequest, queryset: QuerySet[Fixture]) -> None:
        due = [s.value for s in settling.SETTLEABLE_STATUSES]
        ids = list(queryset.filter(status__in=due).values_list("pk", flat=True))
        with transaction.atomic():
            _enqueue_settlement(ids)
        self.message_user(request, f"Settlement queued for {len(ids)} fixture(s) on the football worker.")


@admin.register(Bookmaker)
class BookmakerAdmin(admin.ModelAdmin):
    list_display = ["name", "api_id"]
    search_fields = ["name"]


class OutcomeInline(CannotAdd, CannotDelete, admin.TabularInline):
    model = Outcome
    extra = 0
    fields = ["key", "odds", "active", "suspended", "result", "refreshed_at"]
    readonly_fields = ["key", "odds", "result", "refreshed_at"]


@admin.register(Market)
class MarketAdmin(CannotAdd, CannotDelete, admin.ModelAdmin):
    # bets refer to outcomes: markets are deactivated, never deleted
    list_display = ["fixture", "bookmaker", "market_type", "is_live", "suspended", "refreshed_at"]
    list_filter = ["market_type", "is_live", "suspended", "bookmaker"]
    list_select_related = ["fixture__home_team", "fixture__away_team", "bookmaker"]
    search_fields = ["fixture__home_team__name", "fixture__away_team__name", "=fixture__api_id"]
    readonly_fields = ["fixture", "bookmaker", "market_type", "api_bet_id", "name", "is_live", "feed_updated_at",
                       "refreshed_at"]  # fmt: skip
    inlines = [OutcomeInline]
    actions = ["suspend", "resume"]

    @admin.action(description="Suspend betting on these markets")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Market]) -> None:
        self.message_user(request, f"{queryset.update(suspended=True)} market(s) suspended.")

    @admin.action(description="Resume betting on these markets")
    def resume(self, request: HttpRequest, queryset: QuerySet[Market]) -> None:
        self.message_user(request, f"{queryset.update(suspended=False)} market(s) open again.")


# --------------------------------------------------------------------------- money


class WalletActionForm(ActionForm):
    amount = forms.DecimalField(required=False, max_digits=14, decimal_places=2, label="Amount")
    note = forms.CharField(required=False, label="Note / reason")
    # Rendered once per page: submitting the same form twice books the entry once.
    reference = forms.CharField(required=False, widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex)


class LedgerInline(CannotAdd, CannotDelete, admin.TabularInline):
    model = LedgerEntry
    extra = 0
    fields = ["created_at", "kind", "amount", "balance_after", "reference", "ticket", "note", "created_by"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]


@admin.register(Wallet)
class WalletAdmin(CannotAdd, CannotDelete, admin.ModelAdmin):
    # a wallet is created for a contact the first time they bet or are credited
    list_display = ["contact", "balance", "currency", "ledger_check", "updated_at"]
    search_fields = ["contact__wa_id", "contact__name", "contact__profile_name"]
    list_select_related = ["contact"]
    readonly_fields = ["contact", "balance", "ledger_check", "created_at", "updated_at"]
    fields = ["contact", "currency", "balance", "ledger_check", "created_at", "updated_at"]
    inlines = [LedgerInline]
    action_form = WalletActionForm
    actions = ["deposit", "adjust"]

    @admin.display(description="ledger")
    def ledger_check(self, wallet: Wallet) -> str:
        total = ledger_total(wallet)
        if total == wallet.balance:
            return "✔ matches the ledger"
        return f"✘ ledger sums to {total}"

    def _post(self, request: HttpRequest, queryset: QuerySet[Wallet], kind: str) -> None:
        raw = request.POST.get("amount", "").strip()
        note = request.POST.get("note", "").strip()
        reference = request.POST.get("reference", "").strip() or uuid.uuid4().hex
        try:
            amount = Decimal(raw)
        except ArithmeticError:
            amount = None
        if not raw or amount is None:
            self.message_user(request, "Fill in the amount first.", messages.ERROR)
            return
        for wallet in queryset:
            try:
                if kind == "deposit":
                    deposit(wallet, amount, reference=f"admin:{reference}:{wallet.pk}", note=note,
                                     created_by=_operator(request))  # fmt: skip
                else:
                    adjust(wallet, amount, reference=f"admin:{reference}:{wallet.pk}", note=note,
                                    created_by=_operator(request))  # fmt: skip
            except WalletError as exc:
                self.message_user(request, f"{wallet.contact}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{wallet.contact}: {kind} of {amount} booked; balance {wallet.balance}.")

    @admin.action(description="Deposit the amount above (ledger entry)")
    def deposit(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> None:
        self._post(request, queryset, "deposit")

    @admin.action(description="Adjust by the amount above (+/-, needs a note)")
    def adjust(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> None:
        self._post(request, queryset, "adjustment")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(CannotAdd, CannotChange, CannotDelete, admin.ModelAdmin):
    list_display = ["created_at", "wallet", "kind", "amount", "balance_after", "reference", "created_by"]
    list_filter = ["kind"]
    search_fields = ["reference", "wallet__contact__wa_id", "note"]
    list_select_related = ["wallet__contact"]
    date_hierarchy = "created_at"


class BetInline(CannotAdd, CannotDelete, admin.TabularInline):
    model = Bet
    extra = 0
    fields = ["fixture", "selection", "odds", "result", "outcome"]
    readonly_fields = fields


class TicketStateFilter(admin.SimpleListFilter):
    title = "notification"
    parameter_name = "notified"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("pending", "Settled, owner not told yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        if self.value() == "pending":
            return queryset.filter(Q(settled_at__isnull=False) & Q(notified_at__isnull=True))
        return queryset


@admin.register(Ticket)
class TicketAdmin(CannotAdd, CannotDelete, admin.ModelAdmin):
    list_display = ["id", "wallet", "kind", "stake", "total_odds", "potential_payout", "status", "payout",
                    "placed_at", "settled_at", "notified_at"]  # fmt: skip
    list_filter = ["status", "kind", TicketStateFilter]
    search_fields = ["=id", "wallet__contact__wa_id", "wallet__contact__name"]
    list_select_related = ["wallet__contact"]
    date_hierarchy = "placed_at"
    readonly_fields = [f.name for f in Ticket._meta.fields]
    inlines = [BetInline]
