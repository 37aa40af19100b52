"""URL configuration. Apps mount their own urls here; development-only tools only with DEBUG."""

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.http import HttpRequest, JsonResponse
from django.urls import path


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests (liveness)."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]

if settings.DEBUG:
    # gunicorn serves the development stack too; let it serve admin's CSS and JS.
    urlpatterns += staticfiles_urlpatterns()
