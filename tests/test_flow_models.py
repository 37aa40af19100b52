"""Flow models, their constraints, validation at the field, the action registry, the
in-process bot turn (webhook records stored by the real inbound service, replies written by
the real outbound service) and the flows admin.

The helpers (``Chat``, ``business``, ...) are in tests/support/flows.py and the
``default_flows`` fixture in conftest.py, shared with the other flow test files. Tests here run in one transaction each, so replies are the outbound Message
rows the bot wrote (nothing reaches a broker); the worker-driven conversations are in
test_flow_conversations.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from conversations.models import Contact, Direction, Message
from devtools import webhook_payloads as simulate
from flows import actions, services
from flows.actions import ActionInput, ActionInputError, ActionRegistrationError, InputType
from flows.engine_types import ActionCall, ActionResult
from flows.models import ContactFlowState, Flow, FlowStep, FlowTransition
from tests.support.flows import (
    ECHO_FLOW,
    Chat,
    business,
    flow_doc,
    go,
    random_wa_id,
    step,
    text_spec,
    texts,
)

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------------------------------
# Constraints the database enforces
# ---------------------------------------------------------------------------------------


def _flow(name: str = "survey", **fields: Any) -> Flow:
    return Flow.objects.create(name=name, **fields)


def test_a_flow_cannot_have_two_entry_steps_in_the_database():
    flow = _flow()
    FlowStep.objects.create(flow=flow, name="one", type="end_flow", is_entry=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        FlowStep.objects.create(flow=flow, name="two", type="end_flow", is_entry=True)
    # Non-entry steps, and an entry step in another flow, are fine.
    FlowStep.objects.create(flow=flow, name="three", type="end_flow")
    FlowStep.objects.create(flow=_flow("other"), name="one", type="end_flow", is_entry=True)


def test_step_names_are_unique_within_a_flow_only():
    flow = _flow()
    FlowStep.objects.create(flow=flow, name="ask", type="end_flow", is_entry=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        FlowStep.objects.create(flow=flow, name="ask", type="end_flow")
    FlowStep.objects.create(flow=_flow("other"), name="ask", type="end_flow")


def test_unknown_step_type_is_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        FlowStep.objects.create(flow=_flow(), name="x", type="send_sms")


def test_transition_order_is_unique_per_source_step():
    flow = _flow()
    a = FlowStep.objects.create(flow=flow, name="a", type="question", is_entry=True)
    b = FlowStep.objects.create(flow=flow, name="b", type="end_flow")
    FlowTransition.objects.create(flow=flow, from_step=a, to_step=b, order=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        FlowTransition.objects.create(flow=flow, from_step=a, to_step=b, order=0)
    FlowTransition.objects.create(flow=flow, from_step=a, to_step=b, order=1)


def test_a_transition_cannot_join_steps_of_two_flows():
    survey, other = _flow(), _flow("other")
    a = FlowStep.objects.create(flow=survey, name="a", type="question", is_entry=True)
    foreign = FlowStep.objects.create(flow=other, name="b", type="end_flow", is_entry=True)
    with pytest.raises(ValidationError) as error:
        FlowTransition.objects.create(flow=survey, from_step=a, to_step=foreign)
    assert "to_step" in error.value.message_dict
    assert FlowTransition.objects.count() == 0
    # The flow is taken from the source step when not given.
    own = FlowStep.objects.create(flow=survey, name="c", type="end_flow")
    transition = FlowTransition.objects.create(from_step=a, to_step=own)
    assert transition.flow == survey and transition.condition == {"type": "always"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="composite foreign keys are added on PostgreSQL only")
def test_postgresql_refuses_a_cross_flow_transition_even_in_raw_sql():
    survey, other = _flow(), _flow("other")
    a = FlowStep.objects.create(flow=survey, name="a", type="question", is_entry=True)
    b = FlowStep.objects.create(flow=survey, name="b", type="end_flow")
    foreign = FlowStep.objects.create(flow=other, name="x", type="end_flow", is_entry=True)
    transition = FlowTransition.objects.create(flow=survey, from_step=a, to_step=b)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE flows_flowtransition SET to_step_id = %s WHERE id = %s", [foreign.pk, transition.pk])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_a_contact_has_at_most_one_flow_state():
    contact = Contact.objects.create(wa_id=random_wa_id())
    flow = _flow()
    ContactFlowState.objects.create(contact=contact, flow=flow, step="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactFlowState.objects.create(contact=contact, flow=flow, step="b")


# ---------------------------------------------------------------------------------------
# Validation at the field (what admin shows)
# ---------------------------------------------------------------------------------------


def _errors(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as error:
        instance.full_clean()
    return error.value.message_dict


def test_a_bad_regex_in_a_question_is_reported_at_the_config_field():
    flow = _flow()
    bad = FlowStep(flow=flow, name="ask", type="question", is_entry=True, config={
        "prompt": text_spec("Your ticket code?"), "expect": {"type": "regex", "pattern": "([A-Z"}})
    errors = _errors(bad)
    assert list(errors) == ["config"]
    assert "config.expect.pattern" in errors["config"][0]


def test_an_unknown_step_type_is_reported_at_the_type_field():
    errors = _errors(FlowStep(flow=_flow(), name="x", type="send_sms", config={}))
    assert "type" in errors


def test_config_errors_name_every_problem_and_its_path():
    step_row = FlowStep(flow=_flow(), name="ask", type="question", config={
        "prompt": {"type": "buttons", "body": "Pick", "buttons": [{"id": "a", "title": "x" * 21}]},
        "expect": {"type": "number", "min": 10, "max": 1},
        "max_retries": -1,
        "on_max_retries": "nowhere",
    })
    message = " | ".join(_errors(step_row)["config"])
    assert "config.prompt.buttons[0].title" in message
    assert "config.max_retries" in message
    assert "config.on_max_retries: step 'nowhere' does not exist" in message


def test_a_call_to_an_unregistered_action_is_refused():
    row = FlowStep(flow=_flow(), name="go", type="action", config={"operation": "call", "action": "shop.nothing"})
    assert "no action named 'shop.nothing' is registered" in _errors(row)["config"][0]


def test_a_transition_condition_is_validated_at_its_field():
    flow = _flow()
    a = FlowStep.objects.create(flow=flow, name="a", type="question", is_entry=True)
    b = FlowStep.objects.create(flow=flow, name="b", type="end_flow")
    errors = _errors(FlowTransition(flow=flow, from_step=a, to_step=b, condition={"type": "regex", "pattern": "(("}))
    assert list(errors) == ["condition"]


def test_trigger_keywords_are_checked_and_may_not_be_taken_by_another_active_flow():
    _flow("main_menu", trigger_keywords=["menu", "Hi"])
    errors = _errors(Flow(name="greeting", trigger_keywords=["hello", "hi!"]))
    assert errors["trigger_keywords"] == ["trigger_keywords[1]: trigger 'hi!' is already used by flow 'main_menu'"]
    assert "trigger_keywords" in _errors(Flow(name="x", trigger_keywords="menu"))
    assert "trigger_keywords" in _errors(Flow(name="y", trigger_keywords=["ok", "OK"]))
    Flow(name="greeting", trigger_keywords=["hi"], active=False).full_clean()  # inactive flows start nothing


# ---------------------------------------------------------------------------------------
# The action registry
# ---------------------------------------------------------------------------------------


@pytest.fixture
def stake_action():
    """A real action, registered for the test like an app's ready() would register it."""
    calls: list[ActionCall] = []

    def place(call: ActionCall) -> ActionResult:
        calls.append(call)
        payout = call.inputs["stake"] * call.inputs["odds"]
        return ActionResult(variables={"payout": str(payout)}, replies=({"type": "text", "body": f"Bet {payout}"},))

    actions.register_action(
        "tests.place", place,
        inputs=[ActionInput("stake", InputType.DECIMAL), ActionInput("odds", InputType.DECIMAL),
                ActionInput("boost", InputType.BOOLEAN, required=False, default=False)],
    )
    yield calls
    actions.unregister_action("tests.place")


def test_registration_refuses_bad_names_duplicates_and_bad_inputs(stake_action):
    with pytest.raises(ActionRegistrationError, match=r"app\.verb"):
        actions.register_action("PlaceBet", lambda call: None)
    with pytest.raises(ActionRegistrationError, match="already registered"):
        actions.register_action("tests.place", lambda call: None)
    with pytest.raises(ActionRegistrationError, match="declared twice"):
        actions.register_action("tests.dup", lambda call: None, inputs=[ActionInput("a"), ActionInput("a")])
    assert "tests.dup" not in actions.action_names()
    registered = actions.get_action("tests.place")
    assert actions.register_action("tests.place", registered.function, inputs=registered.inputs) is registered


def test_inputs_are_coerced_to_their_declared_types(stake_action):
    action = actions.get_action("tests.place")
    typed = actions.coerce_inputs(action, {"stake": "10,50", "odds": 2, "extra": "dropped"})
    assert dict(typed) == {"stake": Decimal("10.50"), "odds": Decimal("2"), "boost": False}
    with pytest.raises(ActionInputError, match="stake"):
        actions.coerce_inputs(action, {"stake": "ten", "odds": "2"})
    with pytest.raises(ActionInputError, match="odds"):
        actions.coerce_inputs(action, {"stake": "1"})


def test_a_call_step_must_match_the_declared_inputs(stake_action):
    row = FlowStep(flow=_flow(), name="bet", type="action", config={
        "operation": "call", "action": "tests.place", "inputs": {"stake": "abc", "odd": "{{ odds }}"}})
    message = " | ".join(_errors(row)["config"])
    assert "config.inputs.odd: action 'tests.place' has no input 'odd'" in message
    assert "config.inputs.odds: is required" in message
    assert "config.inputs.stake: expected a number" in message


def test_an_action_runs_inside_the_turn_with_typed_inputs(stake_action):
    config = business()
    services.import_flow_document(flow_doc({
        "name": "bet", "trigger_keywords": ["bet"],
        "steps": [
            step("stake", "question", {"prompt": text_spec("Stake?"), "expect": {"type": "number"}, "save_to": "stake"},
                 entry=True),
            step("place", "action", {"operation": "call", "action": "tests.place",
                                     "inputs": {"stake": "{{ stake }}", "odds": "1.85"}, "save_as": "bet"}),
            step("done", "end_flow", {"message": text_spec("Potential payout {{ bet.payout }}")}),
        ],
        "transitions": [go("stake", "place"), go("place", "done")],
    }))
    chat = Chat(config)
    assert texts(chat.say("bet")) == ["Stake?"]
    assert texts(chat.say("20")) == ["Bet 37.00", "Potential payout 37.00"]
    assert stake_action[0].inputs["stake"] == Decimal("20") and stake_action[0].contact.wa_id == chat.wa_id


# ---------------------------------------------------------------------------------------
# One turn in-process: storage, contact updates, idempotency, handover
# ---------------------------------------------------------------------------------------


def test_profile_flow_updates_the_contact_and_ends_the_session(default_flows):
    chat = Chat(business())
    assert "what name should we call you" in texts(chat.say("profile"))[0]
    assert chat.where == ("profile", "ask_name")
    assert "Nice to meet you, Wanjiru" in texts(chat.say("Wanjiru"))[0]
    assert texts(chat.say("wanjiru@example.co.ke"))[0].startswith("Thanks Wanjiru, saved wanjiru@example.co.ke")
    contact = chat.contact
    assert (contact.name, contact.email) == ("Wanjiru", "wanjiru@example.co.ke")
    assert chat.state is None
    assert not Message.objects.filter(contact=contact, direction=Direction.INBOUND, processed_at=None).exists()


def test_processing_a_message_twice_replies_once(default_flows):
    chat = Chat(business())
    message_id = chat.store(simulate.text("hi", wa_id=chat.wa_id))
    first = services.process_inbound(message_id)
    again = services.process_inbound(message_id)
    assert (first.processed, first.replied, again.processed) == (1, 1, 0)
    assert Message.objects.filter(contact=chat.contact, direction=Direction.OUTBOUND).count() == 1


def test_a_later_task_runs_the_earlier_messages_first_and_in_order(db):
    config = business()
    services.import_flow_document(flow_doc(ECHO_FLOW))
    chat = Chat(config)
    ids = [chat.store(simulate.text(body, wa_id=chat.wa_id)) for body in ("echo", "one", "two", "three")]
    result = services.process_inbound(ids[2])  # the task for "two" arrives first
    assert (result.processed, result.replied) == (3, 3)
    replies = [m.content["body"] for m in Message.objects.filter(contact=chat.contact, direction=Direction.OUTBOUND)]
    assert replies == ["echo start | seen:", "echo one | seen:one,", "echo two | seen:one,two,"]
    assert services.process_inbound(ids[0]).processed == 0  # already done by the later task
    services.process_inbound(ids[3])
    assert chat.state.variables["seen"] == "one,two,three,"
    assert chat.state.version == 4  # created, then one change per message


def test_a_turn_that_cannot_be_sent_gets_the_error_text_and_later_messages_still_work(db):
    """A template that renders a button title longer than WhatsApp allows fails at send time."""
    config = business()
    services.import_flow_document(flow_doc({
        "name": "greet", "trigger_keywords": ["greet"],
        "steps": [
            step("name", "question", {"prompt": text_spec("Name?"), "expect": {"type": "text"}, "save_to": "name"},
                 entry=True),
            step("confirm", "question", {
                "prompt": {"type": "buttons", "body": "Confirm?", "buttons": [{"id": "yes", "title": "{{ name }}"}]},
                "expect": {"type": "choice"}}),
        ],
        "transitions": [go("name", "confirm")],
    }))
    chat = Chat(config)
    chat.say("greet")
    replies = chat.say("A name far longer than twenty characters")
    assert texts(replies) == [services.engine_settings().error_text]
    assert chat.state is None
    assert texts(chat.say("greet")) == ["Name?"]


def test_human_flow_hands_over_and_the_bot_goes_quiet_until_released(default_flows):
    chat = Chat(business())
    chat.say("hi")
    replies = chat.pick("human", "Talk to a human")
    assert "connecting you with a member of our team" in texts(replies)[0]
    contact = chat.contact
    assert contact.needs_human and contact.handover_at is not None and chat.state is None
    assert chat.say("hello? my bet slip is wrong") == []
    assert chat.say("menu") == []
    assert not Message.objects.filter(contact=contact, direction=Direction.INBOUND, processed_at=None).exists()

    assert services.release_contact(contact.pk, message="All sorted! The bot is back.", released_by="operator:eva")
    assert not services.release_contact(contact.pk, message="twice")  # already released: nothing sent
    released = Message.objects.filter(contact=contact, direction=Direction.OUTBOUND).order_by("pk").last()
    assert (released.content["body"], released.sent_by) == ("All sorted! The bot is back.", "operator:eva")
    assert not chat.contact.needs_human
    assert "Main menu" in json.dumps(chat.say("menu"))


def test_a_blocked_contact_gets_no_reply_but_the_message_is_kept(default_flows):
    chat = Chat(business())
    chat.say("hi")
    Contact.objects.filter(wa_id=chat.wa_id).update(blocked=True)
    assert chat.say("hi again") == []
    assert Message.objects.filter(contact=chat.contact, direction=Direction.INBOUND).count() == 2


def test_flow_edits_reach_the_cached_definitions(default_flows):
    chat = Chat(business())
    assert "Here's how this chat works" in texts(chat.say("help"))[0]
    explain = FlowStep.objects.get(flow__name="help", name="explain")
    explain.config = {"message": {"type": "text", "body": "Edited help text"}}
    explain.save()
    assert texts(chat.say("help")) == ["Edited help text"]
    FlowTransition.objects.filter(flow__name="help").delete()
    Flow.objects.filter(name="help").update(active=False, updated_at=timezone.now())
    assert "help" not in [f.name for f in services.load_flows().values() if f.active]


def test_deleting_one_step_or_transition_reaches_the_cached_definitions(default_flows):
    # Instance deletes (as admin's inline formsets do) mark the flow changed by themselves.
    assert [(t.from_step, t.to_step) for t in services.load_flows()["help"].transitions] == [("explain", "done")]
    FlowTransition.objects.get(flow__name="help").delete()
    assert services.load_flows()["help"].transitions == ()
    FlowStep.objects.get(flow__name="help", name="done").delete()
    assert list(services.load_flows()["help"].steps) == ["explain"]


# ---------------------------------------------------------------------------------------
# Admin
# ---------------------------------------------------------------------------------------


@pytest.fixture
def operator(client: Client) -> Client:
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "pw-operator-123")
    client.force_login(user)
    return client


def _inline_management(prefix: str, rows: list[dict[str, Any]], initial: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
    return data


def _add_flow(client: Client, steps: list[dict[str, Any]], name: str = "survey"):
    data = {"name": name, "description": "", "active": "on", "trigger_keywords": json.dumps([name])}
    data |= _inline_management("steps", steps)
    data |= _inline_management("transitions", [])
    return client.post("/admin/flows/flow/add/", data)


def test_admin_shows_a_bad_step_config_at_the_field_and_saves_nothing(operator):
    response = _add_flow(operator, [{
        "name": "ask", "type": "question", "is_entry": "on", "position": "0",
        "config": json.dumps({"prompt": text_spec("Code?"), "expect": {"type": "regex", "pattern": "[a-"}}),
    }])
    assert response.status_code == 200
    formset = next(f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "steps").formset
    assert "config.expect.pattern" in " ".join(formset.forms[0].errors["config"])
    assert not Flow.objects.exists()


def test_admin_refuses_two_entry_steps(operator):
    row = {"type": "end_flow", "is_entry": "on", "position": "0", "config": "{}"}
    response = _add_flow(operator, [{**row, "name": "a"}, {**row, "name": "b"}])
    assert response.status_code == 200
    formset = next(f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "steps").formset
    assert "entry" in " ".join(formset.non_form_errors())
    assert not Flow.objects.exists()


def test_admin_saves_a_valid_flow_and_lists_sessions_and_waiting_contacts(operator, default_flows):
    response = _add_flow(operator, [{"name": "bye", "type": "end_flow", "is_entry": "on", "position": "0",
                                     "config": json.dumps({"message": text_spec("Bye {{ contact.name }}")})}])
    assert response.status_code == 302, response.context and response.context["errors"]
    assert services.load_flows()["survey"].entry_step == "bye"
    for url in ("/admin/flows/flow/", f"/admin/flows/flow/{Flow.objects.get(name='profile').pk}/change/",
                "/admin/flows/contactflowstate/", "/admin/flows/waitingcontact/"):
        assert operator.get(url).status_code == 200, url


def test_admin_expire_now_and_release_actions(operator, default_flows):
    config = business()
    waiting, asking = Chat(config), Chat(config)
    waiting.say("human")
    asking.say("profile")
    waiting_contact = waiting.contact
    page = operator.get("/admin/flows/waitingcontact/")
    assert waiting.wa_id in page.content.decode() and asking.wa_id not in page.content.decode()

    response = operator.post("/admin/flows/contactflowstate/", {
        "action": "expire_now", "_selected_action": [asking.state.pk]})
    assert response.status_code == 302 and asking.state is None
    notice = Message.objects.filter(contact=asking.contact, direction=Direction.OUTBOUND).order_by("pk").last()
    assert "timed out" in notice.content["body"]

    response = operator.post("/admin/flows/waitingcontact/", {
        "action": "release_to_bot", "_selected_action": [waiting_contact.pk], "message": "Back to the bot 🤖"})
    assert response.status_code == 302
    waiting_contact.refresh_from_db()
    assert not waiting_contact.needs_human
    last = Message.objects.filter(contact=waiting_contact, direction=Direction.OUTBOUND).order_by("pk").last()
    assert last.content["body"] == "Back to the bot 🤖" and last.sent_by == "operator"


def test_the_waiting_queue_is_oldest_first(operator):
    now = timezone.now()
    for minutes, wa_id in ((5, "254700000005"), (30, "254700000030"), (1, "254700000001")):
        Contact.objects.create(wa_id=wa_id, needs_human=True, handover_at=now - timedelta(minutes=minutes))
    Contact.objects.create(wa_id="254700000099")
    page = operator.get("/admin/flows/waitingcontact/").content.decode()
    positions = [page.index(wa_id) for wa_id in ("254700000030", "254700000005", "254700000001")]
    assert positions == sorted(positions) and "254700000099" not in page


def test_admin_checks_the_whole_flow_and_shows_a_bad_transition_at_its_row(operator):
    services.import_flow_document(flow_doc({
        "name": "survey", "steps": [
            step("ask", "question", {"prompt": text_spec("Ok?"), "expect": {"type": "text"}}, entry=True),
            step("done", "end_flow"),
        ],
        "transitions": [go("ask", "done")],
    }))
    flow = Flow.objects.get(name="survey")
    ask, done = (FlowStep.objects.get(flow=flow, name=name) for name in ("ask", "done"))
    existing = FlowTransition.objects.get(flow=flow)
    step_rows = [
        {"id": s.pk, "flow": flow.pk, "name": s.name, "type": s.type, "position": s.position,
         "config": json.dumps(s.config), **({"is_entry": "on"} if s.is_entry else {})}
        for s in (ask, done)
    ]
    transition_rows = [
        {"id": existing.pk, "flow": flow.pk, "from_step": ask.pk, "to_step": done.pk, "order": 0,
         "condition": json.dumps(existing.condition)},
        {"flow": flow.pk, "from_step": done.pk, "to_step": ask.pk, "order": 0, "condition": '{"type": "always"}'},
    ]
    data = {"name": "survey", "description": "", "active": "on", "trigger_keywords": "[]"}
    data |= _inline_management("steps", step_rows, initial=2) | _inline_management("transitions", transition_rows, 1)
    response = operator.post(f"/admin/flows/flow/{flow.pk}/change/", data)
    assert response.status_code == 200
    formset = next(f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "transitions").formset
    assert "end_flow steps end the flow" in " ".join(formset.forms[1].errors["from_step"])
    assert FlowTransition.objects.filter(flow=flow).count() == 1
