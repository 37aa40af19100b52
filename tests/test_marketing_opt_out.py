"""Marketing consent as a WhatsApp user meets it: STOP opts out of campaigns and is confirmed
once, START opts back in, "don't stop the bets" is just a message, and the bot keeps
answering an opted-out contact. Meta's ``user_preferences`` webhook (the user stopped or
resumed marketing messages in WhatsApp itself) is applied too, and a shape the project does
not know is audited, never guessed at.

The conversation tests run the real path: signed webhook POSTs, the real gevent worker on the
real broker, the replies read back at the project's fake Graph API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings as django_settings

from conversations.models import Contact, Message
from conversations.services.consent import Consent, keyword_consent, marketing_consent_changed
from conversations.services.inbound import store_messages
from devtools import webhook_payloads as simulate
from devtools.fake_graph import FakeGraphAPI
from flows.services import process_inbound
from meta_integration.models import WebhookEvent
from meta_integration.payloads import PreferenceValue, parse_webhook
from tests.support import conversations
from tests.support.conversations import MENU_GREETING, Phone, graph_text
from tests.support.flows import business, import_defaults
from tests.support.inbound import URLCONF, make_app_config, post_webhook

pytestmark = pytest.mark.django_db(transaction=True)

OPTED_OUT = django_settings.MARKETING_OPT_OUT_CONFIRMATION
OPTED_IN = django_settings.MARKETING_OPT_IN_CONFIRMATION


# --------------------------------------------------------------------------- which messages are consent words


@pytest.mark.parametrize(
    "text, consent",
    [
        ("STOP", Consent.OPT_OUT), ("stop", Consent.OPT_OUT), ("  Stop!! ", Consent.OPT_OUT),
        ("sToP.", Consent.OPT_OUT), ("🛑 STOP 🛑", Consent.OPT_OUT), ("Unsubscribe", Consent.OPT_OUT),
        ("\"unsubscribe\"", Consent.OPT_OUT), ("START", Consent.OPT_IN), ("start!", Consent.OPT_IN),
        ("don't stop the bets", None), ("stop it", None), ("stopped", None), ("s t o p", None),
        ("please unsubscribe me", None), ("restart", None), ("!!!", None), ("", None),
    ],
)
def test_a_consent_word_is_the_whole_message_in_any_case(text, consent):
    assert keyword_consent("text", text) is consent


def test_only_what_the_user_typed_or_a_template_button_counts():
    assert keyword_consent("button", "Stop") is Consent.OPT_OUT  # a template's quick-reply button
    assert keyword_consent("interactive", "Stop") is None  # a title of our own menu
    assert keyword_consent("image", "stop") is None  # a caption
    assert keyword_consent("text", "stop" + " " * 100) is None  # too long to be a word


def test_the_words_are_configurable(settings):
    settings.MARKETING_OPT_OUT_WORDS = ["BASTA", "Stop all"]
    settings.MARKETING_OPT_IN_WORDS = ["ANZA"]
    assert keyword_consent("text", "basta") is Consent.OPT_OUT
    assert keyword_consent("text", "STOP   ALL!") is Consent.OPT_OUT
    assert keyword_consent("text", "anza") is Consent.OPT_IN
    assert keyword_consent("text", "stop") is None


# --------------------------------------------------------------------------- the real path


@pytest.fixture(scope="module")
def graph_token() -> None:
    return None  # conftest's fake_server accepts any token (business() sets its own)


@pytest.fixture
def fake(fake_server, io_worker, settings) -> FakeGraphAPI:
    """The business number on the fake Graph API, the shipped flows, a clean request log."""
    conversations.WORKER[:] = [io_worker]  # Phone shows its log when a conversation stalls
    settings.ROOT_URLCONF = URLCONF
    fake_api, url = fake_server
    fake_api.reset()
    business(graph_url=url)
    import_defaults()
    return fake_api


def delivered(phone: Phone, text: str) -> int:
    """How many times the fake Graph API was asked to deliver ``text`` to the phone."""
    return sum(graph_text(record.body) == text for record in phone.fake.messages(to=phone.wa_id))


@pytest.mark.workers
def test_stop_confirms_once_and_start_opts_back_in_while_the_bot_keeps_answering(client, fake):
    phone = Phone(client, fake)
    assert phone.say("hi") == [MENU_GREETING]

    assert phone.say("STOP") == [OPTED_OUT]
    contact = phone.contact
    assert contact.marketing_opt_out and contact.marketing_opt_out_at is not None
    assert not Contact.objects.marketable().filter(pk=contact.pk).exists()

    assert phone.say("stop!") == []  # already opted out: consumed, not confirmed again
    assert phone.contact.marketing_opt_out_at == contact.marketing_opt_out_at
    assert MENU_GREETING in phone.say("hi")  # conversations are unaffected (the menu still waits for a pick)

    assert phone.say("Start") == [OPTED_IN]
    contact = phone.contact
    assert not contact.marketing_opt_out and contact.marketing_opt_out_at is None
    assert Contact.objects.marketable().filter(pk=contact.pk).exists()
    assert OPTED_IN not in phone.say("start")  # not opted out: an ordinary message for the bot
    assert (delivered(phone, OPTED_OUT), delivered(phone, OPTED_IN)) == (1, 1)


@pytest.mark.workers
def test_stop_inside_a_flow_is_consumed_and_the_flow_carries_on(client, fake):
    phone = Phone(client, fake)
    [ask_name] = phone.say("profile")
    assert ask_name.startswith("Let's set up your profile")
    where = phone.where
    assert phone.say("UNSUBSCRIBE") == [OPTED_OUT]
    assert phone.where == where  # the flow never saw it
    [thanks] = phone.say("Amina")
    assert thanks.startswith("Nice to meet you, Amina!")
    assert phone.contact.marketing_opt_out


@pytest.mark.workers
def test_a_sentence_with_stop_in_it_is_just_a_message(client, fake):
    phone = Phone(client, fake)
    replies = phone.say("don't stop the bets")
    assert replies and OPTED_OUT not in replies
    assert not phone.contact.marketing_opt_out


def test_a_blocked_contact_is_opted_out_but_sent_nothing(settings):
    """Consent is recorded whoever sends it; a blocked contact is never messaged, not even to confirm."""
    config = make_app_config()
    Contact.objects.create(wa_id="263771234567", blocked=True)
    [stored] = store_messages(parse_webhook(simulate.webhook_body([simulate.text("STOP")])).messages, config)
    result = process_inbound(stored.id, stored.contact_id)
    assert (result.processed, result.replied, result.skipped, result.reply_ids) == (1, 0, 1, ())
    assert Contact.objects.get(wa_id="263771234567").marketing_opt_out
    assert not Message.objects.outbound().exists()


# --------------------------------------------------------------------------- Meta's user_preferences webhook


@pytest.fixture
def webhook(settings) -> None:
    settings.ROOT_URLCONF = URLCONF
    make_app_config()


@pytest.fixture
def consent_changes() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    marketing_consent_changed.connect(receiver)
    yield seen
    marketing_consent_changed.disconnect(receiver)


def preferences_body(*items: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return simulate.batch(simulate.user_preferences_change(items, **kwargs))


def test_meta_stop_and_resume_are_applied(client, webhook, consent_changes):
    contact = Contact.objects.create(wa_id="263771234567", profile_name="Tendai")
    stop = simulate.user_preference("stop", wa_id=contact.wa_id, timestamp=1_765_000_000)
    assert post_webhook(client, preferences_body(stop)).status_code == 200
    contact.refresh_from_db()
    assert contact.marketing_opt_out
    assert contact.marketing_opt_out_at == datetime.fromtimestamp(1_765_000_000, tz=UTC)
    assert post_webhook(client, preferences_body(stop)).status_code == 200  # Meta redelivers
    assert [(c["contact_ids"], c["opted_out"], c["source"]) for c in consent_changes] == [
        ([contact.pk], True, "meta_user_preferences"),
    ]

    resume = simulate.user_preference("resume", wa_id=contact.wa_id)
    assert post_webhook(client, preferences_body(resume)).status_code == 200
    contact.refresh_from_db()
    assert not contact.marketing_opt_out and contact.marketing_opt_out_at is None
    assert not WebhookEvent.objects.exists()  # understood: nothing to audit


def test_meta_stop_for_a_number_never_seen_keeps_it_opted_out(client, webhook):
    stop = simulate.user_preference("stop", wa_id="263779999999")
    assert post_webhook(client, preferences_body(stop, profile_name="Rudo")).status_code == 200
    contact = Contact.objects.get(wa_id="263779999999")
    assert (contact.marketing_opt_out, contact.profile_name) == (True, "Rudo")
    assert not Contact.objects.marketable().exists()
    resume = simulate.user_preference("resume", wa_id="263778888888")
    assert post_webhook(client, preferences_body(resume)).status_code == 200
    assert not Contact.objects.filter(wa_id="263778888888").exists()  # nothing to resume


@pytest.mark.parametrize(
    "item, problem",
    [
        ({"category": "utility_messages"}, "category"),
        ({"value": "pause"}, "value"),
        ({"value": 1}, "value"),
        ({"wa_id": "not-a-number"}, "wa_id"),
        ({"timestamp": "yesterday"}, "timestamp"),
    ],
)
def test_an_unknown_preference_shape_is_audited_and_changes_nothing(client, webhook, item, problem):
    contact = Contact.objects.create(wa_id="263771234567")
    preference = {**simulate.user_preference("stop", wa_id=contact.wa_id), **item}
    good = simulate.user_preference("stop", wa_id="263772222222")
    assert post_webhook(client, preferences_body(preference, good)).status_code == 200
    contact.refresh_from_db()
    assert not contact.marketing_opt_out
    assert Contact.objects.get(wa_id="263772222222").marketing_opt_out  # the rest of the POST applies
    event = WebhookEvent.objects.get()
    assert "1 problem" in event.summary and event.payload["entry"][0]["changes"][0]["field"] == "user_preferences"


def test_the_parser_reads_metas_documented_example():
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"wa_id": "16505551234"}],
            "user_preferences": [{
                "wa_id": "16505551234", "detail": "User requested to resume marketing messages",
                "category": "marketing_messages", "value": "resume", "timestamp": 1731705721,
            }],
        }, "field": "user_preferences"}]}],
    }
    batch = parse_webhook(body)
    [preference] = batch.preferences
    assert (preference.phone_number_id, preference.wa_id, preference.value) == (
        "106540352242922", "16505551234", PreferenceValue.RESUME,
    )
    assert preference.timestamp == datetime.fromtimestamp(1731705721, tz=UTC)
    assert batch.problems == batch.other_changes == batch.messages == ()


def test_a_preferences_change_without_its_business_number_is_a_problem():
    change = simulate.user_preferences_change([simulate.user_preference("stop")])
    del change["value"]["metadata"]
    batch = parse_webhook(simulate.batch(change))
    assert batch.preferences == () and len(batch.problems) == 1
