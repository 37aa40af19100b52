"""A worker asked to stop stops within its grace period, even when its broker is gone.

Issue 12: a gevent I/O worker whose Redis had died ignored SIGTERM (its heartbeat
greenlet sat in kombu's reconnect loop holding the event dispatcher's lock, which the
warm shutdown waits for). Each test starts its own redis-server and kills it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from whatsappcrm_backend.embedded_redis import EmbeddedRedis
from whatsappcrm_backend.shutdown import EXIT_CODE

ROOT = Path(__file__).resolve().parent.parent
GRACE = 3.0
# How long the test waits for the exit: the grace period plus the worker's own start of
# shutdown on a loaded 2-core machine. Without the deadline the worker never exits.
WAIT = GRACE + 30


def _wait_for_log(worker, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log():
        assert worker.process.poll() is None, worker.log()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in the worker log:\n{worker.log()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("death", ["killed", "frozen"])
def test_gevent_worker_with_a_dead_broker_stops_within_its_grace_period(death):
    """killed: redis-server stopped (connections refused); frozen: SIGSTOPped, as a host that
    vanished from the network (connections accepted or hanging, never answered).

    Frozen hung the warm shutdown every time before the deadline existed; killed sometimes
    (when the heartbeat was publishing as Redis died). Either way: out within the grace period.
    """
    from celery import current_app

    from tests.support.workers import start_worker
    from whatsappcrm_backend.tasks import probe_io

    with EmbeddedRedis() as server:
        env = {"REDIS_URL": server.url, "CELERY_BROKER_URL": server.url, "WORKER_SHUTDOWN_GRACE_SECONDS": str(GRACE)}
        worker = start_worker("celery_io_worker", env=env)
        try:
            with current_app.connection_for_write(url=server.url) as conn:
                probe_io.apply_async(args=["test:shutdown", "in-flight", 30], connection=conn)
            _wait_for_log(worker, "diagnostics.probe_io[")  # received: a task is running
            if death == "killed":
                server.stop()
            else:
                os.kill(server.process.pid, signal.SIGSTOP)
            time.sleep(3)  # past a heartbeat (every 2 s): it is now publishing to the dead broker

            os.kill(worker.process.pid, signal.SIGTERM)
            try:
                code = worker.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the worker ignored SIGTERM for {WAIT} s:\n{worker.log()[-3000:]}")
        finally:
            worker.stop(timeout=1)
            if death == "frozen":
                os.kill(server.process.pid, signal.SIGCONT)
    deadline_fired = f"shutdown did not finish within WORKER_SHUTDOWN_GRACE_SECONDS={GRACE}" in worker.log()
    if death == "frozen":
        assert code == EXIT_CODE and deadline_fired, worker.log()[-3000:]
    else:  # exited: cleanly or not when it managed a shutdown, with the deadline's code if it fired
        assert code == EXIT_CODE if deadline_fired else code != EXIT_CODE, worker.log()[-3000:]


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_a_healthy_idle_worker_still_shuts_down_cleanly():
    from tests.support.workers import start_worker

    with EmbeddedRedis() as server:
        env = {"REDIS_URL": server.url, "CELERY_BROKER_URL": server.url, "WORKER_SHUTDOWN_GRACE_SECONDS": "60"}
        worker = start_worker("celery_io_worker", env=env)
        try:
            os.kill(worker.process.pid, signal.SIGTERM)
            code = worker.process.wait(timeout=60)
        finally:
            worker.stop(timeout=1)
    assert code == 0, worker.log()[-3000:]
    assert "shutdown did not finish" not in worker.log()


@pytest.mark.parametrize(("value", "message"), [
    ("0", "WORKER_SHUTDOWN_GRACE_SECONDS=0.0 must be a positive number of seconds"),
    ("-5", "WORKER_SHUTDOWN_GRACE_SECONDS=-5.0 must be a positive number of seconds"),
    ("soon", "WORKER_SHUTDOWN_GRACE_SECONDS='soon' is not a number"),
])
def test_a_bad_grace_period_is_refused(value, message):
    env = dict(os.environ, DEBUG="1", WORKER_SHUTDOWN_GRACE_SECONDS=value)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
