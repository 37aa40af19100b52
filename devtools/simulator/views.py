"""The developer simulator: chat with the bot in a browser, as a WhatsApp user would (DEBUG only).

It goes through the real path, so what works here works with Meta:

* ``send``: the page POSTs what the user did (typed text, tapped a reply button or list row,
  shared a location); this view builds the Meta webhook body with ``webhook_payloads``, signs it with
  the business number's app secret, and POSTs it over HTTP to this server's own
  ``/webhooks/meta/``. Nothing internal is called: the webhook, the workers and the flows
  handle it exactly as they handle Meta.
* ``feed``: the page polls; this view reads the fake Graph API's control endpoints, i.e. what
  the bot *sent* (``/_fake/requests?to=<number>``) and the ``sent``/``delivered``/``read``
  status webhooks the fake posted back (``/_fake/webhooks``), and turns them into chat bubbles
  and ticks. It also says where the bot is with this user (flow, step, variables, handover)
  and the turns the workers recorded (``flows.services.trace``): the page's state panel and
  bot log.
* ``conversation``: the whole chat from the database (both sides), drawn when the page loads
  or switches user, so a restart of the dev stack or another browser loses nothing.
* ``reset``: start the user's chat over (session, handover, messages and log).
* ``csrf``: a fresh CSRF token, for a page whose token was rotated (a login to the admin in
  the same browser rotates it); the page retries a refused POST once with it.

The simulator needs a business number (``MetaAppConfig`` for ``settings.META_PHONE_NUMBER_ID``)
whose Graph API URL points at the fake; ``settings.SIMULATOR_FAKE_GRAPH_URL`` overrides where
the fake is. The parsing and shaping below are pure functions so they are testable without a
server; only the three views touch Django and the network.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from devtools import webhook_payloads
from devtools.simulator import conversation as chat_record
from meta_integration.models import MetaAppConfig
from meta_integration.payloads import parse_callback_message_id

__all__ = [
    "MAX_TEXT_LENGTH",
    "BotMessage",
    "FeedQuery",
    "InboundKind",
    "SimulatorInputError",
    "UserAction",
    "bot_message_view",
    "build_inbound",
    "conversation",
    "csrf",
    "feed",
    "page",
    "parse_feed_query",
    "parse_user_action",
    "read_receipts",
    "reset",
    "send",
    "tick_statuses",
]

WEBHOOK_PATH = "/webhooks/meta/"
MAX_TEXT_LENGTH = 4096  # what the bot may send in one text; a user's text is held to the same
MAX_REQUEST_BYTES = 64 * 1024
MAX_PROFILE_NAME = 100
MAX_TRACKED_WAMIDS = 200
FEED_PAGE = 100
RECEIPTS_PAGE = 500
DEFAULT_PROFILE_NAME = "Simulator User"
UPSTREAM_TIMEOUT = 15.0  # the webhook answers fast; anything slower is a stuck server
REAL_GRAPH_HOSTS = ("graph.facebook.com", "graph.facebook.net")

_WA_ID_RE = re.compile(r"^\d{6,15}$")
_WAMID_RE = re.compile(r"^wamid\.[A-Za-z0-9+/=_\-.]{1,250}$")

# Presets for "share location": the default number is Zimbabwean, so are the first places.
LOCATION_PRESETS: tuple[dict[str, Any], ...] = (
    {"label": "Harare, Africa Unity Square", "latitude": -17.8292, "longitude": 31.0522,
     "name": "Africa Unity Square", "address": "Nelson Mandela Ave, Harare"},
    {"label": "Bulawayo, City Hall", "latitude": -20.1539, "longitude": 28.5833,
     "name": "Bulawayo City Hall", "address": "Fort St, Bulawayo"},
    {"label": "Victoria Falls", "latitude": -17.9243, "longitude": 25.8572,
     "name": "Victoria Falls Rainforest", "address": "Livingstone Way, Victoria Falls"},
    {"label": "London, Wembley Stadium", "latitude": 51.556, "longitude": -0.2796,
     "name": "Wembley Stadium", "address": "Wembley, London HA9 0WS"},
    {"label": "Dropped pin (no name)", "latitude": -17.8216, "longitude": 31.0492,
     "name": None, "address": None},
)


# --------------------------------------------------------------------------- user input


class SimulatorInputError(ValueError):
    """What the page sent cannot become a WhatsApp message; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InboundKind(StrEnum):
    """What a WhatsApp user can do in the simulator."""

    TEXT = "text"
    BUTTON_REPLY = "button_reply"  # tapped a reply button of an interactive message
    LIST_REPLY = "list_reply"  # picked a row of an interactive list
    TEMPLATE_BUTTON = "template_button"  # tapped a quick-reply button of a template
    LOCATION = "location"
    IMAGE = "image"  # a sample photo (the fake holds its bytes; the project downloads it)


@dataclass(frozen=True)
class UserAction:
    """One validated thing the simulated user did, ready to become a Meta message."""

    wa_id: str
    profile_name: str
    kind: InboundKind
    text: str | None = None  # typed text, or the tapped button/row title
    reply_id: str | None = None  # button/row id, or a template button's payload
    description: str | None = None  # list row description
    context: str | None = None  # wamid of the bot message the tap belongs to
    latitude: float | None = None
    longitude: float | None = None
    place_name: str | None = None
    address: str | None = None
    media_id: str | None = None  # an image's id at the fake Graph API (set by the send view)


def _field_text(data: Mapping[str, Any], key: str, *, max_len: int, required: bool) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise SimulatorInputError(key, "is required")
        return None
    if not isinstance(value, str):
        raise SimulatorInputError(key, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise SimulatorInputError(key, "must not be blank")
    if len(value) > max_len:
        raise SimulatorInputError(key, f"at most {max_len} characters (got {len(value)})")
    return value


def _field_number(data: Mapping[str, Any], key: str, limit: float) -> float:
    value = data.get(key)
    if isinstance(value, str) and value.strip():
        try:
            value = float(value)
        except ValueError:
            raise SimulatorInputError(key, f"must be a number, got {value!r}") from None
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SimulatorInputError(key, "is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SimulatorInputError(key, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise SimulatorInputError(key, f"must be between -{limit:g} and {limit:g} (got {value!r})")
    return float(value)


def parse_wa_id(value: Any, field: str = "wa_id") -> str:
    """A WhatsApp number as Meta writes it: 6-15 digits, no '+' (a leading '+' is dropped)."""
    if value is None or value == "":
        raise SimulatorInputError(field, "is required: the user's WhatsApp number, e.g. 263771234567")
    if not isinstance(value, str):
        raise SimulatorInputError(field, f"must be a string of digits, got {type(value).__name__}")
    number = value.strip().removeprefix("+")
    if not _WA_ID_RE.match(number):
        raise SimulatorInputError(
            field, f"must be 6 to 15 digits with country code and no spaces, got {value[:40]!r}"
        )
    return number


_ACTION_KEYS = frozenset({
    "wa_id", "profile_name", "kind", "text", "id", "title", "description", "context",
    "latitude", "longitude", "name", "address",
})


def parse_user_action(data: Any) -> UserAction:
    """Validate the page's JSON (``{"wa_id", "profile_name", "kind", ...}``) into a UserAction.

    Every class of bad input raises :class:`SimulatorInputError` naming the field, so the
    view answers 400 and posts nothing.
    """
    if not isinstance(data, Mapping):
        raise SimulatorInputError("body", "must be a JSON object")
    unknown = sorted(str(key) for key in data if key not in _ACTION_KEYS)
    if unknown:
        raise SimulatorInputError(unknown[0], f"unknown field (known: {', '.join(sorted(_ACTION_KEYS))})")
    wa_id = parse_wa_id(data.get("wa_id"))
    profile_name = _field_text(data, "profile_name", max_len=MAX_PROFILE_NAME, required=False)
    raw_kind = data.get("kind", InboundKind.TEXT.value)
    try:
        kind = InboundKind(raw_kind)
    except ValueError:
        allowed = ", ".join(k.value for k in InboundKind)
        raise SimulatorInputError("kind", f"must be one of {allowed}, got {raw_kind!r}") from None
    context = data.get("context") or None
    if context is not None and (not isinstance(context, str) or not _WAMID_RE.match(context)):
        raise SimulatorInputError("context", f"must be the wamid of a bot message, got {str(context)[:60]!r}")
    common = {"wa_id": wa_id, "profile_name": profile_name or DEFAULT_PROFILE_NAME, "kind": kind}

    if kind is InboundKind.TEXT:
        text = _field_text(data, "text", max_len=MAX_TEXT_LENGTH, required=True)
        return UserAction(**common, text=text, context=context)
    if kind is InboundKind.IMAGE:
        return UserAction(**common, text=_field_text(data, "text", max_len=1024, required=False))
    if kind is InboundKind.LOCATION:
        return UserAction(
            **common,
            latitude=_field_number(data, "latitude", 90),
            longitude=_field_number(data, "longitude", 180),
            place_name=_field_text(data, "name", max_len=1000, required=False),
            address=_field_text(data, "address", max_len=1000, required=False),
        )
    # Taps: WhatsApp's own limits for ids and titles (outbound.py), so a tap is always
    # something the bot could have offered.
    id_max, title_max = {
        InboundKind.BUTTON_REPLY: (256, 20),
        InboundKind.LIST_REPLY: (200, 24),
        InboundKind.TEMPLATE_BUTTON: (256, 256),
    }[kind]
    reply_id = _field_text(data, "id", max_len=id_max, required=True)
    title = _field_text(data, "title", max_len=title_max, required=True)
    description = None
    if kind is InboundKind.LIST_REPLY:
        description = _field_text(data, "description", max_len=72, required=False)
    return UserAction(
        **common, text=title, reply_id=reply_id, description=description, context=context
    )


def build_inbound(action: UserAction, business_number: str) -> dict[str, Any]:
    """The ``messages[]`` item Meta would deliver for ``action`` (built by ``webhook_payloads``).

    Taps quote the bot message that carried the button (``context``), as WhatsApp does.
    """
    context: Any = None
    if action.context is not None:
        context = webhook_payloads.Context.reply(action.context, business_number)
    if action.kind is InboundKind.TEXT:
        return webhook_payloads.text(action.text or "", wa_id=action.wa_id, context=context)
    if action.kind is InboundKind.IMAGE:
        return webhook_payloads.image(action.media_id, caption=action.text, mime_type="image/png", wa_id=action.wa_id)
    if action.kind is InboundKind.LOCATION:
        assert action.latitude is not None and action.longitude is not None
        return webhook_payloads.location(
            action.latitude, action.longitude, action.place_name, action.address, wa_id=action.wa_id
        )
    # interactive replies always carry a context; without one webhook_payloads quotes a fresh wamid
    tap_context = {"context": context} if context is not None else {}
    if action.kind is InboundKind.BUTTON_REPLY:
        return webhook_payloads.button_reply(
            action.reply_id or "", action.text or "", wa_id=action.wa_id, **tap_context
        )
    if action.kind is InboundKind.LIST_REPLY:
        return webhook_payloads.list_reply(
            action.reply_id or "", action.text or "", action.description,
            wa_id=action.wa_id, **tap_context,
        )
    return webhook_payloads.template_button(
        action.reply_id or "", action.text or "", wa_id=action.wa_id, **tap_context
    )


# --------------------------------------------------------------------------- the feed


@dataclass(frozen=True)
class FeedQuery:
    wa_id: str
    since: int  # last seq of this number's records the page has
    track: tuple[str, ...] = ()  # wamids of bot messages whose ticks the page still shows
    mine: tuple[str, ...] = ()  # wamids of the user's messages not yet marked read
    receipts_since: int = 0  # read receipts carry no recipient: they are paged separately


def _seq_param(query: Mapping[str, str], key: str) -> int:
    text = (query.get(key) or "0").strip()
    if not text.isdigit():
        raise SimulatorInputError(key, f"must be a sequence number >= 0, got {text[:20]!r}")
    return int(text)


def _wamids_param(query: Mapping[str, str], key: str) -> tuple[str, ...]:
    wamids = tuple(w for w in (query.get(key) or "").split(",") if w)
    if len(wamids) > MAX_TRACKED_WAMIDS:
        raise SimulatorInputError(key, f"at most {MAX_TRACKED_WAMIDS} wamids (got {len(wamids)})")
    for wamid in wamids:
        if not _WAMID_RE.match(wamid):
            raise SimulatorInputError(key, f"not a wamid: {wamid[:60]!r}")
    return wamids


def parse_feed_query(query: Mapping[str, str]) -> FeedQuery:
    """``?wa_id=&since=&track=<wamid,...>&mine=<wamid,...>&rsince=`` -> FeedQuery."""
    return FeedQuery(
        wa_id=parse_wa_id(query.get("wa_id")),
        since=_seq_param(query, "since"),
        track=_wamids_param(query, "track"),
        mine=_wamids_param(query, "mine"),
        receipts_since=_seq_param(query, "rsince"),
    )


class BotMessage(StrEnum):
    """How the page draws one request the bot made to the Graph API."""

    TEXT = "text"
    BUTTONS = "buttons"
    LIST = "list"
    MEDIA = "media"
    LOCATION = "location"
    TEMPLATE = "template"
    RECEIPT = "receipt"  # the bot marked a user message read (blue ticks on the user's side)
    UNKNOWN = "unknown"


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _header_view(header: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = _str(header.get("type"))
    if kind is None:
        return None
    if kind == "text":
        return {"type": "text", "text": _str(header.get("text"))}
    media = _obj(header.get(kind))
    return {"type": kind, "link": _str(media.get("link")), "id": _str(media.get("id"))}


def _graph_error(response: Any) -> str:
    error = _obj(_obj(response).get("error"))
    details = _str(_obj(error.get("error_data")).get("details"))
    message = _str(error.get("message")) or "no response"
    return f"{message}: {details}" if details else message


def bot_message_view(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """One fake-Graph record (``/_fake/requests`` item) as a chat bubble, or None to skip.

    Never raises: the fake records bodies it rejected too, and those are worth showing (as
    "not delivered" with Meta's error), not a reason to break the page.
    """
    kind = record.get("kind")
    body = _obj(record.get("body"))
    ok = record.get("http_status") == 200
    view: dict[str, Any] = {
        "seq": record.get("seq"),
        "wamid": _str(record.get("wamid")),
        "at": record.get("responded_at"),
        "ok": ok,
        "error": None if ok else _graph_error(record.get("response")),
    }
    if kind == "read_receipt":
        view.update(
            kind=BotMessage.RECEIPT.value,
            message_id=_str(body.get("message_id")),
            typing=bool(body.get("typing_indicator")),
        )
        return view
    if kind != "message":
        return None
    view["reply_to"] = _str(_obj(body.get("context")).get("message_id"))
    # the project's Message row (biz_opaque_callback_data): the same bubble from the feed and
    # from the history has the same id, so the page never draws it twice
    view["message_id"] = parse_callback_message_id(body.get("biz_opaque_callback_data"))
    msg_type = _str(body.get("type")) or ""
    content = _obj(body.get(msg_type))
    if msg_type == "text":
        view.update(kind=BotMessage.TEXT.value, text=_str(content.get("body")) or "")
    elif msg_type == "interactive":
        inner = _str(content.get("type"))
        action = _obj(content.get("action"))
        view.update(
            header=_header_view(_obj(content.get("header"))),
            text=_str(_obj(content.get("body")).get("text")) or "",
            footer=_str(_obj(content.get("footer")).get("text")),
        )
        if inner == "button":
            buttons = [_obj(_obj(b).get("reply")) for b in _list(action.get("buttons"))]
            view.update(
                kind=BotMessage.BUTTONS.value,
                buttons=[{"id": _str(b.get("id")), "title": _str(b.get("title"))} for b in buttons],
            )
        elif inner == "list":
            sections = []
            for section in _list(action.get("sections")):
                section = _obj(section)
                rows = [_obj(r) for r in _list(section.get("rows"))]
                sections.append({
                    "title": _str(section.get("title")),
                    "rows": [
                        {k: _str(r.get(k)) for k in ("id", "title", "description")} for r in rows
                    ],
                })
            view.update(kind=BotMessage.LIST.value, button=_str(action.get("button")), sections=sections)
        else:
            view.update(kind=BotMessage.UNKNOWN.value, raw=body)
    elif msg_type in ("image", "video", "audio", "document", "sticker"):
        view.update(
            kind=BotMessage.MEDIA.value,
            media_type=msg_type,
            caption=_str(content.get("caption")),
            filename=_str(content.get("filename")),
            link=_str(content.get("link")),
            media_id=_str(content.get("id")),
        )
    elif msg_type == "location":
        view.update(
            kind=BotMessage.LOCATION.value,
            latitude=content.get("latitude"),
            longitude=content.get("longitude"),
            name=_str(content.get("name")),
            address=_str(content.get("address")),
        )
    elif msg_type == "template":
        view.update(kind=BotMessage.TEMPLATE.value, **_template_view(content))
    else:
        view.update(kind=BotMessage.UNKNOWN.value, raw=body)
    return view


def _template_view(template: Mapping[str, Any]) -> dict[str, Any]:
    """A template as the user would roughly see it: its name, parameters and quick replies."""
    params: list[str] = []
    buttons: list[dict[str, str | None]] = []
    for component in _list(template.get("components")):
        component = _obj(component)
        for parameter in _list(component.get("parameters")):
            parameter = _obj(parameter)
            if component.get("type") == "button":
                payload = _str(parameter.get("payload")) or _str(parameter.get("text"))
                buttons.append({"id": payload, "title": payload})
            elif _str(parameter.get("text")) is not None:
                params.append(parameter["text"])
            elif _str(parameter.get("type")):
                params.append(f"[{parameter['type']}]")
    return {
        "template_name": _str(template.get("name")),
        "language": _str(_obj(template.get("language")).get("code")),
        "params": params,
        "buttons": buttons,
    }


_STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


def tick_statuses(
    deliveries: Iterable[Mapping[str, Any]], wamids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The furthest status per tracked wamid among the status webhooks the fake posted.

    A status the project's webhook refused (non-2xx) draws no tick, because the project never
    learned it; the refusal is reported instead so a broken webhook is visible on the page.
    ``failed`` wins over everything, as in Meta's model.
    """
    wanted = set(wamids)
    result: dict[str, dict[str, Any]] = {}
    for delivery in deliveries:
        wamid = delivery.get("wamid")
        if wamid not in wanted:
            continue
        entry = result.setdefault(wamid, {"status": None, "webhook_error": None})
        code = delivery.get("http_status")
        if not isinstance(code, int) or not 200 <= code < 300:
            entry["webhook_error"] = f"{delivery.get('status')}: {delivery.get('error') or code}"
            continue
        status = delivery.get("status")
        if _STATUS_RANK.get(status, 0) > _STATUS_RANK.get(entry["status"], 0):
            entry["status"] = status
    return result


# --------------------------------------------------------------------------- views


def _error(status: int, field: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"field": field, "message": message}}, status=status)


def debug_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 unless DEBUG: the simulator signs webhooks with the business's app secret."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.DEBUG:
            raise Http404("The simulator is only served in development (DEBUG=1).")
        return view(request, *args, **kwargs)

    return wrapped


def business_number() -> MetaAppConfig:
    """The business number the simulated users write to.

    ``settings.META_PHONE_NUMBER_ID`` names it; when that is unset and exactly one active
    number exists, that one (a fresh development database has just the seeded one).
    """
    configs = MetaAppConfig.objects.filter(is_active=True)
    wanted = settings.META_PHONE_NUMBER_ID
    if wanted:
        config = configs.filter(phone_number_id=wanted).first()
        if config is None:
            raise SimulatorInputError(
                "business",
                f"no active MetaAppConfig for META_PHONE_NUMBER_ID={wanted}: "
                "run `manage.py devstack_seed` or add it in admin",
            )
        return config
    found = list(configs[:2])
    if len(found) != 1:
        raise SimulatorInputError(
            "business",
            "set META_PHONE_NUMBER_ID to the business number to simulate "
            f"({len(found)} active MetaAppConfig found)",
        )
    return found[0]


def fake_graph_url(config: MetaAppConfig) -> str:
    """Where the fake Graph API listens: the setting, else where the business number sends."""
    url = (settings.SIMULATOR_FAKE_GRAPH_URL or config.graph_api_url).rstrip("/")
    if urlsplit(url).hostname in REAL_GRAPH_HOSTS:
        raise SimulatorInputError(
            "business",
            f"{config} sends to the real Graph API ({url}); the simulator shows replies only "
            "from the fake one (point graph_api_url or SIMULATOR_FAKE_GRAPH_URL at it)",
        )
    return url


def _display_number(config: MetaAppConfig) -> str:
    number = (config.display_phone_number or "").lstrip("+").replace(" ", "")
    return number if _WA_ID_RE.match(number) else webhook_payloads.DEFAULT_DISPLAY_PHONE_NUMBER


@debug_only
@require_GET
@ensure_csrf_cookie
def page(request: HttpRequest) -> HttpResponse:
    """The chat page; everything else happens through ``send`` and ``feed``."""
    problem = None
    config = None
    try:
        config = business_number()
        fake_url = fake_graph_url(config)
    except SimulatorInputError as exc:
        problem, fake_url = exc.message, ""
    context = {
        "config": config,
        "problem": problem,
        "fake_url": fake_url,
        "webhook_url": request.build_absolute_uri(WEBHOOK_PATH),
        "session_timeout": settings.FLOW_SESSION_TIMEOUT,
        "simulator_settings": {
            "defaultWaId": webhook_payloads.DEFAULT_WA_ID,
            "defaultName": webhook_payloads.DEFAULT_PROFILE_NAME,
            "sessionTimeout": settings.FLOW_SESSION_TIMEOUT,
            "maxText": MAX_TEXT_LENGTH,
            "locationPresets": list(LOCATION_PRESETS),
            "csrfCookieName": settings.CSRF_COOKIE_NAME,
        },
    }
    return render(request, "simulator/simulator.html", context)


@debug_only
@require_POST
def send(request: HttpRequest) -> JsonResponse:
    """Turn one user action into a signed Meta webhook POST to this server's webhook."""
    if len(request.body) > MAX_REQUEST_BYTES:
        return _error(400, "body", f"at most {MAX_REQUEST_BYTES} bytes")
    try:
        data = json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error(400, "body", f"is not valid JSON: {exc}")
    try:
        action = parse_user_action(data)
        config = business_number()
        if action.kind is InboundKind.IMAGE:
            action = replace(action, media_id=_upload_sample_photo(config))
        message = build_inbound(action, _display_number(config))
        body = webhook_payloads.webhook_body(
            [message],
            phone_number_id=config.phone_number_id,
            display_phone_number=_display_number(config),
            profile_name=action.profile_name,
            waba_id=config.waba_id if config.waba_id.isdigit() else webhook_payloads.DEFAULT_WABA_ID,
        )
        raw, headers = webhook_payloads.signed_request(body, config.app_secret)
    except SimulatorInputError as exc:
        status = 503 if exc.field == "business" else 400
        return JsonResponse({"error": exc.to_dict()}, status=status)
    except webhook_payloads.PayloadError as exc:
        return _error(400, exc.field, exc.message)

    webhook_url = request.build_absolute_uri(WEBHOOK_PATH)
    try:
        response = httpx.post(webhook_url, content=raw, headers=headers, timeout=UPSTREAM_TIMEOUT)
    except httpx.HTTPError as exc:
        return _error(502, "webhook", f"could not reach {webhook_url}: {type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return _error(
            502, "webhook", f"{webhook_url} answered HTTP {response.status_code}: {response.text[:300]}"
        )
    return JsonResponse({
        "wamid": message["id"],
        "timestamp": int(message["timestamp"]),
        "kind": action.kind.value,
        "webhook_status": response.status_code,
    })


# A 16x16 green PNG: the sample photo the simulated user sends (a real PNG, so the project's checks pass).
SAMPLE_PHOTO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAFklEQVR42mNQvZxGEmIY1TCqYfhqAADRaV4QBO9zkwAAAABJRU5ErkJggg=="
)


def _upload_sample_photo(config: MetaAppConfig) -> str:
    """Put the sample photo at the fake Graph API, as WhatsApp holds what a user sends."""
    try:
        response = httpx.post(f"{fake_graph_url(config)}/_fake/media", content=SAMPLE_PHOTO,
                              params={"mime_type": "image/png", "filename": "photo.png"}, timeout=UPSTREAM_TIMEOUT)
        response.raise_for_status()
        return str(response.json()["id"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise SimulatorInputError("business", f"the fake Graph API did not take the photo: {exc}") from None


def read_receipts(records: Iterable[Mapping[str, Any]], mine: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Which of the user's messages the bot marked read (accepted receipts only)."""
    wanted = set(mine)
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        view = bot_message_view(record)
        if view and view["kind"] == BotMessage.RECEIPT and view["ok"] and view["message_id"] in wanted:
            found[view["message_id"]] = {"typing": view["typing"]}
    return found


@debug_only
@require_GET
def feed(request: HttpRequest) -> JsonResponse:
    """What the bot sent to one number since ``since``, the ticks of tracked bot messages, and
    read receipts for the user's own messages."""
    try:
        query = parse_feed_query(request.GET)
        config = business_number()
        base = fake_graph_url(config)
    except SimulatorInputError as exc:
        status = 503 if exc.field == "business" else 400
        return JsonResponse({"error": exc.to_dict()}, status=status)
    try:
        with httpx.Client(base_url=base, timeout=UPSTREAM_TIMEOUT) as client:
            sent = _fake_get(client, "/_fake/requests", to=query.wa_id, since=query.since, limit=FEED_PAGE)
            deliveries = _fake_get(client, "/_fake/webhooks")["deliveries"] if query.track else []
            receipts_page = (
                _fake_get(client, "/_fake/requests", since=query.receipts_since, limit=RECEIPTS_PAGE)
                if query.mine else {"requests": []}
            )
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return _error(502, "fake_graph", f"could not read the fake Graph API at {base}: {exc}")
    records = sent.get("requests", [])
    views = [v for v in (bot_message_view(r) for r in records) if v is not None]
    fake_last = sent.get("last_seq", 0)
    receipt_records = receipts_page.get("requests", [])
    return JsonResponse({
        "messages": views,
        "next_since": max((r["seq"] for r in records), default=query.since),
        "more": len(records) >= FEED_PAGE or len(receipt_records) >= RECEIPTS_PAGE,
        # the fake restarted (its sequence went backwards): the page should start over
        "reset": isinstance(fake_last, int) and fake_last < max(query.since, query.receipts_since),
        "statuses": tick_statuses(deliveries, query.track),
        "receipts": read_receipts(receipt_records, query.mine),
        "next_receipts_since": max((r["seq"] for r in receipt_records), default=query.receipts_since),
        "fake_last_seq": fake_last,
        "state": chat_record.session_state(config, query.wa_id),
    })


def _fake_get(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params={k: str(v) for k, v in params.items()})
    response.raise_for_status()
    return response.json()


def _fake_last_seq(config: MetaAppConfig) -> int | None:
    """The fake's newest record number (None when it cannot be read): the page's feed starts
    after it, the history having drawn everything before."""
    try:
        with httpx.Client(base_url=fake_graph_url(config), timeout=UPSTREAM_TIMEOUT) as client:
            last = _fake_get(client, "/_fake/health").get("last_seq")
    except (httpx.HTTPError, ValueError, SimulatorInputError):
        return None
    return last if isinstance(last, int) else None


def _wa_id_from_json(request: HttpRequest) -> str:
    if len(request.body) > MAX_REQUEST_BYTES:
        raise SimulatorInputError("body", f"at most {MAX_REQUEST_BYTES} bytes")
    try:
        data = json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SimulatorInputError("body", f"is not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise SimulatorInputError("body", "must be a JSON object")
    unknown = sorted(str(key) for key in data if key != "wa_id")
    if unknown:
        raise SimulatorInputError(unknown[0], "unknown field (known: wa_id)")
    return parse_wa_id(data.get("wa_id"))


@debug_only
@require_GET
def conversation(request: HttpRequest) -> JsonResponse:
    """``?wa_id=``: the whole chat from the database (both sides), where the bot is, its log,
    and the fake's newest record number (the feed goes on from there)."""
    try:
        wa_id = parse_wa_id(request.GET.get("wa_id"))
        config = business_number()
    except SimulatorInputError as exc:
        return JsonResponse({"error": exc.to_dict()}, status=503 if exc.field == "business" else 400)
    return JsonResponse({
        "items": chat_record.history(config, wa_id),
        "fake_last_seq": _fake_last_seq(config),
        "state": chat_record.session_state(config, wa_id),
    })


@debug_only
@require_POST
def reset(request: HttpRequest) -> JsonResponse:
    """``{"wa_id"}``: start that user's chat over (session, handover, messages, log)."""
    try:
        wa_id = _wa_id_from_json(request)
        config = business_number()
    except SimulatorInputError as exc:
        return JsonResponse({"error": exc.to_dict()}, status=503 if exc.field == "business" else 400)
    deleted = chat_record.reset_conversation(config, wa_id)
    return JsonResponse({"deleted": deleted, "fake_last_seq": _fake_last_seq(config)})


@debug_only
@require_GET
@ensure_csrf_cookie
def csrf(request: HttpRequest) -> JsonResponse:
    """A CSRF token valid for this browser now (its cookie may have been rotated by a login)."""
    return JsonResponse({"csrf_token": get_token(request)})
