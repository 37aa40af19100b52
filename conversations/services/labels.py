"""Putting labels on contacts and taking them off, one contact or many at once.

The admin's bulk actions and the REST API both call ``change_labels``: every id is checked
first, and an unknown one refuses the whole change (nothing is written), so an operator never
labels "some" of a selection without knowing it. Adding a label a contact already has, or
removing one it does not have, is not an error and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from conversations.models import Contact, Label

__all__ = ["LabelChange", "LabelError", "change_labels", "missing_ids"]

ContactLabel = Contact.labels.through


class LabelError(ValueError):
    """The change names something that does not exist (or contradicts itself); nothing changed.

    ``field`` is ``"contacts"``, ``"add"`` or ``"remove"``; ``ids`` the offending ids."""

    def __init__(self, field: str, message: str, ids: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.ids = sorted(ids)


@dataclass(frozen=True)
class LabelChange:
    """What ``change_labels`` did: contact-label links created and removed."""

    contacts: int
    added: int
    removed: int


def missing_ids(model: type[Contact] | type[Label], ids: Iterable[int]) -> set[int]:
    """The ids among ``ids`` with no row (one query)."""
    wanted = set(ids)
    return wanted - set(model.objects.filter(pk__in=wanted).values_list("pk", flat=True)) if wanted else set()


def change_labels(
    contact_ids: Iterable[int], add: Iterable[int] = (), remove: Iterable[int] = ()
) -> LabelChange:
    """Add the labels ``add`` to every contact in ``contact_ids`` and take ``remove`` off them.

    Raises LabelError, changing nothing, when a contact or label id is unknown or a label is
    both added and removed.
    """
    contacts, to_add, to_remove = set(contact_ids), set(add), set(remove)
    both = to_add & to_remove
    if both:
        raise LabelError("remove", f"Label(s) {_ids(both)} are both added and removed; give each once.", both)
    with transaction.atomic():
        unknown = missing_ids(Contact, contacts)
        if unknown:
            raise LabelError("contacts", f"No contact with id {_ids(unknown)}; nothing was changed.", unknown)
        for field, ids in (("add", to_add), ("remove", to_remove)):
            unknown = missing_ids(Label, ids)
            if unknown:
                raise LabelError(field, f"No label with id {_ids(unknown)}; nothing was changed.", unknown)
        added = removed = 0
        if to_add and contacts:
            have = set(
                ContactLabel.objects.filter(contact_id__in=contacts, label_id__in=to_add)
                .values_list("contact_id", "label_id")
            )
            links = [
                ContactLabel(contact_id=c, label_id=label)
                for c in sorted(contacts) for label in sorted(to_add) if (c, label) not in have
            ]
            ContactLabel.objects.bulk_create(links, ignore_conflicts=True)  # a concurrent add is fine
            added = len(links)
        if to_remove and contacts:
            removed, _ = ContactLabel.objects.filter(contact_id__in=contacts, label_id__in=to_remove).delete()
    return LabelChange(contacts=len(contacts), added=added, removed=removed)


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in sorted(ids))
