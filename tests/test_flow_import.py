"""Flow import/export: idempotent, all-or-nothing, round-trips exactly, keeps conversations.

Invalid documents are refused with the reason and the field path, and nothing at all is
written (not even the valid flows of the same document or of earlier files).
"""

from __future__ import annotations

import copy
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from conversations.models import Direction, Message
from devtools.seed import seed_flows
from flows import services
from flows.definitions import FlowValidationError
from flows.models import ContactFlowState, Flow, FlowStep, FlowTransition
from tests.support.flows import (
    FEEDBACK_FLOW,
    Chat,
    business,
    flow_doc,
    go,
    step,
    text_spec,
    texts,
)

pytestmark = pytest.mark.django_db

CORE = services.DEFAULT_FLOWS_DIR / "core.json"


def snapshot() -> dict[str, Any]:
    """Every flow row, for "nothing was written" assertions."""
    return {
        "flows": list(Flow.objects.order_by("pk").values("pk", "name", "description", "active", "trigger_keywords",
                                                         "updated_at")),
        "steps": list(FlowStep.objects.order_by("pk").values()),
        "transitions": list(FlowTransition.objects.order_by("pk").values()),
    }


def write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# Defaults, idempotency, round trip
# ---------------------------------------------------------------------------------------


def test_the_default_flows_load_and_reloading_changes_nothing(default_flows):
    assert sorted(Flow.objects.values_list("name", flat=True)) == ["help", "human", "main_menu", "profile"]
    before = snapshot()
    summary = services.import_flow_files(services.default_flow_paths())
    assert (summary.created, summary.updated) == ((), ())
    assert sorted(summary.unchanged) == ["help", "human", "main_menu", "profile"]
    assert snapshot() == before
    assert seed_flows() == "0 created, 0 updated, 4 unchanged, 0 session(s) reset"


def test_export_matches_the_shipped_file(default_flows, tmp_path):
    """Same flows, steps and transitions in the same order. (Byte-identical on SQLite; PostgreSQL's
    jsonb reorders the keys inside a config, which JSON does not give a meaning to.)"""
    output = tmp_path / "export.json"
    call_command("export_flows", "--output", str(output), stderr=StringIO())
    assert json.loads(output.read_text(encoding="utf-8")) == json.loads(CORE.read_text(encoding="utf-8"))


def test_export_then_import_then_export_is_byte_identical(default_flows, tmp_path):
    services.import_flow_document(flow_doc(FEEDBACK_FLOW))
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    call_command("export_flows", "--output", str(first), stderr=StringIO())
    Flow.objects.all().delete()
    call_command("import_flows", str(first), stdout=StringIO())
    call_command("export_flows", "--output", str(second), stderr=StringIO())
    assert second.read_bytes() == first.read_bytes()
    named = services.export_flow_document(["feedback", "help"])
    assert [f["name"] for f in named["flows"]] == ["feedback", "help"]
    assert named["flows"][0] == {**FEEDBACK_FLOW, "steps": named["flows"][0]["steps"]}


def test_exporting_an_unknown_flow_names_it(default_flows):
    out = StringIO()
    with pytest.raises(CommandError, match="'nope'"):
        call_command("export_flows", "help", "nope", stdout=out)
    call_command("export_flows", "help", stdout=out)
    assert json.loads(out.getvalue())["flows"][0]["name"] == "help"


def test_import_command_reports_what_it_did(tmp_path, db):
    out = StringIO()
    call_command("import_flows", "--defaults", str(write(tmp_path, "fb.json", flow_doc(FEEDBACK_FLOW))), stdout=out)
    assert "5 created, 0 updated, 0 unchanged" in out.getvalue()
    with pytest.raises(CommandError, match="nothing to import"):
        call_command("import_flows", stdout=out)


# ---------------------------------------------------------------------------------------
# Updating a flow under live conversations
# ---------------------------------------------------------------------------------------


def test_reimporting_a_changed_flow_updates_it_in_place_and_keeps_contacts_in_it(default_flows):
    config = business()
    chat = Chat(config)
    chat.say("profile")
    chat.say("Baraka")
    assert chat.where == ("profile", "ask_email")
    state_before = chat.state
    step_ids = dict(FlowStep.objects.filter(flow__name="profile").values_list("name", "pk"))

    doc = json.loads(CORE.read_text(encoding="utf-8"))
    profile = next(f for f in doc["flows"] if f["name"] == "profile")
    ask_email = next(s for s in profile["steps"] if s["name"] == "ask_email")
    ask_email["config"]["invalid_hint"] = "That email looks off; try name@example.com."
    summary = services.import_flow_document(doc)

    assert (summary.updated, summary.sessions_reset) == (("profile",), 0)
    assert dict(FlowStep.objects.filter(flow__name="profile").values_list("name", "pk")) == step_ids
    state = chat.state
    assert (state.pk, state.version, state.variables) == (state_before.pk, state_before.version, {"name": "Baraka"})
    assert texts(chat.say("not-an-email"))[0] == "That email looks off; try name@example.com."
    assert texts(chat.say("baraka@example.com"))[0].startswith("Thanks Baraka")


def test_a_contact_whose_step_was_removed_is_told_the_flow_changed(default_flows):
    config = business()
    on_removed, on_kept = Chat(config), Chat(config)
    on_removed.say("profile")
    on_removed.say("Njeri")  # waiting at ask_email
    on_kept.say("profile")  # waiting at ask_name

    doc = json.loads(CORE.read_text(encoding="utf-8"))
    profile = next(f for f in doc["flows"] if f["name"] == "profile")
    profile["steps"] = [s for s in profile["steps"] if s["name"] not in ("ask_email", "save", "done")]
    profile["transitions"] = [go("ask_name", "save_name_only"), go("save_name_only", "email_failed")]
    summary = services.import_flow_document(doc)

    assert summary.sessions_reset == 1
    assert on_removed.state is None and on_kept.where == ("profile", "ask_name")
    notice = Message.objects.filter(contact=on_removed.contact, direction=Direction.OUTBOUND).order_by("pk").last()
    assert notice.content["body"] == settings.FLOW_CHANGED_TEXT
    assert "I've saved your name" in texts(on_kept.say("Odhiambo"))[0]
    assert on_kept.contact.name == "Odhiambo"


def test_switching_a_flow_off_tells_the_contacts_in_it(default_flows):
    chat = Chat(business())
    chat.say("profile")
    doc = json.loads(CORE.read_text(encoding="utf-8"))
    next(f for f in doc["flows"] if f["name"] == "profile")["active"] = False
    assert services.import_flow_document(doc).sessions_reset == 1
    assert chat.state is None
    assert "Sorry, I didn't quite catch that" in texts(chat.say("profile"))[0]  # no longer a trigger


# ---------------------------------------------------------------------------------------
# Invalid documents: the reason, and nothing written
# ---------------------------------------------------------------------------------------


def valid_flow(name: str = "survey") -> dict[str, Any]:
    return {
        "name": name,
        "trigger_keywords": [name],
        "steps": [
            step("ask", "question", {"prompt": text_spec("Your code?"), "save_to": "code",
                                     "expect": {"type": "regex", "pattern": "[A-Z]{3}"}}, entry=True),
            step("done", "end_flow", {"message": text_spec("Got {{ code }}")}),
        ],
        "transitions": [go("ask", "done")],
    }


def broken(mutate) -> dict[str, Any]:
    flow = copy.deepcopy(valid_flow())
    mutate(flow)
    return flow


INVALID = {
    "unknown step type": (
        broken(lambda f: f["steps"][1].update(type="send_sms")),
        "flows[1].steps[1].type: unknown step type 'send_sms'",
    ),
    "transition to a missing step": (
        broken(lambda f: f["transitions"].append(go("ask", "nowhere", order=1))),
        "flows[1].transitions[1].to: step 'nowhere' does not exist",
    ),
    "two entry points": (
        broken(lambda f: f["steps"][1].update(entry=True)),
        "flows[1].steps: 2 entry steps (steps[0], steps[1]); exactly one is allowed",
    ),
    "bad regex": (
        broken(lambda f: f["steps"][0]["config"]["expect"].update(pattern="[A-Z{3")),
        "flows[1].steps[0].config.expect.pattern",
    ),
    "duplicate transition order": (
        broken(lambda f: f["transitions"].append(go("ask", "ask", {"type": "keyword", "keywords": ["again"]}))),
        "flows[1].transitions[1].order: order 0 is already used by transitions[0] from step 'ask'",
    ),
    "unregistered action": (
        broken(lambda f: f["steps"].insert(1, step("bet", "action", {"operation": "call", "action": "bets.place"}))),
        "flows[1].steps[1].config.action: no action named 'bets.place' is registered",
    ),
    "trigger taken by a stored flow": (
        broken(lambda f: f["trigger_keywords"].append("Profile")),
        "flows[1].trigger_keywords[1]: trigger 'Profile' is already used by active flow 'profile'",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_flow_is_refused_with_the_reason_and_nothing_is_written(default_flows, case):
    bad_flow, reason = INVALID[case]
    before = snapshot()
    document = flow_doc(valid_flow("other_valid_flow"), bad_flow)
    with pytest.raises(FlowValidationError) as error:
        services.import_flow_document(document, source="broken.json")
    assert any(str(e).startswith(f"broken.json: {reason}") for e in error.value.errors), error.value.errors
    assert snapshot() == before


def test_an_update_that_breaks_a_flow_leaves_the_stored_flow_untouched(default_flows):
    doc = json.loads(CORE.read_text(encoding="utf-8"))
    doc["flows"][3]["steps"][0]["type"] = "ask"
    before = snapshot()
    with pytest.raises(FlowValidationError, match=r"flows\[3\]\.steps\[0\]\.type: unknown step type 'ask'"):
        services.import_flow_document(doc)
    assert snapshot() == before


def test_one_bad_file_and_no_file_is_imported(tmp_path, db):
    good = write(tmp_path, "good.json", flow_doc(valid_flow()))
    bad = write(tmp_path, "bad.json", '{"version": 1, "flows": [}')
    with pytest.raises(CommandError) as error:
        call_command("import_flows", str(good), str(bad), stdout=StringIO())
    assert "nothing imported; 1 problem(s)" in str(error.value)
    assert f"{bad}: not valid JSON: Expecting value (line 1, column 26)" in str(error.value)
    assert not Flow.objects.exists()


def test_the_command_lists_every_problem_with_its_file(tmp_path, db):
    doc = flow_doc(broken(lambda f: (f["steps"][1].update(type="send_sms"), f["steps"][1].update(entry=True))))
    with pytest.raises(CommandError) as error:
        call_command("import_flows", str(write(tmp_path, "two.json", doc)), stdout=StringIO())
    message = str(error.value)
    assert "2 problem(s)" in message
    assert "two.json: flows[0].steps[1].type: unknown step type 'send_sms'" in message
    assert "two.json: flows[0].steps: 2 entry steps" in message
    assert not Flow.objects.exists()


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], 'document must be an object {"version": 1, "flows": [...]}'),
        ({"version": 2, "flows": []}, "version: unsupported version 2 (expected 1)"),
        ({"version": 1, "flows": [valid_flow(), valid_flow()]}, "flows[1].name: duplicate flow name 'survey'"),
    ],
)
def test_malformed_documents_are_refused(db, document, reason):
    with pytest.raises(FlowValidationError) as error:
        services.import_flow_document(document)
    assert reason in str(error.value)
    assert not Flow.objects.exists()


def test_imported_sessions_survive_only_for_their_own_flow(default_flows):
    """Replacing another flow never touches sessions of this one."""
    chat = Chat(business())
    chat.say("profile")
    services.import_flow_document(flow_doc(FEEDBACK_FLOW))
    changed = copy.deepcopy(FEEDBACK_FLOW)
    changed["steps"] = changed["steps"][:1] + changed["steps"][2:]
    changed["transitions"] = [go("rate", "thanks")]
    services.import_flow_document(flow_doc(changed))
    assert chat.where == ("profile", "ask_name")
    assert ContactFlowState.objects.count() == 1
