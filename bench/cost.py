"""Cost per message, stage by stage, measured in one process: ``python -m bench.cost project|floor``.

One exchange per new WhatsApp user: the signed "hi" webhook POST through the real WSGI
handler (middleware included), then every task it published, consumed from the real Redis
broker and run through Celery's worker request machinery (``celery.worker.request.Request``,
so the task signals and Celery's Django fixup run as in a worker), in the order the broker
hands them out (priority, then publish order); tasks those publish are further stages.
Graph API calls go to the fake Graph API (its own process). Finally the three status
webhooks (sent, delivered, read) Meta posts for each reply the fake accepted, echoing its
``biz_opaque_callback_data``, as three more POST stages. Stages are discovered from what is
published, not named here, so the tool follows the project's message path as it changes.

Per stage: CPU of this process (``time.process_time``); CPU of the PostgreSQL backends this
process used (``/proc/<pid>/schedstat`` of the connection's backend pid, read when a stage
starts and ends and just before a connection closes; same machine only); SQL statements
(Django's ``execute_wrapper``, savepoints included); new database connections
(``connection_created``; on PostgreSQL only a backend pid not seen before, so a pooled
connection handed out again is not new); Redis commands and round trips (redis-py
instrumented: a round trip is one call that goes to the socket, a pipeline being one).
Consuming a message costs what the worker's redis transport pays: one BRPOP, the unacked
bookkeeping, the ack.

``floor`` measures the same shape with nothing of the project: the bare Django of
``bench.floor_web`` and the bare Celery chain of ``bench.floor_tasks``.

The caller (``bench/scenarios/cost.py``) stops the workers consuming the queues meanwhile,
pauses Beat and turns the fake's own status webhooks off. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any

STATUSES = ("sent", "delivered", "read")
WEBHOOK_PATH = "/webhooks/meta/"
_TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


@dataclass
class Counters:
    cpu_ms: float = 0.0
    pg_ms: float = 0.0
    statements: int = 0
    connections: int = 0
    redis_commands: int = 0
    redis_round_trips: int = 0
    runs: int = 0

    def add(self, other: Counters) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Meter:
    """Global counters the instrumentation bumps; a stage reads their difference."""

    current: Counters = field(default_factory=Counters)
    pg_pids: dict[int, float] = field(default_factory=dict)  # backend pid -> CPU ns at last reading
    pg_readable: bool = True
    pg_seen: bool = False  # a PostgreSQL backend was read at all (not on SQLite)

    def pg_read(self, pid: int) -> None:
        """Add the backend's CPU since its last reading (since its start for a new one)."""
        now = _proc_cpu_ns(pid)
        if now is None:
            self.pg_readable = False
            return
        self.pg_seen = True
        self.current.pg_ms += (now - self.pg_pids.get(pid, 0.0)) / 1e6
        self.pg_pids[pid] = now


METER = Meter()


def _proc_cpu_ns(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * _TICK_NS
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- instrumentation


def instrument_redis() -> None:
    import redis.client

    plain = redis.client.Redis.execute_command
    immediate = redis.client.Pipeline.immediate_execute_command
    execute = redis.client.Pipeline.execute

    def execute_command(self, *args, **options):
        METER.current.redis_commands += 1
        METER.current.redis_round_trips += 1
        return plain(self, *args, **options)

    def immediate_execute_command(self, *args, **options):
        METER.current.redis_commands += 1
        METER.current.redis_round_trips += 1
        return immediate(self, *args, **options)

    def pipeline_execute(self, *args, **kwargs):
        if self.command_stack:
            METER.current.redis_commands += len(self.command_stack)
            METER.current.redis_round_trips += 1
        return execute(self, *args, **kwargs)

    redis.client.Redis.execute_command = execute_command
    redis.client.Pipeline.immediate_execute_command = immediate_execute_command
    redis.client.Pipeline.execute = pipeline_execute


def instrument_django() -> None:
    """Count statements and new connections; read a PostgreSQL backend's CPU before it goes."""
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created

    def count(execute, sql, params, many, context):
        METER.current.statements += 1
        return execute(sql, params, many, context)

    def on_created(sender, connection, **kwargs):
        # Django signals every connect, also one served by a connection pool: on PostgreSQL
        # only a backend not seen before is a new connection (counted from its start).
        pid = _backend_pid(connection)
        if pid is None or pid not in METER.pg_pids:
            METER.current.connections += 1
        if pid is not None and pid not in METER.pg_pids:
            METER.pg_pids[pid] = 0.0

    connection_created.connect(on_created, weak=False)
    for alias in connections:
        connections[alias].execute_wrappers.append(count)

    for cls in {type(connections[alias]) for alias in connections} | {BaseDatabaseWrapper}:
        _read_before_close(cls)


def _read_before_close(cls: type) -> None:
    """Wrap ``cls._close`` (the PostgreSQL backend overrides the base one) to read the backend's CPU first."""
    original = cls.__dict__.get("_close")
    if original is None:
        return

    def _close(self):
        pid = _backend_pid(self)
        if pid:
            METER.pg_read(pid)
        return original(self)

    cls._close = _close


def _backend_pid(wrapper: Any) -> int | None:
    raw = getattr(wrapper, "connection", None)
    info = getattr(raw, "info", None)
    pid = getattr(info, "backend_pid", None)
    return pid if isinstance(pid, int) and pid > 0 else None


def _live_backend_pids() -> list[int]:
    from django.db import connections

    return [pid for alias in connections if (pid := _backend_pid(connections[alias]))]


@contextmanager
def stage(into: Counters, use_db: bool) -> Iterator[None]:
    """Measure the block: CPU here, backend CPU, and the counters' growth, added to ``into``."""
    if use_db:
        for pid in _live_backend_pids():
            METER.pg_read(pid)
    before = Counters(**asdict(METER.current))
    started = time.process_time()
    try:
        yield
    finally:
        cpu = time.process_time() - started
        if use_db:
            for pid in _live_backend_pids():
                METER.pg_read(pid)
        after = METER.current
        into.cpu_ms += cpu * 1000
        into.pg_ms += after.pg_ms - before.pg_ms
        into.statements += after.statements - before.statements
        into.connections += after.connections - before.connections
        into.redis_commands += after.redis_commands - before.redis_commands
        into.redis_round_trips += after.redis_round_trips - before.redis_round_trips
        into.runs += 1


# --------------------------------------------------------------------------- driving one exchange


@dataclass
class Published:
    task: str
    task_id: str
    queue: str


class Exchange:
    """Runs exchanges for one app (project or floor) and accumulates per-stage counters."""

    def __init__(self, mode: str, graph_url: str, app_secret: str, phone_number_id: str,
                 display_phone_number: str, queues: dict[str, str]):
        self.mode = mode
        self.graph_url = graph_url.rstrip("/")
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self.display_phone_number = display_phone_number
        self.published: list[Published] = []
        self.stages: dict[str, Counters] = {}
        self.order: list[str] = []
        self.notes: list[str] = []
        self.use_db = mode == "project"
        if mode == "project":
            import django

            django.setup()
            from whatsappcrm_backend.celery import app
            from whatsappcrm_backend.wsgi import application

            self.app, self.wsgi = app, application
            app.loader.import_default_modules()  # what a worker's start does: autodiscover the tasks
            # ... and Django's worker fixup (connections closed around every task), as for the gevent worker
            worker = SimpleNamespace(app=app, pool_cls="celery.concurrency.gevent:TaskPool")
            for fixup in getattr(app, "_fixups", []):
                if hasattr(fixup, "on_worker_init"):
                    fixup.on_worker_init(sender=worker)
            instrument_django()
            self.path = WEBHOOK_PATH
            self.status_path = WEBHOOK_PATH
        else:
            from bench import floor_tasks
            from bench.floor_wsgi import application

            self.app, self.wsgi = floor_tasks.app, application
            self.path = "/bench/floor/chain/"
            self.status_path = "/bench/floor/ok/"
        instrument_redis()
        from celery import signals

        signals.after_task_publish.connect(self._on_publish, weak=False)
        self.connection = self.app.connection_for_read()
        self.channel = self.connection.default_channel
        self.queues = queues

    def _on_publish(self, sender=None, headers=None, routing_key=None, **kwargs):
        headers = headers or {}
        self.published.append(Published(headers.get("task", str(sender)), headers.get("id", ""),
                                        self.queues.get(routing_key or "", routing_key or "celery")))

    def _counters(self, name: str) -> Counters:
        if name not in self.stages:
            self.stages[name] = Counters()
            self.order.append(name)
        return self.stages[name]

    def post(self, path: str, raw: bytes, signature: str, into: Counters) -> int:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(raw)),
            "HTTP_X_HUB_SIGNATURE_256": signature, "HTTP_USER_AGENT": "facebookexternalua",
            "wsgi.input": io.BytesIO(raw), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http", "wsgi.multithread": True, "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        status: list[str] = []
        with stage(into, self.use_db):
            response = self.wsgi(environ, lambda s, h, exc_info=None: status.append(s))
            try:
                for _chunk in response:
                    pass
            finally:
                if hasattr(response, "close"):
                    response.close()  # request_finished: what gunicorn does after the last byte
        return int(status[0].split()[0])

    def consume(self, pending: dict[str, Published]) -> tuple[str, Counters]:
        """BRPOP the next of ``pending`` the way the worker's transport does, run it, ack it.

        The broker hands out by priority, not in publish order, as it would to the worker.
        """
        from celery.worker.request import Request
        from kombu.utils.json import loads

        channel = self.channel
        queues = list(dict.fromkeys(p.queue for p in pending.values()))
        keys = [channel._q_for_pri(queue, pri) for pri in channel.priority_steps for queue in queues]
        into = Counters()
        with stage(into, self.use_db):
            item = channel.client.brpop(keys, timeout=10)
            if item is None:
                raise RuntimeError(f"{[p.task for p in pending.values()]} never reached {queues}")
            message = channel.Message(loads(item[1]), channel=channel)
            found = pending.pop(message.headers.get("id"), None)
            if found is None:
                raise RuntimeError(f"expected one of {[p.task for p in pending.values()]} on {queues}, got "
                                   f"{message.headers.get('task')} {message.headers.get('id')} (is a worker or "
                                   "Beat still publishing there?)")
            channel.qos.append(message, message.delivery_tag)
            task = self.app.tasks[found.task]
            request = Request(message, app=self.app, task=task, hostname="bench-cost@localhost",
                              on_ack=lambda *_a: message.ack(),
                              on_reject=lambda _log, _errors, requeue: message.reject(requeue=requeue))
            request.execute()
        return found.task, into

    def drain(self, counters: Callable[[str], Counters], prefix: str = "") -> None:
        """Run everything published so far, and what that publishes, each a stage named after its task."""
        pending = {p.task_id: p for p in self.published}
        self.published.clear()
        seen: dict[str, int] = {}
        runs = 0
        while pending:
            name, measured = self.consume(pending)
            for item in self.published:
                pending[item.task_id] = item
            self.published.clear()
            seen[name] = seen.get(name, 0) + 1
            label = prefix + (name if seen[name] == 1 else f"{name} (run {seen[name]})")
            counters(label).add(measured)
            runs += 1
            if runs > 50:
                raise RuntimeError(f"more than 50 tasks for one message: {sorted(seen)}")

    def run(self, wa_id: str, measured: bool) -> None:
        from devtools import webhook_payloads  # test-data builder, also used for the floor's bodies

        scratch: dict[str, Counters] = {}

        def counters(name: str) -> Counters:
            if measured:
                return self._counters(name)
            return scratch.setdefault(name, Counters())

        body = webhook_payloads.webhook_body([webhook_payloads.text("hi", wa_id=wa_id)],
                                             phone_number_id=self.phone_number_id,
                                             display_phone_number=self.display_phone_number)
        raw, headers = webhook_payloads.signed_request(body, self.app_secret)
        since = _fake_last_seq(self.graph_url)
        self.published.clear()
        label = "webhook POST" if self.mode == "project" else "bare view + publish"
        status = self.post(self.path, raw, headers["X-Hub-Signature-256"], counters(label))
        if status != 200:
            raise RuntimeError(f"POST {self.path} answered {status}")
        self.drain(counters)
        replies = [r for r in _fake_requests(self.graph_url, since, wa_id) if r["kind"] == "message" and r["ok"]]
        if not replies:
            raise RuntimeError(f"no reply reached the fake Graph API for {wa_id}")
        for state in STATUSES:
            statuses = [
                webhook_payloads.status(r["wamid"], state, wa_id,
                                        biz_opaque_callback_data=(r["body"] or {}).get("biz_opaque_callback_data"))
                for r in replies
            ]
            for one in statuses:
                body = webhook_payloads.webhook_body(statuses=[one], phone_number_id=self.phone_number_id,
                                                     display_phone_number=self.display_phone_number)
                raw, headers = webhook_payloads.signed_request(body, self.app_secret)
                self.published.clear()
                label = f"status webhook: {state}" if self.mode == "project" else f"bare view ({state})"
                status = self.post(self.status_path, raw, headers["X-Hub-Signature-256"], counters(label))
                if status != 200:
                    raise RuntimeError(f"POST {self.status_path} ({state}) answered {status}")
                self.drain(counters, prefix=f"{label} -> ")  # a status that triggers work pays for it too


_fake_client: Any = None


def _fake() -> Any:
    """One client for the harness's own questions to the fake. ``httpx.get`` built a client
    (an SSL context) per call; its cyclic garbage was collected inside whichever measured
    stage came next, adding milliseconds to the project's and the floor's figures alike."""
    global _fake_client
    if _fake_client is None:
        import httpx

        _fake_client = httpx.Client(timeout=30)
    return _fake_client


def _fake_last_seq(graph_url: str) -> int:
    return int(_fake().get(f"{graph_url}/_fake/health").json()["last_seq"])


def _fake_requests(graph_url: str, since: int, to: str) -> list[dict[str, Any]]:
    data = _fake().get(f"{graph_url}/_fake/requests", params={"since": since, "to": to}).json()
    return [dict(r, ok=r["http_status"] == 200) for r in data["requests"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("project", "floor"))
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--wa-base", type=int, required=True)
    parser.add_argument("--graph-url", required=True)
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--phone-number-id", required=True)
    parser.add_argument("--display-phone-number", required=True)
    parser.add_argument("--queue", action="append", default=[], help="routing key=queue (default: same name)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.warmup < 0:
        parser.error("--users must be >= 1 and --warmup >= 0")
    queues = dict(q.split("=", 1) for q in args.queue)
    exchange = Exchange(args.mode, args.graph_url, args.app_secret, args.phone_number_id,
                        args.display_phone_number, queues)
    for index in range(args.warmup + args.users):
        measured = index >= args.warmup
        exchange.run(str(args.wa_base + index), measured)
        if measured and (index - args.warmup) % 20 == 0:
            print(f"progress {index - args.warmup}/{args.users}", file=sys.stderr, flush=True)
    stages = [{"stage": name, **asdict(exchange.stages[name])} for name in exchange.order]
    json.dump({"mode": args.mode, "users": args.users, "stages": stages,
               "pg_readable": METER.pg_readable and METER.pg_seen, "notes": exchange.notes}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
