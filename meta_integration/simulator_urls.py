"""The developer simulator's URLs; the project mounts them under ``simulator/`` only with DEBUG."""

from django.urls import path

from meta_integration import simulator

app_name = "simulator"

urlpatterns = [
    path("", simulator.page, name="page"),
    path("send", simulator.send, name="send"),
    path("feed", simulator.feed, name="feed"),
]
