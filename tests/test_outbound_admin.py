"""Operators see failed outbound messages with Meta's error and can resend them from admin."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import path, reverse
from django.utils import timezone

from conversations import admin_outbound  # registers FailedMessage with the admin site
from conversations.models import Message, MessageStatus
from tests.support.outbound import make_config, make_contact
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

# The admin's URLs are computed when a urlconf is imported; this one is imported after the
# registration above, whatever loaded the project's urlconf first.
urlpatterns = [path("admin/", admin.site.urls)]

CHANGELIST = "admin:conversations_failedmessage_changelist"


@pytest.fixture
def operator(client):
    user = User.objects.create_superuser("rudo", "rudo@example.com", "a-long-operator-password")
    client.force_login(user)
    return client


@pytest.fixture
def history(graph_url):
    config = make_config(graph_url)
    contact = make_contact(config)

    def out(body: str, status: str, **fields) -> Message:
        return Message.objects.create(contact=contact, app_config=config, direction="out", message_type="text",
                                      text=body, content={"type": "text", "body": body}, status=status,
                                      status_at=timezone.now(), **fields)

    return {
        "undeliverable": [out(f"Slip {n}", MessageStatus.FAILED, error_code=131026, attempts=1,
                              error_title="Message undeliverable", error_details="Message Undeliverable.")
                          for n in (1, 2)],
        "window": out("Still there?", MessageStatus.FAILED, error_code=131047, attempts=1,
                      error_title="Re-engagement message", error_details="More than 24 hours have passed."),
        "interrupted": out("Ticket placed", MessageStatus.FAILED, error_title="Send interrupted", attempts=1,
                           error_details="Attempt 1 stopped after the request may have reached Meta."),
        "sent": out("Welcome", MessageStatus.SENT, wamid="wamid.sent-one"),
        "contact": contact,
    }


def test_the_list_shows_only_failed_outbound_messages_with_metas_error(operator, history):
    page = operator.get(reverse(CHANGELIST))
    assert page.status_code == 200
    shown = {m.pk for m in page.context["cl"].result_list}
    failed = [*history["undeliverable"], history["window"], history["interrupted"]]
    assert shown == {m.pk for m in failed}
    html = page.content.decode()
    assert "Message undeliverable" in html and "131026" in html and "Re-engagement message" in html
    assert "131026: Message undeliverable (2)" in html  # the code filter lists codes with counts


@pytest.mark.parametrize(("code", "expected"), [("131026", "undeliverable"), ("131047", "window"),
                                                ("none", "interrupted"), ("bogus", None)])
def test_the_list_filters_by_metas_code(operator, history, code, expected):
    page = operator.get(reverse(CHANGELIST), {"error_code": code})
    shown = {m.pk for m in page.context["cl"].result_list}
    wanted = history.get(expected, []) if expected else []
    wanted = wanted if isinstance(wanted, list) else [wanted]
    assert shown == {m.pk for m in wanted}


def test_resend_puts_the_message_back_and_it_is_sent(gevent_worker, fake, operator, history):
    target = history["undeliverable"][0]
    response = operator.post(reverse(CHANGELIST), {"action": "resend", "_selected_action": [target.pk]}, follow=True)
    assert response.status_code == 200
    assert "1 message(s) queued to send again" in response.content.decode()
    [record] = fake.wait_for_messages(1, to=history["contact"].wa_id, timeout=20)
    assert record.body["text"]["body"] == "Slip 1"
    wait_until(lambda: Message.objects.get(pk=target.pk).status == MessageStatus.SENT, what="resent")
    target.refresh_from_db()
    assert (target.error_code, target.error_title, target.attempts) == (None, "", 1)
    assert Message.objects.get(pk=history["undeliverable"][1].pk).status == MessageStatus.FAILED  # not selected


def test_failed_messages_are_read_only(operator, history):
    failed = history["window"]
    assert operator.get(reverse("admin:conversations_failedmessage_change", args=[failed.pk])).status_code == 200
    assert operator.get(reverse("admin:conversations_failedmessage_add")).status_code == 403
    model_admin = admin.site._registry[admin_outbound.FailedMessage]
    assert "error_code" in model_admin.get_readonly_fields(None)
