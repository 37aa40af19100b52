"""Inbound messages through the webhook: the rows written and the tasks enqueued on a real broker.

Each kind of message Meta sends is built by ``simulate``, posted signed through Django's test
client, and checked in the database (Contact, Message) and in Redis (exactly one
``flows.process_message`` per new message at HIGH priority and nothing else: that task also
sends the read receipt).
"""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest
from django.db import connection, transaction
from django.test import Client

from conversations.models import MEDIA_MESSAGE_TYPES, Contact, Direction, Message, MessageStatus, StatusEvent
from conversations.services import inbound, media
from devtools import webhook_payloads as simulate
from meta_integration.models import WebhookEvent
from tests.support.inbound import URLCONF, at, make_app_config, post_webhook, priority
from whatsappcrm_backend import topology

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLCONF)]

USER = simulate.DEFAULT_WA_ID
OUR_WAMID = simulate.new_wamid(outgoing=True)
TS = 1_760_000_000  # 2025-10-09T08:53:20Z


def unknown_type_message() -> dict:
    """A type this code has never heard of (Meta adds types): kept as 'unknown'."""
    return {"from": USER, "id": simulate.new_wamid(), "timestamp": str(TS), "type": "poll",
            "poll": {"question": "Who wins?", "options": ["Dynamos", "CAPS United"]}}


# kind -> (message builder, type, text, {content path: value}, reply_to_wamid)
KINDS = {
    "text": (lambda: simulate.text("Hi there", timestamp=TS), "text", "Hi there", {"text": "Hi there"}, ""),
    "text-reply": (
        lambda: simulate.text("yes please", timestamp=TS, context=OUR_WAMID),
        "text", "yes please", {"context.message_id": OUR_WAMID}, OUR_WAMID,
    ),
    "text-forwarded": (
        lambda: simulate.text("look at this", timestamp=TS, context=simulate.Context(forwarded=True)),
        "text", "look at this", {"context.forwarded": True, "context.message_id": None}, "",
    ),
    "image": (
        lambda: simulate.image("1234567890123456", caption="my bet slip", timestamp=TS),
        "image", "my bet slip", {"media.id": "1234567890123456", "media.mime_type": "image/jpeg"}, "",
    ),
    "video": (
        lambda: simulate.video("2234567890123456", timestamp=TS),
        "video", "", {"media.id": "2234567890123456", "media.mime_type": "video/mp4"}, "",
    ),
    "audio": (
        lambda: simulate.audio("3234567890123456", timestamp=TS),
        "audio", "", {"media.id": "3234567890123456", "media.voice": True}, "",
    ),
    "document": (
        lambda: simulate.document("4234567890123456", filename="statement.pdf", caption="March", timestamp=TS),
        "document", "March", {"media.filename": "statement.pdf", "media.mime_type": "application/pdf"}, "",
    ),
    "sticker": (
        lambda: simulate.sticker("5234567890123456", animated=True, timestamp=TS),
        "sticker", "", {"media.animated": True, "media.mime_type": "image/webp"}, "",
    ),
    "location": (
        lambda: simulate.location(-17.8292, 31.0522, "Harare Gardens", "Julius Nyerere Way", timestamp=TS),
        "location", "", {"location.latitude": -17.8292, "location.name": "Harare Gardens"}, "",
    ),
    "contacts": (
        lambda: simulate.contacts_message(
            [simulate.contact_card("Rudo Chikwanha", "+263 77 111 2222", wa_id="263771112222")], timestamp=TS
        ),
        "contacts", "", {"contacts.0.formatted_name": "Rudo Chikwanha", "contacts.0.phones.0.wa_id": "263771112222"},
        "",
    ),
    "button-reply": (
        lambda: simulate.button_reply("bet_slip", "My bet slip", timestamp=TS, context=OUR_WAMID),
        "interactive", "My bet slip", {"reply_id": "bet_slip", "interactive.kind": "button_reply"}, OUR_WAMID,
    ),
    "list-reply": (
        lambda: simulate.list_reply("league_39", "Premier League", "England", timestamp=TS, context=OUR_WAMID),
        "interactive", "Premier League",
        {"reply_id": "league_39", "interactive.kind": "list_reply", "interactive.description": "England"},
        OUR_WAMID,
    ),
    "flow-reply": (
        lambda: simulate.nfm_reply({"stake": "5", "team": "Dynamos"}, flow_token="tok-1", timestamp=TS,
                                   context=OUR_WAMID),
        "interactive", "Sent",
        {"interactive.kind": "nfm_reply", "interactive.response_json.stake": "5",
         "interactive.response_json.flow_token": "tok-1", "reply_id": None},
        OUR_WAMID,
    ),
    "template-button": (
        lambda: simulate.template_button("CONFIRM_BET", "Confirm", timestamp=TS, context=OUR_WAMID),
        "button", "Confirm", {"reply_id": "CONFIRM_BET", "button.payload": "CONFIRM_BET"}, OUR_WAMID,
    ),
    "reaction": (
        lambda: simulate.reaction(OUR_WAMID, "\U0001f44d", timestamp=TS),
        "reaction", "", {"reaction.message_id": OUR_WAMID, "reaction.emoji": "\U0001f44d",
                         "reaction.removed": False}, "",
    ),
    "un-reaction": (
        lambda: simulate.reaction(OUR_WAMID, "", timestamp=TS),
        "reaction", "", {"reaction.emoji": None, "reaction.removed": True}, "",
    ),
    "order": (
        lambda: simulate.order("194836987003835", [simulate.order_item("sku-jersey", 2, 25.0)], text="for the derby",
                               timestamp=TS),
        "order", "for the derby",
        {"order.catalog_id": "194836987003835", "order.product_items.0.quantity": 2}, "",
    ),
    "referral": (
        lambda: simulate.referral_text("I saw your ad", ctwa_clid="clid-123", timestamp=TS),
        "text", "I saw your ad", {"referral.source_type": "ad", "referral.ctwa_clid": "clid-123"}, "",
    ),
    "unsupported": (
        lambda: simulate.unsupported(timestamp=TS),
        "unsupported", "", {"errors.0.code": 131051, "raw_type": "unsupported"}, "",
    ),
    "system": (
        lambda: simulate.system("User changed number", new_wa_id="263779999999", timestamp=TS),
        "system", "", {"system.new_wa_id": "263779999999", "system.type": "user_changed_number"}, "",
    ),
    "unknown-type": (
        unknown_type_message, "unknown", "", {"raw_type": "poll", "raw.poll.question": "Who wins?"}, "",
    ),
}


def dig(content, path: str):
    for part in path.split("."):
        content = content[int(part)] if isinstance(content, list) else content[part]
    return content


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_is_stored_and_enqueued_once(client, app_config, broker, kind):
    build, message_type, text, content_checks, reply_to = KINDS[kind]
    message = build()
    response = post_webhook(client, simulate.webhook_body([message], profile_name="Tendai Moyo"))
    assert response.status_code == 200

    row = Message.objects.get()
    assert (row.direction, row.message_type, row.text, row.status) == (
        Direction.INBOUND, message_type, text, MessageStatus.RECEIVED
    )
    assert row.wamid == message["id"]
    assert row.reply_to_wamid == reply_to
    assert row.timestamp == at(TS)
    assert row.app_config == app_config
    assert row.processed_at is None
    for path, expected in content_checks.items():
        assert dig(row.content, path) == expected, path
    assert row.content["wamid"] == message["id"]
    assert row.content["timestamp"] == at(TS).isoformat()
    assert ("raw" in row.content) is (message_type == "unknown")  # Meta's dict kept only when untyped

    contact = row.contact
    assert contact.wa_id == USER
    assert contact.last_inbound_at == at(TS)
    assert contact.app_config == app_config
    if kind != "system":  # Meta sends no contacts[] entry (no profile) with a system notice
        assert contact.profile_name == "Tendai Moyo"

    process = broker.named(inbound.PROCESS_MESSAGE_TASK)
    assert [(t.args, t.queue, t.priority) for t in process] == [
        ([row.id, row.contact_id], topology.IO_QUEUE, priority(topology.Priority.HIGH))
    ]
    # A media message's file is downloaded by its own task, below the replies (issue 13).
    downloads = broker.named(media.DOWNLOAD_TASK)
    assert [(t.args, t.queue, t.priority) for t in downloads] == (
        [([row.id], topology.IO_QUEUE, priority(topology.Priority.NORMAL))] if message_type in MEDIA_MESSAGE_TYPES
        else []
    )
    assert len(broker.tasks()) == len(process) + len(downloads)  # the read receipt is process_message's job now


def test_unsupported_message_keeps_metas_error(client, app_config, broker):
    post_webhook(client, simulate.webhook_body([simulate.unsupported(code=131051)]))
    row = Message.objects.get()
    assert (row.error_code, row.error_title) == (131051, "Message type unknown")


def test_a_batch_with_several_entries_changes_messages_and_statuses(client, app_config, broker, settings):
    settings.WEBHOOK_EVENT_SAMPLE_RATE = 1.0  # keep this normal POST in the audit log, to check its summary
    other_user = "263772222222"
    outbound = Message.objects.create(
        contact=Contact.objects.create(wa_id=other_user), app_config=app_config, direction=Direction.OUTBOUND,
        message_type="text", text="Welcome!", wamid=OUR_WAMID, status=MessageStatus.SENT,
    )
    body = simulate.batch(
        simulate.change(
            [simulate.text("menu", timestamp=TS), simulate.text("2", timestamp=TS + 1),
             simulate.text("hello", wa_id=other_user, timestamp=TS + 2)],
            profile_name={USER: "Tendai Moyo", other_user: "Farai"},
        ),
        simulate.change(statuses=[simulate.status(OUR_WAMID, "delivered", other_user, timestamp=TS + 3)]),
        simulate.webhook_body(
            [simulate.image(caption="slip", timestamp=TS + 4)],
            statuses=[simulate.status(OUR_WAMID, "read", other_user, timestamp=TS + 5)],
            waba_id="102290129349999",
        ),
    )
    assert len(body["entry"]) == 2
    assert post_webhook(client, body).status_code == 200

    inbound_rows = list(Message.objects.filter(direction=Direction.INBOUND).order_by("timestamp"))
    assert [(m.contact.wa_id, m.text) for m in inbound_rows] == [
        (USER, "menu"), (USER, "2"), (other_user, "hello"), (USER, "slip")
    ]
    assert {c.wa_id: c.profile_name for c in Contact.objects.all()} == {USER: "Tendai Moyo", other_user: "Farai"}
    assert Contact.objects.get(wa_id=USER).last_inbound_at == at(TS + 4)
    outbound.refresh_from_db()
    assert (outbound.status, outbound.status_at) == (MessageStatus.READ, at(TS + 5))
    assert StatusEvent.objects.filter(applied=True).count() == 2

    event = WebhookEvent.objects.get()
    assert (event.message_count, event.status_count) == (4, 2)
    assert event.summary == "4 messages (text x3, image); 2 statuses (delivered, read)"
    assert [t.args for t in broker.named(inbound.PROCESS_MESSAGE_TASK)] == [[m.id, m.contact_id] for m in inbound_rows]
    assert [t.args for t in broker.named(media.DOWNLOAD_TASK)] == [[inbound_rows[-1].id]]  # the image's file
    assert len(broker.tasks()) == 5


def test_the_same_payload_three_times_is_stored_and_processed_once(client, app_config, broker):
    body = simulate.webhook_body([simulate.text("deposit 10", timestamp=TS)])
    for _ in range(3):
        assert post_webhook(client, body).status_code == 200
    row = Message.objects.get()
    assert [t.args for t in broker.tasks()] == [[row.id, row.contact_id]]
    assert WebhookEvent.objects.count() == 0  # a normal POST is not kept whole (WEBHOOK_EVENT_SAMPLE_RATE=0)
    assert Contact.objects.count() == 1


def test_a_message_repeated_inside_one_post_is_stored_once(client, app_config, broker):
    message = simulate.text("twice", timestamp=TS)
    assert post_webhook(client, simulate.webhook_body([message, message])).status_code == 200
    assert Message.objects.count() == 1
    assert len(broker.named(inbound.PROCESS_MESSAGE_TASK)) == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_redelivered_and_shuffled_notifications_end_in_the_right_state(client, app_config, broker, seed):
    outbound = Message.objects.create(
        contact=Contact.objects.create(wa_id=USER), app_config=app_config, direction=Direction.OUTBOUND,
        message_type="text", text="Pick a league", wamid=OUR_WAMID, status=MessageStatus.PENDING,
    )
    bodies = [
        simulate.webhook_body([simulate.text("1", timestamp=TS + 10)]),
        simulate.webhook_body([simulate.button_reply("league_39", "Premier League", timestamp=TS + 20,
                                                     context=OUR_WAMID)]),
        *(simulate.webhook_body(statuses=[simulate.status(OUR_WAMID, state, USER, timestamp=TS + i)])
          for i, state in enumerate(["sent", "delivered", "read"], start=1)),
    ]
    deliveries = bodies * 3
    random.Random(seed).shuffle(deliveries)
    for body in deliveries:
        assert post_webhook(client, body).status_code == 200

    inbound_rows = Message.objects.filter(direction=Direction.INBOUND)
    assert sorted(m.text for m in inbound_rows) == ["1", "Premier League"]
    assert sorted(t.args[0] for t in broker.named(inbound.PROCESS_MESSAGE_TASK)) == sorted(m.id for m in inbound_rows)
    outbound.refresh_from_db()
    assert (outbound.status, outbound.status_at) == (MessageStatus.READ, at(TS + 3))
    assert StatusEvent.objects.count() == 3
    assert Contact.objects.get().last_inbound_at == at(TS + 20)


def test_two_concurrent_deliveries_of_one_message_store_and_enqueue_it_once(app_config, broker):
    body = simulate.webhook_body([simulate.text("at the same time", timestamp=TS)])
    start = threading.Barrier(2)
    statuses = []

    def deliver() -> None:
        try:
            start.wait()
            statuses.append(post_webhook(Client(), body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200, 200]
    assert Message.objects.count() == 1
    assert len(broker.named(inbound.PROCESS_MESSAGE_TASK)) == 1


def test_a_wamid_inserted_by_a_transaction_still_open_is_not_stored_or_enqueued_twice(client, app_config, broker,
                                                                                       caplog):
    """The UNIQUE constraint is the last word: a concurrent writer whose row is not visible yet.

    Another transaction holds an uncommitted row with the same wamid (for another contact,
    so the contact upsert does not serialize the two). On PostgreSQL the webhook's insert
    waits for it and then conflicts; on SQLite the webhook's transaction waits to begin.
    Either way the webhook stores nothing, enqueues nothing and answers 200.
    """
    message = simulate.text("raced", timestamp=TS)
    other = Contact.objects.create(wa_id="263770000009")
    inserted, release = threading.Event(), threading.Event()

    def concurrent_writer() -> None:
        try:
            with transaction.atomic():
                Message.objects.create(contact=other, direction=Direction.INBOUND, message_type="text", text="first",
                                       wamid=message["id"], status=MessageStatus.RECEIVED)
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=concurrent_writer)
    writer.start()
    assert inserted.wait(10)
    threading.Timer(1.0, release.set).start()  # commit while the webhook waits on the row
    with caplog.at_level(logging.INFO, logger=inbound.__name__):
        response = post_webhook(client, simulate.webhook_body([message]))
    writer.join(10)
    assert response.status_code == 200
    assert list(Message.objects.values_list("text", flat=True)) == ["first"]
    assert broker.named(inbound.PROCESS_MESSAGE_TASK) == []
    assert any("a concurrent delivery won" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------


def test_profile_name_is_never_replaced_by_an_empty_or_placeholder_name(client, app_config, broker):
    post_webhook(client, simulate.webhook_body([simulate.text("hi", timestamp=TS)], profile_name="Tendai Moyo"))
    for placeholder in ["", "   ", "WhatsApp User", USER, f"+{USER}", "~"]:
        post_webhook(client, simulate.webhook_body([simulate.text("again", timestamp=TS)], profile_name=placeholder))
        assert Contact.objects.get().profile_name == "Tendai Moyo", placeholder
    post_webhook(client, simulate.webhook_body([simulate.text("new name", timestamp=TS)], profile_name="Tendai M."))
    assert Contact.objects.get().profile_name == "Tendai M."


def test_a_first_contact_with_a_placeholder_name_gets_no_name(client, app_config, broker):
    post_webhook(client, simulate.webhook_body([simulate.text("hi", timestamp=TS)], profile_name=f"+{USER}"))
    assert Contact.objects.get().profile_name == ""


def test_last_inbound_time_only_moves_forward(client, app_config, broker):
    post_webhook(client, simulate.webhook_body([simulate.text("later", timestamp=TS + 60)]))
    post_webhook(client, simulate.webhook_body([simulate.text("earlier, delivered late", timestamp=TS)]))
    assert Contact.objects.get().last_inbound_at == at(TS + 60)
    post_webhook(client, simulate.webhook_body([simulate.text("latest", timestamp=TS + 120)]))
    assert Contact.objects.get().last_inbound_at == at(TS + 120)


def test_an_operators_settings_survive_new_messages(client, app_config, broker):
    post_webhook(client, simulate.webhook_body([simulate.text("hi", timestamp=TS)]))
    Contact.objects.update(name="Tendai", needs_human=True, handover_at=at(TS), blocked=True)
    post_webhook(client, simulate.webhook_body([simulate.text("hello?", timestamp=TS + 5)], profile_name="T. Moyo"))
    contact = Contact.objects.get()
    assert (contact.name, contact.needs_human, contact.blocked, contact.profile_name) == (
        "Tendai", True, True, "T. Moyo"
    )


# --------------------------------------------------------------------------------------
# End to end with the real I/O worker
# --------------------------------------------------------------------------------------


@pytest.mark.workers
def test_the_io_worker_processes_what_the_webhook_stored(client, app_config, io_worker):
    body = simulate.webhook_body([simulate.text("menu"), simulate.text("help")])
    assert post_webhook(client, body).status_code == 200
    received = Message.objects.filter(direction=Direction.INBOUND)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and received.filter(processed_at__isnull=True).exists():
        time.sleep(0.1)
    assert received.count() == 2
    assert not received.filter(processed_at__isnull=True).exists(), io_worker.log()[-3000:]


# --------------------------------------------------------------------------------------
# Poison senders (issue 12.4)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["<WHATSAPP_USER_PHONE_NUMBER>", "1555abc"])
def test_a_sender_that_is_not_a_number_is_refused_the_rest_of_the_batch_stored(client, app_config, broker, caplog,
                                                                                sender):
    poison = {"from": sender, "id": simulate.new_wamid(), "timestamp": str(TS), "type": "text",
              "text": {"body": "hi"}}
    good = simulate.text("hello", timestamp=TS)
    body = simulate.webhook_body([good], profile_name="Tendai Moyo")
    body["entry"][0]["changes"][0]["value"]["messages"].insert(0, poison)
    with caplog.at_level(logging.WARNING, logger="meta_integration.services"):
        assert post_webhook(client, body).status_code == 200  # the signature held: Meta must not retry

    assert list(Message.objects.values_list("wamid", flat=True)) == [good["id"]]
    assert list(Contact.objects.values_list("wa_id", flat=True)) == [USER]
    assert [t.args for t in broker.tasks()] == [[Message.objects.get().pk, Message.objects.get().contact_id]]
    assert any("expected a WhatsApp number" in r.getMessage() for r in caplog.records)
    assert WebhookEvent.objects.get().payload == body  # kept whole for the operator, whatever the sample rate


# --------------------------------------------------------------------------------------
# The contact upsert: the number last written to; the database it needs
# --------------------------------------------------------------------------------------


def test_the_contact_keeps_the_business_number_it_last_wrote_to(client, app_config, broker):
    other = make_app_config("109876543210987", "other-business-secret-fedcba9876543210")
    post_webhook(client, simulate.webhook_body([simulate.text("to A", timestamp=TS)]))
    assert Contact.objects.get().app_config == app_config
    post_webhook(client, simulate.webhook_body([simulate.text("to B", timestamp=TS + 1)],
                                               phone_number_id=other.phone_number_id),
                 secret="other-business-secret-fedcba9876543210")
    assert Contact.objects.get().app_config == other
    assert {m.text: m.app_config for m in Message.objects.all()} == {"to A": app_config, "to B": other}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="an SQLite-only check")
def test_an_sqlite_too_old_for_insert_returning_is_refused_at_startup(monkeypatch):
    from conversations import apps as conversations_apps

    assert conversations_apps.sqlite_supports_returning(databases=["default"]) == []
    monkeypatch.setattr(conversations_apps.sqlite3, "sqlite_version_info", (3, 34, 1))
    (error,) = conversations_apps.sqlite_supports_returning(databases=["default"])
    assert error.id == "conversations.E001"


def test_two_first_messages_of_a_new_contact_at_once_make_one_contact(app_config, broker):
    """The contact upsert races itself: INSERT ... ON CONFLICT DO UPDATE, never a duplicate or an error."""
    bodies = [simulate.webhook_body([simulate.text(text, timestamp=TS + i)], profile_name="Tendai Moyo")
              for i, text in enumerate(["hi", "menu"])]
    start = threading.Barrier(2)
    statuses = []

    def deliver(body: dict) -> None:
        try:
            start.wait()
            statuses.append(post_webhook(Client(), body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200, 200]
    contact = Contact.objects.get()
    assert (contact.wa_id, contact.profile_name, contact.last_inbound_at) == (USER, "Tendai Moyo", at(TS + 1))
    assert sorted(Message.objects.values_list("text", flat=True)) == ["hi", "menu"]
    assert len(broker.named(inbound.PROCESS_MESSAGE_TASK)) == 2
