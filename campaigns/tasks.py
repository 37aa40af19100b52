"""Campaign tasks. Thin: each calls one service function (``campaigns/services/``)."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

from campaigns.services import chains
from conversations.services.delivery import RunInfo
from whatsappcrm_backend.celery import project_task

_INFRA_ERRORS = (OperationalError, InterfaceError)


@project_task("campaigns.send_batch", bind=True, autoretry_for=_INFRA_ERRORS, retry_backoff=2, retry_backoff_max=60)
def send_batch(self, campaign_id: int, chain: int) -> str:
    """Send the next batch of one chain of a running campaign (LOW priority)."""
    run = RunInfo.current(self.request.id, self.request.hostname)
    return chains.run_chain(campaign_id, chain, run).note or "sent"


@project_task("campaigns.tick")
def tick() -> dict[str, int]:
    """Beat: start due scheduled campaigns, restart chains a dead worker left, finish campaigns."""
    return chains.tick()
