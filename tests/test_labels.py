"""Labels on contacts, as operators use them: the admin's label list, the contact list's label
column, filter and bulk "Add label…" / "Remove label…" (with the page that asks which label),
and the REST API's label endpoints, including every kind of bad input (refused whole, nothing
changed). Permissions per role are in test_api's matrix."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission, User
from django.urls import include, path
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from conversations.models import Contact, Label
from conversations.services.labels import LabelError, change_labels
from tests.support.inbound import make_app_config
from whatsappcrm_backend.api import AGENT_GROUP, READ_ONLY_GROUP, ensure_role_groups

urlpatterns = [path("api/", include("whatsappcrm_backend.api")), path("admin/", admin.site.urls)]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

CONTACTS_URL = "/admin/conversations/contact/"


@pytest.fixture
def contacts(db) -> list[Contact]:
    config = make_app_config()
    return [
        Contact.objects.create(wa_id=f"26377100000{i}", profile_name=name, app_config=config)
        for i, name in enumerate(["Tendai", "Chipo", "Farai", "Rudo"])
    ]


@pytest.fixture
def vip(db) -> Label:
    return Label.objects.create(name="vip", color="#16a34a")


@pytest.fixture
def bettor(db) -> Label:
    return Label.objects.create(name="weekend-bettor", color="#dc2626")


def labels_of(contact: Contact) -> list[str]:
    return sorted(contact.labels.values_list("name", flat=True))


def links() -> list[tuple[int, int]]:
    return sorted(Contact.labels.through.objects.values_list("contact_id", "label_id"))


# --------------------------------------------------------------------------- the service


def test_change_labels_adds_once_and_removes(contacts, vip, bettor):
    first, second = contacts[0].pk, contacts[1].pk
    done = change_labels([first, second], add=[vip.pk, bettor.pk])
    assert (done.contacts, done.added, done.removed) == (2, 4, 0)
    again = change_labels([first, second], add=[vip.pk])
    assert again.added == 0  # already there: nothing new, no error
    done = change_labels([first], remove=[vip.pk, bettor.pk])
    assert (done.added, done.removed) == (0, 2)
    assert labels_of(contacts[0]) == [] and labels_of(contacts[1]) == ["vip", "weekend-bettor"]


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda c, label: change_labels([c, 999_999], add=[label]), "contacts"),
        (lambda c, label: change_labels([c], add=[label, 999_999]), "add"),
        (lambda c, label: change_labels([c], remove=[999_999]), "remove"),
        (lambda c, label: change_labels([c], add=[label], remove=[label]), "remove"),
    ],
    ids=["unknown contact", "unknown label to add", "unknown label to remove", "added and removed"],
)
def test_change_labels_refuses_bad_ids_whole(contacts, vip, call, field):
    change_labels([contacts[2].pk], add=[vip.pk])
    before = links()
    with pytest.raises(LabelError) as raised:
        call(contacts[0].pk, vip.pk)
    assert raised.value.field == field
    assert links() == before


def test_marketable_contacts_exclude_opted_out_and_blocked(contacts):
    Contact.objects.filter(pk=contacts[1].pk).update(marketing_opt_out=True)
    Contact.objects.filter(pk=contacts[2].pk).update(blocked=True)
    assert sorted(Contact.objects.marketable().values_list("pk", flat=True)) == [contacts[0].pk, contacts[3].pk]


# --------------------------------------------------------------------------- admin


def test_label_list_shows_swatch_and_contact_count(admin_client, contacts, vip, bettor):
    change_labels([c.pk for c in contacts[:3]], add=[vip.pk])
    page = admin_client.get("/admin/conversations/label/").content.decode()
    assert "background:#16a34a" in page and "background:#dc2626" in page
    assert '<td class="field-contact_count">3</td>' in page
    assert '<td class="field-contact_count">0</td>' in page


def test_label_admin_refuses_a_colour_that_is_not_hex(admin_client):
    response = admin_client.post("/admin/conversations/label/add/", {"name": "vip", "color": "green"})
    assert response.status_code == 200  # the form again, with the error
    assert not Label.objects.exists()


def test_contact_list_shows_labels_and_filters_by_label(admin_client, contacts, vip, bettor):
    change_labels([contacts[0].pk], add=[vip.pk, bettor.pk])
    change_labels([contacts[1].pk], add=[bettor.pk])
    page = admin_client.get(CONTACTS_URL).content.decode()
    assert ">vip</span>" in page and ">weekend-bettor</span>" in page
    filtered = admin_client.get(CONTACTS_URL, {"labels__id__exact": vip.pk})
    assert [c.pk for c in filtered.context["cl"].result_list] == [contacts[0].pk]
    filtered = admin_client.get(CONTACTS_URL, {"labels__id__exact": bettor.pk})
    assert sorted(c.pk for c in filtered.context["cl"].result_list) == [contacts[0].pk, contacts[1].pk]


def _action(admin_client, action: str, selected: list[int], **extra: Any):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in selected], **extra}
    return admin_client.post(CONTACTS_URL, data)


def test_bulk_add_label_asks_which_label_then_adds_it(admin_client, contacts, vip, bettor):
    chosen = [contacts[0].pk, contacts[2].pk]
    page = _action(admin_client, "add_label", chosen)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Add a label to 2 selected contacts" in html
    assert 'name="label"' in html and ">vip</option>" in html and ">weekend-bettor</option>" in html
    assert links() == []  # asking changes nothing

    change_labels([contacts[0].pk], add=[vip.pk])  # one of them has it already
    done = _action(admin_client, "add_label", chosen, apply="1", label=str(vip.pk))
    assert done.status_code == 302
    assert labels_of(contacts[0]) == ["vip"] and labels_of(contacts[2]) == ["vip"]
    assert labels_of(contacts[1]) == []
    messages = [str(m) for m in admin_client.get(done["Location"]).context["messages"]]
    assert messages == ["Added label “vip” to 1 contact (1 already had it)."]


def test_bulk_remove_label_takes_it_off_the_selected_contacts_only(admin_client, contacts, vip):
    change_labels([c.pk for c in contacts], add=[vip.pk])
    assert "Remove a label from 2 selected contacts" in _action(
        admin_client, "remove_label", [contacts[1].pk, contacts[3].pk]
    ).content.decode()
    done = _action(admin_client, "remove_label", [contacts[1].pk, contacts[3].pk], apply="1", label=str(vip.pk))
    assert done.status_code == 302
    assert [labels_of(c) for c in contacts] == [["vip"], [], ["vip"], []]


def test_bulk_add_to_every_contact_of_a_filtered_list(admin_client, contacts, vip, bettor):
    """"Select all N" on a filtered list: the label goes to every contact the filter matches."""
    change_labels([contacts[1].pk, contacts[2].pk], add=[bettor.pk])
    url = f"{CONTACTS_URL}?labels__id__exact={bettor.pk}"
    data = {"action": "add_label", ACTION_CHECKBOX_NAME: [str(contacts[1].pk)], "select_across": "1"}
    assert "to 2 selected contacts" in admin_client.post(url, data).content.decode()
    assert admin_client.post(url, {**data, "apply": "1", "label": str(vip.pk)}).status_code == 302
    assert [labels_of(c) for c in contacts] == [[], ["vip", "weekend-bettor"], ["vip", "weekend-bettor"], []]


def test_bulk_add_with_an_unknown_label_shows_the_form_again_and_changes_nothing(admin_client, contacts, vip):
    page = _action(admin_client, "add_label", [contacts[0].pk], apply="1", label="999999")
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    assert links() == []


def test_a_staff_member_who_may_only_view_contacts_cannot_label_them(client, contacts, vip):
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_contact", "view_label"]))
    client.force_login(viewer)
    page = client.get(CONTACTS_URL)
    assert page.status_code == 200 and "add_label" not in page.content.decode()
    _action(client, "add_label", [contacts[0].pk], apply="1", label=str(vip.pk))
    assert links() == []


def test_contact_page_shows_labels_and_marketing_consent_read_only(admin_client, contacts, vip):
    change_labels([contacts[0].pk], add=[vip.pk])
    page = admin_client.get(f"{CONTACTS_URL}{contacts[0].pk}/change/").content.decode()
    assert 'name="labels"' in page
    assert 'name="marketing_opt_out"' not in page  # consent changes only through STOP/START and Meta


# --------------------------------------------------------------------------- REST API


@pytest.fixture
def api() -> dict[str, APIClient]:
    ensure_role_groups()
    clients = {}
    for name, group in (("agent", AGENT_GROUP), ("readonly", READ_ONLY_GROUP)):
        user = User.objects.create_user(f"{name}.user")
        user.groups.add(Group.objects.get(name=group))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        clients[name] = client
    return clients


def error(response) -> dict[str, Any]:
    return response.json()["error"]


def test_api_lists_labels_with_contact_counts(api, contacts, vip, bettor):
    change_labels([contacts[0].pk, contacts[1].pk], add=[vip.pk])
    body = api["readonly"].get("/api/labels/").json()
    assert [(r["name"], r["color"], r["contact_count"]) for r in body["results"]] == [
        ("vip", "#16a34a", 2), ("weekend-bettor", "#dc2626", 0),
    ]


def test_api_creates_a_label(api):
    response = api["agent"].post("/api/labels/", {"name": "  complaint ", "color": "#F59E0B"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "complaint" and response.json()["contact_count"] == 0
    assert Label.objects.get().color == "#F59E0B"
    assert api["agent"].post("/api/labels/", {"name": "plain"}, format="json").json()["color"] == "#64748b"


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"name": "vip"}, 409, "name"),
        ({"name": ""}, 400, "name"),
        ({"name": "   "}, 400, "name"),
        ({"name": 12}, 400, "name"),
        ({"name": "x" * 51}, 400, "name"),
        ({"name": "green", "color": "green"}, 400, "color"),
        ({"name": "green", "color": "#12345"}, 400, "color"),
        ({"name": "green", "color": "#1234567"}, 400, "color"),
        ({}, 400, "name"),
    ],
)
def test_api_label_create_refuses_bad_input(api, vip, body, status, field):
    response = api["agent"].post("/api/labels/", body, format="json")
    assert response.status_code == status, response.content
    assert field in error(response)["fields"]
    assert list(Label.objects.values_list("name", flat=True)) == ["vip"]


def test_api_adds_and_removes_labels_on_one_contact(api, contacts, vip, bettor):
    url = f"/api/contacts/{contacts[0].pk}/labels/"
    response = api["agent"].post(url, {"add": [vip.pk, bettor.pk]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["added"] == 2
    assert [label["name"] for label in response.json()["labels"]] == ["vip", "weekend-bettor"]
    response = api["agent"].post(url, {"remove": [vip.pk]}, format="json")
    assert (response.json()["removed"], [label["name"] for label in response.json()["labels"]]) == (
        1, ["weekend-bettor"],
    )
    detail = api["readonly"].get(f"/api/contacts/{contacts[0].pk}/").json()
    assert detail["labels"] == [{"id": bettor.pk, "name": "weekend-bettor", "color": "#dc2626"}]
    assert detail["marketing_opt_out"] is False and detail["marketing_opt_out_at"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "add"),
        ({"add": []}, "add"),
        ({"add": ["vip"]}, "add[0]"),
        ({"add": [0]}, "add[0]"),
        ({"add": "BARE"}, "add"),
        ({"add": [999_999]}, "add"),
        ({"remove": [999_999]}, "remove"),
        ({"add": "VIP", "remove": "VIP"}, "remove"),
        ({"add": list(range(1, 52))}, "add"),
    ],
    ids=["nothing", "empty", "a name", "zero", "not a list", "unknown to add", "unknown to remove",
         "added and removed", "too many"],
)
def test_api_contact_label_change_refuses_bad_input(api, contacts, vip, body, field):
    replace = {"VIP": [vip.pk], "BARE": vip.pk}
    body = {key: replace.get(value, value) if isinstance(value, str) else value for key, value in body.items()}
    change_labels([contacts[1].pk], add=[vip.pk])
    before = links()
    response = api["agent"].post(f"/api/contacts/{contacts[0].pk}/labels/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"], error(response)
    assert links() == before


def test_api_label_change_for_an_unknown_contact_is_404(api, vip):
    response = api["agent"].post("/api/contacts/999999/labels/", {"add": [vip.pk]}, format="json")
    assert response.status_code == 404
    assert links() == []


def test_api_bulk_adds_and_removes_labels(api, contacts, vip, bettor):
    ids = [c.pk for c in contacts[:3]]
    response = api["agent"].post("/api/contacts/labels/", {"contacts": ids, "add": [vip.pk, bettor.pk]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"contacts": 3, "added": 6, "removed": 0}
    response = api["agent"].post(
        "/api/contacts/labels/", {"contacts": ids[1:], "remove": [bettor.pk]}, format="json"
    )
    assert response.json() == {"contacts": 2, "added": 0, "removed": 2}
    assert [labels_of(c) for c in contacts] == [["vip", "weekend-bettor"], ["vip"], ["vip"], []]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"add": "VIP"}, "contacts"),
        ({"contacts": [], "add": "VIP"}, "contacts"),
        ({"contacts": "1,2", "add": "VIP"}, "contacts"),
        ({"contacts": "MISSING", "add": "VIP"}, "contacts"),
        ({"contacts": "ALL", "add": [999_999]}, "add"),
        ({"contacts": "ALL"}, "add"),
        ({"contacts": list(range(1, 1002)), "add": "VIP"}, "contacts"),
    ],
    ids=["no contacts", "empty contacts", "contacts not a list", "an unknown contact", "an unknown label", "nothing to do",
         "too many contacts"],
)
def test_api_bulk_label_change_refuses_bad_input_and_changes_nothing(api, contacts, vip, body, field):
    ids = [c.pk for c in contacts]
    replace = {"VIP": [vip.pk], "ALL": ids, "MISSING": [*ids, 999_999]}
    body = {key: replace.get(value, value) if isinstance(value, str) else value for key, value in body.items()}
    response = api["agent"].post("/api/contacts/labels/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"], error(response)
    assert links() == []


def test_api_contact_list_filters_by_label(api, contacts, vip):
    change_labels([contacts[1].pk, contacts[3].pk], add=[vip.pk])
    body = api["readonly"].get("/api/contacts/", {"label": vip.pk}).json()
    assert sorted(r["id"] for r in body["results"]) == [contacts[1].pk, contacts[3].pk]
    assert all(r["labels"][0]["name"] == "vip" for r in body["results"])


@pytest.mark.parametrize("value, status", [("999999", 404), ("vip", 400), ("0", 400), ("-1", 400)])
def test_api_contact_list_refuses_a_bad_label_filter(api, contacts, vip, value, status):
    response = api["readonly"].get("/api/contacts/", {"label": value})
    assert response.status_code == status
    assert "label" in error(response)["fields"]
