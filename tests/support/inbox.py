"""Shared pieces of the inbox tests: operators with each role, business numbers, messages."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from conversations.models import Contact, Direction, Message, MessageStatus
from meta_integration.models import MessageTemplate, MetaAppConfig
from whatsappcrm_backend.api import AGENT_GROUP, READ_ONLY_GROUP

_numbers = itertools.count(1)


def make_user(username: str, *, role: str = "agent", staff: bool = True) -> Any:
    """role: agent | readonly | admin (superuser) | none (staff in no group: admin as the API maps it)."""
    user = get_user_model().objects.create_user(
        username=username, password="pw-" + username, is_staff=staff, is_superuser=role == "admin"
    )
    if role == "agent":
        user.groups.add(Group.objects.get_or_create(name=AGENT_GROUP)[0])
    elif role == "readonly":
        user.groups.add(Group.objects.get_or_create(name=READ_ONLY_GROUP)[0])
    return user


def make_number(name: str = "Kwacha Sports", graph_url: str = "http://127.0.0.1:9", **extra: Any) -> MetaAppConfig:
    n = next(_numbers)
    return MetaAppConfig.objects.create(
        name=name,
        phone_number_id=str(100000000000000 + n),
        display_phone_number=f"+263 71 555 {n:04d}",
        waba_id=str(200000000000000 + n),
        access_token="inbox-test-token",
        app_secret="inbox-test-secret",
        verify_token="inbox-verify",
        graph_api_url=graph_url,
        send_rate_per_second=1000,
        **extra,
    )


def make_contact(number: MetaAppConfig, *, wa_id: str | None = None, name: str = "Tendai Moyo",
                 wrote_ago: timedelta | None = timedelta(minutes=5), **extra: Any) -> Contact:
    return Contact.objects.create(
        wa_id=wa_id or f"26377{next(_numbers):07d}",
        profile_name=name,
        app_config=number,
        last_inbound_at=None if wrote_ago is None else timezone.now() - wrote_ago,
        **extra,
    )


def inbound(contact: Contact, text: str, *, number: MetaAppConfig | None = None, message_type: str = "text",
            content: dict | None = None, **extra: Any) -> Message:
    wamid = f"wamid.in.{next(_numbers)}"
    return Message.objects.create(
        contact=contact, app_config=number or contact.app_config, direction=Direction.INBOUND,
        message_type=message_type, text=text, content=content if content is not None else {"text": text},
        wamid=wamid, status=MessageStatus.RECEIVED, **{"timestamp": contact.last_inbound_at or timezone.now(), **extra},
    )


def outbound(contact: Contact, text: str, *, number: MetaAppConfig | None = None, sent_by: str = "bot",
             status: str = MessageStatus.SENT, spec: dict | None = None, **extra: Any) -> Message:
    spec = spec or {"type": "text", "body": text}
    return Message.objects.create(
        contact=contact, app_config=number or contact.app_config, direction=Direction.OUTBOUND,
        message_type="text" if spec["type"] == "text" else spec["type"], text=text, content=spec,
        wamid=f"wamid.out.{next(_numbers)}", status=status, status_at=timezone.now(), sent_by=sent_by, **extra,
    )


def hand_over(contact: Contact, *, ago: timedelta = timedelta(minutes=1)) -> Contact:
    contact.needs_human = True
    contact.handover_at = timezone.now() - ago
    contact.save(update_fields=["needs_human", "handover_at"])
    return contact


BET_SETTLED = [
    {"type": "HEADER", "format": "TEXT", "text": "Bet settled"},
    {"type": "BODY", "text": "Hi {{1}}, your ticket won {{2}}.",
     "example": {"body_text": [["Tendai", "$12.50"]]}},
]


def make_template(number: MetaAppConfig, name: str = "bet_settled", *, status: str = "APPROVED",
                  components: list | None = None) -> MessageTemplate:
    return MessageTemplate.objects.create(
        app_config=number, name=name, language="en_US", category="UTILITY", status=status,
        components=components or BET_SETTLED,
    )
