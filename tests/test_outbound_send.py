"""Sending through the real path: send_to_contact -> row -> broker -> gevent worker -> fake Graph API.

Each message kind must reach Meta as the exact JSON Meta documents; bad messages fail
before a row is written, naming the field; the 24-hour window is enforced before any HTTP.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Direction, Message, MessageStatus, StatusEvent
from conversations.services import delivery
from conversations.services.delivery import Result
from conversations.services.sending import (
    NoBusinessNumberError,
    enqueue_unsent,
    send_long_text,
    send_parts,
    send_to_contact,
)
from meta_integration.message_bodies import OutboundValidationError
from tests.support.outbound import make_config, make_contact
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

QUOTED = "wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhggNkFBMjA5QkFGRjNCNUI4M0RGQjc0RjM0RkQ0NjQ3NUEA"


def graph(to: str, msg_type: str, content: dict, **extra) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **extra,
            "type": msg_type, msg_type: content}


KINDS = {
    "text": (
        {"type": "text", "body": "Today's fixtures: https://example.com/fixtures", "preview_url": True},
        lambda to: graph(to, "text", {"preview_url": True, "body": "Today's fixtures: https://example.com/fixtures"}),
    ),
    "text_reply": (
        {"type": "text", "body": "Your ticket is placed.", "reply_to": QUOTED},
        lambda to: graph(to, "text", {"preview_url": False, "body": "Your ticket is placed."},
                         context={"message_id": QUOTED}),
    ),
    "buttons": (
        {"type": "buttons", "header": "Arsenal v Chelsea", "body": "Pick a market", "footer": "Odds may change",
         "buttons": [{"id": "1x2", "title": "Match result"}, {"id": "ou25", "title": "Over/Under 2.5"},
                     {"id": "btts", "title": "Both teams score"}]},
        lambda to: graph(to, "interactive", {
            "type": "button",
            "header": {"type": "text", "text": "Arsenal v Chelsea"},
            "body": {"text": "Pick a market"},
            "footer": {"text": "Odds may change"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "1x2", "title": "Match result"}},
                {"type": "reply", "reply": {"id": "ou25", "title": "Over/Under 2.5"}},
                {"type": "reply", "reply": {"id": "btts", "title": "Both teams score"}},
            ]},
        }),
    ),
    "list": (
        {"type": "list", "body": "Choose a league", "button": "Leagues",
         "sections": [
             {"title": "Europe", "rows": [{"id": "epl", "title": "Premier League", "description": "England"},
                                          {"id": "laliga", "title": "La Liga"}]},
             {"title": "Africa", "rows": [{"id": "psl", "title": "Premier Soccer League",
                                           "description": "Zimbabwe"}]},
         ]},
        lambda to: graph(to, "interactive", {
            "type": "list",
            "body": {"text": "Choose a league"},
            "action": {"button": "Leagues", "sections": [
                {"title": "Europe", "rows": [{"id": "epl", "title": "Premier League", "description": "England"},
                                             {"id": "laliga", "title": "La Liga"}]},
                {"title": "Africa", "rows": [{"id": "psl", "title": "Premier Soccer League",
                                              "description": "Zimbabwe"}]},
            ]},
        }),
    ),
    "image_by_id": (
        {"type": "media", "media_type": "image", "id": "1479537139650973", "caption": "Your bet slip"},
        lambda to: graph(to, "image", {"id": "1479537139650973", "caption": "Your bet slip"}),
    ),
    "document_by_link": (
        {"type": "media", "media_type": "document", "link": "https://example.com/terms.pdf",
         "caption": "Terms", "filename": "terms.pdf"},
        lambda to: graph(to, "document", {"link": "https://example.com/terms.pdf", "caption": "Terms",
                                          "filename": "terms.pdf"}),
    ),
    "audio": (
        {"type": "media", "media_type": "audio", "link": "https://example.com/welcome.ogg"},
        lambda to: graph(to, "audio", {"link": "https://example.com/welcome.ogg"}),
    ),
    "video": (
        {"type": "media", "media_type": "video", "id": "2046581845680432", "caption": "Highlights"},
        lambda to: graph(to, "video", {"id": "2046581845680432", "caption": "Highlights"}),
    ),
    "sticker": (
        {"type": "media", "media_type": "sticker", "id": "798882015472548"},
        lambda to: graph(to, "sticker", {"id": "798882015472548"}),
    ),
    "location": (
        {"type": "location", "latitude": -17.8292, "longitude": 31.0522, "name": "National Sports Stadium",
         "address": "Harare"},
        lambda to: graph(to, "location", {"latitude": -17.8292, "longitude": 31.0522,
                                          "name": "National Sports Stadium", "address": "Harare"}),
    ),
    "template": (
        {"type": "template", "name": "bet_settled", "language": "en_US", "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Tendai"}, {"type": "text", "text": "$12.50"}]},
        ]},
        lambda to: graph(to, "template", {"name": "bet_settled", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Tendai"}, {"type": "text", "text": "$12.50"}]},
        ]}),
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_reaches_meta_as_the_exact_json_and_the_wamid_is_stored(gevent_worker, fake, graph_url, kind):
    spec, expected = KINDS[kind]
    config = make_config(graph_url)
    contact = make_contact(config)
    message = send_to_contact(contact, spec)
    [record] = fake.wait_for_messages(1, to=contact.wa_id, timeout=20)
    # Every send names its row, for Meta to echo in the status webhooks.
    assert record.body == {**expected(contact.wa_id), "biz_opaque_callback_data": f"msg:{message.pk}"}
    assert record.path == f"/v23.0/{config.phone_number_id}/messages"
    wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, what="status sent")
    message.refresh_from_db()
    assert (message.wamid, message.attempts, message.direction) == (record.wamid, 1, Direction.OUTBOUND)
    assert message.sent_at is not None and message.content == spec
    assert message.message_type == expected(contact.wa_id)["type"]


def test_the_row_records_type_text_sender_and_quoted_message(graph_url):
    contact = make_contact(make_config(graph_url))
    message = send_to_contact(contact, {"type": "media", "media_type": "image", "link": "https://example.com/a.png",
                                        "caption": "Slip 4411"}, sent_by="operator:rudo", reply_to=QUOTED)
    message.refresh_from_db()
    assert (message.message_type, message.text, message.sent_by, message.reply_to_wamid) == (
        "image", "Slip 4411", "operator:rudo", QUOTED
    )
    assert message.status == MessageStatus.PENDING and message.app_config_id == contact.app_config_id


def test_read_receipts_reach_meta_with_and_without_typing_indicator(fake, graph_url):
    config = make_config(graph_url)
    assert delivery.mark_read(config.pk, QUOTED)
    assert delivery.mark_read(config.pk, QUOTED + "2", typing_indicator=True)
    bodies = sorted((r.body for r in fake.requests()), key=len)
    assert bodies == [
        {"messaging_product": "whatsapp", "status": "read", "message_id": QUOTED},
        {"messaging_product": "whatsapp", "status": "read", "message_id": QUOTED + "2",
         "typing_indicator": {"type": "text"}},
    ]
    assert all(r.http_status == 200 for r in fake.requests())


# ------------------------------------------------------------------ bad input, before any row


BAD_SPECS = [
    ({"type": "text", "body": "x" * 4097}, "text.body", "at most 4096"),
    ({"type": "text", "body": "   "}, "text.body", "must not be empty"),
    ({"type": "buttons", "body": "b" * 1025, "buttons": [{"id": "a", "title": "A"}]},
     "interactive.body.text", "at most 1024"),
    ({"type": "buttons", "body": "Pick", "header": "h" * 61, "buttons": [{"id": "a", "title": "A"}]},
     "interactive.header.text", "at most 60"),
    ({"type": "buttons", "body": "Pick", "footer": "f" * 61, "buttons": [{"id": "a", "title": "A"}]},
     "interactive.footer.text", "at most 60"),
    ({"type": "buttons", "body": "Pick", "buttons": [{"id": str(i), "title": f"Option {i}"} for i in range(4)]},
     "interactive.action.buttons", "1 to 3 buttons"),
    ({"type": "buttons", "body": "Pick", "buttons": [{"id": "a", "title": "A" * 21}]},
     "interactive.action.buttons[0].reply.title", "at most 20"),
    ({"type": "buttons", "body": "Pick", "buttons": [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}]},
     "interactive.action.buttons[1].reply.id", "duplicate button id"),
    ({"type": "list", "body": "Leagues", "button": "B" * 21, "sections": [{"rows": [{"id": "1", "title": "x"}]}]},
     "interactive.action.button", "at most 20"),
    ({"type": "list", "body": "Leagues", "button": "Open",
      "sections": [{"rows": [{"id": str(i), "title": f"League {i}"} for i in range(11)]}]},
     "interactive.action.sections[0].rows", "at most 10 rows"),
    ({"type": "list", "body": "Leagues", "button": "Open",
      "sections": [{"title": f"S{i}", "rows": [{"id": str(i), "title": "x"}]} for i in range(11)]},
     "interactive.action.sections", "1 to 10 sections"),
    ({"type": "list", "body": "Leagues", "button": "Open",
      "sections": [{"title": "T" * 25, "rows": [{"id": "1", "title": "x"}]}]},
     "interactive.action.sections[0].title", "at most 24"),
    ({"type": "list", "body": "Leagues", "button": "Open", "sections": [{"rows": [{"id": "1", "title": "R" * 25}]}]},
     "interactive.action.sections[0].rows[0].title", "at most 24"),
    ({"type": "list", "body": "Leagues", "button": "Open",
      "sections": [{"rows": [{"id": "1", "title": "x", "description": "d" * 73}]}]},
     "interactive.action.sections[0].rows[0].description", "at most 72"),
    ({"type": "media", "media_type": "image"}, "image", "exactly one of 'id' or 'link'"),
    ({"type": "media", "media_type": "gif", "id": "1"}, "media_type", "must be one of"),
    ({"type": "location", "latitude": 95, "longitude": 31}, "location.latitude", "between -90 and 90"),
    ({"type": "template", "name": "bet_settled"}, "language", "required"),
    ({"type": "sms", "body": "hi"}, "type", "unknown spec type"),
    ({"type": "text", "body": "hi", "colour": "red"}, "colour", "unknown field"),
]


@pytest.mark.parametrize(("spec", "field", "reason"), BAD_SPECS, ids=[f for _, f, _ in BAD_SPECS])
def test_a_message_breaking_a_whatsapp_limit_is_refused_naming_the_field(graph_url, spec, field, reason):
    contact = make_contact(make_config(graph_url))
    with pytest.raises(OutboundValidationError) as caught:
        send_to_contact(contact, spec)
    assert caught.value.field == field and reason in caught.value.message
    assert not Message.objects.exists()


def test_a_bad_recipient_number_is_refused(graph_url):
    contact = make_contact(make_config(graph_url), wa_id="tendai@example.com")
    with pytest.raises(OutboundValidationError, match=r"^to: expected a phone number"):
        send_to_contact(contact, {"type": "text", "body": "hi"})


def test_sending_without_any_business_number_says_so(graph_url):
    contact = make_contact(make_config(graph_url))
    contact.app_config.is_active = False
    contact.app_config.save()
    with pytest.raises(NoBusinessNumberError, match="no active Meta app config"):
        send_to_contact(contact, {"type": "text", "body": "hi"})


def test_bad_parts_are_refused_before_any_row_naming_the_part(graph_url):
    contact = make_contact(make_config(graph_url))
    with pytest.raises(OutboundValidationError) as caught:
        send_parts(contact, ["Part one", {"type": "text", "body": ""}, "Part three"])
    assert caught.value.field == "parts[1].text.body"
    with pytest.raises(ValueError, match=r"^texts_or_specs: at least one part"):
        send_parts(contact, [])
    with pytest.raises(ValueError, match=r"^gap_seconds:"):
        send_parts(contact, ["a", "b"], gap_seconds=-1)
    with pytest.raises(TypeError, match=r"^texts_or_specs: pass a list"):
        send_parts(contact, "one long string")
    with pytest.raises(OutboundValidationError, match=r"^text\.body: must not be empty"):
        send_long_text(contact, "\n\n")
    assert not Message.objects.exists()


# ------------------------------------------------------------------ the 24-hour window


def test_outside_the_window_a_text_fails_before_any_http_but_a_template_is_sent(gevent_worker, fake, graph_url):
    config = make_config(graph_url)
    lapsed = make_contact(config, last_inbound_ago=timedelta(hours=24, minutes=5))
    never_wrote = make_contact(config, last_inbound_ago=None)
    text = send_to_contact(lapsed, {"type": "text", "body": "Still there?"})
    cold = send_to_contact(never_wrote, {"type": "text", "body": "Hello"})
    template = send_to_contact(lapsed, {"type": "template", "name": "weekly_odds", "language": "en_US"})
    fake.wait_for_messages(1, to=lapsed.wa_id, timeout=20)
    wait_until(lambda: Message.objects.filter(status=MessageStatus.FAILED).count() == 2, what="two failures")
    for message in (text, cold):
        message.refresh_from_db()
        assert message.error_title == "Outside the 24-hour window"
        assert "only delivers approved templates" in message.error_details
        assert (message.error_code, message.attempts) == (None, 0)
    assert [r.body["type"] for r in fake.requests()] == ["template"]
    wait_until(lambda: Message.objects.get(pk=template.pk).status == MessageStatus.SENT, what="template sent")


# ------------------------------------------------------------------ deliver() decisions, in process


def test_deliver_decides_without_http_for_missing_handled_and_invalid_rows(fake, graph_url):
    config = make_config(graph_url)
    contact = make_contact(config)
    assert delivery.deliver(987654321).result is Result.MISSING
    sent = Message.objects.create(contact=contact, app_config=config, direction="out", message_type="text",
                                  content={"type": "text", "body": "hi"}, status=MessageStatus.SENT,
                                  wamid="wamid.already-sent")
    assert delivery.deliver(sent.pk).result is Result.ALREADY_HANDLED
    broken = Message.objects.create(contact=contact, app_config=config, direction="out", message_type="text",
                                    content={"type": "text", "body": "x" * 5000}, status=MessageStatus.PENDING)
    outcome = delivery.deliver(broken.pk)
    broken.refresh_from_db()
    assert outcome.result is Result.FAILED and broken.status == MessageStatus.FAILED
    assert broken.error_title == "Invalid message" and broken.error_details.startswith("text.body: at most 4096")
    orphan = Message.objects.create(contact=contact, app_config=None, direction="out", message_type="text",
                                    content={"type": "text", "body": "hi"}, status=MessageStatus.PENDING)
    delivery.deliver(orphan.pk)
    orphan.refresh_from_db()
    assert (orphan.status, orphan.error_title) == (MessageStatus.FAILED, "No active business number")
    assert fake.requests() == []


def test_a_part_whose_previous_part_is_not_accepted_is_never_sent(fake, graph_url):
    contact = make_contact(make_config(graph_url))
    parts = send_parts(contact, ["Fixtures 1/3", "Fixtures 2/3", "Fixtures 3/3"], gap_seconds=600)
    assert delivery.deliver(parts[2].pk).result is Result.WAITING_FOR_PREVIOUS_PART
    # Part 2 waits for part 1, or - once a worker has sent part 1 - for its 600 s gap.
    assert delivery.deliver(parts[1].pk).result in (Result.WAITING_FOR_PREVIOUS_PART, Result.NOT_DUE)
    assert all(r.body["text"]["body"] != "Fixtures 3/3" for r in fake.requests())


def test_a_part_follows_a_previous_part_meta_accepted_even_if_its_delivery_failed_later(fake, graph_url):
    config = make_config(graph_url)
    contact = make_contact(config)
    group, now = uuid.uuid4(), timezone.now()
    common = {"contact": contact, "app_config": config, "direction": "out", "message_type": "text",
              "group_id": group, "parts_total": 2}
    Message.objects.create(**common, content={"type": "text", "body": "Fixtures 1/2"}, part_index=0,
                           status=MessageStatus.FAILED, wamid=f"wamid.{group.hex}", sent_at=now, send_after=now,
                           error_code=131026, error_title="Message undeliverable")  # a "failed" status webhook
    second = Message.objects.create(**common, content={"type": "text", "body": "Fixtures 2/2"}, part_index=1,
                                    status=MessageStatus.PENDING, send_after=now)
    assert delivery.deliver(second.pk).result is Result.SENT
    assert [r.body["text"]["body"] for r in fake.messages(to=contact.wa_id)] == ["Fixtures 2/2"]


def test_a_spent_throughput_bucket_reschedules_instead_of_waiting(fake, graph_url):
    config = make_config(graph_url, rate=0.5)  # one token, then one every 2 s
    contact = make_contact(config)
    first, second = (  # rows only: no task, so no worker competes for the tokens
        Message.objects.create(contact=contact, app_config=config, direction="out", message_type="text",
                               content={"type": "text", "body": f"Tip {i}"}, status=MessageStatus.PENDING)
        for i in (1, 2)
    )
    assert delivery.deliver(first.pk).result is Result.SENT
    outcome = delivery.deliver(second.pk)
    assert outcome.result is Result.RATE_LIMITED and outcome.reschedule and 1.0 < outcome.delay < 3.0
    second.refresh_from_db()
    assert (second.status, second.attempts) == (MessageStatus.PENDING, 0)  # waiting is not an attempt


# ------------------------------------------------------------------ statuses that came first, sweeper


# ``broker``: the module's worker must not send these rows itself; the test plays its part.
def test_statuses_that_arrived_before_the_wamid_are_applied_forward_only(graph_url, broker):
    contact = make_contact(make_config(graph_url))
    message = send_to_contact(contact, {"type": "text", "body": "Your ticket is placed."})
    wamid = f"wamid.{uuid.uuid4().hex}"
    now = timezone.now()
    for offset, status in ((1, "delivered"), (2, "read")):
        StatusEvent.objects.create(wamid=wamid, status=status, timestamp=now + timedelta(seconds=offset),
                                   recipient_id=contact.wa_id)
    assert delivery.record_accepted(message.pk, wamid)
    message.refresh_from_db()
    assert (message.wamid, message.status, message.status_at) == (wamid, MessageStatus.READ, now + timedelta(seconds=2))
    assert not StatusEvent.objects.filter(wamid=wamid, applied=False).exists()

    quiet = send_to_contact(contact, {"type": "text", "body": "Anything else?"})
    assert delivery.record_accepted(quiet.pk, f"wamid.{uuid.uuid4().hex}")
    quiet.refresh_from_db()
    # Our clock goes to sent_at; status_at is left for the time in Meta's own "sent" webhook.
    assert (quiet.status, quiet.status_at) == (MessageStatus.SENT, None) and quiet.sent_at is not None


def test_the_sweeper_sends_rows_whose_enqueue_was_lost_but_not_parts_still_waiting(gevent_worker, fake, graph_url):
    config = make_config(graph_url)
    contact = make_contact(config)
    long_ago = timezone.now() - timedelta(minutes=10)

    def pending(body: str, **fields) -> Message:
        row = Message.objects.create(contact=contact, app_config=config, direction="out", message_type="text",
                                     text=body, content={"type": "text", "body": body},
                                     status=MessageStatus.PENDING, **fields)
        Message.objects.filter(pk=row.pk).update(created_at=long_ago)  # committed, never enqueued
        return row

    lost = pending("Lost reply")
    group = uuid.uuid4()
    Message.objects.create(contact=contact, app_config=config, direction="out", message_type="text",
                           content={"type": "text", "body": "Part 1"}, status=MessageStatus.SENT,
                           wamid=f"wamid.{group.hex}", sent_at=long_ago, group_id=group, part_index=0,
                           parts_total=3, send_after=long_ago)
    part2 = pending("Part 2", group_id=group, part_index=1, parts_total=3, send_after=long_ago)
    part3 = pending("Part 3", group_id=group, part_index=2, parts_total=3,
                    send_after=long_ago + timedelta(seconds=0.2))
    fresh = send_to_contact(make_contact(config), {"type": "text", "body": "Just written"})

    # Only the head of the contact's chain (the lost reply): parts 2 and 3 follow it in order,
    # and the fresh row is not old enough for the sweeper.
    assert enqueue_unsent(timedelta(minutes=5)) == 1
    fake.wait_for_messages(3, to=contact.wa_id, timeout=20)
    bodies = [r.body["text"]["body"] for r in fake.messages(to=contact.wa_id)]
    assert bodies == ["Lost reply", "Part 2", "Part 3"]
    wait_until(lambda: Message.objects.filter(pk__in=[lost.pk, part2.pk, part3.pk, fresh.pk],
                                              status=MessageStatus.SENT).count() == 4, what="all sent")
    assert enqueue_unsent(timedelta(0)) == 0


def test_the_24_hour_window_is_per_business_number(fake, graph_url):
    # Two chats on the user's phone: they wrote to A an hour ago and to B yesterday morning.
    number_a, number_b = make_config(graph_url, name="A"), make_config(graph_url, name="B")
    contact = make_contact(number_a, last_inbound_ago=timedelta(hours=1))
    for config, ago in ((number_a, timedelta(hours=1)), (number_b, timedelta(hours=25))):
        Message.objects.create(contact=contact, app_config=config, direction=Direction.INBOUND, message_type="text",
                               text="hi", wamid=f"wamid.{uuid.uuid4().hex}", status=MessageStatus.RECEIVED,
                               timestamp=timezone.now() - ago)
    from_a, from_b = (
        Message.objects.create(contact=contact, app_config=config, direction="out", message_type="text",
                               content={"type": "text", "body": "Kick-off soon"}, status=MessageStatus.PENDING)
        for config in (number_a, number_b)
    )
    assert delivery.deliver(from_a.pk).result is Result.SENT
    assert delivery.deliver(from_b.pk).result is Result.FAILED
    from_b.refresh_from_db()
    assert from_b.error_title == "Outside the 24-hour window"
    assert [r.path.split("/")[2] for r in fake.messages(to=contact.wa_id)] == [number_a.phone_number_id]
