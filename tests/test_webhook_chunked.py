"""Chunked webhook bodies on the real servers: gunicorn as compose runs it, and the ASGI app under uvicorn.

Django's test client always sends a Content-Length, so these requests go over a raw socket
with ``Transfer-Encoding: chunked`` to servers the test starts on free ports. A correctly
signed chunked body must be stored (it used to read as empty and fail its signature with
403); one over WEBHOOK_MAX_BODY_BYTES must get 413 and write nothing.
"""

from __future__ import annotations

import asyncio
import io
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from django.core.handlers.wsgi import WSGIRequest

from conversations.models import Contact, Message
from devtools import webhook_payloads as simulate
from devtools.servers import run_in_thread
from meta_integration import views
from meta_integration.models import WebhookEvent
from meta_integration.signatures import SIGNATURE_HEADER
from tests.support.broker import purge_project_queues
from tests.support.inbound import APP_SECRET, WEBHOOK_URL, make_app_config
from whatsappcrm_backend.asgi import application
from whatsappcrm_backend.routing_check import compose_command

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 4096  # small, so an over-limit body is cheap to send


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_argv(port: int) -> list[str]:
    """The web service's gunicorn command from docker-compose.yml, bound to ``port``.

    Same worker class and threads as compose; one worker process instead of three, which
    does not change how a request is read (and spares a shared 2-core machine).
    """
    script = compose_command("web")[-1]
    segment = next(part for part in script.split("&&") if part.split()[0] == "gunicorn")
    argv = shlex.split(segment)
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    argv[argv.index("--workers") + 1] = "1"
    return [sys.executable, "-m", *argv]


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn not serving after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def gunicorn_server(django_db_setup, django_db_blocker) -> Iterator[tuple[str, int]]:
    """gunicorn serving the project on the test database and broker, on a free port."""
    from tests.support.workers import stop_process_group, worker_env

    port = _free_port()
    log = Path(tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False).name)
    with log.open("wb") as out:
        process = subprocess.Popen(
            gunicorn_argv(port), cwd=Path(__file__).resolve().parent.parent,
            env=worker_env({"WEBHOOK_MAX_BODY_BYTES": str(LIMIT)}),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}", process, log)
        yield "127.0.0.1", port
    finally:
        stop_process_group(process, timeout=10)
        purge_project_queues()  # the accepted webhooks enqueued work no worker here consumes


@pytest.fixture
def asgi_server(settings) -> Iterator[tuple[str, int]]:
    """The project's ASGI application under uvicorn in this process, on a free port."""
    settings.WEBHOOK_MAX_BODY_BYTES = LIMIT
    with run_in_thread(application) as server:
        yield server.host, server.port
    purge_project_queues()


@pytest.fixture(params=["gunicorn", "asgi"])
def server(request) -> tuple[str, int]:
    return request.getfixturevalue(f"{request.param}_server")


def post_chunked(address: tuple[str, int], path: str, body: bytes, headers: Mapping[str, str],
                 chunk_size: int = 1000) -> tuple[int, bytes]:
    """POST ``body`` with Transfer-Encoding: chunked over a raw socket; (status, response body)."""
    head = [f"POST {path} HTTP/1.1", f"Host: {address[0]}:{address[1]}", "Transfer-Encoding: chunked",
            "Connection: close", *(f"{name}: {value}" for name, value in headers.items())]
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i:i + chunk_size]), body[i:i + chunk_size])
        for i in range(0, len(body), chunk_size)
    )
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + chunks + b"0\r\n\r\n")
        response = b""
        while data := sock.recv(65536):
            response += data
    status_line, _, rest = response.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


def test_a_signed_chunked_webhook_is_accepted_and_stored(server):
    make_app_config()
    raw, headers = simulate.signed_request(simulate.webhook_body([simulate.text("sent in chunks")]), APP_SECRET)
    assert len(raw) < LIMIT
    status, payload = post_chunked(server, WEBHOOK_URL, raw, headers, chunk_size=97)
    assert (status, payload) == (200, b"ok")
    assert Message.objects.get().text == "sent in chunks"  # stored (a normal POST keeps no audit row)


def test_a_chunked_webhook_over_the_limit_is_refused_with_413_and_nothing_stored(server):
    make_app_config()
    raw, headers = simulate.signed_request(simulate.webhook_body([simulate.text("x" * LIMIT)]), APP_SECRET)
    assert len(raw) > LIMIT
    status, _ = post_chunked(server, WEBHOOK_URL, raw, headers)
    assert status == 413
    assert (WebhookEvent.objects.count(), Contact.objects.count(), Message.objects.count()) == (0, 0, 0)


def test_a_chunked_body_exactly_at_the_limit_is_accepted(server):
    make_app_config()
    body = simulate.webhook_body([simulate.text("y")])
    filler = 1 + LIMIT - len(simulate.signed_request(body, APP_SECRET)[0])
    raw, headers = simulate.signed_request(simulate.webhook_body([simulate.text("y" * filler)]), APP_SECRET)
    assert len(raw) == LIMIT
    assert post_chunked(server, WEBHOOK_URL, raw, headers)[0] == 200
    assert len(Message.objects.get().text) == filler


def test_the_asgi_app_takes_in_no_more_than_the_limit_of_an_endless_body(settings):
    """Django's ASGI handler would buffer a body whole before the view runs; the webhook's is cut
    at limit + 1 bytes, however much the client keeps sending."""
    settings.WEBHOOK_MAX_BODY_BYTES = LIMIT
    received = 0
    sent: list[dict] = []

    async def endless_body() -> dict:
        nonlocal received
        await asyncio.sleep(0)  # a real server waits for the network here
        received += 1000
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": WEBHOOK_URL, "raw_path": WEBHOOK_URL.encode(), "query_string": b"",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(asyncio.wait_for(application(scope, endless_body, send), timeout=10))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert received <= LIMIT + 1000
    assert WebhookEvent.objects.count() == 0


def test_a_chunked_body_a_wsgi_server_cannot_end_is_refused_with_411_not_read_as_empty():
    """Without ``wsgi.input_terminated`` the input may not be read past Content-Length, and a
    chunked request has none: refused with a clear reason instead of failing its signature."""
    make_app_config()
    raw, headers = simulate.signed_request(simulate.webhook_body([simulate.text("hello")]), APP_SECRET)
    request = WSGIRequest({
        "REQUEST_METHOD": "POST", "PATH_INFO": WEBHOOK_URL, "SERVER_NAME": "testserver", "SERVER_PORT": "80",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(raw), "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "application/json",
        "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"): headers[SIGNATURE_HEADER],
    })
    response = views.webhook(request)
    assert response.status_code == 411
    assert b"chunked" in response.content
    assert WebhookEvent.objects.count() == 0
