"""Start and stop the whole system for one benchmark run, the way docker-compose.yml runs it.

As local processes, with the arguments read from docker-compose.yml: gunicorn (the
``web`` service's gunicorn options, bound to 127.0.0.1), the gevent I/O worker, the
prefork CPU worker and Beat; plus the fake Graph API (status webhooks back to the
webhook, signed, as Meta does, when a scenario turns them on) and the floor: its bare
Django (``bench.floor_web``) on a second gunicorn with the same options, and the worker of
``bench.floor_tasks``.

Data: PostgreSQL and Redis when ``DATABASE_URL`` / ``REDIS_URL`` are given, else SQLite
and an embedded redis-server. The database is always a fresh one for the run (a new
database on the given server, dropped afterwards; or a new SQLite file). The benchmark
purges the queues of the Redis it runs on, so give it one no one else is using.

The system runs with ``DEBUG`` off, as in production (query logging off, real settings),
on loopback only.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent

PHONE_NUMBER_ID = "109876543210123"
DISPLAY_PHONE_NUMBER = "15550109999"
ACCESS_TOKEN = "bench-access-token"
APP_SECRET = "bench-app-secret"
VERIFY_TOKEN = "bench-verify-token"
WEBHOOK_PATH = "/webhooks/meta/"
FLOOR_OK_PATH = "/bench/floor/ok/"  # served by the floor's own gunicorn (bench/floor_web.py)
FLOOR_CHAIN_PATH = "/bench/floor/chain/"
PROJECT_QUEUES = ("celery", "football_data")
FLOOR_QUEUE = "bench_floor"
# kombu's per-priority lists: the project's transport uses sep ":", the floor's plain one kombu's default
REDIS_PRIORITY_SUFFIXES = ("", ":3", ":6", ":9", "\x06\x163", "\x06\x166", "\x06\x169")


class StackError(RuntimeError):
    """The system could not be started for the benchmark; the message says which part."""


@dataclass(frozen=True)
class StackOptions:
    workdir: Path  # logs and the SQLite file
    database_url: str | None = None  # a server to create the fresh database on
    redis_url: str | None = None
    multipart_gap_seconds: float = 2.0
    # Status webhooks (sent/delivered/read) the fake posts back for every message, for the
    # scenarios that do not set their own (the reply ladder always has them, cost posts
    # them itself): --graph-statuses sent,delivered,read.
    graph_statuses: tuple[str, ...] = ()
    ready_timeout: float = 90.0


@dataclass
class Service:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Stack:
    """The running system. ``start()`` brings it up; ``stop()`` leaves nothing behind."""

    options: StackOptions
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    web_url: str = ""
    floor_url: str = ""  # the floor's bare Django (bench/floor_web.py) on its own gunicorn
    graph_url: str = ""
    database_label: str = ""
    nodes: dict[str, str] = field(default_factory=dict)  # service -> celery node name
    _drop_database: Callable[[], None] | None = None
    _redis: Any = None
    _notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ start / stop

    def start(self, on_step: Callable[[str], None] = lambda _s: None) -> Stack:
        from devtools.devstack import free_port
        from whatsappcrm_backend.embedded_redis import ensure_redis_url

        self.options.workdir.mkdir(parents=True, exist_ok=True)
        web_port, graph_port, floor_port = free_port(), free_port(), free_port()
        self.web_url = f"http://127.0.0.1:{web_port}"
        self.floor_url = f"http://127.0.0.1:{floor_port}"
        self.graph_url = f"http://127.0.0.1:{graph_port}"
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
        on_step("redis")
        if self.options.redis_url:
            env["REDIS_URL"] = self.options.redis_url
        else:
            env.pop("REDIS_URL", None)
            ensure_redis_url(env)  # embedded; stopped when this process exits
        on_step("database")
        env["DATABASE_URL"] = self._fresh_database(self.options.database_url)
        env.update({
            "DJANGO_SETTINGS_MODULE": "whatsappcrm_backend.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "METRICS_TOKEN": secrets.token_urlsafe(24),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_HSTS_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "META_GRAPH_API_URL": self.graph_url,
            "META_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "META_DISPLAY_PHONE_NUMBER": DISPLAY_PHONE_NUMBER,
            "META_ACCESS_TOKEN": ACCESS_TOKEN,
            "META_APP_SECRET": APP_SECRET,
            "META_VERIFY_TOKEN": VERIFY_TOKEN,
            "MULTIPART_GAP_SECONDS": str(self.options.multipart_gap_seconds),
            "BENCH_GRAPH_URL": self.graph_url,
            "BENCH_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "BENCH_ACCESS_TOKEN": ACCESS_TOKEN,
        })
        self.env = env
        try:
            on_step("migrate")
            self._manage(["migrate", "--noinput", "-v", "0"])
            on_step("seed")
            try:
                self._manage(["devstack_seed"], extra={"DEBUG": "1"})
            except StackError as exc:  # an app's seeder mid-development: the runner reports what is missing
                self._notes.append(f"devstack_seed failed: {str(exc)[-300:]}")
            on_step("processes")
            self._start_processes(web_port, graph_port, floor_port)
            on_step("django")
            self._setup_django()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_processes(self, web_port: int, graph_port: int, floor_port: int) -> None:
        from whatsappcrm_backend.routing_check import compose_command

        fake = [sys.executable, "-m", "devtools.servers", "graph", "--host", "127.0.0.1", "--port", str(graph_port),
                "--access-token", ACCESS_TOKEN, "--max-records", "50000",
                "--webhook-url", f"{self.web_url}{WEBHOOK_PATH}", "--app-secret", APP_SECRET,
                "--statuses", ",".join(self.options.graph_statuses)]
        self._spawn("fake_graph", fake)
        web_argv = gunicorn_argv(compose_command("web"), f"127.0.0.1:{web_port}")
        self._spawn("web", web_argv)
        self._spawn("floor_web", floor_web_argv(web_argv, f"127.0.0.1:{floor_port}"),
                    extra={"DJANGO_SETTINGS_MODULE": "bench.floor_web"})
        io_argv = compose_command("celery_io_worker")
        for service, argv in (
            ("celery_io_worker", io_argv),
            ("celery_cpu_worker", compose_command("celery_cpu_worker")),
            ("celery_beat", compose_command("celery_beat")),
            ("floor_worker", floor_worker_argv(io_argv)),
        ):
            short = service.replace("celery_", "").replace("_worker", "")
            if "worker" in argv:
                node = f"{short}-bench-{os.getpid()}"
                argv = set_option(argv, "-n", f"{node}@%h")
                self.nodes[service] = f"{node}@{os.uname().nodename}"
            extra = {"DJANGO_SETTINGS_MODULE": ""} if service == "floor_worker" else None
            self._spawn(service, argv, extra=extra)
        deadline = time.monotonic() + self.options.ready_timeout
        self._wait(deadline, "fake_graph", lambda: _http_ok(f"{self.graph_url}/_fake/health"))
        self._wait(deadline, "web", lambda: _http_ok(f"{self.web_url}/healthz"))
        self._wait(deadline, "floor_web", lambda: _http_ok(f"{self.floor_url}{FLOOR_OK_PATH}"))
        for service in ("celery_io_worker", "celery_cpu_worker", "floor_worker"):
            self._wait(deadline, service, lambda s=service: " ready." in self.services[s].log())

    def _spawn(self, name: str, argv: list[str], extra: Mapping[str, str] | None = None) -> Service:
        from whatsappcrm_backend.embedded_redis import _die_with_parent

        if argv[0] == "celery":
            argv = [sys.executable, "-m", "celery", *argv[1:]]
        env = dict(self.env)
        for key, value in (extra or {}).items():
            if value:
                env[key] = value
            else:
                env.pop(key, None)
        log_path = self.options.workdir / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True, preexec_fn=_die_with_parent)
        service = Service(name, argv, process, log_path)
        self.services[name] = service
        return service

    def _wait(self, deadline: float, name: str, ready: Callable[[], bool]) -> None:
        service = self.services[name]
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise StackError(f"{name} exited with {service.process.returncode}:\n{service.log()[-3000:]}")
            if ready():
                return
            time.sleep(0.1)
        raise StackError(f"{name} not ready after {self.options.ready_timeout:.0f}s:\n{service.log()[-3000:]}")

    def _manage(self, args: list[str], extra: Mapping[str, str] | None = None) -> None:
        env = {**self.env, **(extra or {})}
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)
        if done.returncode != 0:
            raise StackError(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")

    def _fresh_database(self, given: str | None) -> str:
        stamp = f"bench_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"
        if not given or given.startswith("sqlite"):
            path = self.options.workdir / f"{stamp}.sqlite3"
            self.database_label = "SQLite (fresh file)"
            return f"sqlite:///{path}"
        parts = urlsplit(given)
        if not parts.scheme.startswith("postgres"):
            raise StackError(f"DATABASE_URL: the benchmark supports PostgreSQL or SQLite, got {parts.scheme!r}")
        import psycopg

        admin_url = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{stamp}"')
            version = conn.execute("SHOW server_version").fetchone()[0]

        def drop() -> None:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{stamp}" WITH (FORCE)')

        self._drop_database = drop
        self.database_label = f"PostgreSQL {version} (fresh database {stamp}, dropped after the run)"
        return urlunsplit(parts._replace(path=f"/{stamp}"))

    def _setup_django(self) -> None:
        """Configure Django in this process on the bench database, and the business number."""
        os.environ.update(self.env)
        import django

        django.setup()
        from meta_integration.models import MetaAppConfig

        MetaAppConfig.objects.update_or_create(
            phone_number_id=PHONE_NUMBER_ID,
            defaults={
                "name": "Benchmark number",
                "display_phone_number": DISPLAY_PHONE_NUMBER,
                "access_token": ACCESS_TOKEN,
                "app_secret": APP_SECRET,
                "verify_token": VERIFY_TOKEN,
                "graph_api_url": self.graph_url,
                "is_active": True,
            },
        )

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            if service.process.poll() is None:
                _signal_group(service.process.pid, signal.SIGTERM)
                _signal_group(service.process.pid, signal.SIGCONT)  # one paused by pause() must see it
        deadline = time.monotonic() + 20
        for service in self.services.values():
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(service.process.pid, signal.SIGKILL)
            service.process.wait()
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        if self._drop_database is not None:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: BLE001 - Django may never have been set up
                pass
            self._drop_database()
            self._drop_database = None

    @property
    def notes(self) -> list[str]:
        return list(self._notes)

    # ------------------------------------------------------------------ helpers for scenarios

    @property
    def redis(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.env["REDIS_URL"])
        return self._redis

    def queue_depth(self, queue: str) -> int:
        """Messages waiting in ``queue`` over all priority levels (not counting unacked ones)."""
        pipe = self.redis.pipeline()
        for suffix in REDIS_PRIORITY_SUFFIXES:
            pipe.llen(f"{queue}{suffix}")
        return sum(pipe.execute())

    def unacked(self) -> int:
        return int(self.redis.hlen("unacked"))

    def purge(self, queues: Iterable[str]) -> int:
        """Drop waiting messages (all priorities) from ``queues``; returns how many."""
        dropped = 0
        for queue in queues:
            for suffix in REDIS_PRIORITY_SUFFIXES:
                key = f"{queue}{suffix}"
                dropped += int(self.redis.llen(key))
                self.redis.delete(key)
        return dropped

    def wait_idle(self, timeout: float, quiet: float = 1.0) -> bool:
        """Wait until no task waits, none finishes and the fake Graph API gets nothing for ``quiet`` s.

        Tasks a worker holds until their countdown (retry backoff, multipart gaps) stay in
        Redis' unacked set for as long as that is; they are not work in progress, so only a
        change in that set counts as activity, not its size.
        """
        deadline = time.monotonic() + timeout
        last: tuple[int, int] = (-1, -1)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            waiting = any(self.queue_depth(q) for q in (*PROJECT_QUEUES, FLOOR_QUEUE))
            state = (self.unacked(), self.fake_last_seq())
            if waiting or state != last:
                last, quiet_since = state, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet:
                return True
            time.sleep(0.2)
        return False

    def wait_web_drained(self, timeout: float, fast: float = 0.2) -> bool:
        """Wait until gunicorn answers /healthz promptly three times in a row.

        Requests a load generator gave up on are still in gunicorn's queue and still run;
        until they have, the next measurement would compete with them.
        """
        import httpx

        deadline, streak = time.monotonic() + timeout, 0
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline and streak < 3:
                started = time.monotonic()
                try:
                    ok = client.get(f"{self.web_url}/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                streak = streak + 1 if ok and time.monotonic() - started < fast else 0
                time.sleep(0.2)
        return streak >= 3

    def consumer(self, service: str, queue: str, active: bool) -> None:
        """Stop or resume a worker's consumption of ``queue`` (remote control, no restart)."""
        if service == "floor_worker":  # the floor's own app: its own transport
            from bench.floor_tasks import app
        else:
            from whatsappcrm_backend.celery import app

        node = self.nodes[service]
        if active:
            replies = app.control.add_consumer(queue, destination=[node], reply=True, timeout=10)
        else:
            replies = app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=10)
        if not replies:
            raise StackError(f"{service} ({node}) did not answer the {'add' if active else 'cancel'}_consumer call")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU (user + system) used so far by each service's processes (its process group), from /proc."""
        groups = {service.process.pid: name for name, service in self.services.items()}
        out = dict.fromkeys(self.services, 0.0)
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            name = groups.get(int(fields[2]))
            if name:
                out[name] += (int(fields[11]) + int(fields[12])) / tick
        return out

    def pause(self, service: str, paused: bool) -> None:
        """Stop (SIGSTOP) or resume (SIGCONT) one of the system's processes, e.g. Beat while costs are measured."""
        _signal_group(self.services[service].process.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    # ------------------------------------------------------------------ the fake Graph API

    def _fake_get(self, client: Any, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET a control endpoint of the fake, patient with a fake busy answering the load."""
        import httpx

        for attempt in range(3):
            try:
                response = client.get(f"{self.graph_url}{path}", params=params)
                response.raise_for_status()
                return response.json()
            except httpx.TimeoutException:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def fake_last_seq(self) -> int:
        import httpx

        with httpx.Client(timeout=30) as client:
            return int(self._fake_get(client, "/_fake/health")["last_seq"])

    def fake_requests(self, since: int = 0, limit: int = 2000) -> list[dict[str, Any]]:
        """Every request the fake recorded after ``since``, oldest first (paged)."""
        import httpx

        out: list[dict[str, Any]] = []
        with httpx.Client(timeout=30) as client:
            while True:
                data = self._fake_get(client, "/_fake/requests", {"since": since, "limit": limit})
                batch = data["requests"]
                out.extend(batch)
                if len(batch) < limit:
                    return out
                since = batch[-1]["seq"]

    def fake_messages(self, since: int = 0) -> list[dict[str, Any]]:
        """Accepted message sends (not read receipts) recorded after ``since``."""
        return [r for r in self.fake_requests(since) if r["kind"] == "message" and r["http_status"] == 200]

    def url_for(self, path: str) -> str:
        """Floor paths live on the floor's gunicorn, everything else on the project's."""
        return f"{self.floor_url if path.startswith('/bench/floor/') else self.web_url}{path}"

    def set_graph_statuses(self, statuses: Iterable[str], url: str | None = None) -> None:
        """Which status webhooks the fake posts back per accepted message, and where (default: the webhook)."""
        import httpx

        httpx.post(f"{self.graph_url}/_fake/config", json={
            "statuses": list(statuses), "webhook_url": url or f"{self.web_url}{WEBHOOK_PATH}",
        }, timeout=10).raise_for_status()

    def set_graph_latency(self, ms: int, jitter_ms: int = 0) -> None:
        import httpx

        httpx.post(f"{self.graph_url}/_fake/faults", json={"latency_ms": ms, "jitter_ms": jitter_ms},
                   timeout=10).raise_for_status()

    def post_webhook(self, body: Mapping[str, Any], path: str = WEBHOOK_PATH, base: str | None = None) -> int:
        """POST one signed webhook body (outside the load generator, e.g. an availability probe)."""
        import httpx

        from devtools import webhook_payloads

        raw, headers = webhook_payloads.signed_request(body, APP_SECRET)
        return httpx.post(f"{base or self.web_url}{path}", content=raw, headers=headers, timeout=30).status_code

    def describe(self) -> dict[str, Any]:
        """The configuration, for the report."""
        return {
            "database": self.database_label,
            "redis": _redact(self.env.get("REDIS_URL", "")),
            "commands": {name: shlex.join(_short(s.argv)) for name, s in self.services.items()},
            "multipart_gap_seconds": self.options.multipart_gap_seconds,
            "graph_statuses": list(self.options.graph_statuses),
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- pure helpers


def gunicorn_argv(web_command: list[str], bind: str) -> list[str]:
    """The gunicorn part of the compose ``web`` command, bound to ``bind``.

    The compose command is ``sh -c "migrate && collectstatic && gunicorn ..."``; the
    benchmark migrates once itself and keeps gunicorn's options (workers, worker class,
    threads, access log) as they are.
    """
    script = web_command[-1] if web_command[:2] == ["sh", "-c"] else shlex.join(web_command)
    for step in script.split("&&"):
        argv = shlex.split(step)
        if argv and argv[0] == "gunicorn":
            return [sys.executable, "-m", "gunicorn", *set_option(argv[1:], "--bind", bind)]
    raise StackError(f"no gunicorn command in the compose web service: {script!r}")


def floor_worker_argv(io_worker_argv: list[str]) -> list[str]:
    """The I/O worker's compose command (same pool and concurrency) on the floor app and queue."""
    argv = set_option(list(io_worker_argv), "-A", "bench.floor_tasks")
    return set_option(argv, "-Q", FLOOR_QUEUE)


def floor_web_argv(web_argv: list[str], bind: str) -> list[str]:
    """The project's gunicorn command (same workers, worker class, threads) on the floor's bare Django."""
    argv = [("bench.floor_wsgi:application" if a.endswith(".wsgi:application") else a) for a in web_argv]
    if "bench.floor_wsgi:application" not in argv:
        raise StackError(f"no WSGI application in the gunicorn command: {shlex.join(web_argv)!r}")
    return set_option(argv, "--bind", bind)


def set_option(argv: list[str], name: str, value: str) -> list[str]:
    """``argv`` with option ``name`` set to ``value`` (replaced if present, appended if not)."""
    long_names = {"-A": "--app", "-Q": "--queues", "-n": "--hostname"}
    names = {name, long_names.get(name, name)}
    out, index, found = [], 0, False
    while index < len(argv):
        arg = argv[index]
        if arg in names and index + 1 < len(argv):
            out += [arg, value]
            index += 2
            found = True
            continue
        if any(arg.startswith(f"{n}=") for n in names if n.startswith("--")):
            out.append(f"{arg.split('=', 1)[0]}={value}")
            found = True
        else:
            out.append(arg)
        index += 1
    return out if found else [*out, name, value]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{parts.hostname}:{parts.port}"))
    return url


def _short(argv: list[str]) -> list[str]:
    return ["python" if a == sys.executable else a for a in argv]


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
