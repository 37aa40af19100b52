"""Webhook parsing: Meta's real payload shapes in, typed records out.

Payloads follow the examples in Meta's "messages" webhook reference (Cloud API): an
``entry[].changes[].value`` with ``messaging_product``, ``metadata``, ``contacts`` and
``messages`` or ``statuses``. The fuzz tests at the end feed arbitrary JSON and mutated real
payloads to check the parser's one hard promise: PayloadError or a batch, nothing else.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meta_integration.payloads import (
    ApiError,
    Context,
    DeliveryStatus,
    InboundMessage,
    InteractiveKind,
    Location,
    Media,
    MessageType,
    PayloadError,
    ReferredProduct,
    parse_webhook,
)

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
USER = "16505551234"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
OUR_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI4QjY3OEY2RDNBQkE3RjM0OTAA"
TS = "1749416383"
TS_DT = datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)


def webhook(*, messages=None, statuses=None, contacts=None, errors=None) -> dict:
    """One messages-field change in Meta's envelope, for the per-type cases below."""
    value: dict = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": DISPLAY_NUMBER,
            "phone_number_id": PHONE_NUMBER_ID,
        },
    }
    if messages is not None:
        value["contacts"] = (
            contacts
            if contacts is not None
            else [{"profile": {"name": "Sheena Nelson"}, "wa_id": USER}]
        )
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    if errors is not None:
        value["errors"] = errors
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


def only_message(body: dict) -> InboundMessage:
    batch = parse_webhook(body)
    assert batch.problems == ()
    assert len(batch.messages) == 1, batch
    return batch.messages[0]


# --------------------------------------------------------------------------------------
# Messages, one per type
# --------------------------------------------------------------------------------------

TEXT_WEBHOOK = {
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
                        "contacts": [
                            {
                                "profile": {"name": "Sheena Nelson"},
                                "wa_id": "16505551234",
                            }
                        ],
                        "messages": [
                            {
                                "from": "16505551234",
                                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                                "timestamp": "1749416383",
                                "type": "text",
                                "text": {"body": "Does it come in another color?"},
                            }
                        ],
                    },
                    "field": "messages",
                }
            ],
        }
    ],
}


def test_text_message_fields():
    batch = parse_webhook(TEXT_WEBHOOK)
    assert batch.statuses == batch.errors == batch.other_changes == batch.problems == ()
    (msg,) = batch.messages
    raw = TEXT_WEBHOOK["entry"][0]["changes"][0]["value"]["messages"][0]
    assert msg == InboundMessage(
        phone_number_id=PHONE_NUMBER_ID,
        display_phone_number=DISPLAY_NUMBER,
        wamid=WAMID,
        from_wa_id=USER,
        profile_name="Sheena Nelson",
        timestamp=TS_DT,
        type=MessageType.TEXT,
        raw_type="text",
        text="Does it come in another color?",
        raw=raw,
    )
    assert msg.timestamp.tzinfo is UTC
    assert msg.reply_id is None


def test_image_message_caption_becomes_text():
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "image",
                    "image": {
                        "caption": "My receipt",
                        "mime_type": "image/jpeg",
                        "sha256": "u3lWeQ3NBOFoHgqKa6r0FddORYyEgvw1fG2b/vCj3aw=",
                        "id": "1003383421387256",
                    },
                }
            ]
        )
    )
    assert msg.type is MessageType.IMAGE
    assert msg.text == "My receipt"
    assert msg.media == Media(
        id="1003383421387256",
        mime_type="image/jpeg",
        sha256="u3lWeQ3NBOFoHgqKa6r0FddORYyEgvw1fG2b/vCj3aw=",
        caption="My receipt",
    )


def test_document_keeps_filename():
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "document",
                    "document": {
                        "caption": "Lucky Shrub Invoice",
                        "filename": "lucky-shrub-invoice.pdf",
                        "mime_type": "application/pdf",
                        "sha256": "JIm2Ak9b5kmi2mZMHGYgGqtFJxYoDCdvn/9+pDE/cOk=",
                        "id": "1003383421387256",
                    },
                }
            ]
        )
    )
    assert msg.type is MessageType.DOCUMENT
    assert msg.media.filename == "lucky-shrub-invoice.pdf"
    assert msg.text == "Lucky Shrub Invoice"


def test_voice_note_and_animated_sticker_flags():
    batch = parse_webhook(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "audio",
                    "audio": {
                        "mime_type": "audio/ogg; codecs=opus",
                        "sha256": "R8pWI/8Q4yN4lMGBbxQsNzq0xyfKMNbfWWZMqx6Rt4o=",
                        "id": "1003383421387256",
                        "voice": True,
                    },
                },
                {
                    "from": USER,
                    "id": WAMID + "2",
                    "timestamp": TS,
                    "type": "sticker",
                    "sticker": {
                        "mime_type": "image/webp",
                        "sha256": "7IG9yCSWyhgdyLEJbJrZZ54sgUXoNpMNtQWFhBFpGwU=",
                        "id": "1003383421387257",
                        "animated": False,
                    },
                },
            ]
        )
    )
    audio, sticker = batch.messages
    assert (audio.type, audio.media.voice, audio.text) == (MessageType.AUDIO, True, "")
    assert (sticker.type, sticker.media.animated) == (MessageType.STICKER, False)


def test_video_message():
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "video",
                    "video": {
                        "mime_type": "video/mp4",
                        "sha256": "AGd8plp5J3Rw6i0mdIfVF6FxvNVuB5LP7Sn2qkQxcas=",
                        "id": "1184159806536022",
                    },
                }
            ]
        )
    )
    assert msg.type is MessageType.VIDEO
    assert msg.media.id == "1184159806536022"
    assert msg.media.caption is None


def test_location_message():
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "location",
                    "location": {
                        "address": "1071 5th Ave, New York, NY 10128",
                        "latitude": 40.782910059774,
                        "longitude": -73.959075808525,
                        "name": "Solomon R. Guggenheim Museum",
                        "url": "https://www.guggenheim.org/",
                    },
                }
            ]
        )
    )
    assert msg.type is MessageType.LOCATION
    assert msg.location == Location(
        latitude=40.782910059774,
        longitude=-73.959075808525,
        name="Solomon R. Guggenheim Museum",
        address="1071 5th Ave, New York, NY 10128",
        url="https://www.guggenheim.org/",
    )


def test_shared_contacts():
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "contacts",
                    "contacts": [
                        {
                            "name": {
                                "first_name": "Barbara",
                                "last_name": "Johnson",
                                "formatted_name": "Barbara J. Johnson",
                            },
                            "phones": [
                                {
                                    "phone": "+1 (940) 555-1234",
                                    "wa_id": "19405551234",
                                    "type": "CELL",
                                },
                                {"phone": "+1 (650) 555-1234", "type": "WORK"},
                            ],
                            "emails": [
                                {"email": "bjohnson@example.com", "type": "WORK"}
                            ],
                        }
                    ],
                }
            ]
        )
    )
    (card,) = msg.contacts
    assert card.formatted_name == "Barbara J. Johnson"
    assert (card.first_name, card.last_name) == ("Barbara", "Johnson")
    assert [(p.phone, p.wa_id, p.type) for p in card.phones] == [
        ("+1 (940) 555-1234", "19405551234", "CELL"),
        ("+1 (650) 555-1234", None, "WORK"),
    ]


def test_button_reply_carries_our_id_and_the_replied_to_wamid():
    msg = only_message(
        webhook(
            messages=[
                {
                    "context": {"from": DISPLAY_NUMBER, "id": OUR_WAMID},
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "interactive",
                    "interactive": {
                        "type": "button_reply",
                        "button_reply": {"id": "menu.fixtures", "title": "Fixtures"},
                    },
                }
            ]
        )
    )
    assert msg.type is MessageType.INTERACTIVE
    assert msg.interactive.kind is InteractiveKind.BUTTON_REPLY
    assert (msg.interactive.id, msg.interactive.title) == ("menu.fixtures", "Fixtures")
    assert msg.text == "Fixtures"
    assert msg.reply_id == "menu.fixtures"
    assert msg.context == Context(message_id=OUR_WAMID, from_=DISPLAY_NUMBER)


def test_list_reply_with_description():
    msg = only_message(
        webhook(
            messages=[
                {
                    "context": {"from": DISPLAY_NUMBER, "id": OUR_WAMID},
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "interactive",
                    "interactive": {
                        "type": "list_reply",
                        "list_reply": {
                            "id": "league.39",
                            "title": "Premier League",
                            "description": "England, 20 teams",
                        },
                    },
                }
            ]
        )
    )
    assert msg.interactive.kind is InteractiveKind.LIST_REPLY
    assert msg.interactive.description == "England, 20 teams"
    assert msg.reply_id == "league.39"
    assert msg.text == "Premier League"


def test_flow_nfm_reply_decodes_response_json():
    response = {
        "flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s.",
        "stake": "10",
        "optin": True,
    }
    msg = only_message(
        webhook(
            messages=[
                {
                    "context": {"from": DISPLAY_NUMBER, "id": OUR_WAMID},
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "interactive",
                    "interactive": {
                        "type": "nfm_reply",
                        "nfm_reply": {
                            "response_json": json.dumps(response),
                            "body": "Sent",
                            "name": "flow",
                        },
                    },
                }
            ]
        )
    )
    reply = msg.interactive
    assert reply.kind is InteractiveKind.NFM_REPLY
    assert reply.response_json == response
    assert (reply.name, reply.body, reply.id) == ("flow", "Sent", None)
    assert msg.text == "Sent"
    assert msg.reply_id is None


def test_template_quick_reply_button_payload_is_the_reply_id():
    msg = only_message(
        webhook(
            messages=[
                {
                    "context": {"from": DISPLAY_NUMBER, "id": OUR_WAMID},
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "button",
                    "button": {"payload": "STOP_PROMOTIONS", "text": "Stop promotions"},
                }
            ]
        )
    )
    assert msg.type is MessageType.BUTTON
    assert (msg.button.payload, msg.button.text) == (
        "STOP_PROMOTIONS",
        "Stop promotions",
    )
    assert msg.text == "Stop promotions"
    assert msg.reply_id == "STOP_PROMOTIONS"


def test_reaction_and_reaction_removal():
    batch = parse_webhook(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "reaction",
                    "reaction": {"message_id": OUR_WAMID, "emoji": "\U0001f44d"},
                },
                {
                    "from": USER,
                    "id": WAMID + "2",
                    "timestamp": TS,
                    "type": "reaction",
                    "reaction": {"message_id": OUR_WAMID},
                },
            ]
        )
    )
    added, removed = batch.messages
    assert (added.reaction.emoji, added.reaction.removed) == ("\U0001f44d", False)
    assert added.reaction.message_id == OUR_WAMID
    assert (removed.reaction.emoji, removed.reaction.removed) == (None, True)
    assert added.text == removed.text == ""


def test_order_message():
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "order",
                    "order": {
                        "catalog_id": "194836987003835",
                        "text": "Please deliver before noon",
                        "product_items": [
                            {
                                "product_retailer_id": "di9ozbzfi4",
                                "quantity": 2,
                                "item_price": 30,
                                "currency": "USD",
                            },
                            {
                                "product_retailer_id": "nqryix03ez",
                                "quantity": "1",
                                "item_price": "25.5",
                                "currency": "USD",
                            },
                        ],
                    },
                }
            ]
        )
    )
    assert msg.order.catalog_id == "194836987003835"
    assert msg.text == "Please deliver before noon"
    assert [
        (i.product_retailer_id, i.quantity, i.item_price)
        for i in msg.order.product_items
    ] == [
        ("di9ozbzfi4", 2, 30.0),
        ("nqryix03ez", 1, 25.5),
    ]


def test_system_number_change():
    msg = only_message(
        webhook(
            contacts=[],
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "system",
                    "system": {
                        "body": "User A changed from 16505551234 to 16505559999",
                        "wa_id": "16505559999",
                        "type": "user_changed_number",
                    },
                }
            ],
        )
    )
    assert msg.type is MessageType.SYSTEM
    assert msg.system.type == "user_changed_number"
    assert msg.system.new_wa_id == "16505559999"
    assert msg.profile_name is None
    assert msg.text == ""


def test_request_welcome():
    msg = only_message(
        webhook(
            messages=[
                {"from": USER, "id": WAMID, "timestamp": TS, "type": "request_welcome"}
            ]
        )
    )
    assert msg.type is MessageType.REQUEST_WELCOME
    assert msg.text == ""


def test_unsupported_message_keeps_its_errors():
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "unsupported",
                    "errors": [
                        {
                            "code": 131051,
                            "title": "Message type unknown",
                            "message": "Message type unknown",
                            "error_data": {
                                "details": "Message type is currently not supported."
                            },
                        }
                    ],
                    "unsupported": {"type": "poll_creation"},
                }
            ]
        )
    )
    assert msg.type is MessageType.UNSUPPORTED
    assert msg.errors == (
        ApiError(
            code=131051,
            title="Message type unknown",
            message="Message type unknown",
            details="Message type is currently not supported.",
            href=None,
        ),
    )


def test_legacy_unknown_type_with_top_level_details():
    """Older webhook versions sent type "unknown" and put details beside the code."""
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "unknown",
                    "errors": [
                        {
                            "code": 131051,
                            "details": "Message type is not currently supported",
                            "title": "Unsupported message type",
                        }
                    ],
                }
            ]
        )
    )
    assert msg.type is MessageType.UNKNOWN
    assert msg.errors[0].details == "Message type is not currently supported"
    assert msg.errors[0].message is None


def test_type_this_code_does_not_know_is_unknown_with_raw_type_and_raw():
    raw = {
        "from": USER,
        "id": WAMID,
        "timestamp": TS,
        "type": "ephemeral",
        "ephemeral": {"expires": 86400},
    }
    msg = only_message(webhook(messages=[raw]))
    assert (msg.type, msg.raw_type) == (MessageType.UNKNOWN, "ephemeral")
    assert msg.raw == raw
    assert msg.parse_error is None


def test_click_to_whatsapp_referral():
    msg = only_message(
        webhook(
            messages=[
                {
                    "referral": {
                        "source_url": "https://fb.me/3cr4Wqqkv",
                        "source_id": "120226305854810726",
                        "source_type": "ad",
                        "headline": "Chat with us",
                        "body": "Free delivery this week!",
                        "media_type": "image",
                        "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/4.png",
                        "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a",
                    },
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "Can I get more info about this?"},
                }
            ]
        )
    )
    assert msg.type is MessageType.TEXT
    assert msg.referral.source_type == "ad"
    assert msg.referral.headline == "Chat with us"
    assert msg.referral.ctwa_clid.startswith("ARAkLkA8")


def test_forwarded_and_product_enquiry_context():
    batch = parse_webhook(
        webhook(
            messages=[
                {
                    "context": {"forwarded": True, "frequently_forwarded": True},
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "Check this out"},
                },
                {
                    "context": {
                        "from": DISPLAY_NUMBER,
                        "id": OUR_WAMID,
                        "referred_product": {
                            "catalog_id": "194836987003835",
                            "product_retailer_id": "di9ozbzfi4",
                        },
                    },
                    "from": USER,
                    "id": WAMID + "2",
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "Is this in stock?"},
                },
            ]
        )
    )
    forwarded, enquiry = batch.messages
    assert forwarded.context == Context(forwarded=True, frequently_forwarded=True)
    assert enquiry.context.referred_product == ReferredProduct(
        catalog_id="194836987003835", product_retailer_id="di9ozbzfi4"
    )


def test_profile_name_is_matched_by_wa_id_not_position():
    batch = parse_webhook(
        webhook(
            contacts=[
                {"profile": {"name": "Second Sender"}, "wa_id": "447700900002"},
                {"profile": {"name": "First Sender"}, "wa_id": "447700900001"},
            ],
            messages=[
                {
                    "from": "447700900001",
                    "id": "wamid.A",
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "one"},
                },
                {
                    "from": "447700900002",
                    "id": "wamid.B",
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "two"},
                },
                {
                    "from": "447700900003",
                    "id": "wamid.C",
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "three"},
                },
            ],
        )
    )
    assert [(m.from_wa_id, m.profile_name) for m in batch.messages] == [
        ("447700900001", "First Sender"),
        ("447700900002", "Second Sender"),
        ("447700900003", None),
    ]


def test_several_entries_and_changes_keep_their_own_business_number():
    body = {
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
                            "contacts": [
                                {"profile": {"name": "Ann"}, "wa_id": "16505550001"}
                            ],
                            "messages": [
                                {
                                    "from": "16505550001",
                                    "id": "wamid.one",
                                    "timestamp": "1749416383",
                                    "type": "text",
                                    "text": {"body": "hi"},
                                }
                            ],
                        },
                        "field": "messages",
                    },
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783882",
                                "phone_number_id": "106540352242999",
                            },
                            "statuses": [
                                {
                                    "id": "wamid.out",
                                    "status": "delivered",
                                    "timestamp": "1749416390",
                                    "recipient_id": "16505550002",
                                }
                            ],
                        },
                        "field": "messages",
                    },
                ],
            },
            {
                "id": "102290129340400",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "447700900123",
                                "phone_number_id": "200000000000001",
                            },
                            "contacts": [
                                {"profile": {"name": "Bo"}, "wa_id": "447700900009"}
                            ],
                            "messages": [
                                {
                                    "from": "447700900009",
                                    "id": "wamid.two",
                                    "timestamp": "1749416400",
                                    "type": "text",
                                    "text": {"body": "hello"},
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            },
        ],
    }
    batch = parse_webhook(body)
    assert batch.problems == ()
    assert [
        (m.wamid, m.phone_number_id, m.display_phone_number) for m in batch.messages
    ] == [
        ("wamid.one", "106540352242922", "15550783881"),
        ("wamid.two", "200000000000001", "447700900123"),
    ]
    (status,) = batch.statuses
    assert (status.phone_number_id, status.display_phone_number) == (
        "106540352242999",
        "15550783882",
    )


# --------------------------------------------------------------------------------------
# Statuses, value-level errors, other fields
# --------------------------------------------------------------------------------------


def test_sent_status_with_conversation_and_pricing():
    body = {
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
                            "statuses": [
                                {
                                    "id": OUR_WAMID,
                                    "status": "sent",
                                    "timestamp": "1749416383",
                                    "recipient_id": "16505551234",
                                    "conversation": {
                                        "id": "6ceb9d929c9bdc4f90967c2a6f2a3b3c",
                                        "expiration_timestamp": "1749506650",
                                        "origin": {"type": "service"},
                                    },
                                    "pricing": {
                                        "billable": True,
                                        "pricing_model": "PMP",
                                        "category": "service",
                                        "type": "free_customer_service",
                                    },
                                    "biz_opaque_callback_data": "message:4711",
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
    batch = parse_webhook(body)
    assert batch.messages == () and batch.problems == ()
    (status,) = batch.statuses
    assert status.wamid == OUR_WAMID
    assert (status.status, status.raw_status) == (DeliveryStatus.SENT, "sent")
    assert status.timestamp == TS_DT
    assert status.recipient_id == USER
    assert status.errors == ()
    assert status.conversation.id == "6ceb9d929c9bdc4f90967c2a6f2a3b3c"
    assert status.conversation.origin_type == "service"
    assert status.conversation.expiration_timestamp == datetime(
        2025, 6, 9, 22, 4, 10, tzinfo=UTC
    )
    assert status.pricing.billable is True
    assert (
        status.pricing.pricing_model,
        status.pricing.category,
        status.pricing.type,
    ) == (
        "PMP",
        "service",
        "free_customer_service",
    )
    assert status.biz_opaque_callback_data == "message:4711"


def test_failed_status_carries_meta_error():
    batch = parse_webhook(
        webhook(
            statuses=[
                {
                    "id": OUR_WAMID,
                    "status": "failed",
                    "timestamp": TS,
                    "recipient_id": USER,
                    "errors": [
                        {
                            "code": 131047,
                            "title": "Re-engagement message",
                            "message": "Re-engagement message",
                            "error_data": {
                                "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
                            },
                            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                        }
                    ],
                }
            ]
        )
    )
    (status,) = batch.statuses
    assert status.status is DeliveryStatus.FAILED
    (error,) = status.errors
    assert error.code == 131047
    assert error.title == "Re-engagement message"
    assert error.details.startswith("Message failed to send because more than 24 hours")
    assert error.href.endswith("/error-codes/")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("delivered", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.READ),
        ("deleted", DeliveryStatus.UNKNOWN),
        ("warning", DeliveryStatus.UNKNOWN),
    ],
)
def test_status_values(raw, expected):
    batch = parse_webhook(
        webhook(
            statuses=[
                {"id": OUR_WAMID, "status": raw, "timestamp": TS, "recipient_id": USER}
            ]
        )
    )
    (status,) = batch.statuses
    assert (status.status, status.raw_status) == (expected, raw)


def test_value_level_errors():
    batch = parse_webhook(
        webhook(
            errors=[
                {
                    "code": 130429,
                    "title": "Rate limit hit",
                    "message": "(#130429) Rate limit hit",
                    "error_data": {
                        "details": "Cloud API message throughput has been reached."
                    },
                    "href": "/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        )
    )
    assert batch.errors == (
        ApiError(
            code=130429,
            title="Rate limit hit",
            message="(#130429) Rate limit hit",
            details="Cloud API message throughput has been reached.",
            href="/docs/whatsapp/cloud-api/support/error-codes/",
        ),
    )
    assert batch.messages == batch.statuses == batch.problems == ()


def test_non_message_fields_are_kept_as_other_changes():
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "time": 1749416383,
                "changes": [
                    {
                        "value": {
                            "event": "APPROVED",
                            "message_template_id": 594425479261596,
                            "message_template_name": "order_confirmation",
                            "message_template_language": "en_US",
                            "reason": "NONE",
                        },
                        "field": "message_template_status_update",
                    },
                    {
                        "value": {
                            "phone_number": "15550783881",
                            "event": "VERIFIED_ACCOUNT",
                        },
                        "field": "account_update",
                    },
                ],
            }
        ],
    }
    batch = parse_webhook(body)
    assert [(c.waba_id, c.field, c.value["event"]) for c in batch.other_changes] == [
        ("102290129340398", "message_template_status_update", "APPROVED"),
        ("102290129340398", "account_update", "VERIFIED_ACCOUNT"),
    ]
    assert batch.messages == batch.statuses == batch.problems == ()


def test_records_are_frozen_and_hashable():
    msg = parse_webhook(TEXT_WEBHOOK).messages[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.text = "changed"  # type: ignore[misc]
    assert len({msg, msg}) == 1


# --------------------------------------------------------------------------------------
# Bad input: the envelope raises, the inside degrades
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "body: expected an object, got list"),
        ("whatsapp", "body: expected an object, got string"),
        (None, "body: expected an object, got null"),
        (42, "body: expected an object, got number"),
        ({"entry": []}, "object: expected 'whatsapp_business_account', missing"),
        (
            {"object": "page", "entry": []},
            "object: expected 'whatsapp_business_account', got 'page'",
        ),
        ({"object": "whatsapp_business_account"}, "entry: missing"),
        (
            {"object": "whatsapp_business_account", "entry": {}},
            "entry: expected a list, got object",
        ),
        (
            {"object": "whatsapp_business_account", "entry": None},
            "entry: expected a list, got null",
        ),
    ],
)
def test_envelope_errors_raise_payload_error_with_reason(body, reason):
    with pytest.raises(PayloadError) as exc_info:
        parse_webhook(body)
    assert exc_info.value.reason == reason
    assert str(exc_info.value) == reason
    assert isinstance(exc_info.value, ValueError)


def test_empty_entry_list_is_an_empty_batch():
    batch = parse_webhook({"object": "whatsapp_business_account", "entry": []})
    assert batch.messages == batch.statuses == batch.problems == ()


def test_bad_message_does_not_hide_its_neighbours():
    good = TEXT_WEBHOOK["entry"][0]["changes"][0]["value"]["messages"][0]
    batch = parse_webhook(
        webhook(
            messages=[
                {
                    "from": USER,
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "no id"},
                },
                {"from": USER, "id": "wamid.ts", "timestamp": "abc", "type": "text"},
                {"id": "wamid.nofrom", "timestamp": TS, "type": "text"},
                "not a message",
                good,
                {
                    "from": USER,
                    "id": "wamid.big",
                    "timestamp": "99999999999999",
                    "type": "text",
                },
            ]
        )
    )
    assert [m.wamid for m in batch.messages] == [WAMID]
    base = "entry[0].changes[0].value.messages"
    assert batch.problems == (
        f"{base}[0].id: missing",
        f"{base}[1].timestamp: expected epoch seconds, got 'abc'",
        f"{base}[2].from: missing",
        f"{base}[3]: expected an object, got string",
        f"{base}[5].timestamp: epoch seconds out of range (99999999999999)",
    )


@pytest.mark.parametrize(
    ("raw_type", "content", "reason"),
    [
        ("text", {"text": "hello"}, "text: expected an object, got string"),
        ("text", {"text": {"body": 5}}, "text.body: expected a string, got number"),
        ("image", {"image": {"caption": "no id"}}, "image.id: missing"),
        (
            "location",
            {"location": {"latitude": "north", "longitude": 1}},
            "location.latitude: expected a number, got 'north'",
        ),
        (
            "contacts",
            {"contacts": {"name": {}}},
            "contacts: expected a list, got object",
        ),
        (
            "interactive",
            {"interactive": {"type": "button_reply", "button_reply": {"title": "Yes"}}},
            "interactive.button_reply.id: missing",
        ),
        (
            "interactive",
            {
                "interactive": {
                    "type": "nfm_reply",
                    "nfm_reply": {"response_json": "{oops"},
                }
            },
            "interactive.nfm_reply.response_json: not valid JSON",
        ),
        (
            "interactive",
            {
                "interactive": {
                    "type": "nfm_reply",
                    "nfm_reply": {"response_json": "[1]"},
                }
            },
            "interactive.nfm_reply.response_json: expected a JSON object, got list",
        ),
        (
            "button",
            {"button": {"payload": "X"}},
            "button.text: expected a string, got null",
        ),
        ("reaction", {"reaction": {"emoji": "x"}}, "reaction.message_id: missing"),
        (
            "order",
            {"order": {"product_items": "many"}},
            "order.product_items: expected a list, got string",
        ),
        ("system", {"system": None}, "system: expected an object, got null"),
    ],
)
def test_malformed_content_degrades_to_unknown_with_raw(raw_type, content, reason):
    raw = {"from": USER, "id": WAMID, "timestamp": TS, "type": raw_type, **content}
    batch = parse_webhook(webhook(messages=[raw]))
    (msg,) = batch.messages
    full_reason = f"entry[0].changes[0].value.messages[0].{reason}"
    assert (msg.type, msg.raw_type, msg.raw) == (MessageType.UNKNOWN, raw_type, raw)
    assert msg.parse_error == full_reason
    assert batch.problems == (full_reason,)


def test_malformed_context_keeps_the_message_type():
    batch = parse_webhook(
        webhook(
            messages=[
                {
                    "context": "wamid.x",
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "text",
                    "text": {"body": "still text"},
                }
            ]
        )
    )
    (msg,) = batch.messages
    assert (msg.type, msg.text, msg.context) == (MessageType.TEXT, "still text", None)
    assert msg.parse_error.endswith(
        "messages[0].context: expected an object, got string"
    )


def test_unknown_interactive_kind_is_kept():
    msg = only_message(
        webhook(
            messages=[
                {
                    "from": USER,
                    "id": WAMID,
                    "timestamp": TS,
                    "type": "interactive",
                    "interactive": {
                        "type": "call_permission_reply",
                        "call_permission_reply": {},
                    },
                }
            ]
        )
    )
    assert msg.type is MessageType.INTERACTIVE
    assert (msg.interactive.kind, msg.interactive.raw_kind) == (
        InteractiveKind.UNKNOWN,
        "call_permission_reply",
    )
    assert msg.reply_id is None


@pytest.mark.parametrize(
    ("value_patch", "problem"),
    [
        ({"messages": "hello"}, "value.messages: expected a list, got string"),
        ({"statuses": {"id": "x"}}, "value.statuses: expected a list, got object"),
        (
            {"contacts": 3, "messages": []},
            "value.contacts: expected a list, got number",
        ),
        ({"errors": "boom"}, "value.errors: expected a list, got string"),
        ({"errors": [7]}, "value.errors[0]: expected an object, got number"),
        (
            {"metadata": None, "messages": []},
            "value.metadata: expected an object, got null",
        ),
        (
            {"metadata": {"display_phone_number": "1555"}, "statuses": []},
            "value.metadata.phone_number_id: missing",
        ),
    ],
)
def test_malformed_value_parts_become_problems(value_patch, problem):
    body = webhook()
    body["entry"][0]["changes"][0]["value"].update(value_patch)
    batch = parse_webhook(body)
    assert batch.problems == (f"entry[0].changes[0].{problem}",)
    assert batch.messages == batch.statuses == ()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("x", "entry[0]: expected an object, got string"),
        (
            {"id": WABA_ID, "changes": "x"},
            "entry[0].changes: expected a list, got string",
        ),
        (
            {"id": WABA_ID, "changes": [None]},
            "entry[0].changes[0]: expected an object, got null",
        ),
        (
            {"id": WABA_ID, "changes": [{"value": {}}]},
            "entry[0].changes[0].field: missing",
        ),
        (
            {"id": WABA_ID, "changes": [{"field": "messages", "value": []}]},
            "entry[0].changes[0].value: expected an object, got list",
        ),
    ],
)
def test_malformed_entries_and_changes_become_problems(entry, problem):
    good_entry = TEXT_WEBHOOK["entry"][0]
    batch = parse_webhook(
        {"object": "whatsapp_business_account", "entry": [entry, good_entry]}
    )
    assert batch.problems == (problem,)
    assert [m.wamid for m in batch.messages] == [WAMID]


def test_status_without_recipient_is_a_problem_not_a_crash():
    batch = parse_webhook(
        webhook(
            statuses=[
                {"id": OUR_WAMID, "status": "read", "timestamp": TS},
                {
                    "id": OUR_WAMID,
                    "status": "read",
                    "timestamp": TS,
                    "recipient_id": USER,
                    "pricing": "free",
                },
            ]
        )
    )
    (status,) = batch.statuses
    assert status.pricing is None
    assert batch.problems == (
        "entry[0].changes[0].value.statuses[0].recipient_id: missing",
        "entry[0].changes[0].value.statuses[1].pricing: expected an object, got string",
    )


def test_timestamp_may_be_an_integer_but_not_a_boolean():
    ok = webhook(
        messages=[
            {
                "from": USER,
                "id": WAMID,
                "timestamp": 1749416383,
                "type": "request_welcome",
            }
        ]
    )
    assert only_message(ok).timestamp == TS_DT
    bad = webhook(
        messages=[
            {"from": USER, "id": WAMID, "timestamp": True, "type": "request_welcome"}
        ]
    )
    assert parse_webhook(bad).problems == (
        "entry[0].changes[0].value.messages[0].timestamp: expected epoch seconds, got True",
    )


# --------------------------------------------------------------------------------------
# Fuzz: arbitrary JSON never raises anything but PayloadError
# --------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "1749416383",
            "abc",
            "",
            "text",
            "image",
            "button_reply",
            "nfm_reply",
            "{",
            "{}",
        ]
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


def _check(body) -> None:
    try:
        batch = parse_webhook(body)
    except PayloadError:
        return
    for msg in batch.messages:
        assert msg.phone_number_id and msg.wamid and msg.from_wa_id
        assert isinstance(msg.text, str)
        assert msg.timestamp.tzinfo is UTC
    for status in batch.statuses:
        assert status.phone_number_id and status.wamid and status.recipient_id
    assert all(isinstance(p, str) and p for p in batch.problems)


@given(json_values)
def test_arbitrary_json_never_raises_other_errors(body):
    _check(body)


@given(
    st.one_of(
        st.lists(json_values, max_size=3),
        st.lists(
            st.dictionaries(st.sampled_from(["id", "changes", "time"]), json_values),
            max_size=3,
        ),
    )
)
def test_arbitrary_entries_in_a_valid_envelope_never_raise(entries):
    _check({"object": "whatsapp_business_account", "entry": entries})


REALISTIC_BODIES = [
    TEXT_WEBHOOK,
    webhook(
        messages=[
            {
                "context": {
                    "from": DISPLAY_NUMBER,
                    "id": OUR_WAMID,
                    "referred_product": {"catalog_id": "1"},
                },
                "referral": {"source_type": "ad", "ctwa_clid": "x"},
                "from": USER,
                "id": WAMID,
                "timestamp": TS,
                "type": "interactive",
                "interactive": {
                    "type": "nfm_reply",
                    "nfm_reply": {
                        "response_json": '{"a": 1}',
                        "body": "Sent",
                        "name": "flow",
                    },
                },
                "errors": [{"code": 1, "error_data": {"details": "d"}}],
            },
            {
                "from": USER,
                "id": WAMID + "2",
                "timestamp": TS,
                "type": "order",
                "order": {
                    "catalog_id": "1",
                    "product_items": [{"quantity": "2", "item_price": "9.5"}],
                },
            },
            {
                "from": USER,
                "id": WAMID + "3",
                "timestamp": TS,
                "type": "contacts",
                "contacts": [
                    {"name": {"formatted_name": "A"}, "phones": [{"phone": "1"}]}
                ],
            },
            {
                "from": USER,
                "id": WAMID + "4",
                "timestamp": TS,
                "type": "location",
                "location": {"latitude": 1, "longitude": 2},
            },
        ],
        statuses=[
            {
                "id": OUR_WAMID,
                "status": "failed",
                "timestamp": TS,
                "recipient_id": USER,
                "conversation": {
                    "id": "c",
                    "origin": {"type": "service"},
                    "expiration_timestamp": TS,
                },
                "pricing": {
                    "billable": False,
                    "pricing_model": "CBP",
                    "category": "service",
                },
                "errors": [{"code": 131026, "title": "Message undeliverable"}],
            }
        ],
        errors=[{"code": 130429, "title": "Rate limit hit"}],
    ),
]


def _paths(node, prefix=()):
    """Every (container, key) location in a JSON tree, for mutation."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield (*prefix, index)
            yield from _paths(child, (*prefix, index))


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    base=st.sampled_from(REALISTIC_BODIES),
    data=st.data(),
)
def test_mutated_real_payloads_never_raise_other_errors(base, data):
    """Replace 1-3 random nodes of a real payload with random JSON: deep in the tree, where
    purely random bodies rarely reach."""
    body = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = list(_paths(body))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = data.draw(json_values)
    _check(body)


WRONG_VALUES = [
    None,
    True,
    0,
    -1.5,
    10**30,
    10**400,  # valid JSON, beyond float range
    "",
    "abc",
    "99999999999999999999",
    [],
    [1],
    {},
    {"x": 1},
]


def _single_node_mutations():
    for base_index, base in enumerate(REALISTIC_BODIES):
        for path in _paths(base):
            for wrong in WRONG_VALUES:
                yield base_index, path, wrong


def test_every_single_node_replaced_by_every_wrong_type_never_raises():
    """Exhaustive counterpart of the random mutation test: each node of each real payload,
    replaced in turn by each JSON type, so a missed type check cannot hide by chance."""
    count = 0
    for base_index, path, wrong in _single_node_mutations():
        body = copy.deepcopy(REALISTIC_BODIES[base_index])
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = copy.deepcopy(wrong)
        try:
            _check(body)
        except Exception as exc:  # report which mutation broke it
            raise AssertionError(
                f"body {base_index}, {path} = {wrong!r}: {exc!r}"
            ) from exc
        count += 1
    assert count > 1000


# --------------------------------------------------------------------------------------
# Senders that are not WhatsApp numbers; edits, deletes and bare errors; callback data
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    ["<WHATSAPP_USER_PHONE_NUMBER>", "1555abc", "+16505551234", "1650 555 1234", "12345", "1" * 16, "١٢٣٤٥٦٧",
     "16505551234\n"],
    ids=["placeholder", "letters", "plus", "spaces", "too-short", "too-long", "arabic-indic-digits", "newline"],
)
def test_a_sender_that_is_not_a_whatsapp_number_is_refused_and_the_rest_kept(sender):
    good = {"from": USER, "id": WAMID, "timestamp": TS, "type": "text", "text": {"body": "hi"}}
    poison = {"from": sender, "id": WAMID + "x", "timestamp": TS, "type": "text", "text": {"body": "hi"}}
    batch = parse_webhook(webhook(messages=[poison, good]))
    assert [m.wamid for m in batch.messages] == [WAMID]
    (problem,) = batch.problems
    assert problem.startswith("entry[0].changes[0].value.messages[0].from: expected a WhatsApp number")


@pytest.mark.parametrize("sender", ["123456", "16505551234", "263771234567", "9" * 15])
def test_whatsapp_numbers_of_every_length_meta_uses_are_accepted(sender):
    body = webhook(messages=[{"from": sender, "id": WAMID, "timestamp": TS, "type": "text", "text": {"body": "x"}}],
                   contacts=[{"profile": {"name": "A"}, "wa_id": sender}])
    assert only_message(body).from_wa_id == sender


def test_an_edit_keeps_the_original_id_and_the_new_text():
    msg = only_message(webhook(messages=[{
        "from": USER, "id": WAMID, "timestamp": TS, "type": "edit",
        "edit": {"original_message_id": OUR_WAMID, "message": {
            "context": {"id": OUR_WAMID}, "type": "image",
            "image": {"id": "1234", "mime_type": "image/jpeg", "caption": "new caption"}}},
    }]))
    assert msg.type is MessageType.EDIT
    assert (msg.edit.original_message_id, msg.edit.message_type, msg.edit.text) == (OUR_WAMID, "image", "new caption")
    assert msg.text == "new caption"


def test_a_revoke_names_the_deleted_message():
    msg = only_message(webhook(messages=[{
        "from": USER, "id": WAMID, "timestamp": TS, "type": "revoke", "revoke": {"original_message_id": OUR_WAMID},
    }]))
    assert (msg.type, msg.revoke.original_message_id, msg.text) == (MessageType.REVOKE, OUR_WAMID, "")


@pytest.mark.parametrize("kind", ["edit", "revoke"])
def test_an_edit_or_revoke_forwarded_as_unsupported_keeps_its_kind(kind):
    msg = only_message(webhook(messages=[{
        "from": USER, "id": WAMID, "timestamp": TS, "type": "unsupported", "unsupported": {"type": kind},
        "errors": [{"code": 131051, "title": "Message type unknown"}],
    }]))
    assert msg.type is MessageType(kind)
    assert getattr(msg, kind).original_message_id is None
    assert msg.errors[0].code == 131051


@pytest.mark.parametrize(
    "message",
    [
        {"type": "interactive", "interactive": {"type": "call_permission_reply"}},
        {"type": "interactive"},
        {"type": "errors"},
        {"type": "text"},
    ],
    ids=["interactive-kind-not-forwarded", "interactive-without-content", "type-errors", "text-without-body"],
)
def test_a_message_that_carries_only_an_error_is_errors_not_a_problem(message):
    msg = only_message(webhook(messages=[{"from": USER, "id": WAMID, "timestamp": TS, **message,
                                          "errors": [{"code": 131051, "title": "Message type unknown"}]}]))
    assert (msg.type, msg.errors[0].code, msg.parse_error) == (MessageType.ERRORS, 131051, None)


def test_a_malformed_message_without_an_error_is_still_unknown_with_a_problem():
    batch = parse_webhook(webhook(messages=[{"from": USER, "id": WAMID, "timestamp": TS, "type": "interactive"}]))
    assert batch.messages[0].type is MessageType.UNKNOWN
    assert batch.problems


@pytest.mark.parametrize(
    "data, expected",
    [("msg:4711", 4711), ("msg:1", 1), ("message:4711", None), ("msg:0", None), ("msg:-3", None), ("msg:", None),
     ("msg:12a", None), ("msg:" + "9" * 19, None), (" msg:4711", None), ("msg:٤٧١١", None), (None, None)],
)
def test_the_callback_data_names_our_message_pk(data, expected):
    status = {"id": OUR_WAMID, "status": "sent", "timestamp": TS, "recipient_id": USER}
    if data is not None:
        status["biz_opaque_callback_data"] = data
    (parsed,) = parse_webhook(webhook(statuses=[status])).statuses
    assert parsed.callback_message_id == expected
