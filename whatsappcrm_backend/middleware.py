"""Machine-to-machine endpoints skip the browser middleware.

Meta's webhook is most of the web traffic (four POSTs per exchange: the message and the
sent, delivered and read statuses of the reply), and nothing in sessions, CSRF,
authentication, messages, clickjacking or the security headers applies to it: it carries
no cookies, is CSRF-exempt and authenticated by its own signature. Running that stack cost
about as much CPU as storing a status. A view marked with ``skips_browser_middleware`` is
called by ``LeanViewMiddleware`` directly; everything else (admin, the API) goes through
the whole stack as before. Put it right after the metrics middleware, so those requests
are still timed and counted, and exceptions still become Django's error responses.

With ``SECURE_SSL_REDIRECT`` a request that is not secure takes the normal path, so it is
redirected as before. The one thing of CommonMiddleware's a client notices, Content-Length
(without it the answer comes chunked), is set here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.urls import Resolver404, resolve

View = TypeVar("View", bound=Callable[..., Any])

_MARK = "skips_browser_middleware"


def skips_browser_middleware(view: View) -> View:
    """Mark a view that needs none of the browser middleware (see the module docstring)."""
    setattr(view, _MARK, True)
    return view


class LeanViewMiddleware:
    """Call views marked ``skips_browser_middleware`` without the middleware after this one."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        if not getattr(match.func, _MARK, False) or (settings.SECURE_SSL_REDIRECT and not request.is_secure()):
            return self.get_response(request)
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        # What CommonMiddleware would add: without it a server answers in chunks.
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response
