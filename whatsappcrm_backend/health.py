"""Liveness, readiness and the Prometheus endpoint.

``/healthz``: the process serves requests. ``/readyz``: the system can do its job - the
database answers, the broker answers, and every queue in the topology has a live
consumer (asked over Celery's remote-control bus, so a worker that is up but not
consuming a queue counts as missing). A reply that cannot be produced because the CPU
worker died shows up here, not hours later as a user complaint.

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

    def as_json(self) -> dict:
        return {
            "status": "ok" if self.ok else "unavailable",
            "checks": {check.name: check.detail for check in self.checks},
            "problems": [check.problem for check in self.checks if not check.ok],
            "seconds": round(self.seconds, 3),
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
                replies = _control().broadcast("active_queues", reply=True, timeout=inspect_timeout, connection=conn)
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
            results.append(CheckResult(f"queue:{queue}", True, "ok (" + ", ".join(nodes) + ")"))
        else:
            results.append(CheckResult(f"queue:{queue}", False, "no live consumer"))
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
