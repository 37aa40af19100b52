"""Webhook-side actions of the Meta boundary: authenticate a POST, record it, hand it on.

The view is thin; the decisions live here so they can be tested and reused:

* ``authenticate`` picks the app config(s) a body names by
  ``entry[].changes[].value.metadata.phone_number_id`` and checks the HMAC with each one's
  secret. The body is decoded only to find those ids: nothing from it is trusted or acted
  on before the signature holds.
* ``accept_webhook`` hands the parsed batch to the registered ``InboundSink`` (in one
  transaction when it holds messages), so a 200 means everything was stored. The whole
  payload goes to the audit log only when something in it was not understood or reported
  an error, or by WEBHOOK_EVENT_SAMPLE_RATE: the normal path writes no audit row.
* The business numbers' configs come from ``config_cache`` (per process, for
  META_CONFIG_CACHE_SECONDS) so a webhook does not look its number up every time.
* ``purge_webhook_events`` enforces the audit log's retention; ``ensure_default_app_config``
  turns ``META_*`` environment settings into a row so a fresh install answers Meta at once.

This module imports no other app: the inbound sink comes through ``ports``.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from meta_integration import config_cache, ports
from meta_integration.models import MetaAppConfig, WebhookEvent
from meta_integration.payloads import WebhookBatch
from meta_integration.signatures import verify_signature

logger = logging.getLogger(__name__)

MAX_JSON_DEPTH = 64
"""Meta's bodies nest about ten levels deep; anything far deeper is refused as malformed
(it could not be stored: JSON encoders recurse)."""

SUMMARY_MAX_LENGTH = 255  # WebhookEvent.summary


class WebhookRejected(Exception):
    """The request is refused with ``status`` (403, 400, 413); ``reason`` is for the log only."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class BodyError(ValueError):
    """The raw body is not JSON the project can store; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------
# Decoding (pure)
# --------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise BodyError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 decodes to inf, which no database stores
        raise BodyError(f"number {text[:40]} is out of range")
    return number


def decode_json(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no out-of-range floats, not nested too deeply.

    Raises BodyError. Strings keep their content except what a database cannot store:
    NUL characters and lone surrogates are replaced by U+FFFD (Meta never sends them).
    """
    try:
        document = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except BodyError:
        raise
    except RecursionError:
        raise BodyError("JSON nested too deeply") from None
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise BodyError(f"not JSON: {exc}") from None
    return _storable(document, 0)


def _storable_str(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def _storable(value: Any, depth: int) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise BodyError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        return _storable_str(value)
    if isinstance(value, dict):
        return {_storable_str(key): _storable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item, depth + 1) for item in value]
    return value


def referenced_phone_number_ids(document: Any) -> tuple[str, ...]:
    """The business numbers a decoded body names, in first-seen order; never raises.

    Reads exactly what the parser routes messages and statuses by
    (``entry[].changes[].value.metadata.phone_number_id``, a non-empty string), so every
    record the parser yields belongs to a number whose signature was checked.
    """
    found: dict[str, None] = {}
    entries = document.get("entry") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            number_id = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if isinstance(number_id, str) and number_id:
                found[number_id] = None
    return tuple(found)


def signature_well_formed(header: str | None) -> bool:
    """Cheap shape check so unsigned traffic is refused before any decoding."""
    if not isinstance(header, str):
        return False
    header = header.strip()
    return header.startswith("sha256=") and len(header) == 71


# --------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedBody:
    """A body whose signature holds for every business number it names.

    ``configs`` lists those numbers' configs in first-seen order; for a body that names
    none (e.g. only a template-status change) it is the one config whose secret signed it.
    ``document`` is the decoded JSON, or None with ``decode_error`` when it is not JSON.
    """

    configs: tuple[MetaAppConfig, ...]
    document: Any
    decode_error: str | None = None


def authenticate(body: bytes, signature: str | None) -> VerifiedBody:
    """Check ``X-Hub-Signature-256`` against the app secret of each number the body names.

    Raises WebhookRejected(403) for a missing/malformed/wrong signature, an unknown or
    inactive phone_number_id, or a config without an app secret (a configuration error,
    refused in DEBUG too: an empty secret must never mean "skip the check").
    """
    if not signature_well_formed(signature):
        raise WebhookRejected(403, "missing or malformed X-Hub-Signature-256")
    try:
        document, decode_error = decode_json(body), None
    except BodyError as exc:
        document, decode_error = None, exc.reason

    number_ids = referenced_phone_number_ids(document)
    if number_ids:
        configs = _configs_for(number_ids)
    else:
        configs = (_config_that_signed(body, signature),)
    for config in configs:
        if not verify_signature(body, signature, config.app_secret):
            raise WebhookRejected(403, f"signature does not match the app secret of {config.phone_number_id}")
    return VerifiedBody(configs=configs, document=document, decode_error=decode_error)


def _configs_for(number_ids: Sequence[str]) -> tuple[MetaAppConfig, ...]:
    by_id = config_cache.active_configs(number_ids)
    unknown = [n for n in number_ids if n not in by_id]
    if unknown:
        raise WebhookRejected(403, f"no active app config for phone_number_id {', '.join(unknown)}")
    for config in by_id.values():
        if not config.app_secret:
            logger.error(
                "configuration error: Meta app config %s (phone_number_id=%s) has no app secret; "
                "its webhooks are refused until one is set",
                config.pk, config.phone_number_id,
            )
            raise WebhookRejected(403, f"app config {config.phone_number_id} has no app secret")
    return tuple(by_id[n] for n in number_ids)


def _config_that_signed(body: bytes, signature: str | None) -> MetaAppConfig:
    """For a body that names no business number (or is not JSON): whichever secret signed it.

    Knowing that a signer is ours decides between 400 (our traffic, malformed) and 403.
    """
    for config in MetaAppConfig.objects.filter(is_active=True).exclude(app_secret="").order_by("pk"):
        if verify_signature(body, signature, config.app_secret):
            return config
    raise WebhookRejected(403, "signature matches no active app config")


def config_for_verify_token(mode: str | None, token: str | None) -> MetaAppConfig | None:
    """The active config whose verify token Meta echoed when subscribing the webhook."""
    if mode != "subscribe" or not token:
        return None
    match = None
    for config in MetaAppConfig.objects.filter(is_active=True).exclude(verify_token="").order_by("pk"):
        # Compare against every config, in constant time, so timing reveals nothing.
        if hmac.compare_digest(config.verify_token.encode(), token.encode()) and match is None:
            match = config
    return match


# --------------------------------------------------------------------------------------
# Accepting a verified, parsed batch
# --------------------------------------------------------------------------------------


def split_batch(
    batch: WebhookBatch, configs: Sequence[MetaAppConfig]
) -> Iterator[tuple[MetaAppConfig, WebhookBatch]]:
    """One sub-batch of messages and statuses per business number, in the configs' order."""
    by_number = {config.phone_number_id: config for config in configs}
    for config in configs:
        messages = tuple(m for m in batch.messages if m.phone_number_id == config.phone_number_id)
        statuses = tuple(s for s in batch.statuses if s.phone_number_id == config.phone_number_id)
        preferences = tuple(p for p in batch.preferences if p.phone_number_id == config.phone_number_id)
        if messages or statuses or preferences:
            yield config, WebhookBatch(messages=messages, statuses=statuses, preferences=preferences)
    strays = [m.wamid for m in batch.messages if m.phone_number_id not in by_number]
    strays += [s.wamid for s in batch.statuses if s.phone_number_id not in by_number]
    strays += [p.wa_id for p in batch.preferences if p.phone_number_id not in by_number]
    if strays:  # cannot happen while referenced_phone_number_ids mirrors the parser
        logger.error("webhook records for an unverified business number dropped: %s", strays)


def summarize(batch: WebhookBatch) -> str:
    """A one-line description for the event log, e.g. ``2 messages (text, image); 1 status (read)``."""
    parts = []
    if batch.messages:
        kinds = Counter(m.type.value for m in batch.messages)
        parts.append(f"{_plural(len(batch.messages), 'message')} ({_counts(kinds)})")
    if batch.statuses:
        kinds = Counter(s.status.value for s in batch.statuses)
        parts.append(f"{_plural(len(batch.statuses), 'status', 'statuses')} ({_counts(kinds)})")
    if batch.preferences:
        kinds = Counter(p.value.value for p in batch.preferences)
        parts.append(f"{_plural(len(batch.preferences), 'marketing preference')} ({_counts(kinds)})")
    if batch.errors:
        codes = Counter(str(e.code) for e in batch.errors)
        parts.append(f"{_plural(len(batch.errors), 'error')} ({_counts(codes)})")
    if batch.other_changes:
        fields = Counter(c.field for c in batch.other_changes)
        parts.append(f"{_plural(len(batch.other_changes), 'other change')} ({_counts(fields)})")
    if batch.problems:
        parts.append(_plural(len(batch.problems), "problem"))
    text = "; ".join(parts) or "empty"
    return text if len(text) <= SUMMARY_MAX_LENGTH else text[: SUMMARY_MAX_LENGTH - 3] + "..."


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counter.most_common())


@dataclass(frozen=True)
class Accepted:
    """What a stored webhook POST was: its summary, and its audit row if one was written."""

    summary: str
    event_id: int | None


def needs_audit(batch: WebhookBatch) -> bool:
    """Keep the whole payload when part of it was not understood, Meta reported an error,
    or it holds a change the project does not act on; otherwise by WEBHOOK_EVENT_SAMPLE_RATE."""
    if batch.problems or batch.errors or batch.other_changes:
        return True
    rate = settings.WEBHOOK_EVENT_SAMPLE_RATE
    return rate > 0 and random.random() < rate


def accept_webhook(verified: VerifiedBody, batch: WebhookBatch) -> Accepted:
    """Store the POST's contents (and its audit row, if kept); enqueueing is on commit.

    Messages and marketing preferences (and an audit row) are written in ONE transaction: either all of them are
    stored or none is (the caller answers 5xx, so Meta retries). A POST of statuses only
    runs without one: each of its statements is idempotent and complete on its own, and a
    redelivery after a failure repeats them harmlessly; that saves BEGIN and COMMIT on the
    most frequent webhook (three per reply). So does a POST the sink stores in one statement
    (``InboundSink.one_statement``: one text message on PostgreSQL). Errors, non-message changes and problems are
    logged here.
    """
    sink = ports.inbound_sink()
    summary = summarize(batch)
    audit = needs_audit(batch)
    parts = list(split_batch(batch, verified.configs))
    event_id = None
    atomic = audit or any(part.messages or part.preferences for _, part in parts)
    if atomic and not audit and len(parts) == 1:
        # One statement (the usual one-message POST on PostgreSQL) is atomic without BEGIN/COMMIT.
        atomic = not sink.one_statement(parts[0][1])
    with transaction.atomic() if atomic else nullcontext():
        if audit:
            event_id = WebhookEvent.objects.create(
                app_config=verified.configs[0],
                payload=verified.document,
                message_count=len(batch.messages),
                status_count=len(batch.statuses),
                summary=summary,
            ).pk
        for config, part in parts:
            sink.accept(part, config)
    _log_extras(event_id, batch)
    return Accepted(summary=summary, event_id=event_id)


def _log_extras(event_id: int | None, batch: WebhookBatch) -> None:
    for error in batch.errors:
        logger.warning(
            "webhook event=%s Meta reported error code=%s title=%r details=%r",
            event_id, error.code, error.title, error.details,
        )
    for other in batch.other_changes:
        logger.info(
            "webhook event=%s change field=%s waba=%s logged, not acted on", event_id, other.field, other.waba_id
        )
    for problem in batch.problems:
        logger.warning("webhook event=%s item not understood: %s", event_id, problem)


# --------------------------------------------------------------------------------------
# Retention and configuration
# --------------------------------------------------------------------------------------


def purge_webhook_events(now: datetime | None = None) -> int:
    """Delete audit rows older than WEBHOOK_EVENT_RETENTION_DAYS; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_EVENT_RETENTION_DAYS)
    deleted, _ = WebhookEvent.objects.filter(received_at__lt=cutoff).delete()
    if deleted:
        logger.info("purged %d webhook events received before %s", deleted, cutoff.isoformat())
    return deleted


ENV_CONFIG_NAME = "Default (from environment)"


def default_config_fields() -> dict[str, str]:
    """The MetaAppConfig fields the ``META_*`` settings define (empty ones left out)."""
    values = {
        "phone_number_id": settings.META_PHONE_NUMBER_ID,
        "display_phone_number": settings.META_DISPLAY_PHONE_NUMBER,
        "access_token": settings.META_ACCESS_TOKEN,
        "app_secret": settings.META_APP_SECRET,
        "verify_token": settings.META_VERIFY_TOKEN,
        "api_version": settings.META_API_VERSION,
        "graph_api_url": settings.META_GRAPH_API_URL,
    }
    return {key: value for key, value in values.items() if value}


def ensure_default_app_config() -> MetaAppConfig | None:
    """Create or update the config named by META_PHONE_NUMBER_ID; idempotent.

    The environment owns the fields it sets (a rotated secret takes effect on the next
    deploy); the operator owns the name and whether it is active. Returns None when
    META_PHONE_NUMBER_ID is not set.
    """
    fields = default_config_fields()
    number_id = fields.pop("phone_number_id", "")
    if not number_id:
        return None
    if not fields.get("app_secret"):
        logger.error(
            "configuration error: META_PHONE_NUMBER_ID=%s is set without META_APP_SECRET; "
            "webhooks for it will be refused", number_id,
        )
    with transaction.atomic():
        config, created = MetaAppConfig.objects.select_for_update().get_or_create(
            phone_number_id=number_id, defaults={"name": ENV_CONFIG_NAME, **fields}
        )
        changed = [key for key, value in fields.items() if getattr(config, key) != value]
        if changed and not created:
            for key in changed:
                setattr(config, key, fields[key])
            config.save(update_fields=[*changed, "updated_at"])
    if created or changed:
        logger.info(
            "Meta app config for phone_number_id=%s %s from the environment",
            number_id, "created" if created else "updated (" + ", ".join(changed) + ")",
        )
    return config


def ensure_default_app_config_after_migrate(sender: Any = None, **kwargs: Any) -> None:
    """post_migrate hook: a fresh database gets the environment's business number."""
    from django.db import connections

    using = kwargs.get("using", "default")
    if MetaAppConfig._meta.db_table not in connections[using].introspection.table_names():
        return
    ensure_default_app_config()
