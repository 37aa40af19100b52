"""Flows' live gauges for /metrics, read from the database at scrape time.

Registered with ``whatsappcrm_backend.metrics.register_gauges`` in ``FlowsConfig.ready``,
so the metrics module needs no import of this app.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from flows.models import ContactFlowState


def session_gauges() -> Iterator[GaugeMetricFamily]:
    """Live sessions (``ContactFlowState`` rows) split at FLOW_SESSION_TIMEOUT.

    active: a message within the timeout; overdue: idle longer and not yet deleted by the
    expiry job (a growing number means the job is not running). Expired sessions are
    deleted, so they are counted as they happen: ``metrics.record_sessions_expired``.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.FLOW_SESSION_TIMEOUT)
    totals = ContactFlowState.objects.order_by().aggregate(
        active=Count("pk", filter=Q(last_activity_at__gte=cutoff)),
        overdue=Count("pk", filter=Q(last_activity_at__lt=cutoff)),
    )
    gauge = GaugeMetricFamily("whatsappcrm_flow_sessions",
                              "Flow sessions: active (within the idle timeout) or overdue (idle longer, "
                              "waiting for the expiry job).", labels=["state"])
    for state, count in totals.items():
        gauge.add_metric([state], count)
    yield gauge
