"""The operators' REST API: who may do what, the shared view plumbing, and ``/api/`` itself.

Roles are ordered; each includes the ones below it:

* **read-only** (group ``operators-readonly``): read contacts, conversations, flows, sessions,
  tickets and wallets;
* **agent** (group ``agents``): also send messages, hand a contact over / release it, expire a
  session;
* **admin** (``is_staff`` or ``is_superuser``): also import flows and book deposits and
  adjustments.

An authenticated user in none of these gets 403 on everything; an anonymous request gets 401
with ``WWW-Authenticate: Token`` (TokenAuthentication is listed first for that reason). Both
are decided before the view runs, so they change nothing.

The views set their authentication, permissions, parser (JSON only, NUL refused), schema and
exception handler themselves rather than relying on ``REST_FRAMEWORK`` defaults: the API's guarantees hold whatever the
project default is. Each app's ``api.py`` owns its routes; this module mounts them and adds
the OpenAPI schema (``/api/schema/``) and its documentation pages (``/api/docs/``, Swagger UI, and
``/api/redoc/``), whose assets are served from the project's static files (no CDN).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, include, path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from whatsappcrm_backend.api_errors import api_exception_handler, error_body

__all__ = [
    "AGENT_GROUP",
    "READ_ONLY_GROUP",
    "ROLE_GROUPS",
    "ApiJSONParser",
    "ApiMixin",
    "ErrorSerializer",
    "PagePagination",
    "Role",
    "RolePermission",
    "ensure_role_groups",
    "error_responses",
    "find_nul",
    "role_for",
    "user_role",
]

READ_ONLY_GROUP = "operators-readonly"
AGENT_GROUP = "agents"


class Role(IntEnum):
    """What an operator may do; a higher role includes every lower one."""

    NONE = 0
    READ_ONLY = 1
    AGENT = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return {
            Role.NONE: "no API role",
            Role.READ_ONLY: f"read-only (group {READ_ONLY_GROUP!r})",
            Role.AGENT: f"agent (group {AGENT_GROUP!r})",
            Role.ADMIN: "admin (staff)",
        }[self]


ROLE_GROUPS: dict[str, Role] = {READ_ONLY_GROUP: Role.READ_ONLY, AGENT_GROUP: Role.AGENT}


def role_for(*, active: bool, staff: bool, superuser: bool, groups: Iterable[str]) -> Role:
    """The highest role a user's flags and groups give; an inactive user has none."""
    if not active:
        return Role.NONE
    if staff or superuser:
        return Role.ADMIN
    return max((ROLE_GROUPS.get(name, Role.NONE) for name in groups), default=Role.NONE)


def user_role(user: Any) -> Role:
    """``role_for`` a Django user (cached on the user object for the request)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Role.NONE
    cached = getattr(user, "_api_role", None)
    if cached is None:
        cached = role_for(
            active=user.is_active,
            staff=user.is_staff,
            superuser=user.is_superuser,
            groups=user.groups.values_list("name", flat=True),
        )
        user._api_role = cached
    return cached


def ensure_role_groups(using: str = "default", **kwargs: Any) -> list[str]:
    """Create the role groups if missing; returns the names created.

    Idempotent, with the signature of a ``post_migrate`` receiver so it can be connected to
    it (``post_migrate.connect(ensure_role_groups, sender=app_config)``).
    """
    from django.contrib.auth.models import Group

    created = []
    for name in ROLE_GROUPS:
        _, was_created = Group.objects.using(using).get_or_create(name=name)
        if was_created:
            created.append(name)
    return created


class RolePermission(BasePermission):
    """Grants a request when the user's role reaches what the view needs for the method.

    Safe methods need ``view.read_role``; others ``view.write_role``. An anonymous request is
    refused here too, and DRF turns that into 401 because an authenticator exists.
    """

    SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

    def has_permission(self, request: Request, view: APIView) -> bool:
        needed = getattr(view, "read_role" if request.method in self.SAFE_METHODS else "write_role", Role.ADMIN)
        role = user_role(request.user)
        if role >= needed:
            return True
        if role is Role.NONE:
            self.message = f"This needs the {needed.label} role; your account has no API role."
        else:
            self.message = f"This needs the {needed.label} role; your account is {role.label}."
        return False


class PageParams(serializers.Serializer):
    page = serializers.IntegerField(required=False, min_value=1, max_value=10**9)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


class PagePagination(PageNumberPagination):
    """Numbered pages of 50 (``?page=2&page_size=100``, at most 200).

    A malformed ``page``/``page_size`` is a 400 naming it (DRF would silently use the default
    size, or answer 404 for ``page=0``); a page past the last one is a 404.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_page_message = "Page {page_number}: {message}."

    def paginate_queryset(self, queryset: Any, request: Request, view: APIView | None = None) -> list[Any] | None:
        given = {key: request.query_params[key] for key in ("page", "page_size") if key in request.query_params}
        PageParams(data=given).is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {"page": {"minimum": 1, "maximum": 10**9}, "page_size": {"minimum": 1, "maximum": 200}}
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid, not_found, conflict")
    message = serializers.CharField(help_text="One sentence for a human")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Problems by field path, e.g. {"spec.body": ["required"]}; empty if no field is at fault',
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (see ``api_errors``)."""

    error = ErrorDetailSerializer()


_ERROR_DESCRIPTIONS = {
    400: "Invalid input; `fields` names each problem",
    401: "Not authenticated (send `Authorization: Token <key>` or log in)",
    403: "Authenticated, but the account's role does not allow this",
    404: "No such object (or a page past the last one)",
    409: "Refused because of the object's current state; nothing changed",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error statuses, plus 401 and 403 which every view has."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS.get(code, "Error"))
        for code in sorted({401, 403, *statuses})
    }


def find_nul(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) containing a NUL character, else None.

    PostgreSQL cannot store NUL in text or jsonb (the insert fails with a server error), and
    no WhatsApp message or flow needs one, so request bodies carrying one are refused.
    """
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            found = find_nul(item, where)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = find_nul(item, f"{path}[{index}]")
            if found:
                return found
    return None


class ApiJSONParser(JSONParser):
    """JSON bodies, refusing NUL characters anywhere with a 400 naming the field."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        where = find_nul(data)
        if where:
            raise ValidationError({where: ["null characters are not allowed"]})
        return data


class ApiMixin:
    """Put first in every API view's bases: authentication, roles, schema and error format."""

    authentication_classes = (TokenAuthentication, SessionAuthentication)
    parser_classes = (ApiJSONParser,)
    permission_classes = (RolePermission,)
    schema = AutoSchema()
    read_role: Role = Role.READ_ONLY
    write_role: Role = Role.AGENT

    def get_exception_handler(self) -> Any:
        return api_exception_handler


@csrf_exempt  # it changes nothing; a POST to a wrong path must get this answer, not a CSRF page
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Unknown paths under /api/ answer JSON like the rest of the API, with a hint for a
    missing trailing slash (the catch-all stops CommonMiddleware from redirecting)."""
    message = f"No API endpoint at {request.path}."
    if not request.path.endswith("/"):
        try:
            resolve(request.path + "/")
        except Resolver404:
            pass
        else:
            message += f" Did you mean {request.path}/ ?"
    return JsonResponse(error_body("not_found", message), status=404)


API_TITLE = "WhatsApp CRM operators API"
API_DESCRIPTION = (
    "Contacts and conversations, human handover, flows and sessions, bet tickets and wallets.\n\n"
    "Authenticate with `Authorization: Token <key>` (or a Django admin session). Roles: "
    f"read-only (group `{READ_ONLY_GROUP}`), agent (group `{AGENT_GROUP}`), admin (staff). "
    'Every error is `{"error": {"code", "message", "fields"}}`.'
)



class SchemaView(SpectacularAPIView):
    """The OpenAPI document, left out of itself."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)


app_name = "api"


def _urlpatterns() -> list:
    return [
        path("", include("conversations.api")),
        path("", include("flows.api")),
        path("", include("football_data_app.api")),
        path("", include("campaigns.api")),
        path(
            "schema/",
            SchemaView.as_view(
                custom_settings={"TITLE": API_TITLE, "DESCRIPTION": API_DESCRIPTION, "VERSION": "1.0.0"}
            ),
            name="schema",
        ),
        path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
        path(
            "redoc/",
            SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html"),  # no web fonts
            name="redoc",
        ),
        re_path(r"^(?P<rest>[\s\S]*)\Z", api_not_found),  # any path, even one with a newline
    ]


def __getattr__(name: str) -> Any:
    """``urlpatterns`` is built on first access (PEP 562), not at import: the apps' api
    modules import this module for ``ApiMixin``, and ``include()`` imports them eagerly, so
    building it at import would be a circular import whichever module is imported first."""
    if name == "urlpatterns":
        patterns = _urlpatterns()
        globals()["urlpatterns"] = patterns
        return patterns
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
