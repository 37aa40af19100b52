"""What the bot did on each turn of a conversation, kept briefly for the simulator (development).

The engine returns, per turn, the steps it ran and the transitions it took (``EngineResult.path``)
and its events. With ``settings.FLOW_TRACE`` on (the default with DEBUG, off in production)
processing appends one entry per turn to a capped Redis list per conversation (contact and
business number): one pipelined round trip, no database statement, and nothing at all when
off. The simulator shows the list as the bot's log; a turn that ended its flow is there too,
although its session row is gone.

A trace is a debugging aid: failing to write it never fails a turn.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis as redis_lib
from django.conf import settings

from flows.engine_types import EngineResult

__all__ = ["MAX_TURNS", "clear_trace", "read_trace", "record_turn", "trace_key"]

logger = logging.getLogger(__name__)

MAX_TURNS = 50  # per conversation, newest kept
TTL_SECONDS = 24 * 3600

_redis: redis_lib.Redis | None = None


def _client() -> redis_lib.Redis:
    global _redis
    if _redis is None:
        _redis = redis_lib.Redis.from_url(settings.REDIS_URL, socket_timeout=2.0)
    return _redis


def trace_key(wa_id: str, app_config_id: int | None) -> str:
    """Keyed by the WhatsApp number, not the contact's pk: a row id can be reused (SQLite after
    a delete, a test database), a number is the conversation's identity."""
    return f"flows:trace:{wa_id}:{app_config_id or 0}"


def record_turn(wa_id: str, app_config_id: int | None, message_id: int, result: EngineResult) -> None:
    """Append this turn (what arrived, steps, transitions, events, where it now waits)."""
    if not settings.FLOW_TRACE:
        return
    session = result.session
    entry = {
        "at": time.time(),
        "message_id": message_id,
        "path": list(result.path),
        "events": list(result.events),
        "replies": len(result.replies),
        "handover": result.handover,
        "waiting_at": f"{session.flow}.{session.step}" if session is not None else None,
    }
    key = trace_key(wa_id, app_config_id)
    try:
        pipe = _client().pipeline(transaction=False)
        pipe.rpush(key, json.dumps(entry, default=str))
        pipe.ltrim(key, -MAX_TURNS, -1)
        pipe.expire(key, TTL_SECONDS)
        pipe.execute()
    except redis_lib.RedisError as exc:
        logger.info("flows: trace of message %s not recorded: %s", message_id, exc)


def read_trace(wa_id: str, app_config_id: int | None, limit: int = MAX_TURNS) -> list[dict[str, Any]]:
    """The conversation's recorded turns, oldest first (empty when tracing is off or Redis is down)."""
    try:
        raw = _client().lrange(trace_key(wa_id, app_config_id), -limit, -1)
    except redis_lib.RedisError:
        return []
    turns = []
    for item in raw:
        try:
            turns.append(json.loads(item))
        except ValueError:
            continue
    return turns


def clear_trace(wa_id: str, app_config_id: int | None) -> None:
    try:
        _client().delete(trace_key(wa_id, app_config_id))
    except redis_lib.RedisError:
        pass
