"""Meta's webhook: subscription check (GET) and notifications (POST).

Meta retries any non-200 for days, so the POST answers 200 as soon as the batch is
stored; flow work and Graph API calls happen in tasks enqueued on commit. Every
refusal (403, 400, 411, 413, 405) happens before anything is written.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from meta_integration.payloads import PayloadError, parse_webhook
from meta_integration.signatures import SIGNATURE_HEADER
from meta_integration.webhook import WebhookRejected, accept_webhook, authenticate, config_for_verify_token
from whatsappcrm_backend.middleware import skips_browser_middleware

logger = logging.getLogger(__name__)

_SIGNATURE_META_KEY = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")


@skips_browser_middleware  # no cookies, signed by Meta: sessions, CSRF, auth... do not apply
@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _verify_subscription(request)
    try:
        return _receive(request)
    except WebhookRejected as exc:
        logger.warning("webhook refused with %s: %s (from %s)", exc.status, exc.reason, request.META.get("REMOTE_ADDR"))
        return HttpResponse(exc.reason if exc.status != 403 else "forbidden", status=exc.status,
                            content_type="text/plain")


def _verify_subscription(request: HttpRequest) -> HttpResponse:
    """Meta's subscription handshake: echo hub.challenge if hub.verify_token is ours."""
    config = config_for_verify_token(request.GET.get("hub.mode"), request.GET.get("hub.verify_token"))
    if config is None:
        logger.warning("webhook verification refused (mode=%r)", request.GET.get("hub.mode"))
        return HttpResponse("forbidden", status=403, content_type="text/plain")
    challenge = request.GET.get("hub.challenge", "")
    if not challenge:
        return HttpResponse("hub.challenge missing", status=400, content_type="text/plain")
    logger.info("webhook verified for app config %s (phone_number_id=%s)", config.pk, config.phone_number_id)
    return HttpResponse(challenge, content_type="text/plain")


def _read_body(request: HttpRequest) -> bytes:
    """The raw body, refusing anything over WEBHOOK_MAX_BODY_BYTES without buffering it.

    Content-Length is checked first; the read is bounded too, because a body without
    one (chunked, or ASGI) would otherwise be read whole.
    """
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise WebhookRejected(413, f"body of {declared} bytes exceeds {limit}")
    body = _body_stream(request).read(limit + 1)
    if len(body) > limit:
        raise WebhookRejected(413, f"body exceeds {limit} bytes")
    return body


def _body_stream(request: HttpRequest) -> Any:
    """Where the body can be read from, including a chunked body under WSGI.

    Django's WSGIRequest reads at most Content-Length bytes, so a chunked request (which has
    none) reads as empty and fails its signature. A server that de-chunks the body says so
    with ``wsgi.input_terminated`` (gunicorn does): its ``wsgi.input`` ends where the body
    ends and is read directly. A chunked body the server cannot end is refused (411), never
    taken for an empty one.
    """
    if not isinstance(request, WSGIRequest) or request.META.get("CONTENT_LENGTH"):
        return request  # ASGI hands over the whole body; with a length Django bounds the read
    if request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"]
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise WebhookRejected(411, "a chunked body needs a server that de-chunks it; send Content-Length")
    return request


def _receive(request: HttpRequest) -> HttpResponse:
    body = _read_body(request)
    verified = authenticate(body, request.META.get(_SIGNATURE_META_KEY))
    if verified.decode_error is not None:
        raise WebhookRejected(400, verified.decode_error)
    try:
        batch = parse_webhook(verified.document)
    except PayloadError as exc:
        raise WebhookRejected(400, exc.reason) from None
    accepted = accept_webhook(verified, batch)
    # Each stored message is logged where it is stored; this line is for what was kept for audit.
    logger.log(logging.INFO if accepted.event_id is not None else logging.DEBUG,
               "webhook accepted: %s (audit event=%s)", accepted.summary, accepted.event_id)
    return HttpResponse("ok", content_type="text/plain")
