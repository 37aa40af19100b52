"""Property-based run of the whole REST API against its own OpenAPI schema (schemathesis).

Schemathesis reads ``/api/schema/`` from the Django WSGI application in-process (no server,
no network) and, for every operation, sends generated requests as an authenticated admin (the
role that reaches every code path): valid ones, boundary values and invalid ones. Every
response must not be a 500, and must match the status codes, content type, headers and body
schema that the OpenAPI document promises; invalid input must be refused, and a request
without the token must be refused (401).

It runs on the same starting data as ``test_api`` (a contact mid-flow, one in handover, flows,
a wallet with a ticket), so small generated ids hit real objects, and every write happens in
the test's transaction, rolled back at the end. Bounded to 20 examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.api import URLCONF
from whatsappcrm_backend.api import Role

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLCONF)]  # base_world: conftest.py, as for test_api

MAX_EXAMPLES = 20


@pytest.fixture
def wsgi_app(base_world, db) -> Iterator[Any]:
    """Django's WSGI handler on the test database. Django closes the connection at the end of
    each request; inside the test's transaction that would abort it, so (like Django's own
    test client) the close is switched off while the test runs."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(base_world) -> str:
    return base_world["tokens"][Role.ADMIN]


@pytest.fixture
def api_schema(wsgi_app, admin_token):
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app, config=SchemathesisConfig())
    loaded.config.update(headers={"Authorization": f"Token {admin_token}"})
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        database="none",
        # NUL is refused everywhere (PostgreSQL cannot store it); test_api checks that answer.
        allow_x00=False,
    )
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


# Operations whose rules go beyond what their OpenAPI schema can say, so a schema-valid body
# may rightly be refused with 400: "text or spec, not both" and the message spec's own rules,
# the flow document's validator, a non-zero amount with two decimals, a non-blank reason;
# a non-blank label name; label changes that name existing ids, something to add or remove,
# and no label both added and removed.
SEMANTIC_400 = {
    ("POST", "/api/labels/"),
    ("POST", "/api/contacts/{id}/labels/"),
    ("POST", "/api/contacts/labels/"),
    ("POST", "/api/contacts/{id}/messages/"),
    ("POST", "/api/flows/import/"),
    ("POST", "/api/wallets/{id}/deposits/"),
    ("POST", "/api/wallets/{id}/adjustments/"),
}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_conforms_to_its_schema_and_never_fails(case):
    excluded = []
    if (case.method.upper(), case.path) in SEMANTIC_400:
        excluded.append(positive_data_acceptance)
    case.call_and_validate(excluded_checks=excluded)
