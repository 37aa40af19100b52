"""Which contacts a segment matches: one function builds the queryset, everything else
(the admin's count, a campaign's start) uses it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaigns.models import LabelMatch, Segment
from conversations.models import Contact

__all__ = ["CONTACT_FIELDS", "SegmentCounts", "contact_value", "segment_contacts", "segment_counts",
           "sendable", "validate_field_name"]

# Contact fields a segment may compare and a campaign variable may read; anything else is
# ``attributes.<key>`` (what flows stored on the contact).
CONTACT_FIELDS = ("name", "profile_name", "email", "wa_id")


def validate_field_name(field: str) -> str | None:
    """The problem with a field name, or None: a contact field or ``attributes.<key>``."""
    if field in CONTACT_FIELDS:
        return None
    if field.startswith("attributes.") and field.removeprefix("attributes.").strip():
        return None
    return f"{field!r} is not a contact field; use one of {', '.join(CONTACT_FIELDS)} or attributes.<key>"


def contact_value(contact: Contact, field: str) -> str:
    """The text of a contact field (empty when unset), as a campaign variable uses it."""
    if field.startswith("attributes."):
        value = (contact.attributes or {}).get(field.removeprefix("attributes."))
    else:
        value = getattr(contact, field, "")
    return "" if value is None else str(value).strip()


def segment_contacts(segment: Segment, *, now: datetime | None = None) -> QuerySet[Contact]:
    """Every contact the segment matches (opted-out and blocked ones included: see ``sendable``)."""
    from football_data_app.models import Ticket, Wallet  # football is optional data for a segment

    now = now or timezone.now()
    contacts = Contact.objects.all()
    label_ids = list(segment.labels.values_list("pk", flat=True)) if segment.pk else []
    if label_ids:
        if segment.label_match == LabelMatch.ALL:
            contacts = contacts.filter(pk__in=(
                Contact.labels.through.objects.filter(label_id__in=label_ids)
                .values("contact_id").annotate(n=Count("label_id", distinct=True))
                .filter(n=len(set(label_ids))).values("contact_id")
            ))
        else:
            contacts = contacts.filter(Exists(
                Contact.labels.through.objects.filter(contact_id=OuterRef("pk"), label_id__in=label_ids)
            ))
    if segment.app_config_id is not None:
        contacts = contacts.filter(app_config_id=segment.app_config_id)
    if segment.last_inbound_within_days is not None:
        contacts = contacts.filter(last_inbound_at__gte=now - timedelta(days=segment.last_inbound_within_days))
    if segment.placed_ticket_within_days is not None:
        since = now - timedelta(days=segment.placed_ticket_within_days)
        contacts = contacts.filter(Exists(
            Ticket.objects.filter(wallet__contact_id=OuterRef("pk"), placed_at__gte=since)
        ))
    if segment.min_wallet_balance is not None:
        contacts = contacts.filter(Exists(
            Wallet.objects.filter(contact_id=OuterRef("pk"), balance__gt=segment.min_wallet_balance)
        ))
    if segment.field_name:
        if segment.field_name.startswith("attributes."):
            key = segment.field_name.removeprefix("attributes.")
            contacts = contacts.filter(**{f"attributes__{key}": segment.field_value})
        else:
            contacts = contacts.filter(**{segment.field_name: segment.field_value})
    return contacts


def sendable(contacts: QuerySet[Contact]) -> QuerySet[Contact]:
    """The contacts a campaign may message: not opted out of marketing, not blocked
    (conversations' one definition, ``ContactQuerySet.marketable``)."""
    return contacts.marketable()


@dataclass(frozen=True)
class SegmentCounts:
    matched: int
    opted_out: int
    blocked: int

    @property
    def sendable(self) -> int:
        return self.matched - self.opted_out - self.blocked


def segment_counts(segment: Segment) -> SegmentCounts:
    """How many contacts match, and how many of them a campaign would skip (one query)."""
    row = segment_contacts(segment).aggregate(
        matched=Count("pk"),
        opted_out=Count("pk", filter=Q(marketing_opt_out=True)),
        blocked=Count("pk", filter=Q(marketing_opt_out=False, blocked=True)),
    )
    return SegmentCounts(row["matched"], row["opted_out"], row["blocked"])
