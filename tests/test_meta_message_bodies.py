"""Outbound specs -> exact Graph API JSON, WhatsApp's limits, text splitting, error classes.

Expected bodies are written out in full in the shape of Meta's "Send messages" examples, so
a change to any key, nesting or default fails here rather than at Meta.
"""

from __future__ import annotations

import copy
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from meta_integration.errors import ErrorClass, classify_error
from meta_integration.message_bodies import (
    OutboundValidationError,
    build_message,
    button_message,
    list_message,
    location_message,
    media_message,
    read_receipt,
    split_text,
    template_message,
    text_message,
    validate_outbound,
)

TO = "16505551234"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="


def envelope(msg_type: str, content: dict, **extra) -> dict:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        **extra,
        "type": msg_type,
        msg_type: content,
    }


# --------------------------------------------------------------------------------------
# Each spec kind -> exact JSON
# --------------------------------------------------------------------------------------


def test_text_spec():
    assert build_message(TO, {"type": "text", "body": "Welcome to BetBot!"}) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "text": {"preview_url": False, "body": "Welcome to BetBot!"},
    }


def test_text_spec_with_preview_and_reply_to():
    spec = {
        "type": "text",
        "body": "Fixtures: https://example.com/fixtures",
        "preview_url": True,
        "reply_to": WAMID,
    }
    assert build_message(TO, spec) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "context": {"message_id": WAMID},
        "type": "text",
        "text": {"preview_url": True, "body": "Fixtures: https://example.com/fixtures"},
    }


def test_buttons_spec_with_header_and_footer():
    spec = {
        "type": "buttons",
        "header": "Main menu",
        "body": "What would you like to do?",
        "footer": "Reply STOP to opt out",
        "buttons": [
            {"id": "menu.fixtures", "title": "Fixtures"},
            {"id": "menu.wallet", "title": "My wallet"},
            {"id": "menu.help", "title": "Help"},
        ],
    }
    assert build_message(TO, spec) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "header": {"type": "text", "text": "Main menu"},
            "body": {"text": "What would you like to do?"},
            "footer": {"text": "Reply STOP to opt out"},
            "action": {
                "buttons": [
                    {
                        "type": "reply",
                        "reply": {"id": "menu.fixtures", "title": "Fixtures"},
                    },
                    {
                        "type": "reply",
                        "reply": {"id": "menu.wallet", "title": "My wallet"},
                    },
                    {"type": "reply", "reply": {"id": "menu.help", "title": "Help"}},
                ]
            },
        },
    }


def test_buttons_spec_null_optionals_are_omitted():
    spec = {
        "type": "buttons",
        "body": "Confirm the bet?",
        "header": None,
        "footer": None,
        "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
    }
    assert build_message(TO, spec)["interactive"] == {
        "type": "button",
        "body": {"text": "Confirm the bet?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "no", "title": "No"}},
            ]
        },
    }


def test_list_spec():
    spec = {
        "type": "list",
        "header": "Leagues",
        "body": "Pick a league to see this week's fixtures.",
        "footer": "Odds update every 10 minutes",
        "button": "Choose league",
        "sections": [
            {
                "title": "Europe",
                "rows": [
                    {
                        "id": "league.39",
                        "title": "Premier League",
                        "description": "England",
                    },
                    {"id": "league.140", "title": "La Liga", "description": "Spain"},
                ],
            },
            {"title": "Africa", "rows": [{"id": "league.288", "title": "PSL"}]},
        ],
        "reply_to": WAMID,
    }
    assert build_message(TO, spec) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "context": {"message_id": WAMID},
        "type": "interactive",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Leagues"},
            "body": {"text": "Pick a league to see this week's fixtures."},
            "footer": {"text": "Odds update every 10 minutes"},
            "action": {
                "button": "Choose league",
                "sections": [
                    {
                        "title": "Europe",
                        "rows": [
                            {
                                "id": "league.39",
                                "title": "Premier League",
                                "description": "England",
                            },
                            {
                                "id": "league.140",
                                "title": "La Liga",
                                "description": "Spain",
                            },
                        ],
                    },
                    {"title": "Africa", "rows": [{"id": "league.288", "title": "PSL"}]},
                ],
            },
        },
    }


def test_single_section_list_needs_no_title():
    spec = {
        "type": "list",
        "body": "Your open tickets",
        "button": "View",
        "sections": [{"rows": [{"id": "ticket.17", "title": "Ticket #17"}]}],
    }
    assert build_message(TO, spec)["interactive"]["action"] == {
        "button": "View",
        "sections": [{"rows": [{"id": "ticket.17", "title": "Ticket #17"}]}],
    }


@pytest.mark.parametrize(
    ("spec", "expected_type", "expected_content"),
    [
        (
            {
                "type": "media",
                "media_type": "image",
                "id": "1479537139650973",
                "caption": "Your ticket",
            },
            "image",
            {"id": "1479537139650973", "caption": "Your ticket"},
        ),
        (
            {
                "type": "media",
                "media_type": "document",
                "link": "https://example.com/statements/2025-06.pdf",
                "caption": "June statement",
                "filename": "statement-2025-06.pdf",
            },
            "document",
            {
                "link": "https://example.com/statements/2025-06.pdf",
                "caption": "June statement",
                "filename": "statement-2025-06.pdf",
            },
        ),
        (
            {"type": "media", "media_type": "audio", "id": "5531208753"},
            "audio",
            {"id": "5531208753"},
        ),
        (
            {
                "type": "media",
                "media_type": "video",
                "link": "https://example.com/goal.mp4",
            },
            "video",
            {"link": "https://example.com/goal.mp4"},
        ),
        (
            {"type": "media", "media_type": "sticker", "id": "798882015472548"},
            "sticker",
            {"id": "798882015472548"},
        ),
    ],
    ids=[
        "image-id-caption",
        "document-link-filename",
        "audio",
        "video-link",
        "sticker",
    ],
)
def test_media_specs(spec, expected_type, expected_content):
    assert build_message(TO, spec) == envelope(expected_type, expected_content)


def test_location_spec():
    spec = {
        "type": "location",
        "latitude": 37.44216251868683,
        "longitude": -122.16153582049394,
        "name": "Philz Coffee",
        "address": "101 Forest Ave, Palo Alto, CA 94301",
    }
    assert build_message(TO, spec) == envelope(
        "location",
        {
            "latitude": 37.44216251868683,
            "longitude": -122.16153582049394,
            "name": "Philz Coffee",
            "address": "101 Forest Ave, Palo Alto, CA 94301",
        },
    )


def test_template_spec_with_components():
    components = [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Arsenal v Chelsea"},
                {"type": "text", "text": "2.10"},
            ],
        }
    ]
    spec = {
        "type": "template",
        "name": "odds_alert",
        "language": "en_US",
        "components": components,
    }
    assert build_message(TO, spec) == envelope(
        "template",
        {"name": "odds_alert", "language": {"code": "en_US"}, "components": components},
    )


def test_template_spec_without_components():
    assert build_message(
        TO, {"type": "template", "name": "hello_world", "language": "en_US"}
    ) == envelope("template", {"name": "hello_world", "language": {"code": "en_US"}})


def test_read_receipt():
    assert read_receipt(WAMID) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": WAMID,
    }
    assert read_receipt(WAMID, typing_indicator=True) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": WAMID,
        "typing_indicator": {"type": "text"},
    }


def test_individual_builders_match_build_message():
    assert text_message(TO, "hi") == build_message(TO, {"type": "text", "body": "hi"})
    assert button_message(
        TO, "Go?", [{"id": "y", "title": "Yes"}], footer="f"
    ) == build_message(
        TO,
        {
            "type": "buttons",
            "body": "Go?",
            "buttons": [{"id": "y", "title": "Yes"}],
            "footer": "f",
        },
    )
    sections = [{"rows": [{"id": "r", "title": "Row"}]}]
    assert list_message(TO, "Pick", "Open", sections) == build_message(
        TO, {"type": "list", "body": "Pick", "button": "Open", "sections": sections}
    )
    assert media_message(TO, "image", id="1") == build_message(
        TO, {"type": "media", "media_type": "image", "id": "1"}
    )
    assert location_message(TO, 1.5, 2.5) == build_message(
        TO, {"type": "location", "latitude": 1.5, "longitude": 2.5}
    )
    assert template_message(TO, "t", "en") == build_message(
        TO, {"type": "template", "name": "t", "language": "en"}
    )


def test_leading_plus_in_recipient_is_accepted():
    assert (
        build_message("+447700900123", {"type": "text", "body": "hi"})["to"]
        == "+447700900123"
    )


def test_limits_are_inclusive():
    """Exactly at every maximum is still accepted."""
    build_message(TO, {"type": "text", "body": "x" * 4096})
    build_message(
        TO,
        {
            "type": "buttons",
            "body": "b" * 1024,
            "header": "h" * 60,
            "footer": "f" * 60,
            "buttons": [{"id": str(i) * 256, "title": f"{i}" * 20} for i in range(3)],
        },
    )
    build_message(
        TO,
        {
            "type": "list",
            "body": "b",
            "button": "B" * 20,
            "sections": [
                {
                    "title": f"S{s}".ljust(24, "s"),
                    "rows": [
                        {
                            "id": f"{s}-{r}".ljust(200, "i"),
                            "title": "t" * 24,
                            "description": "d" * 72,
                        }
                        for r in range(1)
                    ],
                }
                for s in range(10)
            ],
        },
    )
    build_message(
        TO, {"type": "media", "media_type": "image", "id": "1", "caption": "c" * 1024}
    )
    build_message(TO, {"type": "location", "latitude": -90, "longitude": 180})


# --------------------------------------------------------------------------------------
# Every limit violation names its field
# --------------------------------------------------------------------------------------


def _buttons(n: int) -> list[dict]:
    return [{"id": f"b{i}", "title": f"Option {i}"} for i in range(n)]


def _rows(n: int, prefix: str = "r") -> list[dict]:
    return [{"id": f"{prefix}{i}", "title": f"Row {i}"} for i in range(n)]


BUTTONS = {"type": "buttons", "body": "Choose", "buttons": _buttons(2)}
LIST = {
    "type": "list",
    "body": "Choose",
    "button": "Open",
    "sections": [{"rows": _rows(2)}],
}

SPEC_VIOLATIONS = [
    # text
    ({"type": "text", "body": ""}, "text.body: must not be empty"),
    ({"type": "text", "body": "  \n "}, "text.body: must not be empty"),
    (
        {"type": "text", "body": "x" * 4097},
        "text.body: at most 4096 characters (got 4097)",
    ),
    ({"type": "text", "body": 42}, "text.body: expected a string, got number"),
    (
        {"type": "text", "body": "hi", "preview_url": "yes"},
        "text.preview_url: expected a boolean, got string",
    ),
    # interactive common
    (
        {**BUTTONS, "body": "x" * 1025},
        "interactive.body.text: at most 1024 characters (got 1025)",
    ),
    ({**BUTTONS, "body": ""}, "interactive.body.text: must not be empty"),
    (
        {**BUTTONS, "header": "h" * 61},
        "interactive.header.text: at most 60 characters (got 61)",
    ),
    (
        {**BUTTONS, "footer": "f" * 61},
        "interactive.footer.text: at most 60 characters (got 61)",
    ),
    ({**BUTTONS, "footer": ""}, "interactive.footer.text: must not be empty"),
    (
        {**LIST, "header": "h" * 61},
        "interactive.header.text: at most 60 characters (got 61)",
    ),
    # reply buttons
    (
        {**BUTTONS, "buttons": []},
        "interactive.action.buttons: 1 to 3 buttons required (got 0)",
    ),
    (
        {**BUTTONS, "buttons": _buttons(4)},
        "interactive.action.buttons: 1 to 3 buttons required (got 4)",
    ),
    (
        {
            **BUTTONS,
            "buttons": [
                {"id": "a", "title": "Yes"},
                {"id": "b", "title": "Yes, place my bet now"},
            ],
        },
        "interactive.action.buttons[1].reply.title: at most 20 characters (got 21)",
    ),
    (
        {**BUTTONS, "buttons": [{"id": "a", "title": ""}]},
        "interactive.action.buttons[0].reply.title: must not be empty",
    ),
    (
        {**BUTTONS, "buttons": [{"id": "a"}]},
        "interactive.action.buttons[0].reply.title: required",
    ),
    (
        {**BUTTONS, "buttons": [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}]},
        "interactive.action.buttons[1].reply.id: duplicate button id 'a'",
    ),
    (
        {
            **BUTTONS,
            "buttons": [{"id": "a", "title": "Same"}, {"id": "b", "title": "Same"}],
        },
        "interactive.action.buttons[1].reply.title: duplicate button title 'Same'",
    ),
    (
        {**BUTTONS, "buttons": [{"id": "x" * 257, "title": "A"}]},
        "interactive.action.buttons[0].reply.id: at most 256 characters (got 257)",
    ),
    (
        {**BUTTONS, "buttons": [{"id": " a", "title": "A"}]},
        "interactive.action.buttons[0].reply.id: must not have leading or trailing spaces",
    ),
    (
        {**BUTTONS, "buttons": [{"id": "", "title": "A"}]},
        "interactive.action.buttons[0].reply.id: must not be empty",
    ),
    # list
    (
        {**LIST, "button": "b" * 21},
        "interactive.action.button: at most 20 characters (got 21)",
    ),
    ({**LIST, "button": ""}, "interactive.action.button: must not be empty"),
    (
        {**LIST, "sections": []},
        "interactive.action.sections: 1 to 10 sections required (got 0)",
    ),
    (
        {
            **LIST,
            "sections": [
                {"title": f"S{i}", "rows": _rows(1, f"s{i}-")} for i in range(11)
            ],
        },
        "interactive.action.sections: 1 to 10 sections required (got 11)",
    ),
    (
        {
            **LIST,
            "sections": [
                {"title": "A", "rows": _rows(6, "a")},
                {"title": "B", "rows": _rows(5, "b")},
            ],
        },
        "interactive.action.sections[1].rows: at most 10 rows in total across sections (got 11)",
    ),
    (
        {
            **LIST,
            "sections": [
                {"title": "A", "rows": _rows(2)},
                {"title": "B", "rows": _rows(1)},
            ],
        },
        "interactive.action.sections[1].rows[0].id: duplicate row id 'r0'",
    ),
    (
        {
            **LIST,
            "sections": [{"title": "A", "rows": _rows(1)}, {"rows": _rows(1, "b")}],
        },
        "interactive.action.sections[1].title: required when there is more than one section",
    ),
    (
        {**LIST, "sections": [{"title": "t" * 25, "rows": _rows(1)}]},
        "interactive.action.sections[0].title: at most 24 characters (got 25)",
    ),
    (
        {**LIST, "sections": [{"title": "A", "rows": []}]},
        "interactive.action.sections[0].rows: at least 1 row required",
    ),
    (
        {**LIST, "sections": [{"rows": [{"id": "x" * 201, "title": "A"}]}]},
        "interactive.action.sections[0].rows[0].id: at most 200 characters (got 201)",
    ),
    (
        {**LIST, "sections": [{"rows": [{"id": "a", "title": "t" * 25}]}]},
        "interactive.action.sections[0].rows[0].title: at most 24 characters (got 25)",
    ),
    (
        {**LIST, "sections": [{"rows": [{"id": "a", "title": ""}]}]},
        "interactive.action.sections[0].rows[0].title: must not be empty",
    ),
    (
        {
            **LIST,
            "sections": [
                {"rows": [{"id": "a", "title": "A", "description": "d" * 73}]}
            ],
        },
        "interactive.action.sections[0].rows[0].description: at most 72 characters (got 73)",
    ),
    # media
    (
        {"type": "media", "media_type": "image"},
        "image: exactly one of 'id' or 'link' is required",
    ),
    (
        {
            "type": "media",
            "media_type": "image",
            "id": "1",
            "link": "https://example.com/a.png",
        },
        "image: exactly one of 'id' or 'link' is required",
    ),
    (
        {"type": "media", "media_type": "image", "id": "1", "caption": "c" * 1025},
        "image.caption: at most 1024 characters (got 1025)",
    ),
    (
        {"type": "media", "media_type": "audio", "id": "1", "caption": "hi"},
        "audio.caption: not allowed for audio",
    ),
    (
        {"type": "media", "media_type": "sticker", "id": "1", "caption": "hi"},
        "sticker.caption: not allowed for sticker",
    ),
    (
        {"type": "media", "media_type": "image", "id": "1", "filename": "a.png"},
        "image.filename: not allowed for image",
    ),
    (
        {"type": "media", "media_type": "image", "link": "ftp://example.com/a.png"},
        "image.link: must be an http(s) URL (got 'ftp://example.com/a.png')",
    ),
    (
        {"type": "media", "media_type": "gif", "id": "1"},
        "media_type: must be one of image, video, audio, document, sticker (got 'gif')",
    ),
    # location
    (
        {"type": "location", "latitude": 91, "longitude": 0},
        "location.latitude: must be between -90 and 90 (got 91)",
    ),
    (
        {"type": "location", "latitude": 0, "longitude": -180.5},
        "location.longitude: must be between -180 and 180 (got -180.5)",
    ),
    (
        {"type": "location", "latitude": "north", "longitude": 0},
        "location.latitude: expected a number, got 'north'",
    ),
    (
        {"type": "location", "latitude": True, "longitude": 0},
        "location.latitude: expected a number, got boolean",
    ),
    # template
    (
        {"type": "template", "name": "", "language": "en_US"},
        "template.name: must not be empty",
    ),
    (
        {"type": "template", "name": "hello_world", "language": ""},
        "template.language.code: must not be empty",
    ),
    (
        {
            "type": "template",
            "name": "hello_world",
            "language": "en_US",
            "components": {"type": "body"},
        },
        "template.components: expected a list, got object",
    ),
    (
        {
            "type": "template",
            "name": "hello_world",
            "language": "en_US",
            "components": [{"parameters": []}],
        },
        "template.components[0].type: required",
    ),
    # spec structure
    ({"type": "text"}, "body: required"),
    ({"type": "template", "name": "hello_world"}, "language: required"),
    ({"type": "text", "body": "hi", "colour": "red"}, "colour: unknown field"),
    (
        {"type": "sms", "body": "hi"},
        "type: unknown spec type 'sms' (expected one of text, buttons, list, media, location, template)",
    ),
    ({"body": "hi"}, "type: required"),
    ({**BUTTONS, "buttons": "Yes/No"}, "buttons: expected a list, got string"),
    ({**BUTTONS, "buttons": ["Yes"]}, "buttons[0]: expected an object, got string"),
    (
        {**BUTTONS, "buttons": [{"id": "a", "title": "A", "url": "x"}]},
        "buttons[0].url: unknown field",
    ),
    ({**LIST, "sections": [{"title": "A"}]}, "sections[0].rows: required"),
    (
        {**LIST, "sections": [{"rows": [{"id": "a", "title": "A", "emoji": "x"}]}]},
        "sections[0].rows[0].emoji: unknown field",
    ),
    (
        {"type": "text", "body": "hi", "reply_to": ""},
        "context.message_id: must not be empty",
    ),
]


@pytest.mark.parametrize(
    ("spec", "error"),
    SPEC_VIOLATIONS,
    ids=[e.split(":")[0] + f"-{i}" for i, (_, e) in enumerate(SPEC_VIOLATIONS)],
)
def test_spec_violations_name_the_field(spec, error):
    with pytest.raises(OutboundValidationError) as exc_info:
        build_message(TO, spec)
    assert str(exc_info.value) == error
    assert exc_info.value.field == error.split(": ", 1)[0]
    assert isinstance(exc_info.value, ValueError)


@pytest.mark.parametrize(
    ("to", "error"),
    [
        (
            "",
            "to: expected a phone number of digits with an optional leading '+', got ''",
        ),
        (
            "+",
            "to: expected a phone number of digits with an optional leading '+', got '+'",
        ),
        (
            "1 650 555 1234",
            "to: expected a phone number of digits with an optional leading '+', got '1 650 555 1234'",
        ),
        (
            "whatsapp:+1650",
            "to: expected a phone number of digits with an optional leading '+', got 'whatsapp:+1650'",
        ),
        (16505551234, "to: expected a string, got number"),
    ],
)
def test_bad_recipient(to, error):
    with pytest.raises(OutboundValidationError, match=f"^{re.escape(error)}$"):
        build_message(to, {"type": "text", "body": "hi"})


def test_spec_must_be_an_object():
    with pytest.raises(
        OutboundValidationError, match="^spec: expected an object, got list$"
    ):
        build_message(TO, [("type", "text")])


# --------------------------------------------------------------------------------------
# validate_outbound on raw Graph bodies (what the fake Graph API receives)
# --------------------------------------------------------------------------------------


def test_validate_accepts_image_header_on_reply_buttons():
    payload = envelope(
        "interactive",
        {
            "type": "button",
            "header": {
                "type": "image",
                "image": {"link": "https://example.com/match.png"},
            },
            "body": {"text": "Arsenal v Chelsea"},
            "action": {
                "buttons": [{"type": "reply", "reply": {"id": "bet", "title": "Bet"}}]
            },
        },
    )
    validate_outbound(payload)


def test_validate_accepts_callback_data_and_omitted_recipient_type():
    payload = envelope("text", {"body": "hi"}, biz_opaque_callback_data="message:4711")
    del payload["recipient_type"]
    validate_outbound(payload)


GRAPH_VIOLATIONS = [
    (
        {**envelope("text", {"body": "hi"}), "messaging_product": "sms"},
        "messaging_product: must be 'whatsapp' (got 'sms')",
    ),
    (
        envelope("reaction", {"message_id": WAMID, "emoji": "\U0001f44d"}),
        "type: unsupported message type 'reaction' (expected one of text, interactive, location, template, image, video, audio, document, sticker)",
    ),
    (
        {**envelope("text", {"body": "hi"}), "recipient_type": "group"},
        "recipient_type: must be 'individual' (got 'group')",
    ),
    (
        {**envelope("text", {"body": "hi"}), "priority": "high"},
        "priority: unknown field",
    ),
    (envelope("text", {"body": "hi", "preview": True}), "text.preview: unknown field"),
    (
        {**envelope("text", {"body": "hi"}), "context": {"id": WAMID}},
        "context.id: unknown field",
    ),
    (
        {k: v for k, v in envelope("text", {"body": "hi"}).items() if k != "text"},
        "text: required",
    ),
    (
        {k: v for k, v in envelope("text", {"body": "hi"}).items() if k != "to"},
        "to: required",
    ),
    (
        envelope(
            "interactive",
            {
                "type": "cta_url",
                "body": {"text": "Open"},
                "action": {"name": "cta_url", "parameters": {}},
            },
        ),
        "interactive.type: unsupported interactive type 'cta_url' (expected 'button' or 'list')",
    ),
    (
        envelope(
            "interactive",
            {
                "type": "list",
                "header": {"type": "image", "image": {"id": "1"}},
                "body": {"text": "Pick"},
                "action": {
                    "button": "Open",
                    "sections": [{"rows": [{"id": "a", "title": "A"}]}],
                },
            },
        ),
        "interactive.header.type: must be one of text (got 'image')",
    ),
    (
        envelope(
            "interactive",
            {
                "type": "button",
                "body": {"text": "Pick"},
                "action": {
                    "buttons": [{"type": "url", "reply": {"id": "a", "title": "A"}}]
                },
            },
        ),
        "interactive.action.buttons[0].type: must be 'reply' (got 'url')",
    ),
    (
        envelope("interactive", {"type": "button", "body": {"text": "Pick"}}),
        "interactive.action: required",
    ),
    (
        envelope("template", {"name": "hello_world", "language": "en_US"}),
        "template.language: expected an object, got string",
    ),
    (
        {"messaging_product": "whatsapp", "status": "delivered", "message_id": WAMID},
        "status: must be 'read' (got 'delivered')",
    ),
    ({"messaging_product": "whatsapp", "status": "read"}, "message_id: required"),
    (
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": WAMID,
            "typing_indicator": {"type": "audio"},
        },
        "typing_indicator.type: must be 'text' (got 'audio')",
    ),
    ("not a payload", "payload: expected an object, got string"),
]


@pytest.mark.parametrize(
    ("payload", "error"),
    GRAPH_VIOLATIONS,
    ids=[e.split(":")[0] + f"-{i}" for i, (_, e) in enumerate(GRAPH_VIOLATIONS)],
)
def test_graph_body_violations_name_the_field(payload, error):
    with pytest.raises(OutboundValidationError) as exc_info:
        validate_outbound(payload)
    assert str(exc_info.value) == error


def test_read_receipt_rejects_an_empty_wamid():
    with pytest.raises(
        OutboundValidationError, match="^message_id: must not be empty$"
    ):
        read_receipt("")


def test_huge_number_is_out_of_range_not_a_crash():
    with pytest.raises(
        OutboundValidationError, match="^location.latitude: must be between"
    ):
        build_message(TO, {"type": "location", "latitude": 10**400, "longitude": 0})


# Fuzz: the fake Graph API runs validate_outbound on whatever a client sends, and flows
# call build_message on operator-edited specs: neither may fail with anything else.

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(
        ["text", "button", "list", "reply", "image", "read", "whatsapp", "+1"]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
SPEC_KEYS = [
    "type", "body", "buttons", "button", "sections", "header", "footer", "preview_url",
    "media_type", "id", "link", "caption", "filename", "latitude", "longitude", "name",
    "address", "language", "components", "reply_to",
]  # fmt: skip


@given(payload=json_values)
def test_validate_outbound_only_raises_its_own_error(payload):
    try:
        validate_outbound(payload)
    except OutboundValidationError:
        pass


@given(
    to=st.one_of(st.just(TO), json_scalars),
    kind=st.sampled_from(["text", "buttons", "list", "media", "location", "template"]),
    spec=st.dictionaries(st.sampled_from(SPEC_KEYS), json_values, max_size=6),
)
def test_build_message_only_raises_its_own_error(to, kind, spec):
    try:
        build_message(to, {**spec, "type": kind})
    except OutboundValidationError:
        pass


VALID_BODIES = [
    build_message(TO, {**BUTTONS, "header": "H", "footer": "F", "reply_to": WAMID}),
    build_message(
        TO,
        {
            **LIST,
            "sections": [
                {"title": "A", "rows": [{"id": "a", "title": "A", "description": "d"}]}
            ],
        },
    ),
    build_message(
        TO,
        {
            "type": "media",
            "media_type": "document",
            "link": "https://e.com/a.pdf",
            "filename": "a.pdf",
        },
    ),
    build_message(TO, {"type": "location", "latitude": 1, "longitude": 2, "name": "n"}),
    build_message(
        TO,
        {
            "type": "template",
            "name": "t",
            "language": "en",
            "components": [{"type": "body"}],
        },
    ),
    build_message(TO, {"type": "text", "body": "hi"}),
    read_receipt(WAMID, typing_indicator=True),
]


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, child in node.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield (*prefix, index)
            yield from _paths(child, (*prefix, index))


def test_every_node_of_valid_bodies_replaced_by_every_wrong_type():
    """Each node of each valid body, replaced in turn by each JSON type, either still
    validates or fails with OutboundValidationError naming a field."""
    wrong_values = [None, True, 0, -1.5, 10**400, "", "x" * 5000, [], [1], {}, {"x": 1}]
    checked = 0
    for base in VALID_BODIES:
        validate_outbound(base)
        for path in _paths(base):
            for wrong in wrong_values:
                body = copy.deepcopy(base)
                parent = body
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = wrong
                try:
                    validate_outbound(body)
                except OutboundValidationError as exc:
                    assert exc.field
                    assert len(str(exc)) < 300
                checked += 1
    assert checked > 500


# --------------------------------------------------------------------------------------
# split_text
# --------------------------------------------------------------------------------------


def test_short_text_is_one_part():
    assert split_text("Arsenal v Chelsea 2.10") == ["Arsenal v Chelsea 2.10"]


def test_empty_text_has_no_parts():
    assert split_text("") == []


def test_fixture_list_splits_on_line_boundaries():
    lines = [
        f"{i:03d}. Team {i} v Team {i + 1}  1.{i % 90:02d} / 3.40 / 4.{i % 70:02d}"
        for i in range(200)
    ]
    text = "\n".join(lines)
    assert len(text) > 4096
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text
    # no fixture line is cut in two
    assert all(line in lines for part in parts for line in part.split("\n"))


def test_long_line_is_cut_after_the_last_space_that_fits():
    assert split_text("one two three", limit=8) == ["one two ", "three"]


def test_long_word_is_cut_hard_at_the_limit():
    assert split_text("abcdefghij", limit=4) == ["abcd", "efgh", "ij"]


def test_leading_spaces_are_not_a_split_point():
    assert split_text("   abcdefgh", limit=6) == ["   abc", "defgh"]


def test_empty_line_at_a_full_split_carries_the_previous_line_over():
    """Greedy packing would leave the blank line as an empty (unsendable) part."""
    parts = split_text("ab\ncd\n\nef", limit=5)
    assert parts == ["ab", "cd\n", "ef"]
    assert "\n".join(parts) == "ab\ncd\n\nef"


def test_unavoidable_blank_line_between_full_lines_is_dropped():
    assert split_text("abcde\n\nfghij", limit=5) == ["abcde", "fghij"]


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit must be at least 1"):
        split_text("hi", limit=0)


texts = st.text(alphabet="ab \n", max_size=120)


def _without_newlines(value: str) -> str:
    return value.replace("\n", "")


@given(text=texts, limit=st.integers(min_value=1, max_value=25))
def test_split_parts_are_non_empty_within_limit_and_lose_only_newlines(text, limit):
    parts = split_text(text, limit)
    assert all(0 < len(part) <= limit for part in parts)
    assert _without_newlines("".join(parts)) == _without_newlines(text)
    if text.strip("\n"):
        assert parts


@given(text=texts, limit=st.integers(min_value=1, max_value=25))
def test_split_round_trips_when_no_line_exceeds_the_limit(text, limit):
    """The exact round trip the design relies on, in the two cases where it is always
    possible: lines shorter than the limit (text not starting with a blank line), or lines
    up to the limit with no blank lines at all."""
    lines = text.split("\n")
    shorter = all(len(line) < limit for line in lines) and not text.startswith("\n")
    no_blank = all(0 < len(line) <= limit for line in lines)
    assume(text and (shorter or no_blank))
    assert "\n".join(split_text(text, limit)) == text


@given(text=texts, limit=st.integers(min_value=1, max_value=25))
def test_split_never_drops_more_than_newlines_at_split_points(text, limit):
    parts = split_text(text, limit)
    glued = "".join(parts)
    # `glued` must be `text` with only some newlines removed: walk both in step.
    i = 0
    for char in text:
        if i < len(glued) and glued[i] == char:
            i += 1
        else:
            assert char == "\n", f"lost {char!r}"
    assert i == len(glued)
    # at most the separator and one unavoidable blank line per split point
    assert len(text) - len(glued) <= 2 * len(parts)


# --------------------------------------------------------------------------------------
# classify_error
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http_status", "meta_code", "expected"),
    [
        # no response at all: timeout / connection error
        (None, None, ErrorClass.TRANSIENT),
        (500, None, ErrorClass.TRANSIENT),
        (502, None, ErrorClass.TRANSIENT),
        (503, 2, ErrorClass.TRANSIENT),
        (500, 1, ErrorClass.TRANSIENT),
        (429, None, ErrorClass.TRANSIENT),
        (400, 130429, ErrorClass.TRANSIENT),
        (503, 131016, ErrorClass.TRANSIENT),
        (400, 131057, ErrorClass.TRANSIENT),
        (500, 131000, ErrorClass.TRANSIENT),
        (400, 4, ErrorClass.TRANSIENT),
        (400, 80007, ErrorClass.TRANSIENT),
        (503, 133004, ErrorClass.TRANSIENT),
        (500, 99999, ErrorClass.TRANSIENT),  # unknown code: the HTTP status decides
        # one user is receiving too much
        (400, 131056, ErrorClass.PAIR_RATE_LIMIT),
        (None, 131056, ErrorClass.PAIR_RATE_LIMIT),
        # credentials / permissions
        (401, None, ErrorClass.AUTH),
        (401, 190, ErrorClass.AUTH),
        (400, 0, ErrorClass.AUTH),
        (403, 3, ErrorClass.AUTH),
        (403, 10, ErrorClass.AUTH),
        (403, 200, ErrorClass.AUTH),
        (403, 299, ErrorClass.AUTH),
        # the message itself cannot be delivered: never retry blindly
        (400, 100, ErrorClass.PERMANENT),
        (400, 368, ErrorClass.PERMANENT),
        (400, 470, ErrorClass.PERMANENT),
        (400, 131008, ErrorClass.PERMANENT),
        (400, 131009, ErrorClass.PERMANENT),
        (400, 131021, ErrorClass.PERMANENT),
        (400, 131026, ErrorClass.PERMANENT),
        (400, 131047, ErrorClass.PERMANENT),
        (400, 131051, ErrorClass.PERMANENT),
        (400, 131052, ErrorClass.PERMANENT),
        (400, 131053, ErrorClass.PERMANENT),
        (400, 132000, ErrorClass.PERMANENT),
        (400, 132001, ErrorClass.PERMANENT),
        (400, 132999, ErrorClass.PERMANENT),
        (400, 133010, ErrorClass.PERMANENT),
        (500, 131026, ErrorClass.PERMANENT),  # Meta's code outranks a 5xx status
        (400, None, ErrorClass.PERMANENT),
        (404, None, ErrorClass.PERMANENT),
        (403, None, ErrorClass.PERMANENT),
        (400, 300, ErrorClass.PERMANENT),  # just past the 200-299 permission block
    ],
)
def test_classify_error(http_status, meta_code, expected):
    assert classify_error(http_status, meta_code) is expected
