"""Template sync against the fake Graph API: paging, templates removed upstream, rejected ones,
Meta's refusals (nothing changed), the admin's "Sync templates now", Beat; and the fake
refusing template sends as Meta does."""

from __future__ import annotations

import math

import httpx
import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.urls import reverse

from devtools.fake_graph import start_fake_graph
from devtools.fake_graph_assets import default_templates
from meta_integration import tasks
from meta_integration.models import MessageTemplate, MetaAppConfig, TemplateStatus
from meta_integration.templates import TemplateVariablesError
from meta_integration.templates_sync import TemplateSyncError, sync_templates
from whatsappcrm_backend import topology

pytestmark = pytest.mark.django_db

TOKEN = "EAAG-templates-token"
PHONE_ID = "109876543210987"
PAGE = 4


@pytest.fixture(scope="module")
def fake_server():
    """conftest's fake_server, with small template pages so paging is exercised."""
    fake, server = start_fake_graph(access_token=TOKEN, template_page_size=PAGE)
    yield fake, server.url
    server.stop()


@pytest.fixture
def config(fake, fake_server) -> MetaAppConfig:
    return MetaAppConfig.objects.create(
        name="Betting bot", phone_number_id=PHONE_ID, waba_id=fake.waba_id, access_token=TOKEN,
        app_secret="s", verify_token="v", api_version="v23.0", graph_api_url=fake_server[1],
    )


def stored() -> dict[tuple[str, str], MessageTemplate]:
    return {(t.name, t.language): t for t in MessageTemplate.objects.all()}


def template_calls(fake) -> list:
    return [r for r in fake.requests() if r.path.endswith("/message_templates")]


def test_a_sync_pages_through_every_template_and_stores_them(fake, config):
    upstream = fake.templates.list()
    result = sync_templates(config)
    assert (result.created, result.updated, result.deleted, result.total) == (len(upstream), 0, 0, len(upstream))
    calls = template_calls(fake)
    assert len(calls) == math.ceil(len(upstream) / PAGE) > 1  # every page followed, once
    assert all(r.http_status == 200 for r in calls)
    templates = stored()
    assert set(templates) == {(t["name"], t["language"]) for t in upstream}
    for item in upstream:
        row = templates[(item["name"], item["language"])]
        assert (row.template_id, row.status, row.category, row.components) == (
            item["id"], item["status"], item["category"], item["components"])
        assert row.synced_at is not None and row.app_config == config
    assert templates[("welcome_named", "en_US")].parameter_format == "NAMED"
    assert templates[("bet_settled", "fr")].is_sendable  # the same name in another language is its own row


def test_a_rejected_template_is_stored_as_rejected_and_cannot_be_sent(fake, config):
    sync_templates(config)
    rejected = MessageTemplate.objects.get(name="free_bet_offer")
    assert (rejected.status, rejected.rejected_reason) == (TemplateStatus.REJECTED, "PROMOTIONAL")
    assert not rejected.is_sendable
    with pytest.raises(TemplateVariablesError, match="rejected, not approved"):
        rejected.build_spec({"body.1": "10"})
    assert MessageTemplate.objects.get(name="old_promo").status == TemplateStatus.PAUSED


def test_a_template_removed_upstream_is_marked_deleted_not_dropped(fake, config):
    sync_templates(config)
    assert fake.templates.remove("weekly_odds") == 1
    fake.templates.set_status("deposit_received", "en_US", "PAUSED")
    result = sync_templates(config)
    assert (result.deleted, result.updated, result.created) == (1, 1, 0)
    gone = MessageTemplate.objects.get(name="weekly_odds")
    assert gone.status == TemplateStatus.DELETED and not gone.is_sendable
    assert MessageTemplate.objects.get(name="deposit_received").status == TemplateStatus.PAUSED
    assert sync_templates(config).deleted == 0  # already marked: not counted again
    fake.templates.add({**next(t for t in default_templates() if t["name"] == "weekly_odds")})
    sync_templates(config)
    assert MessageTemplate.objects.get(name="weekly_odds").status == TemplateStatus.APPROVED
    assert MessageTemplate.objects.filter(name="weekly_odds").count() == 1


def test_meta_refusing_the_list_changes_nothing(fake, config):
    sync_templates(config)
    before = {key: (t.status, t.synced_at) for key, t in stored().items()}
    fake.templates.remove("bet_settled")
    MetaAppConfig.objects.filter(pk=config.pk).update(access_token="EAAG-revoked")
    config.refresh_from_db()
    with pytest.raises(TemplateSyncError, match="HTTP 401, code 190"):
        sync_templates(config)
    assert {key: (t.status, t.synced_at) for key, t in stored().items()} == before


def test_a_number_without_a_business_account_id_is_refused_clearly(fake, config):
    config.waba_id = ""
    with pytest.raises(TemplateSyncError, match="no WhatsApp Business Account id"):
        sync_templates(config)
    assert template_calls(fake) == []


def test_the_beat_task_syncs_every_active_number(fake, config):
    route = topology.TASKS["meta_integration.sync_templates"]
    assert route.queue == topology.IO_QUEUE and route.priority in (topology.Priority.NORMAL, topology.Priority.LOW)
    assert topology.BEAT_SCHEDULE["sync-message-templates"].task == "meta_integration.sync_templates"
    result = tasks.sync_templates()
    assert result[PHONE_ID].startswith(f"{len(fake.templates.list())} template(s) listed")
    assert MessageTemplate.objects.count() == len(fake.templates.list())


# ------------------------------------------------------------------ admin


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_admin_action_on_the_number_syncs_and_says_what_changed(fake, config, admin_client):
    response = admin_client.post(reverse("admin:meta_integration_metaappconfig_changelist"),
                                 {"action": "sync_templates_now", "_selected_action": [config.pk]}, follow=True)
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(f"{len(fake.templates.list())} new" in text for text in texts), texts
    assert MessageTemplate.objects.count() == len(fake.templates.list())


def test_admin_action_with_a_bad_token_shows_metas_error_and_changes_nothing(fake, config, admin_client):
    MetaAppConfig.objects.filter(pk=config.pk).update(access_token="EAAG-revoked")
    response = admin_client.post(reverse("admin:meta_integration_metaappconfig_changelist"),
                                 {"action": "sync_templates_now", "_selected_action": [config.pk]}, follow=True)
    [message] = [m for m in get_messages(response.wsgi_request)]
    assert message.level_tag == "error"
    assert "nothing changed" in str(message) and "Invalid OAuth access token" in str(message)
    assert MessageTemplate.objects.count() == 0


def test_the_template_list_has_a_sync_button_and_shows_variables(fake, config, admin_client):
    changelist = reverse("admin:meta_integration_messagetemplate_changelist")
    page = admin_client.get(changelist).content.decode()
    assert "Sync templates now" in page
    response = admin_client.post(reverse("admin:meta_integration_messagetemplate_sync"))
    assert response.status_code == 302 and response.url == changelist
    page = admin_client.get(changelist + "?status__exact=APPROVED").content.decode()
    assert "kickoff_alert" in page and "free_bet_offer" not in page
    kickoff = MessageTemplate.objects.get(name="kickoff_alert")
    detail = admin_client.get(reverse("admin:meta_integration_messagetemplate_change", args=[kickoff.pk]))
    assert "header.1" in detail.content.decode() and "body.2" in detail.content.decode()
    assert admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [kickoff.pk]}
                             ).status_code in (200, 302)
    assert MessageTemplate.objects.filter(pk=kickoff.pk).exists()  # read-only: no delete


# ------------------------------------------------------------------ the fake refuses sends as Meta does


def send(fake_server, name: str, language: str = "en_US", components: list | None = None) -> httpx.Response:
    template: dict = {"name": name, "language": {"code": language}}
    if components is not None:
        template["components"] = components
    return httpx.post(f"{fake_server[1]}/v23.0/{PHONE_ID}/messages", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"messaging_product": "whatsapp", "to": "263771234567", "type": "template",
                            "template": template})


def body(*texts: str) -> list[dict]:
    return [{"type": "body", "parameters": [{"type": "text", "text": t} for t in texts]}]


@pytest.mark.parametrize(("name", "language", "components", "status", "code"), [
    ("no_such_template", "en_US", None, 404, 132001),
    ("bet_settled", "de", body("a", "b"), 404, 132001),
    ("free_bet_offer", "en_US", body("10"), 404, 132001),  # rejected: as if it did not exist
    ("old_promo", "en_US", None, 400, 132015),
    ("legacy_menu", "en_US", None, 400, 132016),
    ("bet_settled", "en_US", body("Tendai"), 400, 132000),
    ("bet_settled", "en_US", None, 400, 132000),
    ("hello_world", "en_US", body("extra"), 400, 132000),
    ("promo_banner", "en_US", [{"type": "header", "parameters": [
        {"type": "video", "video": {"link": "https://example.com/a.mp4"}}]}, *body("x")], 400, 132012),
], ids=["unknown", "other-language", "rejected", "paused", "disabled", "too-few", "none", "too-many",
        "wrong-media"])
def test_the_fake_refuses_template_sends_as_meta_does(fake, fake_server, name, language, components, status, code):
    response = send(fake_server, name, language, components)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert fake.messages() == []


def test_the_fake_accepts_a_fitting_template_send(fake, fake_server):
    response = send(fake_server, "ticket_link", components=[*body("T-1"), {
        "type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "T-1"}]}])
    assert response.status_code == 200, response.text
    assert response.json()["messages"][0]["message_status"] == "accepted"


def test_the_fakes_control_endpoints_add_and_remove_templates_and_media(fake, fake_server):
    base = fake_server[1]
    added = httpx.post(f"{base}/_fake/templates", json={
        "name": "cash_out", "language": "en_US", "status": "APPROVED",
        "components": [{"type": "BODY", "text": "You cashed out {{1}}."}]})
    assert added.status_code == 200 and added.json()["id"]
    names = [t["name"] for t in httpx.get(f"{base}/_fake/templates").json()["templates"]]
    assert "cash_out" in names
    assert httpx.delete(f"{base}/_fake/templates", params={"name": "cash_out"}).json() == {"removed": 1}
    assert httpx.post(f"{base}/_fake/templates", json={"name": "x"}).status_code == 400
    media_id = httpx.post(f"{base}/_fake/media", params={"mime_type": "image/png"}, content=b"\x89PNG\r\n\x1a\n").json()
    assert fake.media.get(media_id["id"])["mime_type"] == "image/png"
