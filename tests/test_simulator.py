"""The simulator's views over real HTTP: a live server, the real webhook, the fake Graph API.

The simulator must go through the path Meta uses: its ``send`` view signs a webhook body and
POSTs it to the project's own ``/webhooks/meta/``, and its ``feed`` view reads what the fake
Graph API received. So these tests run a live server (the simulator calls itself over HTTP)
and an in-process fake Graph API that posts its status webhooks back to that server. Bot
replies are produced by POSTing real Graph API requests to the fake, as the send task does.

This module is its own urlconf (``urlpatterns`` below), so it does not depend on the project
mounting the simulator.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import include, path
from django.utils import timezone

from conversations.models import Contact, Message
from conversations.services import outbound as outbound_service
from conversations.services.delivery import callback_data
from devtools import webhook_payloads as simulate
from devtools.fake_graph import start_fake_graph
from devtools.seed import seed_flows
from devtools.simulator.views import (
    SimulatorInputError,
    bot_message_view,
    parse_feed_query,
    parse_user_action,
    tick_statuses,
)
from flows import services as flow_services
from flows.models import ContactFlowState, Flow
from flows.services import session_timeout
from flows.services import trace as flow_trace
from meta_integration import outbound
from meta_integration.models import MetaAppConfig, WebhookEvent
from tests.support.broker import purge_project_queues

urlpatterns = [
    path("", include("meta_integration.urls")),
    path("simulator/", include("devtools.simulator.urls")),
    path("admin/", admin.site.urls),
]

pytestmark = pytest.mark.urls(__name__)

PHONE_NUMBER_ID = "109876543210987"
APP_SECRET = "simulator-test-app-secret"
ACCESS_TOKEN = "simulator-test-access-token"
USER = "263771112233"


@pytest.fixture(scope="module")
def fake_graph() -> Iterator:
    fake, server = start_fake_graph(access_token=ACCESS_TOKEN)
    yield fake, server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def _no_leftover_tasks() -> Iterator[None]:
    """The webhook enqueues process_message for each stored message; no worker runs here,
    so drop them rather than let a later module's worker pick up rows that no longer exist."""
    yield
    purge_project_queues()


@pytest.fixture
def business(transactional_db, live_server, settings, fake_graph) -> Iterator[MetaAppConfig]:
    """A business number whose Graph API is the fake, which posts statuses to the live server."""
    fake, server = fake_graph
    settings.DEBUG = True
    settings.META_PHONE_NUMBER_ID = PHONE_NUMBER_ID
    settings.WEBHOOK_EVENT_SAMPLE_RATE = 1.0  # the tests read what the simulator posted from the audit log
    fake.reset()
    fake.configure_webhook(f"{live_server.url}/webhooks/meta/", APP_SECRET, status_delay_ms=10)
    config = MetaAppConfig.objects.create(
        name="Kwacha Sports",
        phone_number_id=PHONE_NUMBER_ID,
        display_phone_number="263242700100",
        waba_id="104455667788990",
        access_token=ACCESS_TOKEN,
        app_secret=APP_SECRET,
        verify_token="simulator-test-verify",
        graph_api_url=server.url,
    )
    yield config
    fake.reset()


@pytest.fixture
def user() -> str:
    """A number of its own per test: a worker left running by another test module may still
    be answering an earlier test's messages, and the feed is per number."""
    return "26377" + str(uuid.uuid4().int)[:7]


@pytest.fixture
def browser(live_server, business) -> Iterator[httpx.Client]:
    """An HTTP client that behaves like the page: it loaded /simulator/ and holds the CSRF cookie."""
    with httpx.Client(base_url=live_server.url, timeout=20.0) as client:
        page = client.get("/simulator/")
        assert page.status_code == 200, page.text[:500]
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        yield client


def send(client: httpx.Client, **action) -> httpx.Response:
    return client.post("/simulator/send", json=action)


def bot_sends(fake_server, to: str, spec: dict) -> str:
    """Make the fake receive a reply exactly as the send task posts one; returns its wamid."""
    response = httpx.post(
        f"{fake_server.url}/v23.0/{PHONE_NUMBER_ID}/messages",
        json=outbound.build_message(to, spec),
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        timeout=10.0,
    )
    assert response.status_code == 200, response.text
    return response.json()["messages"][0]["id"]


def stored_message_events() -> list[WebhookEvent]:
    """Stored webhook POSTs that carried a user message (not the fake's status webhooks)."""
    return [e for e in WebhookEvent.objects.all() if "messages" in e.payload["entry"][0]["changes"][0]["value"]]


def until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)
    return result


def stored_payload() -> dict:
    """The ``value`` of the newest stored webhook that carried a message (the fake's status
    webhooks for bot replies are stored too)."""
    for event in WebhookEvent.objects.order_by("-id"):
        value = event.payload["entry"][0]["changes"][0]["value"]
        if "messages" in value:
            return value
    raise AssertionError("the webhook stored no message")


# --------------------------------------------------------------------------- the page


def test_page_renders_the_chat_for_the_configured_business(browser, business):
    html = browser.get("/simulator/").text
    assert "Kwacha Sports" in html
    assert business.phone_number_id in html
    assert "/webhooks/meta/" in html
    assert 'id="composer-text"' in html
    script = browser.get("/static/simulator/simulator.js")
    assert script.status_code == 200
    assert "sendAction" in script.text


def test_page_names_the_problem_when_no_business_number_is_configured(user, browser, business):
    business.delete()
    page = browser.get("/simulator/")
    assert page.status_code == 200
    assert f"no active MetaAppConfig for META_PHONE_NUMBER_ID={PHONE_NUMBER_ID}" in page.text
    response = send(browser, wa_id=user, kind="text", text="hi")
    assert response.status_code == 503
    assert response.json()["error"]["field"] == "business"


# --------------------------------------------------------------------------- send


def test_sending_hi_posts_a_signed_webhook_that_the_project_stores(user, browser, business):
    response = send(browser, wa_id=user, profile_name="Rudo Chikore", kind="text", text="hi")

    assert response.status_code == 200, response.text
    data = response.json()
    assert data["webhook_status"] == 200
    assert data["wamid"].startswith("wamid.")
    message = Message.objects.get(wamid=data["wamid"])
    assert message.direction == "in"
    assert message.text == "hi"
    assert message.contact.wa_id == user
    assert message.contact.profile_name == "Rudo Chikore"
    assert message.app_config_id == business.pk
    value = stored_payload()
    assert value["metadata"] == {"display_phone_number": "263242700100", "phone_number_id": PHONE_NUMBER_ID}
    assert value["contacts"] == [{"profile": {"name": "Rudo Chikore"}, "wa_id": user}]
    assert value["messages"][0]["text"] == {"body": "hi"}


def test_send_is_csrf_protected(user, live_server, business):
    with httpx.Client(base_url=live_server.url) as client:
        response = client.post("/simulator/send", json={"wa_id": user, "kind": "text", "text": "hi"})
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_tapping_a_reply_button_quotes_the_bot_message(user, browser, business, fake_graph):
    _, server = fake_graph
    menu = bot_sends(server, user, {
        "type": "buttons", "body": "Pick one",
        "buttons": [{"id": "wallet", "title": "My wallet"}, {"id": "help", "title": "Help"}],
    })

    response = send(browser, wa_id=user, kind="button_reply", id="wallet", title="My wallet", context=menu)

    assert response.status_code == 200, response.text
    message = Message.objects.get(wamid=response.json()["wamid"])
    assert message.direction == "in"
    assert message.reply_to_wamid == menu
    sent = stored_payload()["messages"][0]
    assert sent["context"] == {"from": "263242700100", "id": menu}
    assert sent["interactive"] == {"type": "button_reply", "button_reply": {"id": "wallet", "title": "My wallet"}}


def test_picking_a_list_row_sends_a_list_reply(user, browser, business, fake_graph):
    _, server = fake_graph
    menu = bot_sends(server, user, {
        "type": "list", "body": "Main menu", "button": "Open menu",
        "sections": [{"title": "Options", "rows": [{"id": "fixtures", "title": "Fixtures & odds",
                                                    "description": "Upcoming matches"}]}],
    })

    response = send(browser, wa_id=user, kind="list_reply", id="fixtures", title="Fixtures & odds",
                    description="Upcoming matches", context=menu)

    assert response.status_code == 200, response.text
    sent = stored_payload()["messages"][0]
    assert sent["interactive"]["list_reply"] == {
        "id": "fixtures", "title": "Fixtures & odds", "description": "Upcoming matches",
    }
    assert sent["context"]["id"] == menu


def test_sharing_a_location_sends_a_location_message(user, browser, business):
    response = send(browser, wa_id=user, kind="location", latitude=-17.8292, longitude="31.0522",
                    name="Africa Unity Square", address="Nelson Mandela Ave, Harare")

    assert response.status_code == 200, response.text
    assert Message.objects.get(wamid=response.json()["wamid"]).message_type == "location"
    assert stored_payload()["messages"][0]["location"] == {
        "latitude": -17.8292, "longitude": 31.0522,
        "name": "Africa Unity Square", "address": "Nelson Mandela Ave, Harare",
    }


BAD_ACTIONS = [
    ({"kind": "text", "text": "hi"}, "wa_id", "is required"),
    ({"wa_id": "", "kind": "text", "text": "hi"}, "wa_id", "is required"),
    ({"wa_id": "26377abc1234", "kind": "text", "text": "hi"}, "wa_id", "6 to 15 digits"),
    ({"wa_id": "+263 77 111 2233", "kind": "text", "text": "hi"}, "wa_id", "6 to 15 digits"),
    ({"wa_id": "12345", "kind": "text", "text": "hi"}, "wa_id", "6 to 15 digits"),
    ({"wa_id": 263771112233, "kind": "text", "text": "hi"}, "wa_id", "must be a string"),
    ({"wa_id": USER, "kind": "text", "text": "x" * 4097}, "text", "at most 4096 characters (got 4097)"),
    ({"wa_id": USER, "kind": "text", "text": "   "}, "text", "must not be blank"),
    ({"wa_id": USER, "kind": "text"}, "text", "is required"),
    ({"wa_id": USER, "kind": "voice_note", "text": "hi"}, "kind", "must be one of"),
    ({"wa_id": USER, "kind": "text", "text": "hi", "colour": "red"}, "colour", "unknown field"),
    ({"wa_id": USER, "kind": "text", "text": "hi", "profile_name": "n" * 101}, "profile_name", "at most 100"),
    ({"wa_id": USER, "kind": "button_reply", "title": "Help"}, "id", "is required"),
    ({"wa_id": USER, "kind": "button_reply", "id": "help", "title": "A title of 21 chars.."}, "title", "at most 20"),
    ({"wa_id": USER, "kind": "list_reply", "id": "x", "title": "y", "context": "not-a-wamid"}, "context",
     "wamid of a bot message"),
    ({"wa_id": USER, "kind": "location", "latitude": 91, "longitude": 0}, "latitude", "between -90 and 90"),
    ({"wa_id": USER, "kind": "location", "latitude": 0, "longitude": "east"}, "longitude", "must be a number"),
    ({"wa_id": USER, "kind": "location", "latitude": 0}, "longitude", "is required"),
]


@pytest.mark.parametrize(("action", "field", "reason"), BAD_ACTIONS)
def test_bad_input_is_refused_with_the_field_named_and_nothing_posted(browser, business, action, field, reason):
    response = send(browser, **action)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert reason in error["message"]
    assert stored_message_events() == []
    assert not Message.objects.filter(direction="in").exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"{not json", "is not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b"x" * 70_000, "at most 65536 bytes")],
)
def test_a_body_that_is_not_a_json_object_is_refused(browser, business, body, reason):
    response = browser.post("/simulator/send", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert reason in response.json()["error"]["message"]
    assert stored_message_events() == []


# --------------------------------------------------------------------------- feed


def test_feed_returns_what_the_bot_sent_in_order_with_ticks(user, browser, business, fake_graph):
    _, server = fake_graph
    first = bot_sends(server, user, {"type": "text", "body": "Hi Rudo 👋"})
    second = bot_sends(server, user, {
        "type": "buttons", "body": "What next?", "footer": "Type menu anytime",
        "buttons": [{"id": "menu", "title": "Main menu"}, {"id": "human", "title": "Talk to a human"}],
    })
    third = bot_sends(server, user, {
        "type": "list", "body": "Main menu", "button": "Open menu", "header": "Kwacha Sports",
        "sections": [{"title": "How can we help?", "rows": [
            {"id": "fixtures", "title": "Fixtures & odds", "description": "Upcoming matches"},
            {"id": "wallet", "title": "My wallet"},
        ]}],
    })
    bot_sends(server, "263770000001", {"type": "text", "body": "for someone else"})
    track = {"wa_id": user, "track": f"{first},{second},{third}"}

    def all_read():  # the fake posts sent, delivered, read to the project's webhook
        data = browser.get("/simulator/feed", params=track).json()
        statuses = [s["status"] for s in data["statuses"].values()]
        return data if statuses == ["read"] * 3 else None

    data = until(all_read)

    assert [m["wamid"] for m in data["messages"]] == [first, second, third]
    text, buttons, menu = data["messages"]
    assert (text["kind"], text["text"], text["ok"]) == ("text", "Hi Rudo 👋", True)
    assert buttons["kind"] == "buttons"
    assert buttons["footer"] == "Type menu anytime"
    assert buttons["buttons"] == [{"id": "menu", "title": "Main menu"}, {"id": "human", "title": "Talk to a human"}]
    assert menu["kind"] == "list"
    assert menu["header"] == {"type": "text", "text": "Kwacha Sports"}
    assert menu["button"] == "Open menu"
    assert menu["sections"][0]["rows"][0] == {
        "id": "fixtures", "title": "Fixtures & odds", "description": "Upcoming matches",
    }
    assert menu["sections"][0]["rows"][1]["description"] is None
    # the fake posted sent/delivered/read to the project's webhook, which accepted them
    assert data["statuses"] == {w: {"status": "read", "webhook_error": None} for w in (first, second, third)}
    assert not data["more"] and not data["reset"]

    later = browser.get("/simulator/feed", params={"wa_id": user, "since": data["next_since"]}).json()
    assert later["messages"] == []
    assert later["next_since"] == data["next_since"]


def test_feed_shows_a_reply_meta_refused_with_its_error(user, browser, business, fake_graph):
    fake, server = fake_graph
    fake.add_fault(131026, to=user)
    httpx.post(
        f"{server.url}/v23.0/{PHONE_NUMBER_ID}/messages",
        json=outbound.text_message(user, "you will not see this"),
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )

    data = browser.get("/simulator/feed", params={"wa_id": user}).json()

    [refused] = data["messages"]
    assert refused["ok"] is False
    assert refused["text"] == "you will not see this"
    assert "(#131026) Message undeliverable" in refused["error"]


def test_feed_reports_read_receipts_for_the_users_own_messages(user, browser, business, fake_graph):
    _, server = fake_graph
    # the user's messages, as the page knows them (not posted: a running worker would mark them read)
    first, second = simulate.new_wamid(user), simulate.new_wamid(user)
    someone_else = simulate.new_wamid("263770000001")
    for wamid, typing in ((first, True), (someone_else, False)):
        httpx.post(
            f"{server.url}/v23.0/{PHONE_NUMBER_ID}/messages",
            json=outbound.read_receipt(wamid, typing_indicator=typing),
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        ).raise_for_status()

    data = browser.get("/simulator/feed", params={"wa_id": user, "mine": f"{first},{second}"}).json()

    assert data["messages"] == []  # a receipt is not a chat bubble
    assert data["statuses"] == {}
    assert data["receipts"] == {first: {"typing": True}}
    again = browser.get("/simulator/feed", params={
        "wa_id": user, "mine": second, "rsince": data["next_receipts_since"],
    }).json()
    assert again["receipts"] == {}
    assert again["next_receipts_since"] == data["next_receipts_since"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "wa_id"), ({"wa_id": "abc"}, "wa_id"), ({"wa_id": USER, "since": "-1"}, "since"),
     ({"wa_id": USER, "track": "wamid.ok,nonsense"}, "track"), ({"wa_id": USER, "rsince": "x"}, "rsince"),
     ({"wa_id": USER, "mine": "wamid.a,<script>"}, "mine")],
)
def test_feed_refuses_bad_queries(browser, business, params, field):
    response = browser.get("/simulator/feed", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_feed_refuses_a_business_number_that_sends_to_the_real_graph_api(user, browser, business):
    business.graph_api_url = "https://graph.facebook.com"
    business.save()
    response = browser.get("/simulator/feed", params={"wa_id": user})
    assert response.status_code == 503
    assert "real Graph API" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- DEBUG off


def test_everything_is_404_when_debug_is_off(user, browser, settings, fake_graph):
    settings.DEBUG = False  # the browser loaded the page (and its CSRF cookie) before

    assert browser.get("/simulator/").status_code == 404
    assert browser.get("/simulator/feed", params={"wa_id": user}).status_code == 404
    assert send(browser, wa_id=user, kind="text", text="hi").status_code == 404
    assert stored_message_events() == []
    assert fake_graph[0].requests(to=user) == []


# --------------------------------------------------------------------------- pure parts


def test_parse_user_action_defaults_and_normalises():
    action = parse_user_action({"wa_id": "+263771112233", "text": "hi"})
    assert (action.wa_id, action.kind.value, action.profile_name) == (USER, "text", "Simulator User")
    with pytest.raises(SimulatorInputError) as exc:
        parse_user_action("hi")
    assert exc.value.field == "body"


def test_parse_feed_query_limits_tracked_wamids():
    many = ",".join(simulate.new_wamid(USER, outgoing=True) for _ in range(201))
    with pytest.raises(SimulatorInputError, match="at most 200"):
        parse_feed_query({"wa_id": USER, "track": many})
    assert parse_feed_query({"wa_id": USER}).since == 0


def test_bot_message_view_draws_templates_media_and_locations():
    def record(body, seq=1):
        return {"seq": seq, "kind": "message", "body": body, "http_status": 200, "wamid": "wamid.X",
                "responded_at": time.time(), "response": {}}

    template = bot_message_view(record(outbound.template_message(USER, "bet_settled", "en_US", [
        {"type": "body", "parameters": [{"type": "text", "text": "Arsenal 2-1 Chelsea"},
                                        {"type": "currency", "currency": {}}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "SHOW_TICKET"}]},
    ])))
    assert template["kind"] == "template"
    assert template["template_name"] == "bet_settled"
    assert template["params"] == ["Arsenal 2-1 Chelsea", "[currency]"]
    assert template["buttons"] == [{"id": "SHOW_TICKET", "title": "SHOW_TICKET"}]

    image = bot_message_view(record(outbound.media_message(
        USER, "document", link="https://example.com/ticket.pdf", filename="ticket.pdf", caption="Your ticket")))
    assert (image["kind"], image["media_type"], image["filename"], image["caption"]) == (
        "media", "document", "ticket.pdf", "Your ticket")

    place = bot_message_view(record(outbound.location_message(USER, -17.83, 31.05, name="Shop")))
    assert (place["kind"], place["latitude"], place["name"]) == ("location", -17.83, "Shop")

    garbage = bot_message_view({"seq": 2, "kind": "message", "body": "not json at all", "http_status": 400,
                                "response": {"error": {"message": "(#100) Invalid parameter"}}})
    assert garbage["kind"] == "unknown"
    assert garbage["error"] == "(#100) Invalid parameter"
    assert bot_message_view({"seq": 3, "kind": "other", "body": None}) is None
    odd = bot_message_view(record({"type": "interactive", "interactive": {
        "type": "list", "action": {"button": 7, "sections": [{"rows": 5}, "x"]}}}))
    assert (odd["kind"], odd["button"], odd["sections"]) == ("list", None, [{"title": None, "rows": []}] * 2)
    odd = bot_message_view(record({"type": "interactive", "interactive": {"type": "button", "action": {"buttons": 3}}}))
    assert (odd["kind"], odd["buttons"]) == ("buttons", [])


def test_tick_statuses_keeps_the_furthest_accepted_status_and_reports_refusals():
    deliveries = [
        {"wamid": "wamid.A", "status": "sent", "http_status": 200},
        {"wamid": "wamid.A", "status": "read", "http_status": 200},
        {"wamid": "wamid.A", "status": "delivered", "http_status": 200},  # out of order
        {"wamid": "wamid.B", "status": "sent", "http_status": 200},
        {"wamid": "wamid.B", "status": "delivered", "http_status": 403, "error": "HTTP 403"},
        {"wamid": "wamid.C", "status": "sent", "http_status": 200},
        {"wamid": "wamid.C", "status": "failed", "http_status": 200},
        {"wamid": "wamid.untracked", "status": "read", "http_status": 200},
    ]
    result = tick_statuses(deliveries, ["wamid.A", "wamid.B", "wamid.C"])
    assert result == {
        "wamid.A": {"status": "read", "webhook_error": None},
        "wamid.B": {"status": "sent", "webhook_error": "delivered: HTTP 403"},
        "wamid.C": {"status": "failed", "webhook_error": None},
    }


def test_send_view_round_trips_unicode_profile_names(user, browser, business):
    response = send(browser, wa_id=user, profile_name="Tinotenda Mhlanga-Ndlovu 🇿🇼", text="Mhoro")
    assert response.status_code == 200, response.text
    assert json.dumps(stored_payload()["contacts"][0]["profile"]["name"]) == json.dumps("Tinotenda Mhlanga-Ndlovu 🇿🇼")


# --------------------------------------------------------------------------- history, state, reset, CSRF


def bot_turn(message_id: int) -> list[int]:
    """What the I/O worker does with a stored message, minus sending: the real flows decide
    the replies and write them (pending). No worker runs in this module."""
    return list(flow_services.process_inbound(message_id).reply_ids)


@pytest.fixture
def flows_and_trace(business, settings):
    settings.FLOW_TRACE = True  # processing runs in this process here
    seed_flows()


def test_conversation_draws_both_sides_from_the_database(user, browser, business, flows_and_trace):
    sent = send(browser, wa_id=user, profile_name="Rudo Chikore", kind="text", text="hi").json()
    hi = Message.objects.get(wamid=sent["wamid"])
    [menu_id] = bot_turn(hi.pk)

    data = browser.get("/simulator/conversation", params={"wa_id": user}).json()

    mine, menu = data["items"]
    assert (mine["who"], mine["kind"], mine["text"], mine["wamid"]) == ("me", "text", "hi", sent["wamid"])
    assert mine["status"] == "read"  # the bot processed it
    assert (menu["who"], menu["kind"], menu["message_id"]) == ("bot", "list", menu_id)
    assert "Welcome! What can I help you with today?" in menu["text"]
    assert menu["status"] == "sending"  # written, not sent: no worker here
    assert [row["id"] for row in menu["sections"][0]["rows"]][:2] == ["fixtures", "wallet"]
    assert isinstance(data["fake_last_seq"], int)
    assert data["state"]["session"]["flow"] == "main_menu"

    # tapping a row of that menu: drawn as the user's list reply, quoting the menu
    tap = send(browser, wa_id=user, kind="list_reply", id="help", title="Help", context=simulate.new_wamid(user))
    assert tap.status_code == 200, tap.text
    items = browser.get("/simulator/conversation", params={"wa_id": user}).json()["items"]
    assert (items[-1]["kind"], items[-1]["title"], items[-1]["status"]) == ("list_reply", "Help", "sent")


def test_the_feed_names_the_message_row_so_history_and_feed_draw_one_bubble(user, browser, business, fake_graph):
    _, server = fake_graph
    contact = Contact.objects.create(wa_id=user, profile_name="Rudo")
    spec = {"type": "text", "body": "Hello from the bot"}
    [row_id] = outbound_service.write_replies(contact, business.pk, [spec], outbound_service.validate_specs(user, [spec]))
    body = {**outbound.build_message(user, spec), "biz_opaque_callback_data": callback_data(row_id)}
    httpx.post(f"{server.url}/v23.0/{PHONE_NUMBER_ID}/messages", json=body,
               headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}).raise_for_status()

    [from_feed] = browser.get("/simulator/feed", params={"wa_id": user}).json()["messages"]
    [from_history] = browser.get("/simulator/conversation", params={"wa_id": user}).json()["items"]

    assert from_feed["message_id"] == from_history["message_id"] == row_id
    assert from_feed["text"] == from_history["text"] == "Hello from the bot"


def test_feed_shows_where_the_bot_is_and_its_log(user, browser, business, flows_and_trace):
    hi = Message.objects.get(wamid=send(browser, wa_id=user, kind="text", text="hi").json()["wamid"])
    bot_turn(hi.pk)
    tap = send(browser, wa_id=user, kind="list_reply", id="profile", title="My profile")
    bot_turn(Message.objects.get(wamid=tap.json()["wamid"]).pk)

    state = browser.get("/simulator/feed", params={"wa_id": user}).json()["state"]

    session = ContactFlowState.objects.get(contact__wa_id=user)
    assert state["session"]["flow"] == session.flow.name == "profile"
    assert state["session"]["step"] == session.step
    assert state["session"]["variables"] == session.variables
    assert state["session"]["awaiting_reply"] is True
    assert state["handover"] is False
    first, second = state["trace"]
    assert first["path"] == ["step main_menu.menu (question)"]
    assert first["events"] == ["flow_started:main_menu"]
    assert first["waiting_at"] == "main_menu.menu"
    assert second["path"] == [
        "answer main_menu.menu: valid",
        "transition main_menu.menu -> open (always)",
        "step main_menu.open (action)",
        "step profile.ask_name (question)",
    ]
    assert second["events"] == ["flow_switched:main_menu->profile", "flow_started:profile"]
    assert second["waiting_at"] == f"profile.{session.step}"


def test_reset_starts_the_users_chat_over(user, browser, business, flows_and_trace):
    other = "26377" + str(uuid.uuid4().int)[:7]
    for number in (user, other):
        hi = Message.objects.get(wamid=send(browser, wa_id=number, kind="text", text="hi").json()["wamid"])
        bot_turn(hi.pk)
    Contact.objects.filter(wa_id=user).update(needs_human=True, handover_at=timezone.now())
    assert flow_trace.read_trace(user, business.pk)

    response = browser.post("/simulator/reset", json={"wa_id": user})

    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == {"sessions": 1, "messages": 2}
    assert isinstance(response.json()["fake_last_seq"], int)
    assert not ContactFlowState.objects.filter(contact__wa_id=user).exists()
    assert not Message.objects.filter(contact__wa_id=user).exists()
    assert Contact.objects.get(wa_id=user).needs_human is False
    assert flow_trace.read_trace(user, business.pk) == []
    data = browser.get("/simulator/conversation", params={"wa_id": user}).json()
    assert data["items"] == [] and data["state"]["session"] is None
    # the other user is untouched
    assert ContactFlowState.objects.filter(contact__wa_id=other).exists()
    assert Message.objects.filter(contact__wa_id=other).count() == 2


@pytest.mark.parametrize(("body", "field"), [
    (b"{}", "wa_id"), (b'{"wa_id": "12ab"}', "wa_id"), (b'{"wa_id": "263771112233", "all": true}', "all"),
    (b"[1]", "body"), (b"{nope", "body"),
])
def test_reset_refuses_bad_input_and_changes_nothing(user, browser, business, body, field):
    hi = send(browser, wa_id=user, kind="text", text="hi")
    assert hi.status_code == 200

    response = browser.post("/simulator/reset", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert Message.objects.filter(contact__wa_id=user).count() == 1


def test_reset_is_csrf_protected_and_404_without_debug(user, live_server, browser, business, settings):
    send(browser, wa_id=user, kind="text", text="hi")
    with httpx.Client(base_url=live_server.url) as stranger:
        assert stranger.post("/simulator/reset", json={"wa_id": user}).status_code == 403
    settings.DEBUG = False
    assert browser.post("/simulator/reset", json={"wa_id": user}).status_code == 404
    assert browser.get("/simulator/conversation", params={"wa_id": user}).status_code == 404
    assert browser.get("/simulator/csrf").status_code == 404
    assert Message.objects.filter(contact__wa_id=user).count() == 1


def test_a_fresh_csrf_token_after_an_admin_login_in_the_same_browser(user, browser, business):
    """Logging into the admin rotates the CSRF cookie: the page's token is refused (the 403 the
    page used to show); the ``csrf`` view hands a valid one, which the page retries with."""
    User.objects.create_superuser("rudo", "rudo@example.com", "a-long-operator-password")
    old_token = browser.headers["X-CSRFToken"]
    login_page = browser.get("/admin/login/")
    assert login_page.status_code == 200
    logged_in = browser.post("/admin/login/", data={
        "username": "rudo", "password": "a-long-operator-password", "next": "/admin/",
        "csrfmiddlewaretoken": browser.cookies["csrftoken"],
    }, headers={"X-CSRFToken": ""})
    assert logged_in.status_code == 302, logged_in.text[:300]
    assert browser.cookies["csrftoken"] != old_token  # rotated

    refused = send(browser, wa_id=user, kind="text", text="hi")
    assert refused.status_code == 403
    assert not Message.objects.exists()

    fresh = browser.get("/simulator/csrf").json()["csrf_token"]
    browser.headers["X-CSRFToken"] = fresh
    assert send(browser, wa_id=user, kind="text", text="hi").status_code == 200


def test_feed_carries_the_servers_idle_countdown_none_in_handover_or_without_a_session(user, browser, business):
    def clock() -> dict:
        return browser.get("/simulator/feed", params={"wa_id": user}).json()["state"]

    assert clock()["idle_expires_at"] is None and clock()["handover"] is False  # nobody wrote yet
    contact = Contact.objects.create(wa_id=user, profile_name="Rudo")
    flow = Flow.objects.create(name=f"countdown-{user}")
    state = ContactFlowState.objects.create(contact=contact, app_config=business, flow=flow, step="ask")
    session = clock()
    assert session["idle_expires_at"] == (state.last_activity_at + session_timeout()).timestamp()
    assert abs(session["now"] - time.time()) < 60  # the server's clock, for the page's countdown

    # A human has it (a session kept with this number waits): no countdown.
    Contact.objects.filter(pk=contact.pk).update(needs_human=True, handover_at=state.last_activity_at)
    session = clock()
    assert session["idle_expires_at"] is None and session["handover"] is True
    Contact.objects.filter(pk=contact.pk).update(needs_human=False, handover_at=None)
    state.delete()  # ended or expired (the user was told): nothing counts down any more
    assert clock()["idle_expires_at"] is None and clock()["handover"] is False
