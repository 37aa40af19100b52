"""The fake Graph API's message templates and media (issue 13), kept apart from the send path.

* **Templates**: each WhatsApp Business Account (WABA) has a realistic list (approved ones
  with body variables, a text-header variable, an IMAGE header, a URL-button variable, a
  named-parameter one, a rejected, a paused and a disabled one, one in another language),
  served by ``GET /{version}/{waba-id}/message_templates`` in small pages (``limit``,
  ``after``, ``paging.next``) so a client's paging is exercised. Tests add and remove
  templates (``fake.templates.add/remove/set_status``). Template sends are checked as Meta
  does: unknown name or language, or not approved -> 132001, paused -> 132015, disabled ->
  132016, wrong number of parameters -> 132000, a media header of the wrong kind -> 132012.
* **Media**: ``GET /{version}/{media-id}`` answers Meta's JSON (url, mime_type, sha256,
  file_size) with a URL to the fake itself that needs the bearer token and expires
  (``url_ttl_seconds``; ``expire_next_urls(n)`` hands out already-expired URLs so a
  client's retry from the media id is testable); ``POST /{version}/{phone-number-id}/media``
  takes a multipart upload and answers ``{"id": ...}``.

No Django here, like the rest of the fake.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, urlencode

from meta_integration.templates import MEDIA_FORMATS, template_slots

__all__ = [
    "ATTACHMENTS_PATH",
    "MEDIA_LIMITS",
    "UPLOAD_MAX_BYTES",
    "FakeMedia",
    "FakeTemplates",
    "control",
    "default_templates",
    "handle",
    "summary",
]

_TEMPLATES_PATH = re.compile(r"^/(v\d+\.\d+)/(\d+)/message_templates/?$")
_MEDIA_PATH = re.compile(r"^/(v\d+\.\d+)/(\d+)/?$")
_UPLOAD_PATH = re.compile(r"^/(v\d+\.\d+)/(\d+)/media/?$")
ATTACHMENTS_PATH = "/whatsapp_business/attachments/"
UPLOAD_MAX_BYTES = 101 * 1024 * 1024  # what the fake reads of an upload body (Meta: 100 MB documents)

# Meta's upload limits by media kind: (allowed MIME types, max bytes).
MEDIA_LIMITS: dict[str, tuple[frozenset[str], int]] = {
    "image": (frozenset({"image/jpeg", "image/png"}), 5 * 1024 * 1024),
    "sticker": (frozenset({"image/webp"}), 500 * 1024),
    "audio": (frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * 1024 * 1024),
    "video": (frozenset({"video/mp4", "video/3gpp"}), 16 * 1024 * 1024),
    "document": (frozenset({
        "text/plain", "application/pdf", "application/vnd.ms-excel", "application/msword",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }), 100 * 1024 * 1024),
}

Reply = tuple[int, Any, list[tuple[bytes, bytes]]]  # (HTTP status, JSON payload or bytes, extra headers)


def _body(text: str, examples: list[str] | None = None) -> dict[str, Any]:
    component: dict[str, Any] = {"type": "BODY", "text": text}
    if examples:
        component["example"] = {"body_text": [examples]}
    return component


def default_templates() -> list[dict[str, Any]]:
    """A business account's templates as Meta lists them (without ids: assigned on load)."""
    approved, utility, marketing = "APPROVED", "UTILITY", "MARKETING"
    return [
        {"name": "hello_world", "language": "en_US", "status": approved, "category": utility,
         "parameter_format": "POSITIONAL", "components": [
             {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
             _body("Welcome and congratulations!! This message demonstrates your ability to send a "
                   "WhatsApp message notification from the Cloud API."),
             {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"}]},
        {"name": "bet_settled", "language": "en_US", "status": approved, "category": utility,
         "parameter_format": "POSITIONAL", "components": [
             _body("Hi {{1}}, your ticket has settled. You won {{2}}.", ["Tendai", "$12.50"]),
             {"type": "FOOTER", "text": "Reply MENU for the main menu"}]},
        {"name": "bet_settled", "language": "fr", "status": approved, "category": utility,
         "parameter_format": "POSITIONAL", "components": [
             _body("Bonjour {{1}}, votre ticket est réglé. Vous avez gagné {{2}}.", ["Amélie", "12,50 €"])]},
        {"name": "weekly_odds", "language": "en_US", "status": approved, "category": marketing,
         "parameter_format": "POSITIONAL", "components": [
             _body("This week's odds are out. Tap below to see the fixtures."),
             {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Show fixtures"},
                                             {"type": "QUICK_REPLY", "text": "Stop promotions"}]}]},
        {"name": "match_reminder", "language": "en_US", "status": approved, "category": utility,
         "parameter_format": "POSITIONAL", "components": [
             _body("A match you follow starts in an hour. Good luck!")]},
        {"name": "deposit_received", "language": "en_US", "status": approved, "category": utility,
         "parameter_format": "POSITIONAL", "components": [
             _body("We received your deposit of {{1}}. Your balance is now {{2}}.", ["$10.00", "$25.50"])]},
        {"name": "kickoff_alert", "language": "en_US", "status": approved, "category": utility,
         "parameter_format": "POSITIONAL", "components": [
             {"type": "HEADER", "format": "TEXT", "text": "{{1}} kicks off soon",
              "example": {"header_text": ["Arsenal v Chelsea"]}},
             _body("Kick-off at {{1}}. Live odds open {{2}} minutes before.", ["17:30", "15"])]},
        {"name": "promo_banner", "language": "en_US", "status": approved, "category": marketing,
         "parameter_format": "POSITIONAL", "components": [
             {"type": "HEADER", "format": "IMAGE",
              "example": {"header_handle": ["https://scontent.whatsapp.net/v/t61.29466-34/banner.jpg"]}},
             _body("Double odds on {{1}} this weekend!", ["the derby"])]},
        {"name": "ticket_link", "language": "en_US", "status": approved, "category": utility,
         "parameter_format": "POSITIONAL", "components": [
             _body("Your ticket {{1}} is placed.", ["T-1024"]),
             {"type": "BUTTONS", "buttons": [
                 {"type": "URL", "text": "View ticket", "url": "https://bets.example.com/tickets/{{1}}",
                  "example": ["https://bets.example.com/tickets/T-1024"]}]}]},
        {"name": "welcome_named", "language": "en_US", "status": approved, "category": marketing,
         "parameter_format": "NAMED", "components": [
             {"type": "BODY", "text": "Welcome back {{first_name}}! Your free bet of {{amount}} is waiting.",
              "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Tendai"},
                                                      {"param_name": "amount", "example": "$5"}]}}]},
        {"name": "free_bet_offer", "language": "en_US", "status": "REJECTED", "category": marketing,
         "parameter_format": "POSITIONAL", "rejected_reason": "PROMOTIONAL", "components": [
             _body("Claim {{1}} free bets now!!! Limited offer", ["10"])]},
        {"name": "old_promo", "language": "en_US", "status": "PAUSED", "category": marketing,
         "parameter_format": "POSITIONAL", "components": [_body("Our old promotion is back.")]},
        {"name": "legacy_menu", "language": "en_US", "status": "DISABLED", "category": marketing,
         "parameter_format": "POSITIONAL", "components": [_body("Reply 1 for fixtures, 2 for odds.")]},
    ]


def _new_id() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"idx:{index}".encode()).decode().rstrip("=")


def _index(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text[4:]) if text.startswith("idx:") and text[4:].isdigit() else None


def _expected_counts(components: list[Mapping[str, Any]]) -> dict[str, int]:
    """Parameters a send must give per component ("header", "body", "button.0")."""
    counts: dict[str, int] = {}
    for slot in template_slots(components):
        key = f"button.{slot.button_index}" if slot.button_index is not None else slot.component
        counts[key] = counts.get(key, 0) + 1
    return counts


class FakeTemplates:
    """Templates per business account; sends are checked against the sending number's account."""

    def __init__(self, default_waba_id: str, *, page_size: int = 4,
                 error_body: Callable[..., dict[str, Any]] | None = None) -> None:
        self.default_waba_id = default_waba_id
        self.page_size = page_size
        self._error_body = error_body
        self._lock = threading.Lock()
        self._by_waba: dict[str, list[dict[str, Any]]] = {}
        self._phone_waba: dict[str, str] = {}

    # -- Python API for tests
    def reset(self) -> None:
        with self._lock:
            self._by_waba.clear()
            self._phone_waba.clear()

    def link_number(self, phone_number_id: str, waba_id: str) -> None:
        """Template sends from ``phone_number_id`` use ``waba_id``'s templates (default: the fake's WABA)."""
        with self._lock:
            self._phone_waba[phone_number_id] = waba_id

    def list(self, waba_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._templates(waba_id))

    def add(self, template: Mapping[str, Any], waba_id: str | None = None) -> dict[str, Any]:
        """Add (or replace, by name and language) a template; returns it with its id."""
        item = copy.deepcopy(dict(template))
        for key in ("name", "language", "status", "components"):
            if key not in item:
                raise ValueError(f"template: {key} is required")
        item.setdefault("category", "UTILITY")
        item.setdefault("parameter_format", "POSITIONAL")
        item.setdefault("id", _new_id())
        with self._lock:
            templates = self._templates(waba_id)
            templates[:] = [t for t in templates if (t["name"], t["language"]) != (item["name"], item["language"])]
            templates.append(item)
        return copy.deepcopy(item)

    def remove(self, name: str, language: str | None = None, waba_id: str | None = None) -> int:
        """Delete a template upstream (all its languages unless ``language``); how many went."""
        with self._lock:
            templates = self._templates(waba_id)
            kept = [t for t in templates if not (t["name"] == name and language in (None, t["language"]))]
            removed = len(templates) - len(kept)
            templates[:] = kept
        return removed

    def set_status(self, name: str, language: str, status: str, waba_id: str | None = None) -> None:
        with self._lock:
            for template in self._templates(waba_id):
                if (template["name"], template["language"]) == (name, language):
                    template["status"] = status
                    return
        raise KeyError(f"no template {name} ({language})")

    # -- HTTP
    def _templates(self, waba_id: str | None) -> list[dict[str, Any]]:
        waba = waba_id or self.default_waba_id
        if waba not in self._by_waba:
            self._by_waba[waba] = [{**t, "id": _new_id()} for t in default_templates()]
        return self._by_waba[waba]

    def page(self, waba_id: str, query: Mapping[str, list[str]], base_url: str, version: str) -> Reply:
        limit_text = (query.get("limit") or [str(self.page_size)])[0]
        limit = min(int(limit_text), self.page_size) if limit_text.isdigit() and int(limit_text) > 0 \
            else self.page_size
        after = (query.get("after") or [""])[0]
        start = _index(after) if after else 0
        if start is None:
            return 400, self._error(100, "Invalid cursor in parameter 'after'."), []
        with self._lock:
            items = copy.deepcopy(self._templates(waba_id))
        chunk = items[start:start + limit]
        paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(chunk))}}
        if start + len(chunk) < len(items):
            params = {"limit": limit, "after": _cursor(start + len(chunk))}
            if query.get("fields"):
                params["fields"] = query["fields"][0]
            paging["next"] = f"{base_url}/{version}/{waba_id}/message_templates?{urlencode(params)}"
        return 200, {"data": chunk, "paging": paging}, []

    def check_send(self, phone_number_id: str | None, template: Mapping[str, Any]) -> tuple[int, str] | None:
        """Meta's refusal of a template send as (code, details), or None when it is fine."""
        name = template.get("name")
        language = (template.get("language") or {}).get("code")
        with self._lock:
            waba = self._phone_waba.get(phone_number_id or "", self.default_waba_id)
            found = next((copy.deepcopy(t) for t in self._templates(waba)
                          if t["name"] == name and t["language"] == language), None)
        if found is None:
            return 132001, f"template name ({name}) does not exist in {language}"
        status = str(found.get("status", "")).upper()
        if status == "PAUSED":
            return 132015, f"Template {name} is paused due to low quality so it cannot be sent."
        if status == "DISABLED":
            return 132016, f"Template {name} has been paused too many times due to low quality and is disabled."
        if status != "APPROVED":
            return 132001, f"template name ({name}) does not exist in {language} or has not been approved"
        return self._check_parameters(found, template.get("components") or [])

    @staticmethod
    def _check_parameters(found: Mapping[str, Any], sent: list[Mapping[str, Any]]) -> tuple[int, str] | None:
        expected = _expected_counts(found.get("components") or [])
        given: dict[str, list[Mapping[str, Any]]] = {}
        for component in sent:
            kind = str(component.get("type", "")).lower()
            if kind == "button" and str(component.get("sub_type", "")).lower() == "quick_reply":
                continue  # a quick-reply button's payload is ours to set, not one of the template's params
            key = f"button.{component.get('index')}" if kind == "button" else kind
            given[key] = list(component.get("parameters") or [])
        for key in sorted(set(expected) | set(given)):
            if len(given.get(key, [])) != expected.get(key, 0):
                return 132000, (f"{key}: number of localizable_params ({len(given.get(key, []))}) does not match "
                                f"the expected number of params ({expected.get(key, 0)})")
        header = next((c for c in found.get("components") or [] if str(c.get("type")).upper() == "HEADER"), None)
        if header and str(header.get("format", "")).upper() in MEDIA_FORMATS:
            kind = str(header["format"]).lower()
            if given["header"][0].get("type") != kind:
                return 132012, f"header: Parameter format does not match format in the created template ({kind})"
        if str(found.get("parameter_format", "")).upper() == "NAMED":
            names = {slot.placeholder for slot in template_slots(found.get("components") or [])}
            sent_names = {p.get("parameter_name") for params in given.values() for p in params}
            if names != sent_names:
                return 132000, f"named parameters {sorted(names)} expected, got {sorted(map(str, sent_names))}"
        return None

    def _error(self, code: int, details: str) -> dict[str, Any]:
        assert self._error_body is not None
        return self._error_body(code, details)


class FakeMedia:
    """Media objects: uploaded by the project or added by a test (what a user sent)."""

    def __init__(self, *, url_ttl_seconds: float = 300.0,
                 error_body: Callable[..., dict[str, Any]] | None = None) -> None:
        self.url_ttl_seconds = url_ttl_seconds
        self._error_body = error_body
        self._secret = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        self._expire_next = 0
        self._fail_next = 0
        self.info_requests: dict[str, int] = {}
        self.downloads: dict[str, int] = {}

    def reset(self) -> None:
        with self._lock:
            self._items.clear()
            self._expire_next = self._fail_next = 0
            self.info_requests.clear()
            self.downloads.clear()

    def add(self, data: bytes, mime_type: str, *, media_id: str | None = None, filename: str | None = None) -> str:
        """Store bytes as Meta would hold a user's media; returns the media id for a webhook."""
        media_id = media_id or _new_id()
        with self._lock:
            self._items[media_id] = {"data": bytes(data), "mime_type": mime_type, "filename": filename,
                                     "sha256": hashlib.sha256(data).hexdigest()}
        return media_id

    def get(self, media_id: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(media_id)
            return dict(item) if item else None

    def expire_next_urls(self, count: int = 1) -> None:
        """The next ``count`` URLs handed out are already expired (the retry path)."""
        with self._lock:
            self._expire_next += count

    def fail_next_info(self, count: int = 1) -> None:
        """The next ``count`` ``GET /{media-id}`` answer 503 (Meta's 131016, service unavailable)."""
        with self._lock:
            self._fail_next += count

    def _sign(self, media_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def info(self, media_id: str, base_url: str) -> Reply:
        with self._lock:
            item = self._items.get(media_id)
            self.info_requests[media_id] = self.info_requests.get(media_id, 0) + 1
            expired = self._expire_next > 0
            self._expire_next -= int(expired)
            failing = self._fail_next > 0
            self._fail_next -= int(failing)
        if failing:
            return 503, self._error_body(131016, "Service temporarily unavailable") if self._error_body else {}, []
        if item is None:
            details = f"Unsupported get request. Object with ID '{media_id}' does not exist."
            return 400, self._error_body(100, details) if self._error_body else {}, []
        expires = int(time.time() - 1 if expired else time.time() + self.url_ttl_seconds)
        query = urlencode({"mid": media_id, "ext": expires, "hash": self._sign(media_id, expires)})
        return 200, {
            "messaging_product": "whatsapp", "url": f"{base_url}{ATTACHMENTS_PATH}?{query}",
            "mime_type": item["mime_type"], "sha256": item["sha256"], "file_size": len(item["data"]),
            "id": media_id,
        }, []

    def fetch(self, query: Mapping[str, list[str]], authorized: bool) -> Reply:
        """The bytes behind a URL from ``info``: the token is required and the URL expires."""
        if not authorized:
            return 401, {"error": {"message": "Invalid OAuth access token", "code": 190}}, []
        media_id, expires = (query.get("mid") or [""])[0], (query.get("ext") or [""])[0]
        signature = (query.get("hash") or [""])[0]
        if not expires.isdigit() or not hmac.compare_digest(signature, self._sign(media_id, int(expires))):
            return 404, {"error": {"message": "URL signature mismatch"}}, []
        if int(expires) < time.time():
            return 404, {"error": {"message": "URL signature expired"}}, []
        with self._lock:
            item = self._items.get(media_id)
            self.downloads[media_id] = self.downloads.get(media_id, 0) + 1
        if item is None:
            return 404, {"error": {"message": "Media not found"}}, []
        return 200, item["data"], [(b"content-type", item["mime_type"].encode())]

    def upload(self, content_type: str, raw: bytes) -> Reply:
        """``POST /{phone-number-id}/media`` (multipart: messaging_product, type, file)."""
        error = self._error_body or (lambda code, details: {"error": {"code": code, "message": details}})
        if not content_type.startswith("multipart/form-data"):
            return 400, error(100, "Expected multipart/form-data"), []
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + raw)
        fields: dict[str, str] = {}
        file_part: tuple[str | None, str, bytes] | None = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                file_part = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True) or b"")
            elif name:
                fields[str(name)] = (part.get_payload(decode=True) or b"").decode()
        if fields.get("messaging_product") != "whatsapp":
            return 400, error(100, "The parameter messaging_product is required."), []
        if file_part is None:
            return 400, error(100, "The parameter file is required."), []
        filename, part_type, data = file_part
        mime = (fields.get("type") or part_type).split(";")[0].strip()
        kind = next((k for k, (types, _max) in MEDIA_LIMITS.items() if mime in types and k != "sticker"), None)
        if mime == "image/webp":
            kind = "sticker"
        if kind is None:
            return 400, error(131053, f"Param file must be a file with one of the supported types, not {mime}"), []
        if len(data) > MEDIA_LIMITS[kind][1]:
            return 400, error(131053, f"{kind} is {len(data)} bytes, more than {MEDIA_LIMITS[kind][1]}"), []
        return 200, {"id": self.add(data, mime, filename=filename)}, []


def handle(templates: FakeTemplates, media: FakeMedia, method: str, path: str, scope: Mapping[str, Any],
           raw: bytes, authorized: bool) -> Reply | None:
    """Answer a templates/media call, or None when the path is none of them (the caller
    answers it). ``authorized`` says whether the bearer token was accepted."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    base_url = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"
    if path == ATTACHMENTS_PATH and method == "GET":
        return media.fetch(query, authorized)
    for pattern, wanted in ((_TEMPLATES_PATH, "GET"), (_UPLOAD_PATH, "POST"), (_MEDIA_PATH, "GET")):
        match = pattern.match(path)
        if match is None or method != wanted:
            continue
        if not authorized:
            return 401, {"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                                   "type": "OAuthException", "code": 190}}, []
        version, object_id = match.group(1), match.group(2)
        if pattern is _TEMPLATES_PATH:
            return templates.page(object_id, query, base_url, version)
        if pattern is _UPLOAD_PATH:
            return media.upload(headers.get("content-type", ""), raw)
        return media.info(object_id, base_url)
    return None


def control(templates: FakeTemplates, media: FakeMedia, method: str, path: str, query_string: bytes,
            raw: bytes) -> Reply | None:
    """Control endpoints for a fake in another process (the dev stack, the simulator):
    ``GET/POST/DELETE /_fake/templates`` (list, add a JSON template, remove ``?name=&language=``;
    ``waba_id`` optional) and ``POST /_fake/media?mime_type=...`` (raw bytes -> a media id a
    webhook can carry)."""
    query = {k: v[0] for k, v in parse_qs(query_string.decode("latin-1")).items()}
    route = (method, path.rstrip("/"))
    if route == ("GET", "/_fake/templates"):
        return 200, {"templates": templates.list(query.get("waba_id"))}, []
    if route == ("POST", "/_fake/templates"):
        try:
            return 200, templates.add(json.loads(raw or b"{}"), query.get("waba_id")), []
        except (ValueError, TypeError) as exc:
            return 400, {"error": {"field": "body", "message": str(exc)}}, []
    if route == ("DELETE", "/_fake/templates"):
        if not query.get("name"):
            return 400, {"error": {"field": "name", "message": "is required"}}, []
        return 200, {"removed": templates.remove(query["name"], query.get("language"), query.get("waba_id"))}, []
    if route == ("POST", "/_fake/media"):
        if not query.get("mime_type") or not raw:
            return 400, {"error": {"field": "mime_type", "message": "give ?mime_type= and the bytes as the body"}}, []
        return 200, {"id": media.add(raw, query["mime_type"], filename=query.get("filename"))}, []
    return None


def summary(payload: Any) -> Any:
    """What the request log keeps of an answer (bytes are not JSON)."""
    return {"bytes": len(payload)} if isinstance(payload, bytes) else payload

