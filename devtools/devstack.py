"""Start the whole system on one machine with no external services: ``python -m devtools.devstack``.

It runs what docker-compose.yml runs, as local processes with the same worker
arguments (read from the compose file): the web server (gunicorn), the gevent I/O
worker, the prefork CPU worker and Beat, plus an embedded Redis, SQLite, and the
fake Graph API wired to the webhook so replies land in the simulator. Ctrl-C (or
SIGTERM) stops every child; nothing is left running.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEV_PHONE_NUMBER_ID = "100000000000001"
DEV_DISPLAY_NUMBER = "15550001111"
DEV_ACCESS_TOKEN = "dev-access-token"
DEV_APP_SECRET = "dev-app-secret"
DEV_VERIFY_TOKEN = "dev-verify-token"
DEV_ADMIN = ("admin", "admin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str]) -> Child:
        from whatsappcrm_backend.embedded_redis import _die_with_parent

        if argv[0] == "celery":
            argv = [sys.executable, "-m", "celery", *argv[1:]]
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True, preexec_fn=_die_with_parent)
        child = Child(name, process)
        self.children.append(child)
        return child

    def stop(self, timeout: float = 15.0) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(child.process, signal.SIGKILL)  # whatever is left of its group
            if child.process.poll() is None:
                # Not in the group it was started in any more: kill it by its own pid, and
                # never wait without a bound (a Ctrl-C that hangs is worse than a leftover).
                child.process.kill()
            try:
                child.process.wait(5.0)
            except subprocess.TimeoutExpired:
                print(f"[devstack] {child.name} (pid {child.process.pid}) did not exit after SIGKILL", flush=True)

    def watch(self) -> int:
        """Block until a child dies (returns its code) or we are asked to stop."""
        while True:
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    print(f"[devstack] {child.name} exited with {code}; stopping everything", flush=True)
                    return code or 1
            time.sleep(0.5)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_http(url: str, timeout: float = 60.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def prepare_database(*, seed: bool, reset: bool) -> None:
    """Migrate, then seed, here: one Django start-up instead of one per command (seconds of
    CPU, every run). The connection is closed before the children start."""
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    if seed:
        call_command("devstack_seed", reset=reset)
    connections.close_all()


def build_env(args: argparse.Namespace) -> dict[str, str]:
    from whatsappcrm_backend.embedded_redis import ensure_redis_url

    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["DJANGO_SETTINGS_MODULE"] = "whatsappcrm_backend.settings"
    env["REDIS_URL"] = ensure_redis_url(env)  # one embedded server for every child, unless REDIS_URL is set
    env.setdefault("META_GRAPH_API_URL", f"http://127.0.0.1:{args.graph_port}")
    env.setdefault("META_PHONE_NUMBER_ID", DEV_PHONE_NUMBER_ID)
    env.setdefault("META_DISPLAY_PHONE_NUMBER", DEV_DISPLAY_NUMBER)
    env.setdefault("META_ACCESS_TOKEN", DEV_ACCESS_TOKEN)
    env.setdefault("META_APP_SECRET", DEV_APP_SECRET)
    env.setdefault("META_VERIFY_TOKEN", DEV_VERIFY_TOKEN)
    env["DEVSTACK_WEB_URL"] = f"http://127.0.0.1:{args.web_port}"
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web-port", type=int, default=int(os.environ.get("WEB_PORT", "8000")))
    parser.add_argument("--graph-port", type=int, default=int(os.environ.get("FAKE_GRAPH_PORT", "8001")))
    parser.add_argument("--no-seed", action="store_true", help="skip loading default flows and sample data")
    parser.add_argument("--reset", action="store_true",
                        help="put the shipped default flows back, overwriting edits made in admin")
    args = parser.parse_args(argv)
    if args.web_port == 0:
        args.web_port = free_port()
    if args.graph_port == 0:
        args.graph_port = free_port()

    env = build_env(args)
    os.environ.update(env)
    from whatsappcrm_backend.routing_check import compose_command

    stack = Stack(env)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    # Ctrl-C must stop the stack even when the parent ignored SIGINT: an ignored signal stays
    # ignored across exec (a shell's background job, a test runner), and Python then never
    # installs its KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # `kill -USR1 <launcher>` prints where it is (a stop that hangs can be diagnosed).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        prepare_database(seed=not args.no_seed, reset=args.reset)
        web_url = env["DEVSTACK_WEB_URL"]
        stack.start("fake-graph", [
            sys.executable, "-m", "devtools.servers", "graph", "--host", "127.0.0.1",
            "--port", str(args.graph_port), "--webhook-url", f"{web_url}/webhooks/meta/",
            "--app-secret", env["META_APP_SECRET"], "--access-token", env["META_ACCESS_TOKEN"],
        ])
        stack.start("web", [
            sys.executable, "-m", "gunicorn", "whatsappcrm_backend.wsgi:application",
            "--bind", f"127.0.0.1:{args.web_port}", "--workers", "2", "--worker-class", "gthread",
            "--threads", "8", "--access-logfile", "-", "--log-level", "warning",
            "--logger-class", "devtools.access_log.QuietPollingLogger",  # no line per simulator poll
        ])
        for service in ("celery_io_worker", "celery_cpu_worker", "celery_beat"):
            stack.start(service, compose_command(service))
        if not _wait_http(f"{web_url}/healthz"):
            print("[devstack] the web server did not come up", flush=True)
            return 1
        print(
            "\n[devstack] up:\n"
            f"  simulator   {web_url}/simulator/\n"
            f"  admin       {web_url}/admin/   (login {DEV_ADMIN[0]} / {DEV_ADMIN[1]})\n"
            f"  API docs    {web_url}/api/docs/\n"
            f"  webhook     {web_url}/webhooks/meta/\n"
            f"  fake Graph  http://127.0.0.1:{args.graph_port}/_fake/requests\n"
            f"  redis       {env['REDIS_URL']}\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        return stack.watch()
    except KeyboardInterrupt:
        print("\n[devstack] stopping...", flush=True)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
