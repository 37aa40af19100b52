"""Inbound media: each image, audio, video, document or sticker a user sends is downloaded from
Meta once and kept through Django's storage API, as a ``MessageMedia`` row next to its message.

The webhook enqueues ``conversations.download_media`` on commit for media messages only (the
text path is untouched); the task runs on the I/O queue below the replies. A file that breaks
a rule (too large, a type not allowed, bytes that are not what they claim) is marked failed
with the reason and nothing is stored; a Meta or network failure is retried by the task.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from conversations.models import MEDIA_MESSAGE_TYPES, Direction, MediaStatus, Message, MessageMedia
from meta_integration import config_cache
from meta_integration.media import MediaError, MediaRefused, allowed_kind, fetch_media
from whatsappcrm_backend.celery import enqueue

__all__ = ["DOWNLOAD_TASK", "MediaError", "download", "enqueue_downloads", "enqueue_missing", "mark_failed"]

logger = logging.getLogger(__name__)

DOWNLOAD_TASK = "conversations.download_media"
_EXTENSIONS = {"image/jpeg": ".jpg", "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "text/plain": ".txt"}


def enqueue_downloads(messages: Sequence[Any]) -> None:
    """After the webhook's commit: one download task per new media message (never raises:
    the webhook already answered for them)."""
    for message in messages:
        try:
            enqueue(DOWNLOAD_TASK, message.id)
        except Exception:  # a broker outage must not fail the webhook
            logger.exception("could not enqueue %s for message id=%s", DOWNLOAD_TASK, message.id)
            return


def enqueue_missing(older_than: timedelta = timedelta(minutes=2), *, max_age: timedelta = timedelta(days=2),
                    limit: int = 500) -> int:
    """The sweeper's share: media messages whose download never started (the broker was down
    at the webhook's commit) or stalled (a run killed mid-download), enqueued again. Meta keeps
    a user's media for some days only: older ones are left alone."""
    now = timezone.now()
    recent = Message.objects.filter(direction=Direction.INBOUND, message_type__in=MEDIA_MESSAGE_TYPES,
                                    created_at__lt=now - older_than, created_at__gt=now - max_age)
    stalled = Q(media__isnull=True) | Q(media__status=MediaStatus.PENDING, media__updated_at__lt=now - timedelta(
        minutes=15))
    ids = list(recent.filter(stalled).order_by("pk").values_list("pk", flat=True)[:limit])
    enqueue_downloads([_Stored(pk) for pk in ids])
    return len(ids)


@dataclass(frozen=True)
class _Stored:
    id: int


def _row(message: Message) -> MessageMedia:
    media = (message.content or {}).get("media") or {}
    row, _created = MessageMedia.objects.get_or_create(message=message, defaults={
        "media_id": str(media.get("id") or "")[:128],
        "mime_type": str(media.get("mime_type") or "")[:255],
        "filename": str(media.get("filename") or "")[:255],
    })
    return row


def mark_failed(row: MessageMedia, reason: str) -> MessageMedia:
    """Give up on a file: the reason is kept for operators, nothing is stored."""
    MessageMedia.objects.filter(pk=row.pk).exclude(status=MediaStatus.STORED).update(
        status=MediaStatus.FAILED, error=reason[:2000])
    row.refresh_from_db()
    logger.info("media of message %s not stored: %s", row.message_id, reason)
    return row


def download(message_id: int) -> MessageMedia | None:
    """Fetch, check and store the file of inbound message ``message_id``; idempotent (a stored
    file is not fetched again). Raises ``MediaError`` for a failure worth retrying."""
    message = Message.objects.filter(pk=message_id).first()
    if message is None or message.message_type not in MEDIA_MESSAGE_TYPES:
        return None
    row = _row(message)
    if row.status != MediaStatus.PENDING:
        return row
    MessageMedia.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    config = config_cache.active_config(message.app_config_id)
    if config is None:
        return mark_failed(row, "no business number to download it with")
    try:
        allowed_kind(message.message_type, row.mime_type)  # what the webhook declared
        if not row.media_id:
            raise MediaRefused("the message carries no media id")
        info, data = fetch_media(config, row.media_id, message.message_type)
    except MediaRefused as exc:
        return mark_failed(row, str(exc))
    mime = info.mime_type.split(";", 1)[0].strip().lower()
    extension = _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ""
    with transaction.atomic():
        locked = MessageMedia.objects.select_for_update().get(pk=row.pk)
        if locked.status != MediaStatus.PENDING:  # another run stored it meanwhile
            return locked
        locked.file.save(f"{row.media_id}{extension}", ContentFile(data), save=False)
        locked.mime_type, locked.size, locked.sha256 = info.mime_type[:255], len(data), _hex(data)
        locked.status, locked.error = MediaStatus.STORED, ""
        locked.save(update_fields=["file", "mime_type", "size", "sha256", "status", "error", "updated_at"])
    return locked


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
