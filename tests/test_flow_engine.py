"""The flow engine, scripted as conversations: inbound message -> expected replies and state.

Every default flow is driven through ``advance`` the way the process-message task will drive
it (session threaded from one call to the next), plus the edges: validation and re-prompts,
max retries, global commands, keyword matching, expired sessions, the auto-advance bound and
actions that succeed, fail or misbehave. Actions are real functions in a registry, not mocks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.conditions import ConditionContext, evaluate, keyword_matches, normalize_text
from flows.definitions import FlowDefinition, StepDefinition, TransitionDefinition
from flows.document_format import parse_flow_document
from flows.engine import advance
from flows.engine_types import (
    ActionCall,
    ActionRegistry,
    ActionResult,
    CommandKind,
    ContactView,
    EngineResult,
    EngineSettings,
    GlobalCommand,
    Inbound,
    Session,
)
from flows.validators import (
    Choice,
    validate_choice,
    validate_date,
    validate_email,
    validate_location,
    validate_media,
    validate_number,
    validate_phone,
    validate_regex,
    validate_text,
)

CORE = Path(__file__).resolve().parent.parent / "flows" / "default_flows" / "core.json"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CONTACT = ContactView(wa_id="27821234567", name="Thandi", fields={"city": "Durban"})
SETTINGS = EngineSettings()


def core_flows() -> dict[str, FlowDefinition]:
    return {flow.name: flow for flow in parse_flow_document(json.loads(CORE.read_text(encoding="utf-8")))}


def flows_from(*flows: dict[str, Any], include_core: bool = True) -> dict[str, FlowDefinition]:
    """Validated test flows (through the real parser), optionally next to the core flows."""
    parsed = {flow.name: flow for flow in parse_flow_document({"version": 1, "flows": list(flows)})}
    return {**core_flows(), **parsed} if include_core else parsed


def step(name: str, type_: str, config: dict[str, Any] | None = None, *, entry: bool = False) -> dict[str, Any]:
    return {"name": name, "type": type_, "entry": entry, "config": config or {}}


def go(src: str, dst: str, condition: dict[str, Any] | None = None, order: int = 0) -> dict[str, Any]:
    return {"from": src, "to": dst, "order": order, "condition": condition or {"type": "always"}}


def text(body: str) -> dict[str, str]:
    return {"type": "text", "body": body}


@dataclass
class Chat:
    """Threads the session from one ``advance`` to the next, like the process-message task."""

    flows: dict[str, FlowDefinition] = field(default_factory=core_flows)
    actions: ActionRegistry = field(default_factory=dict)
    settings: EngineSettings = SETTINGS
    contact: ContactView = CONTACT
    session: Session | None = None
    now: datetime = NOW
    history: list[EngineResult] = field(default_factory=list)

    def send(self, message: str | Inbound) -> EngineResult:
        inbound = Inbound.from_text(message) if isinstance(message, str) else message
        result = advance(
            flows=self.flows,
            session=self.session,
            inbound=inbound,
            contact=self.contact,
            actions=self.actions,
            settings=self.settings,
            now=self.now,
        )
        for reply in result.replies:
            json.dumps(reply)  # every reply must be storable on a Message row as-is
        if result.session is not None:
            json.dumps(dict(result.session.variables))
            assert result.session.awaiting_reply
        self.session = result.session
        self.now += timedelta(seconds=20)
        self.history.append(result)
        return result

    def tap(self, reply_id: str, title: str | None = None) -> EngineResult:
        return self.send(Inbound.from_reply(reply_id, title))

    @property
    def where(self) -> tuple[str, str] | None:
        return (self.session.flow, self.session.step) if self.session else None


def bodies(result: EngineResult) -> list[str]:
    return [reply.get("body", reply["type"]) for reply in result.replies]


def menu_rows(reply: dict[str, Any]) -> list[str]:
    return [row["id"] for section in reply["sections"] for row in section["rows"]]


# ======================================================================= main menu


def test_greeting_opens_the_main_menu_as_a_list() -> None:
    chat = Chat()
    result = chat.send("Hi")
    assert len(result.replies) == 1
    menu = result.replies[0]
    assert menu["type"] == "list"
    assert menu["body"] == "Hi Thandi 👋 Welcome! What can I help you with today?"
    assert menu["button"] == "Open menu"
    assert menu_rows(menu) == ["fixtures", "wallet", "profile", "help", "human"]
    assert chat.where == ("main_menu", "menu")
    assert result.events == ("flow_started:main_menu",)
    assert result.handover is False and result.contact_updates == {}


def test_menu_greets_an_unnamed_contact_politely() -> None:
    chat = Chat(contact=ContactView(wa_id="27820000000"))
    assert chat.send("hello").replies[0]["body"].startswith("Hi there 👋")


@pytest.mark.parametrize("greeting", ["hi", "HELLO", "Hey!", "hi there", "Hello, good morning", "start", "  Menu  "])
def test_every_greeting_trigger_opens_the_menu(greeting: str) -> None:
    chat = Chat()
    chat.send(greeting)
    assert chat.where == ("main_menu", "menu")
    assert "fallback" not in chat.history[-1].events


@pytest.mark.parametrize("message", ["this", "whistle", "ahoy", "chi", "what's the score?", "🙂"])
def test_unmatched_text_gets_the_fallback_then_the_menu(message: str) -> None:
    chat = Chat()
    result = chat.send(message)
    assert bodies(result)[0] == SETTINGS.fallback_text
    assert result.replies[1]["type"] == "list"
    assert chat.where == ("main_menu", "menu")
    assert "fallback" in result.events


def test_tapping_a_menu_row_starts_the_flow_it_names() -> None:
    chat = Chat()
    chat.send("hi")
    result = chat.tap("profile", "My profile")
    assert bodies(result) == ["Let's set up your profile 📝\n\nFirst, what name should we call you?"]
    assert chat.where == ("profile", "ask_name")
    assert "flow_switched:main_menu->profile" in result.events


def test_typing_a_menu_option_title_works_like_tapping_it() -> None:
    chat = Chat()
    chat.send("hi")
    chat.send("my PROFILE")
    assert chat.where == ("profile", "ask_name")


def test_menu_option_naming_a_missing_flow_gets_the_fallback_not_a_crash() -> None:
    chat = Chat()
    chat.send("hi")
    result = chat.tap("fixtures", "Fixtures & odds")
    assert bodies(result)[0] == SETTINGS.unavailable_text
    assert result.replies[1]["type"] == "list"
    assert chat.where == ("main_menu", "menu")
    assert "flow_unavailable:fixtures" in result.events


def test_menu_option_naming_an_inactive_flow_gets_the_fallback() -> None:
    wallet = {
        "name": "wallet",
        "active": False,
        "trigger_keywords": ["wallet"],
        "steps": [step("show", "end_flow", {"message": text("Balance: 0")}, entry=True)],
    }
    chat = Chat(flows=flows_from(wallet))
    chat.send("hi")
    result = chat.tap("wallet", "My wallet")
    assert bodies(result)[0] == SETTINGS.unavailable_text
    assert "Balance: 0" not in bodies(result)
    # Typed with no session, the inactive flow's trigger is ignored too.
    chat.session = None
    assert "fallback" in chat.send("wallet").events


def test_invalid_menu_answers_reprompt_then_give_up() -> None:
    chat = Chat()
    chat.send("hi")
    first = chat.send("banana")
    assert bodies(first)[0] == "Please pick one of the options: tap *Open menu* below, or type one, e.g. *help*."
    assert first.replies[1]["type"] == "list"
    assert chat.session is not None and chat.session.retries == 1
    chat.send("banana again")
    assert chat.session is not None and chat.session.retries == 2
    last = chat.send("still banana")
    assert bodies(last) == [SETTINGS.gave_up_text]
    assert chat.session is None
    assert "max_retries:main_menu.menu" in last.events


# ======================================================================= help and human


def test_help_explains_commands_then_ends() -> None:
    chat = Chat()
    result = chat.send("help")
    (reply,) = result.replies
    assert reply["type"] == "buttons"
    assert "*cancel*: stop whatever we're doing" in reply["body"]
    assert [b["id"] for b in reply["buttons"]] == ["menu", "human"]
    assert chat.session is None
    assert result.events == ("global_command:help", "flow_started:help", "flow_ended:help")


def test_help_buttons_keep_working_after_the_flow_ended() -> None:
    chat = Chat()
    chat.send("help")
    assert chat.tap("menu", "Main menu").replies[0]["type"] == "list"
    assert chat.where == ("main_menu", "menu")
    chat.session = None
    result = chat.tap("human", "Talk to a human")
    assert result.handover is True


@pytest.mark.parametrize("message", ["human", "Agent", "I want to talk to a human please"])
def test_human_hands_over(message: str) -> None:
    chat = Chat()
    result = chat.send(message)
    assert result.handover is True
    assert chat.session is None
    assert bodies(result)[0].startswith("Sure, I'm connecting you with a member of our team 🙋")
    assert "handover:human" in result.events


# ======================================================================= profile


def test_profile_conversation_saves_name_and_email_on_the_contact() -> None:
    chat = Chat()
    chat.send("profile")
    assert chat.where == ("profile", "ask_name")
    result = chat.send("  Thandiwe Nkosi ")
    assert bodies(result) == [
        "Nice to meet you, Thandiwe Nkosi! What's your email address? We only use it for receipts and account updates."
    ]
    assert chat.session is not None and chat.session.variables == {"name": "Thandiwe Nkosi"}
    result = chat.send("Thandi.Nkosi@Example.CO.ZA")
    assert bodies(result) == [
        "Thanks Thandiwe Nkosi, saved thandi.nkosi@example.co.za ✅\n\nSend *menu* whenever you need anything else."
    ]
    assert result.contact_updates == {"name": "Thandiwe Nkosi", "email": "thandi.nkosi@example.co.za"}
    assert chat.session is None
    assert result.events[-1] == "flow_ended:profile"


@pytest.mark.parametrize("bad_name", ["T", " ", "x" * 61])
def test_profile_name_length_is_validated_and_reprompted(bad_name: str) -> None:
    chat = Chat()
    chat.send("profile")
    result = chat.send(bad_name)
    assert bodies(result) == [
        "Please send a name between 2 and 60 characters.",
        "Let's set up your profile 📝\n\nFirst, what name should we call you?",
    ]
    assert chat.where == ("profile", "ask_name")
    assert chat.session is not None and chat.session.retries == 1


def test_a_tapped_button_is_not_a_name() -> None:
    chat = Chat()
    chat.send("profile")
    chat.tap("yes", "Yes")
    assert chat.where == ("profile", "ask_name")
    assert chat.session is not None and chat.session.retries == 1


def test_profile_email_gives_up_after_three_retries_keeping_the_name() -> None:
    chat = Chat()
    chat.send("profile")
    chat.send("Thandi")
    hint = "Hmm, that doesn't look like an email address. Please send one like *name@example.com*."
    for attempt, bad in enumerate(["thandi at example", "thandi@", "@example.com"], start=1):
        result = chat.send(bad)
        assert bodies(result)[0] == hint
        assert chat.session is not None and chat.session.retries == attempt
    result = chat.send("still not an email")
    assert bodies(result) == [
        "No problem, Thandi. I've saved your name and we'll skip the email for now. "
        "Send *profile* whenever you'd like to add it."
    ]
    assert result.contact_updates == {"name": "Thandi"}
    assert chat.session is None
    assert "max_retries:profile.ask_email" in result.events


def test_an_answer_containing_a_global_word_is_still_an_answer() -> None:
    chat = Chat()
    chat.send("profile")
    chat.send("Thandi")
    result = chat.send("stop@example.com")
    assert result.contact_updates["email"] == "stop@example.com"


# ======================================================================= global commands


@pytest.mark.parametrize("word", ["cancel", "CANCEL!", "Cancel.", "stop"])
def test_cancel_ends_any_flow(word: str) -> None:
    chat = Chat()
    chat.send("profile")
    chat.send("Thandi")
    result = chat.send(word)
    assert chat.session is None
    assert len(result.replies) == 1 and "Send *menu* whenever you need me." in bodies(result)[0]
    assert "flow_cancelled:profile" in result.events


def test_menu_works_mid_flow_and_abandons_it() -> None:
    chat = Chat()
    chat.send("profile")
    result = chat.send("Menu")
    assert result.replies[0]["type"] == "list"
    assert chat.where == ("main_menu", "menu")
    assert "flow_abandoned:profile" in result.events


def test_a_menu_button_id_is_a_global_command_too() -> None:
    chat = Chat()
    chat.send("profile")
    chat.tap("menu", "Main menu")
    assert chat.where == ("main_menu", "menu")


def test_configured_global_commands() -> None:
    settings = EngineSettings(
        global_commands={
            "agent": GlobalCommand(CommandKind.HANDOVER, text="Hold on, {{ contact.name }}, fetching a human."),
            "ajuda": GlobalCommand(CommandKind.START_FLOW, flow="help"),
        }
    )
    chat = Chat(settings=settings)
    chat.send("profile")
    result = chat.send("Agent")
    assert result.handover is True and bodies(result) == ["Hold on, Thandi, fetching a human."]
    assert chat.session is None
    assert chat.send("AJUDA").events[:2] == ("global_command:ajuda", "flow_started:help")


# ======================================================================= expired sessions


def test_tapping_an_old_button_after_the_session_expired_says_so_then_shows_the_menu() -> None:
    chat = Chat()
    result = chat.tap("bet:1035046", "Arsenal to win")
    assert bodies(result)[0] == SETTINGS.session_expired_text
    assert result.replies[1]["type"] == "list"
    assert "session_expired_reply" in result.events
    assert chat.where == ("main_menu", "menu")


def _tap_without_session(reply_id: str, title: str, last_session_expired) -> EngineResult:
    return advance(
        flows=core_flows(), session=None, inbound=Inbound.from_reply(reply_id, title), contact=CONTACT,
        actions={}, settings=SETTINGS, now=NOW, last_session_expired=last_session_expired,
    )  # fmt: skip


def test_tapping_an_old_button_of_a_flow_that_ended_normally_is_a_fresh_message() -> None:
    asked = []
    result = _tap_without_session("bet:1035046", "Arsenal to win", lambda: asked.append(1) or False)
    assert asked == [1]  # asked once, only on this path
    assert bodies(result)[0] == SETTINGS.finished_reply_text
    assert SETTINGS.session_expired_text not in bodies(result)
    assert result.replies[1]["type"] == "list" and "finished_session_reply" in result.events
    # Its title naming a flow starts that flow, as the same words typed would.
    result = _tap_without_session("edit", "Edit my profile", False)
    assert result.session is not None and result.session.flow == "profile"
    assert SETTINGS.finished_reply_text not in bodies(result)


def test_tapping_an_old_button_after_a_real_timeout_says_so() -> None:
    result = _tap_without_session("bet:1035046", "Arsenal to win", lambda: True)
    assert bodies(result)[0] == SETTINGS.session_expired_text and "session_expired_reply" in result.events


def test_whether_the_last_session_expired_is_not_asked_on_the_message_path() -> None:
    def never() -> bool:
        raise AssertionError("asked without need")

    for inbound in (Inbound.from_text("hello"), Inbound.from_reply("profile", "My profile")):
        advance(flows=core_flows(), session=None, inbound=inbound, contact=CONTACT, actions={}, settings=SETTINGS,
                now=NOW, last_session_expired=never)  # fmt: skip


def test_an_old_menu_row_still_works_without_a_session() -> None:
    chat = Chat()
    result = chat.tap("profile", "My profile")
    assert chat.where == ("profile", "ask_name")
    assert SETTINGS.session_expired_text not in bodies(result)
    chat.session = None
    result = chat.tap("fixtures", "Fixtures & odds")  # a menu row: answered as the menu would
    assert bodies(result)[0] == SETTINGS.unavailable_text
    assert "menu_reply" in result.events


def test_a_stale_session_is_expired_by_the_engine_when_the_job_has_not_run_yet() -> None:
    chat = Chat()
    chat.send("profile")
    chat.now += timedelta(minutes=6)
    result = chat.send("Thandi")
    assert bodies(result)[0] == SETTINGS.session_expired_text
    assert result.replies[1]["type"] == "list"  # no extra "didn't catch that"
    assert len(result.replies) == 2
    assert "session_stale:profile" in result.events


def test_a_session_within_the_timeout_continues() -> None:
    chat = Chat()
    chat.send("profile")
    chat.now += timedelta(minutes=4, seconds=30)  # +20 s per message already: 4 min 50 s idle
    chat.send("Thandi")
    assert chat.where == ("profile", "ask_email")


def test_a_session_whose_flow_was_removed_or_edited_starts_afresh() -> None:
    chat = Chat()
    chat.session = Session(flow="deleted_flow", step="ask", variables={"x": 1})
    result = chat.send("hi")
    assert "session_invalid:deleted_flow.ask" in result.events
    assert chat.where == ("main_menu", "menu")
    chat.session = Session(flow="profile", step="save", variables={})  # not a question any more
    assert "session_invalid:profile.save" in chat.send("hi").events


def test_the_engine_never_mutates_the_stored_session() -> None:
    variables = {"name": "Thandi", "nested": {"a": [1]}}
    session = Session(flow="profile", step="ask_email", variables=variables, updated_at=NOW)
    result = advance(
        flows=core_flows(),
        session=session,
        inbound=Inbound.from_text("t@example.com"),
        contact=CONTACT,
        actions={},
        settings=SETTINGS,
        now=NOW,
    )
    assert result.contact_updates["email"] == "t@example.com"
    assert variables == {"name": "Thandi", "nested": {"a": [1]}}


# ======================================================================= keywords and triggers


def test_keyword_triggers_match_whole_words_ignoring_case_and_accents() -> None:
    ola = {
        "name": "portugues",
        "trigger_keywords": ["olá", "bom dia"],
        "steps": [step("hi", "end_flow", {"message": text("Olá! Em que posso ajudar?")}, entry=True)],
    }
    flows = flows_from(ola)
    for message in ["OLA", "ola!", "Olá, tudo bem?", "Bom dia", "BOM-DIA"]:
        chat = Chat(flows=flows)
        assert bodies(chat.send(message)) == ["Olá! Em que posso ajudar?"], message
    for message in ["olaf", "bom", "dia bom", "holanda"]:
        chat = Chat(flows=flows)
        assert "fallback" in chat.send(message).events, message


def test_the_earliest_trigger_in_the_message_wins() -> None:
    chat = Chat()
    chat.send("help me with my profile")
    assert chat.history[-1].events[0] == "flow_started:help"
    chat = Chat()
    chat.send("my profile, help!")
    assert chat.where == ("profile", "ask_name")


@pytest.mark.parametrize(
    ("text_in", "keyword", "matches"),
    [
        ("hi", "hi", True),
        ("Hi there", "hi", True),
        ("this", "hi", False),
        ("chi", "hi", False),
        ("hi-fi", "hi", True),  # punctuation separates words
        ("Olá", "ola", True),
        ("OLA", "olá", True),
        ("sign up now", "sign up", True),
        ("signup", "sign up", False),
        ("", "hi", False),
        (None, "hi", False),
        ("Straße", "strasse", True),
    ],
)
def test_keyword_matching(text_in: str | None, keyword: str, matches: bool) -> None:
    assert keyword_matches(text_in, keyword) is matches


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)


@given(st.text(max_size=80))
def test_normalize_is_idempotent_and_plain(text_in: str) -> None:
    once = normalize_text(text_in)
    assert normalize_text(once) == once
    assert once == once.strip() and "  " not in once


@given(
    before=st.lists(words, max_size=5),
    after=st.lists(words, max_size=5),
    keyword=words,
    sep=st.sampled_from([" ", ", ", "! ", " - ", "\n"]),
)
def test_a_keyword_surrounded_by_anything_matches(before: list[str], after: list[str], keyword: str, sep: str) -> None:
    assert keyword_matches(sep.join([*before, keyword.upper(), *after]), keyword)


@given(message=st.lists(words, max_size=6), keyword=words)
def test_a_keyword_matches_only_as_a_whole_word(message: list[str], keyword: str) -> None:
    assert keyword_matches(" ".join(message), keyword) is (keyword in message)


# ======================================================================= questions and transitions


def question_flow(expect: Any, *, extra: dict[str, Any] | None = None, prompt: dict[str, Any] | None = None) -> dict:
    return {
        "name": "quiz",
        "trigger_keywords": ["quiz"],
        "steps": [
            step(
                "ask",
                "question",
                {"prompt": prompt or text("Your answer?"), "expect": expect, "save_to": "answer", **(extra or {})},
                entry=True,
            ),
            step("done", "end_flow", {"message": text("Got {{ answer }}")}),
        ],
        "transitions": [go("ask", "done")],
    }


@pytest.mark.parametrize(
    ("expect", "inbound", "saved"),
    [
        ({"type": "number", "min": 1, "max": 100}, Inbound.from_text("42"), 42),
        ("number", Inbound.from_text("12,50"), "12.50"),
        ("email", Inbound.from_text("mailto:Punter@Example.com"), "punter@example.com"),
        ("phone", Inbound.from_text("+27 (82) 123-4567"), "27821234567"),
        ("date", Inbound.from_text("31/03/2025"), "2025-03-31"),
        ("date", Inbound.from_text("2025-3-1"), "2025-03-01"),
        ({"type": "regex", "pattern": "[A-Z]{3}[0-9]{2}", "ignore_case": True}, Inbound.from_text("abc12"), "abc12"),
        ("location", Inbound.from_location(-29.8587, 31.0218), {"latitude": -29.8587, "longitude": 31.0218}),
        (
            "media",
            Inbound.from_media("image", "wamedia.123", "my slip"),
            {"media_id": "wamedia.123", "media_type": "image"},
        ),
        ({"type": "choice", "choices": ["yes", "no"]}, Inbound.from_text("YES"), "yes"),
        (
            {"type": "choice", "choices": [{"id": "ars", "title": "Arsenal"}, {"id": "che", "title": "Chelsea"}]},
            Inbound.from_text("chelsea"),
            "che",
        ),
    ],
)
def test_valid_answers_are_saved_typed(expect: Any, inbound: Inbound, saved: Any) -> None:
    chat = Chat(flows=flows_from(question_flow(expect)))
    chat.send("quiz")
    result = chat.send(inbound)
    assert chat.session is None
    last = result.replies[-1]["body"]
    assert last.startswith("Got ")
    assert chat.history[-1].events == ("flow_ended:quiz",)
    # The typed value reached the template context.
    expected_text = saved if isinstance(saved, str) else json.dumps(saved) if isinstance(saved, dict) else str(saved)
    assert last == f"Got {expected_text}"


@pytest.mark.parametrize(
    ("expect", "inbound", "hint"),
    [
        (
            {"type": "number", "min": 1, "max": 100},
            Inbound.from_text("101"),
            "Please reply with a number between 1 and 100.",
        ),
        ("number", Inbound.from_text("1,000"), "Please reply with a number, e.g. 25."),
        ("email", Inbound.from_text("punter@example"), "That doesn't look like an email address"),
        ("phone", Inbound.from_text("call me"), "Please send a phone number with its country code"),
        ("date", Inbound.from_text("31/02/2025"), "Please send a date as YYYY-MM-DD or DD/MM/YYYY"),
        ("location", Inbound.from_text("Durban"), "Please share a location"),
        ({"type": "media", "media_types": ["document"]}, Inbound.from_media("image", "m1"), "Please send document."),
        ({"type": "choice", "choices": ["yes", "no"]}, Inbound.from_text("maybe"), "type one of: yes, no."),
        ({"type": "text", "max_length": 5}, Inbound.from_text("too long"), "at most 5 characters"),
    ],
)
def test_invalid_answers_get_a_default_hint_naming_what_was_expected(expect: Any, inbound: Inbound, hint: str) -> None:
    chat = Chat(flows=flows_from(question_flow(expect)))
    chat.send("quiz")
    result = chat.send(inbound)
    assert hint in bodies(result)[0]
    assert bodies(result)[1] == "Your answer?"
    assert chat.where == ("quiz", "ask")


def test_choice_from_prompt_buttons_routes_by_reply_id_whether_tapped_or_typed() -> None:
    flow = {
        "name": "confirm",
        "trigger_keywords": ["confirm"],
        "steps": [
            step(
                "ask",
                "question",
                {
                    "prompt": {
                        "type": "buttons",
                        "body": "Place R{{ stake | default:'20' }} on Arsenal?",
                        "buttons": [{"id": "yes", "title": "Yes, place it"}, {"id": "no", "title": "No thanks"}],
                    },
                    "expect": {"type": "choice"},
                },
                entry=True,
            ),
            step("placed", "end_flow", {"message": text("Bet placed ✅")}),
            step("dropped", "end_flow", {"message": text("No bet placed.")}),
        ],
        "transitions": [
            go("ask", "placed", {"type": "reply_id", "ids": ["yes"]}),
            go("ask", "dropped", {"type": "reply_id", "ids": ["no"]}, order=1),
        ],
    }
    flows = flows_from(flow)
    chat = Chat(flows=flows)
    assert chat.send("confirm").replies[0]["body"] == "Place R20 on Arsenal?"
    assert bodies(chat.tap("yes", "Yes, place it")) == ["Bet placed ✅"]
    chat = Chat(flows=flows)
    chat.send("confirm")
    assert bodies(chat.send("no thanks")) == ["No bet placed."]


def test_transitions_are_tried_in_order_and_first_match_wins() -> None:
    flow = {
        "name": "age",
        "trigger_keywords": ["age"],
        "steps": [
            step("ask", "question", {"prompt": text("Age?"), "expect": "number", "save_to": "age"}, entry=True),
            step("minor", "end_flow", {"message": text("Sorry, 18+ only.")}),
            step("senior", "end_flow", {"message": text("Welcome, senior punter!")}),
            step("adult", "end_flow", {"message": text("Welcome!")}),
        ],
        "transitions": [
            go("ask", "adult", {"type": "always"}, order=9),
            go("ask", "minor", {"type": "variable_compare", "variable": "age", "op": "lt", "value": 18}, order=1),
            go("ask", "senior", {"type": "variable_compare", "variable": "age", "op": "ge", "value": 65}, order=2),
        ],
    }
    flows = flows_from(flow)
    for answer, reply in [("17", "Sorry, 18+ only."), ("70", "Welcome, senior punter!"), ("30", "Welcome!")]:
        chat = Chat(flows=flows)
        chat.send("age")
        assert bodies(chat.send(answer)) == [reply]


def test_an_invalid_answer_can_be_routed_by_an_inbound_condition() -> None:
    flow = question_flow("email", extra={"max_retries": 0})
    flow["steps"].append(step("skipped", "end_flow", {"message": text("Skipped.")}))
    flow["transitions"].insert(0, go("ask", "skipped", {"type": "keyword", "keywords": ["skip"]}))
    flows = flows_from(flow)
    chat = Chat(flows=flows)
    chat.send("quiz")
    assert bodies(chat.send("skip this one")) == ["Skipped."]
    # ...but "always" never swallows an invalid answer: it re-prompts / gives up instead.
    chat = Chat(flows=flows)
    chat.send("quiz")
    assert bodies(chat.send("nope")) == [SETTINGS.gave_up_text]


def test_answer_valid_false_routes_invalid_answers() -> None:
    flow = question_flow("number")
    flow["steps"].append(step("human", "human_handover", {"message": text("Let me get someone to help.")}))
    flow["transitions"].append(go("ask", "human", {"type": "answer_valid", "valid": False}, order=1))
    chat = Chat(flows=flows_from(flow))
    chat.send("quiz")
    result = chat.send("forty-two")
    assert bodies(result) == ["Let me get someone to help."]
    assert result.handover is True


def test_max_retries_can_hand_over_and_zero_retries_gives_up_at_once() -> None:
    chat = Chat(flows=flows_from(question_flow("email", extra={"max_retries": 1, "on_max_retries": "handover"})))
    chat.send("quiz")
    chat.send("x")
    result = chat.send("y")
    assert result.handover is True and bodies(result) == [SETTINGS.handover_text]
    chat = Chat(flows=flows_from(question_flow("email", extra={"max_retries": 0, "invalid_hint": "Email please"})))
    chat.send("quiz")
    assert bodies(chat.send("x")) == [SETTINGS.gave_up_text]


def test_a_tapped_trigger_the_question_does_not_accept_switches_flow() -> None:
    wallet = {
        "name": "wallet",
        "trigger_keywords": ["wallet"],
        "steps": [step("show", "end_flow", {"message": text("Balance: R150.00")}, entry=True)],
    }
    chat = Chat(flows=flows_from(wallet))
    chat.send("profile")
    result = chat.tap("wallet", "My wallet")  # a row of an older menu
    assert "flow_switched:profile->wallet" in result.events
    assert bodies(result) == ["Balance: R150.00"]
    # Typed, the same word is just a (valid) name: only taps are unambiguous.
    chat.send("profile")
    chat.send("wallet")
    assert chat.where == ("profile", "ask_email")


def test_help_and_human_work_mid_flow() -> None:
    chat = Chat()
    chat.send("profile")
    result = chat.send("Help")
    assert result.events[:3] == ("global_command:help", "flow_abandoned:profile", "flow_started:help")
    chat.send("profile")
    assert chat.send("agent").handover is True


def test_an_option_the_question_offers_beats_a_global_word() -> None:
    flow = {
        "name": "ticket",
        "trigger_keywords": ["ticket"],
        "steps": [
            step(
                "ask",
                "question",
                {
                    "prompt": {
                        "type": "buttons",
                        "body": "Your ticket is pending. What now?",
                        "buttons": [{"id": "keep", "title": "Keep it"}, {"id": "cancel", "title": "Cancel ticket"}],
                    },
                    "expect": {"type": "choice"},
                },
                entry=True,
            ),
            step("cancelled", "end_flow", {"message": text("Ticket cancelled, stake refunded.")}),
            step("kept", "end_flow", {"message": text("Ticket kept.")}),
        ],
        "transitions": [
            go("ask", "cancelled", {"type": "reply_id", "ids": ["cancel"]}),
            go("ask", "kept", order=1),
        ],
    }
    chat = Chat(flows=flows_from(flow))
    chat.send("ticket")
    assert bodies(chat.tap("cancel", "Cancel ticket")) == ["Ticket cancelled, stake refunded."]
    chat.send("ticket")
    assert bodies(chat.send("cancel")) == ["Ticket cancelled, stake refunded."]
    chat.send("ticket")
    assert chat.send("stop").events[0] == "global_command:stop"  # not an option here


@pytest.mark.parametrize("message_type", ["reaction", "system"])
def test_reactions_and_system_notices_get_no_reply_and_keep_the_session(message_type: str) -> None:
    chat = Chat()
    chat.send("profile")
    waiting = chat.session
    result = chat.send(Inbound(message_type=message_type, text="👍"))
    assert result.replies == () and result.session == waiting
    assert result.events == (f"ignored:{message_type}",)
    chat.session = None
    assert chat.send(Inbound(message_type=message_type)).replies == ()


def test_a_message_switching_flows_keeps_earlier_replies_in_order() -> None:
    intro = {
        "name": "promo",
        "trigger_keywords": ["promo"],
        "steps": [
            step("announce", "send_message", {"message": text("🔥 Weekend boost: +10% on accumulators!")}, entry=True),
            step("remember", "action", {"operation": "set_variables", "values": {"source": "promo"}}),
            step(
                "handoff",
                "action",
                {"operation": "start_flow", "flow": "profile", "variables": {"via": "{{ source }}"}},
            ),
        ],
        "transitions": [go("announce", "remember"), go("remember", "handoff")],
    }
    chat = Chat(flows=flows_from(intro))
    result = chat.send("promo")
    assert bodies(result) == [
        "🔥 Weekend boost: +10% on accumulators!",
        "Let's set up your profile 📝\n\nFirst, what name should we call you?",
    ]
    assert chat.where == ("profile", "ask_name")
    assert chat.session is not None and chat.session.variables == {"via": "promo"}
    assert result.events == ("flow_started:promo", "flow_switched:promo->profile", "flow_started:profile")


def test_a_non_waiting_step_with_no_matching_transition_ends_the_flow() -> None:
    flow = {
        "name": "vip",
        "trigger_keywords": ["vip"],
        "steps": [
            step("check", "send_message", {"message": text("Checking your status…")}, entry=True),
            step("vip", "end_flow", {"message": text("You're VIP!")}),
        ],
        "transitions": [go("check", "vip", {"type": "variable_equals", "variable": "contact.tier", "value": "gold"})],
    }
    chat = Chat(flows=flows_from(flow))
    result = chat.send("vip")
    assert bodies(result) == ["Checking your status…"]
    assert chat.session is None
    assert result.events[-2:] == ("no_transition:vip.check", "flow_ended:vip")
    gold = Chat(flows=flows_from(flow), contact=ContactView(wa_id="1", fields={"tier": "gold"}))
    assert bodies(gold.send("vip")) == ["Checking your status…", "You're VIP!"]


# ======================================================================= the loop bound


def spinning_flow() -> dict[str, Any]:
    """A conditional loop of non-waiting steps (passes validation: it *could* terminate)."""
    return {
        "name": "spin",
        "trigger_keywords": ["spin"],
        "steps": [
            step("a", "action", {"operation": "set_variables", "values": {"turn": "a"}}, entry=True),
            step("b", "action", {"operation": "set_variables", "values": {"turn": "b"}}),
            step("out", "end_flow", {"message": text("Done")}),
        ],
        "transitions": [
            go("a", "b"),
            go("b", "out", {"type": "variable_equals", "variable": "turn", "value": "never"}),
            go("b", "a", order=1),
        ],
    }


def test_a_loop_of_non_waiting_steps_is_cut_off_politely() -> None:
    chat = Chat(flows=flows_from(spinning_flow()))
    result = chat.send("spin")
    assert bodies(result) == [SETTINGS.loop_text]
    assert chat.session is None
    assert any(event.startswith("loop_limit:spin.") for event in result.events)


def test_the_loop_bound_is_configurable_and_counts_steps_across_flows() -> None:
    ping = {
        "name": "ping",
        "trigger_keywords": ["ping"],
        "steps": [
            step("say", "send_message", {"message": text("ping")}, entry=True),
            step("go", "action", {"operation": "start_flow", "flow": "pong"}),
        ],
        "transitions": [go("say", "go")],
    }
    pong = {
        "name": "pong",
        "trigger_keywords": ["pong"],
        "steps": [
            step("say", "send_message", {"message": text("pong")}, entry=True),
            step("go", "action", {"operation": "start_flow", "flow": "ping"}),
        ],
        "transitions": [go("say", "go")],
    }
    chat = Chat(flows=flows_from(ping, pong), settings=EngineSettings(max_auto_steps=5))
    result = chat.send("ping")
    assert bodies(result) == ["ping", "pong", "ping", SETTINGS.loop_text]
    assert chat.session is None


def test_the_bound_holds_even_for_an_unvalidated_unconditional_loop() -> None:
    looping = FlowDefinition(
        name="raw",
        trigger_keywords=("raw",),
        steps={
            "a": StepDefinition("a", "send_message", {"message": text("again")}),
            "b": StepDefinition("b", "action", {"operation": "set_variables", "values": {"x": 1}}),
        },
        transitions=(TransitionDefinition("a", "b"), TransitionDefinition("b", "a")),
        entry_step="a",
    )
    chat = Chat(flows={**core_flows(), "raw": looping})
    result = chat.send("raw")
    assert result.replies[-1]["body"] == SETTINGS.loop_text
    assert len(result.replies) <= SETTINGS.max_auto_steps


# ======================================================================= actions


FIXTURES = [
    {"id": "1035046", "title": "Arsenal v Chelsea", "kickoff": "Sat 15:00"},
    {"id": "1035047", "title": "Everton v Fulham", "kickoff": "Sat 17:30"},
]


def fixtures_flow() -> dict[str, Any]:
    return {
        "name": "fixtures",
        "trigger_keywords": ["fixtures"],
        "steps": [
            step(
                "load",
                "action",
                {
                    "operation": "call",
                    "action": "football.list_fixtures",
                    "inputs": {"league": "{{ league_id | default:'39' }}", "label": "League {{ contact.city }}"},
                    "save_as": "listing",
                },
                entry=True,
            ),
            step(
                "pick",
                "question",
                {
                    "prompt": text("Which match? ({{ listing.count }} this weekend)"),
                    "expect": {"type": "choice", "choices_from": "listing.fixtures"},
                    "save_to": "fixture_id",
                },
            ),
            step(
                "bet",
                "action",
                {"operation": "call", "action": "football.place_bet", "inputs": {"fixture": "{{ fixture_id }}"}},
            ),
            step("done", "end_flow", {"message": text("Ticket {{ ticket }} placed on {{ fixture_id }} 🎟️")}),
        ],
        "transitions": [go("load", "pick"), go("pick", "bet"), go("bet", "done")],
    }


def list_fixtures(call: ActionCall) -> ActionResult:
    rows = [{"id": f["id"], "title": f["title"], "description": f["kickoff"]} for f in FIXTURES]
    return ActionResult(
        variables={"fixtures": FIXTURES, "count": len(FIXTURES), "league": call.inputs["league"]},
        replies=(
            {
                "type": "list",
                "body": "This weekend:",
                "button": "Fixtures",
                "sections": [{"title": "EPL", "rows": rows}],
            },
        ),
    )


def test_actions_receive_rendered_inputs_and_feed_later_steps() -> None:
    calls: list[ActionCall] = []

    def list_and_record(call: ActionCall) -> ActionResult:
        calls.append(call)
        return list_fixtures(call)

    def place_bet(call: ActionCall) -> ActionResult:
        calls.append(call)
        return ActionResult(
            variables={"ticket": "T-0001"}, contact_updates={"last_bet_fixture": call.inputs["fixture"]}
        )

    chat = Chat(
        flows=flows_from(fixtures_flow()),
        actions={"football.list_fixtures": list_and_record, "football.place_bet": place_bet},
    )
    result = chat.send("fixtures")
    assert [r["type"] for r in result.replies] == ["list", "text"]  # action reply first, then the prompt
    assert result.replies[1]["body"] == "Which match? (2 this weekend)"
    assert calls[0].inputs == {"league": "39", "label": "League Durban"}
    assert calls[0].contact == CONTACT and calls[0].now == NOW
    assert chat.session is not None and chat.session.variables["listing"]["count"] == 2
    assert "action_ok:football.list_fixtures" in result.events

    result = chat.tap("1035047", "Everton v Fulham")
    assert calls[1].inputs == {"fixture": "1035047"}
    assert calls[1].variables["fixture_id"] == "1035047"
    assert bodies(result) == ["Ticket T-0001 placed on 1035047 🎟️"]
    assert result.contact_updates == {"last_bet_fixture": "1035047"}


def test_typed_fixture_title_is_accepted_from_a_dynamic_choice_list() -> None:
    chat = Chat(
        flows=flows_from(fixtures_flow()),
        actions={
            "football.list_fixtures": list_fixtures,
            "football.place_bet": lambda call: ActionResult({"ticket": "T-2"}),
        },
    )
    chat.send("fixtures")
    assert bodies(chat.send("arsenal v chelsea")) == ["Ticket T-2 placed on 1035046 🎟️"]


def test_a_failing_action_apologises_ends_the_flow_and_keeps_earlier_replies() -> None:
    def broken(call: ActionCall) -> ActionResult:
        raise ConnectionError("API-Football timed out")

    flow = fixtures_flow()
    flow["steps"].insert(0, step("hello", "send_message", {"message": text("Loading fixtures…")}, entry=True))
    flow["steps"][1]["entry"] = False
    flow["transitions"].insert(0, go("hello", "load"))
    chat = Chat(flows=flows_from(flow), actions={"football.list_fixtures": broken})
    result = chat.send("fixtures")
    assert bodies(result) == ["Loading fixtures…", SETTINGS.error_text]
    assert chat.session is None
    assert "action_failed:football.list_fixtures:ConnectionError" in result.events


def test_an_unregistered_action_is_a_polite_failure() -> None:
    chat = Chat(flows=flows_from(fixtures_flow()), actions={})
    result = chat.send("fixtures")
    assert bodies(result) == [SETTINGS.error_text]
    assert "action_missing:football.list_fixtures" in result.events


@pytest.mark.parametrize(
    "bad_result",
    [
        "not an ActionResult",
        ActionResult(variables={"when": datetime(2025, 3, 1, tzinfo=UTC)}),  # not JSON
        ActionResult(replies=({"body": "no type"},)),
        ActionResult(variables={"contact": {"name": "hijack"}}),  # reserved name
    ],
)
def test_a_misbehaving_action_result_is_a_failure_not_a_corrupt_session(bad_result: Any) -> None:
    flow = fixtures_flow()
    flow["steps"][0]["config"].pop("save_as")
    chat = Chat(flows=flows_from(flow), actions={"football.list_fixtures": lambda call: bad_result})
    result = chat.send("fixtures")
    assert bodies(result) == [SETTINGS.error_text]
    assert "action_bad_result:football.list_fixtures" in result.events
    assert chat.session is None


def test_an_action_cannot_change_the_flow_state_behind_the_engines_back() -> None:
    def sneaky(call: ActionCall) -> ActionResult:
        with pytest.raises(TypeError):
            call.variables["listing"] = "hacked"  # type: ignore[index]
        return list_fixtures(call)

    chat = Chat(flows=flows_from(fixtures_flow()), actions={"football.list_fixtures": sneaky})
    chat.send("fixtures")
    assert chat.session is not None and chat.session.variables["listing"]["count"] == 2


def test_update_contact_never_blanks_a_field_from_a_missing_variable() -> None:
    flow = {
        "name": "save",
        "trigger_keywords": ["save"],
        "steps": [
            step(
                "write",
                "action",
                {"operation": "update_contact", "fields": {"email": "{{ email }}", "city": "Cape Town"}},
                entry=True,
            ),
            step("done", "end_flow", {"message": text("Saved, {{ contact.name }} from {{ contact.city }}.")}),
        ],
        "transitions": [go("write", "done")],
    }
    chat = Chat(flows=flows_from(flow))
    result = chat.send("save")
    assert result.contact_updates == {"city": "Cape Town"}
    assert "contact_update_skipped:email" in result.events
    assert bodies(result) == ["Saved, Thandi from Cape Town."]  # later steps see the update


def test_reserved_context_names_cannot_be_shadowed_by_variables() -> None:
    chat = Chat()
    chat.session = Session(flow="profile", step="ask_email", variables={"name": "Thandi", "contact": {"name": "evil"}})
    result = chat.send("t@example.com")
    assert result.contact_updates == {"name": "Thandi", "email": "t@example.com"}


def test_no_main_menu_flow_still_answers() -> None:
    chat = Chat(flows={}, settings=EngineSettings(main_menu_flow="main_menu"))
    result = chat.send("anything")
    assert bodies(result) == [SETTINGS.fallback_text]
    assert chat.session is None


# ======================================================================= validators and conditions


def test_validators_return_ok_value_hint() -> None:
    assert validate_text("  Thandi ", min_length=2) == (True, "Thandi", "")
    assert validate_text("T", min_length=2, max_length=60).ok is False
    assert validate_number("7", integer=True) == (True, 7, "")
    assert validate_number("7.5", integer=True).ok is False
    assert validate_number("-3.25") == (True, "-3.25", "")
    assert validate_number("nan").ok is False and validate_number("1e5").ok is False
    assert validate_email("a@b.co") == (True, "a@b.co", "")
    assert validate_email("a@@b.co").ok is False and validate_email("a..b@x.com").ok is False
    assert validate_phone("0027 82 123 4567") == (True, "27821234567", "")
    assert validate_phone("+0 123 4567").ok is False and validate_phone("12345").ok is False
    assert validate_date("2024-02-29") == (True, "2024-02-29", "")
    assert validate_date("29/02/2025").ok is False and validate_date("02/29/2024").ok is False
    choices = [Choice("ars", "Arsenal"), Choice("che", "Chelsea")]
    assert validate_choice(None, "che", choices) == (True, "che", "")
    assert validate_choice(None, "mun", choices).ok is False
    assert validate_choice("ARSENAL", None, choices).value == "ars"
    assert validate_regex("ABC12", "[A-Z]{3}[0-9]{2}") == (True, "ABC12", "")
    assert validate_regex("ABC123", "[A-Z]{3}[0-9]{2}").ok is False  # whole reply must match
    assert validate_media("video", "m1", ("image",)).ok is False
    assert validate_location("location", 91, 0).ok is False


def test_conditions() -> None:
    context = ConditionContext(
        text="Yes please!",
        reply_id="yes",
        message_type="interactive",
        variables={"age": "42", "tags": ["vip", "new"], "team": "Kaizer Chiefs", "odds": 2.5},
    )
    assert evaluate({"type": "always"}, context)
    assert evaluate({"type": "keyword", "keywords": ["nope", "YES"]}, context)
    assert not evaluate({"type": "keyword", "keywords": ["es"]}, context)
    assert evaluate({"type": "regex", "pattern": "^yes"}, context) is False
    assert evaluate({"type": "regex", "pattern": "^yes", "ignore_case": True}, context)
    assert evaluate({"type": "reply_id", "ids": ["no", "yes"]}, context)
    assert evaluate({"type": "message_type", "types": ["interactive"]}, context)
    assert evaluate({"type": "variable_equals", "variable": "age", "value": 42}, context)
    assert not evaluate({"type": "variable_equals", "variable": "age", "value": "042"}, context)
    assert evaluate({"type": "variable_exists", "variable": "tags.1"}, context)
    assert not evaluate({"type": "variable_exists", "variable": "tags.5"}, context)
    assert evaluate({"type": "variable_contains", "variable": "tags", "value": "vip"}, context)
    assert evaluate({"type": "variable_contains", "variable": "team", "value": "chiefs"}, context)
    assert evaluate({"type": "variable_compare", "variable": "odds", "op": "gt", "value": 2}, context)
    assert evaluate({"type": "variable_compare", "variable": "age", "op": "le", "value": "42"}, context)
    assert not evaluate({"type": "variable_compare", "variable": "team", "op": "gt", "value": 1}, context)
    assert not evaluate({"type": "answer_valid"}, context)  # outside a question
    assert not evaluate({"type": "no_such_type"}, context)
    assert not evaluate({"type": "regex", "pattern": "(unclosed"}, context)  # never raises
