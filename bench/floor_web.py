"""The floor's web side: a bare Django (settings, URLs and views in one module, nothing of the project).

Served by its own gunicorn with the compose ``web`` service's options
(``DJANGO_SETTINGS_MODULE=bench.floor_web``, ``bench.floor_wsgi:application``), so the
floor pays for Django's request handling and nothing else: no installed apps, no
middleware, no database, no templates, no logging configuration. The views:

* ``bench/floor/ok/``: read the body, answer 200 (the floor of a webhook POST that only
  has to be acknowledged, e.g. a status);
* ``bench/floor/chain/``: read the text message out of a webhook body and publish the
  bare Celery chain of ``bench.floor_tasks`` (the floor of the reply path).
"""

from __future__ import annotations

import json
import os

from django.http import HttpRequest, HttpResponse
from django.urls import path

SECRET_KEY = os.environ.get("SECRET_KEY") or "bench-floor-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict = {}
ROOT_URLCONF = "bench.floor_web"
USE_TZ = True
LOGGING_CONFIG = None


def floor_ok(request: HttpRequest) -> HttpResponse:
    """The least a Django view can do for a webhook POST: take the body, say 200."""
    _body = request.body
    return HttpResponse(b"", status=200)


def floor_chain(request: HttpRequest) -> HttpResponse:
    """Parse the webhook body just enough to know who wrote what, and publish the bare chain."""
    from bench import floor_tasks

    try:
        value = json.loads(request.body)["entry"][0]["changes"][0]["value"]
        message = value["messages"][0]
        wa_id, text = message["from"], message["text"]["body"]
    except (ValueError, KeyError, IndexError, TypeError):
        return HttpResponse(b"not a text message webhook", status=400)
    floor_tasks.process.apply_async(args=(wa_id, text), queue=floor_tasks.FLOOR_QUEUE)
    return HttpResponse(b"", status=200)


urlpatterns = [
    path("bench/floor/ok/", floor_ok, name="bench-floor-ok"),
    path("bench/floor/chain/", floor_chain, name="bench-floor-chain"),
]
