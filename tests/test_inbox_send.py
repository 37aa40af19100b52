"""The inbox's sends over the real path: the view -> send_to_contact -> broker -> the gevent
I/O worker -> the fake Graph API. What the fake receives is what the contact would get."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from conversations.models import Message, MessageStatus
from inbox import services
from inbox.models import AuditEvent, Conversation
from tests.support.inbox import inbound, make_contact, make_template, make_user
from tests.support.outbound import make_config
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def agent(client):
    user = make_user("rudo", role="agent")
    client.force_login(user)
    return user


def conversation_of(contact) -> Conversation:
    services.sync_conversations()
    return Conversation.objects.get(contact=contact, app_config=contact.app_config)


def test_a_reply_reaches_meta_from_the_conversations_number_as_the_operator(client, agent, gevent_worker, fake,
                                                                           graph_url):
    other = make_config(graph_url, name="Other number")
    config = make_config(graph_url)
    contact = make_contact(config)
    inbound(contact, "is anyone there?")
    conversation = conversation_of(contact)
    text = "Hi Tendai, *Rudo* here. Your withdrawal is on its way ✅"

    response = client.post(reverse("inbox:send", args=[conversation.pk]), {"text": text})
    assert response.status_code == 200, response.content
    message_id = response.json()["id"]

    [record] = fake.wait_for_messages(1, to=contact.wa_id, timeout=20)
    assert record.path == f"/v23.0/{config.phone_number_id}/messages"  # not other.phone_number_id
    assert other.phone_number_id != config.phone_number_id
    assert record.body["type"] == "text" and record.body["text"]["body"] == text
    assert record.body["biz_opaque_callback_data"] == f"msg:{message_id}"
    message = Message.objects.get(pk=message_id)
    assert (message.sent_by, message.app_config_id) == ("rudo", config.pk)
    assert list(AuditEvent.objects.values_list("action", "actor_name")) == [("send", "rudo")]

    # the open page's poll shows the status moving on
    wait_until(lambda: Message.objects.get(pk=message_id).status == MessageStatus.SENT, what="sent")
    data = client.get(reverse("inbox:poll", args=[conversation.pk]),
                      {"after": message_id, "v": 0, "st": f"{message_id}:pending"}).json()
    assert [(s["id"], s["status"]) for s in data["statuses"]] == [(message_id, "sent")]


def test_a_template_send_arrives_with_its_variables(client, agent, gevent_worker, fake, graph_url):
    config = make_config(graph_url)
    contact = make_contact(config, wrote_ago=timedelta(hours=30))
    inbound(contact, "old message")
    template = make_template(config)
    conversation = conversation_of(contact)

    response = client.post(reverse("inbox:template", args=[conversation.pk]),
                           {"template": template.pk, "var:body.1": "Tendai", "var:body.2": "$12.50"})
    assert response.status_code == 200, response.content
    [record] = fake.wait_for_messages(1, to=contact.wa_id, timeout=20)
    assert record.path == f"/v23.0/{config.phone_number_id}/messages"
    assert record.body["template"] == {
        "name": "bet_settled", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Tendai"},
                                                         {"type": "text", "text": "$12.50"}]}],
    }


def test_a_note_never_reaches_meta_and_a_release_message_does(client, agent, gevent_worker, fake, graph_url):
    config = make_config(graph_url)
    contact = make_contact(config)
    inbound(contact, "agent please")
    conversation = conversation_of(contact)
    url = reverse("inbox:action", args=[conversation.pk])
    assert client.post(url, {"action": "take_over"}).status_code == 200
    assert client.post(url, {"action": "note", "text": "SECRET: suspected fraud"}).status_code == 200
    assert client.post(url, {"action": "release", "message": "Back to the bot now, goodbye!"}).status_code == 200

    [record] = fake.wait_for_messages(1, to=contact.wa_id, timeout=20)
    assert record.body["text"]["body"] == "Back to the bot now, goodbye!"
    assert all("SECRET" not in str(r.body) for r in fake.requests())
    assert not Message.objects.filter(text__contains="SECRET").exists()
    contact.refresh_from_db()
    assert contact.needs_human is False


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200))


def test_an_attached_file_is_uploaded_to_meta_then_sent_from_the_conversations_number(client, agent, gevent_worker,
                                                                                       fake, graph_url):
    from django.core.files.uploadedfile import SimpleUploadedFile

    config = make_config(graph_url)
    contact = make_contact(config)
    inbound(contact, "send me the slip")
    conversation = conversation_of(contact)
    upload = SimpleUploadedFile("bet-slip.png", PNG, content_type="image/png")

    response = client.post(reverse("inbox:attach", args=[conversation.pk]), {"file": upload, "caption": "Your *slip*"})
    assert response.status_code == 200, response.content
    [record] = fake.wait_for_messages(1, to=contact.wa_id, timeout=20)
    assert record.path == f"/v23.0/{config.phone_number_id}/messages"
    media_id = record.body["image"]["id"]
    assert record.body["image"]["caption"] == "Your *slip*"
    assert fake.media.get(media_id)["data"] == PNG  # the bytes Meta holds are the file's
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.sent_by, message.content["media_type"], message.content["id"]) == ("rudo", "image", media_id)


@pytest.mark.parametrize("name, data, content_type, reason", [
    ("setup.exe", b"MZ\x90\x00", "application/x-msdownload", "cannot be sent"),
    ("fake.png", b"GIF89a not a png", "image/png", "not image/png"),
    ("big.png", PNG + b"\x00" * (5 * 1024 * 1024), "image/png", "more than"),
])
def test_a_file_whatsapp_would_refuse_is_refused_before_any_upload(client, agent, fake, graph_url, name, data,
                                                                   content_type, reason):
    from django.core.files.uploadedfile import SimpleUploadedFile

    config = make_config(graph_url)
    contact = make_contact(config)
    inbound(contact, "hi")
    response = client.post(reverse("inbox:attach", args=[conversation_of(contact).pk]),
                           {"file": SimpleUploadedFile(name, data, content_type=content_type)})
    assert response.status_code == 400
    assert response.json()["field"] == "file" and reason in response.json()["error"]
    assert fake.requests() == [] and not Message.objects.outbound().exists()
