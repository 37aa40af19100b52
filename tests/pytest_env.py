"""Loaded with ``-p`` before Django: the environment the test suite runs in.

Tests run in development mode with the same settings module as production; only
the environment differs. REDIS_URL and DATABASE_URL are honoured when given (CI
passes PostgreSQL and the machine's Redis); otherwise settings start an embedded
redis-server and use SQLite under ./var.

Under pytest-xdist (``-n``, on by default in pytest.ini) every xdist worker gets its own
test database (pytest-django suffixes the name with the worker id) and its own pair of
Redis databases on the same server: worker ``gwN`` uses database ``BASE + 2N`` for
everything the project keeps in Redis (broker, metrics, locks) and ``BASE + 2N + 1`` as
the broker nothing consumes (``tests.support.inbound.isolated_broker``). ``BASE`` is
``TEST_REDIS_DB_BASE`` when set, otherwise the database number in REDIS_URL (0 by default);
set it to run two suites side by side on one Redis (e.g. ``TEST_REDIS_DB_BASE=6``). The
embedded redis-server, when REDIS_URL is unset, is started once by the xdist controller
(settings are loaded there first) and inherited by every worker through REDIS_URL.
"""

import os
import re

import pytest

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

REDIS_DATABASES = 16  # redis-server's default `databases`


def _with_db(url: str, db: int) -> str:
    """``url`` with its database number replaced (kept as is for non-Redis URLs)."""
    if not url.startswith(("redis://", "rediss://")):
        return url
    head, sep, query = url.partition("?")
    scheme_host = re.match(r"^(rediss?://[^/]*)", head).group(1)
    return f"{scheme_host}/{db}{sep}{query}"


def _db_of(url: str) -> int:
    match = re.match(r"^rediss?://[^/]*/(\d+)", url)
    return int(match.group(1)) if match else 0


def _assign_redis_databases() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    index = int(worker[2:])
    url = os.environ.get("REDIS_URL", "").strip()
    base = int(os.environ.get("TEST_REDIS_DB_BASE") or (_db_of(url) if url else 0))
    main, isolated = base + 2 * index, base + 2 * index + 1
    if isolated >= REDIS_DATABASES:
        raise RuntimeError(
            f"xdist worker {worker} would need Redis database {isolated} (base {base}); "
            f"lower TEST_REDIS_DB_BASE or -n"
        )
    os.environ["TEST_REDIS_ISOLATED_DB"] = str(isolated)
    if url:
        os.environ["REDIS_URL"] = _with_db(url, main)
    broker = os.environ.get("CELERY_BROKER_URL", "").strip()
    if broker:
        os.environ["CELERY_BROKER_URL"] = _with_db(broker, main)


_assign_redis_databases()


# Under xdist, modules are handed out in collection order (scripts/test passes
# --no-loadscope-reorder): the modules that wait longest start first, so the end of the run is
# not one worker finishing a 100-second module alone while the others are idle. Measured on
# the 2-core machine (seconds in one process); only the order changes, never what runs.
SLOW_MODULES_FIRST = (
    "test_bench_quick.py",  # ~100 s: the benchmarks' quick run
    "test_chaos.py",  # these four are one work unit (RUN_TOGETHER below)
    "test_campaign_crash.py",
    "test_campaign_redis_restart.py",
    "test_worker_shutdown.py",
    "test_campaign_send.py",
    "test_outbound_crash.py",
    "test_devstack.py",
    "test_worker_topology.py",
    "test_api_schemathesis.py",
    "test_football_settling.py",
    "test_outbound_multipart.py",
    "test_outbound_ratelimit.py",
    "test_health.py",
    "test_metrics.py",
    "test_inbox_browser.py",
    "test_simulator_browser.py",
)


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering, which it keeps within a module
def pytest_collection_modifyitems(config, items) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {name: index for index, name in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within kept


# Modules that kill workers, restart Redis or stop workers on purpose, and then wait for the
# system to recover within a bound: one xdist worker runs them one after another (one work
# unit), so they never compete with each other for the two cores (when the suite ran loaded,
# the chaos and Redis-restart tests missed their recovery bounds while overlapping).
RUN_TOGETHER = ("test_chaos.py", "test_campaign_crash.py", "test_campaign_redis_restart.py", "test_worker_shutdown.py")


@pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown when run with -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class RecoveryTestsTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "recovery tests" if scope.rsplit("/", 1)[-1] in RUN_TOGETHER else scope

    return RecoveryTestsTogether(config, log)
