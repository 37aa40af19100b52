"""PostgreSQL connections come from one pool per process, and a task run opens none.

Celery's Django fixup closes the database connection at every task start and end, and
the gevent worker gives every greenlet its own connection wrapper, so without a pool
each task run opened a new PostgreSQL connection. The settings tests need no database;
the worker test runs only on PostgreSQL (CI runs the suite there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis as redis_lib
from django.conf import settings
from django.db import connection

from tests.support import workers
from whatsappcrm_backend.celery import app

ROOT = Path(__file__).resolve().parent.parent

on_postgresql = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="the connection pool is PostgreSQL's (run with DATABASE_URL=postgres://...)",
)


def database_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh process with ``env`` and print the default database's OPTIONS."""
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "print(repr(settings.DATABASES['default'].get('OPTIONS', {})))\n"
        "print(settings.DB_POOL)\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("DB_") and k != "DATABASE_URL"}
    base |= {"DEBUG": "1", "DJANGO_SETTINGS_MODULE": "whatsappcrm_backend.settings"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base | env, capture_output=True, text=True,
                          timeout=60)


# --- settings ------------------------------------------------------------------------------

def test_postgresql_urls_get_a_pool_sized_from_the_environment():
    result = database_settings({"DATABASE_URL": "postgres://crm:pw@127.0.0.1:5432/crm",
                                "DB_POOL_MIN_SIZE": "3", "DB_POOL_MAX_SIZE": "20", "DB_POOL_TIMEOUT": "2.5"})
    assert result.returncode == 0, result.stderr
    options, enabled = result.stdout.splitlines()
    assert options == "{'pool': {'min_size': 3, 'max_size': 20, 'timeout': 2.5}}"
    assert enabled == "True"

    defaults = database_settings({"DATABASE_URL": "postgres://crm:pw@127.0.0.1:5432/crm"})
    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.splitlines()[0] == "{'pool': {'min_size': 2, 'max_size': 10, 'timeout': 10.0}}"


def test_pool_can_be_switched_off_for_persistent_connections():
    result = database_settings({"DATABASE_URL": "postgres://crm:pw@127.0.0.1:5432/crm", "DB_POOL": "off",
                                "DB_CONN_MAX_AGE": "60"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["{}", "False"]


def test_sqlite_has_no_pool_and_keeps_its_options(tmp_path):
    result = database_settings({"VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    options, enabled = result.stdout.splitlines()
    assert "'pool'" not in options
    assert "'transaction_mode': 'IMMEDIATE'" in options
    assert enabled == "False"


@pytest.mark.parametrize(("env", "message"), [
    ({"DB_POOL_MAX_SIZE": "ten"}, "DB_POOL_MAX_SIZE='ten' is not an integer"),
    ({"DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE >= 1"),
    ({"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "4"}, "need 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE"),
    ({"DB_POOL_MIN_SIZE": "-1"}, "need 0 <= DB_POOL_MIN_SIZE"),
    ({"DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT=0.0 must be a positive number of seconds"),
    ({"DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT='soon' is not a number"),
    ({"DB_POOL": "sometimes"}, "DB_POOL='sometimes' is not a boolean"),
    ({"DB_CONN_MAX_AGE": "60"}, "DB_CONN_MAX_AGE must be 0 (unset) with DB_POOL on"),
])
def test_bad_pool_settings_are_refused_with_the_variable(env, message):
    result = database_settings({"DATABASE_URL": "postgres://crm:pw@127.0.0.1:5432/crm", **env})
    assert result.returncode != 0
    assert message in result.stderr
    assert "ConfigurationError" in result.stderr


# --- the gevent worker on PostgreSQL ---------------------------------------------------------

def _worker_ports(pid: int) -> set[int]:
    """Local ports of the worker's TCP connections to PostgreSQL."""
    port = int(settings.DATABASES["default"].get("PORT") or 5432)
    return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED}


def _backends() -> set[tuple[int, object]]:
    """Every PostgreSQL backend on the test database, as (pid, backend_start)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE datname = current_database()")
        return set(cursor.fetchall())


def _send(count: int) -> None:
    with app.connection_for_write() as conn:
        for _ in range(count):
            app.send_task("flows.expire_sessions", connection=conn)


def _wait_idle(timeout: float = 60.0) -> None:
    client = redis_lib.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        deadline = time.monotonic() + timeout
        while not workers.broker_is_idle(client):
            assert time.monotonic() < deadline, "the worker did not finish the tasks"
            time.sleep(0.05)
    finally:
        client.close()


@on_postgresql
@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_gevent_worker_runs_tasks_on_pooled_connections_and_opens_none(io_worker):
    """Warm the pool to its maximum, then 200 task runs that query open no new connection."""
    from flows.models import ContactFlowState

    pool_max = settings.DB_POOL_MAX_SIZE  # the worker reads the same environment
    concurrency = next(int(arg.split("=", 1)[1]) for arg in io_worker.argv if arg.startswith("--concurrency="))
    assert pool_max < concurrency, "the warm-up below needs more greenlets than pooled connections"

    # Warm-up: hold a lock every expire_sessions query waits for, so each running task keeps
    # its connection and the pool grows to its maximum; release it once the worker holds them.
    table = ContactFlowState._meta.db_table
    locker = psycopg_connect()
    try:
        locker.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        _send(concurrency)
        deadline = time.monotonic() + 30
        while len(_worker_ports(io_worker.process.pid)) < pool_max:
            assert time.monotonic() < deadline, f"pool never reached {pool_max}: {io_worker.log()[-3000:]}"
            time.sleep(0.05)
    finally:
        locker.rollback()
        locker.close()
    _wait_idle()
    ports = _worker_ports(io_worker.process.pid)
    assert len(ports) == pool_max  # never more than the pool's maximum, whatever the concurrency
    before = _backends()

    _send(200)
    _wait_idle()

    after = _backends()
    assert after - before == set(), "task runs opened new PostgreSQL connections"
    assert _worker_ports(io_worker.process.pid) == ports  # the very same connections
    log = io_worker.log()
    assert "Traceback" not in log and "PoolTimeout" not in log, log[-3000:]
    assert log.count("flows.expire_sessions") and "succeeded" in log


def psycopg_connect():
    """A plain psycopg connection (not from the pool) to the test database, in a transaction."""
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params)


# --- the pool's check on checkout --------------------------------------------------------

@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_pool_checks_a_connection_only_after_it_sat_idle(settings):
    """A connection handed out again within DB_POOL_CHECK_AFTER_SECONDS costs no check round
    trip; one idle longer is checked, and a dead one is refused (the pool then discards it)."""
    import psycopg

    from whatsappcrm_backend.dbpool import check_idle_connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.pool._check is check_idle_connection  # installed on the project's pool

    conn = psycopg_connect()
    conn.rollback()
    conn.autocommit = True
    settings.DB_POOL_CHECK_AFTER_SECONDS = 60
    check_idle_connection(conn)  # first checkout: checked (it is alive)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
    check_idle_connection(conn)  # used a moment ago: trusted, no round trip
    settings.DB_POOL_CHECK_AFTER_SECONDS = 0
    with pytest.raises(psycopg.OperationalError):
        check_idle_connection(conn)  # idle "long enough": checked, and found dead
    conn.close()


def test_a_bad_check_interval_is_refused():
    result = database_settings({"DATABASE_URL": "postgres://crm:pw@127.0.0.1:5432/crm",
                                "DB_POOL_CHECK_AFTER_SECONDS": "-1"})
    assert result.returncode != 0
    assert "DB_POOL_CHECK_AFTER_SECONDS=-1.0 must be 0 or a positive number of seconds" in result.stderr
