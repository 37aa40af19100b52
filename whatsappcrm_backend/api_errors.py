"""One JSON shape for every REST API error, so clients parse one thing:

    {"error": {"code": "invalid", "message": "spec.type: unknown spec type 'x'", "fields": {"spec.type": ["..."]}}}

``code`` is stable and machine-readable (DRF's codes such as ``not_authenticated``,
``permission_denied``, ``not_found``, ``invalid``, plus the API's own such as ``conflict``);
``message`` is one sentence for a human; ``fields`` maps a dotted/indexed path
(``spec.buttons[0].title``, ``flows[1].steps[0].config``) to its problems and is empty when
no field is at fault.

Install with ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``; the API's views also use it directly,
so their errors have this shape whatever the project default is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.signals import got_request_exception
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

__all__ = ["ApiError", "api_exception_handler", "error_body", "flatten_errors"]

logger = logging.getLogger("whatsappcrm_backend.api")


class ApiError(exceptions.APIException):
    """A refusal the view decided on (a conflict, a closed window), with its code and fields.

    Views translate domain exceptions into this next to the service call, so the mapping from
    "what went wrong" to "which HTTP status" is visible where it happens.
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        fields: Mapping[str, list[str]] | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields = dict(fields or {})


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if key == api_settings.NON_FIELD_ERRORS_KEY and prefix:
        return prefix
    return f"{prefix}.{key}" if prefix else str(key)


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested ``detail`` -> ``{"a.b[2].c": ["message", ...]}``.

    Nested serializers and list fields report problems as nested dicts/lists; a flat map of
    paths is what a form or a log line can use without walking the structure.
    """
    out: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            for path, messages in flatten_errors(value, _join(prefix, key)).items():
                out.setdefault(path, []).extend(messages)
    elif isinstance(detail, (list, tuple)):
        if all(isinstance(item, str) for item in detail):
            if detail:
                out.setdefault(prefix or api_settings.NON_FIELD_ERRORS_KEY, []).extend(str(i) for i in detail)
        else:
            for index, item in enumerate(detail):
                if isinstance(item, str):
                    out.setdefault(prefix or api_settings.NON_FIELD_ERRORS_KEY, []).append(str(item))
                elif item:  # DRF puts {} for list items without problems
                    for path, messages in flatten_errors(item, _join(prefix, index)).items():
                        out.setdefault(path, []).extend(messages)
    elif detail is not None:
        out.setdefault(prefix or api_settings.NON_FIELD_ERRORS_KEY, []).append(str(detail))
    return out


def _summary(fields: Mapping[str, list[str]]) -> str:
    """The first problem, with its field, and how many more there are."""
    if not fields:
        return "Invalid input."
    path, messages = next(iter(fields.items()))
    first = messages[0] if messages else "invalid"
    text = first if path == api_settings.NON_FIELD_ERRORS_KEY else f"{path}: {first}"
    more = sum(len(m) for m in fields.values()) - 1
    return f"{text} (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else text


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """The API's error document."""
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def _code_of(exc: exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, exceptions.ErrorDetail) and detail.code:
        return str(detail.code)
    return str(getattr(exc, "default_code", "error"))


def api_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    """DRF exception handler: every error, expected or not, as ``error_body`` JSON.

    An unexpected exception is still a 500, logged with its traceback and announced through
    ``got_request_exception`` (so the test client re-raises it and error reporters see it),
    but the client gets JSON instead of an HTML page.
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) if str(exc) else None)

    if isinstance(exc, ApiError):
        body = error_body(exc.code, exc.message, exc.fields)
    elif isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        body = error_body("invalid", _summary(fields), fields)
    elif isinstance(exc, exceptions.APIException):
        body = error_body(_code_of(exc), str(exc.detail) if not isinstance(exc.detail, (list, dict)) else _summary(
            flatten_errors(exc.detail)
        ))
    else:
        request = context.get("request")
        view = context.get("view")
        logger.error(
            "api: unhandled %s in %s", type(exc).__name__, type(view).__name__ if view else "?", exc_info=exc
        )
        got_request_exception.send(sender=None, request=getattr(request, "_request", request))
        set_rollback()
        return Response(
            error_body("server_error", "Internal server error; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = f"{int(exc.wait)}"
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
