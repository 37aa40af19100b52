"""The one runner for the fake servers: in a background thread (tests) or as a process.

As a process (the dev stack and the benchmarks)::

    python -m devtools.servers graph --port 8001 [--webhook-url ... --app-secret ...]
    python -m devtools.servers football --port 8002 [--fixtures 200 --any-key ...]

The fake Graph API and the fake API-Football are plain ASGI apps. Tests need them on a real
socket (the code under test uses real httpx clients with real connection pools), started in
milliseconds and torn down cleanly between tests. ``run_in_thread`` does exactly that:

    with run_in_thread(app) as server:
        httpx.get(server.url + "/_fake/health")

The listening socket is created and bound *here*, before uvicorn starts, and handed to uvicorn
with ``sockets=[sock]``. So ``port=0`` picks a free port with no race between "find a free
port" and "bind it", and ``.url`` is known before the first request.

No Django here: the fakes run standalone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import uvicorn

__all__ = ["RunningServer", "ServerStartError", "main", "run_in_thread", "serve"]

ASGIApp = Callable[..., Any]


class ServerStartError(RuntimeError):
    """The server thread died or did not start listening in time."""


def _bind_socket(host: str, port: int) -> socket.socket:
    """Create, configure and bind a listening-ready TCP socket (IPv4 or IPv6 by ``host``)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"port: must be an int in 0..65535, got {port!r}")
    if not isinstance(host, str) or not host:
        raise ValueError(f"host: must be a non-empty string, got {host!r}")
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _format_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class RunningServer:
    """A uvicorn server running in a daemon thread; stop it with ``.stop()`` or ``with``."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int):
        self.server = server
        self.thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """Base URL with the bound port, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return _format_url(self.host, self.port)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to shut down gracefully and wait for the thread to end.

        Idempotent. If in-flight requests (say a scripted 30 s ``timeout`` fault) keep the
        server busy past ``timeout``, the shutdown is forced rather than hanging the test run.
        """
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"server at {self.url} did not stop within {2 * timeout:.0f}s")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RunningServer {self.url} {state}>"


def run_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    graceful_timeout: int = 3,
) -> RunningServer:
    """Serve ``app`` with uvicorn in a daemon thread; return once it accepts connections.

    ``port=0`` binds a free port chosen by the OS; read it back from ``.port`` / ``.url``.
    Raises ``ServerStartError`` if uvicorn fails to start within ``startup_timeout`` seconds.
    """
    sock = _bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=host,
        port=bound_port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=graceful_timeout,
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def _serve() -> None:
        try:
            # A fresh event loop owned by this thread; signals are not captured off the
            # main thread, so the caller's Ctrl+C handling is untouched.
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            errors.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=_serve, name=f"uvicorn-{host}:{bound_port}", daemon=True)
    running = RunningServer(server, thread, host, bound_port)
    thread.start()

    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            cause = errors[0] if errors else None
            raise ServerStartError(f"uvicorn thread for {running.url} exited during startup") from cause
        if time.monotonic() > deadline:
            running.stop(timeout=1.0)
            raise ServerStartError(f"uvicorn at {running.url} not listening after {startup_timeout}s")
        time.sleep(0.005)
    return running


def serve(app: ASGIApp, host: str, port: int, log_level: str = "warning") -> None:
    """Serve ``app`` in this process until it is stopped (SIGINT/SIGTERM)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        access_log=False,
        backlog=4096,  # the benchmarks open hundreds of connections at once
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run()


def _fakes() -> dict[str, Any]:
    """The fakes by command name (imported here: each module imports only what it needs)."""
    from devtools import fake_api_football, fake_graph

    return {"graph": fake_graph, "football": fake_api_football}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m devtools.servers {graph,football} [options]``: serve one fake as a process."""
    parser = argparse.ArgumentParser(prog="python -m devtools.servers", description="Run a fake server.")
    commands = parser.add_subparsers(dest="fake", required=True)
    fakes = _fakes()
    for name, module in fakes.items():
        sub = commands.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--log-level", default="warning")
        module.add_arguments(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    app = fakes[args.fake].from_arguments(args)
    serve(app, args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
