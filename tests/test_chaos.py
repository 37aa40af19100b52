"""The running stack under faults: a burst of new users while the gevent worker is SIGKILLed
and restarted and Redis is restarted. Every user must get exactly one reply, nothing the
Graph API accepted may end failed, and every reply must arrive within a bound.

The stack runs as compose runs it, as local processes: gunicorn (the webhook), the gevent
I/O worker and Beat (the sweepers), on the test database and on a redis-server this test
starts itself, so it can restart it. Only Meta's Graph API is the project's fake.

The bound: a task lost with the worker or with Redis (nothing is persisted) is found by the
inbound sweeper (every 10 s, messages unprocessed for 15 s); a send killed mid-request waits
for its lease (3 x META_HTTP_TIMEOUT + 5 s + SEND_STATUS_GRACE_SECONDS = 13 s here), then
the outbound sweeper (every 5 s, rows pending 10 s) sends it. So every reply is due within
about 45 s of the faults; the test allows 90 s for a loaded 2-core machine.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from conversations.models import Direction, Message, MessageStatus
from devtools import webhook_payloads as simulate
from devtools.fake_graph import FakeGraphAPI, start_fake_graph
from tests.support.flows import APP_SECRET, business, import_defaults
from tests.support.workers import ROOT, WorkerProcess, start_worker, worker_env
from whatsappcrm_backend.beat import sync_beat_schedule
from whatsappcrm_backend.embedded_redis import EmbeddedRedis, _die_with_parent

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

USERS = 100
REPLY_BOUND_SECONDS = 90.0
FAULT_ENV = {
    "META_HTTP_TIMEOUT": "2.0",
    "SEND_STATUS_GRACE_SECONDS": "2.0",
    "LOG_LEVEL": "INFO",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A stack process of this test (gunicorn, Beat), logging to a file, in its own group."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"chaos-{name}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def log(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=10)
                return
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    yield server
    server.stop()


@pytest.fixture
def fake() -> Iterator[tuple[FakeGraphAPI, str]]:
    api, server = start_fake_graph()
    yield api, server.url
    server.stop()


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def _signed(wa_id: str) -> tuple[bytes, dict[str, str]]:
    body = simulate.webhook_body([simulate.text("hi", wa_id=wa_id)], profile_name="Chaos User")
    return simulate.signed_request(body, APP_SECRET)


def test_a_burst_survives_a_killed_worker_and_a_redis_restart_with_one_reply_each(redis_server, fake):
    fake_api, graph_url = fake
    business(graph_url=graph_url)
    import_defaults()
    sync_beat_schedule()  # the flushed test database has no Beat entries yet
    env = {**FAULT_ENV, "REDIS_URL": redis_server.url, "CELERY_BROKER_URL": redis_server.url}
    port = _free_port()
    web = Process(
        [sys.executable, "-m", "gunicorn", "whatsappcrm_backend.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--worker-class", "gthread", "--threads", "8"],
        worker_env(env), "web",
    )
    beat = Process(
        [sys.executable, "-m", "celery", "-A", "whatsappcrm_backend", "beat", "--scheduler",
         "django_celery_beat.schedulers:DatabaseScheduler", "--loglevel=INFO",
         "--schedule", tempfile.mktemp(prefix="chaos-beat-")],
        worker_env(env), "beat",
    )
    workers: list[WorkerProcess] = [start_worker("celery_io_worker", env=env)]
    restarted: list[EmbeddedRedis] = []
    users = ["2547" + str(random.randint(10**7, 10**8 - 1)) for _ in range(USERS)]
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}/webhooks/meta/"
        # As Meta does: a status webhook for every accepted message, naming its row
        # (biz_opaque_callback_data), which is how a send killed after Meta accepted it is known.
        fake_api.configure_webhook(url, APP_SECRET, statuses=("sent",))
        started = time.monotonic()

        def post_all() -> None:
            with httpx.Client(timeout=10.0) as http:
                for index, wa_id in enumerate(users):
                    raw, headers = _signed(wa_id)
                    due = started + index / 25.0  # 25 new users a second for 4 s
                    time.sleep(max(0.0, due - time.monotonic()))
                    for _attempt in range(20):  # Meta retries anything but a 200
                        try:
                            if http.post(url, content=raw, headers=headers).status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        time.sleep(0.5)

        sender = threading.Thread(target=post_all)
        sender.start()
        time.sleep(1.5)
        os.killpg(workers[0].process.pid, signal.SIGKILL)  # the gevent worker, mid-burst
        workers[0].stop()
        time.sleep(1.0)
        workers.append(start_worker("celery_io_worker", env=env))
        time.sleep(1.0)
        redis_server.process.kill()  # Redis restarts: every queued task is gone
        redis_server.process.wait()
        time.sleep(1.0)
        restarted.append(EmbeddedRedis(port=redis_server.port).start())  # same port, empty
        sender.join()

        deadline = started + REPLY_BOUND_SECONDS
        while time.monotonic() < deadline:
            if all(fake_api.messages(to=wa_id) for wa_id in users):
                break
            time.sleep(0.5)
        time.sleep(3.0)  # anything still to come would be a duplicate

        missing = [wa_id for wa_id in users if not fake_api.messages(to=wa_id)]
        doubled = {wa_id: len(fake_api.messages(to=wa_id)) for wa_id in users if len(fake_api.messages(to=wa_id)) > 1}
        assert not missing, f"{len(missing)} users got no reply within {REPLY_BOUND_SECONDS}s\n{workers[-1].log()[-3000:]}"
        assert not doubled, f"users answered more than once: {doubled}"
        accepted = {record.wamid for record in fake_api.messages() if record.wamid}
        failed_accepted = Message.objects.filter(
            direction=Direction.OUTBOUND, status=MessageStatus.FAILED, wamid__in=accepted
        )
        assert not failed_accepted.exists(), list(failed_accepted.values("pk", "error_title"))
        unsent = Message.objects.filter(direction=Direction.OUTBOUND, contact__wa_id__in=users).exclude(
            status__in=[MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]
        )
        assert not unsent.exists(), list(unsent.values("pk", "status", "error_title"))
    finally:  # the workers' broker is this test's own Redis: nothing they hold matters any more
        for worker in workers:
            worker.kill()
        web.stop()
        beat.stop()
        for server in restarted:
            server.stop()


def test_redis_gone_between_metas_answer_and_the_bookkeeping_the_row_still_ends_sent(redis_server, fake):
    """Issue 12.2: Meta's acceptance is recorded in the database, so a Redis outage while the
    request is at Meta cannot turn an accepted reply into a failed one (or lose its wamid)."""
    from conversations.models import Contact
    from tests.support.workers import run_django_snippet

    fake_api, graph_url = fake
    config = business(graph_url=graph_url)
    contact = Contact.objects.create(wa_id="254700000123", profile_name="Chaos User", app_config=config,
                                     last_inbound_at=timezone.now())
    message = Message.objects.create(
        contact=contact, app_config=config, direction=Direction.OUTBOUND, message_type="text",
        text="Your ticket is placed.", content={"type": "text", "body": "Your ticket is placed."},
        status=MessageStatus.PENDING,
    )
    env = {**FAULT_ENV, "META_HTTP_TIMEOUT": "10.0", "REDIS_URL": redis_server.url,
           "CELERY_BROKER_URL": redis_server.url}
    fake_api.set_latency(2500)
    worker = start_worker("celery_io_worker", env=env)
    restarted: list[EmbeddedRedis] = []
    try:
        run_django_snippet(
            "from conversations.tasks import send_message\n"
            "from whatsappcrm_backend.celery import enqueue\n"
            f"enqueue(send_message, {message.pk})\n",
            worker_env(env),
        )
        deadline = time.monotonic() + 30
        while Message.objects.get(pk=message.pk).attempts < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the POST is at the fake, waiting for its answer
        redis_server.process.kill()  # Redis goes away before Meta answers
        redis_server.process.wait()
        [accepted] = fake_api.wait_for_messages(1, to=contact.wa_id, timeout=10)
        deadline = time.monotonic() + 20
        while Message.objects.get(pk=message.pk).status == MessageStatus.PENDING and time.monotonic() < deadline:
            time.sleep(0.1)
        message.refresh_from_db()
        assert (message.status, message.wamid, message.error_title) == (MessageStatus.SENT, accepted.wamid, "")
        restarted.append(EmbeddedRedis(port=redis_server.port).start())  # Redis is back, empty
        time.sleep(3.0)
        assert len(fake_api.messages(to=contact.wa_id)) == 1  # and nothing was sent twice
        message.refresh_from_db()
        assert message.status == MessageStatus.SENT
    finally:
        worker.kill()  # its broker is this test's own Redis
        for server in restarted:
            server.stop()
