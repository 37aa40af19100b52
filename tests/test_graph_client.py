"""The Graph client over real HTTP against the fake Graph API: results, typed errors, pooling.

No Django and no workers: the client is a plain module. A proxy's HTML 502 and a malformed
success body cannot come from the fake (it answers as Meta does), so those two use respx.
"""

from __future__ import annotations

import os
import socket
import threading

import httpx
import pytest
import respx

from devtools.fake_graph_scripting import FaultKind
from meta_integration import client
from meta_integration.errors import ErrorClass
from meta_integration.message_bodies import build_message
from tests.support.waiting import wait_until

TOKEN = "EAAG-client-test-token"
PHONE_ID = "106540352242922"
TO = "263771234567"


@pytest.fixture(scope="module")
def graph_token() -> str:
    return TOKEN  # conftest's fake_server / fake answer only this token


@pytest.fixture
def endpoint(fake_server) -> client.GraphEndpoint:
    return client.GraphEndpoint(fake_server[1], "v23.0", PHONE_ID, TOKEN)


@pytest.fixture
def http():
    with httpx.Client(timeout=5.0) as c:
        yield c


def text(to: str = TO) -> dict:
    return build_message(to, {"type": "text", "body": "Arsenal v Chelsea kicks off at 17:30."})


def test_send_returns_the_wamid_meta_assigned_and_posts_the_exact_body(fake, endpoint, http):
    result = client.send(endpoint, text(), http)
    [record] = fake.messages()
    assert result == client.SendResult(wamid=record.wamid, wa_id=TO, message_status=None, http_status=200)
    assert record.path == f"/v23.0/{PHONE_ID}/messages"
    assert record.body == text()


def test_a_template_is_reported_accepted(fake, endpoint, http):
    payload = build_message(TO, {"type": "template", "name": "match_reminder", "language": "en_US"})
    assert client.send(endpoint, payload, http).message_status == "accepted"


def test_the_api_version_comes_from_the_endpoint(fake, fake_server, http):
    client.send(client.GraphEndpoint(fake_server[1], "v21.0", PHONE_ID, TOKEN), text(), http)
    assert fake.messages()[0].version == "v21.0"


@pytest.mark.parametrize(
    ("code", "http_status", "title", "error_class"),
    [
        (131026, 400, "Message undeliverable", ErrorClass.PERMANENT),
        (131047, 400, "Re-engagement message", ErrorClass.PERMANENT),
        (132001, 404, "Template name does not exist in the translation", ErrorClass.PERMANENT),
        (131056, 429, "(Business Account, Consumer Account) pair rate limit hit", ErrorClass.PAIR_RATE_LIMIT),
        (130429, 429, "Rate limit hit", ErrorClass.TRANSIENT),
        (131016, 503, "Service unavailable", ErrorClass.TRANSIENT),
        (131000, 500, "Something went wrong", ErrorClass.TRANSIENT),
        (131005, 403, "Access denied", ErrorClass.AUTH),
    ],
)
def test_meta_errors_carry_status_code_title_and_details(fake, endpoint, http, code, http_status, title, error_class):
    fake.add_fault(code, details=f"details for {code}")
    with pytest.raises(client.GraphAPIError) as caught:
        client.send(endpoint, text(), http)
    error = caught.value
    assert (error.http_status, error.code, error.title, error.details) == (
        http_status, code, title, f"details for {code}"
    )
    assert error.error_class is error_class
    assert error.fbtrace_id
    assert str(code) in str(error) and title in str(error)


def test_a_wrong_token_is_an_auth_error(fake, fake_server, http):
    bad = client.GraphEndpoint(fake_server[1], "v23.0", PHONE_ID, "EAAG-revoked")
    with pytest.raises(client.GraphAPIError) as caught:
        client.send(bad, text(), http)
    assert (caught.value.http_status, caught.value.code) == (401, 190)
    assert caught.value.error_class is ErrorClass.AUTH


def test_a_body_meta_refuses_is_a_permanent_invalid_parameter(fake, endpoint, http):
    with pytest.raises(client.GraphAPIError) as caught:
        client.send(endpoint, {"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {}}, http)
    assert (caught.value.http_status, caught.value.code) == (400, 100)
    assert "text.body" in caught.value.details
    assert caught.value.error_class is ErrorClass.PERMANENT


def test_a_dropped_connection_may_have_reached_meta(fake, endpoint, http):
    fake.add_fault(kind=FaultKind.DROP_CONNECTION)
    with pytest.raises(client.GraphNoResponse) as caught:
        client.send(endpoint, text(), http)
    assert caught.value.may_have_arrived is True
    assert caught.value.http_status is None and caught.value.error_class is ErrorClass.TRANSIENT


def test_a_read_timeout_may_have_reached_meta(fake, endpoint):
    fake.add_fault(kind=FaultKind.TIMEOUT, delay_ms=1500)
    with httpx.Client(timeout=0.3) as short, pytest.raises(client.GraphNoResponse) as caught:
        client.send(endpoint, text(), short)
    assert caught.value.title == "ReadTimeout" and caught.value.may_have_arrived is True
    # The fake records the request when its hang ends, 1.2 s after the client gave up: wait
    # for it, or it lands in the next test's request log (seen when the suite ran loaded).
    wait_until(lambda: len(fake.requests()) == 1, timeout=10, what="the fake to record the timed-out request")


def test_a_refused_connection_certainly_did_not_reach_meta(http):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nowhere = client.GraphEndpoint(f"http://127.0.0.1:{port}", "v23.0", PHONE_ID, TOKEN)
    with pytest.raises(client.GraphNoResponse) as caught:
        client.send(nowhere, text(), http)
    assert caught.value.may_have_arrived is False
    assert caught.value.error_class is ErrorClass.TRANSIENT


def test_a_proxy_error_page_is_classified_by_http_status(endpoint):
    with respx.mock(assert_all_called=True) as mock, httpx.Client() as http:
        mock.post(endpoint.messages_url).respond(
            502, html="<html><body>502 Bad Gateway</body></html>", headers={"Retry-After": "7"}
        )
        with pytest.raises(client.GraphAPIError) as caught:
            client.send(endpoint, text(), http)
    error = caught.value
    assert (error.http_status, error.code, error.title) == (502, None, "Bad Gateway")
    assert "502 Bad Gateway" in error.details
    assert error.retry_after == 7.0 and error.error_class is ErrorClass.TRANSIENT


def test_a_success_without_a_wamid_is_an_error_not_a_silent_success(endpoint):
    with respx.mock() as mock, httpx.Client() as http:
        mock.post(endpoint.messages_url).respond(200, json={"messaging_product": "whatsapp", "messages": []})
        with pytest.raises(client.GraphAPIError, match=r"no messages\[0\]\.id"):
            client.send(endpoint, text(), http)


def test_mark_read_posts_the_read_receipt_with_an_optional_typing_indicator(fake, endpoint, http):
    client.mark_read(endpoint, "wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhggQUJD", http)
    client.mark_read(endpoint, "wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhggREVG", http, typing_indicator=True)
    first, second = (r.body for r in fake.requests())
    assert first == {
        "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhggQUJD",
    }
    assert second == {
        "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhggREVG",
        "typing_indicator": {"type": "text"},
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_url": "graph.facebook.com"}, "base_url"),
        ({"api_version": "23"}, "api_version"),
        ({"phone_number_id": "+263 71 555"}, "phone_number_id"),
        ({"access_token": ""}, "access_token"),
    ],
)
def test_a_bad_endpoint_is_refused_naming_the_field(kwargs, field):
    good = {"base_url": "https://graph.facebook.com", "api_version": "v23.0", "phone_number_id": PHONE_ID,
            "access_token": TOKEN}
    with pytest.raises(ValueError, match=f"^{field}:"):
        client.GraphEndpoint(**{**good, **kwargs})


def test_the_token_never_appears_in_the_endpoint_repr():
    endpoint = client.GraphEndpoint("https://graph.facebook.com", "v23.0", PHONE_ID, TOKEN)
    assert TOKEN not in repr(endpoint)
    assert repr(endpoint) == f"GraphEndpoint('https://graph.facebook.com/v23.0/{PHONE_ID}/messages')"


def test_one_shared_client_per_process_rebuilt_in_a_forked_child():
    shared = client.http_client(5.0, 4)
    assert client.http_client(5.0, 4) is shared
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not reuse the parent's pool
        os.close(read_end)
        child = client.http_client(5.0, 4)
        verdict = b"new" if child is not shared and client.http_client(5.0, 4) is child else b"reused"
        os.write(write_end, verdict)
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    assert os.read(read_end, 10) == b"new"
    os.close(read_end)
    assert client.http_client(5.0, 4) is shared


def test_the_pool_limit_bounds_concurrent_requests(fake, endpoint):
    """Six concurrent sends through a client limited to two connections: Meta never sees
    more than two in flight at once."""
    fake.set_latency(300)
    http = client.http_client(5.0, 2)
    threads = [threading.Thread(target=client.send, args=(endpoint, text(), http)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = fake.messages()
    assert len(records) == 6
    in_flight = max(
        sum(1 for other in records if other.received_monotonic <= r.received_monotonic < other.responded_monotonic)
        for r in records
    )
    assert in_flight <= 2
