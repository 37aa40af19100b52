"""Real Celery worker processes for tests, configured exactly as in docker-compose.yml.

The worker command is read from the compose service (pool, concurrency, queues,
max-tasks-per-child, app path); only the node name is made unique, mingle (the
start-up exchange with other workers) is skipped, and the environment points the
worker at the test database and the test broker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

from whatsappcrm_backend.embedded_redis import _die_with_parent
from whatsappcrm_backend.routing_check import compose_command

ROOT = Path(settings.BASE_DIR)


def test_database_url() -> str:
    """A URL for the database the test process is using (the test database, once created)."""
    params = connection.settings_dict
    if params["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or ""
    password = params.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{auth}{params.get('HOST') or '127.0.0.1'}{port}/{params['NAME']}"


def worker_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "whatsappcrm_backend.settings",
        "DEBUG": "1",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
        # The test database is flushed between tests and business numbers are created again
        # under the same ids with other fakes' URLs, which no deployment does within seconds:
        # processes the tests start read a number's row every time instead of caching it.
        "META_CONFIG_CACHE_SECONDS": "0",
    })
    env.update(extra or {})
    return env


@dataclass
class WorkerProcess:
    service: str
    argv: list[str]
    nodename: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def hostname_prefix(self) -> str:
        return self.nodename.split("@", 1)[0]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"worker {self.service} exited with {code}:\n{self.log()[-4000:]}")
            if " ready." in self.log():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.service} not ready after {timeout}s:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """Warm shutdown (SIGTERM to the process group), then kill whatever is left.

        An idle gevent worker takes ~3 s to stop: Celery's green-pool loop checks for the
        shutdown between 2-second broker polls, and polls once more after noticing it.
        """
        return stop_process_group(self.process, timeout=timeout)

    def kill(self) -> int:
        """Stop at once (SIGKILL to the process group): only when nothing it runs matters any more.

        What it had taken from the broker stays unacknowledged there (see ``clear_broker``).
        """
        return stop_process_group(self.process, timeout=0)


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM the process group, wait up to ``timeout``, SIGKILL whatever is left, reap."""
    if process.poll() is None and timeout > 0:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # prefork children, if any linger
    except ProcessLookupError:
        pass
    return process.wait()


def run_django_snippet(code: str, env: Mapping[str, str]) -> None:
    """Run Python code in a fresh process with Django set up (e.g. against another broker)."""
    script = "import django; django.setup()\n" + code
    subprocess.run([sys.executable, "-c", script], env=dict(env), cwd=ROOT, check=True)


def launch_worker(
    service: str,
    *,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
) -> WorkerProcess:
    """Start the compose service's worker command as a local process; do not wait for it."""
    command = list(argv) if argv is not None else compose_command(service)
    if command[0] == "celery":
        command = [sys.executable, "-m", "celery", *command[1:]]
    short = service.replace("celery_", "").replace("_worker", "")
    nodename = f"{short}-{uuid.uuid4().hex[:8]}@%h"
    if "-n" in command:
        command[command.index("-n") + 1] = nodename
    else:
        command += ["-n", nodename]
    if "worker" in command and "--without-mingle" not in command:
        # Mingle spends 1 s of every start asking other workers for revoked task ids; test
        # workers have nothing to learn from each other.
        command.append("--without-mingle")
    log_file = tempfile.NamedTemporaryFile(prefix=f"{short}-", suffix=".log", delete=False)
    full_env = worker_env(env)
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    return WorkerProcess(service, command, nodename, process, Path(log_file.name), full_env)


def start_worker(
    service: str,
    *,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    ready_timeout: float = 60.0,
) -> WorkerProcess:
    """Start the compose service's worker command as a local process and wait until it is ready."""
    return start_workers([launch_worker(service, env=env, argv=argv)], ready_timeout=ready_timeout)[0]


def start_workers(launched: Sequence[WorkerProcess], ready_timeout: float = 60.0) -> list[WorkerProcess]:
    """Wait until every launched worker is ready; stop them all if one is not.

    Launch them all first (``launch_worker``), then wait: a start is mostly imports, so two
    workers started together are ready in about the time of one.
    """
    try:
        for worker in launched:
            worker.wait_ready(ready_timeout)
    except Exception:
        stop_workers(launched)
        raise
    return list(launched)


def stop_workers(workers: Sequence[WorkerProcess], timeout: float = 20.0) -> list[int | None]:
    """Warm-stop several workers at once: SIGTERM to every group first, then wait for each.

    Each idle gevent worker needs ~3 s to notice (see ``WorkerProcess.stop``); signalled
    together they take those seconds once, not once per worker.
    """
    for worker in workers:
        if worker.process.poll() is None:
            try:
                os.killpg(worker.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for worker in workers:
        try:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    # SIGKILL whatever is left of each group (prefork children, a stuck worker) and reap.
    return [stop_process_group(worker.process, timeout=0) for worker in workers]


def queue_keys() -> list[str]:
    """The Redis lists of every project queue, at every priority step."""
    from whatsappcrm_backend import topology

    sep = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("sep", ":")
    return [
        name if step == 0 else f"{name}{sep}{step}"
        for name in topology.QUEUES
        for step in topology.REDIS_PRIORITY_STEPS
    ]


def queues_are_empty(client) -> bool:
    """No message waiting on a project queue (any priority)."""
    pipe = client.pipeline()
    for key in queue_keys():
        pipe.llen(key)
    return not any(pipe.execute())


def broker_is_idle(client) -> bool:
    """No message waiting on a project queue and none taken by a worker but not acknowledged."""
    return queues_are_empty(client) and not client.hlen("unacked")
