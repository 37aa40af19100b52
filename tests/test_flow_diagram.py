"""Each flow's admin page draws the flow (an inline SVG built on the server: a box per step,
an arrow per transition with its condition) and explains the step types in the page itself,
from the same records validation uses."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from flows import services
from flows.conditions import ConditionType
from flows.definitions import ActionOperation, FlowDefinition, StepDefinition, StepType, TransitionDefinition
from flows.diagram import condition_label, flow_svg, layers
from flows.models import Flow, FlowTransition
from football_data_app.services.bot_flows import import_football_flows

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client) -> Client:
    user = get_user_model().objects.create_superuser("drawer", "drawer@example.com", "pw-drawer-123")
    client.force_login(user)
    return client


def _svg(page: str) -> str:
    [svg] = re.findall(r'<svg class="flow-diagram".*?</svg>', page, flags=re.S)
    return svg


@pytest.mark.parametrize("name", ["main_menu", "profile", "fixtures", "wallet"])
def test_the_change_page_of_a_shipped_flow_draws_every_step_and_transition(operator, name):
    services.import_flow_files(services.default_flow_paths())
    import_football_flows()
    flow = Flow.objects.get(name=name)
    page = operator.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    svg = _svg(page)

    steps = list(flow.steps.values_list("name", "type"))
    nodes = re.findall(r'<g class="flow-node" data-step="([^"]*)" data-type="([^"]*)">', svg)
    assert sorted(nodes) == sorted(steps)  # one box per step, with its type
    transitions = FlowTransition.objects.filter(flow=flow).values_list("from_step__name", "to_step__name")
    edges = re.findall(r'<g class="flow-edge" data-from="([^"]*)" data-to="([^"]*)">', svg)
    assert Counter(edges) == Counter(transitions) and len(edges) == flow.transitions.count()
    give_ups = re.findall(r'<g class="flow-give-up" data-from="([^"]*)" data-to="([^"]*)">', svg)
    expected = [(step.name, step.config["on_max_retries"]) for step in flow.steps.filter(type="question")
                if step.config.get("on_max_retries") not in (None, "end", "handover")]  # fmt: skip
    assert sorted(give_ups) == sorted(expected)  # where a question goes after its last retry, dashed
    assert svg.count('marker-end="url(#flow-arrow)"') == len(edges) + len(give_ups)  # an arrow each

    # Drawn by the server: nothing fetched, nothing run.
    assert not re.search(r"https?://|//cdn|<script|<image|href=", svg)
    assert "flows/definitions.py" not in page  # the help is in the page, not in a source file


def test_conditions_label_the_arrows_with_their_order_when_a_step_has_several(operator):
    services.import_flow_files(services.default_flow_paths())
    import_football_flows()
    flow = Flow.objects.get(name="fixtures")
    svg = _svg(operator.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode())
    edge = re.search(r'<g class="flow-edge" data-from="confirm" data-to="place">.*?</g>', svg).group(0)
    assert ">0: taps confirm<" in edge
    edge = re.search(r'<g class="flow-edge" data-from="check_stake" data-to="ask_stake">.*?</g>', svg).group(0)
    assert ">0: stake_ok = false<" in edge


def test_the_page_explains_every_step_type_operation_and_condition(operator):
    services.import_flow_files(services.default_flow_paths())
    flow = Flow.objects.get(name="profile")
    page = operator.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    help_html = re.search(r'<div class="flow-step-types">.*?</div>', page, flags=re.S).group(0)
    for kind in StepType:
        assert f"<dt><code>{kind.value}</code></dt>" in help_html
    for operation in ActionOperation:
        assert f"<dt><code>{operation.value}</code></dt>" in help_html
    for condition in ConditionType:
        assert f"<li><code>{condition.value}</code>" in help_html
    # The keys validation requires, e.g. a question's prompt and expect.
    assert "required: <code>prompt</code>, <code>expect</code>" in help_html


def test_the_add_page_asks_to_save_first(operator):
    page = operator.get("/admin/flows/flow/add/").content.decode()
    assert "Save the flow to see its diagram." in page and 'class="flow-diagram"' not in page
    assert '<div class="flow-step-types">' in page


def _flow(*transitions: TransitionDefinition, extra: tuple[str, ...] = ()) -> FlowDefinition:
    names = ["ask", "check", "done", *extra]
    types = {"ask": StepType.QUESTION, "check": StepType.ACTION, "done": StepType.END_FLOW}
    configs = {
        StepType.QUESTION: {"prompt": {"type": "text", "body": "?"}, "expect": "number"},
        StepType.ACTION: {"operation": "call", "action": "demo.check"},
        StepType.END_FLOW: {},
        StepType.SEND_MESSAGE: {"message": {"type": "text", "body": "hi"}},
    }
    steps = {n: StepDefinition(n, types.get(n, StepType.SEND_MESSAGE), configs[types.get(n, StepType.SEND_MESSAGE)])
             for n in names}  # fmt: skip
    return FlowDefinition(name="demo", steps=steps, transitions=transitions, entry_step="ask")


def test_layers_are_breadth_first_from_the_entry_and_unreached_steps_come_last():
    flow = _flow(
        TransitionDefinition("ask", "check", 0),
        TransitionDefinition("check", "ask", 0, {"type": "variable_equals", "variable": "ok", "value": False}),
        TransitionDefinition("check", "done", 1),
        TransitionDefinition("done", "done", 0),
        extra=("orphan",),
    )
    assert layers(flow) == [["ask"], ["check"], ["done"], ["orphan"]]
    svg = flow_svg(flow)
    assert svg.count('class="flow-node"') == 4 and svg.count('class="flow-edge"') == 4
    orphan = re.search(r'<g class="flow-node" data-step="orphan".*?</g>', svg).group(0)
    assert "stroke-dasharray" in orphan and "nothing leads to it" in orphan
    assert "▶ ask" in svg  # the entry step is marked


def test_text_from_the_flow_is_escaped_in_the_drawing():
    flow = _flow(
        TransitionDefinition("ask", "check", 0, {"type": "keyword", "keywords": ["<b>yes</b>"]}),
        TransitionDefinition("check", "done", 0),
    )
    svg = flow_svg(flow)
    assert "<b>" not in svg and "&lt;b&gt;yes&lt;/b&gt;" in svg


@pytest.mark.parametrize(
    ("condition", "label"),
    [
        ({"type": "always"}, ""),
        ({"type": "reply_id", "ids": ["stake", "add"]}, "taps stake, add"),
        ({"type": "keyword", "keywords": ["yes"]}, "says yes"),
        ({"type": "regex", "pattern": "^\\d+$"}, "matches /^\\d+$/"),
        ({"type": "message_type", "types": ["image"]}, "sends image"),
        ({"type": "variable_equals", "variable": "nothing", "value": True}, "nothing = true"),
        ({"type": "variable_exists", "variable": "email"}, "email is set"),
        ({"type": "variable_contains", "variable": "tags", "value": "vip"}, "tags contains vip"),
        ({"type": "variable_compare", "variable": "age", "op": "ge", "value": 18}, "age ≥ 18"),
        ({"type": "answer_valid", "valid": False}, "invalid answer"),
    ],
)
def test_condition_labels(condition, label):
    assert condition_label(condition) == label


def test_a_questions_give_up_step_is_drawn_dashed_and_counts_as_reached():
    flow = _flow(TransitionDefinition("ask", "check", 0), TransitionDefinition("check", "done", 0), extra=("sorry",))
    ask = StepDefinition("ask", StepType.QUESTION, {**flow.steps["ask"].config, "on_max_retries": "sorry"})
    flow = FlowDefinition(name="demo", steps={**flow.steps, "ask": ask}, transitions=flow.transitions, entry_step="ask")
    assert layers(flow) == [["ask"], ["check", "sorry"], ["done"]]
    svg = flow_svg(flow)
    [link] = re.findall(r'<g class="flow-give-up" data-from="ask" data-to="sorry">.*?</g>', svg)
    assert 'stroke-dasharray="6 4"' in link and "after the last retry" in link
    sorry = re.search(r'<g class="flow-node" data-step="sorry".*?</g>', svg).group(0)
    assert "stroke-dasharray" not in sorry
    assert svg.count('class="flow-edge"') == 2
