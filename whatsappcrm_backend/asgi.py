"""ASGI entry point, with the webhook's body bounded while it streams in.

Django's ASGI handler reads a request's whole body (to memory, then to a temporary file)
before any view runs, chunked or not, whatever its Content-Length says. The webhook view
refuses a body over WEBHOOK_MAX_BODY_BYTES, but by then an unbounded body would already
have been taken in. ``BoundedWebhookBody`` hands Django at most ``limit + 1`` bytes of a
webhook request, so the view sees that it is over the limit and answers 413 itself (the
one place refusals are made and logged).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whatsappcrm_backend.settings")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def webhook_body_limit(path: str) -> int | None:
    """WEBHOOK_MAX_BODY_BYTES if ``path`` is served by the webhook view, else None."""
    from django.conf import settings
    from django.urls import Resolver404, resolve

    from meta_integration.views import webhook

    try:
        match = resolve(path)
    except Resolver404:
        return None
    return settings.WEBHOOK_MAX_BODY_BYTES if match.func is webhook else None


class BoundedWebhookBody:
    """Pass a webhook request to ``app`` with at most ``limit + 1`` bytes of its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = webhook_body_limit(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        read = await _read_at_most(receive, limit + 1, _declared_length(scope))
        if read is None:  # the client went away mid-body: nothing to answer
            return
        body, complete = read
        replayed = False

        async def bounded_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            if complete:
                return await receive()  # only http.disconnect can follow a whole body
            # Django now only listens for a disconnect until the response is sent: the rest of
            # an over-limit body is never taken in.
            return await asyncio.get_running_loop().create_future()

        await self.app(scope, bounded_receive, send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_at_most(receive: Receive, cap: int, declared: int | None) -> tuple[bytes, bool] | None:
    """Up to ``cap`` bytes of the body and whether that was all of it; none when the declared
    Content-Length already exceeds the cap (the view refuses on the declared length)."""
    if declared is not None and declared >= cap:
        return b"", False
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
    return b"".join(chunks)[:cap], False


application = BoundedWebhookBody(get_asgi_application())
