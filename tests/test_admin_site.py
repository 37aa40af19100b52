"""The admin is branded as the product and its VIEW SITE link leads to the operators' inbox.

The project has no public site at ``/``: Django's default VIEW SITE link was a 404. It now
points at the inbox (``/admin/inbox/``), where operators answer conversations.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import path

from whatsappcrm_backend.apps import ADMIN_SITE_URL

urlpatterns = [path("admin/", admin.site.urls)]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


@pytest.fixture
def operator_client() -> Client:
    User.objects.create_superuser("tendai", "tendai@example.com", "a-long-operator-password")
    client = Client()
    assert client.login(username="tendai", password="a-long-operator-password")
    return client


def test_view_site_points_at_the_operators_inbox(operator_client):
    page = operator_client.get("/admin/")

    assert page.status_code == 200
    assert ADMIN_SITE_URL == "/admin/inbox/"
    html = page.content.decode()
    assert f'<a href="{ADMIN_SITE_URL}">View site</a>' in html
    assert '<a href="/">View site</a>' not in html


def test_admin_is_branded_on_the_login_page_and_the_index(operator_client):
    login = Client().get("/admin/login/")
    assert login.status_code == 200
    assert "<title>Log in | WhatsApp CRM admin</title>" in login.content.decode()
    assert ">WhatsApp CRM</a>" in login.content.decode()  # the header

    index = operator_client.get("/admin/").content.decode()
    assert "<title>Operations | WhatsApp CRM admin</title>" in index
    assert ">WhatsApp CRM</a>" in index
    assert "Django administration" not in index
    assert "Django site admin" not in index
