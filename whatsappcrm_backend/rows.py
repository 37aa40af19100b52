"""Model instances from raw SQL rows, for the few hot statements written as SQL.

The ORM compiles a query on every call (tens of function calls per column and filter); on
the message path that cost more CPU than PostgreSQL spent running the statement. A raw
statement selects ``select_list(Model, alias)`` and ``from_row`` turns that part of the row
into a normal instance: values pass through the same converters the ORM applies (JSON
decoded, SQLite's timestamps parsed), and the instance behaves as one the ORM loaded
(``save()``, ``refresh_from_db()``, field tracking).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connections
from django.db.models import Model

M = TypeVar("M", bound=Model)

_Converter = tuple[Any, list[Callable[..., Any]]]
_converters: dict[tuple[type[Model], str], list[_Converter]] = {}


def select_list(model: type[Model], alias: str, using: str = "default") -> str:
    """Every concrete column of ``model`` as ``alias."column"`` (unqualified for an empty
    alias: an UPDATE's RETURNING), in ``from_row``'s order."""
    quote = connections[using].ops.quote_name
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{quote(field.column)}" for field in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    """How many values of a row ``select_list(model, ...)`` takes."""
    return len(model._meta.concrete_fields)


def _field_converters(model: type[Model], using: str) -> list[_Converter]:
    key = (model, using)
    found = _converters.get(key)
    if found is None:
        connection = connections[using]
        found = []
        for field in model._meta.concrete_fields:
            column = field.get_col(model._meta.db_table)
            found.append((column, connection.ops.get_db_converters(column) + field.get_db_converters(connection)))
        _converters[key] = found
    return found


def from_row(model: type[M], values: Sequence[Any], using: str = "default") -> M:
    """An instance of ``model`` from the values ``select_list(model, ...)`` selected."""
    connection = connections[using]
    converted = list(values)
    for index, (column, converters) in enumerate(_field_converters(model, using)):
        value = converted[index]
        for converter in converters:
            value = converter(value, column, connection)
        converted[index] = value
    return model.from_db(using, None, converted)


def convert(model: type[Model], field_name: str, value: Any, using: str = "default") -> Any:
    """One column's raw value as the ORM would give it (e.g. an aggregate over that column)."""
    connection = connections[using]
    index = next(i for i, field in enumerate(model._meta.concrete_fields) if field.name == field_name)
    column, converters = _field_converters(model, using)[index]
    for converter in converters:
        value = converter(value, column, connection)
    return value
