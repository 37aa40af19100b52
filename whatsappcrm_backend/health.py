"""Liveness, readiness and the Prometheus endpoint.

``/healthz``: the process serves requests. ``/readyz``: the system can do its job - the
database answers, the broker answers, and every queue in the topology has a live
consumer (asked over Celery's remote-control bus, so a worker that is up but not
consuming a queue counts as missing). A reply that cannot be produced because the CPU
worker died shows up here, not hours later as a user complaint.

Asking the workers is a broadcast whose answers are collected until a quiet second
(``INSPECT_TIMEOUT_SECONDS``): that made every ``/readyz`` take 1.02 s. The probe now
remembers how many workers answered last time and stops collecting as soon as that many
have answered and every queue has a consumer (milliseconds); only when fewer answer, or a
queue is not covered, does it wait for the quiet second, so a missing worker is still
reported on the very next call and nothing is cached. ``"consumer_probe"`` in the answer
says which happened ("fast" or "full").

Readiness never raises and never hangs: the checks run in worker threads against one
deadline, each with its own socket timeouts, and whatever has not answered by the
deadline is reported as such. Results are plain frozen records so the view, a
management command or a test read the same thing.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from celery.app.control import Control
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from whatsappcrm_backend import topology

__all__ = [
    "CheckResult",
    "Readiness",
    "check_broker_and_consumers",
    "check_database",
    "healthz",
    "metrics_view",
    "readiness",
    "readyz",
]

DEADLINE_SECONDS = 2.5
BROKER_TIMEOUT_SECONDS = 1.0
INSPECT_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class CheckResult:
    name: str  # "database", "broker", "queue:<name>"
    ok: bool
    detail: str  # "ok", or why it failed in words an operator can act on
    probe: str = ""  # queue checks: "fast" (every known worker answered at once) or "full" (waited)

    @property
    def problem(self) -> str | None:
        """``"queue football_data: no live consumer"`` - the one-line failure, or None."""
        return None if self.ok else f"{self.name.replace(':', ' ', 1)}: {self.detail}"


@dataclass(frozen=True)
class Readiness:
    checks: tuple[CheckResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def consumer_probe(self) -> str:
        """How the workers were asked: "fast", "full", or "" when they could not be asked."""
        probes = {check.probe for check in self.checks if check.probe}
        return "full" if "full" in probes else probes.pop() if probes else ""

    def as_json(self) -> dict:
        return {
            "status": "ok" if self.ok else "unavailable",
            "checks": {check.name: check.detail for check in self.checks},
            "problems": [check.problem for check in self.checks if not check.ok],
            "seconds": round(self.seconds, 3),
            "consumer_probe": self.consumer_probe,
        }


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def check_database(alias: str = "default") -> CheckResult:
    """``SELECT 1`` on a fresh connection of this thread (closed afterwards)."""
    from django.db import connections

    connection = None
    try:
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return CheckResult("database", True, "ok")
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready", with its reason
        return CheckResult("database", False, _describe(exc))
    finally:
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection can fail too
                connection.close()


_CONTROL: Control | None = None


def _control() -> Control:
    """Celery's remote control, publishing on the connection it is given.

    ``app.control`` publishes broadcasts through the app's producer pool (a connection
    to ``broker_url`` as first configured) even when handed another connection; then the
    question would go to one broker and the answers be awaited on another.
    """
    global _CONTROL
    if _CONTROL is None:
        from whatsappcrm_backend.celery import app

        control = Control(app)
        control.mailbox.producer_pool = None  # -> kombu publishes on the bound connection's channel
        _CONTROL = control
    return _CONTROL


def _consumers_by_queue(replies: Iterable[Mapping[str, list[dict]]] | None) -> dict[str, list[str]]:
    """``[{"io@host": [{"name": "celery", ...}]}, ...]`` (one dict per reply) -> queue -> nodes."""
    consumers: dict[str, list[str]] = {}
    for reply in replies or ():
        for node, queues in reply.items():
            for queue in queues or ():
                consumers.setdefault(queue.get("name", ""), []).append(node)
    return consumers


# broker URL -> how many workers answered the last complete probe (per process; a hint only)
_KNOWN_WORKERS: dict[str, int] = {}
_KNOWN_WORKERS_LOCK = threading.Lock()


def _ask_workers(conn: object, broker_url: str, queues: list[str], inspect_timeout: float) -> tuple[list, str]:
    """``active_queues`` from every worker: ``(replies, "fast" | "full")``.

    "fast": as many workers as last time answered and together they consume every queue, so
    the broadcast stops there instead of waiting ``inspect_timeout`` for stragglers. Fewer
    answers after a quiet ``inspect_timeout`` are the complete answer (a worker is gone).
    Otherwise (a stale answer to an earlier broadcast used up the count, or a queue is
    uncovered because a new worker answered before an old one) the full broadcast runs,
    collecting until the bus has been quiet for ``inspect_timeout``.
    """
    with _KNOWN_WORKERS_LOCK:
        known = _KNOWN_WORKERS.get(broker_url, 0)
    if known:
        started = time.monotonic()
        replies = _control().broadcast("active_queues", reply=True, timeout=inspect_timeout,
                                       connection=conn, limit=known) or []
        consumers = _consumers_by_queue(replies)
        if len(replies) == known and all(consumers.get(queue) for queue in queues):
            return replies, "fast"
        if len(replies) < known and time.monotonic() - started >= inspect_timeout:
            # it stopped on a quiet bus, not on the count: this is everyone (a worker is gone)
            with _KNOWN_WORKERS_LOCK:
                _KNOWN_WORKERS[broker_url] = len(replies)
            return replies, "full"
    replies = _control().broadcast("active_queues", reply=True, timeout=inspect_timeout, connection=conn) or []
    with _KNOWN_WORKERS_LOCK:
        _KNOWN_WORKERS[broker_url] = len(replies)
    return replies, "full"


def check_broker_and_consumers(broker_url: str, queues: Iterable[str], *,
                               timeout: float = BROKER_TIMEOUT_SECONDS,
                               inspect_timeout: float = INSPECT_TIMEOUT_SECONDS) -> list[CheckResult]:
    """Connect to the broker, run one cheap command, then ask every worker which queues it consumes.

    One result for the broker and one per queue. When the broker is down the queue
    results say so instead of claiming "no consumer".
    """
    from whatsappcrm_backend.celery import app

    queues = list(queues)
    options: dict = {"connect_timeout": timeout}
    if topology.broker_family(broker_url) == "redis":
        # The broadcast waits on the reply list for inspect_timeout: the socket must outlast it.
        options["transport_options"] = {"socket_connect_timeout": timeout,
                                        "socket_timeout": timeout + inspect_timeout}
    try:
        with app.connection_for_write(url=broker_url, **options) as conn:
            try:
                conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
                channel = conn.default_channel  # Redis: the channel PINGs the server when created
                if hasattr(channel, "client"):
                    channel.client.ping()
            except Exception as exc:  # noqa: BLE001 - every connection error means "unreachable"
                unreachable = f"not checked: broker unreachable ({type(exc).__name__})"
                return [CheckResult("broker", False, _describe(exc)),
                        *(CheckResult(f"queue:{q}", False, unreachable) for q in queues)]
            results = [CheckResult("broker", True, "ok")]
            try:
                replies, probe = _ask_workers(conn, broker_url, queues, inspect_timeout)
            except Exception as exc:  # noqa: BLE001 - reported as the queues' status
                detail = f"could not ask workers: {_describe(exc)}"
                return results + [CheckResult(f"queue:{q}", False, detail) for q in queues]
    except Exception as exc:  # noqa: BLE001 - e.g. a malformed URL: not ready, say why
        return [CheckResult("broker", False, _describe(exc)),
                *(CheckResult(f"queue:{q}", False, "not checked: broker unusable") for q in queues)]
    consumers = _consumers_by_queue(replies)
    for queue in queues:
        nodes = sorted(consumers.get(queue, ()))
        if nodes:
            results.append(CheckResult(f"queue:{queue}", True, "ok (" + ", ".join(nodes) + ")", probe))
        else:
            results.append(CheckResult(f"queue:{queue}", False, "no live consumer", probe))
    return results


def _run_with_deadline(jobs: Mapping[str, tuple[Callable[[], list[CheckResult]], list[str]]],
                       deadline: float) -> list[CheckResult]:
    """Run each job in a daemon thread; a job still running at the deadline yields a timeout result."""
    outcomes: dict[str, list[CheckResult]] = {}

    def run(key: str, job: Callable[[], list[CheckResult]]) -> None:
        outcomes[key] = job()

    threads = {key: threading.Thread(target=run, args=(key, job), name=f"readyz-{key}", daemon=True)
               for key, (job, _names) in jobs.items()}
    for thread in threads.values():
        thread.start()
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    results: list[CheckResult] = []
    for key, (_job, names) in jobs.items():
        if key in outcomes:
            results.extend(outcomes[key])
        else:
            results.extend(CheckResult(name, False, "no answer before the readiness deadline") for name in names)
    return results


def readiness(*, broker_url: str | None = None, queues: Iterable[str] | None = None,
              deadline_seconds: float = DEADLINE_SECONDS) -> Readiness:
    """Database, broker and one live consumer per topology queue, within ``deadline_seconds``."""
    from django.conf import settings

    started = time.monotonic()
    url = broker_url or settings.CELERY_BROKER_URL
    queue_names = list(queues if queues is not None else topology.QUEUES)
    jobs = {
        "database": (lambda: [check_database()], ["database"]),
        "broker": (lambda: check_broker_and_consumers(url, queue_names),
                   ["broker", *(f"queue:{q}" for q in queue_names)]),
    }
    results = _run_with_deadline(jobs, started + deadline_seconds)
    return Readiness(tuple(results), time.monotonic() - started)


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests (liveness): no dependency is touched."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when ready, 503 with the failed checks and why (compose/k8s readiness probe)."""
    try:
        result = readiness()
    except Exception as exc:  # noqa: BLE001 - the probe itself must answer, whatever broke
        return JsonResponse({"status": "unavailable", "checks": {}, "problems": [f"readyz: {_describe(exc)}"]},
                            status=503)
    return JsonResponse(result.as_json(), status=200 if result.ok else 503)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With ``settings.METRICS_TOKEN`` set, requires ``Authorization: Bearer <token>``."""
    from django.conf import settings

    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return JsonResponse({"error": "metrics need 'Authorization: Bearer <METRICS_TOKEN>'"}, status=401)
        if not hmac.compare_digest(given.removeprefix("Bearer ").encode(), token.encode()):
            return JsonResponse({"error": "wrong metrics token"}, status=403)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


_REGISTRY: CollectorRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def _registry() -> CollectorRegistry:
    """One registry holding only the cluster collector (this web process's own stats would mislead)."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None:
            from whatsappcrm_backend.metrics import ClusterCollector

            registry = CollectorRegistry(auto_describe=False)
            registry.register(ClusterCollector())
            _REGISTRY = registry
    return _REGISTRY
