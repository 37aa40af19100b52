"""A contact's conversation with the bot outside the message path: the per-contact lock
every writer takes, human handover, and session expiry.

* **One writer per contact.** Processing, expiry, handover, release and an import resetting
  sessions all take ``lock_contact`` first, so they run one at a time per contact.
* **Expiry is a conditional delete.** ``expire_sessions`` deletes a state only if its
  ``version`` is still the one it read (and it is still idle), under the same contact lock;
  only a delete that happened sends the "session expired" notice, so it is sent once, and a
  message that reached the state first always wins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from conversations.models import Contact, Message
from conversations.services import sending
from flows.definitions import thaw
from flows.models import ContactFlowState
from whatsappcrm_backend.metrics import record_sessions_expired

__all__ = [
    "expire_sessions",
    "expire_state",
    "idle_deadline",
    "last_session_expired",
    "lock_contact",
    "release_contact",
    "session_timeout",
    "start_handover",
]

logger = logging.getLogger(__name__)


def session_timeout() -> timedelta:
    """``FLOW_SESSION_TIMEOUT`` seconds: the engine and the expiry job use this one value."""
    return timedelta(seconds=settings.FLOW_SESSION_TIMEOUT)


# ---------------------------------------------------------------------------------------
# Per-contact serialization
# ---------------------------------------------------------------------------------------

_LOCK_NAMESPACE = 0x464C4F57  # "FLOW": advisory keys of this app never meet another app's


def lock_contact_sql(contact_id: int) -> tuple[str, list[int]]:
    """PostgreSQL's statement of ``lock_contact`` (inside ``transaction.atomic()`` too), for a
    caller that sends it in one round trip with what it reads next under the lock: each
    statement of a multi-statement query takes its own snapshot, after the lock."""
    return "SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, contact_id % 2**31]


def lock_contact(contact_id: int) -> None:
    """Hold the contact's flow lock until the current transaction ends (call inside one).

    Everything that reads or changes a contact's conversation (processing, expiry, handover,
    release, an import resetting sessions) takes it, so they run one at a time per contact.
    On PostgreSQL it is a transaction-scoped advisory lock keyed by the contact, not a row
    lock: the webhook updates the Contact row (``last_inbound_at``) while storing the next
    message, and a row lock would make that webhook - and every other contact in its batch -
    wait for the bot. SQLite needs nothing: its IMMEDIATE transactions admit one writer at a
    time. Other databases fall back to locking the row.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_contact() must be called inside transaction.atomic()")
    vendor = connection.vendor
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*lock_contact_sql(contact_id))
    elif vendor != "sqlite":
        list(Contact.objects.select_for_update().filter(pk=contact_id).values_list("pk"))


# ---------------------------------------------------------------------------------------
# Sending (through conversations, the only way the project sends)
# ---------------------------------------------------------------------------------------


def _send(
    contact: Contact, replies: Sequence[Mapping[str, Any]], *, sent_by: str = "bot", app_config_id: int | None = None
) -> None:
    """Store the replies as outbound messages (from ``app_config_id``, else the number the
    contact last wrote to) and send them on commit; several become ordered parts of one group."""
    specs = [thaw(reply) for reply in replies]
    if not specs:
        return
    if len(specs) == 1:
        sending.send_to_contact(contact, specs[0], sent_by=sent_by, app_config_id=app_config_id)
    else:
        sending.send_parts(contact, specs, gap_seconds=settings.FLOW_REPLY_GAP_SECONDS, app_config_id=app_config_id)


def _text(body: str) -> dict[str, str]:
    return {"type": "text", "body": body}


# ---------------------------------------------------------------------------------------
# Human handover
# ---------------------------------------------------------------------------------------


def start_handover(contact_id: int, *, now: datetime | None = None) -> bool:
    """An operator takes the conversation over: the bot goes quiet and any session ends.

    Returns False if the contact was already waiting for (or talking to) a human.
    """
    with transaction.atomic():
        lock_contact(contact_id)
        contact = Contact.objects.get(pk=contact_id)
        if contact.needs_human:
            return False
        contact.needs_human = True
        contact.handover_at = now or timezone.now()
        contact.save(update_fields=["needs_human", "handover_at"])
        ContactFlowState.objects.filter(contact=contact).delete()
    return True


def release_contact(contact_id: int, *, message: str = "", released_by: str = "") -> bool:
    """Give the contact back to the bot, optionally telling them so (sent as ``released_by``).

    Messages that arrived during the handover were for the operators and stay answered-by-
    nobody: the bot answers only what the contact sends next. Returns False if the contact was
    not in handover (a second click, or another operator was quicker), and sends nothing then.
    """
    with transaction.atomic():
        lock_contact(contact_id)
        contact = Contact.objects.get(pk=contact_id)
        if not contact.needs_human:
            return False
        contact.needs_human = False
        contact.handover_at = None
        contact.save(update_fields=["needs_human", "handover_at"])
        # A session the contact kept with another number waited through the handover; its
        # idle countdown starts again now rather than expiring it the moment the bot is back.
        ContactFlowState.objects.filter(contact=contact).update(
            last_activity_at=timezone.now(), version=F("version") + 1
        )
        if message.strip() and not contact.blocked:
            _send(contact, [_text(message.strip())], sent_by=released_by or "bot")
    return True


# ---------------------------------------------------------------------------------------
# Session expiry
# ---------------------------------------------------------------------------------------


def expire_state(
    state_id: int,
    version: int,
    *,
    idle_before: datetime | None = None,
    notify: bool = True,
    text: str | None = None,
) -> bool:
    """Delete one session if it is still at ``version`` (and idle since before ``idle_before``);
    tell the user only if this call deleted it. Returns whether it did.

    With ``idle_before`` (the expiry job) a contact with an inbound message waiting to be
    processed keeps its session: that message arrived first and decides (the engine judges
    staleness by its arrival time); so does one with a reply not sent yet (the user has not
    seen it, so the quiet minutes have not started). Without it (an operator's "expire now") only the version
    must match.
    """
    with transaction.atomic():
        found = ContactFlowState.objects.filter(pk=state_id).values_list("contact_id", "app_config_id").first()
        if found is None:
            return False
        contact_id, app_config_id = found
        lock_contact(contact_id)
        contact = Contact.objects.get(pk=contact_id)
        rows = ContactFlowState.objects.filter(pk=state_id, version=version)
        if idle_before is not None:
            # A message still to answer, or a reply still to send, belongs to this session:
            # expiring now would tell the user it timed out before the reply it refers to.
            waiting = (
                Message.objects.unprocessed_inbound() | Message.objects.pending_outbound()
            ).filter(contact=contact).exists()
            if waiting:
                return False
            if contact.needs_human:
                return False  # handed over since the job read it: no countdown during a handover
            rows = rows.filter(last_activity_at__lt=idle_before)
        deleted, _ = rows.delete()
        if not deleted:
            return False
        if notify and not contact.blocked and not contact.needs_human:
            _send(contact, [_text(text or settings.FLOW_SESSION_EXPIRED_TEXT)], app_config_id=app_config_id)
    return True


def expire_sessions(now: datetime | None = None, *, limit: int = 1000) -> int:
    """End every session idle for longer than ``FLOW_SESSION_TIMEOUT`` and tell each user once.

    Idle exactly the timeout is not expired (the engine uses the same ``>``). At most ``limit``
    sessions per run, oldest first; the Beat job runs again within seconds for the rest.
    """
    now = now or timezone.now()
    idle_before = now - session_timeout()
    candidates = list(
        # The countdown does not run while a human has the conversation (see release_contact).
        ContactFlowState.objects.filter(last_activity_at__lt=idle_before, contact__needs_human=False)
        .order_by("last_activity_at", "pk")
        .values_list("pk", "version")[:limit]
    )
    expired = sum(expire_state(pk, version, idle_before=idle_before) for pk, version in candidates)
    if expired:
        logger.info("flows: expired %d idle session(s)", expired)
        record_sessions_expired(expired)  # whatsappcrm_flow_sessions_expired_total, cluster-wide
    return expired


def idle_deadline(last_activity_at: datetime | None, *, handover: bool) -> datetime | None:
    """When a conversation expires if the user stays quiet (its session's last activity plus
    the timeout), or None when no countdown runs: there is no session (its flow ended, or it
    expired and the user was told, once), or a human has the conversation (``handover``).
    What a countdown shown to anyone (the simulator) must follow, rather than counting from
    the user's last message."""
    if handover or last_activity_at is None:
        return None
    return last_activity_at + session_timeout()


def last_session_expired(contact_id: int, app_config_id: int | None, *, before: datetime) -> bool:
    """Whether the contact's last conversation with this number ended by the idle timeout:
    the last thing sent to them on it (before ``before``) is the expiry notice. A flow that
    ended normally, or that an operator or a newer message followed, did not time out.

    Asked only when a button is tapped with no session (the engine's rare path), so the
    message path pays nothing for it. The notice is the only record an expiry leaves: the
    session row is deleted and ``expire_state`` sends it exactly once.
    """
    last = (
        Message.objects.outbound()
        .filter(contact_id=contact_id, app_config_id=app_config_id, created_at__lt=before)
        .order_by("-created_at", "-id")
        .values_list("text", flat=True)
        .first()
    )
    return last is not None and last == settings.FLOW_SESSION_EXPIRED_TEXT
