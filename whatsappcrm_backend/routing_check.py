"""The routing check: does every task reach a queue that a fitting worker consumes?

``find_problems`` is pure: it takes the registered tasks, the topology table and the
workers parsed from docker-compose.yml and returns every problem it sees. The Django
system check (``checks.py``) and ``manage.py check_celery_routing`` feed it the real
project; the tests feed it broken configurations.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from whatsappcrm_backend import topology
from whatsappcrm_backend.topology import FITTING_POOLS, BeatEntry, Pool, QueueSpec, TaskRoute, Workload

PROJECT_PACKAGES = frozenset(
    {"whatsappcrm_backend", "conversations", "flows", "meta_integration", "football_data_app"}
)
MIN_IO_CONCURRENCY = 20


@dataclass(frozen=True)
class Problem:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class WorkerSpec:
    """A ``celery worker`` command as written in a compose service."""

    service: str
    app: str | None
    pool: Pool | str  # a str when the pool name is not one Celery knows
    pool_given: bool
    concurrency: int | None
    queues: tuple[str, ...]
    max_tasks_per_child: int | None
    command: tuple[str, ...]


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Compose's ``${VAR:-default}``, so commands read as compose would run them."""
    return _INTERPOLATION.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), text)


def _command_argv(command: Any, environ: Mapping[str, str]) -> list[str]:
    if isinstance(command, str):
        return shlex.split(_interpolate(command, environ))
    if isinstance(command, list):
        return [_interpolate(str(part), environ) for part in command]
    return []


def _option(argv: Sequence[str], *names: str) -> str | None:
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
            if not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                return arg[len(name):]  # -Qcelery, -P gevent written as -Pgevent
    return None


def celery_subcommand(argv: Sequence[str]) -> str | None:
    """'worker', 'beat', 'flower'... for a celery command line, None for anything else."""
    if "celery" not in [Path(a).name for a in argv]:
        return None
    start = [Path(a).name for a in argv].index("celery")
    rest = argv[start + 1:]
    skip = False
    for arg in rest:
        if skip:
            skip = False
            continue
        if arg in {"-A", "--app", "-b", "--broker", "--workdir", "--config"}:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


def parse_worker(service: str, command: Any, environ: Mapping[str, str] | None = None) -> WorkerSpec | None:
    argv = _command_argv(command, environ if environ is not None else {})
    if celery_subcommand(argv) != "worker":
        return None
    pool_raw = _option(argv, "--pool", "-P")
    try:
        pool: Pool | str = Pool(pool_raw) if pool_raw else Pool.PREFORK
    except ValueError:
        pool = pool_raw or ""
    queues_raw = _option(argv, "--queues", "-Q")
    concurrency_raw = _option(argv, "--concurrency", "-c")
    max_tasks_raw = _option(argv, "--max-tasks-per-child")
    return WorkerSpec(
        service=service,
        app=_option(argv, "--app", "-A"),
        pool=pool,
        pool_given=pool_raw is not None,
        concurrency=int(concurrency_raw) if concurrency_raw and concurrency_raw.isdigit() else None,
        queues=tuple(q for q in (queues_raw or "").split(",") if q),
        max_tasks_per_child=int(max_tasks_raw) if max_tasks_raw and max_tasks_raw.isdigit() else None,
        command=tuple(argv),
    )


def celery_services(compose: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Every compose service whose command runs celery, with its argv."""
    services = compose.get("services") or {}
    found = {}
    for name, service in services.items():
        argv = _command_argv((service or {}).get("command"), environ or {})
        if celery_subcommand(argv):
            found[name] = argv
    return found


def workers_from_compose(compose: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[WorkerSpec]:
    services = compose.get("services") or {}
    workers = []
    for name, service in services.items():
        worker = parse_worker(name, (service or {}).get("command"), environ)
        if worker is not None:
            workers.append(worker)
    return workers


def load_compose(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a compose file (no mapping at the top level)")
    return data


def compose_command(service: str, compose_path: str | os.PathLike[str] | None = None) -> list[str]:
    """The argv of a compose service's command, as compose would run it (the launcher and tests use it)."""
    path = compose_path or Path(__file__).resolve().parent.parent / "docker-compose.yml"
    command = (load_compose(path)["services"][service] or {}).get("command")
    return _command_argv(command, dict(os.environ))


def _matches(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def find_problems(
    *,
    registered: Mapping[str, str],
    tasks: Mapping[str, TaskRoute] = topology.TASKS,
    fallback_routes: Mapping[str, str] = topology.FALLBACK_ROUTES,
    queues: Mapping[str, QueueSpec] = topology.QUEUES,
    workers: Sequence[WorkerSpec],
    celery_commands: Mapping[str, Sequence[str]] | None = None,
    beat: Mapping[str, BeatEntry] = topology.BEAT_SCHEDULE,
    visibility_timeout: timedelta = topology.VISIBILITY_TIMEOUT,
    longest_countdown: timedelta = topology.LONGEST_COUNTDOWN,
    project_packages: Iterable[str] = PROJECT_PACKAGES,
) -> list[Problem]:
    """Every way a task could be sent where no fitting worker will ever run it.

    ``registered`` maps each registered task name to the module that defines it; only
    tasks defined in the project's packages must be routed (Celery's own are not).
    """
    problems: list[Problem] = []
    packages = set(project_packages)
    project_tasks = sorted(name for name, module in registered.items() if module.split(".")[0] in packages)

    for name in project_tasks:
        if name not in tasks:
            problems.append(Problem(
                "routing.E001",
                f"task {name!r} has no explicit route: add it to TASKS in whatsappcrm_backend/topology.py",
            ))
    for name, route in sorted(tasks.items()):
        if name not in registered:
            problems.append(Problem(
                "routing.E002",
                f"route for {name!r} matches no registered task (renamed or removed?)",
            ))
        if route.queue not in queues:
            problems.append(Problem(
                "routing.E004",
                f"task {name!r} is routed to unknown queue {route.queue!r} (known: {', '.join(queues)})",
            ))
        if not isinstance(route.priority, topology.Priority):
            problems.append(Problem(
                "routing.E013", f"task {name!r} has priority {route.priority!r}, not a named Priority"
            ))
    for pattern, queue in sorted(fallback_routes.items()):
        if not any(_matches(pattern, name) for name in registered):
            problems.append(Problem("routing.E003", f"fallback route {pattern!r} matches no registered task"))
        if queue not in queues:
            problems.append(Problem(
                "routing.E004", f"fallback route {pattern!r} points at unknown queue {queue!r}"
            ))

    consumed: dict[str, list[WorkerSpec]] = {}
    for worker in workers:
        if not worker.queues:
            problems.append(Problem(
                "routing.E011",
                f"worker service {worker.service!r} has no -Q: it would consume every queue; name its queue",
            ))
        for queue in worker.queues:
            consumed.setdefault(queue, []).append(worker)
            if queue not in queues:
                problems.append(Problem(
                    "routing.E006",
                    f"worker service {worker.service!r} consumes {queue!r}, which is not a queue in the topology",
                ))
        if worker.pool == Pool.SOLO:
            problems.append(Problem(
                "routing.E007",
                f"worker service {worker.service!r} uses the solo pool: it runs one task at a time whatever "
                f"its --concurrency says",
            ))
        elif not isinstance(worker.pool, Pool):
            problems.append(Problem(
                "routing.E007", f"worker service {worker.service!r} uses unknown pool {worker.pool!r}"
            ))
        for queue in worker.queues:
            spec = queues.get(queue)
            if spec is None or worker.pool == Pool.SOLO or not isinstance(worker.pool, Pool):
                continue
            if worker.pool not in FITTING_POOLS[spec.workload]:
                fitting = "/".join(sorted(p.value for p in FITTING_POOLS[spec.workload]))
                implicit = "" if worker.pool_given else " (no --pool given, so prefork)"
                problems.append(Problem(
                    "routing.E007",
                    f"worker service {worker.service!r} runs {spec.workload.value} queue {queue!r} on the "
                    f"{worker.pool.value} pool{implicit}; it needs {fitting}",
                ))
            if (
                spec.workload == Workload.IO
                and worker.pool in FITTING_POOLS[Workload.IO]
                and (worker.concurrency or 0) < MIN_IO_CONCURRENCY
            ):
                problems.append(Problem(
                    "routing.E012",
                    f"worker service {worker.service!r} consumes I/O queue {queue!r} with concurrency "
                    f"{worker.concurrency}; give it --concurrency={MIN_IO_CONCURRENCY} or more",
                ))
    for queue in queues:
        if queue not in consumed:
            problems.append(Problem(
                "routing.E005",
                f"queue {queue!r} has no consuming worker in docker-compose.yml: its tasks would wait forever",
            ))

    if celery_commands:
        apps = {}
        for service, argv in celery_commands.items():
            apps[service] = _option(argv, "--app", "-A")
        if len(set(apps.values())) > 1:
            listing = ", ".join(f"{s}: {a}" for s, a in sorted(apps.items()))
            problems.append(Problem("routing.E010", f"celery services use different -A app paths ({listing})"))

    for entry_name, entry in sorted(beat.items()):
        if entry.task not in registered:
            problems.append(Problem(
                "routing.E008", f"beat entry {entry_name!r} names unregistered task {entry.task!r}"
            ))
            continue
        route = tasks.get(entry.task)
        if entry.queue is not None and route is not None and entry.queue != route.queue:
            problems.append(Problem(
                "routing.E009",
                f"beat entry {entry_name!r} sends {entry.task!r} to queue {entry.queue!r}, "
                f"but the task's queue is {route.queue!r}",
            ))

    if visibility_timeout <= longest_countdown:
        problems.append(Problem(
            "routing.E014",
            f"broker visibility_timeout ({visibility_timeout}) must exceed the longest countdown "
            f"({longest_countdown}), or Redis redelivers delayed tasks while they wait",
        ))
    return problems


def import_task_modules() -> None:
    """Import every installed app's ``tasks`` module so all tasks are registered.

    Not ``app.loader.import_default_modules()``: Celery's Django fixup runs the system
    checks from that signal, and this check runs inside the system checks.
    """
    import importlib
    import importlib.util

    from django.apps import apps

    for config in apps.get_app_configs():
        module = f"{config.name}.tasks"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def project_problems(compose_path: str | os.PathLike[str] | None = None) -> list[Problem]:
    """Run the check on the real project: the Celery app's registry and docker-compose.yml."""
    from django.conf import settings

    from whatsappcrm_backend.celery import app

    import_task_modules()
    registered = {name: getattr(task, "__module__", "") for name, task in app.tasks.items()}
    path = Path(compose_path) if compose_path else Path(settings.BASE_DIR) / "docker-compose.yml"
    try:
        compose = load_compose(path)
    except (OSError, ValueError) as exc:
        return [Problem("routing.E000", f"cannot read {path}: {exc}")]
    environ = dict(os.environ)
    return find_problems(
        registered=registered,
        workers=workers_from_compose(compose, environ),
        celery_commands=celery_services(compose, environ),
    )
