"""Helpers to read what the diagnostic probe tasks recorded in Redis."""

from __future__ import annotations

import json
import time

import redis as redis_lib


def wait_for_records(client: redis_lib.Redis, key: str, count: int, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.llen(key) >= count:
            break
        time.sleep(0.05)
    records = [json.loads(raw) for raw in client.lrange(key, 0, -1)]
    if len(records) < count:
        raise AssertionError(f"expected {count} probe records in {key}, got {len(records)} after {timeout}s")
    return records
