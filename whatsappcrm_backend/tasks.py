"""Diagnostic probes: tiny tasks that report which worker ran them and when.

Health checks, the real-worker tests and the benchmarks use them to prove that a
queue is consumed by the worker the topology says, and how long a task waited.
"""

from __future__ import annotations

import json
import os
import socket
import time

from whatsappcrm_backend.celery import project_task


def _record(self, key: str, label: str, sleep_s: float, sent_at: float | None) -> None:
    import redis
    from django.conf import settings

    started = time.time()
    if sleep_s:
        time.sleep(sleep_s)  # cooperative under the gevent pool
    record = {
        "label": label,
        "task": self.name,
        "task_id": self.request.id,
        "hostname": self.request.hostname,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queue": (self.request.delivery_info or {}).get("routing_key"),
        "priority": (self.request.delivery_info or {}).get("priority"),
        "sent_at": sent_at,
        "started_at": started,
        "finished_at": time.time(),
    }
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.rpush(key, json.dumps(record))
        client.expire(key, 3600)
    finally:
        client.close()


@project_task("diagnostics.probe_io", bind=True)
def probe_io(self, key: str, label: str = "", sleep_s: float = 0.0, sent_at: float | None = None) -> None:
    """Record this run in the Redis list ``key`` (on the I/O queue)."""
    _record(self, key, label, sleep_s, sent_at)


@project_task("diagnostics.probe_cpu", bind=True)
def probe_cpu(self, key: str, label: str = "", sleep_s: float = 0.0, sent_at: float | None = None) -> None:
    """Record this run in the Redis list ``key`` (on the CPU queue)."""
    _record(self, key, label, sleep_s, sent_at)
