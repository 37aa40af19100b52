"""Marketing consent: whether campaigns may message a contact (``Contact.marketing_opt_out``).

Two sources change it, both through ``set_marketing_opt_out``:

* **Words the user sends.** A message that is exactly one of MARKETING_OPT_OUT_WORDS ("STOP",
  "unsubscribe!") opts the contact out; one of MARKETING_OPT_IN_WORDS ("START") opts it back in.
  ``consume_keyword`` is called by the bot for every inbound message: it is an in-memory check
  that touches the database only when the message is such a word. A consent word is consumed
  (it never reaches the flows, so "stop" is not answered with "I didn't understand") and
  confirmed once, with MARKETING_OPT_OUT_CONFIRMATION / MARKETING_OPT_IN_CONFIRMATION; a second
  STOP while opted out is consumed silently. "START" from a contact who never opted out is NOT
  consumed: many users type it to begin a chat, and the bot answers it like any other message.
* **Meta's ``user_preferences`` webhook** (the user stopped or resumed marketing messages in
  WhatsApp itself): ``apply_preferences``, called by the inbound store. A stop for a number the
  project has never seen creates the contact, opted out, so no campaign can reach it later.

Conversations are unaffected: the bot answers an opted-out contact as before. Every change sends
``marketing_consent_changed`` inside the transaction that made it, so a campaign can stop a
recipient's pending send atomically without this app importing campaigns.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone

from conversations.models import Contact, Message
from meta_integration.payloads import PreferenceValue, UserPreference

__all__ = [
    "Consent",
    "KeywordOutcome",
    "apply_preferences",
    "consume_keyword",
    "keyword_consent",
    "marketing_consent_changed",
    "normalize_keyword",
    "set_marketing_opt_out",
]

logger = logging.getLogger(__name__)

marketing_consent_changed = Signal()
"""Sent with ``sender=Contact, contact_ids=[...], opted_out=bool, at=datetime, source=str`` after
contacts' consent changed, inside the transaction that changed it (``source``: "keyword" or
"meta_user_preferences")."""


class Consent(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


# Only what the user typed or tapped on a template's quick-reply button can be a consent
# word; an interactive reply's title is ours (a menu row), never the user's words.
KEYWORD_MESSAGE_TYPES = frozenset({"text", "button"})
MAX_KEYWORD_LENGTH = 64  # longer texts are never a keyword: skip normalising them
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")  # punctuation, emoji and spaces around the word
_SPACES = re.compile(r"\s+")


def normalize_keyword(text: str) -> str:
    """``"  Stop!! "`` -> ``"stop"``: case folded, surrounding punctuation and spaces removed,
    inner spaces collapsed (so a configured "STOP ALL" matches "stop   all.")."""
    return _SPACES.sub(" ", _EDGES.sub("", text)).casefold()


@lru_cache(maxsize=8)
def _keywords(opt_out: tuple[str, ...], opt_in: tuple[str, ...]) -> dict[str, Consent]:
    words = {normalize_keyword(word): Consent.OPT_IN for word in opt_in}
    words.update({normalize_keyword(word): Consent.OPT_OUT for word in opt_out})  # out wins a clash
    words.pop("", None)
    return words


def keyword_consent(message_type: str, text: str | None) -> Consent | None:
    """The consent a message's whole text asks for, else None. Pure: no I/O."""
    if message_type not in KEYWORD_MESSAGE_TYPES or not text or len(text) > MAX_KEYWORD_LENGTH:
        return None
    words = _keywords(tuple(settings.MARKETING_OPT_OUT_WORDS), tuple(settings.MARKETING_OPT_IN_WORDS))
    return words.get(normalize_keyword(text))


@dataclass(frozen=True)
class KeywordOutcome:
    """A consumed consent word: what changed and the replies to write (none, or the confirmation)."""

    consent: Consent
    changed: bool
    replies: tuple[dict[str, Any], ...] = ()


def consume_keyword(contact: Contact, message: Message) -> KeywordOutcome | None:
    """Apply a STOP/START message; None when the message is not one (the bot handles it).

    Called under the contact's lock by the bot's turn. ``contact`` is updated in memory. The
    confirmation is returned, not written: the caller writes it with the turn's other replies.
    A blocked contact's consent is recorded but not confirmed (nothing is sent to it).
    """
    consent = keyword_consent(message.message_type, message.text)
    if consent is None:
        return None
    opting_out = consent is Consent.OPT_OUT
    if not opting_out and not contact.marketing_opt_out:
        return None  # "start" from someone who never opted out: an ordinary message
    at = message.timestamp or timezone.now()
    changed = bool(set_marketing_opt_out(Contact.objects.filter(pk=contact.pk), opting_out, at=at, source="keyword"))
    if changed:
        contact.marketing_opt_out, contact.marketing_opt_out_at = opting_out, at if opting_out else None
    text = settings.MARKETING_OPT_OUT_CONFIRMATION if opting_out else settings.MARKETING_OPT_IN_CONFIRMATION
    replies = ({"type": "text", "body": text},) if changed and text and not contact.blocked else ()
    logger.info("contact %s sent %r: marketing %s (%s)", contact.pk, message.text, consent.value,
                "changed" if changed else "already so")
    return KeywordOutcome(consent, changed, replies)


def set_marketing_opt_out(contacts: QuerySet[Contact], opted_out: bool, *, at: datetime, source: str) -> list[int]:
    """Opt the given contacts out of (or back into) campaigns; returns the ids that changed.

    Only contacts in the other state change, so a repeated STOP changes (and confirms)
    nothing. The rows are locked while they change (PostgreSQL), so two sources racing on one
    contact change it once.
    """
    with transaction.atomic():
        ids = list(
            contacts.filter(marketing_opt_out=not opted_out).select_for_update().values_list("pk", flat=True)
        )
        if ids:
            Contact.objects.filter(pk__in=ids).update(
                marketing_opt_out=opted_out, marketing_opt_out_at=at if opted_out else None
            )
            marketing_consent_changed.send(
                sender=Contact, contact_ids=ids, opted_out=opted_out, at=at, source=source
            )
    return ids


def apply_preferences(preferences: Sequence[UserPreference], app_config_id: int | None = None) -> int:
    """Apply Meta's marketing-preference changes (stop -> opted out, resume -> opted in) in
    the order Meta sent them; returns how many contacts changed. Unknown categories and
    values never get here: the parser reports them as problems (the webhook audits those)."""
    changed = 0
    for preference in preferences:
        opted_out = preference.value is PreferenceValue.STOP
        contacts = Contact.objects.filter(wa_id=preference.wa_id)
        if opted_out:
            _ensure_contact(preference, app_config_id)
        ids = set_marketing_opt_out(contacts, opted_out, at=preference.timestamp, source="meta_user_preferences")
        changed += len(ids)
        logger.info("user_preferences: %s marketing %s (%s)", preference.wa_id, preference.value.value,
                    "changed" if ids else "already so")
    return changed


def _ensure_contact(preference: UserPreference, app_config_id: int | None) -> None:
    """A stop for a number never seen: keep it, so a later campaign cannot reach it."""
    if Contact.objects.filter(wa_id=preference.wa_id).exists():
        return
    try:
        with transaction.atomic():
            Contact.objects.create(
                wa_id=preference.wa_id, profile_name=(preference.profile_name or "")[:255], app_config_id=app_config_id
            )
    except IntegrityError:  # created meanwhile by a message from the same user
        pass

