"""Football tasks: thin wrappers over :mod:`football_data_app.services` (``ingestion`` and ``settling``).

Every task here is on the ``football_data`` queue (the prefork CPU worker; see
``whatsappcrm_backend/topology.py``), so parsing and bulk writes never delay a flow reply.
Each run records the worker that ran it (``SyncRun.worker`` / ``Ticket.settled_by``).

No chords and no result backend: a results sync enqueues one ``settle_fixture`` per
fixture it finished, and the ``settle_due`` sweeper catches anything a crash left behind.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.db import transaction
from django.utils import timezone

from whatsappcrm_backend.celery import enqueue, project_task

from .models import SyncKind, SyncStatus
from .services import ingestion, settling

logger = logging.getLogger(__name__)

MAX_RESUME_COUNTDOWN = 300  # seconds; well under topology.LONGEST_COUNTDOWN


def _sync(task: Any, kind: SyncKind, **kwargs: Any) -> dict[str, Any] | None:
    run = ingestion.run_sync(kind, worker=task.request.hostname or "", **kwargs)
    if run is None:
        return None
    if run.status == SyncStatus.PARTIAL and "resume" in run.detail:
        countdown = min(MAX_RESUME_COUNTDOWN, max(1, math.ceil(run.detail.get("retry_after", 60))))
        enqueue(task, kwargs=run.detail["resume"], countdown=countdown)
        logger.info("football %s sync continues in %ss from %s", kind, countdown, run.detail["resume"])
    return {"run": run.pk, "status": run.status}


@project_task("football_data.sync_leagues", bind=True)
def sync_leagues(self) -> dict[str, Any] | None:
    """Leagues and their current seasons (never touches an operator's active/inactive choice)."""
    return _sync(self, SyncKind.LEAGUES)


@project_task("football_data.sync_fixtures", bind=True)
def sync_fixtures(self, league_ids: list[int] | None = None) -> dict[str, Any] | None:
    """Fixtures of the active leagues around today (one request per league)."""
    return _sync(self, SyncKind.FIXTURES, league_ids=league_ids)


@project_task("football_data.sync_odds", bind=True)
def sync_odds(self, league_ids: list[int] | None = None, page: int = 1) -> dict[str, Any] | None:
    """Pre-match odds of the active leagues, page by page (continues itself when the
    per-minute limit stops it)."""
    return _sync(self, SyncKind.ODDS, league_ids=league_ids, page=page)


@project_task("football_data.sync_live_odds", bind=True)
def sync_live_odds(self) -> dict[str, Any] | None:
    """The live odds feed, fetched once per run for every league."""
    return _sync(self, SyncKind.LIVE_ODDS)


@project_task("football_data.sync_results", bind=True)
def sync_results(self) -> dict[str, Any] | None:
    """Results of fixtures that should be over, then one settlement task per settleable fixture."""
    outcome = _sync(self, SyncKind.RESULTS)
    fixture_ids = settling.settleable_fixture_ids()
    for fixture_id in fixture_ids:
        enqueue(settle_fixture, fixture_id)
    return {**(outcome or {}), "settle": len(fixture_ids)}


@project_task("football_data.settle_fixture", bind=True)
def settle_fixture(self, fixture_id: int) -> dict[str, Any]:
    """Settle one fixture: outcomes, bets, tickets, wallet credits, notifications."""
    worker, started_at = self.request.hostname or "", timezone.now()
    result = settling.settle_fixture(fixture_id, settled_by=worker)
    settling.record_settlement_run(result, worker=worker, started_at=started_at)
    return {"state": result.state, "tickets": len(result.tickets)}


@project_task("football_data.settle_due", bind=True)
def settle_due(self) -> dict[str, int]:
    """Sweeper: settle what is over but unsettled, send notifications a crash left unsent."""
    return settling.settle_due(settled_by=self.request.hostname or "")


def enqueue_settlement(fixture_id: int) -> None:
    """Enqueue settlement when the current transaction commits (admin, services)."""
    transaction.on_commit(lambda: enqueue(settle_fixture, fixture_id))
