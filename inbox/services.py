"""The inbox's work: which conversations exist, how they are listed, what operators do.

Views call these functions and render what they return. Every action runs in one
transaction with its audit record and bumps ``Conversation.version`` (what an open
conversation's poll watches). Every message goes out through
``conversations.services.sending.send_to_contact`` with ``sent_by`` = the operator's
username: the same validation, outbox, priority and rate limit as the bot's replies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations.api import phone_digits
from conversations.models import BOT_IGNORED_TYPES, Contact, Direction, Label, Message, MessageStatus
from conversations.services import sending
from conversations.services.sending import OutboundValidationError
from conversations.window import CUSTOMER_SERVICE_WINDOW, window_open
from flows.services.sessions import release_contact, start_handover
from inbox.models import (
    AuditAction,
    AuditEvent,
    Conversation,
    ConversationStatus,
    Note,
    ReadMarker,
    SyncMark,
)
from inbox.permissions import agents
from meta_integration import media
from meta_integration.models import MessageTemplate

__all__ = [
    "InboxError",
    "ListFilters",
    "PollResult",
    "add_label",
    "add_note",
    "annotate_status",
    "assign",
    "conversation_list",
    "inbox_counts",
    "last_inbound_at",
    "mark_read",
    "poll",
    "release",
    "remove_label",
    "resolve",
    "send_attachment",
    "send_template",
    "send_text",
    "sync_conversations",
    "take_over",
    "timeline_page",
    "window_left",
]

# Message ids are not always committed in id order (two webhooks at once): each sync looks
# back this many ids before its mark, so a conversation whose first message committed late is
# still found.
SYNC_LOOKBACK_IDS = 1000
PAGE_SIZE = 50
MAX_TEXT = 4096
MAX_NOTE = 4000
MAX_WATCHED_STATUSES = 100  # outbound messages a poll follows for status changes


class InboxError(Exception):
    """An action refused because of the input or the conversation's state; nothing changed.
    ``field`` names the input at fault ("" when it is the state)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --------------------------------------------------------------------------- conversations


def sync_conversations() -> int:
    """Create the conversations that new messages started; returns how many were created.

    Reads only messages after the last mark (minus a look-back), through the primary key, so
    the webhook's path never writes inbox rows and an idle inbox costs three small queries.
    """
    mark = SyncMark.objects.filter(pk=1).values_list("last_message_id", flat=True).first()
    if mark is None:
        SyncMark.objects.get_or_create(pk=1)
        mark = 0
    top = Message.objects.aggregate(top=Max("pk"))["top"] or 0
    if top <= mark and mark > 0:
        return 0
    existing = Conversation.objects.filter(contact_id=OuterRef("contact_id"), app_config_id=OuterRef("app_config_id"))
    pairs = list(
        Message.objects.filter(pk__gt=max(mark - SYNC_LOOKBACK_IDS, 0), pk__lte=top, app_config__isnull=False)
        .exclude(Exists(existing))
        .order_by()
        .values_list("contact_id", "app_config_id")
        .distinct()
    )
    if pairs:
        Conversation.objects.bulk_create(
            [Conversation(contact_id=c, app_config_id=a) for c, a in pairs], ignore_conflicts=True
        )
    SyncMark.objects.filter(pk=1, last_message_id__lt=top).update(last_message_id=top)
    return len(pairs)


def conversation_for_contact(contact: Contact, app_config_id: int | None = None) -> Conversation:
    """The contact's conversation on ``app_config_id`` (default: the number it last wrote to),
    created if the sync has not seen it yet."""
    config_id = app_config_id or contact.app_config_id
    if config_id is None:
        raise InboxError(f"{contact} has no business number yet")
    conversation, _ = Conversation.objects.get_or_create(contact=contact, app_config_id=config_id)
    return conversation


def _messages_of(contact: Any, app_config: Any) -> QuerySet[Message]:
    return Message.objects.filter(contact_id=contact, app_config_id=app_config)


def _for_bubbles(messages: QuerySet[Message]) -> QuerySet[Message]:
    """Messages as the timeline draws them: with their stored media (one JOIN, no query each)."""
    return messages.select_related("media")


def annotate_status(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """``status`` computed in SQL from the contact's handover flag and the inbox's state, so
    it can never disagree with what the bot does:

    * waiting: the bot is quiet (``needs_human``) and nobody took it in this handover;
    * assigned: the bot is quiet and an operator took it after the handover began;
    * resolved: resolved, and the contact has not written since;
    * bot: otherwise (the bot answers).
    """
    return queryset.annotate(
        status=Case(
            When(
                Q(contact__needs_human=True, assignee__isnull=False, assigned_at__gte=F("contact__handover_at")),
                then=Value(ConversationStatus.ASSIGNED.value),
            ),
            When(contact__needs_human=True, then=Value(ConversationStatus.WAITING.value)),
            When(
                Q(resolved_at__isnull=False)
                & (Q(contact__last_inbound_at__isnull=True) | Q(contact__last_inbound_at__lte=F("resolved_at"))),
                then=Value(ConversationStatus.RESOLVED.value),
            ),
            default=Value(ConversationStatus.BOT.value),
        )
    )


@dataclass
class ListFilters:
    """The list's filters, from the query string (unknown values are ignored, as admin does)."""

    view: str = "all"  # all | mine | unassigned | waiting | resolved
    number: int | None = None
    label: int | None = None
    q: str = ""

    VIEWS = ("all", "mine", "unassigned", "waiting", "resolved")

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ListFilters:
        def integer(name: str) -> int | None:
            value = (query.get(name) or "").strip()
            return int(value) if value.isdigit() and len(value) < 19 else None

        view = query.get("view") or "all"
        return cls(
            view=view if view in cls.VIEWS else "all",
            number=integer("number"),
            label=integer("label"),
            q=(query.get("q") or "").strip()[:100],
        )


def conversation_list(user: Any, filters: ListFilters) -> QuerySet[Conversation]:
    """The conversations as the list shows them, in one query (plus the page's last
    messages and labels, see ``attach_last_messages``): waiting first, oldest wait first,
    then the most recently active.

    Each row carries ``status``, ``last_id`` (its newest message), ``unread`` (inbound
    messages after the user's read marker) and the contact's window time.
    """
    own_messages = Message.objects.filter(contact_id=OuterRef("contact_id"), app_config_id=OuterRef("app_config_id"))
    marker = ReadMarker.objects.filter(conversation_id=OuterRef(OuterRef("pk")), user=user).values(
        "last_read_message_id"
    )[:1]
    unread = (
        own_messages.filter(direction=Direction.INBOUND, pk__gt=Coalesce(Subquery(marker), Value(0)))
        .exclude(message_type__in=BOT_IGNORED_TYPES)
        .order_by()
        .values("contact_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last_in = own_messages.filter(direction=Direction.INBOUND).order_by().values("contact_id").annotate(
        at=Max("timestamp")).values("at")
    rows = annotate_status(
        Conversation.objects.select_related("contact", "app_config", "assignee")
    ).annotate(
        last_id=Subquery(own_messages.order_by("-pk").values("pk")[:1]),
        last_in_at=Coalesce(Subquery(last_in), F("contact__last_inbound_at")),
        unread=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0)),
        waiting_rank=Case(When(status=ConversationStatus.WAITING, then=Value(0)), default=Value(1)),
        waiting_since=Case(
            When(status=ConversationStatus.WAITING, then=F("contact__handover_at")), default=Value(None)
        ),
    )
    if filters.view == "mine":
        rows = rows.filter(status=ConversationStatus.ASSIGNED, assignee=user)
    elif filters.view == "unassigned":
        rows = rows.filter(status__in=[ConversationStatus.WAITING, ConversationStatus.BOT])
    elif filters.view == "waiting":
        rows = rows.filter(status=ConversationStatus.WAITING)
    elif filters.view == "resolved":
        rows = rows.filter(status=ConversationStatus.RESOLVED)
    if filters.number is not None:
        rows = rows.filter(app_config_id=filters.number)
    if filters.label is not None:
        rows = rows.filter(Exists(Contact.labels.through.objects.filter(
            contact_id=OuterRef("contact_id"), label_id=filters.label)))
    if filters.q:
        match = (
            Q(contact__name__icontains=filters.q)
            | Q(contact__profile_name__icontains=filters.q)
            | Q(contact__wa_id__icontains=filters.q)
            | Exists(own_messages.filter(text__icontains=filters.q))
        )
        digits = phone_digits(filters.q)
        if digits:
            match |= Q(contact__wa_id__contains=digits)
        rows = rows.filter(match)
    return rows.order_by(
        "waiting_rank", F("waiting_since").asc(nulls_last=True), F("last_id").desc(nulls_last=True), "-pk"
    )


def attach_last_messages(conversations: Sequence[Conversation]) -> None:
    """Set ``last_message`` and ``labels`` on each row of a page: two queries for the page."""
    ids = [c.last_id for c in conversations if getattr(c, "last_id", None)]
    last = {
        m.pk: m
        for m in Message.objects.filter(pk__in=ids).only(
            "pk", "direction", "message_type", "text", "content", "created_at", "timestamp", "status", "sent_by"
        )
    }
    contact_ids = {c.contact_id for c in conversations}
    labels: dict[int, list[Label]] = {}
    for link in Contact.labels.through.objects.filter(contact_id__in=contact_ids).select_related("label"):
        labels.setdefault(link.contact_id, []).append(link.label)
    for conversation in conversations:
        conversation.last_message = last.get(getattr(conversation, "last_id", None))
        conversation.labels = sorted(labels.get(conversation.contact_id, []), key=lambda label: label.name)


def last_inbound_at(conversation: Conversation) -> datetime | None:
    """When the contact last wrote to this conversation's number: what the send path judges
    the 24-hour window by (its last inbound message here, else the contact's last message)."""
    latest = (
        _messages_of(conversation.contact_id, conversation.app_config_id)
        .filter(direction=Direction.INBOUND).aggregate(at=Max("timestamp"))["at"]
    )
    return latest or Contact.objects.filter(pk=conversation.contact_id).values_list(
        "last_inbound_at", flat=True).first()


def window_left(last_inbound_at: datetime | None, now: datetime | None = None) -> int:
    """Seconds left in the contact's 24-hour window (0 when closed)."""
    now = now or timezone.now()
    if not window_open(last_inbound_at, now):
        return 0
    return int((last_inbound_at + CUSTOMER_SERVICE_WINDOW - now).total_seconds())


def inbox_counts() -> dict[str, int]:
    """For the admin index: conversations waiting for a human, and failed outbound messages."""
    sync_conversations()
    waiting = annotate_status(Conversation.objects.all()).filter(status=ConversationStatus.WAITING).count()
    return {"waiting": waiting, "failed": Message.objects.failed_outbound().count()}


# --------------------------------------------------------------------------- timeline


@dataclass
class TimelinePage:
    messages: list[Message]
    notes: list[Note]
    events: list[AuditEvent]
    has_older: bool
    quoted: dict[str, Message] = field(default_factory=dict)

    def items(self) -> list[tuple[datetime, int, str, Any]]:
        """Messages, notes and audit events in time order (messages by id within a time)."""
        merged: list[tuple[datetime, int, str, Any]] = [
            (m.created_at, 0, "message", m) for m in self.messages if not _hidden_change(m, self.quoted)
        ]
        merged += [(n.created_at, 1, "note", n) for n in self.notes]
        merged += [(e.created_at, 2, "event", e) for e in self.events if e.action not in _SILENT_EVENTS]
        merged.sort(key=lambda item: (item[0], item[1], item[3].pk))
        return merged


_SILENT_EVENTS = {AuditAction.SEND, AuditAction.SEND_TEMPLATE, AuditAction.NOTE}  # shown as themselves


def _original_wamid(message: Message) -> str | None:
    if message.message_type in ("edit", "revoke") and isinstance(message.content, dict):
        return (message.content.get(message.message_type) or {}).get("original_message_id")
    return None


def _hidden_change(message: Message, quoted: Mapping[str, Message]) -> bool:
    """An edit or delete whose original is stored is shown on the original, as WhatsApp does."""
    original = _original_wamid(message)
    return bool(original and original in quoted)


def related_messages(messages: Iterable[Message]) -> dict[str, Message]:
    """The messages the given ones quote or change, by wamid: one query (none if no quotes)."""
    wanted = {m.reply_to_wamid for m in messages if m.reply_to_wamid}
    wanted |= {w for w in (_original_wamid(m) for m in messages) if w}
    if not wanted:
        return {}
    return {m.wamid: m for m in _for_bubbles(Message.objects.filter(wamid__in=wanted))}


def timeline_page(conversation: Conversation, before: int | None = None) -> TimelinePage:
    """The newest ``PAGE_SIZE`` messages (older than message ``before`` if given), with the
    notes and audit events of the same stretch of time."""
    messages = _for_bubbles(_messages_of(conversation.contact_id, conversation.app_config_id)).order_by("-pk")
    upper: datetime | None = None
    if before is not None:
        messages = messages.filter(pk__lt=before)
        upper = Message.objects.filter(pk=before).values_list("created_at", flat=True).first()
    rows = list(messages[: PAGE_SIZE + 1])
    has_older = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE][::-1]
    notes = Note.objects.filter(conversation=conversation).select_related("author")
    events = AuditEvent.objects.filter(conversation=conversation)
    if has_older and rows:
        notes = notes.filter(created_at__gte=rows[0].created_at)
        events = events.filter(created_at__gte=rows[0].created_at)
    if upper is not None:
        notes = notes.filter(created_at__lt=upper)
        events = events.filter(created_at__lt=upper)
    elif before is not None:  # an unknown anchor: nothing to place the notes against
        notes, events = notes.none(), events.none()
    return TimelinePage(rows, list(notes), list(events), has_older, related_messages(rows))


def mark_read(conversation: Conversation, user: Any, message_id: int | None) -> None:
    """Move the user's read marker forward to ``message_id`` (never back)."""
    if not message_id:
        return
    updated = ReadMarker.objects.filter(
        conversation=conversation, user=user, last_read_message_id__lt=message_id
    ).update(last_read_message_id=message_id)
    if not updated:
        ReadMarker.objects.get_or_create(
            conversation=conversation, user=user, defaults={"last_read_message_id": message_id}
        )


# --------------------------------------------------------------------------- poll


@dataclass
class PollResult:
    changed: bool
    version: int
    messages: list[Message] = field(default_factory=list)
    statuses: list[Message] = field(default_factory=list)
    replaced: list[Message] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)
    quoted: dict[str, Message] = field(default_factory=dict)


def poll(
    conversation_id: int,
    *,
    after: int,
    known_statuses: Mapping[int, str],
    version: int,
    note_after: int = 0,
    event_after: int = 0,
) -> PollResult | None:
    """What changed in an open conversation since the page last looked: messages after
    ``after``, outbound messages whose status is no longer the one the page shows, and (when
    ``version`` moved) notes, audit events and the conversation's state.

    When nothing changed this is ONE query: the conversation's row by primary key with two
    EXISTS over its messages, both through the primary key. None if the conversation does
    not exist.
    """
    watched = dict(list(known_statuses.items())[-MAX_WATCHED_STATUSES:])
    head = _poll_head(conversation_id, after, watched)
    if head is None:
        return None
    news = bool(head["new"] or head["moved"])
    if not news and head["version"] == version:
        return PollResult(changed=False, version=version)
    result = PollResult(changed=True, version=head["version"])
    if news:
        rows = list(
            _for_bubbles(_messages_of(head["contact_id"], head["app_config_id"]))
            .filter(Q(pk__gt=after) | Q(pk__in=list(watched)))
            .order_by("pk")
        )
        result.messages = [m for m in rows if m.pk > after]
        result.statuses = [m for m in rows if m.pk <= after and m.status != watched.get(m.pk)]
        result.quoted = related_messages(result.messages)
        # an edit or delete that just arrived changes a message the page already shows
        originals = {_original_wamid(m) for m in result.messages} - {None}
        result.replaced = [m for wamid, m in result.quoted.items() if wamid in originals and m.pk <= after]
    if head["version"] != version:
        result.notes = list(
            Note.objects.filter(conversation_id=conversation_id, pk__gt=note_after).select_related("author")
        )
        result.events = list(AuditEvent.objects.filter(conversation_id=conversation_id, pk__gt=event_after))
    return result


def _poll_head(conversation_id: int, after: int, watched: Mapping[int, str]) -> dict[str, Any] | None:
    """The poll's one statement, written out: it runs every two seconds for every open page,
    and compiling the equivalent ORM query cost more than running it.

    Two EXISTS, each through the messages' primary key: ids after ``after`` (a short range at
    the end of the index), and the watched ids whose status moved (not correlated with the
    conversation, so the planner takes the primary key; the detail query that follows keeps
    only this conversation's messages). One OR of both ran through the contact index on
    PostgreSQL, reading every message of the contact.
    """
    quote = connection.ops.quote_name
    messages, conversations = quote(Message._meta.db_table), quote(Conversation._meta.db_table)
    params: list[Any] = [after]
    moved = "0"
    if watched:
        ids = ", ".join(["%s"] * len(watched))
        changed = " OR ".join(["(m.id = %s AND m.status <> %s)"] * len(watched))
        # only quoted table names and placeholders are formatted in; every value is a parameter
        moved = f"EXISTS(SELECT 1 FROM {messages} m WHERE m.id IN ({ids}) AND ({changed}))"  # noqa: S608
        params += list(watched)
        for message_id, status in watched.items():
            params += [message_id, status]
    sql = (
        f"SELECT c.version, c.contact_id, c.app_config_id, "  # noqa: S608
        f"EXISTS(SELECT 1 FROM {messages} m WHERE m.id > %s AND m.contact_id = c.contact_id "
        f"AND m.app_config_id = c.app_config_id), {moved} "
        f"FROM {conversations} c WHERE c.id = %s"
    )
    params.append(conversation_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    version, contact_id, app_config_id, new, moved_any = row
    return {"version": version, "contact_id": contact_id, "app_config_id": app_config_id,
            "new": bool(new), "moved": bool(moved_any)}


# --------------------------------------------------------------------------- actions


def _audit(conversation: Conversation, user: Any, action: AuditAction, detail: str = "") -> AuditEvent:
    Conversation.objects.filter(pk=conversation.pk).update(version=F("version") + 1)
    return AuditEvent.objects.create(
        conversation=conversation, actor=user, actor_name=user.get_username(), action=action, detail=detail[:500]
    )


def _refresh(conversation: Conversation) -> Conversation:
    conversation.refresh_from_db()
    conversation.contact.refresh_from_db()
    return conversation


def take_over(conversation: Conversation, user: Any) -> None:
    """The operator takes the conversation: the bot goes quiet (its session ends) and the
    conversation is assigned to them."""
    with transaction.atomic():
        start_handover(conversation.contact_id)
        previous = conversation.assignee
        Conversation.objects.filter(pk=conversation.pk).update(
            assignee=user, assigned_at=timezone.now(), resolved_at=None
        )
        detail = f"from {previous.get_username()}" if previous and previous != user else ""
        _audit(conversation, user, AuditAction.TAKE_OVER, detail)
    _refresh(conversation)


def release(conversation: Conversation, user: Any, message: str = "") -> None:
    """Give the conversation back to the bot, optionally telling the contact so; the bot
    answers what the contact writes next."""
    text = (message or "").strip()
    contact = Contact.objects.get(pk=conversation.contact_id)
    if not contact.needs_human:
        raise InboxError("The bot is already answering this conversation; nothing changed.")
    if text:
        _check_text(text, "message")
        _check_can_send_free_form(conversation, contact, "message")
    with transaction.atomic():
        release_contact(contact.pk, message=text, released_by=user.get_username())
        Conversation.objects.filter(pk=conversation.pk).update(assignee=None, assigned_at=None)
        _audit(conversation, user, AuditAction.RELEASE, f"with message: {text}" if text else "")
    _refresh(conversation)


def resolve(conversation: Conversation, user: Any) -> None:
    """Done: back to the bot (if it was quiet) and out of the open lists until the contact
    writes again."""
    with transaction.atomic():
        release_contact(conversation.contact_id)
        Conversation.objects.filter(pk=conversation.pk).update(
            assignee=None, assigned_at=None, resolved_at=timezone.now()
        )
        _audit(conversation, user, AuditAction.RESOLVE)
    _refresh(conversation)


def assign(conversation: Conversation, user: Any, agent_id: int | None) -> None:
    """Assign the conversation to an agent (the bot goes quiet), or unassign it (``None``:
    it waits for a human again)."""
    if agent_id is None:
        with transaction.atomic():
            Conversation.objects.filter(pk=conversation.pk).update(assignee=None, assigned_at=None)
            _audit(conversation, user, AuditAction.UNASSIGN)
        _refresh(conversation)
        return
    agent = agents().filter(pk=agent_id).first()
    if agent is None:
        raise InboxError("No active agent with that id; nothing changed.", "agent")
    with transaction.atomic():
        start_handover(conversation.contact_id)
        Conversation.objects.filter(pk=conversation.pk).update(
            assignee=agent, assigned_at=timezone.now(), resolved_at=None
        )
        _audit(conversation, user, AuditAction.ASSIGN, f"to {agent.get_username()}")
    _refresh(conversation)


def add_note(conversation: Conversation, user: Any, text: str) -> Note:
    """A private note: stored and shown to operators, never sent."""
    text = (text or "").strip()
    if not text:
        raise InboxError("A note needs some text.", "text")
    if len(text) > MAX_NOTE:
        raise InboxError(f"A note is at most {MAX_NOTE} characters (this one has {len(text)}).", "text")
    with transaction.atomic():
        note = Note.objects.create(conversation=conversation, author=user, text=text)
        _audit(conversation, user, AuditAction.NOTE, text[:80])
    return note


def add_label(conversation: Conversation, user: Any, label_id: int) -> Label:
    label = Label.objects.filter(pk=label_id).first()
    if label is None:
        raise InboxError("No such label; nothing changed.", "label")
    with transaction.atomic():
        conversation.contact.labels.add(label)
        _audit(conversation, user, AuditAction.LABEL_ADD, label.name)
    return label


def remove_label(conversation: Conversation, user: Any, label_id: int) -> Label:
    label = conversation.contact.labels.filter(pk=label_id).first()
    if label is None:
        raise InboxError("The contact does not have that label; nothing changed.", "label")
    with transaction.atomic():
        conversation.contact.labels.remove(label)
        _audit(conversation, user, AuditAction.LABEL_REMOVE, label.name)
    return label


def _check_text(text: str, field_name: str) -> None:
    if len(text) > MAX_TEXT:
        raise InboxError(f"WhatsApp allows {MAX_TEXT} characters in a message (this one has {len(text)}).",
                         field_name)
    if "\x00" in text:
        raise InboxError("The text contains a null character.", field_name)


def _check_can_send_free_form(conversation: Conversation, contact: Contact, field_name: str) -> None:
    if contact.blocked:
        raise InboxError(f"{contact} is blocked; nothing was sent.", field_name)
    if not window_open(last_inbound_at(conversation), timezone.now()):
        raise InboxError(
            "The 24-hour window is closed: WhatsApp only delivers an approved template now; nothing was sent.",
            field_name,
        )


def _send(conversation: Conversation, user: Any, spec: dict[str, Any], reply_to: str | None,
          action: AuditAction, detail: str) -> Message:
    try:
        with transaction.atomic():
            message = sending.send_to_contact(
                conversation.contact, spec, sent_by=user.get_username(), reply_to=reply_to or None,
                app_config_id=conversation.app_config_id,
            )
            _audit(conversation, user, action, detail)
    except OutboundValidationError as exc:
        raise InboxError(f"{exc.field}: {exc.message}" if exc.field else exc.message, exc.field) from None
    except sending.NoBusinessNumberError as exc:
        raise InboxError(str(exc)) from None
    return message


def send_text(conversation: Conversation, user: Any, text: str, reply_to: str = "") -> Message:
    """The operator's text reply, sent like the bot's (WhatsApp formatting as typed)."""
    if not (text or "").strip():
        raise InboxError("Type a message first.", "text")
    _check_text(text, "text")
    contact = Contact.objects.get(pk=conversation.contact_id)
    conversation.contact = contact
    _check_can_send_free_form(conversation, contact, "text")
    if reply_to and not _messages_of(conversation.contact_id, conversation.app_config_id).filter(
        wamid=reply_to
    ).exists():
        raise InboxError("The quoted message is not in this conversation.", "reply_to")
    return _send(conversation, user, {"type": "text", "body": text}, reply_to, AuditAction.SEND, text[:80])


MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # WhatsApp's largest (a document); media.check_bytes has each kind's


def send_attachment(conversation: Conversation, user: Any, filename: str, content_type: str, data: bytes,
                    caption: str = "") -> Message:
    """Upload a file to Meta's media endpoint from the conversation's number, then send it
    (image, audio, video, document or sticker by its type). A type or size WhatsApp would
    refuse is refused before the upload; nothing is written unless the upload succeeded."""
    caption = (caption or "").strip()
    if not data:
        raise InboxError("Choose a file to send.", "file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InboxError("WhatsApp does not send files over 100 MB.", "file")
    _check_text(caption, "caption")
    contact = Contact.objects.get(pk=conversation.contact_id)
    conversation.contact = contact
    _check_can_send_free_form(conversation, contact, "file")
    mime = media.base_type(content_type)
    kind = "sticker" if mime == "image/webp" else next(
        (k for k, (types, _limit) in media.MEDIA_KINDS.items() if mime in types), None)
    try:
        media_id = media.upload_media(conversation.app_config, filename, content_type, data)
    except media.MediaRefused as exc:
        raise InboxError(f"{filename}: {exc}", "file") from None
    except media.MediaError as exc:
        raise InboxError(f"The upload failed, nothing was sent: {exc}") from None
    spec: dict[str, Any] = {"type": "media", "media_type": kind, "id": media_id}
    if caption and kind in ("image", "video", "document"):
        spec["caption"] = caption
    if kind == "document" and filename:
        spec["filename"] = filename[:240]
    return _send(conversation, user, spec, None, AuditAction.SEND, f"{kind} {filename}"[:80])


def sendable_templates(conversation: Conversation) -> list[MessageTemplate]:
    """The approved templates of the conversation's business number."""
    return [t for t in MessageTemplate.objects.filter(app_config_id=conversation.app_config_id) if t.is_sendable]


def send_template(conversation: Conversation, user: Any, template_id: int, values: Mapping[str, str]) -> Message:
    """Send an approved template with its variables; wrong or missing variables are refused
    (naming the slot) before anything is written."""
    template = MessageTemplate.objects.filter(pk=template_id, app_config_id=conversation.app_config_id).first()
    if template is None:
        raise InboxError("No such template for this business number.", "template")
    contact = Contact.objects.get(pk=conversation.contact_id)
    conversation.contact = contact
    if contact.blocked:
        raise InboxError(f"{contact} is blocked; nothing was sent.", "template")
    try:
        spec = template.build_spec(dict(values))
    except OutboundValidationError as exc:
        raise InboxError(f"{exc.field}: {exc.message}" if exc.field else exc.message, exc.field) from None
    return _send(conversation, user, spec, None, AuditAction.SEND_TEMPLATE, str(template))


def status_is_final(status: str) -> bool:
    return status in (MessageStatus.READ, MessageStatus.FAILED)
