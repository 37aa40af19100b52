"""Shared pieces of the outbound tests: business numbers, contacts, workers (the fake Graph
API fixtures ``fake``, ``graph_url`` and ``gevent_worker`` are in conftest.py).

Workers started here run the compose I/O worker command (optionally with another pool) and
a short retry backoff, so retry tests take fractions of a second instead of minutes.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from conversations.models import Contact
from meta_integration.models import MetaAppConfig

TOKEN = "EAAG-outbound-test-token"
API_VERSION = "v23.0"
# Short backoff in the workers (META_RETRY_BASE_SECONDS is read from the environment).
WORKER_ENV = {"META_RETRY_BASE_SECONDS": "0.2", "LOG_LEVEL": "INFO"}


def random_phone_number_id() -> str:
    return str(random.randint(10**14, 10**15 - 1))


def random_wa_id() -> str:
    return "2637" + str(random.randint(10**7, 10**8 - 1))


def make_config(graph_url: str, *, rate: float = 1000.0, name: str = "Betting bot") -> MetaAppConfig:
    return MetaAppConfig.objects.create(
        name=name,
        phone_number_id=random_phone_number_id(),
        display_phone_number="+263 71 555 0100",
        access_token=TOKEN,
        app_secret="outbound-test-secret",
        verify_token="outbound-verify",
        api_version=API_VERSION,
        graph_api_url=graph_url,
        send_rate_per_second=rate,
    )


def make_contact(
    config: MetaAppConfig, *, wa_id: str | None = None, last_inbound_ago: timedelta | None = timedelta(minutes=3)
) -> Contact:
    return Contact.objects.create(
        wa_id=wa_id or random_wa_id(),
        profile_name="Tendai Moyo",
        app_config=config,
        last_inbound_at=None if last_inbound_ago is None else timezone.now() - last_inbound_ago,
    )


def io_worker_argv(*, pool: str = "gevent", concurrency: int = 20) -> list[str]:
    """The compose I/O worker command, with another pool and concurrency if asked."""
    from tests.support.workers import compose_command

    argv = compose_command("celery_io_worker")
    argv = [
        f"--pool={pool}" if arg.startswith("--pool=") else
        f"--concurrency={concurrency}" if arg.startswith("--concurrency=") else arg
        for arg in argv
    ]
    return argv


def start_io_worker(*, pool: str = "gevent", concurrency: int = 20, env: dict[str, str] | None = None):
    """One I/O worker on empty queues, ready."""
    return start_io_workers(1, pool=pool, concurrency=concurrency, env=env)[0]


def start_io_workers(count: int, *, pool: str = "gevent", concurrency: int = 20, env: dict[str, str] | None = None):
    """``count`` I/O workers on empty queues, started together and all ready."""
    from tests.support.broker import purge_project_queues
    from tests.support.workers import launch_worker, start_workers

    purge_project_queues()
    argv, full_env = io_worker_argv(pool=pool, concurrency=concurrency), {**WORKER_ENV, **(env or {})}
    return start_workers([launch_worker("celery_io_worker", argv=argv, env=full_env) for _ in range(count)])


