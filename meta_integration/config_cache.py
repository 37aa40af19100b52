"""Business numbers, cached per process for a couple of seconds: by phone_number_id for the
webhook (its app secret), by id for the send (its Graph endpoint and rate).

Reading the row cost a statement per webhook and per send for data that changes a few times a
year. A process keeps each active row for ``META_CONFIG_CACHE_SECONDS``: a change saved in
admin clears this process's cache at once (signals below) and reaches every other process
(the other gunicorn workers, the workers) within that bound - a rotated secret, a deactivated
number. Unknown and inactive numbers are never cached, so a number added in admin is answered
at once everywhere. ``post_migrate`` also clears it: it follows a database flush (tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_migrate, post_save

from meta_integration.models import MetaAppConfig

__all__ = ["active_config", "active_configs", "clear"]

_lock = threading.Lock()
_by_number: dict[str, tuple[float, MetaAppConfig]] = {}
_by_pk: dict[int, tuple[float, MetaAppConfig]] = {}
_generation = 0


def clear(**_: Any) -> None:
    """Forget every cached config (after a change to any of them)."""
    global _generation
    with _lock:
        _by_number.clear()
        _by_pk.clear()
        _generation += 1


def _remember(configs: Sequence[MetaAppConfig], generation: int, now: float) -> None:
    with _lock:
        if generation != _generation:  # a change was saved while we read: do not keep the old row
            return
        until = now + settings.META_CONFIG_CACHE_SECONDS
        for config in configs:
            _by_number[config.phone_number_id] = (until, config)
            _by_pk[config.pk] = (until, config)


def active_configs(number_ids: Sequence[str]) -> dict[str, MetaAppConfig]:
    """phone_number_id -> its active config, for the ids that have one."""
    now = time.monotonic()
    found: dict[str, MetaAppConfig] = {}
    missing = []
    for number_id in number_ids:
        cached = _by_number.get(number_id)
        if cached is not None and cached[0] > now:
            found[number_id] = cached[1]
        else:
            missing.append(number_id)
    if missing:
        generation = _generation
        fetched = list(MetaAppConfig.objects.filter(phone_number_id__in=missing, is_active=True))
        _remember(fetched, generation, now)
        found.update((config.phone_number_id, config) for config in fetched)
    return found


def active_config(pk: int | None) -> MetaAppConfig | None:
    """The active business number ``pk``, or None if it does not exist or is inactive."""
    if pk is None:
        return None
    now = time.monotonic()
    cached = _by_pk.get(pk)
    if cached is not None and cached[0] > now:
        return cached[1]
    generation = _generation
    config = MetaAppConfig.objects.filter(pk=pk, is_active=True).first()
    if config is not None:
        _remember([config], generation, now)
    return config


post_save.connect(clear, sender=MetaAppConfig, dispatch_uid="meta_integration.config_cache.saved")
post_delete.connect(clear, sender=MetaAppConfig, dispatch_uid="meta_integration.config_cache.deleted")
post_migrate.connect(clear, dispatch_uid="meta_integration.config_cache.migrated")
