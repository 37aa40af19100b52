"""Wallets and their ledger: the only code that changes a balance.

A balance changes only through :func:`book`, which writes the new balances and their ledger
entries together, on wallet rows the caller holds locked: operators' deposits and
adjustments (:func:`post_entry`), stakes (``betting.place_ticket``) and winnings and refunds
(``settling.settle_tickets``) all go through it. Money is Decimal to the cent; a database
constraint makes a negative balance impossible, and every entry's ``reference`` is unique,
so the same event cannot be booked twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from conversations.models import Contact

from ..models import CENT, EntryKind, LedgerEntry, Ticket, Wallet
from .bulk import BATCH_ROWS, bulk_set, clip

__all__ = [
    "InsufficientFunds",
    "Posting",
    "WalletError",
    "adjust",
    "book",
    "deposit",
    "ledger_total",
    "parse_amount",
    "post_entry",
    "wallet_discrepancies",
    "wallet_for",
]


class WalletError(ValueError):
    """A ledger entry that cannot be written (bad amount, reference reused, ...)."""


class InsufficientFunds(WalletError):
    """The entry would make the balance negative."""


def parse_amount(value: Any, field_name: str = "amount") -> Decimal:
    """An amount of money from a Decimal, int or string, exact to the cent.

    Floats are refused (0.1 + 0.2 is not 0.3) and so is a third decimal place: an amount is
    never rounded behind anyone's back. Raises :class:`WalletError` naming ``field_name``.
    """
    if isinstance(value, float) or isinstance(value, bool):
        raise WalletError(f"{field_name}: must be a Decimal (or a string/int), not {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, (str, int)) else value
    except InvalidOperation:
        raise WalletError(f"{field_name}: {value!r} is not a number") from None
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise WalletError(f"{field_name}: {value!r} is not a finite amount")
    if amount != amount.quantize(CENT):
        raise WalletError(f"{field_name}: {value} has more than 2 decimal places")
    return amount.quantize(CENT)


def wallet_for(contact: Contact) -> Wallet:
    """The contact's wallet, opened (empty, in ``FOOTBALL_CURRENCY``) on first use."""
    return Wallet.objects.get_or_create(contact=contact, defaults={"currency": settings.FOOTBALL_CURRENCY})[0]


@dataclass(frozen=True, slots=True)
class Posting:
    """One balance change to book. ``amount`` is signed: a stake is negative."""

    wallet_id: int
    kind: EntryKind
    amount: Decimal
    reference: str
    note: str = ""
    created_by: str = "system"
    ticket: Ticket | None = None


def book(
    wallets: Mapping[int, Wallet], postings: Sequence[Posting], *, now: datetime | None = None
) -> list[LedgerEntry]:
    """Write ``postings``: their ledger entries and the new balances, together.

    ``wallets`` (by pk) are rows the caller locked (``select_for_update``) in the transaction
    it is in, so the balances read from them are current. Whatever the number of postings this
    is one INSERT for the entries and one UPDATE for the balances. A posting that would take
    a balance below zero raises :class:`InsufficientFunds` before anything is written; the
    wallets' ``balance`` is updated in place once the entries are written.
    """
    if not postings:
        return []
    now = now or timezone.now()
    balances = {posting.wallet_id: wallets[posting.wallet_id].balance for posting in postings}
    entries = []
    for posting in postings:
        balance = balances[posting.wallet_id] + posting.amount
        if balance < 0:
            raise InsufficientFunds(
                f"amount: {posting.amount} would take the balance of {balances[posting.wallet_id]} below zero"
            )
        balances[posting.wallet_id] = balance
        entries.append(
            LedgerEntry(
                wallet=wallets[posting.wallet_id], kind=posting.kind, amount=posting.amount, balance_after=balance,
                reference=posting.reference, ticket=posting.ticket, note=clip(posting.note, 255),
                created_by=clip(posting.created_by, 150),
            )
        )  # fmt: skip
    LedgerEntry.objects.bulk_create(entries, batch_size=BATCH_ROWS)
    changed = [wallets[pk] for pk in sorted(balances)]
    for wallet in changed:
        wallet.balance, wallet.updated_at = balances[wallet.pk], now
    bulk_set(changed, ["balance", "updated_at"])
    return entries


def post_entry(
    wallet: Wallet,
    *,
    kind: EntryKind | str,
    amount: Any,
    reference: str,
    note: str = "",
    created_by: str = "system",
    ticket: Ticket | None = None,
) -> LedgerEntry:
    """Book one balance change, idempotently by ``reference``: posting the same entry again
    returns the existing one; reusing a reference for a different entry is refused."""
    kind = EntryKind(kind)
    amount = parse_amount(amount)
    if amount == 0:
        raise WalletError("amount: must not be zero")
    if kind in (EntryKind.DEPOSIT, EntryKind.WIN, EntryKind.REFUND) and amount < 0:
        raise WalletError(f"amount: a {kind.label.lower()} must be positive, got {amount}")
    if kind is EntryKind.STAKE and amount > 0:
        raise WalletError(f"amount: a stake is booked as a negative amount, got {amount}")
    if not reference or len(reference) > 128:
        raise WalletError("reference: required, at most 128 characters")

    def existing_or_error() -> LedgerEntry | None:
        entry = LedgerEntry.objects.filter(reference=reference).first()
        if entry is None:
            return None
        if (entry.wallet_id, entry.kind, entry.amount) != (wallet.pk, kind.value, amount):
            raise WalletError(f"reference: {reference!r} is already used by another ledger entry")
        return entry

    try:
        with transaction.atomic():
            entry = existing_or_error()
            if entry is not None:
                return entry
            locked = Wallet.objects.select_for_update().get(pk=wallet.pk)
            posting = Posting(locked.pk, kind, amount, reference, note=note, created_by=created_by, ticket=ticket)
            [entry] = book({locked.pk: locked}, [posting])
    except IntegrityError:
        entry = existing_or_error()  # a concurrent post of the same reference won
        if entry is None:
            raise
        return entry
    wallet.balance = locked.balance
    return entry


def deposit(
    wallet: Wallet, amount: Any, *, reference: str | None = None, note: str = "", created_by: str = "system"
) -> LedgerEntry:
    """Money in (a positive amount); ``reference`` makes a retried deposit book once."""
    return post_entry(
        wallet, kind=EntryKind.DEPOSIT, amount=amount, reference=reference or f"deposit:{uuid.uuid4().hex}",
        note=note, created_by=created_by,
    )  # fmt: skip


def adjust(wallet: Wallet, amount: Any, *, note: str, reference: str | None = None, created_by: str) -> LedgerEntry:
    """An operator's correction (either sign); it needs a reason."""
    if not note or not note.strip():
        raise WalletError("note: an adjustment needs a reason")
    return post_entry(
        wallet, kind=EntryKind.ADJUSTMENT, amount=amount, reference=reference or f"adjustment:{uuid.uuid4().hex}",
        note=note, created_by=created_by,
    )  # fmt: skip


def ledger_total(wallet: Wallet) -> Decimal:
    """The sum of the wallet's ledger: what its balance must be."""
    total = wallet.entries.aggregate(total=Sum("amount"))["total"]
    return (total or Decimal("0")).quantize(CENT)


def wallet_discrepancies() -> list[tuple[int, Decimal, Decimal]]:
    """(wallet id, balance, ledger total) for every wallet whose balance is not its ledger's sum."""
    totals = dict(
        LedgerEntry.objects.values("wallet_id").annotate(total=Sum("amount")).values_list("wallet_id", "total")
    )
    return [
        (wallet_id, balance, (totals.get(wallet_id) or Decimal(0)).quantize(CENT))
        for wallet_id, balance in Wallet.objects.values_list("id", "balance")
        if balance != (totals.get(wallet_id) or Decimal(0))
    ]

