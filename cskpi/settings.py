"""Settings: one env reader; production differs from development only by environment variables."""

import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Debug pages (settings, source, locals, every URL) only in the embedded development server:
# never in a process gunicorn serves, whatever DJANGO_DEBUG says.
SERVED_BY_GUNICORN = "gunicorn.arbiter" in sys.modules
DEBUG = env.bool("DJANGO_DEBUG", default=False) and not SERVED_BY_GUNICORN
SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-cskpi-development-only-set-DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "cskpi",
    "ingestion",
    "metrics",
]

MIDDLEWARE = [
    # First: a CORS preflight (OPTIONS) is answered here, before authentication asks for a token.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "cskpi.middleware.NoStoreMiddleware",
]

ROOT_URLCONF = "cskpi.urls"
WSGI_APPLICATION = "cskpi.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Before the apps' templates: overrides of drf-spectacular's pages (no internet loads).
        "DIRS": [BASE_DIR / "cskpi" / "templates"],
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

# --- database -------------------------------------------------------------------------------
# The embedded default is a SQLite file; DATABASE_URL=postgres://... switches to PostgreSQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=30_000)
DATABASE_CLIENT_CHECK_MS = env.int("DATABASE_CLIENT_CHECK_MS", default=1000)
# PostgreSQL's 4 MB default spills a grouped read of a few hundred thousand cube rows (a day series by
# agent × channel) to disk; the caps bound what one query sorts, so a few of these per worker fit.
DATABASE_WORK_MEM_MB = env.int("DATABASE_WORK_MEM_MB", default=16)
# The statements run on every request are prepared once per connection (cskpi.db.hot_rows); false
# behind a pooler in transaction mode (PgBouncer), where a connection's prepared statements are not
# the next transaction's.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE makes every write transaction take the write lock up front, so two concurrent
    # upserts queue instead of failing on lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # client_connection_check_interval: a backend busy on a statement (or waiting on a lock) polls
    # its client socket this often and ends when the client is gone, so a killed worker's claims
    # are free within a second or two (metrics.services._claim_expired), not at the lease's end.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
        f" -c client_connection_check_interval={DATABASE_CLIENT_CHECK_MS}"
        f" -c work_mem={DATABASE_WORK_MEM_MB}MB"
    )
    # psycopg prepares a statement on its own after this many runs (None: never, even when asked);
    # unreachable, so that only the statements asked for (cskpi.db.hot_rows) are prepared.
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2**31 if DATABASE_PREPARED_STATEMENTS else None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: broker, cache -------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- celery: at-least-once; without REDIS_URL every task runs in-process ---------------------
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = env.bool("CELERY_TASK_EAGER_PROPAGATES", default=False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Prefork, replacing a pool process that died at once rather than up to 5 s later (cskpi.worker_pool).
CELERY_WORKER_POOL = "cskpi.worker_pool:TaskPool"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_timeout": 2, "socket_connect_timeout": 2}
# Publishing happens inside a request: fail fast when the broker is down (the change is already
# recorded in the database and the periodic sweep picks it up).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TIMEZONE = "UTC"

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["cskpi.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["cskpi.renderers.FiniteJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "cskpi.renderers.ContentNegotiation",
    "DEFAULT_PARSER_CLASSES": ["cskpi.parsers.FastJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "cskpi.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
CSKPI_PUBLIC_DOCS = env.bool("CSKPI_PUBLIC_DOCS", default=True)
CSKPI_DEFAULT_TIMEZONE = env("CSKPI_DEFAULT_TIMEZONE", default="Asia/Ho_Chi_Minh")
CSKPI_MAX_BATCH = env.int("CSKPI_MAX_BATCH", default=1000)
CSKPI_MAX_PAGE_SIZE = env.int("CSKPI_MAX_PAGE_SIZE", default=1000)
# Most entries listed in an error's `errors` (the rest are counted in `errors_not_listed`).
CSKPI_MAX_ERRORS = env.int("CSKPI_MAX_ERRORS", default=100)
# Young-generation threshold of Python's cyclic collector in gunicorn workers and Celery workers
# (cskpi.runtime.gc_tune; 0 keeps Python's 700: 50,000 halved the ingest of unchanged batches).
CSKPI_GC_THRESHOLD = env.int("CSKPI_GC_THRESHOLD", default=0)
# Most cells (KPIs x groups x periods) one /metrics answer may hold.
CSKPI_MAX_RESULT_CELLS = env.int("CSKPI_MAX_RESULT_CELLS", default=40_000)
# Most local-day aggregate rows (days x groups) a /metrics query grouped by agent or channel may read.
CSKPI_MAX_READ_ROWS = env.int("CSKPI_MAX_READ_ROWS", default=100_000)
# KPI engine: recompute batches and leases, attempts before a bucket is parked as failed.
CSKPI_RECOMPUTE_BATCH = env.int("CSKPI_RECOMPUTE_BATCH", default=2000)
CSKPI_RECOMPUTE_LEASE_SECONDS = env.int("CSKPI_RECOMPUTE_LEASE_SECONDS", default=60)
CSKPI_RECOMPUTE_TIME_BUDGET = env.float("CSKPI_RECOMPUTE_TIME_BUDGET", default=20.0)
CSKPI_RECOMPUTE_MAX_ATTEMPTS = env.int("CSKPI_RECOMPUTE_MAX_ATTEMPTS", default=5)
# Agent presence: a status lasts at most this long without a newer event of the agent; after it the
# agent counts as offline (in the KPIs and in /agents/now).
CSKPI_PRESENCE_TIMEOUT_SECONDS = env.int("CSKPI_PRESENCE_TIMEOUT_SECONDS", default=8 * 3600)
# How often the sweep re-marks the current quarter of departments with an open agent state.
CSKPI_OPEN_STATES_SECONDS = env.int("CSKPI_OPEN_STATES_SECONDS", default=5)
# Business hours and SLA: the beat interval of the sweep that turns pending records whose deadline
# passed into breaches (and picks up calendar/policy changes left waiting), and the lease of a
# worker measuring a department's records again after such a change (renewed per chunk).
CSKPI_SLA_SWEEP_SECONDS = env.float("CSKPI_SLA_SWEEP_SECONDS", default=30.0)
CSKPI_REMEASURE_LEASE_SECONDS = env.int("CSKPI_REMEASURE_LEASE_SECONDS", default=120)
# Alerts: beat evaluation interval; webhooks: timeout, retries with exponential backoff, lease of
# one attempt, and hosts exempt from the SSRF address check (they may also use plain http).
CSKPI_ALERT_EVAL_SECONDS = env.float("CSKPI_ALERT_EVAL_SECONDS", default=60.0)
CSKPI_WEBHOOK_TIMEOUT_SECONDS = env.float("CSKPI_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
CSKPI_WEBHOOK_RETRY_BASE_SECONDS = env.float("CSKPI_WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
CSKPI_WEBHOOK_RETRY_MAX_DELAY_SECONDS = env.float("CSKPI_WEBHOOK_RETRY_MAX_DELAY_SECONDS", default=3600.0)
CSKPI_WEBHOOK_RETRY_FOR_SECONDS = env.float("CSKPI_WEBHOOK_RETRY_FOR_SECONDS", default=24 * 3600.0)
CSKPI_WEBHOOK_LEASE_SECONDS = env.float("CSKPI_WEBHOOK_LEASE_SECONDS", default=30.0)
CSKPI_WEBHOOK_ALLOWED_HOSTS = env.list("CSKPI_WEBHOOK_ALLOWED_HOSTS", default=[])
# KPI queries: the longest range per granularity, in days (longer is a 400).
CSKPI_MAX_RANGE_DAYS = {
    "hour": env.int("CSKPI_MAX_RANGE_DAYS_HOUR", default=31),
    "day": env.int("CSKPI_MAX_RANGE_DAYS_DAY", default=731),
    "week": env.int("CSKPI_MAX_RANGE_DAYS_WEEK", default=5 * 366),
    "month": env.int("CSKPI_MAX_RANGE_DAYS_MONTH", default=10 * 366),
    "total": env.int("CSKPI_MAX_RANGE_DAYS_TOTAL", default=10 * 366),
}
# CORS: browser apps on these origins (scheme://host[:port]) may call the API with a token; none by
# default. Preflights are answered without a token; Authorization is an allowed header.
CORS_ALLOWED_ORIGINS = env.list("CSKPI_CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "OPTIONS")
CORS_EXPOSE_HEADERS = ("Content-Language", "Retry-After")
CORS_PREFLIGHT_MAX_AGE = 600
# Request bodies above this are refused with 413 before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("CSKPI_MAX_BODY_BYTES", default=8 * 1024 * 1024)

SPECTACULAR_SETTINGS = {
    "TITLE": "cskpi API",
    "DESCRIPTION": (
        "Customer-service and cashout KPIs. Platforms POST interactions, surveys and cashouts; "
        "dashboards read KPI series per department, agent and channel. Every request but the "
        "health check needs `Authorization: Bearer <token>`. Every 4xx/5xx body has the shape "
        "`{code, detail, errors[]}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": (
        ["rest_framework.permissions.AllowAny"]
        if CSKPI_PUBLIC_DOCS
        else ["rest_framework.permissions.IsAuthenticated"]
    ),
    # One enum component per choice set, named for what it is (shared by inputs, outputs and filters).
    "ENUM_NAME_OVERRIDES": {
        "InteractionStatusEnum": "ingestion.choices.InteractionStatus",
        "CashoutStatusEnum": "ingestion.choices.CashoutStatus",
        "SurveyKindEnum": "ingestion.choices.SurveyKind",
        "AgentEventStatusEnum": "ingestion.choices.AgentStatus",
        "SystemCheckOutcomeEnum": "ingestion.choices.CheckOutcome",
        "SlaStateEnum": "ingestion.choices.SlaState",
        "SlaClockEnum": "cskpi.choices.SlaClockKind",
        "CurrencyEnum": "cskpi.currencies.ISO_4217_CHOICES",
        "CallerRoleEnum": "cskpi.serializers.CALLER_ROLES",
        "AlertStateEnum": "metrics.alerting.choices.AlertState",
        "WebhookDeliveryStatusEnum": "metrics.alerting.choices.DeliveryStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ingestion.schema.record_components",
        "metrics.schema.metrics_parameters",
        "cskpi.params.list_parameters_schema",
        "metrics.alerting.schema.closed_alert_rule_inputs",
        "cskpi.schema.closed_service_level_inputs",
    ],
}

# --- the rest -------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("vi", "Tiếng Việt")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# X-Forwarded-Proto is believed only behind a proxy named here (addresses or CIDRs, or "*"):
# gunicorn takes it only from those addresses (cskpi/gunicorn_conf.py), Django only when it is set.
CSKPI_TRUSTED_PROXY = env("CSKPI_TRUSTED_PROXY", default="").strip()
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if CSKPI_TRUSTED_PROXY else None
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
