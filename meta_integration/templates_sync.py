"""Syncing a business account's message templates from the Graph API.

``GET /{version}/{waba-id}/message_templates`` lists every template of the account, paged
(``limit``, ``paging.cursors.after``, ``paging.next``). All pages are read first; only then
is anything written, in one transaction, so a Meta error half-way (a revoked token, a
timeout) changes nothing. A template no longer listed is marked DELETED, not removed: sent
messages and campaigns may still name it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from meta_integration import client
from meta_integration.models import MessageTemplate, MetaAppConfig, TemplateStatus

__all__ = ["SyncResult", "TemplateSyncError", "fetch_templates", "sync_all", "sync_templates"]

logger = logging.getLogger(__name__)

PAGE_LIMIT = 100  # Meta's default page is 25; fewer round trips
MAX_PAGES = 500  # a paging loop (a cursor that never ends) must stop somewhere
_FIELDS = "id,name,language,category,status,components,parameter_format,rejected_reason"


class TemplateSyncError(Exception):
    """The sync could not run or Meta refused it; nothing was changed. ``str()`` is for operators."""


@dataclass(frozen=True)
class SyncResult:
    created: int
    updated: int
    deleted: int
    total: int  # templates Meta listed

    def __str__(self) -> str:
        return (f"{self.total} template(s) listed by Meta: {self.created} new, {self.updated} updated, "
                f"{self.deleted} marked removed upstream")


def fetch_templates(app_config: MetaAppConfig, *, limit: int = PAGE_LIMIT) -> list[dict[str, Any]]:
    """Every template the business account lists, following ``paging.next`` page by page."""
    if not app_config.waba_id:
        raise TemplateSyncError(f"{app_config}: no WhatsApp Business Account id set; add it to sync templates")
    http = client.http_client(settings.META_HTTP_TIMEOUT, settings.META_HTTP_MAX_CONNECTIONS)
    url: str | None = f"{app_config.graph_api_url.rstrip('/')}/{app_config.api_version}/{app_config.waba_id}" \
        "/message_templates"
    params: dict[str, Any] | None = {"limit": limit, "fields": _FIELDS}
    items: list[dict[str, Any]] = []
    seen_cursors: set[str] = set()
    for _page in range(MAX_PAGES):
        try:
            page = client.get_json(url, app_config.access_token, http, params)
        except client.GraphError as exc:
            raise TemplateSyncError(f"{app_config}: Meta refused the template list: {exc}") from exc
        data = page.get("data")
        if not isinstance(data, list):
            raise TemplateSyncError(f"{app_config}: unexpected answer from Meta (no data list)")
        items += [item for item in data if isinstance(item, Mapping)]
        paging = page.get("paging") if isinstance(page.get("paging"), Mapping) else {}
        after = ((paging.get("cursors") or {}).get("after")) if isinstance(paging.get("cursors"), Mapping) else None
        next_url = paging.get("next")
        if not next_url or not isinstance(next_url, str) or (after and after in seen_cursors):
            return items
        if after:
            seen_cursors.add(after)
        url, params = next_url, None  # the next link carries limit, fields and the cursor
    raise TemplateSyncError(f"{app_config}: more than {MAX_PAGES} pages of templates; stopped")


def _fields(item: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    name, language = item.get("name"), item.get("language")
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        return None
    components = item.get("components")
    return {
        "template_id": str(item.get("id") or "")[:64],
        "category": str(item.get("category") or "")[:32],
        "status": str(item.get("status") or TemplateStatus.PENDING).upper()[:16],
        "parameter_format": str(item.get("parameter_format") or "POSITIONAL").upper()[:16],
        "components": list(components) if isinstance(components, list) else [],
        "rejected_reason": "" if item.get("rejected_reason") in (None, "NONE") else str(item["rejected_reason"])[:255],
        "synced_at": now,
    }


def sync_templates(app_config: MetaAppConfig, *, now: datetime | None = None, limit: int = PAGE_LIMIT) -> SyncResult:
    """Upsert the templates Meta lists for this number's business account and mark the rest
    DELETED. Raises ``TemplateSyncError`` (and changes nothing) when Meta cannot be read."""
    now = now or timezone.now()
    items = fetch_templates(app_config, limit=limit)
    created = updated = 0
    listed: set[tuple[str, str]] = set()
    with transaction.atomic():
        existing = {(t.name, t.language): t for t in MessageTemplate.objects.filter(app_config=app_config)}
        for item in items:
            fields = _fields(item, now)
            if fields is None:
                logger.warning("template sync %s: skipped an item without name/language: %.200r", app_config, item)
                continue
            key = (item["name"], item["language"])
            listed.add(key)
            template = existing.get(key)
            if template is None:  # remembered: a template listed twice (pages shifting) is one row
                existing[key] = MessageTemplate.objects.create(app_config=app_config, name=key[0], language=key[1],
                                                               **fields)
                created += 1
                continue
            changed = any(getattr(template, k) != v for k, v in fields.items() if k != "synced_at")
            for attr, value in fields.items():
                setattr(template, attr, value)
            template.save(update_fields=list(fields))
            updated += int(changed)
        gone = [t.pk for key, t in existing.items() if key not in listed and t.status != TemplateStatus.DELETED]
        deleted = MessageTemplate.objects.filter(pk__in=gone).update(status=TemplateStatus.DELETED, synced_at=now)
    result = SyncResult(created, updated, deleted, len(listed))
    logger.info("template sync %s: %s", app_config, result)
    return result


def sync_all() -> dict[str, str]:
    """Beat: sync every active number that has a business account id; one failing number
    does not stop the others (its error is logged and returned)."""
    results: dict[str, str] = {}
    for config in MetaAppConfig.objects.filter(is_active=True).exclude(waba_id=""):
        try:
            results[config.phone_number_id] = str(sync_templates(config))
        except TemplateSyncError as exc:
            logger.error("template sync failed: %s", exc)
            results[config.phone_number_id] = f"failed: {exc}"
    return results
