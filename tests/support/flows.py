"""Flow test helpers: the business number the ``simulate`` builders address, small flow
document builders, two sample flows, and ``Chat`` (one WhatsApp user talking to the bot
in-process). Shared by the flow test files; no tests here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from conversations.models import Contact, Direction, Message
from conversations.services import delivery
from conversations.services.inbound import store_messages
from devtools import webhook_payloads as simulate
from flows import services
from flows.models import ContactFlowState
from meta_integration.models import MetaAppConfig
from meta_integration.payloads import parse_webhook

APP_SECRET = "flows-test-app-secret-0123456789"


def business(graph_url: str = "http://127.0.0.1:9", **fields: Any) -> MetaAppConfig:
    """The business number the simulate builders address (the worker reads graph_api_url)."""
    config, _ = MetaAppConfig.objects.update_or_create(
        phone_number_id=simulate.DEFAULT_PHONE_NUMBER_ID,
        defaults={
            "name": "Flows test business",
            "display_phone_number": simulate.DEFAULT_DISPLAY_PHONE_NUMBER,
            "access_token": "EAAG-flows-test-token",
            "app_secret": APP_SECRET,
            "verify_token": "flows-verify",
            "graph_api_url": graph_url,
            "send_rate_per_second": 1000.0,
            **fields,
        },
    )
    return config


def random_wa_id() -> str:
    return "2547" + str(random.randint(10**7, 10**8 - 1))


def import_defaults() -> None:
    services.import_flow_files(services.default_flow_paths())


def step(name: str, type_: str, config: dict[str, Any] | None = None, *, entry: bool = False) -> dict[str, Any]:
    return {"name": name, "type": type_, "entry": entry, "config": config or {}}


def go(src: str, dst: str, condition: dict[str, Any] | None = None, order: int = 0) -> dict[str, Any]:
    return {"from": src, "to": dst, "order": order, "condition": condition or {"type": "always"}}


def flow_doc(*flows: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "flows": list(flows)}


def text_spec(body: str) -> dict[str, str]:
    return {"type": "text", "body": body}


def spec_text(spec: Mapping[str, Any]) -> str:
    """The text a user reads first in a stored outbound spec (body of text/buttons/list)."""
    return spec.get("body") or spec.get("caption") or spec.get("type", "")


FEEDBACK_FLOW = {
    "name": "feedback",
    "description": "Asks for a rating with buttons, then a comment.",
    "active": True,
    "trigger_keywords": ["feedback"],
    "steps": [
        step("rate", "question", {
            "prompt": {"type": "buttons", "body": "How did we do?",
                       "buttons": [{"id": "rate_good", "title": "Good"}, {"id": "rate_bad", "title": "Bad"}]},
            "expect": {"type": "choice"},
            "save_to": "rating",
            "max_retries": 1,
            "on_max_retries": "handover",
        }, entry=True),
        step("comment", "question", {
            "prompt": text_spec("Thanks! Anything else you'd like to tell us?"),
            "expect": {"type": "text", "min_length": 3},
            "save_to": "comment",
        }),
        step("thanks", "end_flow", {"message": text_spec("Noted: {{ rating }} / {{ comment }} 🙏")}),
    ],
    "transitions": [go("rate", "comment"), go("comment", "thanks")],
}

ECHO_FLOW = {
    "name": "echo",
    "description": "Answers every message with everything it has seen so far (tests ordering and state).",
    "active": True,
    "trigger_keywords": ["echo"],
    "steps": [
        step("listen", "question", {
            "prompt": text_spec("echo {{ current | default:\"start\" }} | seen:{{ seen }}"),
            "expect": {"type": "text"},
            "save_to": "current",
        }, entry=True),
        # Not "{{ seen }} {{ current }}": render_value reads a value that starts with "{{" and ends
        # with "}}" as ONE placeholder (a templating bug reported to the lead).
        step("remember", "action", {"operation": "set_variables", "values": {"seen": "{{ seen }}{{ current }},"}}),
    ],
    "transitions": [go("listen", "remember"), go("remember", "listen")],
}


class Chat:
    """One WhatsApp user talking to the bot in-process: each message is stored by the real
    inbound service, processed by ``services.process_inbound``, and the replies are the
    outbound rows the real outbound service wrote for it, recorded as accepted by Meta."""

    def __init__(self, config: MetaAppConfig, wa_id: str | None = None, profile_name: str = "Amina Otieno"):
        self.config = config
        self.wa_id = wa_id or random_wa_id()
        self.profile_name = profile_name

    @property
    def contact(self) -> Contact:
        return Contact.objects.get(wa_id=self.wa_id)

    @property
    def state(self) -> ContactFlowState | None:
        return ContactFlowState.objects.filter(contact__wa_id=self.wa_id).first()

    def store(self, message: dict[str, Any]) -> int:
        batch = parse_webhook(simulate.webhook_body([message], profile_name=self.profile_name))
        with transaction.atomic():
            stored = store_messages(batch.messages, self.config)
        return stored[0].id

    def outbound_ids(self) -> set[int]:
        return set(Message.objects.filter(contact__wa_id=self.wa_id, direction=Direction.OUTBOUND)
                   .values_list("pk", flat=True))

    def send(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        before = self.outbound_ids() if Contact.objects.filter(wa_id=self.wa_id).exists() else set()
        message_id = self.store(message)
        result = services.process_inbound(message_id)
        for reply_id in result.reply_ids:  # Meta accepts them (no worker sends in these tests)
            delivery.record_accepted(reply_id, simulate.new_wamid(self.wa_id, outgoing=True))
        new = Message.objects.filter(contact__wa_id=self.wa_id, direction=Direction.OUTBOUND).exclude(pk__in=before)
        return [m.content for m in new.order_by("pk")]

    def say(self, body: str) -> list[dict[str, Any]]:
        return self.send(simulate.text(body, wa_id=self.wa_id))

    def tap(self, reply_id: str, title: str = "Option") -> list[dict[str, Any]]:
        return self.send(simulate.button_reply(reply_id, title, wa_id=self.wa_id))

    def pick(self, row_id: str, title: str = "Option") -> list[dict[str, Any]]:
        return self.send(simulate.list_reply(row_id, title, wa_id=self.wa_id))

    @property
    def where(self) -> tuple[str, str] | None:
        state = self.state
        return (state.flow.name, state.step) if state else None


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [spec_text(reply) for reply in replies]
