"""The fake Graph API behaves like Meta over real HTTP: shapes, errors, faults, latency, webhooks.

Everything goes through a real socket (uvicorn in a thread) with httpx, because the project's
Graph client is an httpx client with a connection pool, and drops/timeouts only mean
something on a real connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from devtools import webhook_payloads as simulate
from devtools.fake_graph import FakeGraphAPI, start_fake_graph
from devtools.fake_graph_scripting import FakeConfigError, Fault, RequestKind
from devtools.servers import run_in_thread
from meta_integration.payloads import parse_webhook
from meta_integration.signatures import verify_signature

PHONE_ID = "106540352242922"
TOKEN = "EAAG-test-token"
ALICE = "263771234567"
BOB = "263772223333"
APP_SECRET = "fake-app-secret"


def text_body(to: str = ALICE, body: str = "Welcome! Reply MENU to see today's fixtures.") -> dict:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": body},
    }


def buttons_body(titles: list[str], to: str = ALICE) -> dict:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Pick a market"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"btn_{i}", "title": title}}
                    for i, title in enumerate(titles)
                ]
            },
        },
    }


@pytest.fixture(scope="module")
def running():
    fake, server = start_fake_graph()
    yield fake, server
    server.stop()


@pytest.fixture
def fake(running):
    fake, _ = running
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture
def base_url(running, fake):
    return running[1].url


@pytest.fixture
def client(base_url):
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5.0
    ) as c:
        yield c


MESSAGES = f"/v21.0/{PHONE_ID}/messages"


def assert_meta_error(response: httpx.Response, status: int, code: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert isinstance(error["fbtrace_id"], str) and len(error["fbtrace_id"]) >= 10
    return error


# --------------------------------------------------------------------------- happy path


def test_valid_text_send_returns_wamid_and_is_recorded(fake, client):
    before = time.monotonic()
    response = client.post(MESSAGES, json=text_body())
    assert response.status_code == 200
    data = response.json()
    wamid = data["messages"][0]["id"]
    assert data == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": ALICE, "wa_id": ALICE}],
        "messages": [{"id": wamid}],
    }
    assert wamid.startswith("wamid.HBgM")

    [record] = fake.requests()
    assert record.kind is RequestKind.MESSAGE
    assert (record.method, record.version, record.phone_number_id) == ("POST", "v21.0", PHONE_ID)
    assert record.to == ALICE and record.body == text_body()
    assert record.wamid == wamid and record.http_status == 200 and record.fault is None
    assert before <= record.received_monotonic <= record.responded_monotonic <= time.monotonic()
    assert abs(record.received_at - time.time()) < 5
    assert fake.messages() == [record]


def test_every_send_gets_a_distinct_wamid(fake, client):
    ids = {client.post(MESSAGES, json=text_body()).json()["messages"][0]["id"] for _ in range(20)}
    assert len(ids) == 20


def test_read_receipt_answers_success_and_is_not_a_message(fake, client):
    receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": simulate.new_wamid()}
    response = client.post(MESSAGES, json=receipt)
    assert response.status_code == 200 and response.json() == {"success": True}
    [record] = fake.requests()
    assert record.kind is RequestKind.READ_RECEIPT and record.wamid is None
    assert fake.messages() == []


def test_template_send_is_accepted_like_meta(fake, client):
    body = {
        "messaging_product": "whatsapp",
        "to": ALICE,
        "type": "template",
        # The fake checks templates as Meta does: bet_settled takes two body parameters.
        "template": {"name": "bet_settled", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Tendai"}, {"type": "text", "text": "$12"}]}]},
    }
    response = client.post(MESSAGES, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["messages"][0]["message_status"] == "accepted"


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("body", "field_hint"),
    [
        (buttons_body(["Home", "Draw", "Away", "Both"]), "buttons"),
        (buttons_body(["Home win (1) at 2.15 odds"]), "title"),
        (text_body(body="x" * 4097), "body"),
    ],
    ids=["four-buttons", "25-char-title", "body-over-4096"],
)
def test_invalid_body_gets_meta_400_naming_the_field(fake, client, body, field_hint):
    response = client.post(MESSAGES, json=body)
    error = assert_meta_error(response, 400, 100)
    assert error["message"] == "(#100) Invalid parameter"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert field_hint in error["error_data"]["details"]
    [record] = fake.requests()
    assert record.http_status == 400 and record.wamid is None
    assert fake.messages() == []


def test_malformed_json_is_a_400(fake, client):
    response = client.post(MESSAGES, content=b"{not json", headers={"Content-Type": "application/json"})
    error = assert_meta_error(response, 400, 100)
    assert "JSON" in error["error_data"]["details"]


@pytest.mark.parametrize("auth", [None, "", "Bearer", "Basic dXNlcjpwYXNz"])
def test_missing_or_empty_token_is_401_code_190(fake, base_url, auth):
    headers = {"Authorization": auth} if auth is not None else {}
    response = httpx.post(base_url + MESSAGES, json=text_body(), headers=headers)
    error = assert_meta_error(response, 401, 190)
    assert "access token" in error["message"]
    assert "error_data" not in error
    assert response.headers["www-authenticate"].startswith("OAuth")
    assert fake.requests()[0].http_status == 401


def test_configured_token_rejects_others():
    fake, server = start_fake_graph(access_token="the-right-token")
    with server:
        url = server.url + MESSAGES
        wrong = httpx.post(url, json=text_body(), headers={"Authorization": "Bearer nope"})
        assert_meta_error(wrong, 401, 190)
        right = httpx.post(url, json=text_body(), headers={"Authorization": "Bearer the-right-token"})
        assert right.status_code == 200
    assert [r.http_status for r in fake.requests()] == [401, 200]


def test_unknown_path_and_wrong_method(fake, client):
    assert client.post(f"/v21.0/{PHONE_ID}/media_upload_typo", json={}).status_code == 404
    assert_meta_error(client.get(MESSAGES), 400, 100)


# --------------------------------------------------------------------------- scripted faults


def test_scripted_fault_for_one_recipient_then_success(fake, client):
    fake.add_fault(code=131056, to=ALICE, times=2)

    assert client.post(MESSAGES, json=text_body(to=BOB)).status_code == 200  # Bob unaffected
    for _ in range(2):
        error = assert_meta_error(client.post(MESSAGES, json=text_body(to=ALICE)), 429, 131056)
        assert error["message"] == "(#131056) (Business Account, Consumer Account) pair rate limit hit"
        assert "same phone number" in error["error_data"]["details"]
    assert client.post(MESSAGES, json=text_body(to=ALICE)).status_code == 200

    statuses = [(r.to, r.http_status) for r in fake.requests()]
    assert statuses == [(BOB, 200), (ALICE, 429), (ALICE, 429), (ALICE, 200)]
    assert [r.fault.code if r.fault else None for r in fake.requests()] == [None, 131056, 131056, None]
    assert fake.faults() == []


def test_fault_matches_recipient_digits_and_skips_invalid_sends(fake, client):
    fake.add_fault(code=131026, to="+" + ALICE)
    # An invalid body is rejected by validation and does not consume the fault.
    assert client.post(MESSAGES, json=buttons_body(["a", "b", "c", "d"])).status_code == 400
    error = assert_meta_error(client.post(MESSAGES, json=text_body()), 400, 131026)
    assert error["message"] == "(#131026) Message undeliverable"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"code": 130429}, 429, 130429),
        ({"http_status": 500}, 500, 131000),
        ({"http_status": 503, "code": 131016}, 503, 131016),
        ({"code": 131047, "details": "24h window closed"}, 400, 131047),
    ],
)
def test_faults_scripted_over_http(fake, client, fault, status, code):
    response = client.post("/_fake/faults", json={"faults": [fault]})
    assert response.status_code == 200 and len(response.json()["faults"]) == 1
    error = assert_meta_error(client.post(MESSAGES, json=text_body()), status, code)
    if "details" in fault:
        assert error["error_data"]["details"] == fault["details"]
    assert client.post(MESSAGES, json=text_body()).status_code == 200


def test_drop_connection_gives_a_transport_error(fake, client):
    fake.add_fault(kind="drop_connection", to=ALICE)
    with pytest.raises(httpx.TransportError):
        client.post(MESSAGES, json=text_body())
    assert client.post(MESSAGES, json=text_body()).status_code == 200
    dropped, ok = fake.requests()
    assert dropped.http_status is None and dropped.fault.kind == "drop_connection"
    assert dropped.wamid is None and ok.http_status == 200


def test_timeout_fault_hangs_past_the_client_timeout(fake, base_url):
    fake.add_fault(kind="timeout", delay_ms=800)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            base_url + MESSAGES, json=text_body(),
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=0.1,
        )
    assert time.monotonic() - started < 0.7  # gave up long before the fake answered
    deadline = time.monotonic() + 3
    while not fake.requests() and time.monotonic() < deadline:
        time.sleep(0.02)
    [record] = fake.requests()
    assert record.http_status is None and record.fault.kind == "timeout"
    assert record.duration_ms >= 800


# --------------------------------------------------------------------------- latency


def test_latency_is_honoured(fake, client):
    fake.set_latency(50)
    for _ in range(3):
        started = time.monotonic()
        assert client.post(MESSAGES, json=text_body()).status_code == 200
        assert time.monotonic() - started >= 0.05
    assert all(r.duration_ms >= 50 for r in fake.requests())


def test_concurrent_requests_overlap_under_latency(fake, base_url):
    fake.set_latency(100)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits,
            timeout=10.0,
        ) as ac:
            return await asyncio.gather(
                *(ac.post(MESSAGES, json=text_body(body=f"part {i}")) for i in range(50))
            )

    started = time.monotonic()
    responses = asyncio.run(burst())
    elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * 50
    assert len({r.json()["messages"][0]["id"] for r in responses}) == 50
    # Serial would be 5 s; overlapping requests finish in a few hundred ms.
    assert elapsed < 2.0, f"50 requests at 100 ms took {elapsed:.2f}s: latency is blocking"
    assert len(fake.messages()) == 50
    assert min(r.duration_ms for r in fake.requests()) >= 100


# --------------------------------------------------------------------------- status webhooks


class Receiver:
    """A tiny ASGI webhook endpoint recording raw bodies and headers."""

    def __init__(self, status: int = 200):
        self.status = status
        self.calls: list[tuple[str, dict[str, str], bytes]] = []
        self.cond = threading.Condition()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self.cond:
            self.calls.append((scope["path"], headers, raw))
            self.cond.notify_all()
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def wait(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict[str, str], bytes]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= count, timeout), self.calls
            return list(self.calls)


def test_status_webhooks_are_signed_and_ordered(fake, client):
    receiver = Receiver()
    with run_in_thread(receiver) as hook:
        fake.configure_webhook(hook.url + "/webhooks/meta/", APP_SECRET, status_delay_ms=5)
        wamids = [client.post(MESSAGES, json=text_body(to=to)).json()["messages"][0]["id"]
                  for to in (ALICE, BOB)]
        calls = receiver.wait(6)
        time.sleep(0.1)  # nothing extra arrives
        assert len(receiver.calls) == 6

    per_message: dict[str, list[str]] = {}
    for path, headers, raw in calls:
        assert path == "/webhooks/meta/"
        assert headers["content-type"] == "application/json"
        assert verify_signature(raw, headers["x-hub-signature-256"], APP_SECRET)
        assert not verify_signature(raw, headers["x-hub-signature-256"], "other-secret")
        body = json.loads(raw)
        assert body["object"] == "whatsapp_business_account"
        value = body["entry"][0]["changes"][0]["value"]
        assert value["metadata"]["phone_number_id"] == PHONE_ID
        [status] = parse_webhook(body).statuses
        per_message.setdefault(status.wamid, []).append(value["statuses"][0]["status"])
        assert value["statuses"][0]["recipient_id"] in (ALICE, BOB)

    assert per_message == {wamids[0]: ["sent", "delivered", "read"], wamids[1]: ["sent", "delivered", "read"]}
    deliveries = fake.wait_for_deliveries(6)
    assert all(d.http_status == 200 and d.error is None for d in deliveries)


def test_status_webhooks_echo_biz_opaque_callback_data(fake, client):
    """Meta repeats a send's biz_opaque_callback_data in every status of that message, and only there."""
    receiver = Receiver()
    with run_in_thread(receiver) as hook:
        fake.configure_webhook(hook.url + "/webhooks/meta/", APP_SECRET, status_delay_ms=1)
        tagged = client.post(MESSAGES, json={**text_body(to=ALICE), "biz_opaque_callback_data": "msg:4711"})
        plain = client.post(MESSAGES, json=text_body(to=BOB))
        assert tagged.status_code == plain.status_code == 200
        calls = receiver.wait(6)
    tagged_wamid = tagged.json()["messages"][0]["id"]
    echoed: dict[str, list[str | None]] = {}
    for _path, headers, raw in calls:
        assert verify_signature(raw, headers["x-hub-signature-256"], APP_SECRET)
        body = json.loads(raw)
        [item] = body["entry"][0]["changes"][0]["value"]["statuses"]
        [status] = parse_webhook(body).statuses
        assert status.biz_opaque_callback_data == item.get("biz_opaque_callback_data")
        echoed.setdefault(item["id"], []).append(item.get("biz_opaque_callback_data"))
    assert echoed[tagged_wamid] == ["msg:4711"] * 3
    [plain_wamid] = set(echoed) - {tagged_wamid}
    assert echoed[plain_wamid] == [None] * 3


def test_status_webhooks_reuse_one_keep_alive_connection(fake, client):
    """The sender is cheap: statuses to one endpoint share a pooled connection, not one each."""
    peers: list[tuple[str, int]] = []

    class Peers(Receiver):
        async def __call__(self, scope, receive, send):
            if scope["type"] == "http":
                peers.append(tuple(scope["client"]))
            await super().__call__(scope, receive, send)

    receiver = Peers()
    with run_in_thread(receiver) as hook:
        fake.configure_webhook(hook.url + "/wh", APP_SECRET, status_delay_ms=1)
        for sent in range(1, 4):
            assert client.post(MESSAGES, json=text_body()).status_code == 200
            receiver.wait(3 * sent)  # one message's statuses done before the next: the connection is idle
    assert len(peers) == 9
    assert len(set(peers)) == 1, peers


def test_failing_webhook_endpoint_is_logged_not_fatal(fake, client, caplog):
    receiver = Receiver(status=500)
    with run_in_thread(receiver) as hook:
        fake.configure_webhook(hook.url + "/hook", APP_SECRET, statuses=["sent", "delivered"],
                               status_delay_ms=1)
        assert client.post(MESSAGES, json=text_body()).status_code == 200
        deliveries = fake.wait_for_deliveries(2)
    assert [(d.status, d.http_status, d.error) for d in deliveries] == [
        ("sent", 500, "HTTP 500"), ("delivered", 500, "HTTP 500"),
    ]
    # Unreachable endpoint: connection errors are recorded too, and the fake keeps serving.
    fake.configure_webhook(hook.url + "/hook", APP_SECRET, statuses=["sent"], status_delay_ms=1)
    assert client.post(MESSAGES, json=text_body()).status_code == 200
    last = fake.wait_for_deliveries(3)[-1]
    assert last.http_status is None and "ConnectError" in last.error
    assert any("webhook" in r.getMessage() for r in caplog.records)
    assert client.post(MESSAGES, json=text_body()).status_code == 200


def test_reset_abandons_pending_webhooks(fake, client):
    receiver = Receiver()
    with run_in_thread(receiver) as hook:
        fake.configure_webhook(hook.url + "/wh", APP_SECRET, status_delay_ms=150)
        assert client.post(MESSAGES, json=text_body()).status_code == 200
        fake.reset()
        time.sleep(0.6)  # past all three scheduled statuses
    assert receiver.calls == [] and fake.deliveries() == []


def test_webhook_config_over_http(fake, client):
    receiver = Receiver()
    with run_in_thread(receiver) as hook:
        response = client.post("/_fake/config", json={
            "webhook_url": hook.url + "/wh", "app_secret": APP_SECRET,
            "statuses": ["sent"], "status_delay_ms": 0,
        })
        assert response.status_code == 200
        assert response.json() == {
            "webhook_url": hook.url + "/wh", "app_secret_set": True,
            "statuses": ["sent"], "status_delay_ms": 0,
        }
        client.post(MESSAGES, json=text_body())
        [(_, headers, raw)] = receiver.wait(1)
        assert verify_signature(raw, headers["x-hub-signature-256"], APP_SECRET)


# --------------------------------------------------------------------------- control API


def test_requests_endpoint_polls_by_sequence_and_recipient(fake, client):
    client.post(MESSAGES, json=text_body(to=ALICE))
    first = client.get("/_fake/requests").json()
    assert [r["to"] for r in first["requests"]] == [ALICE]
    assert first["requests"][0]["body"] == text_body(to=ALICE)
    assert first["requests"][0]["http_status"] == 200
    since = first["last_seq"]

    client.post(MESSAGES, json=text_body(to=BOB))
    client.post(MESSAGES, json=buttons_body(["1", "2", "3", "4"], to=ALICE))
    newer = client.get("/_fake/requests", params={"since": since}).json()
    assert [(r["to"], r["http_status"]) for r in newer["requests"]] == [(BOB, 200), (ALICE, 400)]
    assert [r["seq"] for r in newer["requests"]] == [since + 1, since + 2]
    only_alice = client.get("/_fake/requests", params={"to": ALICE}).json()["requests"]
    assert [r["http_status"] for r in only_alice] == [200, 400]
    page = client.get("/_fake/requests", params={"since": since, "limit": 1}).json()["requests"]
    assert [r["seq"] for r in page] == [since + 1]

    assert client.delete("/_fake/requests").json() == {"cleared": 3}
    after = client.get("/_fake/requests").json()
    assert after["requests"] == [] and after["last_seq"] == since + 2  # seq never reused
    assert client.get("/_fake/health").json() == {"status": "ok", "requests": 0, "last_seq": since + 2}


def test_latency_and_fault_reset_over_http(fake, client):
    state = client.post("/_fake/faults", json={"latency_ms": 30, "faults": [{"code": 131000, "times": 3}]}).json()
    assert state["latency_ms"] == 30 and state["faults"][0]["remaining"] == 3
    assert client.delete("/_fake/faults").json() == {"faults": [], "latency_ms": 0, "jitter_ms": 0}
    assert client.post(MESSAGES, json=text_body()).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    [
        ("POST", "/_fake/faults", {"faults": [{"code": 131000, "tims": 2}]}, "tims"),
        ("POST", "/_fake/faults", {"faults": [{"kind": "explode"}]}, "kind"),
        ("POST", "/_fake/faults", {"faults": [{"http_status": 200}]}, "http_status"),
        ("POST", "/_fake/faults", {"faults": [{"kind": "timeout"}]}, "delay_ms"),
        ("POST", "/_fake/faults", {"faults": {"code": 1}}, "faults"),
        ("POST", "/_fake/faults", {"latency_ms": -5}, "latency_ms"),
        ("POST", "/_fake/config", {"webhook_url": "ftp://example.com", "app_secret": "s"}, "webhook_url"),
        ("POST", "/_fake/config", {"webhook_url": "http://127.0.0.1:9/x"}, "app_secret"),
        ("POST", "/_fake/config", {"statuses": ["seen"]}, "statuses"),
        ("POST", "/_fake/config", {"colour": "red"}, "colour"),
        ("GET", "/_fake/requests?since=abc", None, "since"),
        ("GET", "/_fake/requests?limit=0", None, "limit"),
    ],
)
def test_bad_control_input_is_400_naming_the_field(fake, client, method, path, payload, field):
    response = client.request(method, path, json=payload)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert fake.faults() == []  # all-or-nothing


def test_bad_control_json_and_unknown_endpoints(fake, client):
    bad = client.post("/_fake/faults", content=b"[1,", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
    assert client.get("/_fake/nothing").status_code == 404
    assert client.put("/_fake/faults").status_code == 405


# --------------------------------------------------------------------------- Python API errors


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Fault(), "code"),
        (lambda: Fault(code=131056, times=0), "times"),
        (lambda: Fault(kind="timeout"), "delay_ms"),
        (lambda: Fault(kind="drop_connection", code=131000), "code"),
        (lambda: Fault(http_status=302), "http_status"),
        (lambda: Fault(code=-1), "code"),
        (lambda: Fault(code=131000, to=""), "to"),
        (lambda: FakeGraphAPI(latency_ms=-1), "latency_ms"),
        (lambda: FakeGraphAPI(access_token=""), "access_token"),
        (lambda: FakeGraphAPI(max_records=0), "max_records"),
        (lambda: FakeGraphAPI().set_latency(10, jitter_ms=-1), "jitter_ms"),
        (lambda: FakeGraphAPI().configure_webhook("localhost:8000/hook", "s"), "webhook_url"),
        (lambda: FakeGraphAPI().configure_webhook("http://localhost/hook", None), "app_secret"),
        (lambda: FakeGraphAPI().configure_webhook("http://x/h", "s", statuses="sent"), "statuses"),
        (lambda: FakeGraphAPI().configure_webhook("http://x/h", "s", status_delay_ms=-1), "status_delay_ms"),
    ],
)
def test_bad_python_configuration_names_the_field(build, field):
    with pytest.raises(FakeConfigError) as exc_info:
        build()
    assert exc_info.value.field == field


def test_fault_defaults_follow_metas_code_table():
    assert Fault(code=131056).http_status == 429
    assert Fault(code=131026).http_status == 400
    assert Fault(http_status=503).code == 131016
    assert Fault(http_status=429).code == 130429


def test_records_are_bounded_but_sequence_numbers_keep_counting():
    fake, server = start_fake_graph(max_records=3)
    with server, httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        for i in range(5):
            c.post(server.url + MESSAGES, json=text_body(body=f"n{i}"))
    assert [(r.seq, r.body["text"]["body"]) for r in fake.requests()] == [
        (3, "n2"), (4, "n3"), (5, "n4"),
    ]


def test_wait_for_messages_times_out_clearly():
    with pytest.raises(TimeoutError, match="2 messages"):
        FakeGraphAPI().wait_for_messages(2, timeout=0.05)


# --------------------------------------------------------------------------- as a process


def test_standalone_process_imports_no_django():
    code = (
        "import sys, devtools.fake_graph, devtools.webhook_payloads, devtools.servers;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=dict(env, PYTHONPATH=str(root)),
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "[]"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_as_its_own_process():
    port = _free_port()
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.servers", "graph", "--host", "127.0.0.1",
         "--port", str(port), "--latency-ms", "20"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                assert httpx.get(url + "/_fake/health").json()["status"] == "ok"
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "fake_graph process did not start"
                time.sleep(0.1)
        started = time.monotonic()
        response = httpx.post(url + MESSAGES, json=text_body(),
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200 and time.monotonic() - started >= 0.02
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode in (0, -15)
