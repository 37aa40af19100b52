"""The simulate builders produce webhook bodies in exactly Meta's shape.

Full-dict comparisons pin the shape (key names, nesting, string timestamps) so a refactor of
the builders cannot silently drift from what Meta sends; the round-trip test feeds every
builder through the project's webhook parser.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from devtools import webhook_payloads as simulate
from devtools.webhook_payloads import Context, PayloadError
from meta_integration.payloads import MessageType, parse_webhook
from meta_integration.signatures import verify_signature

WA_ID = "263772345678"
WAMID = "wamid.HBgMMjYzNzcyMzQ1Njc4FQIAEhgUM0VCMDRGN0I1QjJBMkRFQUFCNDcA"
OUR_WAMID = "wamid.HBgMMjYzNzcyMzQ1Njc4FQIAERgSQjM2QjQ2RkM0MUE0RkE0N0E2AA=="
TS = "1718049600"


# --------------------------------------------------------------------------- messages


def test_text_message_full_shape():
    assert simulate.text("Hi, show me today's fixtures", wa_id=WA_ID, wamid=WAMID, timestamp=TS) == {
        "from": WA_ID,
        "id": WAMID,
        "timestamp": TS,
        "type": "text",
        "text": {"body": "Hi, show me today's fixtures"},
    }


def test_text_reply_and_forwarded_context():
    reply = simulate.text("yes", wa_id=WA_ID, wamid=WAMID, timestamp=TS, context=OUR_WAMID)
    assert reply["context"] == {"from": simulate.DEFAULT_DISPLAY_PHONE_NUMBER, "id": OUR_WAMID}
    assert list(reply) == ["context", "from", "id", "timestamp", "type", "text"]

    forwarded = simulate.text("look", context=Context(forwarded=True))
    assert forwarded["context"] == {"forwarded": True}
    many = simulate.text("look", context=Context(frequently_forwarded=True))
    assert many["context"] == {"frequently_forwarded": True}


def test_button_reply_full_shape():
    msg = simulate.button_reply(
        "menu_fixtures", "Fixtures", wa_id=WA_ID, wamid=WAMID, timestamp=TS,
        context=Context.reply(OUR_WAMID, business_number="15550783881"),
    )
    assert msg == {
        "context": {"from": "15550783881", "id": OUR_WAMID},
        "from": WA_ID,
        "id": WAMID,
        "timestamp": TS,
        "type": "interactive",
        "interactive": {
            "type": "button_reply",
            "button_reply": {"id": "menu_fixtures", "title": "Fixtures"},
        },
    }


def test_interactive_reply_quotes_a_business_message_by_default():
    msg = simulate.button_reply("yes", "Yes")
    assert msg["context"]["from"] == simulate.DEFAULT_DISPLAY_PHONE_NUMBER
    assert msg["context"]["id"].startswith("wamid.")
    assert simulate.button_reply("yes", "Yes", context=None).get("context") is None


def test_list_reply_full_shape_with_and_without_description():
    msg = simulate.list_reply(
        "league_39", "Premier League", "England", wa_id=WA_ID, wamid=WAMID, timestamp=TS,
        context=OUR_WAMID,
    )
    assert msg == {
        "context": {"from": simulate.DEFAULT_DISPLAY_PHONE_NUMBER, "id": OUR_WAMID},
        "from": WA_ID,
        "id": WAMID,
        "timestamp": TS,
        "type": "interactive",
        "interactive": {
            "type": "list_reply",
            "list_reply": {"id": "league_39", "title": "Premier League", "description": "England"},
        },
    }
    bare = simulate.list_reply("league_39", "Premier League")
    assert bare["interactive"]["list_reply"] == {"id": "league_39", "title": "Premier League"}


def test_location_full_shape_pin_and_place():
    place = simulate.location(
        -17.8292, 31.0522, "Harare Gardens", "Park Lane, Harare",
        wa_id=WA_ID, wamid=WAMID, timestamp=TS,
    )
    assert place == {
        "from": WA_ID,
        "id": WAMID,
        "timestamp": TS,
        "type": "location",
        "location": {
            "latitude": -17.8292,
            "longitude": 31.0522,
            "name": "Harare Gardens",
            "address": "Park Lane, Harare",
        },
    }
    pin = simulate.location(-17.8292, 31.0522)
    assert pin["location"] == {"latitude": -17.8292, "longitude": 31.0522}


def test_image_full_shape():
    sha = "m04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI="
    msg = simulate.image(
        "1479537139650973", caption="my ticket", sha256=sha, wa_id=WA_ID, wamid=WAMID, timestamp=TS
    )
    assert msg == {
        "from": WA_ID,
        "id": WAMID,
        "timestamp": TS,
        "type": "image",
        "image": {
            "caption": "my ticket",
            "mime_type": "image/jpeg",
            "sha256": sha,
            "id": "1479537139650973",
        },
    }


def test_other_media_kinds():
    voice = simulate.audio()
    assert voice["type"] == "audio" and voice["audio"]["voice"] is True
    assert voice["audio"]["mime_type"] == "audio/ogg; codecs=opus"
    assert re.fullmatch(r"\d{16}", voice["audio"]["id"])
    assert len(base64.b64decode(voice["audio"]["sha256"])) == 32

    doc = simulate.document(filename="slip.pdf", caption="bet slip")
    assert doc["document"]["filename"] == "slip.pdf"
    assert doc["document"]["mime_type"] == "application/pdf"

    clip = simulate.video(caption="goal!")
    assert clip["video"]["caption"] == "goal!" and clip["video"]["mime_type"] == "video/mp4"

    sticker = simulate.sticker(animated=True)
    assert sticker["sticker"]["animated"] is True
    assert sticker["sticker"]["mime_type"] == "image/webp"


def test_reaction_and_unreaction():
    assert simulate.reaction(OUR_WAMID, "\N{THUMBS UP SIGN}", wa_id=WA_ID, wamid=WAMID, timestamp=TS) == {
        "from": WA_ID,
        "id": WAMID,
        "timestamp": TS,
        "type": "reaction",
        "reaction": {"message_id": OUR_WAMID, "emoji": "\N{THUMBS UP SIGN}"},
    }
    removed = simulate.reaction(OUR_WAMID, "")
    assert removed["reaction"] == {"message_id": OUR_WAMID, "emoji": ""}


def test_nfm_reply_encodes_answers_as_json_string():
    msg = simulate.nfm_reply({"stake": "5", "team": "Dynamos"}, flow_token="tok-1")
    nfm = msg["interactive"]["nfm_reply"]
    assert msg["interactive"]["type"] == "nfm_reply"
    assert isinstance(nfm["response_json"], str)
    assert json.loads(nfm["response_json"]) == {"stake": "5", "team": "Dynamos", "flow_token": "tok-1"}
    assert (nfm["body"], nfm["name"]) == ("Sent", "flow")


def test_template_button_referral_contacts_order_unsupported_system():
    btn = simulate.template_button("STOP_PROMOS", "Stop promotions")
    assert btn["type"] == "button"
    assert btn["button"] == {"payload": "STOP_PROMOS", "text": "Stop promotions"}

    ref = simulate.referral_text("Hi, I saw your ad", source_id="120200000000000001")
    assert ref["type"] == "text" and ref["text"] == {"body": "Hi, I saw your ad"}
    assert ref["referral"]["source_type"] == "ad"
    assert ref["referral"]["source_id"] == "120200000000000001"
    assert ref["referral"]["ctwa_clid"]

    shared = simulate.contacts_message(
        [simulate.contact_card("Rudo Chikore", "+263 77 123 4567", wa_id="263771234567")]
    )
    assert shared["type"] == "contacts"
    assert shared["contacts"] == [
        {
            "name": {"first_name": "Rudo", "formatted_name": "Rudo Chikore"},
            "phones": [{"phone": "+263 77 123 4567", "wa_id": "263771234567", "type": "CELL"}],
        }
    ]

    cart = simulate.order("354160437058781", [simulate.order_item("JERSEY-HOME", 2, 35.5, "USD")])
    assert cart["order"] == {
        "catalog_id": "354160437058781",
        "text": "",
        "product_items": [
            {"product_retailer_id": "JERSEY-HOME", "quantity": 2, "item_price": 35.5, "currency": "USD"}
        ],
    }

    odd = simulate.unsupported(wa_id=WA_ID, wamid=WAMID, timestamp=TS)
    assert odd == {
        "from": WA_ID,
        "id": WAMID,
        "timestamp": TS,
        "errors": [
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."},
            }
        ],
        "type": "unsupported",
    }

    changed = simulate.system("User changed number", new_wa_id="263779999999", wa_id=WA_ID)
    assert changed["system"] == {
        "body": "User changed number", "wa_id": "263779999999", "type": "user_changed_number"
    }


def test_defaults_are_fresh_and_realistic():
    ids = {simulate.text("x")["id"] for _ in range(500)}
    assert len(ids) == 500
    wamid = simulate.new_wamid(WA_ID)
    assert wamid.startswith("wamid.HBgM")  # 12-digit number, like Meta's ids
    assert WA_ID.encode() in base64.b64decode(wamid.removeprefix("wamid."))
    ts = simulate.text("x")["timestamp"]
    assert isinstance(ts, str) and abs(int(ts) - time.time()) < 5
    assert simulate.text("x", timestamp=1718049600)["timestamp"] == "1718049600"


# --------------------------------------------------------------------------- statuses


def test_status_failed_full_shape():
    assert simulate.status(OUR_WAMID, "failed", WA_ID, timestamp=TS) == {
        "id": OUR_WAMID,
        "status": "failed",
        "timestamp": TS,
        "recipient_id": WA_ID,
        "errors": [
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ],
    }
    custom = simulate.status(
        OUR_WAMID, "failed", WA_ID, errors=[simulate.error_object(131047)]
    )
    assert custom["errors"][0]["code"] == 131047
    assert custom["errors"][0]["title"] == "Re-engagement message"


def test_status_sent_delivered_read_pricing():
    sent = simulate.status(OUR_WAMID, simulate.MessageStatus.SENT, WA_ID, timestamp=TS,
                           conversation_id="7270432eae37498234f4444b35ffc5")
    assert sent == {
        "id": OUR_WAMID,
        "status": "sent",
        "timestamp": TS,
        "recipient_id": WA_ID,
        "conversation": {
            "id": "7270432eae37498234f4444b35ffc5",
            "expiration_timestamp": str(int(TS) + 86400),
            "origin": {"type": "service"},
        },
        "pricing": {
            "billable": False,
            "pricing_model": "PMP",
            "category": "service",
            "type": "free_customer_service",
        },
    }
    delivered = simulate.status(OUR_WAMID, "delivered", WA_ID)
    assert "expiration_timestamp" not in delivered["conversation"]
    read = simulate.status(OUR_WAMID, "read", WA_ID, with_pricing=False)
    assert set(read) == {"id", "status", "timestamp", "recipient_id"}


# --------------------------------------------------------------------------- envelopes


def test_webhook_body_full_envelope():
    msg = simulate.text("hello", wa_id=WA_ID, wamid=WAMID, timestamp=TS)
    body = simulate.webhook_body(
        [msg], phone_number_id="106540352242922", display_phone_number="15550783881",
        profile_name="Farai", waba_id="102290129340398",
    )
    assert body == {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": "Farai"}, "wa_id": WA_ID}],
                            "messages": [msg],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def test_status_only_body_has_no_contacts():
    body = simulate.webhook_body(statuses=[simulate.status(OUR_WAMID, "read", WA_ID)])
    value = body["entry"][0]["changes"][0]["value"]
    assert "contacts" not in value and "messages" not in value
    assert value["statuses"][0]["status"] == "read"


def test_contacts_one_per_sender_and_none_for_system_notices():
    other = "263713334444"
    body = simulate.webhook_body(
        [
            simulate.text("a", wa_id=WA_ID),
            simulate.text("b", wa_id=other),
            simulate.text("c", wa_id=WA_ID),
            simulate.system("changed", new_wa_id="263770000001", wa_id="263770000002"),
        ],
        profile_name={WA_ID: "Farai", other: "Nyasha"},
    )
    contacts = body["entry"][0]["changes"][0]["value"]["contacts"]
    assert contacts == [
        {"profile": {"name": "Farai"}, "wa_id": WA_ID},
        {"profile": {"name": "Nyasha"}, "wa_id": other},
    ]


def test_batch_groups_changes_per_waba_and_keeps_order():
    c1 = simulate.change([simulate.text("one")])
    c2 = simulate.change(statuses=[simulate.status(OUR_WAMID, "delivered", WA_ID)],
                         phone_number_id="106540352242999")
    other_waba = simulate.webhook_body([simulate.text("three")], waba_id="200000000000001")
    body = simulate.batch(c1, c2, other_waba, waba_id="102290129340398")
    assert body["object"] == "whatsapp_business_account"
    assert [e["id"] for e in body["entry"]] == ["102290129340398", "200000000000001"]
    assert body["entry"][0]["changes"] == [c1, c2]
    assert body["entry"][1]["changes"][0]["value"]["messages"][0]["text"]["body"] == "three"


def test_signed_request_signs_the_exact_bytes_meta_style():
    body = simulate.webhook_body([simulate.text("Goal! \N{SOCCER BALL}")])
    raw, headers = simulate.signed_request(body, "s3cret-app")
    assert headers["Content-Type"] == "application/json"
    assert verify_signature(raw, headers["X-Hub-Signature-256"], "s3cret-app")
    assert not verify_signature(raw, headers["X-Hub-Signature-256"], "another-secret")
    assert b"\\u26bd" in raw  # non-ASCII escaped, as Meta sends it
    assert b'", "' not in raw and b'": ' not in raw  # compact separators
    assert json.loads(raw) == body


def test_every_builder_round_trips_through_the_project_parser():
    messages = [
        simulate.text("hi"),
        simulate.referral_text("from an ad"),
        simulate.button_reply("b1", "Yes"),
        simulate.list_reply("r1", "Row", "desc"),
        simulate.nfm_reply({"a": "1"}, flow_token="t"),
        simulate.template_button("P", "Text"),
        simulate.location(1.5, 2.5, "Place", "Addr"),
        simulate.image(), simulate.video(), simulate.audio(), simulate.document(),
        simulate.sticker(),
        simulate.contacts_message([simulate.contact_card("Ann Lee", "+1 555 0100")]),
        simulate.reaction(OUR_WAMID, "\N{FIRE}"),
        simulate.order("354160437058781", [simulate.order_item("X", 1, 2.0)]),
        simulate.unsupported(),
        simulate.system("changed", new_wa_id="263770000001"),
    ]
    statuses = [simulate.status(OUR_WAMID, s, WA_ID) for s in ("sent", "delivered", "read", "failed")]
    parsed = parse_webhook(simulate.webhook_body(messages, statuses))
    assert parsed.problems == ()
    assert [m.wamid for m in parsed.messages] == [m["id"] for m in messages]
    assert [m.type for m in parsed.messages] == [MessageType(m["type"]) for m in messages]
    assert [s.wamid for s in parsed.statuses] == [OUR_WAMID] * 4


def test_meta_error_catalogue_wording():
    info = simulate.meta_error(131056)
    assert info.message == "(#131056) (Business Account, Consumer Account) pair rate limit hit"
    assert info.http_status == 429
    assert simulate.meta_error(131026).http_status == 400
    unknown = simulate.meta_error(999999)
    assert unknown.code == 999999 and unknown.http_status == 400


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: simulate.text("x", wa_id="+263772345678"), "wa_id"),
        (lambda: simulate.text("x", wa_id="abc"), "wa_id"),
        (lambda: simulate.text(""), "body"),
        (lambda: simulate.text("x", timestamp="yesterday"), "timestamp"),
        (lambda: simulate.text("x", timestamp=1.5), "timestamp"),
        (lambda: simulate.text("x", wamid="ABGGFlA5"), "wamid"),
        (lambda: simulate.text("x", context=42), "context"),
        (lambda: Context(), "context"),
        (lambda: Context(reply_to="not-a-wamid"), "context.reply_to"),
        (lambda: simulate.button_reply("", "Yes"), "button_id"),
        (lambda: simulate.location(91, 0), "latitude"),
        (lambda: simulate.location(0, "east"), "longitude"),
        (lambda: simulate.image("abc"), "media_id"),
        (lambda: simulate.image(mime_type="jpeg"), "mime_type"),
        (lambda: simulate.reaction("123", "x"), "message_id"),
        (lambda: simulate.nfm_reply("a=1"), "response"),
        (lambda: simulate.contacts_message([]), "cards"),
        (lambda: simulate.order_item("X", 0, 1.0), "quantity"),
        (lambda: simulate.order_item("X", 1, -1), "item_price"),
        (lambda: simulate.order_item("X", 1, 1.0, "dollars"), "currency"),
        (lambda: simulate.order("catalog", [simulate.order_item("X", 1, 1.0)]), "catalog_id"),
        (lambda: simulate.system("changed"), "new_wa_id"),
        (lambda: simulate.system("x", system_type="reboot"), "system_type"),
        (lambda: simulate.referral_text("x", source_type="story"), "source_type"),
        (lambda: simulate.status(OUR_WAMID, "seen", WA_ID), "status"),
        (lambda: simulate.status(OUR_WAMID, "sent", WA_ID, errors=[{}]), "errors"),
        (lambda: simulate.status(OUR_WAMID, "failed", WA_ID, errors=[]), "errors"),
        (lambda: simulate.status(OUR_WAMID, "sent", "+1"), "recipient_id"),
        (lambda: simulate.webhook_body(), "messages"),
        (lambda: simulate.webhook_body([simulate.text("x")], phone_number_id="abc"), "phone_number_id"),
        (lambda: simulate.batch(), "parts"),
        (lambda: simulate.batch({"foo": 1}), "parts[0]"),
        (lambda: simulate.batch({"object": "page", "entry": []}), "parts[0].object"),
        (lambda: simulate.signed_request({"object": "x"}, ""), "app_secret"),
        (lambda: simulate.meta_error(0), "code"),
    ],
)
def test_bad_input_names_the_field(build, field):
    with pytest.raises(PayloadError) as exc_info:
        build()
    assert exc_info.value.field == field
    assert isinstance(exc_info.value, ValueError)
