"""Settings come only from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k" * 20 + "production-like-secret-key-0123456789abcdefghijklmnop",
    "ALLOWED_HOSTS": "crm.example.com",
    "DATABASE_URL": "postgres://crm:pw@127.0.0.1:5432/crm",
    "METRICS_TOKEN": "m" * 32,
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "METRICS_TOKEN"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=120
    )


def test_production_without_secret_key_refuses_to_start_and_says_why():
    result = run_manage("check", env={"DEBUG": "0"})
    assert result.returncode != 0
    assert "Refusing to start with DEBUG off: set SECRET_KEY" in result.stderr


def test_production_with_a_development_key_refuses_to_start():
    result = run_manage("check", env={"DEBUG": "0", "SECRET_KEY": "django-insecure-" + "x" * 60})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("token", [None, "", "short-token"])
def test_production_without_a_metrics_token_refuses_to_start(token):
    """/metrics publishes business volumes: never anonymously, and not behind a guessable token."""
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "METRICS_TOKEN"}
    if token is not None:
        env["METRICS_TOKEN"] = token
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "Refusing to start with DEBUG off: set METRICS_TOKEN (at least 20 random characters" in result.stderr
    assert "SECRET_KEY" not in result.stderr.split("Refusing to start", 1)[1]  # names only what is missing


def test_development_serves_metrics_without_a_token():
    result = run_manage("check", env={"DEBUG": "1"})
    assert result.returncode == 0, result.stderr


def test_a_malformed_boolean_is_an_error_not_false():
    result = run_manage("check", env={"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_check_deploy_is_clean_with_production_like_variables():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_development_defaults_need_nothing_set(tmp_path):
    """DEBUG=1 alone: SQLite file under VAR_DIR and an embedded Redis, stopped on exit."""
    code = (
        "import django, os; django.setup()\n"
        "from django.conf import settings\n"
        "print(settings.DATABASES['default']['ENGINE']); print(settings.REDIS_URL)\n"
        "import redis; print(redis.Redis.from_url(settings.REDIS_URL).ping())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL"}}
    env |= {"DEBUG": "1", "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "whatsappcrm_backend.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    engine, url, pong = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert url.startswith("redis://127.0.0.1:")
    assert pong == "True"
    port = int(url.split(":")[2].split("/")[0])
    import socket

    with pytest.raises(OSError):  # the embedded server went away with the process that started it
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_embedded_redis_dies_with_a_killed_parent():
    """No orphaned redis-server even when its parent is SIGKILLed."""
    import signal
    import time

    code = (
        "from whatsappcrm_backend.embedded_redis import EmbeddedRedis\n"
        "import time; r = EmbeddedRedis().start(); print(r.process.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    redis_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(redis_pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{redis_pid}/stat") as stat:
            if stat.read().split()[2] == "Z":
                return  # exited, waiting to be reaped by init
        time.sleep(0.05)
    pytest.fail("redis-server outlived its killed parent")


def test_named_priorities_map_to_each_brokers_order():
    from whatsappcrm_backend.topology import Priority, broker_priority

    redis_order = [broker_priority(p, "redis://x") for p in Priority]
    amqp_order = [broker_priority(p, "amqp://x") for p in Priority]
    assert redis_order == sorted(redis_order)  # URGENT first = lowest number on Redis
    assert amqp_order == sorted(amqp_order, reverse=True)  # URGENT first = highest on RabbitMQ
    with pytest.raises(ValueError, match="unsupported broker"):
        broker_priority(Priority.HIGH, "sqs://x")


def test_celery_configuration_makes_priorities_and_reliability_take_effect(settings):
    from whatsappcrm_backend.celery import app

    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_create_missing_queues is False
    assert conf.task_ignore_result is True
    options = conf.broker_transport_options
    assert options["queue_order_strategy"] == "priority"
    assert options["priority_steps"] == [0, 3, 6, 9] and options["sep"] == ":"
    from whatsappcrm_backend.topology import LONGEST_COUNTDOWN

    assert options["visibility_timeout"] > LONGEST_COUNTDOWN.total_seconds()


def test_every_project_task_carries_its_named_priority_and_limits():
    from whatsappcrm_backend import topology
    from whatsappcrm_backend.celery import app, priority_number
    from whatsappcrm_backend.routing_check import import_task_modules

    import_task_modules()
    for name, route in topology.TASKS.items():
        if name not in app.tasks:
            continue
        task = app.tasks[name]
        assert task.queue == route.queue, name
        assert task.priority == priority_number(route.priority), name
        assert (task.soft_time_limit, task.time_limit) == (route.soft_time_limit, route.time_limit), name


def test_a_typo_in_a_queue_name_fails_instead_of_creating_a_queue():
    from whatsappcrm_backend.celery import app
    from whatsappcrm_backend.tasks import probe_io

    with pytest.raises(Exception, match="footbal_data"):
        with app.connection_for_write() as conn:
            probe_io.apply_async(args=["k"], queue="footbal_data", connection=conn)
