"""The routing check passes on the project and names each class of broken configuration."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from whatsappcrm_backend import topology
from whatsappcrm_backend.routing_check import (
    find_problems,
    load_compose,
    project_problems,
    workers_from_compose,
)
from whatsappcrm_backend.topology import BeatEntry, Pool, Priority, TaskRoute

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = load_compose(ROOT / "docker-compose.yml")


def codes(problems) -> list[str]:
    return [p.code for p in problems]


def registered_project() -> dict[str, str]:
    """Registered names as the real registry has them (every table entry, defined in the project)."""
    return {name: f"{name.split('.')[0]}.tasks" for name in topology.TASKS} | {"celery.chord": "celery.app.builtins"}


def check(**overrides):
    kwargs = {"registered": registered_project(), "workers": workers_from_compose(COMPOSE)}
    kwargs.update(overrides)
    return find_problems(**kwargs)


def test_the_project_passes():
    assert project_problems() == []


def test_the_management_command_passes_on_the_project(capsys):
    call_command("check_celery_routing")
    assert "OK:" in capsys.readouterr().out


def test_the_check_passes_on_the_table_and_compose():
    assert check() == []


def test_unrouted_project_task_is_reported():
    registered = registered_project() | {"flows.brand_new_task": "flows.tasks"}
    problems = check(registered=registered)
    assert codes(problems) == ["routing.E001"]
    assert "'flows.brand_new_task' has no explicit route" in problems[0].message


def test_celerys_own_tasks_need_no_route():
    assert check(registered=registered_project() | {"celery.backend_cleanup": "celery.app.builtins"}) == []


def test_route_for_a_missing_task_is_reported():
    tasks = dict(topology.TASKS) | {"flows.renamed_away": TaskRoute("celery", Priority.HIGH, 10, 20)}
    problems = check(tasks=tasks)
    assert codes(problems) == ["routing.E002"]
    assert "'flows.renamed_away' matches no registered task" in problems[0].message


def test_dead_fallback_pattern_is_reported():
    problems = check(fallback_routes=dict(topology.FALLBACK_ROUTES) | {"footbal_data.*": "football_data"})
    assert codes(problems) == ["routing.E003"]
    assert "'footbal_data.*' matches no registered task" in problems[0].message


def test_route_to_an_unknown_queue_is_reported():
    tasks = dict(topology.TASKS)
    tasks["diagnostics.probe_cpu"] = TaskRoute("footbal_data", Priority.LOW, 10, 20)
    problems = check(tasks=tasks)
    assert "routing.E004" in codes(problems)
    assert "unknown queue 'footbal_data'" in " ".join(p.message for p in problems)


def _compose_with_command(service: str, command: str) -> dict:
    compose = copy.deepcopy(COMPOSE)
    compose["services"][service]["command"] = command
    return compose


def test_queue_missing_from_compose_is_reported():
    compose = _compose_with_command(
        "celery_cpu_worker",
        "celery -A whatsappcrm_backend worker --pool=prefork --concurrency=2 -Q footballdata",
    )
    problems = check(workers=workers_from_compose(compose))
    assert set(codes(problems)) == {"routing.E005", "routing.E006"}
    assert any("queue 'football_data' has no consuming worker" in p.message for p in problems)
    assert any("consumes 'footballdata', which is not a queue" in p.message for p in problems)


def test_solo_pool_is_reported_whatever_its_concurrency():
    compose = _compose_with_command(
        "celery_io_worker", "celery -A whatsappcrm_backend worker --pool=solo --concurrency=20 -Q celery"
    )
    problems = check(workers=workers_from_compose(compose))
    assert codes(problems) == ["routing.E007"]
    assert "solo pool" in problems[0].message


def test_prefork_on_the_io_queue_is_reported_even_when_implicit():
    compose = _compose_with_command("celery_io_worker", "celery -A whatsappcrm_backend worker -c 20 -Q celery")
    problems = check(workers=workers_from_compose(compose))
    assert codes(problems) == ["routing.E007"]
    assert "no --pool given, so prefork" in problems[0].message


def test_gevent_on_the_cpu_queue_is_reported():
    compose = _compose_with_command(
        "celery_cpu_worker", "celery -A whatsappcrm_backend worker -P gevent -c 50 -Q football_data"
    )
    problems = check(workers=workers_from_compose(compose))
    assert codes(problems) == ["routing.E007"]
    assert "cpu queue 'football_data' on the gevent pool" in problems[0].message


def test_io_worker_with_too_little_concurrency_is_reported():
    compose = _compose_with_command(
        "celery_io_worker", "celery -A whatsappcrm_backend worker --pool=gevent --concurrency=4 -Q celery"
    )
    assert codes(check(workers=workers_from_compose(compose))) == ["routing.E012"]


def test_worker_without_queue_option_is_reported():
    compose = _compose_with_command("celery_io_worker", "celery -A whatsappcrm_backend worker --pool=gevent -c 20")
    assert "routing.E011" in codes(check(workers=workers_from_compose(compose)))


def test_beat_entry_for_a_missing_task_is_reported():
    beat = {"sync-everything": BeatEntry(task="football_data.sync_everything", every=timedelta(minutes=5))}
    problems = check(beat=beat)
    assert codes(problems) == ["routing.E008"]
    assert "unregistered task 'football_data.sync_everything'" in problems[0].message


def test_beat_entry_naming_another_queue_is_reported():
    beat = {"probe": BeatEntry(task="diagnostics.probe_io", every=timedelta(minutes=1), queue="football_data")}
    problems = check(beat=beat)
    assert codes(problems) == ["routing.E009"]


def test_visibility_timeout_shorter_than_a_countdown_is_reported():
    problems = check(visibility_timeout=timedelta(minutes=30), longest_countdown=timedelta(hours=1))
    assert codes(problems) == ["routing.E014"]


def test_different_app_paths_across_services_are_reported():
    from whatsappcrm_backend.routing_check import celery_services

    compose = _compose_with_command(
        "celery_beat", "celery -A whatsappcrm_backend.celery:app beat --scheduler x"
    )
    problems = check(celery_commands=celery_services(compose))
    assert codes(problems) == ["routing.E010"]


def test_management_command_fails_with_one_line_per_problem(tmp_path, capsys):
    broken = _compose_with_command(
        "celery_io_worker", "celery -A whatsappcrm_backend worker --pool=solo -Q celery"
    )
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(CommandError, match=r"routing problem"):
        call_command("check_celery_routing", compose_file=str(path))
    assert "routing.E007" in capsys.readouterr().err


def test_system_check_passes_on_the_project():
    """`manage.py check` runs the same check (against the project's compose file)."""
    from whatsappcrm_backend.checks import celery_routing_check

    assert celery_routing_check() == []


# --- compose parsed: its worker commands agree with the queue table --------------------------

def test_compose_workers_agree_with_the_queue_table():
    workers = {w.service: w for w in workers_from_compose(COMPOSE)}
    for queue, spec in topology.QUEUES.items():
        worker = workers[spec.worker_service]
        assert worker.queues == (queue,)
        assert worker.pool in topology.FITTING_POOLS[spec.workload]
    io = workers["celery_io_worker"]
    assert (io.pool, io.concurrency) == (Pool.GEVENT, 20)
    cpu = workers["celery_cpu_worker"]
    assert cpu.pool == Pool.PREFORK and cpu.max_tasks_per_child and cpu.concurrency <= 4


def test_compose_has_the_production_services():
    services = COMPOSE["services"]
    assert {"db", "redis", "web", "celery_io_worker", "celery_cpu_worker", "celery_beat", "flower"} <= set(services)
    assert "healthcheck" in services["db"] and "healthcheck" in services["redis"]
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert "migrate" in services["web"]["command"] and "gunicorn" in services["web"]["command"]
    assert "DatabaseScheduler" in services["celery_beat"]["command"]
    for name in ("web", "celery_io_worker", "celery_cpu_worker", "celery_beat", "flower"):
        assert services[name]["env_file"] == ".env"
