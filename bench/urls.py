"""Bench-only URLs: the project's, plus the floor views the benchmarks compare against.

Served only by the benchmark's gunicorn (``DJANGO_SETTINGS_MODULE=bench.settings``), so
the floor views exist nowhere else. They go through the same server, middleware and
request parsing as the webhook, and do nothing else:

* ``bench/floor/ok/``: read the body, answer 200 (the webhook-ingest floor);
* ``bench/floor/chain/``: read the text message out of a webhook body and enqueue the bare
  Celery chain of ``bench.floor_tasks`` (the reply-latency floor).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, include, path
from django.views.decorators.csrf import csrf_exempt

from bench import floor_tasks
from whatsappcrm_backend.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def floor_ok(request: HttpRequest) -> HttpResponse:
    """The least a Django view can do for a webhook POST: take the body, say 200."""
    _body = request.body
    return HttpResponse(b"", status=200)


@csrf_exempt
def floor_chain(request: HttpRequest) -> HttpResponse:
    """Parse the webhook body just enough to know who wrote what, and enqueue the bare chain."""
    try:
        value = json.loads(request.body)["entry"][0]["changes"][0]["value"]
        message = value["messages"][0]
        wa_id, text = message["from"], message["text"]["body"]
    except (ValueError, KeyError, IndexError, TypeError):
        return HttpResponse(b"not a text message webhook", status=400)
    floor_tasks.process.apply_async(args=(wa_id, text), queue=floor_tasks.FLOOR_QUEUE)
    return HttpResponse(b"", status=200)



def _project_serves(url: str) -> bool:
    for pattern in project_urlpatterns:
        try:
            if pattern.resolve(url):
                return True
        except Resolver404:
            continue
    return False


# Until the project's urls.py mounts the webhook, the benchmark mounts it the way
# meta_integration/urls.py says to, so the figures exist; the report notes it.
MOUNTED_WEBHOOK = not _project_serves("webhooks/meta/")

urlpatterns = [
    *project_urlpatterns,
    *([path("", include("meta_integration.urls"))] if MOUNTED_WEBHOOK else []),
    path("bench/floor/ok/", floor_ok, name="bench-floor-ok"),
    path("bench/floor/chain/", floor_chain, name="bench-floor-chain"),
]
