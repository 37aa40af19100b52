"""The bot's log for the simulator: each turn's steps, transitions and events, kept in Redis.

With ``FLOW_TRACE`` on, processing records one entry per turn (including a turn that ended
its flow, whose session row is gone); with it off (production) nothing is written.
"""

from __future__ import annotations

import pytest

from flows import services
from flows.services import trace
from tests.support.flows import ECHO_FLOW, FEEDBACK_FLOW, Chat, business, flow_doc

# Real commits: the trace is written when the turn commits (a Redis call inside the turn's
# transaction let a gevent worker deadlock on SQLite's write lock).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def feedback(db) -> None:
    services.import_flow_document(flow_doc(FEEDBACK_FLOW, ECHO_FLOW))


def test_each_turn_records_its_steps_transitions_and_where_it_waits(feedback, settings):
    settings.FLOW_TRACE = True
    config = business()
    chat = Chat(config)
    chat.say("feedback")
    chat.tap("rate_good", "Good")
    chat.say("no")  # too short: min_length 3 -> asked again
    chat.say("Great service")

    turns = trace.read_trace(chat.wa_id, config.pk)

    assert [turn["waiting_at"] for turn in turns] == ["feedback.rate", "feedback.comment", "feedback.comment", None]
    start, rated, invalid, done = turns
    assert start["path"] == ["step feedback.rate (question)"]
    assert "flow_started:feedback" in start["events"]
    assert rated["path"] == [
        "answer feedback.rate: valid",
        "transition feedback.rate -> comment (always)",
        "step feedback.comment (question)",
    ]
    assert invalid["path"] == ["answer feedback.comment: invalid"]
    assert "answer_invalid:feedback.comment" in invalid["events"]
    assert done["path"] == [
        "answer feedback.comment: valid",
        "transition feedback.comment -> thanks (always)",
        "step feedback.thanks (end_flow)",
    ]
    assert "flow_ended:feedback" in done["events"] and chat.state is None
    assert done["replies"] == 1
    assert [turn["message_id"] for turn in turns] == sorted(turn["message_id"] for turn in turns)

    trace.clear_trace(chat.wa_id, config.pk)
    assert trace.read_trace(chat.wa_id, config.pk) == []


def test_the_trace_keeps_only_the_newest_turns(feedback, settings):
    settings.FLOW_TRACE = True
    config = business()
    chat = Chat(config)
    chat.say("echo")
    for turn in range(trace.MAX_TURNS + 2):
        chat.say(f"line {turn}")
    turns = trace.read_trace(chat.wa_id, config.pk)
    assert len(turns) == trace.MAX_TURNS
    assert turns[-1]["message_id"] == chat.contact.messages.filter(direction="in").latest("pk").pk


def test_nothing_is_recorded_when_tracing_is_off(feedback, settings, redis_client):
    settings.FLOW_TRACE = False
    config = business()
    chat = Chat(config)
    chat.say("feedback")
    assert chat.where == ("feedback", "rate")
    assert not redis_client.exists(trace.trace_key(chat.wa_id, config.pk))
