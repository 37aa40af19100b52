"""The bot end to end: signed webhook POSTs in, a real gevent I/O worker on the real broker
running ``flows.process_message`` and the send task, replies checked at the fake Graph API.

Each default flow is scripted as a conversation, then the edges: validation and re-prompts,
max retries, handover and release, global words, a 30-message burst from one contact, two
contacts interleaved, Meta redelivering a message, two first messages in one POST, and an
old button after the session expired.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib import admin
from django.db import connection, transaction
from django.test import Client
from django.urls import include, path

from conversations.models import Direction, Message
from devtools import webhook_payloads as simulate
from devtools.fake_graph import FakeGraphAPI
from flows import services
from flows.models import ContactFlowState
from meta_integration.models import MetaAppConfig
from tests.support.conversations import HELP_START, MENU_GREETING, WORKER, Phone, graph_text
from tests.support.flows import APP_SECRET, ECHO_FLOW, FEEDBACK_FLOW, business, flow_doc, import_defaults

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

# The webhook mounted exactly as the project mounts it (independent of the project urlconf).
urlpatterns = [path("", include("meta_integration.urls")), path("admin/", admin.site.urls)]
WEBHOOK_URL = "/webhooks/meta/"
ENGINE = services.engine_settings()


@pytest.fixture(scope="module")
def graph_token() -> None:
    return None  # conftest's fake_server accepts any token (business() sets its own)


@pytest.fixture
def fake(fake_server, io_worker, settings) -> FakeGraphAPI:
    """Flows loaded, the business number pointing at the fake, a clean request log."""
    WORKER[:] = [io_worker]
    settings.ROOT_URLCONF = __name__
    fake_api, url = fake_server
    fake_api.reset()
    business(graph_url=url)
    import_defaults()
    services.import_flow_document(flow_doc(FEEDBACK_FLOW, ECHO_FLOW))
    return fake_api


# ---------------------------------------------------------------------------------------
# The default flows as conversations
# ---------------------------------------------------------------------------------------


def test_main_menu_and_help(client, fake):
    phone = Phone(client, fake)
    assert phone.say("Hello there") == [MENU_GREETING]
    last = fake.messages(to=phone.wa_id)[-1].body
    rows = [row["id"] for row in last["interactive"]["action"]["sections"][0]["rows"]]
    assert rows == ["fixtures", "wallet", "profile", "help", "human"]
    assert phone.where == ("main_menu", "menu")

    [help_text] = phone.pick("help", "Help")
    assert help_text.startswith(HELP_START)
    assert phone.where is None  # help ends after explaining
    assert phone.tap("menu", "Main menu") == [MENU_GREETING]


def test_something_the_bot_does_not_understand_gets_the_fallback_then_the_menu(client, fake):
    phone = Phone(client, fake)
    assert phone.say("asdfgh") == [ENGINE.fallback_text, MENU_GREETING]


def test_profile_with_validation_and_reprompt(client, fake):
    phone = Phone(client, fake)
    [ask_name] = phone.say("profile")
    assert ask_name.startswith("Let's set up your profile")
    assert phone.say("A") == ["Please send a name between 2 and 60 characters.", ask_name]
    [ask_email] = phone.say("Amina")
    assert ask_email.startswith("Nice to meet you, Amina!")
    hint = "Hmm, that doesn't look like an email address. Please send one like *name@example.com*."
    assert phone.say("amina at example") == [hint, ask_email]
    assert phone.say("amina@example.co.ke") == [
        "Thanks Amina, saved amina@example.co.ke ✅\n\nSend *menu* whenever you need anything else."
    ]
    contact = phone.contact
    assert (contact.name, contact.email, phone.where) == ("Amina", "amina@example.co.ke", None)


def test_profile_gives_up_on_the_email_after_max_retries_but_keeps_the_name(client, fake):
    phone = Phone(client, fake)
    phone.say("profile")
    phone.say("Otieno")
    for _ in range(3):  # max_retries 3: three re-prompts...
        assert len(phone.say("nope")) == 2
    [gave_up] = phone.say("still nope")  # ...then on_max_retries: save_name_only
    assert gave_up.startswith("No problem, Otieno. I've saved your name")
    assert (phone.contact.name, phone.contact.email, phone.where) == ("Otieno", "", None)


def test_human_handover_the_bot_goes_quiet_and_release_brings_it_back(client, fake):
    phone = Phone(client, fake)
    phone.say("hi")
    [handover] = phone.pick("human", "Talk to a human")
    assert handover.startswith("Sure, I'm connecting you with a member of our team")
    assert phone.contact.needs_human

    assert phone.say("My withdrawal has not arrived") == []
    assert phone.say("menu") == []  # not even global words: an operator is on it
    stored = Message.objects.filter(contact__wa_id=phone.wa_id, direction=Direction.INBOUND)
    assert stored.count() == 4 and not stored.filter(processed_at__isnull=True).exists()

    assert services.release_contact(phone.contact.pk, message="Your withdrawal is on its way. Back to the bot!")
    assert phone.replies() == ["Your withdrawal is on its way. Back to the bot!"]
    assert phone.say("hi") == [MENU_GREETING]


def test_global_cancel_and_menu_work_inside_a_flow(client, fake):
    phone = Phone(client, fake)
    phone.say("profile")
    assert phone.say("cancel") == ["Okay, I've cancelled that. Send *menu* whenever you need me."]
    assert phone.where is None
    phone.say("profile")
    phone.say("Wanjiru")
    assert phone.say("MENU") == [MENU_GREETING]
    assert phone.where == ("main_menu", "menu")


def test_a_question_with_buttons_and_max_retries_hands_over(client, fake):
    phone = Phone(client, fake)
    assert phone.say("feedback") == ["How did we do?"]
    assert phone.say("meh") == ["Please tap one of the options, or type one of: Good, Bad.", "How did we do?"]
    assert phone.say("whatever") == [ENGINE.handover_text]
    assert phone.contact.needs_human and phone.where is None


# ---------------------------------------------------------------------------------------
# Ordering, concurrency, idempotency
# ---------------------------------------------------------------------------------------


def echo_replies(count: int) -> list[str]:
    """What the echo flow answers to "echo", "1", "2", ... (each reply shows all seen so far)."""
    replies = ["echo start | seen:"]
    for n in range(1, count):
        replies.append(f"echo {n} | seen:" + "".join(f"{i}," for i in range(1, n + 1)))
    return replies


def stored_replies(phone: Phone) -> list[str]:
    """Replies in the order the bot wrote them (processing order)."""
    rows = Message.objects.filter(contact__wa_id=phone.wa_id, direction=Direction.OUTBOUND).order_by("pk")
    return [row.content["body"] for row in rows]


def test_a_burst_of_30_messages_is_processed_in_arrival_order_with_one_reply_each(client, fake, io_worker):
    phone = Phone(client, fake)
    for body in ["echo", *map(str, range(1, 30))]:
        phone.post(phone.text(body))
    delivered = phone.replies(timeout=60)
    expected = echo_replies(30)
    assert stored_replies(phone) == expected  # processed strictly in arrival order, no state lost
    assert sorted(delivered) == sorted(expected)  # one reply each reached Meta
    state = ContactFlowState.objects.get(contact__wa_id=phone.wa_id)
    assert state.variables["seen"] == "".join(f"{i}," for i in range(1, 30)) and state.version == 30
    assert " ERROR " not in io_worker.log()


def test_replies_to_20_messages_fired_at_once_reach_meta_in_the_order_the_messages_arrived(client, fake):
    # Each message may be processed by its own run, on its own greenlet: the contact's chain of
    # replies must still reach the Graph API in arrival order, not just one reply each.
    phone = Phone(client, fake)
    for body in ["echo", *map(str, range(1, 20))]:
        phone.post(phone.text(body))
    assert phone.replies(timeout=60) == echo_replies(20)


def test_a_user_writing_to_two_numbers_has_two_conversations_each_answered_from_its_number(client, fake):
    # Number B: another business number of the same app (same secret), also on the fake.
    number_a = MetaAppConfig.objects.get(phone_number_id=simulate.DEFAULT_PHONE_NUMBER_ID)  # on the fake
    number_b = MetaAppConfig.objects.create(
        name="Second number", phone_number_id="109876543210987", display_phone_number="+1 555 0199",
        access_token=number_a.access_token, app_secret=APP_SECRET, verify_token="flows-verify-b",
        graph_api_url=number_a.graph_api_url, send_rate_per_second=1000.0,
    )
    assert MetaAppConfig.objects.filter(is_active=True).count() == 2
    users = [Phone(client, fake, f"User {n}") for n in range(10)]
    for phone in users:  # each writes to A, then at once to B
        for config in (number_a, number_b):
            body = simulate.webhook_body([phone.text("profile")], profile_name=phone.name,
                                         phone_number_id=config.phone_number_id)
            raw, headers = simulate.signed_request(body, APP_SECRET)
            headers = {key: value for key, value in headers.items() if key.lower() != "content-type"}
            assert client.post(WEBHOOK_URL, data=raw, content_type="application/json",
                               headers=headers).status_code == 200
    for phone in users:
        phone.replies(timeout=60)
        sent = fake.messages(to=phone.wa_id)
        # Each number asked the question of its own conversation: one reply from A, one from B.
        assert sorted(record.path.split("/")[2] for record in sent) == sorted(
            [number_a.phone_number_id, number_b.phone_number_id]
        ), [(record.path, graph_text(record.body)) for record in sent]
        assert all(graph_text(record.body) == graph_text(sent[0].body) for record in sent)
        sessions = ContactFlowState.objects.filter(contact__wa_id=phone.wa_id)
        assert sorted(sessions.values_list("app_config_id", flat=True)) == sorted([number_a.pk, number_b.pk])
        assert {state.step for state in sessions} == {sessions[0].step}  # both at the same question


def test_two_contacts_interleaved_each_keep_their_own_order(client, fake):
    first, second = Phone(client, fake, "Amina Otieno"), Phone(client, fake, "Brian Kiptoo")
    for n in range(15):
        for phone in (first, second):
            phone.post(phone.text("echo" if n == 0 else str(n)))
    for phone in (first, second):
        assert sorted(phone.replies(timeout=60)) == sorted(echo_replies(15))
        assert stored_replies(phone) == echo_replies(15)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="per-contact locks (SQLite serializes every writer)")
def test_a_contact_whose_processing_is_blocked_does_not_delay_another_contact(client, fake):
    slow, fast = Phone(client, fake, "Amina Otieno"), Phone(client, fake, "Brian Kiptoo")
    slow.say("echo")
    fast.say("echo")
    locked, release = threading.Event(), threading.Event()

    def hold_slow_contacts_lock() -> None:
        try:
            with transaction.atomic():
                services.lock_contact(slow.contact.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_slow_contacts_lock)
    holder.start()
    try:
        assert locked.wait(10)
        for n in range(1, 4):
            slow.post(slow.text(str(n)))
            fast.post(fast.text(str(n)))
        assert fast.replies() == echo_replies(4)[1:]  # while the slow contact's tasks wait on its lock
        assert fast.fake.messages(to=slow.wa_id)[slow.read:] == []
        # The webhook stored the slow contact's messages meanwhile: the lock never blocks Meta.
        waiting = Message.objects.filter(contact__wa_id=slow.wa_id, direction=Direction.INBOUND, processed_at=None)
        assert waiting.count() == 3
    finally:
        release.set()
        holder.join()
    assert sorted(slow.replies()) == sorted(echo_replies(4)[1:])
    assert stored_replies(slow) == echo_replies(4)


def test_meta_redelivering_a_message_gets_one_reply(client, fake):
    phone = Phone(client, fake)
    message = phone.text("help")
    phone.post(message)
    phone.post(message)
    phone.post(message)
    assert len(phone.replies()) == 1


def test_two_first_messages_in_one_post_share_one_session(client, fake):
    phone = Phone(client, fake)
    phone.post(phone.text("profile"), phone.text("Zawadi"))
    replies = phone.replies()
    assert replies[0].startswith("Let's set up your profile") and replies[1].startswith("Nice to meet you, Zawadi!")
    assert ContactFlowState.objects.filter(contact__wa_id=phone.wa_id).count() == 1
    assert phone.where == ("profile", "ask_email")


# ---------------------------------------------------------------------------------------
# Expiry, end to end
# ---------------------------------------------------------------------------------------


def test_expiry_notice_reaches_the_user_once_and_an_old_button_gets_the_expired_answer(client, fake):
    phone = Phone(client, fake)
    assert phone.say("feedback") == ["How did we do?"]
    state = ContactFlowState.objects.get(contact__wa_id=phone.wa_id)
    later = state.last_activity_at + services.session_timeout()
    assert services.expire_sessions(now=later) == 0
    assert services.expire_sessions(now=later + services.session_timeout() / 300) == 1
    assert services.expire_sessions(now=later + services.session_timeout()) == 0
    assert phone.replies() == [settings.FLOW_SESSION_EXPIRED_TEXT]

    assert phone.tap("rate_good", "Good") == [ENGINE.session_expired_text, MENU_GREETING]
    assert fake.messages(to=phone.wa_id)[-1].body["interactive"]["type"] == "list"


def test_an_old_button_of_a_flow_that_ended_normally_is_a_fresh_message_not_a_timeout(client, fake):
    phone = Phone(client, fake)
    assert phone.say("feedback") == ["How did we do?"]
    assert phone.tap("rate_good", "Good") == ["Thanks! Anything else you'd like to tell us?"]
    [noted] = phone.say("Quick answers")
    assert noted.startswith("Noted:") and phone.where is None  # the flow ended normally

    # The same button again, a minute or a day later: nothing timed out, so nobody says so.
    replies = phone.tap("rate_good", "Good")
    assert replies == [ENGINE.finished_reply_text, MENU_GREETING]
    assert ENGINE.session_expired_text not in replies and settings.FLOW_SESSION_EXPIRED_TEXT not in replies
    assert phone.where == ("main_menu", "menu")

    # An old button whose title names a flow is read as that fresh message: the flow starts.
    assert phone.say("cancel") == ["Okay, I've cancelled that. Send *menu* whenever you need me."]
    [ask_name] = phone.tap("edit_details", "Update my profile")
    assert ask_name.startswith("Let's set up your profile") and phone.where == ("profile", "ask_name")


def _post_to(phone: Phone, client: Client, config: MetaAppConfig, body: str) -> None:
    payload = simulate.webhook_body([phone.text(body)], profile_name=phone.name,
                                    phone_number_id=config.phone_number_id)  # fmt: skip
    raw, headers = simulate.signed_request(payload, APP_SECRET)
    headers = {key: value for key, value in headers.items() if key.lower() != "content-type"}
    assert client.post(WEBHOOK_URL, data=raw, content_type="application/json", headers=headers).status_code == 200


def test_no_idle_countdown_during_a_handover_and_none_after_the_expiry_notice(client, fake):
    from devtools.simulator.conversation import session_state

    def session_clock(wa_id: str, config: MetaAppConfig) -> dict:
        state = session_state(config, wa_id)  # what the simulator's countdown shows
        return {"expires_at": state["idle_expires_at"], "handover": state["handover"]}

    number_a = MetaAppConfig.objects.get(phone_number_id=simulate.DEFAULT_PHONE_NUMBER_ID)
    number_b = MetaAppConfig.objects.create(
        name="Second number", phone_number_id="109876543210987", display_phone_number="+1 555 0199",
        access_token=number_a.access_token, app_secret=APP_SECRET, verify_token="flows-verify-b",
        graph_api_url=number_a.graph_api_url, send_rate_per_second=1000.0,
    )
    phone = Phone(client, fake)
    _post_to(phone, client, number_b, "profile")  # a conversation with number B...
    [ask_name] = phone.replies()
    assert ask_name.startswith("Let's set up your profile")
    timeout = services.session_timeout()
    state = ContactFlowState.objects.get(contact__wa_id=phone.wa_id, app_config=number_b)
    clock = session_clock(phone.wa_id, number_b)
    assert clock["expires_at"] == (state.last_activity_at + timeout).timestamp() and not clock["handover"]

    # ...then the user asks number A for a human: an operator has the conversation.
    [handover] = phone.say("human")
    assert handover.startswith("Sure, I'm connecting you") and phone.contact.needs_human
    clock = session_clock(phone.wa_id, number_b)
    assert clock["expires_at"] is None and clock["handover"] is True
    # However long the operator takes, B's session neither expires nor tells the user anything.
    long_after = state.last_activity_at + 20 * timeout
    assert services.expire_sessions(now=long_after) == 0
    assert ContactFlowState.objects.filter(pk=state.pk).exists()
    assert phone.replies() == []

    # Back to the bot: the countdown starts again from the release, not from before the handover.
    before_handover = state.last_activity_at
    assert services.release_contact(phone.contact.pk)
    state.refresh_from_db()
    assert state.last_activity_at > before_handover  # restarted at the release
    assert services.expire_sessions(now=state.last_activity_at + timeout) == 0
    assert services.expire_sessions(now=state.last_activity_at + timeout * 1.01) == 1
    assert phone.replies() == [settings.FLOW_SESSION_EXPIRED_TEXT]
    notice = fake.messages(to=phone.wa_id)[-1]
    assert notice.path.split("/")[2] == number_b.phone_number_id  # from the number the session was with

    # After the notice no countdown runs: nothing more to expire, no second notice.
    assert session_clock(phone.wa_id, number_b)["expires_at"] is None
    for hours in (1, 24, 24 * 30):
        assert services.expire_sessions(now=state.last_activity_at + timedelta(hours=hours)) == 0
    assert phone.replies() == []
