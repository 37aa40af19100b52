"""Mount with ``path("", include("meta_integration.urls"))``: the webhook lives at /webhooks/meta/.

The trailing slash is optional because Meta POSTs to exactly the URL configured in the app
dashboard, and APPEND_SLASH cannot redirect a POST.
"""

from django.urls import re_path

from meta_integration import views

app_name = "meta_integration"

urlpatterns = [
    re_path(r"^webhooks/meta/?$", views.webhook, name="webhook"),
]
