"""REST API for bet tickets and wallets: read for every operator, deposits and adjustments for
admins.

Money moves only through ``football_data_app.services.wallet.post_entry`` (via ``deposit`` and
``adjust``): a ledger entry and the balance change in one transaction under the wallet's row
lock. The client's ``Idempotency-Key`` header becomes the entry's unique reference, so a
retried request (a timeout, a double click) books once and answers with the same entry, and
a key reused for a different entry is refused.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from football_data_app.models import MONEY, Bet, LedgerEntry, Ticket, TicketStatus, Wallet
from football_data_app.services.wallet import InsufficientFunds, WalletError, adjust, deposit
from football_data_app.texts import fixture_name
from whatsappcrm_backend.api import ApiMixin, PagePagination, Role, error_responses
from whatsappcrm_backend.api_errors import ApiError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MAX_ENTRY_AMOUNT",
    "TicketDetail",
    "TicketList",
    "WalletAdjustment",
    "WalletDeposit",
    "WalletDetail",
    "WalletEntries",
    "WalletList",
    "idempotency_reference",
    "urlpatterns",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")
# One operator entry is at most this; far inside the balance column, so no sum of a few can
# overflow it (the database would refuse with an error rather than a clear answer).
MAX_ENTRY_AMOUNT = Decimal("1000000.00")
MAX_BALANCE = Decimal(10) ** (MONEY["max_digits"] - MONEY["decimal_places"]) - Decimal("0.01")
MAX_DB_ID = 2**63 - 1


def idempotency_reference(key: str | None) -> str:
    """The ledger reference for a client's idempotency key; raises ``ApiError`` (400) naming
    the header when it is missing or malformed."""
    if key is None or not key.strip():
        raise ApiError(
            400, "invalid", f"{IDEMPOTENCY_HEADER}: header required (e.g. a UUID), so a retry books once",
            {IDEMPOTENCY_HEADER: ["required"]},
        )  # fmt: skip
    if not _KEY.match(key):
        message = "8-100 characters from A-Z a-z 0-9 . _ : - (a UUID is ideal)"
        raise ApiError(400, "invalid", f"{IDEMPOTENCY_HEADER}: {message}", {IDEMPOTENCY_HEADER: [message]})
    return f"api:{key}"


# --------------------------------------------------------------------------- serializers


class BetSerializer(serializers.ModelSerializer):
    fixture_name = serializers.SerializerMethodField()
    kickoff = serializers.DateTimeField(source="fixture.kickoff", read_only=True)
    result = serializers.CharField(
        read_only=True, help_text="Empty until settled; then win, lose, push, half_win, half_lose or void"
    )

    class Meta:
        model = Bet
        fields = ("id", "fixture", "fixture_name", "kickoff", "selection", "odds", "result")
        read_only_fields = fields

    def get_fixture_name(self, bet: Bet) -> str:
        return fixture_name(bet.fixture)


class TicketSerializer(serializers.ModelSerializer):
    contact = serializers.IntegerField(source="wallet.contact_id", read_only=True)
    contact_wa_id = serializers.CharField(source="wallet.contact.wa_id", read_only=True)
    currency = serializers.CharField(source="wallet.currency", read_only=True)
    bets = BetSerializer(many=True, read_only=True)

    class Meta:
        model = Ticket
        fields = (
            "id", "wallet", "contact", "contact_wa_id", "kind", "status", "currency", "stake", "total_odds",
            "potential_payout", "payout", "placed_at", "settled_at", "settled_by", "notified_at", "bets",
        )  # fmt: skip
        read_only_fields = fields


class TicketFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=TicketStatus.choices, required=False)
    wallet = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_ID)
    contact = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_ID)


class WalletSerializer(serializers.ModelSerializer):
    contact_wa_id = serializers.CharField(source="contact.wa_id", read_only=True)
    contact_name = serializers.SerializerMethodField()

    class Meta:
        model = Wallet
        fields = ("id", "contact", "contact_wa_id", "contact_name", "balance", "currency", "created_at", "updated_at")
        read_only_fields = fields

    def get_contact_name(self, wallet: Wallet) -> str:
        return wallet.contact.name or wallet.contact.profile_name


class WalletFilters(serializers.Serializer):
    contact = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_ID)


class LedgerEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = ("id", "wallet", "kind", "amount", "balance_after", "reference", "ticket", "note", "created_by",
                  "created_at")  # fmt: skip
        read_only_fields = fields


class DepositSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=MONEY["max_digits"], decimal_places=MONEY["decimal_places"],
        min_value=Decimal("0.01"), max_value=MAX_ENTRY_AMOUNT, help_text="In the wallet's currency, e.g. \"25.00\"",
    )  # fmt: skip
    note = serializers.CharField(required=False, allow_blank=True, max_length=255)


class AdjustmentSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=MONEY["max_digits"], decimal_places=MONEY["decimal_places"],
        min_value=-MAX_ENTRY_AMOUNT, max_value=MAX_ENTRY_AMOUNT,
        help_text="Signed: negative takes money out (never below a zero balance)",
    )  # fmt: skip
    note = serializers.CharField(max_length=255, help_text="Why: an adjustment needs a reason")

    def validate_amount(self, value: Decimal) -> Decimal:
        if value == 0:
            raise serializers.ValidationError("must not be zero")
        return value


class BookedEntrySerializer(serializers.Serializer):
    entry = LedgerEntrySerializer()
    wallet = WalletSerializer()
    replayed = serializers.BooleanField(help_text="True if this key was booked before: nothing new was booked")


# --------------------------------------------------------------------------- tickets


def _tickets() -> QuerySet[Ticket]:
    bets = Bet.objects.select_related("fixture__home_team", "fixture__away_team").order_by("pk")
    return Ticket.objects.select_related("wallet__contact").prefetch_related(Prefetch("bets", queryset=bets))


class TicketList(ApiMixin, generics.ListAPIView):
    """Bet tickets, newest first; filter by status, wallet or contact. Role: read-only."""

    serializer_class = TicketSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> QuerySet[Ticket]:
        filters = TicketFilters(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        tickets = _tickets().order_by("-placed_at", "-pk")
        params = filters.validated_data
        if "status" in params:
            tickets = tickets.filter(status=params["status"])
        if "wallet" in params:
            tickets = tickets.filter(wallet_id=params["wallet"])
        if "contact" in params:
            tickets = tickets.filter(wallet__contact_id=params["contact"])
        return tickets

    @extend_schema(
        parameters=[TicketFilters], responses={200: TicketSerializer(many=True), **error_responses(400, 404)}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class TicketDetail(ApiMixin, generics.RetrieveAPIView):
    """One ticket with its bets. Role: read-only."""

    serializer_class = TicketSerializer

    def get_queryset(self) -> QuerySet[Ticket]:
        return _tickets()

    @extend_schema(responses={200: TicketSerializer, **error_responses(404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --------------------------------------------------------------------------- wallets


class WalletList(ApiMixin, generics.ListAPIView):
    """Wallets; filter by contact. Role: read-only."""

    serializer_class = WalletSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> QuerySet[Wallet]:
        filters = WalletFilters(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        wallets = Wallet.objects.select_related("contact").order_by("pk")
        if "contact" in filters.validated_data:
            wallets = wallets.filter(contact_id=filters.validated_data["contact"])
        return wallets

    @extend_schema(
        parameters=[WalletFilters], responses={200: WalletSerializer(many=True), **error_responses(400, 404)}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class WalletDetail(ApiMixin, generics.RetrieveAPIView):
    """One wallet. Role: read-only."""

    serializer_class = WalletSerializer
    queryset = Wallet.objects.select_related("contact")

    @extend_schema(responses={200: WalletSerializer, **error_responses(404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class WalletEntries(ApiMixin, generics.ListAPIView):
    """A wallet's ledger, newest first. Role: read-only."""

    serializer_class = LedgerEntrySerializer
    pagination_class = PagePagination

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        wallet = generics.get_object_or_404(Wallet.objects.all(), pk=self.kwargs["pk"])
        return LedgerEntry.objects.filter(wallet=wallet).order_by("-created_at", "-pk")

    @extend_schema(responses={200: LedgerEntrySerializer(many=True), **error_responses(400, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


_IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
    description="A fresh value (e.g. a UUID) per booking; resend the same value to retry safely",
    pattern=_KEY.pattern,
)  # fmt: skip


class _BookEntry(ApiMixin, generics.GenericAPIView):
    """Shared by deposits and adjustments: validate, check the key, book, answer."""

    write_role = Role.ADMIN
    queryset = Wallet.objects.select_related("contact")

    def book(self, wallet: Wallet, data: dict[str, Any], reference: str, created_by: str) -> LedgerEntry:
        raise NotImplementedError

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        wallet = self.get_object()
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        reference = idempotency_reference(request.headers.get(IDEMPOTENCY_HEADER))
        replayed = LedgerEntry.objects.filter(reference=reference).exists()
        amount = form.validated_data["amount"]
        if not replayed and wallet.balance + amount > MAX_BALANCE:
            raise ApiError(
                409, "balance_limit", f"amount: the balance would exceed {MAX_BALANCE}; nothing was booked",
                {"amount": [f"the balance would exceed {MAX_BALANCE}"]},
            )  # fmt: skip
        try:
            entry = self.book(wallet, form.validated_data, reference, request.user.get_username())
        except InsufficientFunds as exc:
            _, _, message = str(exc).partition(": ")
            raise ApiError(409, "insufficient_funds", f"{exc}; nothing was booked", {"amount": [message]}) from None
        except WalletError as exc:
            field, _, message = str(exc).partition(": ")
            if field == "reference":
                raise ApiError(
                    409, "idempotency_key_reused",
                    f"{IDEMPOTENCY_HEADER} was already used for a different entry; nothing was booked",
                    {IDEMPOTENCY_HEADER: ["already used for a different entry"]},
                ) from None  # fmt: skip
            field = field if field in ("amount", "note") else "non_field_errors"
            raise ApiError(400, "invalid", str(exc), {field: [message or str(exc)]}) from None
        wallet.refresh_from_db()
        body = {"entry": LedgerEntrySerializer(entry).data, "wallet": WalletSerializer(wallet).data,
                "replayed": replayed}  # fmt: skip
        return Response(body, status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)


class WalletDeposit(_BookEntry):
    """Credit a wallet. Role: admin."""

    serializer_class = DepositSerializer

    def book(self, wallet: Wallet, data: dict[str, Any], reference: str, created_by: str) -> LedgerEntry:
        return deposit(
            wallet, data["amount"], reference=reference, note=data.get("note", ""), created_by=created_by
        )

    @extend_schema(
        summary="Deposit into a wallet",
        parameters=[_IDEMPOTENCY_PARAMETER],
        request=DepositSerializer,
        responses={201: BookedEntrySerializer, 200: BookedEntrySerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)


class WalletAdjustment(_BookEntry):
    """Correct a wallet's balance, with a reason. Role: admin."""

    serializer_class = AdjustmentSerializer

    def book(self, wallet: Wallet, data: dict[str, Any], reference: str, created_by: str) -> LedgerEntry:
        return adjust(wallet, data["amount"], note=data["note"], reference=reference, created_by=created_by)

    @extend_schema(
        summary="Adjust a wallet's balance",
        parameters=[_IDEMPOTENCY_PARAMETER],
        request=AdjustmentSerializer,
        responses={201: BookedEntrySerializer, 200: BookedEntrySerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)


urlpatterns = [
    path("tickets/", TicketList.as_view(), name="ticket-list"),
    path("tickets/<int:pk>/", TicketDetail.as_view(), name="ticket-detail"),
    path("wallets/", WalletList.as_view(), name="wallet-list"),
    path("wallets/<int:pk>/", WalletDetail.as_view(), name="wallet-detail"),
    path("wallets/<int:pk>/entries/", WalletEntries.as_view(), name="wallet-entries"),
    path("wallets/<int:pk>/deposits/", WalletDeposit.as_view(), name="wallet-deposit"),
    path("wallets/<int:pk>/adjustments/", WalletAdjustment.as_view(), name="wallet-adjustment"),
]
