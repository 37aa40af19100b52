"""Meta's webhook skips the browser middleware; everything else keeps it (issue 11).

Sessions, CSRF, authentication, messages, clickjacking and the security headers do nothing
for a cookie-less POST signed by Meta, and running them cost about as much CPU as storing a
status. ``whatsappcrm_backend.middleware.LeanViewMiddleware`` calls the marked view directly.
"""

from __future__ import annotations

import pytest

from conversations.models import Message
from devtools import webhook_payloads as simulate
from tests.support.inbound import URLCONF, WEBHOOK_URL, make_app_config, post_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = URLCONF


def test_the_webhook_is_answered_without_the_browser_middleware(client, broker):
    make_app_config()
    response = post_webhook(client, simulate.webhook_body([simulate.text("hi", wa_id="263770000010")]))
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(response.content))  # not answered in chunks
    assert Message.objects.filter(contact__wa_id="263770000010").count() == 1
    # No clickjacking, content-type-sniffing or session headers on Meta's answer...
    assert "X-Frame-Options" not in response.headers
    assert "X-Content-Type-Options" not in response.headers
    assert not response.cookies
    # ... while the admin still gets the whole stack.
    admin = client.get("/admin/login/")
    assert admin.status_code == 200
    assert admin.headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in admin.cookies


def test_a_bad_signature_is_still_refused_and_stores_nothing(client):
    make_app_config()
    response = post_webhook(client, simulate.webhook_body([simulate.text("hi", wa_id="263770000011")]),
                            secret="not-the-app-secret")
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_with_ssl_redirect_a_plain_http_webhook_is_redirected_as_before(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    make_app_config()
    response = post_webhook(client, simulate.webhook_body([simulate.text("hi", wa_id="263770000012")]))
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://")
    assert not Message.objects.exists()


def test_a_path_no_view_matches_goes_through_the_whole_stack(client):
    response = client.get(WEBHOOK_URL + "nothing-here")
    assert response.status_code == 404
    assert response.headers["X-Frame-Options"] == "DENY"
