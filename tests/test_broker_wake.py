"""broker.py: a consumer without credit sleeps until an ack frees a slot, then resumes at once.

Uses the project's transport on its own redis-server, with prefetch 1 so that one
unacknowledged message leaves the channel without credit, exactly like a gevent worker
whose slots are all busy. The poller's ``poll`` calls are recorded: no short polls (the
old 5 ms spin), and the wait that ends the starvation is ended by the wake pipe.
"""

from __future__ import annotations

import threading

from kombu import Connection, Exchange, Queue

from whatsappcrm_backend.embedded_redis import EmbeddedRedis


def test_an_ack_wakes_the_starved_poller_without_spinning():
    with EmbeddedRedis() as server, Connection(server.url, transport="whatsappcrm_backend.broker:Transport") as conn:
        queue = Queue("wake-test", Exchange("wake-test", type="direct"), routing_key="wake-test")
        producer = conn.Producer()
        for n in (1, 2):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="wake-test", declare=[queue])
        received = []
        consumer = conn.Consumer(queue, callbacks=[lambda body, message: received.append(message)])
        consumer.qos(prefetch_count=1)
        consumer.consume()
        conn.drain_events(timeout=5)
        assert [m.payload["n"] for m in received] == [1]  # unacknowledged: no credit left

        cycle = conn.transport.cycle
        original_poll = cycle.poller.poll
        polls: list[tuple[float | None, list]] = []

        def recording_poll(timeout):
            events = original_poll(timeout)
            polls.append((timeout, list(events or [])))
            return events

        cycle.poller.poll = recording_poll
        acker = threading.Timer(0.2, received[0].ack)
        acker.start()
        try:
            conn.drain_events(timeout=30)
        finally:
            acker.join()
        assert [m.payload["n"] for m in received] == [1, 2]
        assert all(timeout is not None and timeout >= 1 for timeout, _ in polls), polls  # no spinning
        woken = [events for _, events in polls if any(fd == cycle._wake_r for fd, _ in events)]
        assert woken, f"the ack did not wake the poller: {polls}"
        received[1].ack()
