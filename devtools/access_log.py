"""The development web server's access log without the simulator's polling.

The simulator page asks ``/simulator/feed`` (and its state) every second or so; with
gunicorn's ``--access-logfile -`` those lines buried every request worth reading. The dev
stack starts gunicorn with ``--logger-class devtools.access_log.QuietPollingLogger``: a
successful poll is not logged; a poll that fails (4xx/5xx) still is, and so is everything else.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

__all__ = ["QUIET_PATHS", "QuietPollingLogger"]

QUIET_PATHS = frozenset({"/simulator/feed", "/simulator/conversation"})


def _status_code(status: Any) -> int:
    text = str(status).split(None, 1)[0] if status is not None else ""
    return int(text) if text.isdigit() else 0


class QuietPollingLogger(Logger):
    """gunicorn's logger, minus the access lines of successful simulator polls."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if environ.get("PATH_INFO") in QUIET_PATHS and 0 < _status_code(resp.status) < 400:
            return
        super().access(resp, req, environ, request_time)
