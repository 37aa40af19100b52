"""What an operator reads: log levels of flow events and the development access log.

* A normal turn (an action that worked, a template variable that is not set) is not a
  WARNING; a real problem (an action that failed) still is.
* The simulator polls every second or so: the dev server's access log leaves those polls out,
  and keeps every other request and every failed poll.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows import actions, services
from flows.engine_types import ActionCall, ActionResult
from tests.support.flows import Chat, business, flow_doc, go, step, text_spec

PROCESSING_LOGGER = "flows.services.processing"


@pytest.fixture
def lookup_action():
    def lookup(call: ActionCall) -> ActionResult:
        if call.variables.get("code") == "boom":
            raise RuntimeError("the bookmaker is down")
        return ActionResult(variables={"found": "Arsenal v Chelsea"})

    actions.register_action("tests.lookup", lookup)
    yield
    actions.unregister_action("tests.lookup")


@pytest.fixture
def lookup_flow(db, lookup_action):
    services.import_flow_document(flow_doc({
        "name": "lookup",
        "description": "Looks a code up, greets by a nickname the contact never gave.",
        "active": True,
        "trigger_keywords": ["lookup"],
        "steps": [
            step("code", "question", {"prompt": text_spec("Code?"), "expect": {"type": "text"}, "save_to": "code"},
                 entry=True),
            step("find", "action", {"operation": "call", "action": "tests.lookup", "inputs": {}}),
            step("done", "end_flow", {"message": text_spec("Hi {{ nickname }}, found {{ found }}")}),
        ],
        "transitions": [go("code", "find"), go("find", "done")],
    }))


def flow_records(caplog) -> dict[str, int]:
    """event -> level of the processing's per-event lines."""
    found = {}
    for record in caplog.records:
        if record.name == PROCESSING_LOGGER and record.getMessage().startswith("flows: contact"):
            found[record.getMessage().rsplit(": ", 1)[-1]] = record.levelno
    return found


def test_a_normal_turn_logs_no_warning(lookup_flow, caplog):
    chat = Chat(business())
    chat.say("lookup")
    caplog.set_level(logging.DEBUG, logger=PROCESSING_LOGGER)

    replies = chat.say("A1")

    assert "found Arsenal v Chelsea" in replies[-1]["body"]
    levels = flow_records(caplog)
    assert levels["action_ok:tests.lookup"] == logging.DEBUG
    assert levels["template_missing:nickname"] == logging.INFO
    assert not [r for r in caplog.records if r.name == PROCESSING_LOGGER and r.levelno >= logging.WARNING]


def test_a_failed_action_is_still_a_warning(lookup_flow, caplog):
    chat = Chat(business())
    chat.say("lookup")
    caplog.set_level(logging.DEBUG, logger=PROCESSING_LOGGER)

    chat.say("boom")

    assert flow_records(caplog)["action_failed:tests.lookup:RuntimeError"] == logging.WARNING


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dev_access_log_leaves_out_successful_simulator_polls(tmp_path: Path):
    port = _free_port()
    log = tmp_path / "access.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tests.status_app:app", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--access-logfile", str(log), "--log-level", "warning",
         "--logger-class", "devtools.access_log.QuietPollingLogger"],
        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/ready-probe", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(server.stderr.read().decode() if server.poll() is not None else "no start") from None
                time.sleep(0.1)
        for _ in range(5):
            assert httpx.get(f"{base}/simulator/feed?wa_id=263771112233&since=3").status_code == 200
        assert httpx.get(f"{base}/simulator/feed?status=502").status_code == 502
        assert httpx.post(f"{base}/simulator/send").status_code == 200
        assert httpx.get(f"{base}/admin/").status_code == 200
    finally:
        server.terminate()
        server.wait(15)

    lines = log.read_text().splitlines()
    assert not [line for line in lines if "/simulator/feed?wa_id" in line]
    assert len([line for line in lines if '"GET /simulator/feed?status=502' in line]) == 1
    assert len([line for line in lines if '"POST /simulator/send' in line]) == 1
    assert len([line for line in lines if '"GET /admin/' in line]) == 1


# --------------------------------------------------------------------------- the README's operator steps

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_says_how_an_operator_gets_an_api_token_and_it_works(db):
    """Follow the README: a user, in the agents group, a token from drf_create_token -> the API answers."""
    from io import StringIO

    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from whatsappcrm_backend.api import AGENT_GROUP, ensure_role_groups

    text = README.read_text()
    assert text.startswith("# WhatsApp CRM backend\n\n```sh\n./scripts/run ")
    assert "manage.py drf_create_token <username>" in text
    assert f"`{AGENT_GROUP}`" in text and "*Auth Token* → *Tokens*" in text

    ensure_role_groups()
    user = User.objects.create_user("chipo", password="a-long-operator-password")
    user.groups.add(Group.objects.get(name=AGENT_GROUP))
    out = StringIO()
    call_command("drf_create_token", "chipo", stdout=out)
    key = out.getvalue().split()[2]  # "Generated token <key> for user chipo"

    client = Client()
    assert client.get("/api/contacts/").status_code == 401
    assert client.get("/api/contacts/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


def test_readme_says_manage_py_needs_debug_in_development(tmp_path):
    """Without DEBUG (and without production secrets) manage.py refuses, naming DEBUG=1; the README says so."""
    assert "needs `DEBUG=1`" in README.read_text()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:9/0"}
    refused = subprocess.run([sys.executable, "manage.py", "check"], cwd=README.parent, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert "set DEBUG=1" in refused.stderr
