"""Shared helpers for the webhook and inbound tests (no tests here).

* ``urlpatterns``: a test urlconf mounting ``meta_integration.urls`` exactly as the project
  mounts it, so the tests do not depend on the project urlconf being wired yet.
* ``make_app_config``: the business number the ``simulate`` builders address by default.
* ``post_webhook``: sign a body like Meta and POST it through Django's test client.
* ``isolated_broker``: the Celery app pointed at a private database of the real Redis,
  so the queue can be read back exactly (a running test worker consumes database 0).
* ``celery_broker(CLOSED_BROKER_URL)``: the Celery app pointed at a closed port.

Fixtures are defined in each test module from these (importing fixtures hides them from
linters and from readers).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis as redis_lib
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import include, path
from kombu import pools

from devtools import webhook_payloads as simulate
from meta_integration.models import MetaAppConfig
from whatsappcrm_backend import topology
from whatsappcrm_backend.celery import app as celery_app

urlpatterns = [
    path("", include("meta_integration.urls")),
    path("admin/", admin.site.urls),
]
URLCONF = __name__
WEBHOOK_URL = "/webhooks/meta/"

APP_SECRET = "test-app-secret-0123456789abcdef"
VERIFY_TOKEN = "test-verify-token"
CLOSED_BROKER_URL = "redis://127.0.0.1:1/0"
# 13 in a single-process run; each xdist worker has its own (tests/pytest_env.py).
ISOLATED_REDIS_DB = int(os.environ.get("TEST_REDIS_ISOLATED_DB", "13"))


def make_app_config(
    phone_number_id: str = simulate.DEFAULT_PHONE_NUMBER_ID,
    app_secret: str = APP_SECRET,
    verify_token: str = VERIFY_TOKEN,
    **fields: Any,
) -> MetaAppConfig:
    config, _ = MetaAppConfig.objects.update_or_create(
        phone_number_id=phone_number_id,
        defaults={
            "name": f"Business {phone_number_id}",
            "display_phone_number": simulate.DEFAULT_DISPLAY_PHONE_NUMBER,
            "access_token": "EAAG-test-token",
            "app_secret": app_secret,
            "verify_token": verify_token,
            **fields,
        },
    )
    return config


def post_signed(client: Client, raw: bytes, headers: Mapping[str, str], url: str = WEBHOOK_URL):
    return client.post(url, data=raw, content_type="application/json",
                       headers={k: v for k, v in headers.items() if k.lower() != "content-type"})


def post_webhook(client: Client, body: Mapping[str, Any], secret: str = APP_SECRET):
    """POST ``body`` exactly as Meta would: compact JSON bytes, signed with ``secret``."""
    raw, headers = simulate.signed_request(body, secret)
    return post_signed(client, raw, headers)


# --------------------------------------------------------------------------------------
# Broker
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedTask:
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str
    priority: int


def _reset_publisher() -> None:
    """Drop pooled broker connections so the next publish connects to the current URL."""
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app at ``url`` for the duration, then back."""
    original = celery_app.conf.broker_url
    _reset_publisher()
    celery_app.conf.broker_url = url
    try:
        yield
    finally:
        _reset_publisher()
        celery_app.conf.broker_url = original


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


class IsolatedBroker:
    """Reads back what was published to the project's queues (all priority levels)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis_lib.Redis.from_url(url)

    def keys(self) -> list[tuple[str, str]]:
        sep = settings.CELERY_BROKER_TRANSPORT_OPTIONS["sep"]
        return [
            (queue, queue if step == 0 else f"{queue}{sep}{step}")
            for queue in topology.QUEUES
            for step in topology.REDIS_PRIORITY_STEPS
        ]

    def tasks(self) -> list[QueuedTask]:
        found = []
        for queue, key in self.keys():
            for raw in reversed(self.client.lrange(key, 0, -1)):  # LPUSHed: oldest last
                message = json.loads(raw)
                args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
                found.append(QueuedTask(message["headers"]["task"], args, kwargs, queue,
                                        message["properties"]["priority"]))
        return found

    def named(self, task: str) -> list[QueuedTask]:
        return [t for t in self.tasks() if t.task == task]

    def flush(self) -> None:
        self.client.flushdb()


@contextmanager
def isolated_broker() -> Iterator[IsolatedBroker]:
    """The real Redis, in a database no test worker reads, so every published task stays put."""
    isolated = IsolatedBroker(_with_db(settings.CELERY_BROKER_URL, ISOLATED_REDIS_DB))
    isolated.flush()
    try:
        with celery_broker(isolated.url):
            yield isolated
    finally:
        isolated.flush()
        isolated.client.close()


def priority(name: topology.Priority) -> int:
    return topology.broker_priority(name, settings.CELERY_BROKER_URL)


def at(seconds: int) -> datetime:
    """A webhook's Unix ``timestamp`` as the aware datetime the rows store."""
    return datetime.fromtimestamp(seconds, tz=UTC)
