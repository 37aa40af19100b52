"""Delivering stored outbound messages to Meta: the send leg, in the app that owns the rows.

``send_chain(message_id, run)`` is what both ``flows.process_message`` (inline, right after
it committed the replies: no extra task for the common case) and the task
``conversations.send_message`` (retries, the sweeper, chains continued after a gap) run.

**One chain per contact and business number.** A reply is sent only when no earlier reply
to the same contact from the same number is still pending, and every run that finishes a
message (sent or failed) looks for the next one and sends it. So replies reach Meta in the
order they were written - the parts of one reply and the replies to consecutive messages
alike - and a multi-part reply keeps its gap (the next part is enqueued with a countdown).
The head check is part of the claim statement; the look for the next message runs after
the finished one is committed, so of two runs racing at the end of a chain at least one
sees the other's row (no lost wake-up).

**The database is the record.** One run at a time may call Meta for a row: the claim is one
``UPDATE ... RETURNING`` that counts the attempt and takes a lease (``claimed_by``,
``claimed_until``) and returns everything the send needs; a reply that
``flows.process_message`` writes at the head of its chain, inside the 24-hour window, is
instead inserted already claimed by that run (``claim_columns``), which sends it next.
Meta's answer is stored by one conditional UPDATE (``status=sent``, ``wamid``). Every payload carries
``biz_opaque_callback_data = "msg:<id>"``, which Meta echoes in each status webhook, so
when a run dies between Meta's answer and that UPDATE, the first status webhook stores the
wamid (``conversations.services.inbound``). A row whose lease expires still pending was not
heard of from Meta within the lease plus ``SEND_STATUS_GRACE_SECONDS``: it is sent again.
So nothing Meta accepted ends failed, and a duplicate needs Meta's status webhooks to be
later than that grace.

**Redis is one round trip per send**: the per-number token bucket and the recipient's
131056 back-off in one Lua call (``meta_integration.ratelimit``). Waiting for a token or a
back-off is not an attempt; the run gives the lease back and a task comes back later.

**Bulk sends (campaigns) go through here too, at LOW priority.** A row whose ``sent_by``
starts with a registered prefix (``campaign:``) takes its token as a LOW caller (the bucket
keeps a reserve for replies), is rescheduled at LOW priority, and is first asked of its
*send gate* (``register_send_gate``): the app that wrote it says whether it may still go out
(a paused or cancelled campaign, a contact who opted out meanwhile). A refusal fails the
row without any request, in the same transaction as the gate's own bookkeeping, so the
row leaves the contact's chain and is never sent later by a sweeper.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import redis as redis_lib
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conversations.models import Message, MessageStatus
from conversations.services.inbound import apply_pending_status_events
from conversations.window import window_open
from meta_integration import client, config_cache
from meta_integration.errors import ErrorClass
from meta_integration.message_bodies import OutboundValidationError, build_message
from meta_integration.models import MetaAppConfig
from meta_integration.payloads import CALLBACK_PREFIX
from meta_integration.ratelimit import TokenBucket, default_burst, default_reserve
from meta_integration.retry_policy import PAIR_BACKOFF_FACTOR, backoff_seconds, should_retry
from whatsappcrm_backend import topology
from whatsappcrm_backend.celery import enqueue

__all__ = [
    "CALLBACK_PREFIX",
    "MAX_TOKEN_WAIT",
    "PREVIOUS_PART_FAILED",
    "SEND_TASK",
    "Claimed",
    "Outcome",
    "Result",
    "RunInfo",
    "SendGate",
    "callback_data",
    "claim_columns",
    "claimed_reply",
    "deliver",
    "enqueue_send",
    "is_bulk",
    "mark_read",
    "record_accepted",
    "register_send_gate",
    "send_chain",
    "warm_up",
]

logger = logging.getLogger(__name__)

SEND_TASK = "conversations.send_message"
PREVIOUS_PART_FAILED = "Previous part failed"
MAX_TOKEN_WAIT = 0.05  # seconds a run may sleep for a throughput token; longer -> a countdown
CHAIN_INLINE_LIMIT = 50  # parts one run sends back to back before handing the rest to a task


class Result(StrEnum):
    SENT = "sent"
    ALREADY_HANDLED = "already_handled"  # not pending any more (sent, failed, delivered...)
    MISSING = "missing"  # no such outbound message
    WAITING_FOR_PREVIOUS_PART = "waiting_for_previous_part"  # an earlier reply of the chain is pending
    NOT_DUE = "not_due"  # its part gap or retry time has not come yet
    FAILED = "failed"
    RETRY = "retry"  # an attempt failed transiently
    RATE_LIMITED = "rate_limited"  # no throughput token yet
    RECIPIENT_BACKOFF = "recipient_backoff"  # 131056 back-off for this recipient
    IN_FLIGHT_ELSEWHERE = "in_flight_elsewhere"  # another run holds the lease


_RESCHEDULE = frozenset(
    {Result.RETRY, Result.RATE_LIMITED, Result.RECIPIENT_BACKOFF, Result.IN_FLIGHT_ELSEWHERE, Result.NOT_DUE}
)
_FINISHED = frozenset({Result.SENT, Result.FAILED})


@dataclass(frozen=True)
class Outcome:
    """What a run did to ``message_id``; when ``reschedule`` it must be tried again after ``delay`` s."""

    result: Result
    message_id: int = 0
    delay: float = 0.0
    wamid: str | None = None
    error: str = ""
    low_priority: bool = False  # a bulk send: rescheduled at LOW priority
    following: Any = field(default=None, repr=False, compare=False)  # the chain's next row, if looked up

    @property
    def reschedule(self) -> bool:
        return self.result in _RESCHEDULE


@dataclass(frozen=True)
class RunInfo:
    """Who is sending (the Celery task id and node): written on the lease, for the logs."""

    task_id: str
    node: str = ""

    @classmethod
    def current(cls, task_id: str | None = None, node: str | None = None) -> RunInfo:
        return cls(task_id or f"direct-{uuid.uuid4().hex}", node or "")

    @property
    def label(self) -> str:
        return f"{self.task_id}@{self.node}"[:155] if self.node else self.task_id[:155]


class SendGate(Protocol):
    """Asked before a bulk send (see the module docstring); registered by the writing app."""

    def refusal(self, message_id: int) -> str | None:
        """Why ``message_id`` must not be sent now (a short reason), or None to send it."""

    def refused(self, message_id: int, reason: str) -> None:
        """Record the refusal; runs in the transaction that fails the message row."""


_send_gates: dict[str, SendGate] = {}


def register_send_gate(sent_by_prefix: str, gate: SendGate) -> None:
    """Make rows whose ``sent_by`` starts with ``sent_by_prefix`` bulk sends asked of ``gate``
    (an app's ``ready()``: conversations imports no app that writes bulk sends)."""
    if not sent_by_prefix:
        raise ValueError("sent_by_prefix: must not be empty")
    _send_gates[sent_by_prefix] = gate


def is_bulk(sent_by: str) -> bool:
    """A row written by a bulk sender (a campaign): sent and rescheduled at LOW priority."""
    return _gate_for(sent_by) is not None


def _gate_for(sent_by: str) -> SendGate | None:
    for prefix, gate in _send_gates.items():
        if sent_by.startswith(prefix):
            return gate
    return None


def callback_data(message_id: int) -> str:
    """What every payload carries as ``biz_opaque_callback_data``; Meta echoes it in statuses
    (read back by ``meta_integration.payloads.parse_callback_message_id``)."""
    return f"{CALLBACK_PREFIX}{message_id}"


# ------------------------------------------------------------------ process-wide resources

_redis: redis_lib.Redis | None = None
_bucket: TokenBucket | None = None


def _redis_client() -> redis_lib.Redis:
    global _redis
    if _redis is None:
        _redis = redis_lib.Redis.from_url(settings.REDIS_URL)  # its pool re-connects after fork
    return _redis


def _token_bucket() -> TokenBucket:
    global _bucket
    if _bucket is None:
        _bucket = TokenBucket(_redis_client())
    return _bucket


def _http():
    return client.http_client(settings.META_HTTP_TIMEOUT, settings.META_HTTP_MAX_CONNECTIONS)


def warm_up() -> None:
    """Build this process's HTTP client and Redis connection before the first message.

    Building an httpx client loads the CA bundle (tens of milliseconds of CPU, which under
    gevent stalls every greenlet); paid inside the first send it delays that reply.
    """
    _http()
    _redis_client().ping()


def _endpoint(config: MetaAppConfig) -> client.GraphEndpoint:
    return client.GraphEndpoint(
        base_url=config.graph_api_url,
        api_version=config.api_version,
        phone_number_id=config.phone_number_id,
        access_token=config.access_token,
    )


def _pair_key(phone_number_id: str, to: str) -> str:
    return f"wa:send:pairwait:{phone_number_id}:{to}"


def _lease_seconds() -> float:
    """How long a claim keeps other runs away: the longest one attempt can take (httpx's pool,
    connect, write and read timeouts back to back, plus the token wait), then the grace for
    Meta's status webhook to name the row if the run died after Meta accepted."""
    return 3 * settings.META_HTTP_TIMEOUT + 5 + MAX_TOKEN_WAIT + settings.SEND_STATUS_GRACE_SECONDS


# ------------------------------------------------------------------ the claim


@dataclass(frozen=True)
class Claimed:
    id: int
    contact_id: int
    app_config_id: int | None
    attempts: int
    spec: dict[str, Any]
    group_id: uuid.UUID | None
    part_index: int | None
    parts_total: int | None
    send_after: datetime | None
    to: str
    # The 24-hour window is per business number: the contact's last message to this number
    # (their last message at all only if they never wrote to it: a contact added by hand).
    last_inbound_at: datetime | None
    sent_by: str = ""


_CLAIM_SQL = """
UPDATE conversations_message
SET attempts = attempts + 1, claimed_by = %s, claimed_until = %s
WHERE id = %s AND direction = 'out' AND status = 'pending'
  AND (claimed_until IS NULL OR claimed_until < %s)
  AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
  AND (send_after IS NULL OR send_after <= %s)
  AND NOT EXISTS (
    SELECT 1 FROM conversations_message AS earlier
    WHERE earlier.contact_id = conversations_message.contact_id
      AND earlier.app_config_id = conversations_message.app_config_id
      AND earlier.direction = 'out' AND earlier.status = 'pending'
      AND earlier.id < conversations_message.id
  )
RETURNING id, contact_id, app_config_id, attempts, content, group_id, part_index, parts_total, send_after,
  (SELECT c.wa_id FROM conversations_contact AS c WHERE c.id = conversations_message.contact_id),
  COALESCE(
    (SELECT MAX(i.timestamp) FROM conversations_message AS i
     WHERE i.contact_id = conversations_message.contact_id AND i.app_config_id = conversations_message.app_config_id
       AND i.direction = 'in'),
    (SELECT c.last_inbound_at FROM conversations_contact AS c WHERE c.id = conversations_message.contact_id)
  ),
  sent_by
"""



def claim_columns(run: RunInfo, now: datetime) -> dict[str, Any]:
    """What ``_CLAIM_SQL`` writes, for a reply inserted already claimed by the run that
    sends it next (``flows.process_message``, under the contact's lock, when no earlier reply
    of the chain is pending): the attempt counted and the lease taken by the INSERT."""
    return {"attempts": 1, "claimed_by": run.label, "claimed_until": now + timedelta(seconds=_lease_seconds())}


def claimed_reply(message: Message, to: str, last_inbound_at: datetime | None) -> Claimed:
    """The claim of a row written with ``claim_columns`` (what ``_claim`` would have loaded).
    ``last_inbound_at`` may be older than the contact's latest message (a message being
    answered): the window check is then only stricter."""
    return Claimed(
        id=message.pk, contact_id=message.contact_id, app_config_id=message.app_config_id,
        attempts=message.attempts, spec=message.content if isinstance(message.content, dict) else {},
        group_id=message.group_id, part_index=message.part_index, parts_total=message.parts_total,
        send_after=message.send_after, to=to, last_inbound_at=last_inbound_at, sent_by=message.sent_by or "",
    )


def _as_datetime(value: Any) -> datetime | None:
    """A raw cursor's timestamp as an aware datetime (SQLite gives naive UTC, or text)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def _as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _claim(message_id: int, run: RunInfo, now: datetime) -> Claimed | None:
    """Count the attempt, take the lease and load the send in ONE statement; None if not ours to send."""
    lease_until = now + timedelta(seconds=_lease_seconds())
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [run.label, lease_until, message_id, now, now, now])
        row = cursor.fetchone()
    if row is None:
        return None
    spec = _as_json(row[4])
    group_id = row[5]
    return Claimed(
        id=row[0],
        contact_id=row[1],
        app_config_id=row[2],
        attempts=row[3],
        spec=spec if isinstance(spec, dict) else {},
        group_id=uuid.UUID(str(group_id)) if group_id is not None and not isinstance(group_id, uuid.UUID)
        else group_id,
        part_index=row[6],
        parts_total=row[7],
        send_after=_as_datetime(row[8]),
        to=row[9],
        last_inbound_at=_as_datetime(row[10]),
        sent_by=row[11] or "",
    )


def _why_not_claimed(message_id: int, now: datetime) -> Outcome:
    """The claim matched nothing: say why (the rare path, so it may cost a statement)."""
    row = (
        Message.objects.outbound().filter(pk=message_id)
        .values("status", "claimed_until", "next_attempt_at", "send_after", "contact_id", "app_config_id")
        .first()
    )
    if row is None:
        return Outcome(Result.MISSING, message_id)
    if row["status"] != MessageStatus.PENDING:
        return Outcome(Result.ALREADY_HANDLED, message_id)
    if row["claimed_until"] is not None and row["claimed_until"] >= now:
        return Outcome(Result.IN_FLIGHT_ELSEWHERE, message_id,
                       delay=(row["claimed_until"] - now).total_seconds() + 1)
    earlier = Message.objects.pending_chain(row["contact_id"], row["app_config_id"]).filter(pk__lt=message_id)
    if earlier.exists():
        return Outcome(Result.WAITING_FOR_PREVIOUS_PART, message_id)
    due = max((t for t in (row["next_attempt_at"], row["send_after"]) if t is not None), default=now)
    return Outcome(Result.NOT_DUE, message_id, delay=max(0.05, (due - now).total_seconds()))


# ------------------------------------------------------------------ recording the outcome


_MARK_SENT_SQL = """
UPDATE conversations_message
SET status = 'sent', wamid = %s, sent_at = %s, status_at = NULL, claimed_by = '', claimed_until = NULL,
    next_attempt_at = NULL, error_code = NULL, error_title = '', error_details = ''
WHERE id = %s AND status = 'pending'
RETURNING (SELECT COUNT(*) FROM conversations_statusevent AS e WHERE e.wamid = %s AND e.applied = %s)
"""


def record_accepted(message_id: int, wamid: str) -> bool:
    """Store Meta's acceptance of a pending row (one UPDATE) and apply statuses that raced
    ahead of it. ``status_at`` stays empty: Meta's own "sent" webhook fills in its time.
    Returns False if the row was not pending any more."""
    return _record_accepted(message_id, wamid, None)[0]


_NOT_LOOKED = object()  # _record_accepted did not look for the chain's next row


def _record_accepted(message_id: int, wamid: str, chain: Claimed | None) -> tuple[bool, Any]:
    """``record_accepted``; with ``chain`` (the row just sent) also the chain's next row, as
    ``_NEXT_IN_CHAIN_SQL`` returns it, else ``_NOT_LOOKED``.

    On PostgreSQL in autocommit, both go in one round trip as ``BEGIN; UPDATE; COMMIT; SELECT``:
    the COMMIT ends the UPDATE's transaction before the SELECT takes its snapshot, which is
    what ``_next_in_chain``'s no-lost-wake-up argument needs (the finished row committed
    before the look for the next). The BEGIN makes the block explicit: a COMMIT closing a
    multi-statement query's implicit block works too, but PostgreSQL logs "there is no
    transaction in progress" for it, a server-log WARNING per message sent. Inside a
    transaction, two statements."""
    mark_params = [wamid, timezone.now(), message_id, wamid, False]
    following: Any = _NOT_LOOKED
    with connection.cursor() as cursor:
        if chain is not None and connection.vendor == "postgresql" and not connection.in_atomic_block:
            next_sql, next_params = _next_in_chain_sql(chain)
            cursor.execute(f"BEGIN;\n{_MARK_SENT_SQL};\nCOMMIT;\n{next_sql}", [*mark_params, *next_params])
            cursor.nextset()  # past the BEGIN
            row = cursor.fetchone()
            cursor.nextset()  # the COMMIT
            cursor.nextset()
            following = cursor.fetchone()
        else:
            cursor.execute(_MARK_SENT_SQL, mark_params)
            row = cursor.fetchone()
    if row is None:
        logger.warning("message %s: accepted by Meta as %s but no longer pending", message_id, wamid)
        return False, following
    if row[0]:
        with transaction.atomic():
            apply_pending_status_events(wamid)
    return True, following


def _mark_failed(
    message_id: int, code: int | None, title: str, details: str, now: datetime, *, attempts: int | None = None
) -> bool:
    """Fail a pending row (and the parts after it in its group: never a list with a hole).
    ``attempts`` corrects the claim's count when no request was made."""
    extra = {} if attempts is None else {"attempts": attempts}
    with transaction.atomic():
        updated = Message.objects.filter(pk=message_id, status=MessageStatus.PENDING).update(
            status=MessageStatus.FAILED, status_at=now, claimed_by="", claimed_until=None, next_attempt_at=None,
            error_code=code, error_title=(title or "Failed")[:255], error_details=details or "", **extra,
        )
        if not updated:
            return False
        row = Message.objects.filter(pk=message_id).values("group_id", "part_index", "parts_total").first()
        if row and row["group_id"] is not None:
            reason = f"{code} {title}" if code is not None else title
            Message.objects.filter(
                group_id=row["group_id"], part_index__gt=row["part_index"], status=MessageStatus.PENDING
            ).update(
                status=MessageStatus.FAILED, status_at=now, error_code=None, error_title=PREVIOUS_PART_FAILED,
                error_details=(
                    f"Part {row['part_index'] + 1} of {row['parts_total']} failed ({reason}); the parts "
                    "after it are not sent, so the reader never gets a list with a hole in it."
                ),
            )
    return True


def _release(message: Claimed, run: RunInfo, *, not_before: datetime | None, counted: bool) -> None:
    """Give the lease back so a later task sends it; an uncounted wait (token, back-off) is no attempt."""
    Message.objects.filter(pk=message.id, status=MessageStatus.PENDING, claimed_by=run.label).update(
        claimed_by="", claimed_until=None, next_attempt_at=not_before,
        attempts=message.attempts if counted else message.attempts - 1,
    )


# ------------------------------------------------------------------ one message


def deliver(message_id: int, run: RunInfo | None = None) -> Outcome:
    """Send one stored outbound message if it is its chain's head and due; see the module docstring."""
    return _deliver(message_id, run or RunInfo.current())[0]


def _deliver(message_id: int, run: RunInfo) -> tuple[Outcome, Claimed | None]:
    now = timezone.now()
    message = _claim(message_id, run, now)
    if message is None:
        return _why_not_claimed(message_id, now), None
    return _send_claimed(message, run, now), message


def _fail(
    message: Claimed, title: str, details: str, now: datetime, code: int | None = None, *, requested: bool = False
) -> Outcome:
    """``requested``: Meta was called and refused; otherwise the row fails before any request,
    which is no attempt."""
    _mark_failed(message.id, code, title, details, now, attempts=None if requested else message.attempts - 1)
    return Outcome(Result.FAILED, message.id, error=title)


def _send_claimed(message: Claimed, run: RunInfo, now: datetime) -> Outcome:
    is_template = message.spec.get("type") == "template"
    if not is_template and not window_open(message.last_inbound_at, now):
        return _fail(message, "Outside the 24-hour window", (
            "The contact has not written in the last 24 hours, so WhatsApp only delivers "
            "approved templates. Not sent to Meta; send a template instead."
        ), now)
    config = config_cache.active_config(message.app_config_id)
    if config is None:
        return _fail(message, "No active business number",
                     f"Meta app config {message.app_config_id} does not exist or is inactive.", now)
    try:
        payload = build_message(message.to, message.spec)
        endpoint = _endpoint(config)
    except (OutboundValidationError, ValueError) as exc:
        return _fail(message, "Invalid message", str(exc), now)
    payload["biz_opaque_callback_data"] = callback_data(message.id)

    send_gate = _gate_for(message.sent_by)
    low = send_gate is not None
    if send_gate is not None:
        reason = send_gate.refusal(message.id)
        if reason is not None:
            with transaction.atomic():
                send_gate.refused(message.id, reason)
                return _fail(message, f"Not sent: {reason}"[:255], (
                    f"Refused before any request to Meta: {reason}. The row was never sent."
                ), now)

    rate = config.send_rate_per_second
    burst = default_burst(rate)
    try:
        gate = _token_bucket().acquire(
            config.phone_number_id, rate, burst=burst, max_wait=MAX_TOKEN_WAIT,
            hold_key=_pair_key(config.phone_number_id, message.to),
            low_priority=low, reserve=default_reserve(burst, settings.SEND_RATE_HIGH_RESERVE),
        )
    except BaseException:
        _release(message, run, not_before=None, counted=False)  # nothing was sent
        raise
    if not gate.granted:
        # No jitter needed for tokens: the bucket already gave each refused caller its own slot.
        result = Result.RECIPIENT_BACKOFF if gate.held else Result.RATE_LIMITED
        _release(message, run, not_before=now + timedelta(seconds=gate.wait), counted=False)
        return Outcome(result, message.id, delay=gate.wait, low_priority=low)
    if gate.wait:
        time.sleep(gate.wait)

    try:
        accepted = client.send(endpoint, payload, _http())
    except client.GraphError as exc:
        return _after_failure(message, run, config, exc, now)
    # Any other exception (a time limit inside the request) leaves the lease: the outcome is
    # unknown, and the status webhook or the lease's expiry decides.
    _, following = _record_accepted(message.id, accepted.wamid, message)
    return Outcome(Result.SENT, message.id, wamid=accepted.wamid, following=following)


def _after_failure(
    message: Claimed, run: RunInfo, config: MetaAppConfig, exc: client.GraphError, now: datetime
) -> Outcome:
    error_class = exc.error_class
    max_retries = topology.route_for(SEND_TASK).max_retries
    if should_retry(error_class, exc.code, message.attempts, max_retries):
        cap = min(settings.META_RETRY_MAX_SECONDS, topology.LONGEST_COUNTDOWN.total_seconds())
        factor = PAIR_BACKOFF_FACTOR if error_class is ErrorClass.PAIR_RATE_LIMIT else 1
        delay = backoff_seconds(message.attempts, base=settings.META_RETRY_BASE_SECONDS, cap=cap, factor=factor)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            delay = max(delay, min(retry_after, cap))
        if error_class is ErrorClass.PAIR_RATE_LIMIT:
            # Hold back every message to this user, not only this one.
            _redis_client().set(_pair_key(config.phone_number_id, message.to), "1", px=max(1, int(delay * 1000)))
        _release(message, run, not_before=now + timedelta(seconds=delay), counted=True)
        logger.info("message %s: attempt %s failed (%s), retry in %.2fs", message.id, message.attempts, exc, delay)
        return Outcome(Result.RETRY, message.id, delay=delay, error=str(exc),
                       low_priority=_gate_for(message.sent_by) is not None)
    details = exc.details
    if error_class in (ErrorClass.TRANSIENT, ErrorClass.PAIR_RATE_LIMIT):
        details = f"{details} (gave up after {message.attempts} attempts)".strip()
    elif error_class is ErrorClass.AUTH:
        details = f"{details} (authentication/permission error: check the access token of {config})".strip()
    logger.warning("message %s: failed for good after %s attempt(s): %s", message.id, message.attempts, exc)
    return _fail(message, exc.title, details, now, code=exc.code, requested=True)


# ------------------------------------------------------------------ the chain


def _next_in_chain(message: Claimed) -> tuple[int, float] | None:
    """The contact's next pending message after ``message`` (same number), and how long to
    wait before sending it: a later part keeps its gap after this one, a retry its time.

    Runs after ``message`` was committed as finished, so a reply written meanwhile is seen
    here or sees ``message`` finished in its own claim (no lost wake-up)."""
    with connection.cursor() as cursor:  # SQL: compiling it with the ORM cost more than running it
        cursor.execute(*_next_in_chain_sql(message))
        row = cursor.fetchone()
    return _following(message, row)


def _next_in_chain_sql(message: Claimed) -> tuple[str, list[Any]]:
    on_number = "app_config_id IS NULL" if message.app_config_id is None else "app_config_id = %s"
    params = [message.contact_id, *([] if message.app_config_id is None else [message.app_config_id]), message.id]
    return _NEXT_IN_CHAIN_SQL.format(on_number=on_number), params


def _following(message: Claimed, row: Any) -> tuple[int, float] | None:
    """``_next_in_chain``'s answer from the row ``_NEXT_IN_CHAIN_SQL`` found (None: none)."""
    if row is None:
        return None
    following_id, group_id, send_after, next_attempt_at = row
    group_id = uuid.UUID(str(group_id)) if group_id is not None and not isinstance(group_id, uuid.UUID) else group_id
    send_after, next_attempt_at = _as_datetime(send_after), _as_datetime(next_attempt_at)
    now = timezone.now()
    wait = 0.0
    if group_id is not None and group_id == message.group_id:
        wait = _part_countdown(message.send_after, send_after, now)
    elif send_after is not None:
        wait = (send_after - now).total_seconds()
    if next_attempt_at is not None:
        wait = max(wait, (next_attempt_at - now).total_seconds())
    return following_id, max(0.0, wait)


# Message.objects.pending_chain(contact, number).filter(pk__gt=...).order_by("pk").first()
_NEXT_IN_CHAIN_SQL = """
SELECT id, group_id, send_after, next_attempt_at FROM conversations_message
WHERE contact_id = %s AND {on_number} AND direction = 'out' AND status = 'pending' AND id > %s
ORDER BY id LIMIT 1
"""


def _part_countdown(previous_send_after: datetime | None, send_after: datetime | None, now: datetime) -> float:
    """Wait the planned gap after the previous part was accepted, or until the planned time
    if that is later; never less than the gap, so late parts do not bunch up."""
    if previous_send_after is None or send_after is None:
        return 0.0
    gap = max(0.0, (send_after - previous_send_after).total_seconds())
    return max(gap, (send_after - now).total_seconds())


def send_chain(message_id: int, run: RunInfo | None = None, claimed: Claimed | None = None) -> Outcome:
    """Send ``message_id`` and then, in order, what follows it in its contact's chain.

    Parts due now are sent back to back in this run; a part with a gap, a retry or a refused
    token goes to ``conversations.send_message`` with a countdown, so no worker slot waits.
    ``claimed``: ``message_id`` was written already claimed by ``run`` (``claimed_reply``).
    Returns the last outcome.
    """
    run = run or RunInfo.current()
    outcome = Outcome(Result.MISSING, message_id)
    for _ in range(CHAIN_INLINE_LIMIT):
        if claimed is not None and claimed.id == message_id:
            outcome = _send_claimed(claimed, run, timezone.now())
        else:
            outcome, claimed = _deliver(message_id, run)
        if outcome.reschedule:
            _enqueue_send(outcome.message_id, outcome.delay, low=outcome.low_priority)
            return outcome
        if outcome.result not in _FINISHED or claimed is None:
            return outcome
        if outcome.following is _NOT_LOOKED or outcome.result is not Result.SENT:
            following = _next_in_chain(claimed)
        else:  # looked up with Meta's answer, in the same round trip
            following = _following(claimed, outcome.following)
        if following is None:
            return outcome
        message_id, wait = following
        if wait > 0:
            _enqueue_send(message_id, wait)
            return outcome
    _enqueue_send(message_id, 0)
    return outcome


def enqueue_send(message_id: int, countdown: float = 0.0, *, low: bool = False) -> None:
    """Publish the send task for a row (LOW for a bulk send, so it never overtakes a reply)."""
    _enqueue_send(message_id, countdown, low=low)


def _enqueue_send(message_id: int, countdown: float, *, low: bool = False) -> None:
    options: dict[str, Any] = {"priority": topology.Priority.LOW} if low else {}
    if countdown > 0:
        enqueue(SEND_TASK, message_id, countdown=countdown, **options)
    else:
        enqueue(SEND_TASK, message_id, **options)


# ------------------------------------------------------------------ read receipts


def mark_read(app_config_id: int | None, wamid: str, *, typing_indicator: bool = False) -> bool:
    """Mark an inbound message (and so every earlier one) read. Best effort, one attempt:
    a lost read receipt is cosmetic, so a failure is logged and never delays a reply.

    Read receipts do not spend the number's message throughput (they are not messages).
    """
    config = config_cache.active_config(app_config_id)
    if config is None:
        logger.warning("read receipt for %s: no active app config %s", wamid, app_config_id)
        return False
    try:
        client.mark_read(_endpoint(config), wamid, _http(), typing_indicator=typing_indicator)
    except (client.GraphError, OutboundValidationError, ValueError) as exc:
        logger.warning("read receipt for %s failed: %s", wamid, exc)
        return False
    return True
