"""Sending a synced template with its variables: the REST API and flows' template specs go
through send_to_contact, are checked against the synced template before anything is written,
and reach the fake Graph API (which checks them as Meta does) with the variables filled in;
outside the 24-hour window a template goes, free text does not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from conversations.models import Message, MessageStatus
from conversations.services.inbound import store_messages
from conversations.services.outbound import enqueue_unsent, send_to_contact
from devtools import webhook_payloads as simulate
from flows import services as flow_services
from flows.message_spec_validation import validate_message_spec
from flows.services.documents import import_flow_document
from meta_integration.models import MessageTemplate
from meta_integration.payloads import parse_webhook
from meta_integration.templates import TemplateVariablesError
from meta_integration.templates_sync import sync_templates
from tests.support.flows import business, flow_doc, go, step, text_spec
from tests.support.outbound import make_config, make_contact
from tests.support.waiting import wait_until
from whatsappcrm_backend.api import AGENT_GROUP, ensure_role_groups

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def config(fake, graph_url):
    config = make_config(graph_url)
    config.waba_id = fake.waba_id
    config.save()
    sync_templates(config)
    fake.clear_requests()  # the sync's GETs: the tests look at sends only
    return config


@pytest.fixture
def agent() -> APIClient:
    ensure_role_groups()
    user = User.objects.create_user("tariro.agent")
    user.groups.add(Group.objects.get(name=AGENT_GROUP))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def post(agent: APIClient, contact, **data):
    return agent.post(f"/api/contacts/{contact.pk}/messages/", data, format="json")


@pytest.mark.parametrize(("data", "field", "says"), [
    ({"template": "bet_settled", "language": "en_US", "variables": {"body.1": "Tendai"}},
     "variables.body.2", "takes 2 variable(s) and 1 were given"),
    ({"template": "bet_settled", "language": "en_US", "variables": {"body.1": "a", "body.2": "b", "body.3": "c"}},
     "variables.body.3", "has no variable"),
    ({"template": "kickoff_alert", "language": "en_US",
      "variables": {"header.1": "x" * 61, "body.1": "17:30", "body.2": "15"}}, "variables.header.1", "at most 60"),
    ({"template": "promo_banner", "language": "en_US", "variables": {"header.media": "banner.jpg", "body.1": "x"}},
     "variables.header.media", "https:// link or a media id"),
    ({"template": "no_such_template", "language": "en_US"}, "template", "no template"),
    ({"template": "free_bet_offer", "language": "en_US", "variables": {"body.1": "10"}}, "template", "rejected"),
    ({"template": "bet_settled", "variables": {"body.1": "a", "body.2": "b"}}, "language", "several languages"),
    ({"text": "hi", "variables": {"body.1": "a"}}, "variables", "only with template"),
], ids=["too-few", "too-many", "too-long", "bad-media", "unknown", "rejected", "which-language", "no-template"])
def test_bad_template_sends_are_refused_naming_the_slot_and_nothing_is_written(fake, config, agent, data, field,
                                                                               says):
    contact = make_contact(config)
    response = post(agent, contact, **data)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert says in " ".join(error["fields"][field])
    assert Message.objects.count() == 0
    assert fake.requests() == []


def test_a_template_send_arrives_at_meta_with_its_variables(gevent_worker, fake, config, agent):
    contact = make_contact(config)
    response = post(agent, contact, template="kickoff_alert", language="en_US",
                    variables={"header.1": "Arsenal v Chelsea", "body.1": "17:30", "body.2": "15"})
    assert response.status_code == 201, response.content
    [record] = fake.wait_for_messages(1, to=contact.wa_id, timeout=20)
    assert record.body["template"] == {"name": "kickoff_alert", "language": {"code": "en_US"}, "components": [
        {"type": "header", "parameters": [{"type": "text", "text": "Arsenal v Chelsea"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "17:30"}, {"type": "text", "text": "15"}]},
    ]}
    message = Message.objects.get(pk=response.json()["id"])
    wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, what="sent")
    assert (message.sent_by, message.message_type, message.text) == ("tariro.agent", "template",
                                                                     "template kickoff_alert")


def test_outside_the_window_a_template_goes_and_free_text_is_refused(gevent_worker, fake, config, agent):
    lapsed = make_contact(config, last_inbound_ago=timedelta(hours=30))
    assert post(agent, lapsed, text="Still there?").status_code == 409
    response = post(agent, lapsed, template="bet_settled", language="fr",
                    variables={"body.1": "Amélie", "body.2": "12,50 €"})
    assert response.status_code == 201, response.content
    [record] = fake.wait_for_messages(1, to=lapsed.wa_id, timeout=20)
    assert record.body["template"]["language"] == {"code": "fr"}
    assert [p["text"] for p in record.body["template"]["components"][0]["parameters"]] == ["Amélie", "12,50 €"]
    wait_until(lambda: Message.objects.get(pk=response.json()["id"]).status == MessageStatus.SENT, what="sent")


def test_a_template_removed_upstream_after_the_sync_fails_at_meta_with_its_code(gevent_worker, fake, config):
    """The sync is not instant: Meta's 132001 for a template deleted meanwhile is kept on the row."""
    contact = make_contact(config)
    fake.templates.remove("deposit_received")
    message = send_to_contact(contact, {"type": "template", "name": "deposit_received", "language": "en_US",
                                        "variables": {"body.1": "$10", "body.2": "$25"}})
    wait_until(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.FAILED, what="failed")
    message.refresh_from_db()
    assert message.error_code == 132001
    assert fake.messages() == []


def test_a_flow_template_spec_with_variables_is_checked_and_resolved(fake, config):
    spec = {"type": "template", "name": "welcome_named", "language": "en_US",
            "variables": {"body.first_name": "{{ contact.name }}", "body.amount": "$5"}}
    assert validate_message_spec(spec) == []
    bad = {**spec, "variables": {"body.first_name": 5}}
    assert [e.path for e in validate_message_spec(bad)] == ["message.variables"]
    resolved = MessageTemplate.resolve_spec({**spec, "variables": {"body.first_name": "Tendai", "body.amount": "$5"}},
                                            config.pk)
    assert resolved["components"] == [{"type": "body", "parameters": [
        {"type": "text", "text": "Tendai", "parameter_name": "first_name"},
        {"type": "text", "text": "$5", "parameter_name": "amount"}]}]
    contact = make_contact(config)
    with pytest.raises(TemplateVariablesError, match="missing body.amount"):
        send_to_contact(contact, {**spec, "variables": {"body.first_name": "Tendai"}})
    assert Message.objects.count() == 0


def test_a_flow_step_sends_a_template_with_variables_from_the_flow_context(gevent_worker, fake, graph_url):
    """A send_message step whose message is a template spec with variables rendered from the
    flow (the user's answer), resolved against the synced template and sent like any reply."""
    config = business(graph_url, waba_id=fake.waba_id, access_token="EAAG-outbound-test-token")
    sync_templates(config)
    fake.clear_requests()
    import_flow_document(flow_doc({
        "name": "free_bet", "description": "Asks a name, answers with the welcome template.", "active": True,
        "trigger_keywords": ["free bet"],
        "steps": [
            step("ask", "question", {"prompt": text_spec("Your first name?"), "expect": {"type": "text"},
                                     "save_to": "first_name"}, entry=True),
            step("offer", "send_message", {"message": {
                "type": "template", "name": "welcome_named", "language": "en_US",
                "variables": {"body.first_name": "{{ first_name }}", "body.amount": "$5"}}}),
            step("done", "end_flow", {}),
        ],
        "transitions": [go("ask", "offer"), go("offer", "done")],
    }))
    wa_id = "263779990001"

    def receive(text: str) -> None:
        body = simulate.webhook_body([simulate.text(text, wa_id=wa_id)], phone_number_id=config.phone_number_id)
        stored = store_messages(parse_webhook(body).messages, config)
        flow_services.process_inbound(stored[-1].id)

    receive("free bet")
    receive("Tendai")
    template = Message.objects.get(message_type="template")
    assert (template.text, template.sent_by) == ("template welcome_named", "bot")
    enqueue_unsent(timedelta(0))  # the worker sends the written replies, as after process_message
    sent = fake.wait_for_messages(2, to=wa_id, timeout=20)
    assert sent[-1].body["template"] == {"name": "welcome_named", "language": {"code": "en_US"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Tendai", "parameter_name": "first_name"},
                                        {"type": "text", "text": "$5", "parameter_name": "amount"}]}]}
