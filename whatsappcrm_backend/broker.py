"""The Redis transport the project uses: kombu's, with prompt wake-up under green pools.

Why it exists: with ``task_acks_late`` and ``worker_prefetch_multiplier=1`` a gevent
worker holds exactly ``concurrency`` unacknowledged messages. When all of them are
running, kombu stops issuing BRPOP for lack of credit, and green pools (which run
Celery's blocking ``synloop``, not the event loop) then wait in
``poll(timeout=2.0)`` on sockets where nothing can arrive. A slot freed by a
finished task is noticed only when that wait ends. Measured on this project's
gevent worker (-c 20, 100 ms tasks): a 100-task backlog drained in 7-10 s instead
of ~0.5 s, each batch of 20 followed by a 0.8-1.9 s stall, and a reply queued
behind a busy worker waited as long.

The fix is a wake-up, not a shorter poll: the poller also waits on a pipe, and an ack
that frees credit on a channel with none writes one byte to it (Celery 5.7 acks as soon
as the task returns, ``call_soon_ack``). The waiting loop wakes, re-checks credit and
resumes BRPOP at once, and a worker whose slots are all busy sleeps in ``poll`` instead
of re-polling every few milliseconds (an earlier 5 ms poll burnt 5-7 % of a core exactly
when the machine was saturated).

The channels' Redis connections come from a blocking pool: under gevent, 20 tasks
finishing together ack concurrently, and kombu's default pool raised
``MaxConnectionsError`` past ``max_connections`` ("Couldn't ack", the message left
unacknowledged and its slot lost until a restart). They now wait for a connection.

Everything else is kombu's: wire format, priorities, visibility timeout, and the
event-loop path the prefork worker uses (it never waits in ``get``).
"""

from __future__ import annotations

import os
from typing import Any

import redis as redis_py
from kombu.transport import redis
from kombu.utils.eventio import READ

# Seconds an ack or publish waits for a free Redis connection before failing.
POOL_WAIT_SECONDS = 10.0


class CreditAwareMultiChannelPoller(redis.MultiChannelPoller):
    """kombu's poller, plus a pipe that wakes its synchronous wait when credit returns."""

    def __init__(self) -> None:
        super().__init__()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_poller: Any = None  # the poller object the read end is registered with
        self._in_sync_get = False
        # Set by get() when a consuming channel had no credit: only then does an ack wake it.
        self.starved = False

    def wake(self) -> None:
        """Called after an ack freed credit while get() was starved: end its wait."""
        if self._wake_poller is None:
            return  # event-loop mode (prefork): the hub re-checks credit itself
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    @property
    def fds(self) -> dict[int, Any]:
        fds = super().fds
        if self._in_sync_get:
            # With every BRPOP paused kombu would sleep() instead of polling; the wake pipe
            # is something to poll. Only inside get(): the event loop never sees this fd.
            fds[self._wake_r] = None
        return fds

    def get(self, callback: Any, timeout: float | None = None) -> Any:
        if self._wake_poller is not self.poller:
            self.poller.register(self._wake_r, READ)
            self._wake_poller = self.poller
        self._in_sync_get = True
        self.starved = any(channel.active_queues and not channel.qos.can_consume() for channel in self._channels)
        try:
            return super().get(callback, timeout)
        finally:
            self._in_sync_get = False

    def handle_event(self, fileno: int, event: int) -> Any:
        if fileno == self._wake_r:
            self._drain_wake()
            return None  # go on: get() ends with Empty and the loop re-checks credit
        return super().handle_event(fileno, event)

    def close(self) -> None:
        if self._wake_poller is not None:
            try:
                self._wake_poller.unregister(self._wake_r)
            except (KeyError, ValueError, OSError):
                pass
            self._wake_poller = None
        super().close()


class QoS(redis.QoS):
    """Redis ack emulation that wakes a poller starved of credit once an ack has freed a slot.

    The check comes after the ack's own Redis round trip: under gevent the consumer may
    have taken the last slot (and started waiting) while that round trip was in flight.
    """

    def ack(self, delivery_tag: Any) -> None:
        super().ack(delivery_tag)
        self._wake_if_starved()

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        super().reject(delivery_tag, requeue=requeue)
        self._wake_if_starved()

    def _wake_if_starved(self) -> None:
        cycle = self.channel.connection.cycle
        if cycle.starved:
            cycle.wake()


class Channel(redis.Channel):
    QoS = QoS

    def _get_pool(self, asynchronous: bool = False) -> redis_py.ConnectionPool:
        params = self._connparams(asynchronous=asynchronous)
        self.keyprefix_fanout = self.keyprefix_fanout.format(db=params["db"])
        return redis_py.BlockingConnectionPool(timeout=POOL_WAIT_SECONDS, **params)


class Transport(redis.Transport):
    """``redis://`` with the waking poller and blocking pools (the project's ``broker_transport``)."""

    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cycle = CreditAwareMultiChannelPoller()
