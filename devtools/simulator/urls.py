"""The developer simulator's URLs; the project mounts them under ``simulator/`` only with DEBUG."""

from django.urls import path

from devtools.simulator import views

app_name = "simulator"

urlpatterns = [
    path("", views.page, name="page"),
    path("send", views.send, name="send"),
    path("feed", views.feed, name="feed"),
    path("conversation", views.conversation, name="conversation"),
    path("reset", views.reset, name="reset"),
    path("csrf", views.csrf, name="csrf"),
]
