"""Business numbers by id, cached per process for a couple of seconds.

Every reply needs its number's Graph endpoint and send rate; reading the row for each one
was a statement per send for data that changes a few times a year. A process keeps each
row for ``META_CONFIG_CACHE_SECONDS`` (a change made in admin reaches every worker within
that bound) and drops it at once when the row is saved or deleted in this process.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from meta_integration.models import MetaAppConfig

__all__ = ["active_config", "clear"]

_lock = threading.Lock()
_cache: dict[int, tuple[float, MetaAppConfig | None]] = {}


def active_config(pk: int | None) -> MetaAppConfig | None:
    """The active business number ``pk``, or None if it does not exist or is inactive."""
    if pk is None:
        return None
    now = time.monotonic()
    hit = _cache.get(pk)
    if hit is not None and hit[0] > now:
        return hit[1]
    config = MetaAppConfig.objects.filter(pk=pk, is_active=True).first()
    with _lock:
        _cache[pk] = (now + settings.META_CONFIG_CACHE_SECONDS, config)
    return config


def clear(**_: object) -> None:
    """Forget every cached row (on any save or delete of a config, and in tests)."""
    with _lock:
        _cache.clear()


post_save.connect(clear, sender=MetaAppConfig, dispatch_uid="meta_integration.config_cache.saved")
post_delete.connect(clear, sender=MetaAppConfig, dispatch_uid="meta_integration.config_cache.deleted")
