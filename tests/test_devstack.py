"""The README's run command as a test: ``python -m devtools.devstack``.

It is started as a developer starts it, on free ports and a fresh data directory (SQLite and
an embedded Redis, nothing from this test run's environment), and used as Meta and a person
would use it: a signed webhook POST gets a reply at the fake Graph API, and the simulator
page answers through the real gunicorn server. Ctrl-C (SIGINT) must stop every process it
started, including the embedded redis-server; a second run on the same directory reuses the
data.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from devtools import webhook_payloads as simulate
from devtools.devstack import DEV_APP_SECRET, DEV_DISPLAY_NUMBER, DEV_PHONE_NUMBER_ID, ROOT

# two runs of (start <= 90 s, replies <= 90 s, stop <= 60 s) must fit, with room to spare
pytestmark = [pytest.mark.workers, pytest.mark.timeout(600)]

START_TIMEOUT = 90.0  # migrate a fresh SQLite file, seed, start web, two workers and Beat
REPLY_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0  # the launcher gives its children 15 s, then kills their groups
# What the launcher must not inherit from this test run: it has to bring its own of each.
INHERITED = re.compile(r"^(REDIS_URL|DATABASE_URL|CELERY_BROKER_URL|META_.*|WEB_PORT|FAKE_GRAPH_PORT|VAR_DIR)$")
ADDRESS = re.compile(r"^\s+(simulator|admin|API docs|webhook|fake Graph|redis)\s+(\S+)", re.MULTILINE)


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    log_path: Path
    addresses: dict[str, str] = field(default_factory=dict)
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    commands: dict[int, str] = field(default_factory=dict)  # read while alive, for messages
    hung: str = ""  # what was still running when Ctrl-C did not stop the launcher in time

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def collect_children(self) -> None:
        """Remember every process in the launcher's tree (gunicorn and prefork children too)."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            if child.pid not in self.seen:
                self.seen[child.pid] = child
                self.commands[child.pid] = _command(child)

    @property
    def fake_graph(self) -> str:
        return self.addresses["fake Graph"].removesuffix("/_fake/requests")

    @property
    def web(self) -> str:
        return self.addresses["webhook"].removesuffix("/webhooks/meta/")


def start_stack(var_dir: Path, log_path: Path) -> RunningStack:
    env = {k: v for k, v in os.environ.items() if not INHERITED.match(k)}
    env.update(VAR_DIR=str(var_dir), DEBUG="1", PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    with log_path.open("wb") as log:  # a file, not a pipe: children write to it and never block
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.devstack", "--web-port", "0", "--graph-port", "0"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    stack = RunningStack(process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        stack.collect_children()
        text = stack.log()
        if "Ctrl-C stops everything." in text:
            stack.addresses = dict(ADDRESS.findall(text.split("[devstack] up:", 1)[1]))
            stack.collect_children()
            return stack
        if process.poll() is not None:
            pytest.fail(f"the launcher exited with {process.returncode} before it was up:\n{text[-4000:]}")
        time.sleep(0.25)
    stop_stack(stack)
    pytest.fail(f"the launcher was not up after {START_TIMEOUT}s:\n{stack.log()[-4000:]}")


def stop_stack(stack: RunningStack) -> int | None:
    """Ctrl-C, as a developer stops it; kill only what is left of what it started if that fails."""
    stack.collect_children()
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
        try:
            stack.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            stack.process.send_signal(signal.SIGUSR1)  # the launcher's stacks into its log
            time.sleep(1.0)
            stack.hung = _describe_tree(stack)
            stack.process.kill()
            stack.process.wait()
    return stack.process.returncode


def survivors(stack: RunningStack, grace: float = 10.0) -> list[str]:
    deadline = time.monotonic() + grace
    while True:
        alive = []
        for proc in stack.seen.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{proc.pid} {stack.commands[proc.pid][:120]}")
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def kill_leftovers(stack: RunningStack) -> None:
    for proc in stack.seen.values():
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture
def stacks(tmp_path) -> Iterator[list[RunningStack]]:
    """Whatever a test starts is stopped, and its leftovers killed, even when it fails."""
    started: list[RunningStack] = []
    yield started
    for stack in started:
        stop_stack(stack)
        kill_leftovers(stack)


def post_signed_hi(stack: RunningStack, wa_id: str) -> str:
    message = simulate.text("hi", wa_id=wa_id)
    body = simulate.webhook_body(
        [message], phone_number_id=DEV_PHONE_NUMBER_ID, display_phone_number=DEV_DISPLAY_NUMBER,
        profile_name="Devstack Tester",
    )
    raw, headers = simulate.signed_request(body, DEV_APP_SECRET)
    response = httpx.post(stack.addresses["webhook"], content=raw, headers=headers, timeout=30)
    assert response.status_code == 200, (
        f"webhook answered {response.status_code}: {response.text}\n{stack.log()[-3000:]}"
    )
    return message["id"]


def wait_for_reply(stack: RunningStack, wa_id: str, since: int = 0) -> dict:
    """The first message the bot sent to ``wa_id`` that the fake Graph API accepted."""
    deadline = time.monotonic() + REPLY_TIMEOUT
    while time.monotonic() < deadline:
        response = httpx.get(f"{stack.fake_graph}/_fake/requests", params={"to": wa_id, "since": since}, timeout=10)
        replies = [r for r in response.json()["requests"] if r["kind"] == "message" and r["http_status"] == 200]
        if replies:
            return replies[0]
        stack.collect_children()
        time.sleep(0.5)
    pytest.fail(f"no reply to {wa_id} at the fake Graph API within {REPLY_TIMEOUT}s:\n{stack.log()[-4000:]}")


def assert_stopped_cleanly(stack: RunningStack) -> None:
    code = stop_stack(stack)
    assert code == 0, f"the launcher exited with {code}:\n{stack.hung}\n{stack.log()[-6000:]}"
    commands = sorted(command[:100] for command in stack.commands.values())
    for expected in ("redis-server", "devtools.servers graph", "gunicorn", "--pool=gevent", "--pool=prefork", " beat "):
        assert any(expected in command for command in commands), f"no {expected!r} child seen in {commands}"
    assert survivors(stack) == [], "processes left running after Ctrl-C"
    port = int(stack.addresses["redis"].rsplit(":", 1)[1].split("/", 1)[0])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def _describe_tree(stack: RunningStack) -> str:
    lines = []
    for proc in [psutil.Process(stack.process.pid), *stack.seen.values()]:
        try:
            lines.append(f"{proc.pid} {proc.status()} {stack.commands.get(proc.pid, _command(proc))[:120]}")
        except psutil.Error:
            pass
    return "\n".join(lines)


def _command(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return f"(pid {proc.pid}, gone before it was read)"


def test_the_run_command_answers_stops_cleanly_and_keeps_its_data(tmp_path, stacks):
    var_dir = tmp_path / "var"
    user = "26377" + str(uuid.uuid4().int)[:7]

    # first run: a fresh database is migrated and seeded; a signed message gets the main menu
    first = start_stack(var_dir, tmp_path / "first.log")
    stacks.append(first)
    assert set(first.addresses) >= {"simulator", "admin", "webhook", "fake Graph", "redis"}
    assert first.addresses["simulator"].endswith("/simulator/")
    assert httpx.get(f"{first.web}/healthz", timeout=10).json() == {"status": "ok"}
    post_signed_hi(first, user)
    reply = wait_for_reply(first, user)
    assert reply["body"]["to"] == user
    assert reply["phone_number_id"] == DEV_PHONE_NUMBER_ID
    assert reply["body"]["type"] == "interactive"  # the default flows' main menu

    # the simulator page, served by gunicorn, reaches the same bot through its own webhook
    other = "26378" + str(uuid.uuid4().int)[:7]
    with httpx.Client(timeout=30) as browser:
        page = browser.get(first.addresses["simulator"])
        assert page.status_code == 200, page.text[:300]
        sent = browser.post(
            f"{first.addresses['simulator']}send",
            json={"wa_id": other, "profile_name": "Simulator Person", "kind": "text", "text": "hi"},
            headers={"X-CSRFToken": browser.cookies["csrftoken"]},
        )
        assert sent.status_code == 200, sent.text
        wait_for_reply(first, other)
        feed = browser.get(f"{first.addresses['simulator']}feed", params={"wa_id": other}).json()
        assert feed["messages"] and feed["messages"][0]["ok"]

    first.collect_children()
    assert_stopped_cleanly(first)
    database = var_dir / "db.sqlite3"
    assert database.exists()

    # second run on the same directory: same database, the contact is remembered
    second = start_stack(var_dir, tmp_path / "second.log")
    stacks.append(second)
    post_signed_hi(second, user)
    wait_for_reply(second, user)
    assert_stopped_cleanly(second)

    with sqlite3.connect(database) as db:
        contacts = db.execute("SELECT id FROM conversations_contact WHERE wa_id = ?", (user,)).fetchall()
        assert len(contacts) == 1
        inbound = db.execute(
            "SELECT COUNT(*) FROM conversations_message WHERE contact_id = ? AND direction = 'in'", (contacts[0][0],)
        ).fetchone()[0]
        assert inbound == 2  # one "hi" per run, on the same contact
        admins = db.execute("SELECT COUNT(*) FROM auth_user WHERE username = 'admin'").fetchone()[0]
        assert admins == 1  # seeding twice created one login
