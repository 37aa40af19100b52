"""A WSGI app for tests that run a real gunicorn: ``/<anything>?status=NNN`` answers NNN."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    status = parse_qs(environ.get("QUERY_STRING", "")).get("status", ["200"])[0]
    start_response(f"{int(status)} X", [("Content-Type", "text/plain")])
    return [b"ok"]
