"""The simulator's photo: the simulated user sends a sample photo (its bytes held by the fake
Graph API, as WhatsApp holds them), the project downloads it like any user's media, and the
chat drawn from the database shows it through the staff-only media URL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from django.contrib import admin
from django.urls import include, path, reverse

from conversations.models import MediaStatus, Message
from conversations.services import media
from devtools.fake_graph import start_fake_graph
from devtools.simulator.views import SAMPLE_PHOTO
from meta_integration.models import MetaAppConfig
from tests.support.broker import purge_project_queues

PHONE_NUMBER_ID = "109876543210988"
APP_SECRET = "simulator-media-app-secret"
ACCESS_TOKEN = "simulator-media-access-token"
USER = "263771119999"

# Its own urlconf, as tests/test_simulator.py: the project's mounts the simulator only when
# DEBUG was on at import, which depends on what ran before in the session.
urlpatterns = [
    path("", include("meta_integration.urls")),
    path("simulator/", include("devtools.simulator.urls")),
    path("conversations/", include("conversations.urls")),
    path("admin/", admin.site.urls),
]
pytestmark = pytest.mark.urls(__name__)


@pytest.fixture(scope="module")
def fake_graph() -> Iterator:
    fake, server = start_fake_graph(access_token=ACCESS_TOKEN)
    yield fake, server
    server.stop()
    purge_project_queues()  # no worker here: drop the process/download tasks the webhook enqueued


@pytest.fixture
def business(transactional_db, live_server, settings, fake_graph, tmp_path) -> MetaAppConfig:
    fake, server = fake_graph
    fake.reset()
    settings.DEBUG = True
    settings.META_PHONE_NUMBER_ID = PHONE_NUMBER_ID
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    return MetaAppConfig.objects.create(
        name="Kwacha Sports", phone_number_id=PHONE_NUMBER_ID, display_phone_number="263242700101",
        waba_id="104455667788991", access_token=ACCESS_TOKEN, app_secret=APP_SECRET,
        verify_token="simulator-media-verify", graph_api_url=server.url,
    )


def test_a_sample_photo_goes_through_the_media_path_and_shows_in_the_chat(business, live_server, fake_graph):
    fake, _server = fake_graph
    with httpx.Client(base_url=live_server.url, timeout=20.0) as browser:
        assert browser.get("/simulator/").status_code == 200
        browser.headers["X-CSRFToken"] = browser.cookies["csrftoken"]
        response = browser.post("/simulator/send", json={"wa_id": USER, "kind": "image", "text": "my slip"})
        assert response.status_code == 200, response.text
        message = Message.objects.get(wamid=response.json()["wamid"])
        assert (message.message_type, message.text) == ("image", "my slip")
        media_id = message.content["media"]["id"]
        assert fake.media.get(media_id)["data"] == SAMPLE_PHOTO

        def photo() -> dict:
            items = browser.get("/simulator/conversation", params={"wa_id": USER}).json()["items"]
            return next(item for item in items if item.get("message_id") == message.pk)

        assert (photo()["kind"], photo()["media_status"], photo().get("url")) == ("media", "pending", None)
        row = media.download(message.pk)  # what the worker's conversations.download_media runs
        assert row is not None and row.status == MediaStatus.STORED
        assert (photo()["media_status"], photo()["url"]) == ("stored", reverse("conversations:media",
                                                                                 args=[message.pk]))
        assert photo()["caption"] == "my slip"
