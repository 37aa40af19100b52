"""The webhook view: subscription check, signatures, bad input, size and method limits.

Every request goes through Django's test client with bodies built by ``simulate`` and signed
like Meta signs them. Refusals are checked for what they must not do: write anything.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from conversations.models import Contact, Message, StatusEvent
from devtools import webhook_payloads as simulate
from meta_integration import config_cache, services, views
from meta_integration.models import MetaAppConfig, WebhookEvent
from meta_integration.signatures import SIGNATURE_HEADER, sign_body
from tests.support.inbound import (
    APP_SECRET,
    URLCONF,
    VERIFY_TOKEN,
    WEBHOOK_URL,
    make_app_config,
    post_signed,
    post_webhook,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLCONF)]

OTHER_NUMBER_ID = "109876543210987"
OTHER_SECRET = "other-business-secret-fedcba9876543210"


def row_counts() -> dict[str, int]:
    return {
        "events": WebhookEvent.objects.count(),
        "contacts": Contact.objects.count(),
        "messages": Message.objects.count(),
        "statuses": StatusEvent.objects.count(),
    }


NOTHING = {"events": 0, "contacts": 0, "messages": 0, "statuses": 0}


def a_text_body(**kwargs) -> dict:
    return simulate.webhook_body([simulate.text("hello", **kwargs)])


# --------------------------------------------------------------------------------------
# GET: subscription handshake
# --------------------------------------------------------------------------------------


def verify(client: Client, **params: str):
    return client.get(WEBHOOK_URL, {f"hub.{k}": v for k, v in params.items()})


def test_get_echoes_the_challenge_as_plain_text_when_the_token_matches(client, app_config):
    response = verify(client, mode="subscribe", verify_token=VERIFY_TOKEN, challenge="1158201444")
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


def test_get_accepts_the_token_of_any_active_business_number(client, app_config):
    make_app_config(OTHER_NUMBER_ID, OTHER_SECRET, verify_token="second-token")
    response = verify(client, mode="subscribe", verify_token="second-token", challenge="42")
    assert (response.status_code, response.content) == (200, b"42")


@pytest.mark.parametrize(
    "params",
    [
        {"mode": "subscribe", "verify_token": "wrong", "challenge": "1"},
        {"mode": "unsubscribe", "verify_token": VERIFY_TOKEN, "challenge": "1"},
        {"verify_token": VERIFY_TOKEN, "challenge": "1"},
        {"mode": "subscribe", "challenge": "1"},
        {"mode": "subscribe", "verify_token": "", "challenge": "1"},
    ],
    ids=["wrong-token", "wrong-mode", "no-mode", "no-token", "empty-token"],
)
def test_get_refuses_a_wrong_handshake(client, app_config, params):
    response = verify(client, **params)
    assert response.status_code == 403
    assert b"1" not in response.content


def test_get_refuses_the_token_of_an_inactive_business_number(client):
    make_app_config(is_active=False)
    assert verify(client, mode="subscribe", verify_token=VERIFY_TOKEN, challenge="7").status_code == 403


def test_get_without_a_challenge_is_a_bad_request(client, app_config):
    assert verify(client, mode="subscribe", verify_token=VERIFY_TOKEN).status_code == 400


def test_get_refuses_when_no_business_number_is_configured(client):
    assert verify(client, mode="subscribe", verify_token="", challenge="7").status_code == 403
    assert verify(client, mode="subscribe", verify_token="anything", challenge="7").status_code == 403


# --------------------------------------------------------------------------------------
# POST: signatures
# --------------------------------------------------------------------------------------


def test_a_correctly_signed_post_is_accepted_and_logged(client, app_config):
    body = a_text_body()
    response = post_webhook(client, body)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.payload == body
    assert (event.app_config, event.message_count, event.status_count) == (app_config, 1, 0)
    assert event.summary == "1 message (text)"


def test_wrong_secret_is_refused_and_writes_nothing(client, app_config):
    assert post_webhook(client, a_text_body(), secret="not-the-app-secret").status_code == 403
    assert row_counts() == NOTHING


def test_body_modified_after_signing_is_refused(client, app_config):
    raw, headers = simulate.signed_request(a_text_body(), APP_SECRET)
    tampered = raw.replace(b"hello", b"HELLO")
    assert tampered != raw
    assert post_signed(client, tampered, headers).status_code == 403
    assert row_counts() == NOTHING


def test_missing_signature_header_is_refused(client, app_config):
    raw = simulate.serialize(a_text_body())
    assert client.post(WEBHOOK_URL, data=raw, content_type="application/json").status_code == 403
    assert row_counts() == NOTHING


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=",
        "sha256",
        "sha1=" + "a" * 40,
        "sha256=" + "a" * 63,
        "sha256=" + "a" * 65,
        "sha256=" + "g" * 64,
        "SHA256=" + "a" * 64,
        "sha256=" + "a" * 64,  # well-formed but wrong
    ],
    ids=["empty", "no-digest", "no-equals", "sha1", "short", "long", "non-hex", "upper-prefix", "wrong-digest"],
)
def test_malformed_or_wrong_signature_headers_are_refused(client, app_config, header):
    raw = simulate.serialize(a_text_body())
    response = post_signed(client, raw, {SIGNATURE_HEADER: header})
    assert response.status_code == 403
    assert row_counts() == NOTHING


def test_signature_digest_in_upper_case_hex_is_accepted(client, app_config):
    raw = simulate.serialize(a_text_body())
    header = "sha256=" + sign_body(raw, APP_SECRET).removeprefix("sha256=").upper()
    assert post_signed(client, raw, {SIGNATURE_HEADER: header}).status_code == 200


def test_two_business_numbers_each_verify_with_their_own_secret(client, app_config):
    other = make_app_config(OTHER_NUMBER_ID, OTHER_SECRET, verify_token="other")
    mine = simulate.webhook_body([simulate.text("to the first number")])
    theirs = simulate.webhook_body([simulate.text("to the second number")], phone_number_id=OTHER_NUMBER_ID)

    assert post_webhook(client, mine, APP_SECRET).status_code == 200
    assert post_webhook(client, theirs, OTHER_SECRET).status_code == 200
    assert post_webhook(client, mine, OTHER_SECRET).status_code == 403
    assert post_webhook(client, theirs, APP_SECRET).status_code == 403

    by_text = {m.text: m.app_config for m in Message.objects.all()}
    assert by_text == {"to the first number": app_config, "to the second number": other}
    assert WebhookEvent.objects.count() == 2


def test_a_batch_naming_two_numbers_must_verify_with_both_secrets(client, app_config):
    make_app_config(OTHER_NUMBER_ID, OTHER_SECRET, verify_token="other")
    body = simulate.batch(
        simulate.change([simulate.text("a")]),
        simulate.change([simulate.text("b")], phone_number_id=OTHER_NUMBER_ID),
    )
    assert post_webhook(client, body, APP_SECRET).status_code == 403
    assert post_webhook(client, body, OTHER_SECRET).status_code == 403
    assert row_counts() == NOTHING


def test_a_batch_for_two_numbers_sharing_one_app_secret_is_stored_per_number(client, app_config):
    other = make_app_config(OTHER_NUMBER_ID, APP_SECRET, verify_token="other")
    body = simulate.batch(
        simulate.change([simulate.text("a")]),
        simulate.change([simulate.text("b", wa_id="263770000001")], phone_number_id=OTHER_NUMBER_ID),
    )
    assert post_webhook(client, body).status_code == 200
    assert {m.text: m.app_config for m in Message.objects.all()} == {"a": app_config, "b": other}


def test_unknown_business_number_is_refused(client, app_config):
    body = simulate.webhook_body([simulate.text("hi")], phone_number_id="999999999999999")
    assert post_webhook(client, body).status_code == 403
    assert row_counts() == NOTHING


def test_inactive_business_number_is_refused(client):
    make_app_config(is_active=False)
    assert post_webhook(client, a_text_body()).status_code == 403
    assert row_counts() == NOTHING


def test_a_number_without_app_secret_is_refused_even_in_debug_and_logged_as_configuration_error(
    client, settings, caplog
):
    settings.DEBUG = True
    make_app_config(app_secret="")
    raw = simulate.serialize(a_text_body())
    with caplog.at_level(logging.ERROR, logger="meta_integration.services"):
        # Signed with the empty secret: what "skip the check when unset" would accept.
        response = post_signed(client, raw, {SIGNATURE_HEADER: sign_body(raw, "")})
    assert response.status_code == 403
    assert row_counts() == NOTHING
    assert any("configuration error" in r.getMessage() and "no app secret" in r.getMessage() for r in caplog.records)


def test_post_is_csrf_exempt(app_config):
    strict = Client(enforce_csrf_checks=True)
    assert post_webhook(strict, a_text_body()).status_code == 200


def test_trailing_slash_is_optional(client, app_config):
    raw, headers = simulate.signed_request(a_text_body(), APP_SECRET)
    assert post_signed(client, raw, headers, url=WEBHOOK_URL.rstrip("/")).status_code == 200


# --------------------------------------------------------------------------------------
# POST: bad bodies (signed, so only the body is wrong)
# --------------------------------------------------------------------------------------


def signed(raw: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign_body(raw, secret)}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{\"object\": ",
        b"\xff\xfe\x00garbage",
        b"{\"object\": \"whatsapp_business_account\", \"entry\": [NaN]}",
        b"{\"object\": \"whatsapp_business_account\", \"entry\": [1e400]}",
        b"[" * 100 + b"]" * 100,
        b"[" * 100_000,
    ],
    ids=["empty", "text", "truncated", "binary", "nan", "overflow-float", "too-deep", "absurdly-deep"],
)
def test_signed_body_that_is_not_json_is_a_bad_request(client, app_config, raw):
    response = post_signed(client, raw, signed(raw))
    assert response.status_code == 400
    assert row_counts() == NOTHING


@pytest.mark.parametrize(
    "document",
    [
        [],
        "whatsapp_business_account",
        {},
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": {"id": "1"}},
    ],
    ids=["list", "string", "empty-object", "wrong-object", "no-entry", "entry-not-list"],
)
def test_signed_json_that_is_not_a_whatsapp_payload_is_a_bad_request(client, app_config, document):
    raw = json.dumps(document).encode()
    response = post_signed(client, raw, signed(raw))
    assert response.status_code == 400
    assert row_counts() == NOTHING


def test_unsigned_garbage_is_forbidden_not_a_bad_request(client, app_config):
    """Only our own signers learn that their body is malformed."""
    raw = b"not json"
    assert post_signed(client, raw, signed(raw, "someone-else")).status_code == 403


def test_nul_characters_and_lone_surrogates_are_stored_replaced(client, app_config):
    body = simulate.webhook_body([simulate.text("a\u0000b")], profile_name="\ud800x")
    raw = json.dumps(body).encode()  # ASCII escapes: \u0000 and \ud800 reach the decoder
    assert post_signed(client, raw, signed(raw)).status_code == 200
    assert Message.objects.get().text == "a\ufffdb"
    assert Contact.objects.get().profile_name == "\ufffdx"


def test_non_message_changes_are_logged_not_stored_as_messages(client, app_config, caplog):
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": simulate.DEFAULT_WABA_ID, "changes": [{
            "field": "message_template_status_update",
            "value": {"event": "APPROVED", "message_template_id": 1234, "message_template_name": "welcome",
                      "message_template_language": "en_US", "reason": "NONE"},
        }]}],
    }
    with caplog.at_level(logging.INFO, logger="meta_integration.services"):
        assert post_webhook(client, body).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.app_config == app_config  # named no number: attributed to the signer
    assert event.summary == "1 other change (message_template_status_update)"
    assert Message.objects.count() == 0
    assert any("message_template_status_update" in r.getMessage() for r in caplog.records)


def test_value_level_errors_are_logged(client, app_config, caplog):
    body = simulate.webhook_body(errors=[simulate.error_object(131000)])
    with caplog.at_level(logging.WARNING, logger="meta_integration.services"):
        assert post_webhook(client, body).status_code == 200
    assert WebhookEvent.objects.get().summary == "1 error (131000)"
    assert any("code=131000" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------
# Size and methods
# --------------------------------------------------------------------------------------


def test_body_over_the_limit_is_refused_by_content_length(client, app_config, settings):
    raw, headers = simulate.signed_request(a_text_body(), APP_SECRET)
    settings.WEBHOOK_MAX_BODY_BYTES = len(raw) - 1
    assert post_signed(client, raw, headers).status_code == 413
    settings.WEBHOOK_MAX_BODY_BYTES = len(raw)
    assert post_signed(client, raw, headers).status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_a_large_body_within_the_webhook_limit_is_accepted(client, app_config, settings):
    """Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) must not cap the webhook's own limit."""
    settings.WEBHOOK_MAX_BODY_BYTES = 3 * 1024 * 1024
    body = simulate.webhook_body([simulate.text("x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1000))])
    raw, headers = simulate.signed_request(body, APP_SECRET)
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < len(raw) < settings.WEBHOOK_MAX_BODY_BYTES
    assert post_signed(client, raw, headers).status_code == 200
    assert len(Message.objects.get().text) == settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1000


def test_body_over_the_limit_is_refused_without_content_length(app_config, settings):
    """ASGI (and chunked uploads) give no Content-Length: the read itself is bounded."""
    raw, headers = simulate.signed_request(a_text_body(), APP_SECRET)
    settings.WEBHOOK_MAX_BODY_BYTES = len(raw) - 1
    scope = {
        "type": "http", "method": "POST", "path": WEBHOOK_URL, "query_string": b"",
        "headers": [(b"content-type", b"application/json"),
                    (SIGNATURE_HEADER.lower().encode(), headers[SIGNATURE_HEADER].encode())],
    }
    response = views.webhook(ASGIRequest(scope, io.BytesIO(raw)))
    assert response.status_code == 413
    assert row_counts() == NOTHING


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_are_not_allowed(client, app_config, method):
    raw, headers = simulate.signed_request(a_text_body(), APP_SECRET)
    response = client.generic(method, WEBHOOK_URL, data=raw, content_type="application/json", headers=headers)
    assert response.status_code == 405
    assert row_counts() == NOTHING


# --------------------------------------------------------------------------------------
# Property-based: no input makes the view fail or write half a request
# --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)


def _real_bodies() -> list[dict]:
    reply_to = simulate.new_wamid(outgoing=True)
    return [
        simulate.webhook_body([simulate.text("hi", context=reply_to)]),
        simulate.webhook_body([simulate.image(caption="look"), simulate.location(-17.8, 31.05, "Harare")]),
        simulate.webhook_body([simulate.button_reply("menu", "Menu"), simulate.nfm_reply({"a": "1"})]),
        simulate.webhook_body([simulate.reaction(reply_to, "👍"), simulate.unsupported()]),
        simulate.webhook_body(statuses=[simulate.status(reply_to, "failed", simulate.DEFAULT_WA_ID)]),
        simulate.batch(
            simulate.change([simulate.contacts_message([simulate.contact_card("Rudo", "+263 77 111 2222")])]),
            simulate.change(statuses=[simulate.status(reply_to, "read", simulate.DEFAULT_WA_ID)]),
        ),
    ]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


@st.composite
def mutated_bodies(draw):
    """A real body with one to three subtrees replaced by arbitrary JSON (or long strings)."""
    body = draw(st.sampled_from(_real_bodies()))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(body))[1:]))
        new = draw(json_values | st.text(min_size=250, max_size=400) | st.integers(2**31, 2**70))
        body = _replace(body, path, new)
    return body


FUZZ = hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _assert_all_or_nothing(response, before: dict[str, int]) -> None:
    assert response.status_code in (200, 400, 403), response.content
    after = row_counts()
    event(f"HTTP {response.status_code}, {after['messages'] - before['messages']} new messages")
    if response.status_code == 200:
        assert after["events"] == before["events"] + 1
    else:
        assert after == before


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_arbitrary_signed_bytes_never_fail_the_view(client, app_config, raw):
    before = row_counts()
    response = post_signed(client, raw, signed(raw))
    _assert_all_or_nothing(response, before)


@FUZZ
@given(document=json_values)
def test_arbitrary_signed_json_never_fails_the_view(client, app_config, document):
    raw = json.dumps(document).encode()
    before = row_counts()
    response = post_signed(client, raw, signed(raw))
    _assert_all_or_nothing(response, before)
    assert response.status_code == 400  # arbitrary JSON is never a WhatsApp envelope


@FUZZ
@given(body=mutated_bodies())
def test_mutated_real_bodies_are_stored_whole_or_refused_whole(client, app_config, body):
    raw = json.dumps(body).encode()
    before = row_counts()
    response = post_signed(client, raw, signed(raw))
    _assert_all_or_nothing(response, before)


# --------------------------------------------------------------------------------------
# Retention and the environment's default business number
# --------------------------------------------------------------------------------------


def test_purge_deletes_events_older_than_the_retention_period(app_config, settings):
    settings.WEBHOOK_EVENT_RETENTION_DAYS = 30
    now = timezone.now()
    ages = {"fresh": timedelta(days=1), "edge": timedelta(days=29, hours=23), "old": timedelta(days=31),
            "ancient": timedelta(days=400)}
    for summary, age in ages.items():
        event = WebhookEvent.objects.create(app_config=app_config, payload={}, summary=summary)
        WebhookEvent.objects.filter(pk=event.pk).update(received_at=now - age)
    assert services.purge_webhook_events(now=now) == 2
    assert set(WebhookEvent.objects.values_list("summary", flat=True)) == {"fresh", "edge"}
    assert services.purge_webhook_events(now=now) == 0


def test_default_app_config_is_created_from_the_environment_and_kept_in_sync(settings):
    settings.META_PHONE_NUMBER_ID = "100000000000001"
    settings.META_DISPLAY_PHONE_NUMBER = "15550001111"
    settings.META_APP_SECRET = "env-secret"
    settings.META_VERIFY_TOKEN = "env-verify"
    settings.META_ACCESS_TOKEN = "env-token"

    config = services.ensure_default_app_config()
    assert config is not None
    assert (config.phone_number_id, config.app_secret, config.verify_token, config.access_token,
            config.display_phone_number) == ("100000000000001", "env-secret", "env-verify", "env-token", "15550001111")
    assert config.name == services.ENV_CONFIG_NAME

    # The operator renames it and switches it off; a re-run leaves that alone.
    MetaAppConfig.objects.filter(pk=config.pk).update(name="Main line", is_active=False)
    services.ensure_default_app_config()
    assert MetaAppConfig.objects.count() == 1
    same = MetaAppConfig.objects.get()
    assert (same.name, same.is_active, same.app_secret) == ("Main line", False, "env-secret")

    # A rotated secret takes effect.
    settings.META_APP_SECRET = "rotated"
    services.ensure_default_app_config()
    assert MetaAppConfig.objects.get().app_secret == "rotated"


def test_no_default_app_config_without_a_phone_number_id(settings):
    settings.META_PHONE_NUMBER_ID = ""
    settings.META_APP_SECRET = "env-secret"
    assert services.ensure_default_app_config() is None
    assert MetaAppConfig.objects.count() == 0


def test_default_app_config_without_secret_is_logged_as_a_configuration_error(settings, caplog):
    settings.META_PHONE_NUMBER_ID = "100000000000001"
    settings.META_APP_SECRET = ""
    with caplog.at_level(logging.ERROR, logger="meta_integration.services"):
        services.ensure_default_app_config()
    assert any("META_APP_SECRET" in r.getMessage() for r in caplog.records)


def test_the_environment_config_can_receive_webhooks_right_after_it_is_created(client, settings):
    settings.META_PHONE_NUMBER_ID = simulate.DEFAULT_PHONE_NUMBER_ID
    settings.META_APP_SECRET = "env-secret"
    settings.META_VERIFY_TOKEN = "env-verify"
    services.ensure_default_app_config()
    assert post_webhook(client, a_text_body(), "env-secret").status_code == 200
    assert verify(client, mode="subscribe", verify_token="env-verify", challenge="5").content == b"5"


# --------------------------------------------------------------------------------------
# The audit log (anomalies always, normal POSTs by WEBHOOK_EVENT_SAMPLE_RATE) and the
# per-process cache of business numbers
# --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _audit_every_post(settings):
    """Tests in this module read the audit row of normal POSTs: keep every one.

    The production default is 0 (no audit row on the normal path); the tests below that
    are about the default set it back.
    """
    settings.WEBHOOK_EVENT_SAMPLE_RATE = 1.0


def test_a_normal_post_writes_no_audit_row_by_default(client, app_config, settings):
    settings.WEBHOOK_EVENT_SAMPLE_RATE = 0.0
    body = simulate.webhook_body([simulate.text("hello")], statuses=[
        simulate.status(simulate.new_wamid(outgoing=True), "delivered", simulate.DEFAULT_WA_ID)
    ])
    assert post_webhook(client, body).status_code == 200
    assert (WebhookEvent.objects.count(), Message.objects.count(), StatusEvent.objects.count()) == (0, 1, 1)


@pytest.mark.parametrize(
    "anomaly",
    [
        pytest.param(lambda body: body["entry"][0]["changes"][0]["value"]["messages"].append({"id": "x"}),
                     id="item-not-understood"),
        pytest.param(lambda body: body["entry"][0]["changes"][0]["value"].update(
            errors=[simulate.error_object(131000)]), id="meta-error"),
        pytest.param(lambda body: body["entry"][0]["changes"].append(
            {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}), id="other-change"),
    ],
)
def test_a_post_with_anything_unusual_is_kept_whole(client, app_config, settings, anomaly):
    settings.WEBHOOK_EVENT_SAMPLE_RATE = 0.0
    body = simulate.webhook_body([simulate.text("hello")])
    anomaly(body)
    assert post_webhook(client, body).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.payload == body
    assert Message.objects.count() == 1  # the readable part is stored all the same


def test_the_sample_rate_must_be_a_share():
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=Path(__file__).resolve().parent.parent,
        env=os.environ | {"DEBUG": "1", "WEBHOOK_EVENT_SAMPLE_RATE": "1.5"}, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "WEBHOOK_EVENT_SAMPLE_RATE=1.5 must be between 0 and 1" in result.stderr


def test_a_cached_business_number_is_not_looked_up_again(client, app_config, django_assert_num_queries):
    assert post_webhook(client, simulate.webhook_body(statuses=[
        simulate.status(simulate.new_wamid(outgoing=True), "sent", simulate.DEFAULT_WA_ID)])).status_code == 200
    with django_assert_num_queries(0):
        assert config_cache.active_configs([simulate.DEFAULT_PHONE_NUMBER_ID]) == {
            simulate.DEFAULT_PHONE_NUMBER_ID: app_config
        }


def test_a_deactivated_or_rotated_business_number_is_honoured_at_once_in_this_process(client, app_config):
    assert post_webhook(client, a_text_body()).status_code == 200  # cached now
    app_config.app_secret = "rotated-secret-0123456789abcdef"
    app_config.save()
    assert post_webhook(client, a_text_body()).status_code == 403
    assert post_webhook(client, a_text_body(), secret="rotated-secret-0123456789abcdef").status_code == 200
    app_config.is_active = False
    app_config.save()
    assert post_webhook(client, a_text_body(), secret="rotated-secret-0123456789abcdef").status_code == 403
    app_config.is_active = True
    app_config.save()
    assert post_webhook(client, a_text_body(), secret="rotated-secret-0123456789abcdef").status_code == 200
    app_config.delete()
    assert post_webhook(client, a_text_body(), secret="rotated-secret-0123456789abcdef").status_code == 403


def test_a_change_saved_by_another_process_is_honoured_within_the_cache_time(client, app_config, settings):
    """Another gunicorn worker's save sends no signal here: the entry expires instead.

    A queryset ``update`` sends no signal either, so it stands in for the other process.
    """
    import time

    settings.META_CONFIG_CACHE_SECONDS = 0.2
    assert post_webhook(client, a_text_body()).status_code == 200  # cached now
    MetaAppConfig.objects.filter(pk=app_config.pk).update(is_active=False)
    time.sleep(0.3)  # past the (shortened) cache time; not a timing assertion
    assert post_webhook(client, a_text_body()).status_code == 403
    assert Message.objects.count() == 1


def test_an_unknown_number_is_not_cached_so_a_new_one_is_answered_at_once(client, app_config):
    other = simulate.webhook_body([simulate.text("hi")], phone_number_id=OTHER_NUMBER_ID)
    assert post_webhook(client, other, secret=OTHER_SECRET).status_code == 403
    MetaAppConfig.objects.bulk_create([MetaAppConfig(  # no signal: nothing to clear, nothing was cached
        name="Second", phone_number_id=OTHER_NUMBER_ID, access_token="t", app_secret=OTHER_SECRET, verify_token="v",
    )])
    assert post_webhook(client, other, secret=OTHER_SECRET).status_code == 200
