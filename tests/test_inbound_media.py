"""Inbound media: a signed media webhook -> conversations.download_media on a real gevent
worker -> the fake Graph API's media URL (token, expiry) -> bytes checked and stored through
Django's storage -> served to staff only. Oversized and wrong-type files are refused and
nothing is stored; an expired URL is fetched again from the media id. Plus upload_media."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from conversations.models import Contact, Direction, MediaStatus, Message, MessageMedia
from conversations.services import media
from devtools import webhook_payloads as simulate
from meta_integration.media import MediaRefused, upload_media
from tests.support.inbound import make_app_config, post_webhook
from tests.support.outbound import start_io_worker
from tests.support.waiting import wait_until
from whatsappcrm_backend import topology
from whatsappcrm_backend.api import AGENT_GROUP, READ_ONLY_GROUP

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

TOKEN = "EAAG-media-test-token"
MAX_BYTES = 200_000  # MEDIA_MAX_BYTES for the worker: small, so "too large" needs no big files
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + os.urandom(2000) + b"\xff\xd9"
PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 20 + b"%%EOF\n"


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def graph_token() -> str:
    """The token of this module's fake Graph API (conftest's fake_server)."""
    return TOKEN


@pytest.fixture(scope="module")
def media_worker(django_db_setup, django_db_blocker, media_root):
    from tests.support.broker import clear_broker

    worker = start_io_worker(env={"MEDIA_ROOT": str(media_root), "MEDIA_MAX_BYTES": str(MAX_BYTES)})
    yield worker
    worker.kill()
    clear_broker()


@pytest.fixture(autouse=True)
def _settings(settings, media_root):
    settings.ROOT_URLCONF = "whatsappcrm_backend.urls"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media_root)}}}
    settings.MEDIA_MAX_BYTES = MAX_BYTES


@pytest.fixture
def config(fake_server):
    return make_app_config(graph_api_url=fake_server[1], access_token=TOKEN)


def receive(client, payload: dict) -> Message:
    assert post_webhook(client, simulate.webhook_body([payload])).status_code == 200
    return Message.objects.get(wamid=payload["id"])


def settled(message: Message) -> MessageMedia:
    wait_until(lambda: MessageMedia.objects.filter(message=message).exclude(status=MediaStatus.PENDING).exists(),
               what="the download to finish")
    return MessageMedia.objects.get(message=message)


def stored_files(media_root) -> list[str]:
    return sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())


def test_the_download_runs_on_the_io_queue_below_replies():
    route, reply = topology.TASKS["conversations.download_media"], topology.TASKS["flows.process_message"]
    assert route.queue == topology.IO_QUEUE
    order = list(topology.Priority)
    assert order.index(route.priority) > order.index(reply.priority)


def test_an_image_is_stored_and_served_to_an_operator_only(media_worker, fake, config, client, media_root):
    media_id = fake.media.add(JPEG, "image/jpeg")
    message = receive(client, simulate.image(media_id, caption="my slip", wa_id="263771110001"))
    row = settled(message)
    assert (row.status, row.error, row.media_id, row.mime_type, row.size) == (
        MediaStatus.STORED, "", media_id, "image/jpeg", len(JPEG))
    assert row.file.read() == JPEG
    assert row.file.name in stored_files(media_root)
    # Meta's URL needed the token: the worker sent it (a request without it gets 401).
    assert [r.http_status for r in fake.requests() if r.path.startswith("/whatsapp_business/")] == [200]

    url = reverse("conversations:media", args=[message.pk])
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    # An API user who is not staff never reaches admin's pages, this one included.
    api_agent = User.objects.create_user("api-agent")
    api_agent.groups.add(Group.objects.get_or_create(name=AGENT_GROUP)[0])
    client.force_login(api_agent)
    assert client.get(url).status_code == 302
    # Staff with a role that reads conversations (here the lowest: read-only) see it, as in the inbox.
    operator = User.objects.create_user("tariro", is_staff=True)
    operator.groups.add(Group.objects.get_or_create(name=READ_ONLY_GROUP)[0])
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg" and response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == JPEG


def test_a_document_keeps_its_name_and_is_served_as_a_download(media_worker, fake, config, client):
    media_id = fake.media.add(PDF, "application/pdf")
    message = receive(client, simulate.document(media_id, filename="payslip.pdf", wa_id="263771110002"))
    assert settled(message).status == MediaStatus.STORED
    client.force_login(User.objects.create_superuser("admin", "a@example.com", None))
    response = client.get(reverse("conversations:media", args=[message.pk]))
    assert response["Content-Disposition"].startswith("attachment") and "payslip.pdf" in response["Content-Disposition"]


def test_an_oversized_file_is_refused_before_its_bytes_are_fetched(media_worker, fake, config, client, media_root):
    big = JPEG[:-2] + os.urandom(MAX_BYTES) + b"\xff\xd9"
    media_id = fake.media.add(big, "image/jpeg")
    row = settled(receive(client, simulate.image(media_id, wa_id="263771110003")))
    assert row.status == MediaStatus.FAILED and not row.file
    assert f"more than the {MAX_BYTES} allowed" in row.error
    assert fake.media.downloads.get(media_id, 0) == 0  # Meta's file_size was enough to refuse
    assert stored_files(media_root) == [] or all(media_id not in name for name in stored_files(media_root))


def test_a_type_not_allowed_for_the_message_is_refused_without_calling_meta(media_worker, fake, config, client):
    media_id = fake.media.add(b"GIF89a" + os.urandom(100), "image/gif")
    row = settled(receive(client, simulate.image(media_id, mime_type="image/gif", wa_id="263771110004")))
    assert row.status == MediaStatus.FAILED and not row.file
    assert "type image/gif is not allowed for image" in row.error
    assert fake.media.info_requests.get(media_id, 0) == 0


def test_bytes_that_are_not_the_declared_type_are_refused(media_worker, fake, config, client, media_root):
    page = b"<!doctype html><script>alert(1)</script>"
    media_id = fake.media.add(page, "image/jpeg")
    row = settled(receive(client, simulate.image(media_id, wa_id="263771110005")))
    assert row.status == MediaStatus.FAILED and not row.file
    assert "the bytes are not image/jpeg" in row.error
    assert all(media_id not in name for name in stored_files(media_root))


def test_an_expired_url_is_fetched_again_from_the_media_id(media_worker, fake, config, client):
    media_id = fake.media.add(JPEG, "image/jpeg")
    fake.media.expire_next_urls(1)  # the first URL Meta hands out has expired by the time it is used
    row = settled(receive(client, simulate.image(media_id, wa_id="263771110006")))
    assert row.status == MediaStatus.STORED, row.error
    assert row.file.read() == JPEG
    assert fake.media.info_requests[media_id] == 2
    assert [r.http_status for r in fake.requests() if r.path.startswith("/whatsapp_business/")] == [404, 200]


def test_a_text_message_enqueues_no_download(media_worker, fake, config, client):
    message = receive(client, simulate.text("hello", wa_id="263771110007"))
    wait_until(lambda: Message.objects.get(pk=message.pk).processed_at is not None, what="the bot's turn")
    assert not MessageMedia.objects.exists()
    assert fake.media.info_requests == {}


# ------------------------------------------------------------------ upload (the inbox's "attach a file")


def test_upload_media_returns_metas_id_and_the_fake_holds_the_bytes(fake, config):
    media_id = upload_media(config, "slip.jpg", "image/jpeg", JPEG)
    assert media_id.isdigit()
    stored = fake.media.get(media_id)
    assert (stored["data"], stored["mime_type"], stored["filename"]) == (JPEG, "image/jpeg", "slip.jpg")
    [record] = fake.requests()
    assert record.path == f"/{config.api_version}/{config.phone_number_id}/media" and record.http_status == 200


@pytest.mark.parametrize(("name", "content_type", "data", "says"), [
    ("virus.exe", "application/x-msdownload", b"MZ" + os.urandom(100), "cannot be sent on WhatsApp"),
    ("slip.jpg", "image/jpeg", b"<html>not an image</html>", "the bytes are not image/jpeg"),
    ("big.jpg", "image/jpeg", JPEG + os.urandom(MAX_BYTES), f"more than the {MAX_BYTES} allowed"),
    ("empty.pdf", "application/pdf", b"", "is empty"),
], ids=["type", "content", "size", "empty"])
def test_upload_media_refuses_what_whatsapp_would_before_calling_meta(fake, config, name, content_type, data, says):
    with pytest.raises(MediaRefused, match=says):
        upload_media(config, name, content_type, data)
    assert fake.requests() == []


def test_the_sweeper_enqueues_downloads_that_never_started_or_stalled(config, broker):
    contact = Contact.objects.create(wa_id="263771110009")
    old = timezone.now() - timedelta(minutes=30)

    def media_message(wamid: str, message_type: str = "image") -> Message:
        message = Message.objects.create(contact=contact, app_config=config, direction=Direction.INBOUND,
                                         message_type=message_type, wamid=wamid, status="received",
                                         content={"media": {"id": "1234", "mime_type": "image/jpeg"}})
        Message.objects.filter(pk=message.pk).update(created_at=old)
        return message

    never_started = media_message("wamid.never")
    stalled = media_message("wamid.stalled")
    MessageMedia.objects.create(message=stalled, media_id="1234")
    MessageMedia.objects.filter(message=stalled).update(updated_at=old)
    done = media_message("wamid.done")
    MessageMedia.objects.create(message=done, media_id="1234", status=MediaStatus.FAILED, error="too large")
    media_message("wamid.text", "text")
    fresh = media_message("wamid.fresh")
    Message.objects.filter(pk=fresh.pk).update(created_at=timezone.now())

    assert media.enqueue_missing() == 2
    assert sorted(t.args[0] for t in broker.named(media.DOWNLOAD_TASK)) == sorted([never_started.pk, stalled.pk])


def test_the_media_admin_lists_refused_files_with_the_reason(config, client):
    contact = Contact.objects.create(wa_id="263771110010")
    message = Message.objects.create(contact=contact, app_config=config, direction=Direction.INBOUND,
                                     message_type="video", wamid="wamid.video", status="received")
    MessageMedia.objects.create(message=message, media_id="555", mime_type="video/mp4", status=MediaStatus.FAILED,
                                error="video is 20000000 bytes, more than the 16777216 allowed")
    client.force_login(User.objects.create_superuser("admin", "a@example.com", None))
    page = client.get(reverse("admin:conversations_messagemedia_changelist") + "?status__exact=failed")
    assert page.status_code == 200
    assert "more than the 16777216 allowed" in page.content.decode()


def test_meta_failing_for_a_while_is_retried_by_the_task(media_worker, fake, config, client):
    media_id = fake.media.add(JPEG, "image/jpeg")
    fake.media.fail_next_info(2)  # 503 twice, then Meta answers
    row = settled(receive(client, simulate.image(media_id, wa_id="263771110008")))
    assert row.status == MediaStatus.STORED, row.error
    assert fake.media.info_requests[media_id] == 3
    assert row.attempts == 3
