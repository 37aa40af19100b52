"""Sync the Beat schedule defined in ``topology.BEAT_SCHEDULE`` into django-celery-beat.

The code owns each entry's task, interval, queue, priority and arguments; the
operator owns whether it is enabled. A re-sync updates the former and never
touches the latter, and removes entries that the code no longer defines.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from whatsappcrm_backend import topology

logger = logging.getLogger(__name__)

MANAGED_MARK = "[managed by whatsappcrm_backend.topology]"


def sync_beat_schedule(schedule: dict[str, topology.BeatEntry] | None = None) -> dict[str, int]:
    """Create or update one PeriodicTask per entry; returns counts for logging."""
    from django.db import transaction
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from whatsappcrm_backend.celery import priority_number

    schedule = topology.BEAT_SCHEDULE if schedule is None else schedule
    counts = {"created": 0, "updated": 0, "removed": 0}
    with transaction.atomic():
        for name, entry in schedule.items():
            route = topology.route_for(entry.task)
            seconds = int(entry.every.total_seconds())
            interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            wanted = {
                "task": entry.task,
                "interval": interval,
                "crontab": None,
                "queue": route.queue,
                "exchange": "celery",
                "routing_key": route.queue,
                "priority": priority_number(route.priority),
                "args": json.dumps(list(entry.args)),
                "kwargs": json.dumps(entry.kwargs),
                "description": f"{entry.description} {MANAGED_MARK}".strip(),
            }
            task, created = PeriodicTask.objects.get_or_create(name=name, defaults=wanted)
            if created:
                counts["created"] += 1
                continue
            changed = [key for key, value in wanted.items() if getattr(task, key) != value]
            if changed:
                for key in changed:
                    setattr(task, key, wanted[key])
                task.save(update_fields=changed)  # never "enabled": that is the operator's
                counts["updated"] += 1
        stale = PeriodicTask.objects.filter(description__endswith=MANAGED_MARK).exclude(name__in=list(schedule))
        counts["removed"] = stale.count()
        stale.delete()
    return counts


def sync_after_migrate(sender: Any = None, **kwargs: Any) -> None:
    """post_migrate hook: keep the database schedule equal to the code after every migrate."""
    from django.db import connections

    using = kwargs.get("using", "default")
    if "django_celery_beat_periodictask" not in connections[using].introspection.table_names():
        return
    counts = sync_beat_schedule()
    if any(counts.values()):
        logger.info("beat schedule synced: %s", counts)


def connect_beat_sync() -> None:
    """Also sync when Beat starts, so a deploy that skipped migrate still runs the code's schedule."""
    from celery.signals import beat_init

    def _sync_on_beat_start(sender: Any = None, **kwargs: Any) -> None:
        counts = sync_beat_schedule()
        logger.info("beat schedule synced at start: %s", counts)

    beat_init.connect(_sync_on_beat_start, weak=False, dispatch_uid="beat-sync-on-start")
