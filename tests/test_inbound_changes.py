"""Edits, deletes and messages that carry only Meta's error (issue 12.6).

They are stored as their own kind (``edit``, ``revoke``, ``errors``), already processed and
never enqueued for the bot; an edit or delete is recorded on the message it changes; the
conversation in admin shows them as WhatsApp does. Payload shapes are Meta's webhook
references: ``type: edit`` / ``type: revoke`` (numbers on the WhatsApp Business app) and
``type: unsupported`` with ``unsupported.type`` edit/revoke (every other Cloud API number).
"""

from __future__ import annotations

import pytest

from conversations.models import BOT_IGNORED_TYPES, Contact, Direction, Message
from conversations.services import inbound
from devtools import webhook_payloads as simulate
from meta_integration.payloads import MessageType
from tests.support.inbound import URLCONF, at, post_webhook

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLCONF)]

USER = simulate.DEFAULT_WA_ID
OTHER_USER = "263772222222"
TS = 1_760_000_000


def envelope(message: dict, wa_id: str = USER) -> dict:
    """A message dict Meta sends, given its type-specific part (no simulate builder for these)."""
    return {"from": wa_id, "id": simulate.new_wamid(wa_id), "timestamp": str(TS + 60)} | message


def edit(original: str, new_text: str, wa_id: str = USER) -> dict:
    return envelope({"type": "edit", "edit": {
        "original_message_id": original,
        "message": {"context": {"id": original}, "type": "text", "text": {"body": new_text}},
    }}, wa_id)


def revoke(original: str, wa_id: str = USER) -> dict:
    return envelope({"type": "revoke", "revoke": {"original_message_id": original}}, wa_id)


def forwarded_as_unsupported(kind: str) -> dict:
    return envelope({"type": "unsupported", "unsupported": {"type": kind}, "errors": [
        {"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
         "error_data": {"details": "Message type is currently not supported."}}
    ]})


def interactive_with_error() -> dict:
    return envelope({"type": "interactive", "interactive": {"type": "call_permission_reply"}, "errors": [
        {"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
         "error_data": {"details": "Message type is currently not supported."}}
    ]})


def post(client, *messages: dict, wa_id: str = USER) -> None:
    body = simulate.webhook_body(list(messages), profile_name={wa_id: "Tendai Moyo"})
    assert post_webhook(client, body).status_code == 200


def original_message(client, text: str = "bet 5 on Dynamos", wa_id: str = USER) -> Message:
    message = simulate.text(text, wa_id=wa_id, timestamp=TS)
    post(client, message, wa_id=wa_id)
    return Message.objects.get(wamid=message["id"])


def test_the_bot_ignores_exactly_the_kinds_stored_here():
    assert BOT_IGNORED_TYPES == {MessageType.EDIT.value, MessageType.REVOKE.value, MessageType.ERRORS.value}


def test_an_edit_is_stored_as_an_edit_and_recorded_on_the_original(client, app_config, broker):
    original = original_message(client)
    broker.flush()
    change = edit(original.wamid, "bet 10 on Dynamos")
    post(client, change)

    row = Message.objects.get(wamid=change["id"])
    assert (row.direction, row.message_type, row.text) == (Direction.INBOUND, "edit", "bet 10 on Dynamos")
    assert row.content["edit"]["original_message_id"] == original.wamid
    assert row.processed_at is not None  # done with: the bot never answers an edit
    assert broker.tasks() == []
    original.refresh_from_db()
    assert original.text == "bet 5 on Dynamos"  # the original keeps what was sent
    assert (original.content["edited_text"], original.content["edited_at"]) == (
        "bet 10 on Dynamos", at(TS + 60).isoformat()
    )
    assert original.content["edited_by_wamid"] == change["id"]


def test_a_delete_is_stored_as_a_revoke_and_marks_the_original(client, app_config, broker):
    original = original_message(client)
    broker.flush()
    change = revoke(original.wamid)
    post(client, change)

    row = Message.objects.get(wamid=change["id"])
    assert (row.message_type, row.content["revoke"]["original_message_id"]) == ("revoke", original.wamid)
    assert row.processed_at is not None
    assert broker.tasks() == []
    original.refresh_from_db()
    assert (original.content["deleted"], original.content["deleted_at"]) == (True, at(TS + 60).isoformat())
    assert original.text == "bet 5 on Dynamos"  # kept for the operator; shown as deleted


@pytest.mark.parametrize("kind", ["edit", "revoke"])
def test_an_edit_or_delete_forwarded_as_unsupported_is_still_one(client, app_config, broker, kind):
    """Numbers not on the WhatsApp Business app get only ``unsupported.type``: no original, no text."""
    change = forwarded_as_unsupported(kind)
    post(client, change)
    row = Message.objects.get()
    assert (row.message_type, row.text, row.error_code) == (kind, "", 131051)
    assert row.content[kind]["original_message_id"] is None
    assert row.processed_at is not None
    assert broker.tasks() == []


def test_a_message_carrying_only_an_error_is_stored_as_errors(client, app_config, broker):
    message = interactive_with_error()
    post(client, message)
    row = Message.objects.get()
    assert (row.message_type, row.error_code, row.error_title) == ("errors", 131051, "Message type unknown")
    assert row.content["raw"]["interactive"] == {"type": "call_permission_reply"}  # Meta's dict kept
    assert row.processed_at is not None
    assert broker.tasks() == []


def test_a_change_naming_another_contacts_message_changes_nothing(client, app_config, broker):
    original = original_message(client, wa_id=OTHER_USER)
    post(client, revoke(original.wamid), edit(original.wamid, "hijacked"))
    original.refresh_from_db()
    assert "deleted" not in original.content and "edited_text" not in original.content
    assert Message.objects.filter(message_type__in=["edit", "revoke"]).count() == 2  # stored all the same


def test_a_change_whose_original_is_not_stored_is_kept_on_its_own(client, app_config, broker):
    post(client, revoke(simulate.new_wamid()))
    assert Message.objects.get().message_type == "revoke"


def test_a_later_edit_wins_and_a_redelivered_change_is_stored_once(client, app_config, broker):
    original = original_message(client)
    first = edit(original.wamid, "bet 7") | {"timestamp": str(TS + 30)}
    second = edit(original.wamid, "bet 9") | {"timestamp": str(TS + 90)}
    post(client, second)
    post(client, first)  # arrives late: must not overwrite the newer text
    post(client, second)
    original.refresh_from_db()
    assert original.content["edited_text"] == "bet 9"
    assert Message.objects.filter(message_type="edit").count() == 2


def test_normal_messages_are_still_enqueued_next_to_changes(client, app_config, broker):
    original = original_message(client)
    broker.flush()
    follow_up = simulate.text("menu", timestamp=TS + 61)
    post(client, revoke(original.wamid), follow_up)
    assert [t.args for t in broker.named(inbound.PROCESS_MESSAGE_TASK)] == [
        [Message.objects.get(wamid=follow_up["id"]).pk, original.contact_id]
    ]


def test_the_conversation_in_admin_shows_them_as_whatsapp_does(client, admin_client, app_config, broker):
    deleted = original_message(client, "my account number is 1234")
    edited = original_message(client, "bet 5 on Dynamos")
    post(client, revoke(deleted.wamid), edit(edited.wamid, "bet 10 on Dynamos"))
    post(client, interactive_with_error())
    contact = Contact.objects.get()
    page = admin_client.get(f"/admin/conversations/contact/{contact.pk}/change/").content.decode()
    assert page.count("This message was deleted") == 2  # the original and the delete itself
    assert "my account number is 1234" not in page
    assert "bet 10 on Dynamos (Edited)" in page  # the original shows its new text
    assert "Edited: bet 10 on Dynamos" in page  # the edit itself
    assert "[not delivered by WhatsApp] Message type unknown" in page
    listing = admin_client.get("/admin/conversations/message/?message_type__exact=revoke").content.decode()
    assert "This message was deleted" in listing
