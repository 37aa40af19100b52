"""Django settings, read only from the environment (see .env.example for every variable).

Development needs nothing set: SQLite in ./var, an embedded Redis, DEBUG from the
launcher. Production (DEBUG off) refuses to start without the secrets it needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import dj_database_url
from kombu import Exchange, Queue

from whatsappcrm_backend import topology
from whatsappcrm_backend.embedded_redis import ensure_redis_url
from whatsappcrm_backend.env import (
    ConfigurationError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
)
from whatsappcrm_backend.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
SECRET_KEY = env_str("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else "")
if not DEBUG:
    _missing = []
    if not SECRET_KEY or SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50:
        _missing.append("SECRET_KEY (at least 50 random characters)")
    # /metrics publishes business volumes (messages, contacts' sessions, queue depths).
    if len(env_str("METRICS_TOKEN")) < 20:
        _missing.append("METRICS_TOKEN (at least 20 random characters; scrapers send it as a Bearer token)")
    if _missing:
        raise ConfigurationError(
            "Refusing to start with DEBUG off: set "
            + ", ".join(_missing)
            + ". For local development set DEBUG=1 instead."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our static files, not a CDN
    "django_celery_beat",
    "whatsappcrm_backend",
    "meta_integration",
    "conversations",
    "flows",
    "football_data_app",
    "inbox",
    "campaigns",
]
if DEBUG:
    # Development only: the devstack_seed command and the WhatsApp simulator (devtools/).
    INSTALLED_APPS += ["devtools", "devtools.simulator"]

MIDDLEWARE = [
    "whatsappcrm_backend.metrics.WebhookMetricsMiddleware",  # first, to time the whole stack
    # Meta's webhook (marked in its view) skips everything below: it carries no cookies.
    "whatsappcrm_backend.middleware.LeanViewMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "whatsappcrm_backend.urls"
WSGI_APPLICATION = "whatsappcrm_backend.wsgi.application"
ASGI_APPLICATION = "whatsappcrm_backend.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
# PostgreSQL only: one psycopg pool per process. Celery's Django fixup closes the connection
# at every task start and end, and under gevent every greenlet has its own connection
# wrapper: without a pool each task run opened a new PostgreSQL connection (~9 ms each).
# With it, "close" hands the connection back to the pool. Sized per process (README,
# "Database connections"): the sum over all processes must stay below max_connections.
DB_POOL = env_bool("DB_POOL", True) and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DB_POOL_MIN_SIZE = env_int("DB_POOL_MIN_SIZE", 2)
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 10)
DB_POOL_TIMEOUT = env_float("DB_POOL_TIMEOUT", 10.0)
# A pooled connection checked out again within this many seconds is not checked with a
# round trip first (whatsappcrm_backend/dbpool.py); 0 checks every checkout.
DB_POOL_CHECK_AFTER_SECONDS = env_float("DB_POOL_CHECK_AFTER_SECONDS", 2.0)
if DB_POOL_MIN_SIZE < 0 or DB_POOL_MAX_SIZE < 1 or DB_POOL_MIN_SIZE > DB_POOL_MAX_SIZE:
    raise ConfigurationError(
        f"DB_POOL_MIN_SIZE={DB_POOL_MIN_SIZE}, DB_POOL_MAX_SIZE={DB_POOL_MAX_SIZE}: "
        "need 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE and DB_POOL_MAX_SIZE >= 1"
    )
if not DB_POOL_TIMEOUT > 0:
    raise ConfigurationError(f"DB_POOL_TIMEOUT={DB_POOL_TIMEOUT} must be a positive number of seconds")
if not DB_POOL_CHECK_AFTER_SECONDS >= 0:
    raise ConfigurationError(
        f"DB_POOL_CHECK_AFTER_SECONDS={DB_POOL_CHECK_AFTER_SECONDS} must be 0 or a positive number of seconds"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # Web, workers and Beat are separate processes on one file: WAL lets readers run
        # beside the writer, IMMEDIATE takes the write lock up front so two writers queue
        # instead of failing half-way with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests run real worker processes, so the test database must be a file they can open.
    DATABASES["default"]["TEST"] = {"NAME": str(DATABASES["default"]["NAME"]) + ".test"}
elif DB_POOL:
    if DATABASES["default"]["CONN_MAX_AGE"] != 0:
        raise ConfigurationError(
            "DB_CONN_MAX_AGE must be 0 (unset) with DB_POOL on: the pool keeps the connections. "
            "Set DB_POOL=off to use persistent connections instead."
        )
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": DB_POOL_MIN_SIZE,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": DB_POOL_TIMEOUT,  # seconds a request or task waits for a free connection
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# --- Security (production) ------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Meta's webhook and health checks must not be redirected to https by the app when a
    # proxy already terminates TLS; the proxy header above covers that case.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes and scrapes use plain http

# --- Redis and Celery -----------------------------------------------------------------
REDIS_URL = ensure_redis_url()
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
BROKER_FAMILY = topology.broker_family(CELERY_BROKER_URL)

_exchange = Exchange("celery", type="direct")
CELERY_TASK_QUEUES = tuple(
    Queue(
        name,
        _exchange,
        routing_key=name,
        # RabbitMQ only honours priorities on queues declared with a maximum.
        queue_arguments={"x-max-priority": topology.AMQP_MAX_PRIORITY} if BROKER_FAMILY == "amqp" else None,
    )
    for name in topology.QUEUES
)
CELERY_TASK_DEFAULT_QUEUE = topology.IO_QUEUE
CELERY_TASK_DEFAULT_EXCHANGE = "celery"
CELERY_TASK_DEFAULT_ROUTING_KEY = topology.IO_QUEUE
CELERY_TASK_CREATE_MISSING_QUEUES = False  # a typo in a queue name must fail, not create a queue no one reads
CELERY_TASK_ROUTES = ("whatsappcrm_backend.celery.route_task",)
# Anything that reaches the broker without a priority is NORMAL, never the top tier.
CELERY_TASK_DEFAULT_PRIORITY = topology.broker_priority(topology.Priority.NORMAL, CELERY_BROKER_URL)
CELERY_TASK_QUEUE_MAX_PRIORITY = topology.AMQP_MAX_PRIORITY if BROKER_FAMILY == "amqp" else None
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "priority_steps": topology.REDIS_PRIORITY_STEPS,
    "sep": ":",
    "queue_order_strategy": "priority",
    "visibility_timeout": int(topology.VISIBILITY_TIMEOUT.total_seconds()),
    # A broker that accepts connections but never answers must not hang the webhook.
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
} if BROKER_FAMILY == "redis" else {}
# kombu's Redis transport with a prompt wake-up for green pools (see broker.py).
CELERY_BROKER_TRANSPORT = "whatsappcrm_backend.broker:Transport" if BROKER_FAMILY == "redis" else None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_POOL_LIMIT = env_int("CELERY_BROKER_POOL_LIMIT", 10)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task running when the broker connection drops finishes its work instead of being killed:
# every effect is idempotent in the database (the contact lock and processed_at, the send
# lease), so a redelivery the outage may cause is a no-op, while killing it could cut a send
# off between Meta's answer and the row that records it.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_WORKER_SEND_TASK_EVENTS", False)
# A worker asked to stop exits after this many seconds even if its warm shutdown is stuck
# (e.g. the broker is gone): see shutdown.py. Longer than a task may run; compose's
# stop_grace_period for the workers is longer still.
WORKER_SHUTDOWN_GRACE_SECONDS = env_float("WORKER_SHUTDOWN_GRACE_SECONDS", 100.0)
if not WORKER_SHUTDOWN_GRACE_SECONDS > 0:
    raise ConfigurationError(
        f"WORKER_SHUTDOWN_GRACE_SECONDS={WORKER_SHUTDOWN_GRACE_SECONDS} must be a positive number of seconds"
    )
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SYNC_EVERY = 1
# Operators see times in UTC in the periodic-task admin, like the rest of the project.
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- Meta (WhatsApp Cloud API) --------------------------------------------------------
META_GRAPH_API_URL = env_str("META_GRAPH_API_URL", "https://graph.facebook.com")
META_API_VERSION = env_str("META_API_VERSION", "v23.0")
META_PHONE_NUMBER_ID = env_str("META_PHONE_NUMBER_ID")
META_DISPLAY_PHONE_NUMBER = env_str("META_DISPLAY_PHONE_NUMBER")
META_ACCESS_TOKEN = env_str("META_ACCESS_TOKEN")
META_APP_SECRET = env_str("META_APP_SECRET")
META_VERIFY_TOKEN = env_str("META_VERIFY_TOKEN")
META_SEND_RATE_PER_SECOND = env_float("META_SEND_RATE_PER_SECOND", 80.0)
META_HTTP_TIMEOUT = env_float("META_HTTP_TIMEOUT", 10.0)
META_HTTP_MAX_CONNECTIONS = env_int("META_HTTP_MAX_CONNECTIONS", 20)
# How long a process may use a business number's row before reading it again (admin edits
# reach every worker within this bound).
META_CONFIG_CACHE_SECONDS = env_float("META_CONFIG_CACHE_SECONDS", 2.0)
# A send whose run died mid-request stays claimed this long after its attempt could have
# ended, waiting for Meta's status webhook (which names the row through
# biz_opaque_callback_data) to say it was accepted; only then is it sent again.
SEND_STATUS_GRACE_SECONDS = env_float("SEND_STATUS_GRACE_SECONDS", 15.0)
# The outbound sweeper re-enqueues replies still pending this long after they were written.
OUTBOUND_SWEEP_AFTER_SECONDS = env_float("OUTBOUND_SWEEP_AFTER_SECONDS", 10.0)
# The inbound sweeper re-enqueues messages stored but still unprocessed this long after.
INBOUND_SWEEP_AFTER_SECONDS = env_float("INBOUND_SWEEP_AFTER_SECONDS", 15.0)
# An inbound message whose processing raised this many times is marked failed for operators.
INBOUND_MAX_PROCESSING_ATTEMPTS = env_int("INBOUND_MAX_PROCESSING_ATTEMPTS", 5)
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 3 * 1024 * 1024)
WEBHOOK_EVENT_RETENTION_DAYS = env_int("WEBHOOK_EVENT_RETENTION_DAYS", 30)
# Share (0..1) of well-formed webhook POSTs kept whole in the audit log; POSTs with problems,
# Meta errors or changes the project does not act on are always kept. Default 0: the normal
# path writes no audit row (one INSERT of the whole payload per message and per status).
WEBHOOK_EVENT_SAMPLE_RATE = env_float("WEBHOOK_EVENT_SAMPLE_RATE", 0.0)
if not 0.0 <= WEBHOOK_EVENT_SAMPLE_RATE <= 1.0:
    raise ConfigurationError(f"WEBHOOK_EVENT_SAMPLE_RATE={WEBHOOK_EVENT_SAMPLE_RATE} must be between 0 and 1")
MULTIPART_GAP_SECONDS = env_float("MULTIPART_GAP_SECONDS", 2.0)
# Share (0..1) of a number's token-bucket burst that campaign (LOW) sends leave for replies.
SEND_RATE_HIGH_RESERVE = env_float("SEND_RATE_HIGH_RESERVE", 0.5)
if not 0.0 <= SEND_RATE_HIGH_RESERVE < 1.0:
    raise ConfigurationError(f"SEND_RATE_HIGH_RESERVE={SEND_RATE_HIGH_RESERVE} must be in [0, 1)")
# Campaigns: parallel send chains per campaign (each holds one I/O worker slot while it
# sends), recipients one chain run sends before it hands over, and how long a chain's lease
# lasts before the periodic check restarts a chain whose worker died.
CAMPAIGN_SEND_CONCURRENCY = env_int("CAMPAIGN_SEND_CONCURRENCY", 4)
CAMPAIGN_BATCH_SIZE = env_int("CAMPAIGN_BATCH_SIZE", 50)
CAMPAIGN_CHAIN_LEASE_SECONDS = env_float("CAMPAIGN_CHAIN_LEASE_SECONDS", 60.0)
# A send chain waits before each recipient while its worker process is answering a user,
# at most this long (replies first; a stream of replies cannot stop a campaign).
CAMPAIGN_YIELD_MAX_SECONDS = env_float("CAMPAIGN_YIELD_MAX_SECONDS", 0.5)
if CAMPAIGN_SEND_CONCURRENCY < 1 or CAMPAIGN_BATCH_SIZE < 1 or CAMPAIGN_CHAIN_LEASE_SECONDS <= 0:
    raise ConfigurationError("CAMPAIGN_SEND_CONCURRENCY and CAMPAIGN_BATCH_SIZE must be >= 1, "
                             "CAMPAIGN_CHAIN_LEASE_SECONDS > 0")
# Transient send failures back off exponentially (with jitter) from the base, capped at the max.
META_RETRY_BASE_SECONDS = env_float("META_RETRY_BASE_SECONDS", 1.0)
META_RETRY_MAX_SECONDS = env_float("META_RETRY_MAX_SECONDS", 300.0)
# --- Media (issue 13) -------------------------------------------------------------------
# Files users send (downloaded from Meta by conversations.download_media) are stored through
# Django's storage API: by default on disk under the data directory. For an S3-compatible
# bucket install django-storages[s3] and set MEDIA_STORAGE_BACKEND=storages.backends.s3.S3Storage
# and MEDIA_STORAGE_OPTIONS='{"bucket_name": "...", "endpoint_url": "https://...", ...}'
# (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, as boto3 reads them).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-files/"  # never served directly: conversations:media checks the user first
MEDIA_STORAGE_BACKEND = env_str("MEDIA_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")
try:
    MEDIA_STORAGE_OPTIONS = json.loads(env_str("MEDIA_STORAGE_OPTIONS", "") or "{}")
except ValueError as exc:
    raise ConfigurationError(f"MEDIA_STORAGE_OPTIONS must be a JSON object: {exc}") from None
if MEDIA_STORAGE_BACKEND.endswith("FileSystemStorage"):
    MEDIA_STORAGE_OPTIONS.setdefault("location", str(MEDIA_ROOT))
STORAGES = {
    "default": {"BACKEND": MEDIA_STORAGE_BACKEND, "OPTIONS": MEDIA_STORAGE_OPTIONS},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The largest media file accepted, over Meta's own per-type limits (image 5 MB, sticker
# 500 KB, audio and video 16 MB, document 100 MB): the smaller of the two applies.
MEDIA_MAX_BYTES = env_int("MEDIA_MAX_BYTES", 100 * 1024 * 1024)
# A media URL expires within minutes: how many fresh URLs to ask the media id for.
MEDIA_URL_RETRIES = env_int("MEDIA_URL_RETRIES", 2)
# Development simulator: where the fake Graph API's record is (default: the business number's URL).
SIMULATOR_FAKE_GRAPH_URL = env_str("SIMULATOR_FAKE_GRAPH_URL", "")

# --- Flows ----------------------------------------------------------------------------
FLOW_SESSION_TIMEOUT = env_int("FLOW_SESSION_TIMEOUT", 300)
FLOW_SESSION_EXPIRED_TEXT = env_str(
    "FLOW_SESSION_EXPIRED_TEXT",
    "⏱️ Our conversation timed out after a few quiet minutes, so I've closed it. "
    "Send *menu* whenever you'd like to pick up again.",
)
FLOW_CHANGED_TEXT = env_str(
    "FLOW_CHANGED_TEXT",
    "We've just updated this conversation on our side, so we need to start that again 🙏 Send *menu* to continue.",
)
FLOW_REPLY_GAP_SECONDS = env_float("FLOW_REPLY_GAP_SECONDS", 0.0)
FLOW_MAIN_MENU = env_str("FLOW_MAIN_MENU", "main_menu")
# Keep each turn's steps, transitions and events briefly in Redis for the simulator's bot log
# (flows/services/trace.py): one extra Redis round trip per turn, so off in production.
FLOW_TRACE = env_bool("FLOW_TRACE", DEBUG)

# --- Marketing consent ----------------------------------------------------------------
# A message that is exactly one of these words (any case, surrounding spaces and punctuation
# allowed) opts the contact out of / back into campaigns; it is answered once and never
# reaches the flows. Conversations with the bot are unaffected either way.
MARKETING_OPT_OUT_WORDS = env_list("MARKETING_OPT_OUT_WORDS", "STOP,UNSUBSCRIBE")
MARKETING_OPT_IN_WORDS = env_list("MARKETING_OPT_IN_WORDS", "START")
MARKETING_OPT_OUT_CONFIRMATION = env_str(
    "MARKETING_OPT_OUT_CONFIRMATION",
    "You won't receive promotional messages from us any more. "
    + (f"Reply {MARKETING_OPT_IN_WORDS[0]} to get them again. " if MARKETING_OPT_IN_WORDS else "")
    + "You can still chat with us here any time.",
)
MARKETING_OPT_IN_CONFIRMATION = env_str(
    "MARKETING_OPT_IN_CONFIRMATION",
    "You're subscribed to our promotional messages again. "
    + (f"Reply {MARKETING_OPT_OUT_WORDS[0]} to stop them." if MARKETING_OPT_OUT_WORDS else ""),
)

# --- API-Football ---------------------------------------------------------------------
API_FOOTBALL_URL = env_str("API_FOOTBALL_URL", "https://v3.football.api-sports.io")
API_FOOTBALL_KEY = env_str("API_FOOTBALL_KEY")
API_FOOTBALL_REQUESTS_PER_MINUTE = env_int("API_FOOTBALL_REQUESTS_PER_MINUTE", 10)
API_FOOTBALL_MAX_WAIT_SECONDS = env_float("API_FOOTBALL_MAX_WAIT_SECONDS", 5.0)
API_FOOTBALL_BOOKMAKER_ID = env_int("API_FOOTBALL_BOOKMAKER_ID", 0) or None
FOOTBALL_CURRENCY = env_str("FOOTBALL_CURRENCY", "USD")
FOOTBALL_MIN_STAKE = env_str("FOOTBALL_MIN_STAKE", "1.00")
FOOTBALL_MAX_STAKE = env_str("FOOTBALL_MAX_STAKE", "1000.00")
FOOTBALL_MAX_LEGS = env_int("FOOTBALL_MAX_LEGS", 10)

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so an unauthenticated request gets 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "whatsappcrm_backend.api_errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp CRM operators API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ and /api/redoc/ load their JavaScript and CSS from this project's static
    # files (drf-spectacular-sidecar): a CDN made the page blank without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},  # no badge from validator.swagger.io
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# When set, /metrics needs "Authorization: Bearer <token>".
METRICS_TOKEN = env_str("METRICS_TOKEN")

# One line per event with its ids (message_id, wamid, contact, task_id) appended as key=value.
LOGGING = logging_config(env_str("LOG_LEVEL", "INFO"))
