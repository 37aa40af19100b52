"""Loaded with ``-p`` before Django: the environment the test suite runs in.

Tests run in development mode with the same settings module as production; only
the environment differs. REDIS_URL and DATABASE_URL are honoured when given (CI
passes PostgreSQL and the machine's Redis); otherwise settings start an embedded
redis-server and use SQLite under ./var.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
