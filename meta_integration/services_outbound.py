"""Sending one stored outbound message to Meta, and marking inbound messages read.

``deliver(message_id)`` is what ``meta_integration.send_message`` runs. It reaches the
message row only through ``ports.outbox()`` (conversations implements it), and returns an
``Outcome`` the task acts on: done, or run again after ``delay`` seconds. It never sleeps
longer than the rate limiter's ``MAX_TOKEN_WAIT``.

The order of one run, and why:

1. load the envelope; anything but ``pending`` is done (a retry never re-sends a sent message);
2. outside the 24-hour window a non-template fails here, before any HTTP call (Meta would
   answer 131047 anyway, after spending throughput);
3. a multi-part message whose previous part is not accepted yet does nothing: that part's
   ``mark_sent`` enqueues this one;
4. a recipient in pair-rate-limit back-off (131056) waits, without spending an attempt;
5. take the *attempt record* (below), then a throughput token; a refused token re-schedules
   the task with a countdown instead of holding the worker slot;
6. ``claim`` (count the attempt, still pending?), POST, record the answer: ``mark_sent`` with
   the wamid, a retry after exponential backoff with jitter for transient errors within the
   route's ``max_retries``, or ``mark_failed`` with Meta's code, title and details.

What is guaranteed when a worker dies mid-send (the "attempt record"): before the POST the
run writes ``wa:send:attempt:{message_id}`` in Redis (SET NX: one run at a time per message)
with its task id and a deadline (now + the task's hard time limit), and adds the wamid the
moment Meta answers, before the database write. The record is deleted once the outcome is
known (for an accepted message, after the wamid is stored). A later run that finds a record:

* with a wamid: Meta accepted it; the run stores it (``mark_sent``) and sends nothing;
* without a wamid, from a run that is certainly gone (its deadline passed, or it is an earlier
  delivery of this very task message, which the broker only hands out again when that
  delivery's worker is lost): the request may or may not have reached Meta. The message is
  marked ``failed`` ("Send interrupted") and is **not** sent again; an operator sees it in
  Failed messages and can resend. So a crash costs at most one message that needs a human
  look, never a duplicate. Unsafe window: a crash between Meta's answer and the Redis write
  (microseconds) loses the wamid, and the message is still failed, not re-sent;
* otherwise another run may be sending right now: wait until its deadline, then decide.

This is at-most-once for an interrupted attempt (the issue asks that a redelivery never sends
twice). It is at-least-once for HTTP timeouts and dropped connections, which Meta asks to be
retried: such a request may have been accepted, so a duplicate is possible there. Reconciling
those through ``biz_opaque_callback_data`` echoed in status webhooks is left for later.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis as redis_lib
from django.conf import settings

from meta_integration import client, ports
from meta_integration.models import MetaAppConfig
from meta_integration.outbound import ErrorClass, OutboundValidationError, build_message
from meta_integration.ratelimit import TokenBucket
from whatsappcrm_backend import topology

__all__ = [
    "MAX_TOKEN_WAIT",
    "Outcome",
    "Result",
    "RunInfo",
    "attempt_limit",
    "backoff_seconds",
    "deliver",
    "endpoint_for",
    "forget_attempt",
    "mark_read",
    "should_retry",
    "warm_up",
]

logger = logging.getLogger(__name__)

SEND_TASK = "meta_integration.send_message"
READ_RECEIPT_TASK = "meta_integration.send_read_receipt"
MAX_TOKEN_WAIT = 0.05  # seconds a run may sleep for a throughput token; longer -> countdown
PAIR_BACKOFF_FACTOR = 6  # 131056: Meta allows about one message per 6 s to one user
ATTEMPT_RECORD_TTL = 24 * 3600  # outlives the broker's visibility timeout and the sweeper
# Codes that are transient but should not be retried for long (Meta: "try again" a few times).
CODE_ATTEMPT_LIMITS: dict[int, int] = {131000: 3}


class Result(StrEnum):
    SENT = "sent"
    RECOVERED = "recovered"  # an earlier run's accepted wamid was stored
    ALREADY_HANDLED = "already_handled"  # not pending any more (sent, failed, delivered...)
    MISSING = "missing"  # no such outbound message
    WAITING_FOR_PREVIOUS_PART = "waiting_for_previous_part"
    FAILED = "failed"
    RETRY = "retry"  # an attempt failed transiently
    RATE_LIMITED = "rate_limited"  # no throughput token yet
    RECIPIENT_BACKOFF = "recipient_backoff"  # 131056 back-off for this recipient
    IN_FLIGHT_ELSEWHERE = "in_flight_elsewhere"  # another run holds the attempt record


_RESCHEDULE = frozenset({Result.RETRY, Result.RATE_LIMITED, Result.RECIPIENT_BACKOFF, Result.IN_FLIGHT_ELSEWHERE})


@dataclass(frozen=True)
class Outcome:
    """What a run did; when ``reschedule`` the task runs again after ``delay`` seconds."""

    result: Result
    delay: float = 0.0
    wamid: str | None = None
    error: str = ""

    @property
    def reschedule(self) -> bool:
        return self.result in _RESCHEDULE


@dataclass(frozen=True)
class RunInfo:
    """Who is running: the Celery task id (stable across retries and redeliveries) and node."""

    task_id: str
    node: str = ""

    @classmethod
    def current(cls, task_id: str | None = None, node: str | None = None) -> RunInfo:
        return cls(task_id or f"direct-{uuid.uuid4().hex}", node or "")


# ------------------------------------------------------------------ pure decisions


def retry_base_seconds() -> float:
    return float(getattr(settings, "META_RETRY_BASE_SECONDS", 1.0))


def retry_max_seconds() -> float:
    cap = float(getattr(settings, "META_RETRY_MAX_SECONDS", 300.0))
    return min(cap, topology.LONGEST_COUNTDOWN.total_seconds())


def backoff_seconds(
    attempt: int, *, base: float, cap: float, factor: float = 1.0, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random.

    The fixed half keeps a retry from coming back at once; the random half keeps the many
    messages hit by one outage from retrying in lockstep.
    """
    if attempt < 1:
        raise ValueError(f"attempt: counts from 1, got {attempt}")
    step = min(cap, base * factor * 2 ** (attempt - 1))
    return step / 2 + rand() * step / 2


def attempt_limit(code: int | None, max_retries: int) -> int:
    """How many attempts a message gets in total for an error with this Meta code."""
    return min(max_retries + 1, CODE_ATTEMPT_LIMITS.get(code, max_retries + 1)) if code is not None else max_retries + 1


def should_retry(error_class: ErrorClass, code: int | None, attempts: int, max_retries: int) -> bool:
    """Retry only what may succeed later, and only within the attempt budget."""
    if error_class not in (ErrorClass.TRANSIENT, ErrorClass.PAIR_RATE_LIMIT):
        return False
    return attempts < attempt_limit(code, max_retries)


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
    gevent stalls every greenlet). Paid inside the first send, it delays that request after
    its throughput token was granted, so it arrives bunched with the next ones.
    """
    _http()
    _redis_client().ping()


def endpoint_for(config: MetaAppConfig) -> client.GraphEndpoint:
    return client.GraphEndpoint(
        base_url=config.graph_api_url,
        api_version=config.api_version,
        phone_number_id=config.phone_number_id,
        access_token=config.access_token,
    )


# ------------------------------------------------------------------ the attempt record


def _attempt_key(message_id: int) -> str:
    return f"wa:send:attempt:{message_id}"


def _pair_key(phone_number_id: str, to: str) -> str:
    return f"wa:send:pairwait:{phone_number_id}:{to}"


def forget_attempt(message_id: int) -> None:
    """Drop the attempt record, so an operator's resend of an interrupted message is sent."""
    _redis_client().delete(_attempt_key(message_id))


def _take_attempt_record(message_id: int, run: RunInfo, attempt: int) -> dict[str, Any] | None:
    """Write our record if none exists; else return the existing one (None: it is ours)."""
    key = _attempt_key(message_id)
    hard_limit = topology.route_for(SEND_TASK).time_limit
    record = {"task_id": run.task_id, "node": run.node, "deadline": time.time() + hard_limit + 5, "attempt": attempt}
    conn = _redis_client()
    if conn.set(key, json.dumps(record), nx=True, ex=ATTEMPT_RECORD_TTL):
        return None
    raw = conn.get(key)
    if raw is None:  # released between SET and GET: try once more
        if conn.set(key, json.dumps(record), nx=True, ex=ATTEMPT_RECORD_TTL):
            return None
        return {"deadline": time.time() + 1}  # someone else just took it: look again shortly
    try:
        return json.loads(raw)
    except ValueError:
        return {}  # unreadable: treated as an interrupted attempt of unknown origin


def _note_accepted(message_id: int, run: RunInfo, wamid: str) -> None:
    """Meta accepted it: remember the wamid first, so a crash before the DB write recovers it."""
    record = {"task_id": run.task_id, "node": run.node, "wamid": wamid}
    _redis_client().set(_attempt_key(message_id), json.dumps(record), ex=ATTEMPT_RECORD_TTL)


def _resolve_earlier_attempt(
    outbox: ports.Outbox, message_id: int, record: dict[str, Any], run: RunInfo
) -> Outcome:
    """Another run's record is there: finish its work or wait for it; never send again."""
    wamid = record.get("wamid")
    if wamid:
        outbox.mark_sent(message_id, wamid)
        forget_attempt(message_id)
        logger.info("message %s: stored wamid %s accepted by an interrupted run", message_id, wamid)
        return Outcome(Result.RECOVERED, wamid=wamid)
    deadline = float(record.get("deadline") or 0)
    remaining = deadline - time.time()
    if record.get("task_id") == run.task_id or remaining <= 0:
        details = (
            f"Attempt {record.get('attempt', '?')} by task {record.get('task_id')} on "
            f"{record.get('node') or 'an unknown worker'} stopped after the request may have "
            "reached Meta and before its answer was stored. It is not sent again automatically, "
            "to avoid a duplicate; check the conversation and resend if the user did not get it."
        )
        outbox.mark_failed(message_id, None, "Send interrupted", details)
        forget_attempt(message_id)
        logger.warning("message %s: %s", message_id, details)
        return Outcome(Result.FAILED, error="Send interrupted")
    return Outcome(Result.IN_FLIGHT_ELSEWHERE, delay=remaining + 1)


# ------------------------------------------------------------------ deliver


def deliver(message_id: int, run: RunInfo | None = None) -> Outcome:
    """Send one stored outbound message (see the module docstring for the steps)."""
    run = run or RunInfo.current()
    outbox = ports.outbox()
    envelope = outbox.load(message_id)
    if envelope is None:
        return Outcome(Result.MISSING)
    if envelope.status != "pending":
        return Outcome(Result.ALREADY_HANDLED)
    if not envelope.is_template and not envelope.window_open:
        title = "Outside the 24-hour window"
        details = (
            "The contact has not written in the last 24 hours, so WhatsApp only delivers "
            "approved templates. Not sent to Meta; send a template instead."
        )
        outbox.mark_failed(message_id, None, title, details)
        return Outcome(Result.FAILED, error=title)
    if not envelope.previous_part_accepted:
        return Outcome(Result.WAITING_FOR_PREVIOUS_PART)

    config = MetaAppConfig.objects.filter(pk=envelope.app_config_id, is_active=True).first()
    if config is None:
        title = "No active business number"
        details = f"Meta app config {envelope.app_config_id} does not exist or is inactive."
        outbox.mark_failed(message_id, None, title, details)
        return Outcome(Result.FAILED, error=title)
    try:
        payload = build_message(envelope.to, envelope.spec)
        endpoint = endpoint_for(config)
    except (OutboundValidationError, ValueError) as exc:
        outbox.mark_failed(message_id, None, "Invalid message", str(exc))
        return Outcome(Result.FAILED, error=str(exc))

    conn = _redis_client()
    pair_wait_ms = conn.pttl(_pair_key(config.phone_number_id, envelope.to))
    if pair_wait_ms and pair_wait_ms > 0:
        return Outcome(Result.RECIPIENT_BACKOFF, delay=pair_wait_ms / 1000 + random.uniform(0, 0.5))

    earlier = _take_attempt_record(message_id, run, envelope.attempts + 1)
    if earlier is not None:
        return _resolve_earlier_attempt(outbox, message_id, earlier, run)
    try:
        token = _token_bucket().acquire(
            config.phone_number_id, config.send_rate_per_second, max_wait=MAX_TOKEN_WAIT
        )
        if not token.granted:
            forget_attempt(message_id)
            # No jitter needed: the bucket already gave each refused caller its own slot.
            return Outcome(Result.RATE_LIMITED, delay=token.wait)
        if not outbox.claim(message_id):
            forget_attempt(message_id)
            return Outcome(Result.ALREADY_HANDLED)
    except BaseException:
        forget_attempt(message_id)  # nothing was sent yet
        raise
    if token.wait:
        time.sleep(token.wait)
    attempts = envelope.attempts + 1

    try:
        result = client.send(endpoint, payload, _http())
    except client.GraphError as exc:
        return _after_failure(outbox, message_id, envelope.to, config, exc, attempts)
    # Any other exception (a time limit inside the request) leaves the attempt record: the
    # outcome is unknown, and the next run treats it as interrupted.
    _note_accepted(message_id, run, result.wamid)
    outbox.mark_sent(message_id, result.wamid)
    forget_attempt(message_id)
    return Outcome(Result.SENT, wamid=result.wamid)


def _after_failure(
    outbox: ports.Outbox,
    message_id: int,
    to: str,
    config: MetaAppConfig,
    exc: client.GraphError,
    attempts: int,
) -> Outcome:
    # The attempt's outcome is known (refused, or given up on): drop the record before any
    # write, so a database error below is retried as a fresh attempt, not as "interrupted".
    forget_attempt(message_id)
    error_class = exc.error_class
    max_retries = topology.route_for(SEND_TASK).max_retries
    if should_retry(error_class, exc.code, attempts, max_retries):
        factor = PAIR_BACKOFF_FACTOR if error_class is ErrorClass.PAIR_RATE_LIMIT else 1
        delay = backoff_seconds(attempts, base=retry_base_seconds(), cap=retry_max_seconds(), factor=factor)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            delay = max(delay, min(retry_after, retry_max_seconds()))
        if error_class is ErrorClass.PAIR_RATE_LIMIT:
            # Hold back every message to this user, not only this one.
            _redis_client().set(_pair_key(config.phone_number_id, to), "1", px=max(1, int(delay * 1000)))
        logger.info("message %s: attempt %s failed (%s), retry in %.2fs", message_id, attempts, exc, delay)
        return Outcome(Result.RETRY, delay=delay, error=str(exc))
    details = exc.details
    if error_class in (ErrorClass.TRANSIENT, ErrorClass.PAIR_RATE_LIMIT):
        details = f"{details} (gave up after {attempts} attempts)".strip()
    elif error_class is ErrorClass.AUTH:
        details = f"{details} (authentication/permission error: check the access token of {config})".strip()
    outbox.mark_failed(message_id, exc.code, exc.title, details)
    logger.warning("message %s: failed for good after %s attempt(s): %s", message_id, attempts, exc)
    return Outcome(Result.FAILED, error=str(exc))


# ------------------------------------------------------------------ read receipts


def mark_read(app_config_id: int, wamid: str, *, typing_indicator: bool = False, retries_done: int = 0) -> Outcome:
    """Mark an inbound message read. Best effort: a permanent error is logged, not raised.

    Read receipts are not counted against the message throughput bucket (they are not
    messages), so they never delay a reply.
    """
    config = MetaAppConfig.objects.filter(pk=app_config_id, is_active=True).first()
    if config is None:
        logger.warning("read receipt for %s: no active app config %s", wamid, app_config_id)
        return Outcome(Result.MISSING)
    try:
        client.mark_read(endpoint_for(config), wamid, _http(), typing_indicator=typing_indicator)
    except client.GraphError as exc:
        max_retries = topology.route_for(READ_RECEIPT_TASK).max_retries
        if should_retry(exc.error_class, exc.code, retries_done + 1, max_retries):
            delay = backoff_seconds(retries_done + 1, base=retry_base_seconds(), cap=retry_max_seconds())
            return Outcome(Result.RETRY, delay=delay, error=str(exc))
        logger.warning("read receipt for %s failed: %s", wamid, exc)
        return Outcome(Result.FAILED, error=str(exc))
    except OutboundValidationError as exc:
        logger.warning("read receipt for %s refused: %s", wamid, exc)
        return Outcome(Result.FAILED, error=str(exc))
    return Outcome(Result.SENT)
