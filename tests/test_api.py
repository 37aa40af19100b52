"""The operators' REST API over real data: who may call what, what each call changes, and how
bad input is answered.

The data is made the way production makes it: inbound messages go through the webhook's
parser and the inbound store, the bot answers them through ``process_inbound``, flows come
from the shipped ``core.json``, fixtures and odds from API-Football-shaped bodies and tickets
from ``place_ticket``. Sends are committed to the Outbox (a pending row and one enqueue on
commit, captured here, not executed); the workers' side is tested elsewhere.

The tests mount the API on their own urlconf (tests/support/api.py, with the starting data;
the ``world`` fixture is in conftest.py), so they do not depend on the project's urls.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from campaigns.models import Campaign, Recipient
from conversations.api import phone_digits
from conversations.models import Contact, Direction, Label, Message, MessageStatus
from flows import services as flow_services
from flows.models import ContactFlowState, Flow
from football_data_app.models import LedgerEntry, Wallet
from football_data_app.services.wallet import wallet_discrepancies
from meta_integration.models import MetaAppConfig
from tests.support.api import ANONYMOUS, URLCONF, World, receive
from whatsappcrm_backend.api import AGENT_GROUP, READ_ONLY_GROUP, Role, ensure_role_groups, role_for
from whatsappcrm_backend.api_errors import api_exception_handler, flatten_errors

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLCONF)]

ROLES = (ANONYMOUS, Role.NONE, Role.READ_ONLY, Role.AGENT, Role.ADMIN)
D = Decimal


def fingerprint() -> tuple:
    """Everything an API call could change."""
    return (
        list(Message.objects.order_by("pk").values_list("pk", "status")),
        list(Contact.objects.order_by("pk").values_list("pk", "needs_human", "blocked")),
        list(ContactFlowState.objects.order_by("pk").values_list("pk", "version")),
        list(Flow.objects.order_by("pk").values_list("name", "description", "updated_at")),
        list(LedgerEntry.objects.order_by("pk").values_list("pk", "amount")),
        list(Wallet.objects.order_by("pk").values_list("pk", "balance")),
        list(Label.objects.order_by("pk").values_list("pk", "name", "color")),
        list(Contact.labels.through.objects.order_by("pk").values_list("contact_id", "label_id")),
        list(Campaign.objects.order_by("pk").values_list("pk", "state")),
        Recipient.objects.count(),
    )


def error_of(response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["message"], body
    return body["error"]


# --------------------------------------------------------------------------- permission matrix


def _import_document(w: World) -> dict[str, Any]:
    document = flow_services.export_flow_document(["main_menu"])
    document["flows"][0]["description"] = "Greets the user (edited through the API)"
    return document


@dataclass(frozen=True)
class Call:
    method: str
    url: Callable[[World], str]
    needs: Role
    ok: int
    body: Callable[[World], Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


CALLS = {
    "contact list": Call("get", lambda w: "/api/contacts/", Role.READ_ONLY, 200),
    "contact detail": Call("get", lambda w: f"/api/contacts/{w.contact.pk}/", Role.READ_ONLY, 200),
    "conversation": Call("get", lambda w: f"/api/contacts/{w.contact.pk}/messages/", Role.READ_ONLY, 200),
    "send": Call(
        "post", lambda w: f"/api/contacts/{w.contact.pk}/messages/", Role.AGENT, 201,
        lambda w: {"text": "Hello Tendai, this is Tariro from the team."},
    ),
    "labels": Call("get", lambda w: "/api/labels/", Role.READ_ONLY, 200),
    "label create": Call("post", lambda w: "/api/labels/", Role.AGENT, 201, lambda w: {"name": "vip"}),
    "contact labels": Call(
        "post", lambda w: f"/api/contacts/{w.contact.pk}/labels/", Role.AGENT, 200, lambda w: {"add": [w.label.pk]}
    ),
    "bulk labels": Call(
        "post", lambda w: "/api/contacts/labels/", Role.AGENT, 200,
        lambda w: {"contacts": [w.contact.pk, w.waiting.pk], "add": [w.label.pk]},
    ),
    "handover": Call("post", lambda w: f"/api/contacts/{w.contact.pk}/handover/", Role.AGENT, 200),
    "release": Call(
        "post", lambda w: f"/api/contacts/{w.waiting.pk}/release/", Role.AGENT, 200,
        lambda w: {"message": "Thanks Chipo, the bot will take it from here."},
    ),
    "flow states": Call("get", lambda w: "/api/flow-states/", Role.READ_ONLY, 200),
    "expire": Call(
        "post", lambda w: f"/api/flow-states/{w.state.pk}/expire/", Role.AGENT, 200, lambda w: {"notify": True}
    ),
    "flows": Call("get", lambda w: "/api/flows/", Role.READ_ONLY, 200),
    "flow detail": Call("get", lambda w: f"/api/flows/{w.flow.pk}/", Role.READ_ONLY, 200),
    "flow export": Call("get", lambda w: "/api/flows/export/?name=main_menu", Role.READ_ONLY, 200),
    "flow import": Call("post", lambda w: "/api/flows/import/", Role.ADMIN, 200, _import_document),
    "tickets": Call("get", lambda w: "/api/tickets/", Role.READ_ONLY, 200),
    "ticket detail": Call("get", lambda w: f"/api/tickets/{w.ticket.pk}/", Role.READ_ONLY, 200),
    "wallets": Call("get", lambda w: "/api/wallets/", Role.READ_ONLY, 200),
    "wallet detail": Call("get", lambda w: f"/api/wallets/{w.wallet.pk}/", Role.READ_ONLY, 200),
    "wallet entries": Call("get", lambda w: f"/api/wallets/{w.wallet.pk}/entries/", Role.READ_ONLY, 200),
    "deposit": Call(
        "post", lambda w: f"/api/wallets/{w.wallet.pk}/deposits/", Role.ADMIN, 201,
        lambda w: {"amount": "25.00", "note": "Cash at the Harare shop"},
        {"Idempotency-Key": "deposit-0001-harare"},
    ),
    "adjustment": Call(
        "post", lambda w: f"/api/wallets/{w.wallet.pk}/adjustments/", Role.ADMIN, 201,
        lambda w: {"amount": "-5.00", "note": "Reverse a duplicate deposit"},
        {"Idempotency-Key": "adjust-0001-duplicate"},
    ),
    "campaigns": Call("get", lambda w: "/api/campaigns/", Role.READ_ONLY, 200),
    "campaign detail": Call("get", lambda w: f"/api/campaigns/{w.campaigns['running'].pk}/", Role.READ_ONLY, 200),
    "campaign start": Call("post", lambda w: f"/api/campaigns/{w.campaigns['draft'].pk}/start/", Role.AGENT, 200),
    "campaign pause": Call("post", lambda w: f"/api/campaigns/{w.campaigns['running'].pk}/pause/", Role.AGENT, 200),
    "campaign resume": Call("post", lambda w: f"/api/campaigns/{w.campaigns['paused'].pk}/resume/", Role.AGENT, 200),
    "campaign cancel": Call("post", lambda w: f"/api/campaigns/{w.campaigns['draft'].pk}/cancel/", Role.AGENT, 200),
    "campaign retry failed": Call(
        "post", lambda w: f"/api/campaigns/{w.campaigns['running'].pk}/retry-failed/", Role.AGENT, 200),
}


def perform(w: World, role: Any, call: Call):
    client = w.client(role)
    kwargs: dict[str, Any] = {"headers": call.headers} if call.headers else {}
    if call.method == "get":
        return client.get(call.url(w), **kwargs)
    body = call.body(w) if call.body else None
    return client.post(call.url(w), body, format="json", **kwargs)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r if isinstance(r, str) else r.name.lower())
@pytest.mark.parametrize("name", list(CALLS))
def test_permissions(world, role, name, django_capture_on_commit_callbacks):
    call = CALLS[name]
    before = fingerprint()
    with django_capture_on_commit_callbacks() as callbacks:
        response = perform(world, role, call)
    if role == ANONYMOUS:
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"] == "Token"
        assert error_of(response)["code"] == "not_authenticated"
    elif role < call.needs:
        assert response.status_code == 403, response.content
        error = error_of(response)
        assert error["code"] == "permission_denied"
        assert call.needs.label in error["message"]
    else:
        assert response.status_code == call.ok, response.content
        assert "error" not in response.json()
        return
    assert fingerprint() == before, "a refused request changed something"
    assert callbacks == []


def test_the_matrix_covers_every_operation_in_the_schema(world):
    schema = world.client(Role.ADMIN).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    covered = {(c.method, _template(c.url(world), world)) for c in CALLS.values()}
    assert operations == covered


def _template(url: str, w: World) -> str:
    url = url.split("?")[0]
    for obj in (w.contact, w.waiting, w.state, w.flow, w.ticket, w.wallet, *w.campaigns.values()):
        url = url.replace(f"/{obj.pk}/", "/{id}/")
    return url


# --------------------------------------------------------------------------- authentication


def test_bad_token_is_401_and_changes_nothing(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")
    before = fingerprint()
    response = client.post(f"/api/contacts/{world.contact.pk}/handover/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert error_of(response)["code"] == "authentication_failed"
    assert fingerprint() == before


def test_inactive_user_token_is_refused(world):
    User.objects.filter(pk=world.users[Role.ADMIN].pk).update(is_active=False)
    response = world.client(Role.ADMIN).get("/api/contacts/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"


def test_session_login_works_and_needs_csrf_for_writes(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.users[Role.AGENT])
    assert client.get("/api/contacts/").status_code == 200
    before = fingerprint()
    response = client.post(f"/api/contacts/{world.contact.pk}/handover/")
    assert response.status_code == 403
    assert "CSRF" in error_of(response)["message"]
    assert fingerprint() == before


def test_roles_from_groups_and_flags():
    assert role_for(active=True, staff=False, superuser=False, groups=[]) is Role.NONE
    assert role_for(active=True, staff=False, superuser=False, groups=["sales"]) is Role.NONE
    assert role_for(active=True, staff=False, superuser=False, groups=[READ_ONLY_GROUP]) is Role.READ_ONLY
    assert role_for(active=True, staff=False, superuser=False, groups=[READ_ONLY_GROUP, AGENT_GROUP]) is Role.AGENT
    assert role_for(active=True, staff=True, superuser=False, groups=[]) is Role.ADMIN
    assert role_for(active=True, staff=False, superuser=True, groups=[]) is Role.ADMIN
    assert role_for(active=False, staff=True, superuser=True, groups=[AGENT_GROUP]) is Role.NONE


def test_role_groups_are_created_once():
    Group.objects.filter(name__in=[READ_ONLY_GROUP, AGENT_GROUP]).delete()
    assert sorted(ensure_role_groups()) == sorted([READ_ONLY_GROUP, AGENT_GROUP])
    assert ensure_role_groups() == []
    assert Group.objects.filter(name__in=[READ_ONLY_GROUP, AGENT_GROUP]).count() == 2


# --------------------------------------------------------------------------- contacts


def test_contact_search_by_number_and_name_and_filters(world):
    client = world.client(Role.READ_ONLY)
    Contact.objects.create(wa_id="447700900123", profile_name="Alice Smith", blocked=True)

    def wa_ids(query: str) -> list[str]:
        response = client.get(f"/api/contacts/{query}")
        assert response.status_code == 200, response.content
        return [row["wa_id"] for row in response.json()["results"]]

    assert wa_ids("?search=%2B263+77-123") == ["263771234567"]  # "+263 77-123"
    assert wa_ids("?search=chipo") == ["263772000111"]
    assert wa_ids("?search=ALICE") == ["447700900123"]
    assert wa_ids("?needs_human=true") == ["263772000111"]
    assert sorted(wa_ids("?needs_human=false")) == ["263771234567", "447700900123"]
    assert wa_ids("?blocked=1") == ["447700900123"]
    assert wa_ids("?search=nobody-like-this") == []
    # most recently active first; never-active contacts last
    assert wa_ids("")[-1] == "447700900123"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?needs_human=maybe", "needs_human"),
        ("?needs_human=", "needs_human"),
        ("?blocked=2", "blocked"),
        ("?search=" + "9" * 101, "search"),
    ],
)
def test_contact_filters_refuse_bad_values(world, query, field):
    response = world.client(Role.READ_ONLY).get(f"/api/contacts/{query}")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert error["message"].startswith(f"{field}: ")


def test_contact_list_pages(world):
    Contact.objects.bulk_create(Contact(wa_id=f"26378{i:07d}", profile_name=f"Fan {i}") for i in range(5))
    client = world.client(Role.READ_ONLY)
    first = client.get("/api/contacts/?page_size=3").json()
    assert first["count"] == 7
    assert len(first["results"]) == 3 and first["previous"] is None
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    assert third["next"] is None
    seen = [row["id"] for page in (first, second, third) for row in page["results"]]
    assert sorted(seen) == sorted(Contact.objects.values_list("pk", flat=True))
    response = client.get("/api/contacts/?page=9")
    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["message"]) == ("not_found", "Page 9: That page contains no results.")


@pytest.mark.parametrize(
    ("query", "field"), [("page=0", "page"), ("page=last", "page"), ("page_size=0", "page_size"),
                         ("page_size=201", "page_size"), ("page_size=ten", "page_size")],
)
@pytest.mark.parametrize("endpoint", ["contacts", "flows", "flow-states", "tickets", "wallets"])
def test_every_list_refuses_bad_paging(world, endpoint, query, field):
    response = world.client(Role.READ_ONLY).get(f"/api/{endpoint}/?{query}")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == [field]


def test_contact_detail(world):
    response = world.client(Role.READ_ONLY).get(f"/api/contacts/{world.waiting.pk}/")
    body = response.json()
    assert body["wa_id"] == "263772000111"
    assert body["profile_name"] == "Chipo Banda"
    assert body["needs_human"] is True and body["handover_at"]
    missing = world.client(Role.READ_ONLY).get("/api/contacts/999999/")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"


def test_phone_digits():
    assert phone_digits("+263 77-123 (4)") == "263771234"
    assert phone_digits("Tendai") is None
    assert phone_digits("12") is None  # too short to be a number search


# --------------------------------------------------------------------------- conversation


def _conversation(world, n: int) -> list[int]:
    """``n`` more inbound messages from the contact (each answered by the bot)."""
    for i in range(n):
        receive(world.config, world.contact.wa_id, f"question {i}")
    return list(Message.objects.filter(contact=world.contact).order_by("pk").values_list("pk", flat=True))


def test_conversation_is_newest_last_with_older_and_newer_links(world):
    ids = _conversation(world, 4)
    assert len(ids) >= 9
    client = world.client(Role.READ_ONLY)
    url = f"/api/contacts/{world.contact.pk}/messages/"

    latest = client.get(url, {"limit": 4}).json()
    assert [m["id"] for m in latest["results"]] == ids[-4:]
    assert latest["newer"] is None
    older = client.get(latest["older"]).json()
    assert [m["id"] for m in older["results"]] == ids[-8:-4]
    assert client.get(older["newer"]).json()["results"] == latest["results"]

    pages = []
    first = client.get(url, {"limit": 4, "before": ids[3]}).json()
    assert [m["id"] for m in first["results"]] == ids[:3]
    assert first["older"] is None
    link = first["newer"]
    while link:
        page = client.get(link).json()
        pages.extend(m["id"] for m in page["results"])
        link = page["newer"]
    assert ids[:3] + pages == ids

    first_in = latest["results"][0]
    assert {"direction", "text", "status", "sent_by", "created_at"} <= set(first_in)
    inbound = [m for m in older["results"] + latest["results"] if m["direction"] == Direction.INBOUND]
    assert inbound and all(m["status"] == MessageStatus.RECEIVED for m in inbound)


def test_polling_with_after_sees_each_new_message_once(world):
    client = world.client(Role.READ_ONLY)
    url = f"/api/contacts/{world.contact.pk}/messages/"
    last = client.get(url).json()["results"][-1]["id"]
    nothing_yet = client.get(url, {"after": last}).json()
    assert (nothing_yet["results"], nothing_yet["newer"]) == ([], None)
    receive(world.config, world.contact.wa_id, "2")
    new = client.get(url, {"after": last}).json()["results"]
    assert new[0]["direction"] == Direction.INBOUND
    assert new[0]["text"] == "2"
    assert client.get(url, {"after": new[-1]["id"]}).json()["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"before": "abc"}, "before"),
        ({"after": -1}, "after"),
        ({"before": 5, "after": 2}, "after"),
        ({"after": 2**63}, "after"),
    ],
)
def test_conversation_refuses_bad_paging(world, params, field):
    response = world.client(Role.READ_ONLY).get(f"/api/contacts/{world.contact.pk}/messages/", params)
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == [field]


# --------------------------------------------------------------------------- sending


def test_send_text_uses_the_bots_send_path(world, django_capture_on_commit_callbacks):
    client = world.client(Role.AGENT)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            f"/api/contacts/{world.contact.pk}/messages/", {"text": "Your payout is on its way."}, format="json"
        )
    assert response.status_code == 201, response.content
    body = response.json()
    message = Message.objects.get(pk=body["id"])
    assert (message.direction, message.status, message.sent_by) == ("out", "pending", "tariro.agent")
    assert message.content == {"type": "text", "body": "Your payout is on its way."}
    assert message.app_config == world.config
    assert body["status"] == "pending" and body["sent_by"] == "tariro.agent"
    assert len(callbacks) == 1  # the send task is enqueued once, when the transaction commits


def test_send_spec_with_buttons_and_a_quote(world):
    inbound = Message.objects.filter(contact=world.contact, direction="in").latest("pk")
    spec = {"type": "buttons", "body": "Did that answer your question?",
            "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "Not yet"}]}  # fmt: skip
    response = world.client(Role.ADMIN).post(
        f"/api/contacts/{world.contact.pk}/messages/", {"spec": spec, "reply_to": inbound.wamid}, format="json"
    )
    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert message.message_type == "interactive"
    assert message.reply_to_wamid == inbound.wamid
    assert message.sent_by == "farai.admin"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": "hi", "spec": {"type": "text", "body": "hi"}}, "spec"),
        ({"text": ""}, "text"),
        ({"text": "x" * 4097}, "text"),
        ({"text": 12}, None),  # DRF accepts numbers as text: "12" is sent; see below
        ({"spec": "hello"}, "spec"),
        ({"spec": {"type": "fax", "body": "hi"}}, "spec.type"),
        ({"spec": {"type": "text"}}, "spec.body"),
        ({"spec": {"type": "text", "body": "hi", "colour": "red"}}, "spec.colour"),
        ({"spec": {"type": "buttons", "body": "Pick", "buttons": [{"id": "a", "title": "A title that is too long"}]}},
         "spec.interactive.action.buttons[0].reply.title"),
        ({"spec": {"type": "media", "media_type": "image"}}, "spec.image"),
        ({"text": "hi", "reply_to": ""}, "reply_to"),
        ({"text": "hi", "reply_to": "w" * 257}, "reply_to"),
    ],
)
def test_send_refuses_invalid_messages_naming_the_field(world, body, field):
    before = fingerprint()
    response = world.client(Role.AGENT).post(f"/api/contacts/{world.contact.pk}/messages/", body, format="json")
    if field is None:
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field], error
    assert fingerprint() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "a\x00b"}, "text"),
        ({"spec": {"type": "text", "body": "nul \x00 inside"}}, "spec.body"),
        ({"spec": {"type": "list", "body": "b", "button": "Open", "sections": [{"rows": [{"id": "\x00"}]}]}},
         "spec.sections[0].rows[0].id"),
        ({"spec": {"type\x00": "text"}}, "spec.type\x00"),
    ],
)
def test_nul_characters_are_refused_before_anything_is_stored(world, body, field):
    """PostgreSQL cannot store NUL in text or jsonb: it must be a 400, never a server error."""
    before = fingerprint()
    response = world.client(Role.AGENT).post(f"/api/contacts/{world.contact.pk}/messages/", body, format="json")
    assert response.status_code == 400
    assert error_of(response)["fields"] == {field: ["null characters are not allowed"]}
    assert fingerprint() == before


def test_nul_in_a_query_is_refused(world):
    response = world.client(Role.READ_ONLY).get("/api/contacts/", {"search": "chi\x00po"})
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["search"]


def test_send_refuses_malformed_json(world):
    response = world.client(Role.AGENT).post(
        f"/api/contacts/{world.contact.pk}/messages/", b'{"text": "hi"', content_type="application/json"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


def test_send_to_a_blocked_contact_is_refused(world):
    Contact.objects.filter(pk=world.contact.pk).update(blocked=True)
    before = fingerprint()
    response = world.client(Role.AGENT).post(
        f"/api/contacts/{world.contact.pk}/messages/", {"text": "hi"}, format="json"
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "contact_blocked"
    assert fingerprint() == before


def test_outside_the_24_hour_window_only_a_template_goes(world):
    Contact.objects.filter(pk=world.contact.pk).update(last_inbound_at=timezone.now() - timedelta(hours=25))
    client = world.client(Role.AGENT)
    url = f"/api/contacts/{world.contact.pk}/messages/"
    before = fingerprint()
    response = client.post(url, {"text": "Are you still there?"}, format="json")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "window_closed" and list(error["fields"]) == ["text"]
    assert fingerprint() == before
    template = {"type": "template", "name": "ticket_update", "language": "en_US"}
    assert client.post(url, {"spec": template}, format="json").status_code == 201


def test_send_without_a_business_number_is_refused(world):
    MetaAppConfig.objects.update(is_active=False)
    before = fingerprint()
    response = world.client(Role.AGENT).post(
        f"/api/contacts/{world.contact.pk}/messages/", {"text": "hi"}, format="json"
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "no_business_number"
    assert fingerprint() == before


def test_send_to_a_missing_contact_is_404(world):
    response = world.client(Role.AGENT).post("/api/contacts/987654/messages/", {"text": "hi"}, format="json")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


# --------------------------------------------------------------------------- handover


def test_handover_quiets_the_bot_and_ends_the_session(world):
    client = world.client(Role.AGENT)
    response = client.post(f"/api/contacts/{world.contact.pk}/handover/")
    assert response.status_code == 200
    body = response.json()
    assert body["changed"] is True and body["contact"]["needs_human"] is True
    assert not ContactFlowState.objects.filter(contact=world.contact).exists()

    again = client.post(f"/api/contacts/{world.contact.pk}/handover/").json()
    assert again["changed"] is False

    # the bot stays quiet while an operator has the conversation
    replies = Message.objects.filter(contact=world.contact, direction="out").count()
    receive(world.config, world.contact.wa_id, "hello?")
    assert Message.objects.filter(contact=world.contact, direction="out").count() == replies


def test_release_gives_the_contact_back_with_a_message_from_the_operator(world):
    client = world.client(Role.AGENT)
    response = client.post(
        f"/api/contacts/{world.waiting.pk}/release/", {"message": "  All sorted, over to the bot.  "}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["changed"] is True
    assert response.json()["contact"]["needs_human"] is False
    sent = Message.objects.filter(contact=world.waiting, direction="out").latest("pk")
    assert (sent.text, sent.sent_by, sent.status) == ("All sorted, over to the bot.", "tariro.agent", "pending")

    before = fingerprint()
    again = client.post(f"/api/contacts/{world.waiting.pk}/release/", {"message": "Again"}, format="json")
    assert again.json()["changed"] is False
    assert fingerprint() == before  # nothing sent for a contact not in handover


def test_release_message_outside_the_window_is_refused_and_keeps_the_handover(world):
    Contact.objects.filter(pk=world.waiting.pk).update(last_inbound_at=timezone.now() - timedelta(days=2))
    client = world.client(Role.AGENT)
    before = fingerprint()
    response = client.post(f"/api/contacts/{world.waiting.pk}/release/", {"message": "Back to the bot"}, format="json")
    assert response.status_code == 409
    assert error_of(response)["fields"] == {"message": ["outside the 24-hour window"]}
    assert fingerprint() == before
    silent = client.post(f"/api/contacts/{world.waiting.pk}/release/", {}, format="json")
    assert silent.json()["changed"] is True


def test_release_refuses_a_too_long_message(world):
    response = world.client(Role.AGENT).post(
        f"/api/contacts/{world.waiting.pk}/release/", {"message": "x" * 4097}, format="json"
    )
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["message"]
    assert Contact.objects.get(pk=world.waiting.pk).needs_human


# --------------------------------------------------------------------------- flow states


def test_flow_states_list_and_filters(world):
    client = world.client(Role.READ_ONLY)
    rows = client.get("/api/flow-states/").json()["results"]
    assert [(r["contact_wa_id"], r["flow"], r["step"]) for r in rows] == [("263771234567", "main_menu", "menu")]
    assert client.get("/api/flow-states/?flow=help").json()["results"] == []
    assert len(client.get(f"/api/flow-states/?contact={world.contact.pk}").json()["results"]) == 1
    bad = client.get("/api/flow-states/?contact=abc")
    assert bad.status_code == 400 and list(error_of(bad)["fields"]) == ["contact"]


def test_expire_ends_the_session_and_tells_the_user_once(world):
    client = world.client(Role.AGENT)
    url = f"/api/flow-states/{world.state.pk}/expire/"
    response = client.post(url, {"version": world.state.version}, format="json")
    assert response.status_code == 200
    assert response.json() == {"id": world.state.pk, "expired": True}
    assert not ContactFlowState.objects.filter(pk=world.state.pk).exists()
    notice = Message.objects.filter(contact=world.contact, direction="out").latest("pk")
    assert "timed out" in notice.text

    gone = client.post(url, {}, format="json")
    assert gone.status_code == 404
    assert error_of(gone)["code"] == "not_found"


def test_expire_without_notice(world):
    replies = Message.objects.filter(direction="out").count()
    response = world.client(Role.AGENT).post(
        f"/api/flow-states/{world.state.pk}/expire/", {"notify": False}, format="json"
    )
    assert response.status_code == 200
    assert Message.objects.filter(direction="out").count() == replies


def test_expire_with_a_stale_version_changes_nothing(world):
    seen = world.state.version
    receive(world.config, world.contact.wa_id, "menu")  # the user answers: the session moves on
    before = fingerprint()
    response = world.client(Role.AGENT).post(
        f"/api/flow-states/{world.state.pk}/expire/", {"version": seen}, format="json"
    )
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "stale_version" and list(error["fields"]) == ["version"]
    assert fingerprint() == before


@pytest.mark.parametrize("body", [{"version": 0}, {"version": "one"}, {"notify": "perhaps"}])
def test_expire_refuses_bad_input(world, body):
    response = world.client(Role.AGENT).post(f"/api/flow-states/{world.state.pk}/expire/", body, format="json")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == list(body)
    assert ContactFlowState.objects.filter(pk=world.state.pk).exists()


# --------------------------------------------------------------------------- flows


def test_flows_list_and_detail(world):
    client = world.client(Role.READ_ONLY)
    rows = client.get("/api/flows/").json()["results"]
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == set(Flow.objects.values_list("name", flat=True))
    assert by_name["main_menu"]["sessions"] == 1
    assert by_name["main_menu"]["steps"] == Flow.objects.get(name="main_menu").steps.count()
    detail = client.get(f"/api/flows/{world.flow.pk}/").json()
    assert detail["document"] == flow_services.export_flow_document(["main_menu"])["flows"][0]


def test_export_then_import_round_trips(world):
    client = world.client(Role.ADMIN)
    document = client.get("/api/flows/export/").json()
    assert [f["name"] for f in document["flows"]] == list(Flow.objects.order_by("pk").values_list("name", flat=True))
    response = client.post("/api/flows/import/", document, format="json")
    assert response.status_code == 200
    assert response.json()["created"] == [] and response.json()["updated"] == []
    assert sorted(response.json()["unchanged"]) == sorted(f["name"] for f in document["flows"])


def test_import_updates_in_place_and_keeps_the_conversation(world):
    document = _import_document(world)
    response = world.client(Role.ADMIN).post("/api/flows/import/", document, format="json")
    assert response.json() == {"created": [], "updated": ["main_menu"], "unchanged": [], "sessions_reset": 0}
    assert Flow.objects.get(name="main_menu").description == "Greets the user (edited through the API)"
    assert ContactFlowState.objects.filter(pk=world.state.pk, step="menu").exists()


def test_import_of_an_invalid_document_lists_the_validators_errors_and_writes_nothing(world):
    document = copy.deepcopy(_import_document(world))
    document["flows"][0]["steps"][0]["type"] = "teleport"
    document["flows"].append({"name": "", "steps": []})
    before = fingerprint()
    response = world.client(Role.ADMIN).post("/api/flows/import/", document, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert "flows[0].steps[0].type" in error["fields"]
    assert any(path.startswith("flows[1]") for path in error["fields"])
    assert error["message"].startswith("The flow document is invalid: ")
    assert fingerprint() == before


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"[1, 2]", "application/json", 400, "invalid"),
        (b'{"version": 2, "flows": []}', "application/json", 400, "invalid"),
        (b"{not json", "application/json", 400, "parse_error"),
        (b"version=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_import_refuses_what_is_not_a_document(world, body, content_type, status, code):
    before = fingerprint()
    response = world.client(Role.ADMIN).post("/api/flows/import/", body, content_type=content_type)
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert fingerprint() == before


def test_export_of_an_unknown_flow_names_it(world):
    response = world.client(Role.READ_ONLY).get("/api/flows/export/?name=main_menu&name=casino")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert "casino" in error["fields"]["name"][0]


# --------------------------------------------------------------------------- tickets and wallets


def test_tickets(world):
    client = world.client(Role.READ_ONLY)
    rows = client.get("/api/tickets/").json()["results"]
    assert [r["id"] for r in rows] == [world.ticket.pk]
    ticket = client.get(f"/api/tickets/{world.ticket.pk}/").json()
    assert ticket["stake"] == "10.00" and ticket["status"] == "open"
    assert ticket["contact_wa_id"] == "263771234567" and ticket["currency"] == world.wallet.currency
    [bet] = ticket["bets"]
    assert " v " in bet["fixture_name"] and D(bet["odds"]) >= 1
    assert client.get("/api/tickets/?status=won").json()["results"] == []
    assert len(client.get(f"/api/tickets/?contact={world.contact.pk}").json()["results"]) == 1
    bad = client.get("/api/tickets/?status=lucky")
    assert bad.status_code == 400 and list(error_of(bad)["fields"]) == ["status"]


def test_wallets_and_their_ledger(world):
    client = world.client(Role.READ_ONLY)
    [row] = client.get("/api/wallets/").json()["results"]
    assert (row["balance"], row["contact_wa_id"], row["contact_name"]) == ("90.00", "263771234567", "Tendai Moyo")
    assert client.get(f"/api/wallets/{world.wallet.pk}/").json()["balance"] == "90.00"
    entries = client.get(f"/api/wallets/{world.wallet.pk}/entries/").json()["results"]
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in entries] == [
        ("stake", "-10.00", "90.00"), ("deposit", "100.00", "100.00"),
    ]  # fmt: skip
    assert client.get("/api/wallets/424242/entries/").status_code == 404


def _book(world, kind: str, body: dict[str, Any], key: str | None = "key-0001-abcdef"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return world.client(Role.ADMIN).post(f"/api/wallets/{world.wallet.pk}/{kind}/", body, format="json",
                                         headers=headers)  # fmt: skip


def test_deposit_books_once_per_idempotency_key(world):
    first = _book(world, "deposits", {"amount": "25.50", "note": "Cash"})
    assert first.status_code == 201
    body = first.json()
    assert body["replayed"] is False
    assert body["wallet"]["balance"] == "115.50"
    assert (body["entry"]["kind"], body["entry"]["created_by"]) == ("deposit", "farai.admin")

    retry = _book(world, "deposits", {"amount": "25.50", "note": "Cash"})
    assert retry.status_code == 200
    assert retry.json()["replayed"] is True
    assert retry.json()["entry"]["id"] == body["entry"]["id"]
    assert Wallet.objects.get(pk=world.wallet.pk).balance == D("115.50")

    before = fingerprint()
    reused = _book(world, "deposits", {"amount": "99.00"})
    assert reused.status_code == 409
    assert error_of(reused)["code"] == "idempotency_key_reused"
    reused = _book(world, "adjustments", {"amount": "25.50", "note": "same key, other kind"})
    assert reused.status_code == 409
    assert fingerprint() == before
    assert wallet_discrepancies() == []


@pytest.mark.parametrize(
    ("kind", "body", "key", "field"),
    [
        ("deposits", {"amount": "10.00"}, None, "Idempotency-Key"),
        ("deposits", {"amount": "10.00"}, "short", "Idempotency-Key"),
        ("deposits", {"amount": "10.00"}, "has spaces in it", "Idempotency-Key"),
        ("deposits", {}, "key-0002-abcdef", "amount"),
        ("deposits", {"amount": "0"}, "key-0002-abcdef", "amount"),
        ("deposits", {"amount": "-5.00"}, "key-0002-abcdef", "amount"),
        ("deposits", {"amount": "1.005"}, "key-0002-abcdef", "amount"),
        ("deposits", {"amount": "ten"}, "key-0002-abcdef", "amount"),
        ("deposits", {"amount": "NaN"}, "key-0002-abcdef", "amount"),
        ("deposits", {"amount": "1000000.01"}, "key-0002-abcdef", "amount"),
        ("deposits", {"amount": "5", "note": "n" * 256}, "key-0002-abcdef", "note"),
        ("adjustments", {"amount": "5.00"}, "key-0002-abcdef", "note"),
        ("adjustments", {"amount": "5.00", "note": "   "}, "key-0002-abcdef", "note"),
        ("adjustments", {"amount": "0.00", "note": "why"}, "key-0002-abcdef", "amount"),
    ],
)
def test_bookings_refuse_bad_input_naming_the_field(world, kind, body, key, field):
    before = fingerprint()
    response = _book(world, kind, body, key)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert fingerprint() == before


def test_adjustment_can_take_money_out_but_never_below_zero(world):
    taken = _book(world, "adjustments", {"amount": "-40.00", "note": "Chargeback"}, "adj-0001-chargeback")
    assert taken.status_code == 201
    assert taken.json()["wallet"]["balance"] == "50.00"
    before = fingerprint()
    refused = _book(world, "adjustments", {"amount": "-50.01", "note": "Too much"}, "adj-0002-toomuch")
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "insufficient_funds" and list(error["fields"]) == ["amount"]
    assert fingerprint() == before


def test_booking_for_a_missing_wallet_is_404(world):
    response = world.client(Role.ADMIN).post(
        "/api/wallets/424242/deposits/", {"amount": "1.00"}, format="json", headers={"Idempotency-Key": "k-123456789"}
    )
    assert response.status_code == 404


# --------------------------------------------------------------------------- schema, docs, errors


def test_schema_and_docs_are_served(world):
    client = APIClient()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    document = json.loads(schema.content)
    assert document["info"]["title"] == "WhatsApp CRM operators API"
    assert "tokenAuth" in document["components"]["securitySchemes"]
    assert set(document["components"]["schemas"]["Error"]["properties"]) == {"error"}
    validate_schema(document)  # a valid OpenAPI 3 document
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"/api/schema/" in docs.content


def test_unknown_api_paths_answer_json(world):
    response = world.client(Role.ADMIN).get("/api/contacts")
    assert response.status_code == 404
    assert error_of(response)["message"] == "No API endpoint at /api/contacts. Did you mean /api/contacts/ ?"
    assert world.client(Role.ADMIN).get("/api/nothing/here/").status_code == 404


def test_wrong_method_is_405_json(world):
    response = world.client(Role.ADMIN).delete(f"/api/contacts/{world.contact.pk}/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD, OPTIONS"


def test_flatten_errors_paths():
    detail = {
        "spec": {"buttons": [{}, {"title": ["too long"]}], "non_field_errors": ["bad spec"]},
        "text": ["required", "blank"],
        "non_field_errors": ["give one"],
    }
    assert flatten_errors(detail) == {
        "spec.buttons[1].title": ["too long"],
        "spec": ["bad spec"],
        "text": ["required", "blank"],
        "non_field_errors": ["give one"],
    }


def test_an_unexpected_error_is_a_json_500_and_logged(caplog):
    response = api_exception_handler(RuntimeError("database on fire"), {"request": None, "view": None})
    assert response.status_code == 500
    assert response.data == {
        "error": {"code": "server_error", "message": "Internal server error; it has been logged.", "fields": {}}
    }
    assert "RuntimeError" in caplog.text and "database on fire" in caplog.text


@pytest.mark.parametrize("name", [name for name, call in CALLS.items() if call.method == "get"])
def test_the_browsable_api_renders_every_page_for_a_logged_in_operator(world, name):
    client = APIClient()
    client.force_login(world.users[Role.ADMIN])
    response = client.get(CALLS[name].url(world), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
