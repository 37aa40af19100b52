"""WhatsApp media at the Meta boundary: what is allowed, fetching what users send, uploading
what operators attach.

Inbound: a media message carries only an id. ``GET /{media-id}`` gives a URL (and the
MIME type, size and SHA-256); the bytes behind it need the token and the URL expires within
minutes, so a 401/403/404 on it is answered by asking the id for a fresh URL (bounded).

Limits are Meta's (Cloud API "supported media types"); ``MEDIA_MAX_BYTES`` caps them all
(default 100 MB, Meta's document limit). The declared type must be one Meta allows for the
message type, and for the types with a cheap signature (JPEG, PNG, WebP, PDF, OGG, MP4/3GP,
MP3, AMR, Office files) the bytes must carry it: a ".jpg" that is really an HTML page is
refused.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from meta_integration import client
from meta_integration.models import MetaAppConfig

__all__ = [
    "MEDIA_KINDS",
    "MediaError",
    "MediaInfo",
    "MediaRefused",
    "allowed_kind",
    "base_type",
    "check_bytes",
    "fetch_media",
    "max_bytes",
    "media_info",
    "upload_media",
]

logger = logging.getLogger(__name__)

_KB, _MB = 1024, 1024 * 1024
_OFFICE_ZIP = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
_OFFICE_OLE = ("application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint")

# Meta's supported types and sizes per message type (what WhatsApp itself lets users send).
MEDIA_KINDS: dict[str, tuple[frozenset[str], int]] = {
    "image": (frozenset({"image/jpeg", "image/png"}), 5 * _MB),
    "sticker": (frozenset({"image/webp"}), 500 * _KB),  # animated; static ones are at most 100 KB
    "audio": (frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * _MB),
    "video": (frozenset({"video/mp4", "video/3gpp"}), 16 * _MB),
    "document": (frozenset({"text/plain", "application/pdf", *_OFFICE_ZIP, *_OFFICE_OLE}), 100 * _MB),
}

# Cheap signatures: the first bytes of each type that has one.
_SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    "image/jpeg": lambda b: b[:3] == b"\xff\xd8\xff",
    "image/png": lambda b: b[:8] == b"\x89PNG\r\n\x1a\n",
    "image/webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    "application/pdf": lambda b: b[:5] == b"%PDF-",
    "audio/ogg": lambda b: b[:4] == b"OggS",
    "audio/amr": lambda b: b[:5] == b"#!AMR",
    "audio/mpeg": lambda b: b[:3] == b"ID3" or (len(b) > 1 and b[0] == 0xFF and b[1] & 0xE0 == 0xE0),
    "audio/aac": lambda b: len(b) > 1 and b[0] == 0xFF and b[1] & 0xF6 == 0xF0,
    "audio/mp4": lambda b: b[4:8] == b"ftyp",
    "video/mp4": lambda b: b[4:8] == b"ftyp",
    "video/3gpp": lambda b: b[4:8] == b"ftyp",
    "text/plain": lambda b: b"\x00" not in b[:4096],
    **{mime: (lambda b: b[:4] == b"PK\x03\x04") for mime in _OFFICE_ZIP},
    **{mime: (lambda b: b[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") for mime in _OFFICE_OLE},
}


class MediaError(Exception):
    """Fetching or uploading failed in a way that may pass (Meta or the network); retry later."""


class MediaRefused(ValueError):
    """The file breaks a rule (too large, a type not allowed, bytes that are not that type,
    a checksum that does not match); retrying cannot help. ``str()`` is for operators."""


@dataclass(frozen=True)
class MediaInfo:
    media_id: str
    url: str
    mime_type: str
    file_size: int | None
    sha256: str


def base_type(mime_type: str | None) -> str:
    """``"audio/ogg; codecs=opus"`` -> ``"audio/ogg"``."""
    return (mime_type or "").split(";", 1)[0].strip().lower()


def max_bytes(kind: str) -> int:
    """The largest file accepted for a message type: Meta's limit, capped by MEDIA_MAX_BYTES."""
    return min(MEDIA_KINDS[kind][1], settings.MEDIA_MAX_BYTES)


def allowed_kind(kind: str, mime_type: str | None) -> None:
    """Refuse a type Meta does not allow for ``kind`` (image, audio, video, document, sticker)."""
    if kind not in MEDIA_KINDS:
        raise MediaRefused(f"{kind!r} is not a media message type")
    mime = base_type(mime_type)
    if mime not in MEDIA_KINDS[kind][0]:
        allowed = ", ".join(sorted(MEDIA_KINDS[kind][0]))
        raise MediaRefused(f"type {mime or 'unknown'} is not allowed for {kind} (allowed: {allowed})")


def check_bytes(kind: str, mime_type: str, data: bytes, sha256: str | None = None) -> str:
    """Size, type signature and (if given, hex or base64) SHA-256 of ``data``; returns its hex
    SHA-256. Raises ``MediaRefused`` naming the rule broken."""
    allowed_kind(kind, mime_type)
    limit = max_bytes(kind)
    if len(data) > limit:
        raise MediaRefused(f"{kind} is {len(data)} bytes, more than the {limit} allowed")
    if not data:
        raise MediaRefused(f"{kind} is empty")
    mime = base_type(mime_type)
    signature = _SIGNATURES.get(mime)
    if signature is not None and not signature(data[:4096]):
        raise MediaRefused(f"the bytes are not {mime} (declared type and content differ)")
    digest = hashlib.sha256(data)
    if sha256 and sha256 not in (digest.hexdigest(), _b64(digest.digest())):
        raise MediaRefused("SHA-256 of the bytes does not match Meta's")
    return digest.hexdigest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _http() -> Any:
    return client.http_client(settings.META_HTTP_TIMEOUT, settings.META_HTTP_MAX_CONNECTIONS)


def _base(app_config: MetaAppConfig) -> str:
    return f"{app_config.graph_api_url.rstrip('/')}/{app_config.api_version}"


def media_info(app_config: MetaAppConfig, media_id: str) -> MediaInfo:
    """``GET /{media-id}``: a fresh (short-lived) URL and what Meta knows of the file."""
    if not str(media_id).isdigit():
        raise MediaRefused(f"media id {media_id!r} is not Meta's numeric id")
    try:
        data = client.get_json(f"{_base(app_config)}/{media_id}", app_config.access_token, _http())
    except client.GraphAPIError as exc:
        if exc.http_status in (400, 404) and exc.code == 100:
            raise MediaRefused(f"Meta has no media {media_id} (expired or deleted): {exc}") from exc
        raise MediaError(f"media {media_id}: {exc}") from exc
    except client.GraphError as exc:
        raise MediaError(f"media {media_id}: {exc}") from exc
    url = data.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise MediaError(f"media {media_id}: Meta's answer has no URL")
    size = data.get("file_size")
    return MediaInfo(
        str(media_id), url, str(data.get("mime_type") or ""),
        int(size) if isinstance(size, int) or (isinstance(size, str) and size.isdigit()) else None,
        str(data.get("sha256") or ""),
    )


def fetch_media(app_config: MetaAppConfig, media_id: str, kind: str) -> tuple[MediaInfo, bytes]:
    """The media's info and bytes, checked (type allowed, size, signature, checksum).

    The URL expires in minutes: a 401/403/404 on it asks the media id for a fresh URL, at most
    ``MEDIA_URL_RETRIES`` times. Raises ``MediaRefused`` (give up) or ``MediaError`` (retry later).
    """
    attempts = 1 + settings.MEDIA_URL_RETRIES
    for attempt in range(attempts):
        info = media_info(app_config, media_id)
        allowed_kind(kind, info.mime_type)
        limit = max_bytes(kind)
        if info.file_size is not None and info.file_size > limit:
            raise MediaRefused(f"{kind} is {info.file_size} bytes, more than the {limit} allowed")
        try:
            data = client.download(info.url, app_config.access_token, _http(), limit)
        except ValueError as exc:  # past the limit while reading
            raise MediaRefused(f"{kind} is {exc}") from exc
        except client.GraphAPIError as exc:
            if exc.http_status in (401, 403, 404) and attempt + 1 < attempts:
                logger.info("media %s: URL refused (HTTP %s), fetching a fresh one", media_id, exc.http_status)
                continue
            raise MediaError(f"media {media_id}: download refused: HTTP {exc.http_status}") from exc
        except client.GraphError as exc:
            raise MediaError(f"media {media_id}: {exc}") from exc
        check_bytes(kind, info.mime_type, data, info.sha256 or None)
        return info, data
    raise AssertionError("unreachable")


def upload_media(app_config: MetaAppConfig, filename: str, content_type: str, data: bytes) -> str:
    """Upload a file for sending (the inbox's "attach a file"); returns Meta's media id.

    Checked first as Meta would (type allowed for some media kind, size, signature), so an
    operator gets the reason at once: raises ``MediaRefused``, or ``MediaError`` when Meta
    could not be reached or refused the upload.
    """
    mime = base_type(content_type)
    kind = "sticker" if mime == "image/webp" else next(
        (k for k, (types, _limit) in MEDIA_KINDS.items() if mime in types), None)
    if kind is None:
        raise MediaRefused(f"type {mime or 'unknown'} cannot be sent on WhatsApp")
    check_bytes(kind, mime, data)
    url = f"{_base(app_config)}/{app_config.phone_number_id}/media"
    try:
        answer = client.post_multipart(
            url, app_config.access_token, _http(),
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": (filename or "file", data, mime)},
        )
    except client.GraphError as exc:
        raise MediaError(f"upload of {filename!r} refused: {exc}") from exc
    media_id = answer.get("id")
    if not isinstance(media_id, str) or not media_id:
        raise MediaError(f"upload of {filename!r}: Meta's answer has no id")
    return media_id
