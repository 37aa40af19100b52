"""A WhatsApp user for the end-to-end bot tests: ``Phone`` posts what Meta would post through
the webhook and reads what Meta was asked to deliver (the fake Graph API). Shared by
test_flow_conversations.py and test_marketing_opt_out.py; no tests here.
"""

from __future__ import annotations

import random
from typing import Any

from django.test import Client

from conversations.models import Contact, Direction, Message, MessageStatus
from devtools import webhook_payloads as simulate
from devtools.fake_graph import FakeGraphAPI
from flows.models import ContactFlowState
from tests.support.flows import APP_SECRET
from tests.support.waiting import wait_until

WEBHOOK_URL = "/webhooks/meta/"
WORKER: list[Any] = []  # the io_worker, for failure messages


def graph_text(body: dict[str, Any]) -> str:
    """What the user reads first in a Graph API message body."""
    if body["type"] == "text":
        return body["text"]["body"]
    if body["type"] == "interactive":
        return body["interactive"]["body"]["text"]
    return body["type"]


class Phone:
    """A WhatsApp user: posts what Meta would post, reads what Meta was asked to deliver."""

    def __init__(self, client: Client, fake: FakeGraphAPI, name: str = "Amina Otieno") -> None:
        self.client = client
        self.fake = fake
        self.name = name
        self.wa_id = "2547" + str(random.randint(10**7, 10**8 - 1))
        self.read = 0

    def post(self, *messages: dict[str, Any]) -> None:
        body = simulate.webhook_body(list(messages), profile_name=self.name)
        raw, headers = simulate.signed_request(body, APP_SECRET)
        headers = {key: value for key, value in headers.items() if key.lower() != "content-type"}
        response = self.client.post(WEBHOOK_URL, data=raw, content_type="application/json", headers=headers)
        assert response.status_code == 200, response.content

    def text(self, body: str) -> dict[str, Any]:
        return simulate.text(body, wa_id=self.wa_id)

    def settled(self) -> bool:
        """Every message in was processed and every reply out was accepted (or failed)."""
        messages = Message.objects.filter(contact__wa_id=self.wa_id)
        return messages.exists() and not (
            messages.filter(direction=Direction.INBOUND, processed_at__isnull=True).exists()
            or messages.filter(direction=Direction.OUTBOUND, status=MessageStatus.PENDING).exists()
        )

    def replies(self, timeout: float = 30.0) -> list[str]:
        """The replies delivered since the last call, in the order the fake received them."""
        try:
            wait_until(self.settled, timeout, f"{self.wa_id} to settle")
        except AssertionError as exc:
            rows = Message.objects.filter(contact__wa_id=self.wa_id).values(
                "pk", "direction", "status", "processed_at", "error_title", "text")
            raise AssertionError(f"{exc}\nmessages: {list(rows)}\nworker log:\n{WORKER[0].log()[-4000:]}") from None
        failed = Message.objects.filter(contact__wa_id=self.wa_id, status=MessageStatus.FAILED)
        assert not failed.exists(), list(failed.values("error_code", "error_title", "error_details"))
        new = self.fake.messages(to=self.wa_id)[self.read:]
        self.read += len(new)
        return [graph_text(record.body) for record in new]

    def say(self, body: str) -> list[str]:
        self.post(self.text(body))
        return self.replies()

    def tap(self, button_id: str, title: str) -> list[str]:
        self.post(simulate.button_reply(button_id, title, wa_id=self.wa_id))
        return self.replies()

    def pick(self, row_id: str, title: str) -> list[str]:
        self.post(simulate.list_reply(row_id, title, wa_id=self.wa_id))
        return self.replies()

    @property
    def contact(self) -> Contact:
        return Contact.objects.get(wa_id=self.wa_id)

    @property
    def where(self) -> tuple[str, str] | None:
        state = ContactFlowState.objects.filter(contact__wa_id=self.wa_id).select_related("flow").first()
        return (state.flow.name, state.step) if state else None


MENU_GREETING = "Hi Amina Otieno 👋 Welcome! What can I help you with today?"
HELP_START = "Here's how this chat works 🤖"
