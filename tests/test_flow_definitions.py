"""Flow documents: parsing, exact round trips, and every class of invalid document refused
with the field path and the reason."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.definitions import (
    FieldError,
    FlowDefinition,
    FlowValidationError,
    StepDefinition,
    StepType,
    TransitionDefinition,
)
from flows.document_format import flow_to_document, parse_flow_document, validate_flow
from flows.message_spec_validation import validate_message_spec
from flows.step_validation import validate_step_config

CORE = Path(__file__).resolve().parent.parent / "flows" / "default_flows" / "core.json"


def load_core() -> dict[str, Any]:
    return json.loads(CORE.read_text(encoding="utf-8"))


def signup_doc() -> dict[str, Any]:
    """A realistic flow using every step type, in canonical form."""
    return {
        "version": 1,
        "flows": [
            {
                "name": "signup",
                "description": "Registers a punter",
                "active": True,
                "trigger_keywords": ["register", "sign up"],
                "steps": [
                    {
                        "name": "welcome",
                        "type": "send_message",
                        "entry": True,
                        "config": {
                            "message": {"type": "text", "body": 'Welcome {{ contact.name | default:"there" }}!'}
                        },
                    },
                    {
                        "name": "ask_age",
                        "type": "question",
                        "entry": False,
                        "config": {
                            "prompt": {"type": "text", "body": "How old are you?"},
                            "expect": {"type": "number", "min": 0, "max": 120, "integer": True},
                            "save_to": "age",
                            "max_retries": 2,
                            "on_max_retries": "human",
                        },
                    },
                    {
                        "name": "ask_code",
                        "type": "question",
                        "entry": False,
                        "config": {
                            "prompt": {"type": "text", "body": "Promo code? (or type skip)"},
                            "expect": {"type": "regex", "pattern": "[A-Z]{3}[0-9]{2}", "ignore_case": True},
                            "save_to": "promo",
                        },
                    },
                    {
                        "name": "register",
                        "type": "action",
                        "entry": False,
                        "config": {
                            "operation": "call",
                            "action": "accounts.register",
                            "inputs": {"age": "{{ age }}", "promo": '{{ promo | default:"" }}'},
                            "save_as": "account",
                        },
                    },
                    {
                        "name": "too_young",
                        "type": "end_flow",
                        "entry": False,
                        "config": {"message": {"type": "text", "body": "Sorry, you must be 18 or over."}},
                    },
                    {"name": "done", "type": "end_flow", "entry": False, "config": {}},
                    {"name": "human", "type": "human_handover", "entry": False, "config": {}},
                ],
                "transitions": [
                    {"from": "welcome", "to": "ask_age", "order": 0, "condition": {"type": "always"}},
                    {
                        "from": "ask_age",
                        "to": "too_young",
                        "order": 0,
                        "condition": {"type": "variable_compare", "variable": "age", "op": "lt", "value": 18},
                    },
                    {"from": "ask_age", "to": "ask_code", "order": 1, "condition": {"type": "always"}},
                    {
                        "from": "ask_code",
                        "to": "register",
                        "order": 0,
                        "condition": {"type": "keyword", "keywords": ["skip"]},
                    },
                    {
                        "from": "ask_code",
                        "to": "register",
                        "order": 1,
                        "condition": {"type": "answer_valid", "valid": True},
                    },
                    {"from": "register", "to": "done", "order": 0, "condition": {"type": "always"}},
                ],
            }
        ],
    }


def problems(doc: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(FlowValidationError) as info:
        parse_flow_document(doc, **kwargs)
    assert info.value.errors, "a validation error must list its problems"
    assert all(isinstance(error, FieldError) for error in info.value.errors)
    return [str(error) for error in info.value.errors]


# ------------------------------------------------------------------ happy path


def test_core_flows_parse() -> None:
    flows = {flow.name: flow for flow in parse_flow_document(load_core())}
    assert set(flows) == {"main_menu", "help", "human", "profile"}
    menu = flows["main_menu"]
    assert menu.trigger_keywords == ("hi", "hello", "hey", "start", "menu")
    assert menu.entry_step == "menu"
    assert menu.steps["menu"].type is StepType.QUESTION
    rows = menu.steps["menu"].config["prompt"]["sections"][0]["rows"]
    assert [row["id"] for row in rows] == ["fixtures", "wallet", "profile", "help", "human"]
    assert flows["human"].trigger_keywords == ("human", "agent")
    assert flows["profile"].steps["ask_email"].config["max_retries"] == 3


def test_canonical_document_round_trips_exactly() -> None:
    for doc in (load_core(), signup_doc()):
        flows = parse_flow_document(doc)
        assert flow_to_document(flows) == doc
        assert parse_flow_document(flow_to_document(flows)) == flows
        # ...and survives JSON, as an export file would.
        assert parse_flow_document(json.loads(json.dumps(flow_to_document(flows)))) == flows


def test_omitted_optional_fields_get_defaults_and_export_canonically() -> None:
    doc = {
        "version": 1,
        "flows": [
            {
                "name": "ping",
                "steps": [
                    {
                        "name": "a",
                        "type": "send_message",
                        "entry": True,
                        "config": {"message": {"type": "text", "body": "pong"}},
                    },
                    {"name": "b", "type": "end_flow"},
                ],
                "transitions": [{"from": "a", "to": "b"}],
            }
        ],
    }
    (flow,) = parse_flow_document(doc)
    assert flow.description == "" and flow.active is True and flow.trigger_keywords == ()
    exported = flow_to_document([flow])["flows"][0]
    assert exported["steps"][1] == {"name": "b", "type": "end_flow", "entry": False, "config": {}}
    assert exported["transitions"] == [{"from": "a", "to": "b", "order": 0, "condition": {"type": "always"}}]


def test_records_are_deeply_immutable() -> None:
    (flow,) = parse_flow_document(signup_doc())
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        flow.steps["extra"] = flow.steps["done"]  # type: ignore[index]
    with pytest.raises(TypeError):
        flow.steps["register"].config["inputs"]["age"] = 99  # type: ignore[index]


def test_transitions_from_are_in_order_not_storage_order() -> None:
    flow = FlowDefinition(
        name="f",
        steps={"a": StepDefinition("a", StepType.END_FLOW)},
        transitions=(
            TransitionDefinition("a", "c", order=5),
            TransitionDefinition("a", "b", order=1),
            TransitionDefinition("x", "y", order=0),
        ),
        entry_step="a",
    )
    assert [t.to_step for t in flow.transitions_from("a")] == ["b", "c"]


def test_records_built_from_rows_validate_like_documents() -> None:
    """The Django layer builds records from rows; validate_flow runs the import checks."""
    steps = {
        "ask": StepDefinition(
            "ask", "question", {"prompt": {"type": "text", "body": "Email?"}, "expect": "email", "save_to": "email"}
        ),
        "bye": StepDefinition("bye", "end_flow", {"message": {"type": "text", "body": "Saved {{ email }}"}}),
    }
    flow = FlowDefinition(
        name="email", steps=steps, transitions=(TransitionDefinition("ask", "bye"),), entry_step="ask"
    )
    assert steps["ask"].type is StepType.QUESTION  # a row's string type is coerced
    assert validate_flow(flow) == []
    broken = dataclasses.replace(flow, entry_step="nope", transitions=(TransitionDefinition("ask", "gone"),))
    messages = [str(error) for error in validate_flow(broken, path="flow")]
    assert "flow.entry_step: step 'nope' does not exist" in messages
    assert "flow.transitions[0].to: step 'gone' does not exist" in messages


def test_validate_step_config_for_model_clean() -> None:
    assert validate_step_config("send_message", {"message": {"type": "text", "body": "Hi"}}) == []
    assert [str(e) for e in validate_step_config("send_message", {})] == ["config.message: is required"]
    assert [str(e) for e in validate_step_config("teleport", {})] == [
        "type: unknown step type 'teleport' (known: send_message, question, action, human_handover, end_flow)"
    ]
    errors = validate_step_config(
        StepType.QUESTION,
        {"prompt": {"type": "text", "body": "Age?"}, "expect": "number", "on_max_retries": "nowhere"},
        step_names={"ask_age", "done"},
    )
    assert [str(e) for e in errors] == [
        'config.on_max_retries: step \'nowhere\' does not exist (use a step name, "handover" or "end")'
    ]


# ------------------------------------------------------------------ invalid documents

Mutation = Callable[[dict[str, Any]], None]


def _flow(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["flows"][0]


def _step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for step in _flow(doc)["steps"] if step["name"] == name)


def _make_spin_loop(doc: dict[str, Any]) -> None:
    """welcome -> register -> welcome, all unconditional: would spin on every message."""
    _flow(doc)["transitions"][0]["to"] = "register"
    _flow(doc)["transitions"][5]["to"] = "welcome"


INVALID: list[tuple[str, Mutation, str]] = [
    (
        "unknown step type",
        lambda d: _step(d, "done").update(type="teleport"),
        "flows[0].steps[5].type: unknown step type 'teleport'",
    ),
    ("missing step name", lambda d: _step(d, "done").pop("name"), "flows[0].steps[5].name: is required"),
    (
        "duplicate step name",
        lambda d: _step(d, "done").update(name="register"),
        "flows[0].steps[5].name: duplicate step name 'register'",
    ),
    (
        "no entry point",
        lambda d: _step(d, "welcome").update(entry=False),
        'flows[0].steps: no entry step: mark exactly one step with "entry": true',
    ),
    (
        "two entry points",
        lambda d: _step(d, "ask_age").update(entry=True),
        "flows[0].steps: 2 entry steps (steps[0], steps[1]); exactly one is allowed",
    ),
    (
        "transition to a missing step",
        lambda d: _flow(d)["transitions"][5].update(to="celebrate"),
        "flows[0].transitions[5].to: step 'celebrate' does not exist",
    ),
    (
        "transition from a missing step",
        lambda d: _flow(d)["transitions"][0].update({"from": "intro"}),
        "flows[0].transitions[0].from: step 'intro' does not exist",
    ),
    (
        "bad regex in a condition",
        lambda d: _flow(d)["transitions"][3].update(condition={"type": "regex", "pattern": "(skip"}),
        "flows[0].transitions[3].condition.pattern: invalid regular expression: missing ), unterminated subpattern",
    ),
    (
        "bad regex in question validation",
        lambda d: _step(d, "ask_code")["config"]["expect"].update(pattern="[A-Z{3"),
        "flows[0].steps[2].config.expect.pattern: invalid regular expression: unterminated character set",
    ),
    (
        "non-boolean ignore_case in a condition",
        lambda d: _flow(d)["transitions"][3].update(condition={"type": "regex", "pattern": "^x", "ignore_case": "y"}),
        "flows[0].transitions[3].condition.ignore_case: must be true or false",
    ),
    (
        "non-boolean ignore_case in question validation",
        lambda d: _step(d, "ask_code")["config"]["expect"].update(ignore_case=1),
        "flows[0].steps[2].config.expect.ignore_case: must be true or false",
    ),
    (
        "unknown condition type",
        lambda d: _flow(d)["transitions"][0].update(condition={"type": "sometimes"}),
        "flows[0].transitions[0].condition.type: unknown condition type 'sometimes'",
    ),
    (
        "unknown reply type",
        lambda d: _step(d, "ask_age")["config"].update(expect={"type": "age"}),
        "flows[0].steps[1].config.expect.type: unknown reply type 'age'",
    ),
    (
        "unknown reply type (shorthand)",
        lambda d: _step(d, "ask_age")["config"].update(expect="age"),
        "flows[0].steps[1].config.expect: unknown reply type 'age'",
    ),
    (
        "send_message without a message",
        lambda d: _step(d, "welcome").update(config={}),
        "flows[0].steps[0].config.message: is required",
    ),
    (
        "question without a prompt",
        lambda d: _step(d, "ask_age")["config"].pop("prompt"),
        "flows[0].steps[1].config.prompt: is required",
    ),
    (
        "question without expect",
        lambda d: _step(d, "ask_age")["config"].pop("expect"),
        "flows[0].steps[1].config.expect: is required",
    ),
    (
        "unknown action operation",
        lambda d: _step(d, "register")["config"].update(operation="delete_everything"),
        "flows[0].steps[3].config.operation: unknown operation 'delete_everything'",
    ),
    (
        "call without an action name",
        lambda d: _step(d, "register")["config"].pop("action"),
        "flows[0].steps[3].config.action: is required",
    ),
    (
        "negative max_retries",
        lambda d: _step(d, "ask_age")["config"].update(max_retries=-1),
        "flows[0].steps[1].config.max_retries: must be a non-negative integer",
    ),
    (
        "boolean max_retries",
        lambda d: _step(d, "ask_age")["config"].update(max_retries=True),
        "flows[0].steps[1].config.max_retries: must be a non-negative integer",
    ),
    (
        "on_max_retries naming a missing step",
        lambda d: _step(d, "ask_age")["config"].update(on_max_retries="operator"),
        "flows[0].steps[1].config.on_max_retries: step 'operator' does not exist",
    ),
    (
        "typo in a config key",
        lambda d: _step(d, "ask_age")["config"].update(save_too="age"),
        "flows[0].steps[1].config.save_too: unknown field for a question step",
    ),
    (
        "reserved variable name",
        lambda d: _step(d, "ask_age")["config"].update(save_to="contact"),
        "flows[0].steps[1].config.save_to: 'contact' is reserved",
    ),
    (
        "invalid variable name",
        lambda d: _step(d, "register")["config"].update(save_as="my account"),
        "flows[0].steps[3].config.save_as: must be a variable name",
    ),
    (
        "min_length greater than max_length",
        lambda d: _step(d, "ask_age")["config"].update(expect={"type": "text", "min_length": 10, "max_length": 2}),
        "flows[0].steps[1].config.expect.min_length: is greater than max_length (10 > 2)",
    ),
    (
        "choice question without options",
        lambda d: _step(d, "ask_age")["config"].update(expect={"type": "choice"}),
        "flows[0].steps[1].config.expect: a choice question needs options",
    ),
    (
        "four buttons",
        lambda d: _step(d, "welcome")["config"].update(
            message={
                "type": "buttons",
                "body": "Pick",
                "buttons": [{"id": str(i), "title": f"Option {i}"} for i in range(4)],
            }
        ),
        "flows[0].steps[0].config.message.buttons: has 4 buttons; WhatsApp allows at most 3",
    ),
    (
        "button title over 20 characters",
        lambda d: _step(d, "welcome")["config"].update(
            message={"type": "buttons", "body": "Pick", "buttons": [{"id": "a", "title": "Absolutely, let's go!!"}]}
        ),
        "flows[0].steps[0].config.message.buttons[0].title: is 22 characters; WhatsApp allows at most 20",
    ),
    (
        "duplicate button ids",
        lambda d: _step(d, "welcome")["config"].update(
            message={
                "type": "buttons",
                "body": "Pick",
                "buttons": [{"id": "a", "title": "One"}, {"id": "a", "title": "Two"}],
            }
        ),
        "flows[0].steps[0].config.message.buttons[1].id: duplicate button id 'a'",
    ),
    (
        "eleven list rows",
        lambda d: _step(d, "welcome")["config"].update(
            message={
                "type": "list",
                "body": "Matches",
                "button": "View",
                "sections": [{"title": "Today", "rows": [{"id": f"m{i}", "title": f"Match {i}"} for i in range(11)]}],
            }
        ),
        "flows[0].steps[0].config.message.sections: has 11 rows in total; WhatsApp allows at most 10",
    ),
    (
        "list row title over 24 characters",
        lambda d: _step(d, "welcome")["config"].update(
            message={
                "type": "list",
                "body": "Matches",
                "button": "View",
                "sections": [{"rows": [{"id": "m1", "title": "Manchester United v Liverpool"}]}],
            }
        ),
        "flows[0].steps[0].config.message.sections[0].rows[0].title: is 29 characters; WhatsApp allows at most 24",
    ),
    (
        "media with both link and id",
        lambda d: _step(d, "welcome")["config"].update(
            message={"type": "media", "media_type": "image", "link": "https://cdn.example.com/a.png", "id": "123"}
        ),
        'flows[0].steps[0].config.message: needs exactly one of "link" or "id"',
    ),
    (
        "caption on audio",
        lambda d: _step(d, "welcome")["config"].update(
            message={"type": "media", "media_type": "audio", "id": "123", "caption": "Listen"}
        ),
        "flows[0].steps[0].config.message.caption: WhatsApp does not allow a caption on audio",
    ),
    (
        "unknown message type",
        lambda d: _step(d, "welcome")["config"].update(message={"type": "carousel", "body": "x"}),
        "flows[0].steps[0].config.message.type: unknown message type 'carousel'",
    ),
    (
        "location out of range",
        lambda d: _step(d, "welcome")["config"].update(message={"type": "location", "latitude": 95, "longitude": 18.4}),
        "flows[0].steps[0].config.message.latitude: must be a number between -90 and 90",
    ),
    (
        "private name in a template",
        lambda d: _step(d, "welcome")["config"]["message"].update(body="Hi {{ contact._wa_id }}"),
        "flows[0].steps[0].config.message.body: template error: names starting with '_' are not allowed",
    ),
    (
        "call in a template",
        lambda d: _step(d, "register")["config"]["inputs"].update(age="{{ age.real() }}"),
        "flows[0].steps[3].config.inputs.age: template error: calls are not allowed",
    ),
    (
        "unknown filter",
        lambda d: _step(d, "welcome")["config"]["message"].update(body="Hi {{ name | shout }}"),
        "flows[0].steps[0].config.message.body: template error: unknown filter 'shout'",
    ),
    (
        "static message WhatsApp would refuse",
        lambda d: _step(d, "welcome")["config"].update(
            message={
                "type": "buttons",
                "body": "Pick",
                "buttons": [{"id": "a", "title": "Same"}, {"id": "b", "title": "Same"}],
            }
        ),
        "flows[0].steps[0].config.message: WhatsApp would refuse this message: "
        "interactive.action.buttons[1].reply.title: duplicate button title 'Same'",
    ),
    (
        "variable_compare with a non-numeric value",
        lambda d: _flow(d)["transitions"][1]["condition"].update(value="eighteen"),
        "flows[0].transitions[1].condition.value: must be a number",
    ),
    (
        "unknown comparison",
        lambda d: _flow(d)["transitions"][1]["condition"].update(op="between"),
        "flows[0].transitions[1].condition.op: unknown comparison 'between'",
    ),
    (
        "empty keyword list",
        lambda d: _flow(d)["transitions"][3]["condition"].update(keywords=[]),
        "flows[0].transitions[3].condition.keywords: must be a non-empty list of strings",
    ),
    (
        "non-integer order",
        lambda d: _flow(d)["transitions"][0].update(order="first"),
        "flows[0].transitions[0].order: must be an integer",
    ),
    (
        "transition out of an end_flow step",
        lambda d: _flow(d)["transitions"].append(
            {"from": "done", "to": "welcome", "order": 0, "condition": {"type": "always"}}
        ),
        "flows[0].transitions[6].from: end_flow steps end the flow; this transition can never run",
    ),
    (
        "answer_valid on a non-question step",
        lambda d: _flow(d)["transitions"][0].update(condition={"type": "answer_valid"}),
        "flows[0].transitions[0].condition.type: answer_valid only applies to transitions from a question step",
    ),
    (
        "unconditional loop of non-waiting steps",
        _make_spin_loop,
        "flows[0].steps[0]: steps welcome -> register -> welcome repeat forever without waiting for a reply",
    ),
    (
        "empty trigger keyword",
        lambda d: _flow(d)["trigger_keywords"].append("!!"),
        "flows[0].trigger_keywords[2]: must be a string with at least one letter or digit",
    ),
    ("unknown flow field", lambda d: _flow(d).update(owner="ops"), "flows[0].owner: unknown field for a flow"),
    ("non-boolean active", lambda d: _flow(d).update(active="yes"), "flows[0].active: must be true or false"),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_document_is_refused_with_path_and_reason(mutate: Mutation, expected: str) -> None:
    doc = signup_doc()
    mutate(doc)
    found = problems(doc)
    assert any(message.startswith(expected) for message in found), found


def test_the_unconditional_loop_check_ignores_loops_that_wait() -> None:
    # welcome -> ask_age (a question) -> ... -> register -> welcome waits at ask_age: fine.
    doc = signup_doc()
    _flow(doc)["transitions"][5] = {"from": "register", "to": "ask_age", "order": 0, "condition": {"type": "always"}}
    parse_flow_document(doc)


def test_a_static_button_title_limit_is_skipped_when_templated() -> None:
    spec = {"type": "buttons", "body": "Pick", "buttons": [{"id": "a", "title": "{{ fixtures.0.home | upper }}"}]}
    assert validate_message_spec(spec) == []


def test_unknown_action_is_refused_only_when_the_registry_is_given() -> None:
    parse_flow_document(signup_doc())
    found = problems(signup_doc(), known_actions={"football.list_fixtures"})
    assert found == ["flows[0].steps[3].config.action: no action named 'accounts.register' is registered"]
    parse_flow_document(signup_doc(), known_actions={"accounts.register"})


def test_every_problem_is_collected_at_once() -> None:
    doc = signup_doc()
    _step(doc, "done")["type"] = "teleport"
    _step(doc, "ask_age")["config"]["expect"] = {"type": "number", "min": "zero"}
    _flow(doc)["transitions"][3]["condition"] = {"type": "regex", "pattern": "*skip"}
    _flow(doc)["transitions"][5]["to"] = "celebrate"
    found = problems(doc)
    assert found == [
        "flows[0].steps[5].type: unknown step type 'teleport' "
        "(known: send_message, question, action, human_handover, end_flow)",
        "flows[0].steps[1].config.expect.min: must be a number",
        "flows[0].transitions[3].condition.pattern: invalid regular expression: nothing to repeat at position 0",
        "flows[0].transitions[5].to: step 'celebrate' does not exist",
    ]
    # The exception message carries the same list, for logs and the import command.
    with pytest.raises(FlowValidationError, match=r"4 problem\(s\).*celebrate"):
        parse_flow_document(doc)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([], 'document must be an object {"version": 1, "flows": [...]}'),
        ({"flows": []}, "version: is required"),
        ({"version": 2, "flows": []}, "version: unsupported version 2 (expected 1)"),
        ({"version": 1, "flows": {}}, "flows: must be a list of flows"),
        ({"version": 1, "flows": [], "extra": 1}, "extra: unknown field for a flow document"),
        ({"version": 1, "flows": ["main_menu"]}, "flows[0]: must be an object"),
        ({"version": 1, "flows": [{"name": "x", "steps": []}]}, "flows[0].steps: must be a non-empty list of steps"),
        (
            {"version": 1, "flows": [{"steps": [{"name": "a", "type": "end_flow", "entry": True}]}]},
            "flows[0].name: is required",
        ),
    ],
)
def test_malformed_document_structure(doc: Any, expected: str) -> None:
    assert expected in problems(doc)


def test_duplicate_flow_names_are_refused() -> None:
    doc = load_core()
    doc["flows"].append(copy.deepcopy(doc["flows"][1]))
    doc["flows"][-1]["trigger_keywords"] = ["assist"]
    assert problems(doc) == ["flows[4].name: duplicate flow name 'help' (also flows[1])"]


def test_a_trigger_shared_by_two_active_flows_is_refused_but_not_with_an_inactive_one() -> None:
    doc = load_core()
    doc["flows"][3]["trigger_keywords"] = ["profile", "Hélp"]
    assert problems(doc) == ["flows[3].trigger_keywords[1]: trigger 'Hélp' is already used by active flow 'help'"]
    doc["flows"][3]["active"] = False
    parse_flow_document(doc)
