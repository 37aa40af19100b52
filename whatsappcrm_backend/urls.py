"""URL configuration. Apps mount their own urls here; development-only tools only with DEBUG."""

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from whatsappcrm_backend import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics_view, name="metrics"),
    path("", include("meta_integration.urls")),
    path("api/", include("whatsappcrm_backend.api")),
    path("conversations/", include("conversations.urls")),  # conversations:media (staff only)
]

if settings.DEBUG:
    # Development only: the WhatsApp simulator, and static files (gunicorn serves the devstack too).
    urlpatterns += [path("simulator/", include("devtools.simulator.urls"))]
    urlpatterns += staticfiles_urlpatterns()
