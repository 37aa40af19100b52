"""What the Meta boundary needs from the rest of the project, without importing it.

``meta_integration`` imports no other app. The webhook view hands verified, parsed
batches to an ``InboundSink``, which ``conversations`` implements and registers in its
``AppConfig.ready()``, so the dependency points one way: conversations -> meta_integration.
(Sending is not a port: the delivery service lives in ``conversations``, next to the rows,
and calls this app's Graph client.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from meta_integration.models import MetaAppConfig
    from meta_integration.payloads import WebhookBatch


class InboundSink(Protocol):
    def accept(self, batch: WebhookBatch, app_config: MetaAppConfig) -> None:
        """Store the batch. Runs inside the webhook's transaction; enqueue only on commit."""

    def one_statement(self, batch: WebhookBatch) -> bool:
        """Whether ``accept`` stores this batch in one statement (atomic on its own: the
        webhook then runs it without BEGIN and COMMIT, and on-commit work runs right after it)."""


_inbound_sink: InboundSink | None = None


def register_inbound_sink(sink: InboundSink) -> None:
    global _inbound_sink
    _inbound_sink = sink


def inbound_sink() -> InboundSink:
    if _inbound_sink is None:
        raise RuntimeError("no InboundSink registered: is 'conversations' in INSTALLED_APPS?")
    return _inbound_sink
