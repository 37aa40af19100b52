"""What the Meta boundary needs from the rest of the project, without importing it.

``meta_integration`` imports no other app. The webhook view hands verified, parsed
batches to an ``InboundSink``; the send task loads and records outbound messages
through an ``Outbox``. ``conversations`` implements both and registers them in its
``AppConfig.ready()``, so the dependency points one way: conversations -> meta_integration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from meta_integration.models import MetaAppConfig
    from meta_integration.payloads import WebhookBatch


class InboundSink(Protocol):
    def accept(self, batch: WebhookBatch, app_config: MetaAppConfig) -> None:
        """Store the batch. Runs inside the webhook's transaction; enqueue only on commit."""


@dataclass(frozen=True)
class OutboundEnvelope:
    """One stored outbound message, as the send task needs it."""

    message_id: int
    app_config_id: int
    to: str
    spec: dict[str, Any]
    status: str  # "pending" means it may be sent
    is_template: bool
    window_open: bool  # the contact wrote within 24 hours
    previous_part_accepted: bool  # multi-part: the part before it was accepted by Meta (or there is none)
    attempts: int


class Outbox(Protocol):
    def load(self, message_id: int) -> OutboundEnvelope | None: ...

    def claim(self, message_id: int) -> bool:
        """Count an attempt; False if the message is no longer pending (sent by an earlier run)."""

    def mark_sent(self, message_id: int, wamid: str) -> None: ...

    def mark_failed(self, message_id: int, code: int | None, title: str, details: str) -> None: ...


_inbound_sink: InboundSink | None = None
_outbox: Outbox | None = None


def register_inbound_sink(sink: InboundSink) -> None:
    global _inbound_sink
    _inbound_sink = sink


def register_outbox(outbox: Outbox) -> None:
    global _outbox
    _outbox = outbox


def inbound_sink() -> InboundSink:
    if _inbound_sink is None:
        raise RuntimeError("no InboundSink registered: is 'conversations' in INSTALLED_APPS?")
    return _inbound_sink


def outbox() -> Outbox:
    if _outbox is None:
        raise RuntimeError("no Outbox registered: is 'conversations' in INSTALLED_APPS?")
    return _outbox
