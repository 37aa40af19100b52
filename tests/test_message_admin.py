"""Admin offers no "Add message": a row written there skipped the validation every send goes
through (``send_to_contact``) and failed minutes later. Operators send from the API."""

from __future__ import annotations

import pytest

from conversations.models import Contact, Direction, Message
from tests.support.inbound import make_app_config

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/conversations/message/add/"


@pytest.fixture
def contact(db) -> Contact:
    return Contact.objects.create(wa_id="263771234567", profile_name="Tendai", app_config=make_app_config())


def test_the_add_message_form_is_not_offered(admin_client, contact):
    assert admin_client.get(ADD_URL).status_code == 403
    changelist = admin_client.get("/admin/conversations/message/").content.decode()
    assert ADD_URL not in changelist


def test_an_outbound_row_without_valid_content_cannot_be_added(admin_client, contact):
    """The post that used to create a pending outbound row with an empty text."""
    response = admin_client.post(ADD_URL, {
        "contact": contact.pk, "direction": Direction.OUTBOUND, "message_type": "text", "text": "",
        "status": "pending", "content": "{}",
    })
    assert response.status_code == 403
    assert not Message.objects.exists()
