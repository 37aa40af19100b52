"""X-Hub-Signature-256 signing and verification.

The expected digest below was computed independently (``openssl dgst -sha256 -hmac``) so the
test fails if sign_body ever hashes the wrong thing (e.g. re-serialised JSON, hex of the key).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meta_integration.signatures import SIGNATURE_HEADER, sign_body, verify_signature

APP_SECRET = "4f2c0e1a9b7d4c6e8f1a2b3c4d5e6f70"

# A real-shaped webhook body exactly as Meta sends it (compact JSON, no trailing newline).
BODY = json.dumps(
    {
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
    },
    separators=(",", ":"),
).encode()


def test_header_name_is_the_one_meta_sends():
    assert SIGNATURE_HEADER == "X-Hub-Signature-256"


def test_sign_body_matches_an_independent_hmac():
    # printf 'hello' | openssl dgst -sha256 -hmac 'secret'
    assert sign_body(b"hello", "secret") == (
        "sha256=88aab3ede8d3adf94d26ab90d3bafd4a2083070c3bcce9c014ee04a443847c0b"
    )


def test_valid_signature_verifies():
    assert verify_signature(BODY, sign_body(BODY, APP_SECRET), APP_SECRET) is True


def test_uppercase_hex_digest_still_verifies():
    header = "sha256=" + sign_body(BODY, APP_SECRET).removeprefix("sha256=").upper()
    assert verify_signature(BODY, header, APP_SECRET) is True


def test_wrong_secret_fails():
    assert (
        verify_signature(BODY, sign_body(BODY, "another-secret"), APP_SECRET) is False
    )


def test_tampered_body_fails():
    header = sign_body(BODY, APP_SECRET)
    tampered = BODY.replace(b"another color", b"another colour")
    assert verify_signature(tampered, header, APP_SECRET) is False


def test_reserialised_body_fails():
    """Verification is on raw bytes: pretty-printing the same JSON changes the digest."""
    header = sign_body(BODY, APP_SECRET)
    pretty = json.dumps(json.loads(BODY), indent=2).encode()
    assert verify_signature(pretty, header, APP_SECRET) is False


def _valid_hex() -> str:
    return sign_body(BODY, APP_SECRET).removeprefix("sha256=")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "sha256=",
        "sha1=" + "0" * 40,
        _valid_hex(),  # digest without the sha256= prefix
        "SHA256=" + _valid_hex(),  # Meta's prefix is lowercase
        "sha256=" + _valid_hex()[:-1],  # too short
        "sha256=" + _valid_hex() + "0",  # too long
        "sha256=" + "z" * 64,  # not hex
        "sha256=" + _valid_hex()[:-1] + "g",
        "sha256=" + "é" * 64,  # non-ASCII must not raise in compare_digest
    ],
    ids=[
        "none",
        "empty",
        "blank",
        "prefix-only",
        "sha1",
        "no-prefix",
        "uppercase-prefix",
        "short",
        "long",
        "non-hex",
        "one-non-hex-char",
        "non-ascii",
    ],
)
def test_malformed_headers_are_rejected_without_raising(header):
    assert verify_signature(BODY, header, APP_SECRET) is False


@pytest.mark.parametrize(
    "header", [123, b"sha256=abc", ["sha256=abc"]], ids=["int", "bytes", "list"]
)
def test_non_string_header_is_rejected(header):
    assert verify_signature(BODY, header, APP_SECRET) is False


def test_empty_app_secret_never_verifies():
    """A missing META_APP_SECRET must not turn into 'accept anything signed with ""'."""
    assert verify_signature(BODY, sign_body(BODY, ""), "") is False


@given(body=st.binary(max_size=512), header=st.one_of(st.none(), st.text(max_size=80)))
def test_verify_never_raises_on_arbitrary_input(body, header):
    assert verify_signature(body, header, APP_SECRET) in (True, False)


@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40))
def test_sign_then_verify_roundtrips(body, secret):
    assert verify_signature(body, sign_body(body, secret), secret) is True
