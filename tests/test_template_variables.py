"""Filling a template's variables (meta_integration/templates.py): which slots a template has,
the spec built from values, and each class of bad values refused with the slot named."""

from __future__ import annotations

import pytest

from devtools.fake_graph_assets import default_templates
from meta_integration.models import MessageTemplate, TemplateStatus
from meta_integration.outbound import OutboundValidationError, build_message
from meta_integration.templates import TemplateVariablesError, build_template_spec, template_slots

TEMPLATES = {(t["name"], t["language"]): t for t in default_templates()}


def components(name: str, language: str = "en_US") -> list[dict]:
    return TEMPLATES[(name, language)]["components"]


def keys(name: str) -> list[str]:
    return [slot.key for slot in template_slots(components(name))]


def test_slots_positional_body():
    slots = template_slots(components("bet_settled"))
    assert [(s.key, s.component, s.kind, s.example) for s in slots] == [
        ("body.1", "body", "text", "Tendai"), ("body.2", "body", "text", "$12.50")]


def test_slots_named_body():
    assert keys("welcome_named") == ["body.first_name", "body.amount"]


def test_slots_text_header_then_body():
    assert keys("kickoff_alert") == ["header.1", "body.1", "body.2"]
    assert template_slots(components("kickoff_alert"))[0].example == "Arsenal v Chelsea"


def test_slots_media_header():
    [header, body] = template_slots(components("promo_banner"))
    assert (header.key, header.kind, header.label) == ("header.media", "image", "header image")
    assert body.key == "body.1"


def test_slots_url_button():
    [body, button] = template_slots(components("ticket_link"))
    assert body.key == "body.1"
    assert (button.key, button.button_index, button.label) == ("button.0.1", 0, "button 1 {{1}}")


def test_a_template_without_variables_has_no_slots():
    assert keys("hello_world") == [] and keys("weekly_odds") == []


def test_a_repeated_placeholder_is_one_slot():
    assert [s.key for s in template_slots([{"type": "BODY", "text": "{{1}} and {{1}} again, {{2}}"}])] == [
        "body.1", "body.2"]


def test_spec_for_every_kind_of_slot_is_what_meta_expects():
    spec = build_template_spec("promo_banner", "en_US", components("promo_banner"),
                               {"header.media": "https://cdn.example.com/b.jpg", "body.1": "the derby"})
    assert spec == {"type": "template", "name": "promo_banner", "language": "en_US", "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/b.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "the derby"}]}]}
    build_message("263771234567", spec)  # and the sender accepts it
    by_id = build_template_spec("promo_banner", "en_US", components("promo_banner"),
                                {"header.media": "1479537139650973", "body.1": "x"})
    assert by_id["components"][0]["parameters"][0] == {"type": "image", "image": {"id": "1479537139650973"}}
    link = build_template_spec("ticket_link", "en_US", components("ticket_link"),
                               {"body.1": "T-1", "button.0.1": "T-1"})
    assert link["components"][1] == {"type": "button", "sub_type": "url", "index": "0",
                                     "parameters": [{"type": "text", "text": "T-1"}]}
    header = build_template_spec("kickoff_alert", "en_US", components("kickoff_alert"),
                                 {"header.1": "Arsenal v Chelsea", "body.1": "17:30", "body.2": "15"})
    assert [c["type"] for c in header["components"]] == ["header", "body"]


def test_named_parameters_carry_their_names():
    spec = build_template_spec("welcome_named", "en_US", components("welcome_named"),
                               {"body.first_name": "Tendai", "body.amount": "$5"}, named=True)
    assert spec["components"][0]["parameters"] == [
        {"type": "text", "text": "Tendai", "parameter_name": "first_name"},
        {"type": "text", "text": "$5", "parameter_name": "amount"}]


@pytest.mark.parametrize(("name", "values", "field", "says"), [
    ("bet_settled", {"body.1": "Tendai"}, "template.body.2", "takes 2 variable(s) and 1 were given"),
    ("bet_settled", {"body.1": "a", "body.2": "b", "body.3": "c"}, "template.body.3", "has no variable"),
    ("hello_world", {"body.1": "x"}, "template.body.1", "it takes 0"),
    ("bet_settled", {"body.1": "  ", "body.2": "b"}, "template.body.1", "is empty"),
    ("bet_settled", {"body.1": None, "body.2": "b"}, "template.body.1", "is empty"),
    ("bet_settled", {"body.1": "x" * 1025, "body.2": "b"}, "template.body.1", "1025 characters (at most 1024)"),
    ("kickoff_alert", {"header.1": "x" * 61, "body.1": "a", "body.2": "b"}, "template.header.1", "at most 60"),
    ("bet_settled", {"body.1": "two\nlines", "body.2": "b"}, "template.body.1", "new lines"),
    ("bet_settled", {"body.1": "tab\there", "body.2": "b"}, "template.body.1", "tabs"),
    ("promo_banner", {"header.media": "not a link", "body.1": "b"}, "template.header.media", "https:// link"),
    ("promo_banner", {"header.media": "http://insecure.example.com/a.jpg", "body.1": "b"},
     "template.header.media", "https:// link"),
], ids=["too-few", "too-many", "none-expected", "blank", "null", "body-too-long", "header-too-long", "newline",
        "tab", "media-not-a-link", "media-http"])
def test_each_class_of_bad_values_is_refused_naming_the_slot(name, values, field, says):
    with pytest.raises(TemplateVariablesError) as caught:
        build_template_spec(name, "en_US", components(name), values)
    assert caught.value.field == field
    assert says in caught.value.message
    assert isinstance(caught.value, OutboundValidationError)  # callers that catch send errors catch it


@pytest.mark.parametrize("status", [s for s in TemplateStatus if s != TemplateStatus.APPROVED])
def test_a_template_not_approved_cannot_be_built(status):
    template = MessageTemplate(name="bet_settled", language="en_US", status=status,
                               components=components("bet_settled"))
    assert not template.is_sendable
    with pytest.raises(TemplateVariablesError, match="not approved"):
        template.build_spec({"body.1": "a", "body.2": "b"})


def test_an_approved_template_builds_through_the_model():
    template = MessageTemplate(name="welcome_named", language="en_US", status=TemplateStatus.APPROVED,
                               parameter_format="NAMED", components=components("welcome_named"))
    assert [s.key for s in template.slots()] == ["body.first_name", "body.amount"]
    spec = template.build_spec({"body.first_name": "Tendai", "body.amount": "$5"})
    assert spec["components"][0]["parameters"][0]["parameter_name"] == "first_name"
