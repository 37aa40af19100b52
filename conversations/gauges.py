"""Conversations' live gauges for /metrics, read from the database at scrape time.

Registered with ``whatsappcrm_backend.metrics.register_gauges`` in ``ConversationsConfig.ready``,
so the metrics module needs no import of this app.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from conversations.models import Message


def message_gauges() -> Iterator[GaugeMetricFamily]:
    """Stored messages by direction, type and status: one grouped count per scrape."""
    rows = (Message.objects.order_by().values_list("direction", "message_type", "status")
            .annotate(n=Count("pk")))
    messages = GaugeMetricFamily("whatsappcrm_messages",
                                 "Stored WhatsApp messages by direction (in/out), type and status.",
                                 labels=["direction", "type", "status"])
    for direction, message_type, status, count in sorted(rows):
        messages.add_metric([direction, message_type, status], count)
    yield messages
