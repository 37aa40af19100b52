"""Admin pages operators use: contacts with their conversation, messages, statuses, the event log
and business numbers (whose secrets never appear on a page)."""

from __future__ import annotations

import pytest

from conversations.models import Contact, Direction, Message, MessageStatus
from devtools import webhook_payloads as simulate
from meta_integration.models import MetaAppConfig, WebhookEvent
from tests.support.inbound import APP_SECRET, URLCONF, make_app_config, post_webhook

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLCONF)]

TOKEN = "EAAG-test-token"


@pytest.fixture
def conversation(client, settings):
    """A short real conversation: two inbound messages through the webhook, one failed reply."""
    settings.WEBHOOK_EVENT_SAMPLE_RATE = 1.0  # every POST in the event log, for its pages
    config = make_app_config()
    reply_wamid = simulate.new_wamid(outgoing=True)
    post_webhook(client, simulate.webhook_body([simulate.text("show me fixtures", timestamp=1_760_000_000)]))
    contact = Contact.objects.get()
    Message.objects.create(
        contact=contact, app_config=config, direction=Direction.OUTBOUND, message_type="text",
        text="Saturday: Dynamos v CAPS United", wamid=reply_wamid, status=MessageStatus.SENT,
    )
    post_webhook(client, simulate.webhook_body(statuses=[
        simulate.status(reply_wamid, "failed", simulate.DEFAULT_WA_ID, [simulate.error_object(131047)])
    ]))
    post_webhook(client, simulate.webhook_body([simulate.reaction(reply_wamid, "\u26bd", timestamp=1_760_000_100)]))
    return contact


def test_contact_page_shows_the_conversation_in_order(admin_client, conversation):
    page = admin_client.get(f"/admin/conversations/contact/{conversation.pk}/change/").content.decode()
    first = page.index("show me fixtures")
    second = page.index("Saturday: Dynamos v CAPS United")
    third = page.index("reacted \u26bd")
    assert first < second < third
    assert "131047" in page


@pytest.mark.parametrize(
    "query, found",
    [("q=263771234567", True), ("q=Tendai", True), ("q=Nobody", False), ("needs_human__exact=1", False),
     ("blocked__exact=0", True), ("last_inbound_at__isnull=False", True),
     ("last_inbound_at__isnull=True", False)],
)
def test_contacts_are_found_by_number_and_name_and_filtered(admin_client, conversation, query, found):
    page = admin_client.get(f"/admin/conversations/contact/?{query}")
    assert page.status_code == 200
    assert (f"/admin/conversations/contact/{conversation.pk}/change/" in page.content.decode()) is found


@pytest.mark.parametrize(
    "query, texts",
    [
        ("direction__exact=in", {"show me fixtures"}),
        ("direction__exact=out", {"Saturday: Dynamos v CAPS United"}),
        ("status__exact=failed", {"Saturday: Dynamos v CAPS United"}),
        ("has_error=yes", {"Saturday: Dynamos v CAPS United"}),
        ("error_code=131047", {"Saturday: Dynamos v CAPS United"}),
        ("message_type__exact=text", {"show me fixtures", "Saturday: Dynamos v CAPS United"}),
    ],
)
def test_messages_are_filtered_by_direction_status_error_and_type(admin_client, conversation, query, texts):
    page = admin_client.get(f"/admin/conversations/message/?{query}").content.decode()
    shown = {t for t in ("show me fixtures", "Saturday: Dynamos v CAPS United") if t in page}
    assert shown == texts


def test_message_status_and_event_log_pages_render(admin_client, conversation):
    message = Message.objects.filter(direction=Direction.INBOUND).first()
    assert admin_client.get(f"/admin/conversations/message/{message.pk}/change/").status_code == 200
    assert admin_client.get("/admin/conversations/statusevent/?status__exact=failed").status_code == 200
    event = WebhookEvent.objects.first()
    assert admin_client.get("/admin/meta_integration/webhookevent/").status_code == 200
    detail = admin_client.get(f"/admin/meta_integration/webhookevent/{event.pk}/change/").content.decode()
    assert "whatsapp_business_account" in detail


def test_secrets_never_appear_on_business_number_pages(admin_client):
    config = make_app_config()
    for url in ("/admin/meta_integration/metaappconfig/",
                f"/admin/meta_integration/metaappconfig/{config.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert config.phone_number_id in page
        assert APP_SECRET not in page
        assert TOKEN not in page


def test_saving_a_business_number_with_blank_secret_fields_keeps_the_secrets(admin_client):
    config = make_app_config()
    response = admin_client.post(f"/admin/meta_integration/metaappconfig/{config.pk}/change/", {
        "name": "Main line", "is_active": "on", "phone_number_id": config.phone_number_id,
        "display_phone_number": config.display_phone_number, "waba_id": "", "access_token": "",
        "app_secret": "", "verify_token": config.verify_token, "graph_api_url": config.graph_api_url,
        "api_version": config.api_version, "send_rate_per_second": "80",
    })
    assert response.status_code == 302
    config.refresh_from_db()
    assert (config.name, config.app_secret, config.access_token) == ("Main line", APP_SECRET, TOKEN)


def test_a_new_business_number_needs_its_secrets(admin_client):
    response = admin_client.post("/admin/meta_integration/metaappconfig/add/", {
        "name": "Second line", "is_active": "on", "phone_number_id": "109876543210987",
        "access_token": "", "app_secret": "", "verify_token": "v", "graph_api_url": "https://graph.facebook.com",
        "api_version": "v23.0", "send_rate_per_second": "80",
    })
    assert response.status_code == 200
    assert "Required for a new business number." in response.content.decode()
    assert not MetaAppConfig.objects.filter(phone_number_id="109876543210987").exists()


def test_handing_a_contact_to_a_human_in_admin_records_the_time(admin_client, conversation):
    response = admin_client.post(f"/admin/conversations/contact/{conversation.pk}/change/", {
        "name": "", "email": "", "app_config": conversation.app_config_id, "needs_human": "on",
        "attributes": "{}",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    conversation.refresh_from_db()
    assert conversation.needs_human and conversation.handover_at is not None


def test_inbound_messages_whose_processing_failed_are_listed_for_operators(admin_client, conversation):
    poison = Message.objects.create(
        contact=conversation, direction=Direction.INBOUND, message_type="text", text="the message that broke",
        wamid=simulate.new_wamid(), status=MessageStatus.FAILED, attempts=5, error_title="Processing failed",
        error_details="ValueError: no reply could be built",
    )
    listing = admin_client.get("/admin/conversations/message/?processing=failed").content.decode()
    assert "the message that broke" in listing
    assert "show me fixtures" not in listing  # processed normally
    assert "Saturday: Dynamos v CAPS United" not in listing  # an outbound failure is the Failed messages list's
    timeline = admin_client.get(f"/admin/conversations/contact/{conversation.pk}/change/").content.decode()
    assert "failed (Processing failed)" in timeline
    assert admin_client.get(f"/admin/conversations/message/{poison.pk}/change/").status_code == 200
    pending = admin_client.get("/admin/conversations/message/?processing=pending").content.decode()
    assert "the message that broke" not in pending
