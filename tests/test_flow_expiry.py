"""Session expiry with a controlled clock: ``expire_sessions(now=...)`` is called with explicit
times relative to each session's real ``last_activity_at``.

What must hold: idle > FLOW_SESSION_TIMEOUT expires, idle <= it does not; the user is told
exactly once; a message that reached the session first always wins (it is waiting to be
processed, or it changed the session's version after the job read it); and a user who
answers or taps a button after expiry is told so and shown the menu, not silently restarted.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from conversations.models import Contact, Direction, Message
from conversations.services import delivery
from devtools import webhook_payloads as simulate
from flows import services
from flows.models import ContactFlowState
from tests.support.flows import FEEDBACK_FLOW, Chat, business, flow_doc, import_defaults, texts

pytestmark = pytest.mark.django_db

TIMEOUT = timedelta(seconds=300)
ENGINE_EXPIRED_TEXT = services.engine_settings().session_expired_text


@pytest.fixture
def chat(db) -> Chat:
    import_defaults()
    services.import_flow_document(flow_doc(FEEDBACK_FLOW))
    return Chat(business())


def notices(chat: Chat, text: str | None = None) -> int:
    text = text or settings.FLOW_SESSION_EXPIRED_TEXT
    return Message.objects.filter(contact=chat.contact, direction=Direction.OUTBOUND, content__body=text).count()


def at(state: ContactFlowState, seconds: float):
    return state.last_activity_at + timedelta(seconds=seconds)


def test_a_session_whose_reply_is_still_unsent_is_not_expired_until_the_reply_goes_out(chat):
    chat.say("profile")
    state = chat.state
    reply = Message.objects.filter(contact=chat.contact, direction=Direction.OUTBOUND).latest("pk")
    # Its enqueue was lost: the reply is still pending when the session's five minutes are up.
    Message.objects.filter(pk=reply.pk).update(status="pending", wamid=None, sent_at=None)
    assert services.expire_sessions(now=at(state, 400)) == 0
    assert chat.state is not None and notices(chat) == 0  # no "timed out" before the question it refers to
    delivery.record_accepted(reply.pk, simulate.new_wamid(chat.wa_id, outgoing=True))
    assert services.expire_sessions(now=at(state, 400)) == 1
    assert chat.state is None and notices(chat) == 1


def test_expired_after_more_than_the_timeout_not_at_299_or_300_seconds(chat, settings):
    assert settings.FLOW_SESSION_TIMEOUT == 300
    chat.say("profile")
    state = chat.state
    assert services.expire_sessions(now=at(state, 299)) == 0
    assert services.expire_sessions(now=at(state, 300)) == 0
    assert chat.state is not None and notices(chat) == 0
    assert services.expire_sessions(now=at(state, 300.001)) == 1
    assert chat.state is None and notices(chat) == 1


def test_the_notice_is_sent_once_however_often_the_job_runs(chat):
    chat.say("profile")
    state = chat.state
    results = [services.expire_sessions(now=at(state, 301 + run)) for run in range(3)]
    assert results == [1, 0, 0]
    assert notices(chat) == 1
    assert not services.expire_state(state.pk, state.version)  # the admin action on a gone state


def test_the_timeout_and_the_notice_text_are_settings(chat, settings):
    settings.FLOW_SESSION_TIMEOUT = 60
    settings.FLOW_SESSION_EXPIRED_TEXT = "Session closed after a minute. Say hi to start again."
    chat.say("profile")
    state = chat.state
    assert services.expire_sessions(now=at(state, 60)) == 0
    assert services.expire_sessions(now=at(state, 61)) == 1
    assert notices(chat, "Session closed after a minute. Say hi to start again.") == 1


def test_only_idle_sessions_expire(db):
    import_defaults()
    config = business()
    idle, busy = Chat(config), Chat(config)
    idle.say("profile")
    busy.say("profile")
    ContactFlowState.objects.filter(pk=idle.state.pk).update(last_activity_at=timezone.now() - timedelta(seconds=400))
    assert services.expire_sessions() == 1  # the real clock
    assert idle.state is None and busy.where == ("profile", "ask_name")


def test_a_message_waiting_to_be_processed_wins_over_the_job(chat):
    chat.say("profile")
    state = chat.state
    message_id = chat.store(simulate.text("Kamau", wa_id=chat.wa_id))  # arrived, not processed yet
    assert services.expire_sessions(now=at(state, 301)) == 0
    assert chat.state is not None and notices(chat) == 0
    services.process_inbound(message_id)
    assert chat.where == ("profile", "ask_email") and chat.state.variables == {"name": "Kamau"}


def test_a_session_changed_after_the_job_read_it_is_not_expired(chat):
    chat.say("profile")
    observed = chat.state  # what the job read: (pk, version)
    chat.say("Kamau")  # a message is processed in between
    assert chat.state.version == observed.version + 1
    assert not services.expire_state(observed.pk, observed.version, idle_before=at(observed, 301))
    assert chat.where == ("profile", "ask_email") and notices(chat) == 0


def test_a_message_after_the_timeout_is_told_the_session_expired_even_before_the_job_ran(chat):
    chat.say("profile")
    ContactFlowState.objects.filter(contact=chat.contact).update(
        last_activity_at=timezone.now() - TIMEOUT - timedelta(seconds=1)
    )
    replies = chat.say("Kamau")  # the answer to the old question
    assert texts(replies)[0] == ENGINE_EXPIRED_TEXT
    assert "Main menu" in json.dumps(replies)
    assert chat.where == ("main_menu", "menu") and chat.contact.name == ""


def test_a_message_within_the_timeout_continues_the_session(chat):
    chat.say("profile")
    ContactFlowState.objects.filter(contact=chat.contact).update(
        last_activity_at=timezone.now() - TIMEOUT + timedelta(seconds=5)
    )
    assert "Nice to meet you, Kamau" in texts(chat.say("Kamau"))[0]


def test_an_old_button_after_expiry_gets_the_expired_answer_and_the_menu(chat):
    assert texts(chat.say("feedback")) == ["How did we do?"]
    state = chat.state
    assert services.expire_sessions(now=at(state, 301)) == 1
    replies = chat.tap("rate_good", "Good")
    assert texts(replies)[0] == ENGINE_EXPIRED_TEXT
    assert replies[1]["type"] == "list" and "Main menu" in json.dumps(replies[1])
    assert chat.where == ("main_menu", "menu")


def test_an_old_main_menu_button_after_expiry_still_works(chat):
    chat.say("hi")
    state = chat.state
    services.expire_sessions(now=at(state, 301))
    assert "Here's how this chat works" in texts(chat.pick("help", "Help"))[0]


def test_a_blocked_contact_is_not_notified(chat):
    chat.say("profile")
    state = chat.state
    Contact.objects.filter(pk=state.contact_id).update(blocked=True)
    assert services.expire_sessions(now=at(state, 301)) == 1
    assert chat.state is None and notices(chat) == 0


def test_expiry_is_consistent_with_the_engine_timeout():
    assert services.engine_settings().session_timeout == services.session_timeout() == TIMEOUT
