"""Meta's error objects (``ApiError``), found in ``value.errors``, ``messages[].errors`` and
``statuses[].errors``.

Pure: no Django, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meta_integration.payloads.fields import (
    PayloadError,
    _int_or_none,
    _list,
    _obj,
    _opt_str,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiError:
    """One Graph API error object, as found in ``value.errors``, ``messages[].errors`` and
    ``statuses[].errors``. Older webhooks put ``details`` at top level instead of in
    ``error_data``; both are read."""

    code: int | None
    title: str | None
    message: str | None
    details: str | None
    href: str | None

    @classmethod
    def from_dict(cls, data: Any, path: str = "error") -> ApiError:
        data = _obj(data, path)
        error_data = data.get("error_data")
        details = (
            _opt_str(error_data, "details") if isinstance(error_data, Mapping) else None
        )
        return cls(
            code=_int_or_none(data.get("code")),
            title=_opt_str(data, "title"),
            message=_opt_str(data, "message"),
            details=details if details is not None else _opt_str(data, "details"),
            href=_opt_str(data, "href"),
        )


def _parse_errors(value: Any, path: str) -> tuple[tuple[ApiError, ...], list[str]]:
    """Errors are diagnostics: keep the readable ones, describe the rest, never fail."""
    try:
        items = _list(value, path)
    except PayloadError as exc:
        return (), [exc.reason]
    errors, notes = [], []
    for i, item in enumerate(items):
        try:
            errors.append(ApiError.from_dict(item, f"{path}[{i}]"))
        except PayloadError as exc:
            notes.append(exc.reason)
    return tuple(errors), notes
