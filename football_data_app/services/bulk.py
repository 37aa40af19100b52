"""Bulk SQL for the football tables: a fixed number of statements per call, whatever the rows.

``bulk_upsert`` (one ``INSERT ... ON CONFLICT DO UPDATE``) is what ingestion writes pages
with; ``bulk_set`` (one ``UPDATE``) is what settlement and the wallet write locked rows with.
Both are spelt the same by SQLite and PostgreSQL; only column names from the model's own
metadata are interpolated, every value is a parameter. Also the two small helpers every
writer uses: ``chunks`` (ids per ``IN (...)`` list) and ``clip`` (a value cut to its column).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from django.db import connections, router

__all__ = [
    "BATCH_ROWS",
    "PG_MAX_PARAMETERS",
    "SQL_CHUNK",
    "bulk_set",
    "bulk_upsert",
    "chunks",
    "clip",
    "upsert_rows",
]

_T = TypeVar("_T")

SQL_CHUNK = 900  # ids per IN (...) list: well inside every backend's parameter limit
BATCH_ROWS = 2000  # rows per INSERT: 2000 x <=16 columns stays under PostgreSQL's 65535 parameters
PG_MAX_PARAMETERS = 65535


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def clip(value: str | None, length: int) -> str:
    """``value`` cut to a column of ``length`` characters (None becomes ""): feed text and
    operator names never fail a write for being long."""
    return (value or "")[:length]


def _quoted(connection: Any, model: type, names: Sequence[str]) -> list[str]:
    meta, quote = model._meta, connection.ops.quote_name
    return [quote(meta.get_field(name).column) for name in names]


def _execute_rows(connection: Any, head: str, row: str, tail: str, params: Sequence[Sequence[Any]]) -> None:
    """Run ``head VALUES row, row, ... tail`` for every row of ``params``.

    SQLite runs one prepared single-row statement per row in C (``executemany``): fastest
    there, and free of its 32,766-parameter limit. Elsewhere (PostgreSQL) ``executemany``
    would be a round trip per row, so the rows go in multi-row ``VALUES`` statements of up to
    65,535 parameters: one statement for any page ingestion writes (4,000 selections x 10).
    """
    if not params:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.executemany(f"{head} VALUES {row} {tail}", params)
            return
        size = max(1, PG_MAX_PARAMETERS // len(params[0]))
        for start in range(0, len(params), size):
            chunk = params[start : start + size]
            cursor.execute(f"{head} VALUES {', '.join([row] * len(chunk))} {tail}", [v for r in chunk for v in r])


def upsert_rows(
    model: type, insert: Sequence[str], unique: Sequence[str], update: Sequence[str], params: Sequence[Sequence[Any]]
) -> None:
    """``INSERT ... ON CONFLICT (unique) DO UPDATE SET col = excluded.col`` for ``model``,
    spelt the same by SQLite (3.24+) and PostgreSQL (9.5+). Only column names from the
    model's own metadata (quoted) are interpolated; every value is a parameter."""
    connection = connections[router.db_for_write(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    assignments = ", ".join(f"{column} = excluded.{column}" for column in _quoted(connection, model, update))
    head = f"INSERT INTO {table} ({', '.join(_quoted(connection, model, insert))})"
    row = f"({', '.join(['%s'] * len(insert))})"
    tail = f"ON CONFLICT ({', '.join(_quoted(connection, model, unique))}) DO UPDATE SET {assignments}"
    _execute_rows(connection, head, row, tail, params)


def bulk_upsert(objs: Sequence[Any], *, unique_fields: Sequence[str], update_fields: Sequence[str]) -> int:
    """Insert or update ``objs`` (unsaved instances of one model) in one statement.

    What ``bulk_create(update_conflicts=True, unique_fields=..., update_fields=...)`` does,
    except that it is one statement per call whatever the backend (``bulk_create`` splits
    into batches of 999 // fields rows on SQLite: a page of 600 markets took 6 statements and
    one of 1,000 fixtures 39), which is what keeps ingestion's statements per page constant.
    Values are prepared as ``bulk_create`` prepares them (``pre_save`` for ``auto_now``,
    then ``get_db_prep_save``). Returns the number of rows.
    """
    if not objs:
        return 0
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    params = [tuple(field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields) for obj in objs]
    upsert_rows(model, [f.name for f in fields], unique_fields, update_fields, params)
    return len(objs)


def bulk_set(objs: Sequence[Any], fields: Sequence[str]) -> int:
    """Write ``fields`` of ``objs`` (saved instances of one model, rows the caller holds
    locked: it writes values, not expressions) in one statement.

    ``bulk_update`` builds a CASE per field per row, which was 75% of the time settling 2,000
    bets. Here SQLite runs ``UPDATE ... WHERE pk = %s`` per row (``executemany``), PostgreSQL
    one ``UPDATE ... FROM (VALUES ...)`` join (each value cast to its column's type).
    """
    if not objs:
        return 0
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    meta, quote = model._meta, connection.ops.quote_name
    targets = [meta.get_field(name) for name in fields]
    params = [
        (*(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in targets), obj.pk)
        for obj in objs
    ]
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in targets)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", params)  # noqa: S608
            return len(objs)
        names = [quote(field.column) for field in targets]
        casts = [f"%s::{field.cast_db_type(connection)}" for field in [*targets, meta.pk]]
        row = f"({', '.join(casts)})"
        assignments = ", ".join(f"{name} = v.{name}" for name in names)
        size = max(1, PG_MAX_PARAMETERS // len(casts))
        for start in range(0, len(params), size):
            chunk = params[start : start + size]
            values = ", ".join([row] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v({', '.join(names)}, {pk}) "  # noqa: S608
                f"WHERE {table}.{pk} = v.{pk}",
                [value for item in chunk for value in item],
            )
    return len(objs)

