"""The psycopg pool's check on checkout, paid only by connections that sat idle.

The check Django gives the pool for ``CONN_HEALTH_CHECKS`` (psycopg_pool's
``ConnectionPool.check_connection``) is a round trip to PostgreSQL on every checkout, and
every request and every task run (Celery's Django fixup) checks a connection out: five
extra round trips per exchange, each costing CPU here and in the server. A connection
handed out again within ``DB_POOL_CHECK_AFTER_SECONDS`` of its last checkout was working
a moment ago; what the check exists for - a connection that died while it sat idle (a
server restart, a proxy's idle timeout) - is still caught for every connection idle longer
than that. One that breaks while in use is marked broken by psycopg, and the pool discards
it when it comes back.

Django offers no way to pass the pool another check (it always passes its own), so
``install_idle_check`` swaps it on each pool when the pool makes its first connection.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from django.conf import settings

_last_checkout: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def check_idle_connection(conn: Any) -> None:
    """The pool's ``check`` callback: the real check only for a connection idle a while."""
    from psycopg_pool import ConnectionPool

    now = time.monotonic()
    last = _last_checkout.get(conn)
    if last is None or now - last >= settings.DB_POOL_CHECK_AFTER_SECONDS:
        ConnectionPool.check_connection(conn)  # raises for a dead connection: the pool discards it
    _last_checkout[conn] = now


def install_idle_check(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """``connection_created`` receiver: give the connection's pool ``check_idle_connection``
    in place of the every-checkout check (a pool re-created by Django gets it again)."""
    pool = getattr(connection, "pool", None) if connection is not None and connection.vendor == "postgresql" else None
    if pool is None:
        return
    from psycopg_pool import ConnectionPool

    if getattr(pool, "_check", None) is ConnectionPool.check_connection:
        pool._check = check_idle_connection


def connect_idle_check() -> None:
    """Install ``install_idle_check`` (idempotent); a no-op without the pool."""
    if not settings.DB_POOL:
        return
    from django.db.backends.signals import connection_created

    connection_created.connect(install_idle_check, dispatch_uid="whatsappcrm.dbpool.idle_check")
