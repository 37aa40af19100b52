"""The floor of the reply path: a bare Celery chain ``process -> send`` with one HTTP call.

The reply-latency benchmark compares the project with what Celery itself allows on the
same broker and pool. This module is that comparison, and imports nothing of the project
(importing it cost 3.9 ms per task against 1.7 ms truly bare): its own minimal Celery app
on kombu's redis transport with default options (plus the 5 ms wake-up every gevent worker
needs, see ``_CreditAwarePoller``; ``BENCH_FLOOR_TRANSPORT=plain`` drops it), on the same Redis, consumed
by a separate gevent worker started with the I/O worker's compose arguments (same pool,
same concurrency) on a bench-only queue. ``process`` only hands over to ``send``; ``send``
makes one POST to the fake Graph API, like the project's send leg minus the database.

Worker: ``celery -A bench.floor_tasks worker --pool=gevent --concurrency=20 -Q bench_floor``.
Environment: ``REDIS_URL`` (or ``CELERY_BROKER_URL``), ``BENCH_GRAPH_URL``,
``BENCH_PHONE_NUMBER_ID``, ``BENCH_ACCESS_TOKEN``.
"""

from __future__ import annotations

import os
import threading

import httpx
from celery import Celery
from kombu import Exchange, Queue
from kombu.transport import redis as redis_transport

FLOOR_QUEUE = "bench_floor"
GRAPH_API_VERSION = "v23.0"
HTTP_CONNECTIONS = 20  # the I/O worker's concurrency: a larger httpx pool costs throughput


def _broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


class _CreditAwarePoller(redis_transport.MultiChannelPoller):
    """kombu's poller, waking every 5 ms while the worker has no credit (all slots busy).

    The generic fix any gevent worker on kombu's redis transport needs (the project has the
    same in its broker module, not imported here): with acks_late and prefetch 1, once all 20
    slots are busy kombu stops its BRPOP and the green worker sleeps in ``poll(timeout=2.0)``
    on sockets where nothing can arrive, so a freed slot waits up to 2 s. Measured here on
    kombu's plain transport: p50 1.8 s at 20 messages/s.
    """

    def get(self, callback, timeout=None):
        if any(channel.active_queues and not channel.qos.can_consume() for channel in self._channels):
            timeout = 0.005 if timeout is None else min(timeout, 0.005)
        return super().get(callback, timeout)


class CreditAwareTransport(redis_transport.Transport):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cycle = _CreditAwarePoller()


def _transport() -> str:
    """``BENCH_FLOOR_TRANSPORT``: ``credit-aware`` (default, see above) or ``plain`` (kombu's as it is)."""
    choice = os.environ.get("BENCH_FLOOR_TRANSPORT", "credit-aware")
    if choice not in ("credit-aware", "plain"):
        raise ValueError(f"BENCH_FLOOR_TRANSPORT: 'credit-aware' or 'plain', got {choice!r}")
    return "redis" if choice == "plain" else f"{__name__}:CreditAwareTransport"


app = Celery("bench_floor", set_as_current=False)
app.conf.update(
    broker_url=_broker_url(),
    broker_transport=_transport(),
    broker_connection_retry_on_startup=True,
    task_queues=(Queue(FLOOR_QUEUE, Exchange(FLOOR_QUEUE, type="direct"), routing_key=FLOOR_QUEUE),),
    task_default_queue=FLOOR_QUEUE,
    task_default_exchange=FLOOR_QUEUE,
    task_default_routing_key=FLOOR_QUEUE,
    task_create_missing_queues=False,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    result_backend=None,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    # Its own remote-control and event exchanges: kombu keeps exchange bindings in Redis keys
    # named after the exchange, and the project's transport writes them with another separator.
    control_exchange="bench_floor",
    event_exchange="bench_floor_ev",
)

_client: httpx.Client | None = None
_client_pid = 0
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """One client per process, pool sized to the worker's concurrency (as the project does)."""
    global _client, _client_pid
    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            _client = httpx.Client(
                timeout=10.0,
                limits=httpx.Limits(max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS),
            )
            _client_pid = os.getpid()
        return _client


def messages_url() -> str:
    base = os.environ.get("BENCH_GRAPH_URL", "http://127.0.0.1:8001").rstrip("/")
    return f"{base}/{GRAPH_API_VERSION}/{os.environ.get('BENCH_PHONE_NUMBER_ID', '100000000000001')}/messages"


@app.task(name="bench.floor.process", acks_late=True, ignore_result=True)
def process(wa_id: str, text: str) -> None:
    """Stands for flows.process_message: decide a reply, hand it to the send task."""
    send.apply_async(args=(wa_id, f"You said: {text}"), queue=FLOOR_QUEUE)


@app.task(name="bench.floor.send", acks_late=True, ignore_result=True)
def send(wa_id: str, body: str) -> None:
    """Stands for the project's send leg: one POST to the Graph API."""
    response = http_client().post(
        messages_url(),
        json={"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id,
              "type": "text", "text": {"body": body}},
        headers={"Authorization": f"Bearer {os.environ.get('BENCH_ACCESS_TOKEN', 'bench-token')}"},
    )
    response.raise_for_status()
