"""Beat's schedule is defined in code and synced to django-celery-beat without undoing operators."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from whatsappcrm_backend import topology
from whatsappcrm_backend.beat import sync_beat_schedule
from whatsappcrm_backend.celery import priority_number
from whatsappcrm_backend.topology import BeatEntry

pytestmark = pytest.mark.django_db

SCHEDULE = {"probe-io": BeatEntry(task="diagnostics.probe_io", every=timedelta(seconds=30), args=("beat",))}


def test_sync_creates_entries_with_queue_priority_and_interval():
    assert sync_beat_schedule(SCHEDULE)["created"] == 1
    task = PeriodicTask.objects.get(name="probe-io")
    assert task.task == "diagnostics.probe_io"
    assert task.queue == topology.IO_QUEUE
    assert task.priority == priority_number(topology.TASKS["diagnostics.probe_io"].priority)
    assert task.interval.every == 30 and json.loads(task.args) == ["beat"]
    assert task.enabled


def test_resync_keeps_the_operators_enable_choice_and_updates_the_rest():
    sync_beat_schedule(SCHEDULE)
    PeriodicTask.objects.filter(name="probe-io").update(enabled=False)
    changed = {"probe-io": BeatEntry(task="diagnostics.probe_io", every=timedelta(seconds=10), args=("beat",))}
    assert sync_beat_schedule(changed)["updated"] == 1
    task = PeriodicTask.objects.get(name="probe-io")
    assert task.enabled is False
    assert task.interval.every == 10


def test_resync_without_changes_writes_nothing():
    sync_beat_schedule(SCHEDULE)
    assert sync_beat_schedule(SCHEDULE) == {"created": 0, "updated": 0, "removed": 0}


def test_entries_removed_from_code_are_removed_but_operator_entries_stay():
    sync_beat_schedule(SCHEDULE)
    PeriodicTask.objects.create(name="operator's own", task="diagnostics.probe_io", interval=PeriodicTask.objects.get(
        name="probe-io").interval)
    assert sync_beat_schedule({})["removed"] == 1
    assert list(PeriodicTask.objects.values_list("name", flat=True)) == ["operator's own"]


def test_the_projects_schedule_is_synced_on_migrate():
    """pytest-django migrates the test database, which runs the post_migrate sync."""
    assert set(PeriodicTask.objects.filter(description__endswith="topology]").values_list("name", flat=True)) == set(
        topology.BEAT_SCHEDULE
    )
