"""Settings: one module, driven by environment variables (README.md, "Configuration").

With no environment at all this runs the embedded default: SQLite under DATA_DIR, the `orm`
document store, a filesystem broker for Celery, and a dev-only secret key. Production
(DJANGO_DEBUG=0) refuses to start without a real DJANGO_SECRET_KEY.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# --- Core -------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production-0123456789"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or ("" if not DEBUG else _DEV_SECRET)
if not DEBUG and (not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random value of 50+ characters when DJANGO_DEBUG=0"
    )
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get(
        "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver"
    ).split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Serves Swagger UI for /api/v1/docs from its own static files instead of a CDN.
    "ninja",
    "sessions_api",
    "dashboard",
    "workers",
]

MIDDLEWARE = [
    # First: the correlation id (X-Request-ID) covers every response and log line.
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Dashboard: a Content-Security-Policy header on every response.
    "dashboard.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database (the session index, auth, audit, job runs) --------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'observatory.sqlite3'}"
# Persistent connections: SQLite ingest measured 3-6x faster with them.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with writers queued for the write lock instead of polling for it.
    DATABASES["default"]["ENGINE"] = "config.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue (up to `timeout`)
        # instead of failing with "database is locked" on lock upgrade. The queue: config/sqlite.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        # FULL: a commit is on disk before ingest answers 2xx, so an OS crash or power cut
        # cannot lose an acknowledged document (NORMAL could). Its cost: docs/BENCHMARKS.md.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    # Tests: in memory, as Django does for SQLite when no name is given. Said explicitly because
    # pytest-django recognises SQLite by Django's engine name, and would otherwise give each
    # xdist worker a file named after the deployed database's path.
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME") or ":memory:"}
else:
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Document bodies --------------------------------------------------------------------------

SESSION_STORE = os.environ.get("SESSION_STORE", "orm")
MONGODB_URL = os.environ.get("MONGODB_URL", "")
MONGODB_DB = os.environ.get("MONGODB_DB", "session_observatory")
_STORE_BACKENDS = {
    "orm": {"BACKEND": "sessions_api.storage.orm.OrmDocumentStore", "OPTIONS": {}},
    "mongo": {
        "BACKEND": "sessions_api.storage.mongo.MongoDocumentStore",
        "OPTIONS": {
            "url": MONGODB_URL,
            "database": MONGODB_DB,
            # An unreachable MongoDB is a 503 with Retry-After within 2 s.
            "server_selection_timeout_ms": env_int("MONGODB_TIMEOUT_MS", 1000),
            "socket_timeout_ms": env_int("MONGODB_SOCKET_TIMEOUT_MS", 10_000),
        },
    },
}
if SESSION_STORE not in _STORE_BACKENDS:
    raise ImproperlyConfigured(f"SESSION_STORE must be one of {sorted(_STORE_BACKENDS)}")
if SESSION_STORE == "mongo" and not MONGODB_URL:
    raise ImproperlyConfigured("SESSION_STORE=mongo needs MONGODB_URL")
DOCUMENT_STORE = _STORE_BACKENDS[SESSION_STORE]

# --- Ingestion limits ------------------------------------------------------------------------

INGEST_MAX_DOCUMENT_BYTES = env_int("INGEST_MAX_DOCUMENT_BYTES", 10 * 1024 * 1024)
INGEST_MAX_BATCH_BYTES = env_int("INGEST_MAX_BATCH_BYTES", 50 * 1024 * 1024)
INGEST_MAX_BATCH_ITEMS = env_int("INGEST_MAX_BATCH_ITEMS", 500)
INGEST_MAX_DEPTH = env_int("INGEST_MAX_DEPTH", 64)
INGEST_MAX_NODES = env_int("INGEST_MAX_NODES", 1_000_000)
INGEST_MAX_MESSAGES = env_int("INGEST_MAX_MESSAGES", 20_000)
INGEST_MAX_TOOL_CALLS = env_int("INGEST_MAX_TOOL_CALLS", 20_000)
# Django's own cap must let a full batch through; our limits answer before it does.
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BATCH_BYTES + 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

# --- Redis, cache, Celery ---------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache that treats an outage as a miss (config/cache.py): the cache
            # is never a reason for a 500 or a slow request.
            "BACKEND": "config.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "observatory",
            "TIMEOUT": 3600,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1, "retry_after": 5},
        }
    }
    CACHES["throttle"] = {**CACHES["default"], "KEY_PREFIX": "observatory-throttle"}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "TIMEOUT": 3600,
            "OPTIONS": {"MAX_ENTRIES": 2000},
        },
        # Failure counters (sessions_api/access/throttle.py) must be shared by every web
        # worker, which a per-process memory cache is not: files under DATA_DIR are.
        "throttle": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "throttle"),
            "TIMEOUT": 3600,
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        },
    }
    # Embedded broker: kombu's filesystem transport under DATA_DIR, results as files. Web,
    # worker and beat share it across processes; nothing to install.
    BROKER_DIR = DATA_DIR / "broker"
    for sub in ("queue", "processed", "results", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # Broadcast/control messages; kombu's default is a folder in the current directory.
        "control_folder": str(BROKER_DIR / "control"),
    }
    CELERY_RESULT_BACKEND = f"file://{BROKER_DIR / 'results'}"

# --- Auth and pages ---------------------------------------------------------------------------

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Sign-in throttling (sessions_api/access/login.py): after LOGIN_FAILURE_LIMIT wrong passwords
# for one account, or LOGIN_ADDRESS_FAILURE_LIMIT from one address, sign-in is locked for the
# rest of a LOGIN_LOCKOUT_SECONDS window, whatever the password.
AUTHENTICATION_BACKENDS = ["sessions_api.access.login.ThrottledModelBackend"]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 30)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)
# Proxies of your own in front of the app: the throttles then count the address the outermost
# one saw (from X-Forwarded-For) instead of the proxy's own.
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0)
# Failed API authentications (unknown, malformed or revoked keys) per address and minute; over
# it, 429 with Retry-After until the minute ends.
API_AUTH_FAILURE_LIMIT = env_int("API_AUTH_FAILURE_LIMIT", 30)
# Refused attempts written to the audit log per actor and minute; the rest are counted and
# written as one aggregate entry (sessions_api/editing/audit.py).
AUDIT_REFUSALS_PER_MINUTE = env_int("AUDIT_REFUSALS_PER_MINUTE", 5)
# Mail (password reset): the reset pages exist only when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "1") == "1"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "observatory@localhost")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Dashboard: plotly.js is served from the copy inside the installed `plotly` package (never a
# CDN, never a vendored copy): /static/vendor/plotly/plotly.min.js. find_spec locates it
# without importing plotly here.
_PLOTLY_SPEC = importlib.util.find_spec("plotly")
if _PLOTLY_SPEC and _PLOTLY_SPEC.origin:
    STATICFILES_DIRS.append(
        ("vendor/plotly", str(Path(_PLOTLY_SPEC.origin).parent / "package_data"))
    )
# In development WhiteNoise serves straight from the finders; no collectstatic needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security ---------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Requests per API key per window (0: off). Generous by default (above the single-ingest
# benchmark's 800 docs/s target); lower it per deployment. See sessions_api/api/ratelimit.py.
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 60_000)
# Seconds a verified API key is remembered in the cache (0: look it up on every request).
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5)
API_RATE_WINDOW_SECONDS = env_int("API_RATE_WINDOW_SECONDS", 60)
if not DEBUG:
    # Off only where the site is served over plain HTTP on purpose (bin/run on loopback).
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Load balancers and orchestrators probe these over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    CSRF_TRUSTED_ORIGINS = [
        origin.strip()
        for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",")
        if origin.strip()
    ]

# --- Alerts (sessions_api/lifecycle/alerts) -----------------------------------------------------

# The address users reach the dashboard at: links in notifications are built from it.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://localhost:8000")
# Where webhooks may point: host names or .suffixes, comma separated; empty allows any host.
ALERT_WEBHOOK_ALLOWED_HOSTS = os.environ.get("ALERT_WEBHOOK_ALLOWED_HOSTS", "")
ALERT_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("ALERT_WEBHOOK_TIMEOUT_SECONDS", "10"))
ALERT_MAX_ATTEMPTS = int(os.environ.get("ALERT_MAX_ATTEMPTS", "8"))
ALERT_RETRY_BASE_SECONDS = float(os.environ.get("ALERT_RETRY_BASE_SECONDS", "10"))
ALERT_RETRY_MAX_SECONDS = float(os.environ.get("ALERT_RETRY_MAX_SECONDS", "600"))
# A delivery claimed longer ago than this lost its worker and is taken over.
ALERT_CLAIM_TIMEOUT_SECONDS = float(os.environ.get("ALERT_CLAIM_TIMEOUT_SECONDS", "120"))
# Email through Django's backend: SMTP when EMAIL_HOST is set, else written to the log.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "observatory@localhost")

# --- Logging ----------------------------------------------------------------------------------

# JSON lines with the request's correlation id (config/logging.py) in production; plain text
# in development. ACCESS_LOG: one line per request from config.middleware.
LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("plain" if DEBUG else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain")
ACCESS_LOG = env_bool("ACCESS_LOG", not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "config.logging.RequestContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
