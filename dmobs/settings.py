"""Django settings for dmobs, read from the environment.

Defaults suit ``make run`` on a fresh machine (SQLite in the project, DEBUG on
via the Makefile). Production refuses to start without ``SECRET_KEY`` and turns
on the HTTPS settings that ``manage.py check --deploy`` asks for.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dmobs.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
DMOBS_ENV = env_str("DMOBS_ENV", "development" if DEBUG else "production")

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (DEBUG=true uses a "
            "development key; production never does)."
        )
    SECRET_KEY = "django-insecure-dev-only-key-do-not-use-in-production-8f3a2c"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "dmobs",
    "auditui",
]

MIDDLEWARE = [
    # Observability: RequestContextMiddleware is the outermost layer (also
    # outside the tracing middleware that configure_tracing() adds): it resets
    # the log context before anything logs, counts every response and
    # exception whatever layer made it, and writes the access line.
    "dmobs.observability.middleware.RequestContextMiddleware",
    # Counts the requests in flight, so an export gives way to them (dmobs.foreground).
    "dmobs.foreground.ForegroundMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "auditui.middleware.AppHostsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "auditui.middleware.ViewerTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dmobs.urls"
WSGI_APPLICATION = "dmobs.wsgi.application"
ASGI_APPLICATION = "dmobs.asgi.application"

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
    # The hot fragments (the list's rows, the filter options): Django's own Jinja2
    # backend, autoescaped like the Django templates. A page of 50 rows in the
    # Django template language cost more than the rest of the request.
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"autoescape": True, "auto_reload": DEBUG},
    },
]

# --- Databases -------------------------------------------------------------
# DATABASE_URL picks the default database; AUDIT_DATABASE_URL (default: the
# same) picks where audit_logs lives. When the two differ, an "audit" alias
# exists and dmobs.routers.AuditRouter sends AuditLog there; when they are the
# same there is one connection, so audit entries share the request's
# transaction handling and tests roll them back like any other row.
DEFAULT_DATABASE_URL = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASE_URL = env_str("DATABASE_URL", DEFAULT_DATABASE_URL)
AUDIT_DATABASE_URL = env_str("AUDIT_DATABASE_URL", DATABASE_URL)
CONN_MAX_AGE = env_int("CONN_MAX_AGE", 60)


MONGODB_SCHEMES = ("mongodb://", "mongodb+srv://")


def _mongodb_database(url: str) -> dict:
    """DATABASES entry for django-mongodb-backend from a MongoDB connection string.

    The string goes into HOST as it is (django-mongodb-backend's documented way;
    its parse_uri() helper is deprecated), so every option in it (replicaSet,
    authSource, tls, ...) reaches PyMongo unchanged. The database name comes
    from the path: ``mongodb://host:27017/platform?replicaSet=rs0``.
    """
    # Only the path is read here: pymongo's parser would resolve mongodb+srv
    # DNS records while the settings load.
    name = unquote(urlsplit(url).path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured(
            "A MongoDB URL must name its database, like mongodb://host:27017/platform"
        )
    # MongoClient is itself a connection pool; CONN_MAX_AGE does not apply.
    # DATETIME_AUTO: a BSON date outside Python's years 1-9999 (another writer
    # can store one) is read as a DatetimeMS instead of failing the whole read;
    # the screens then show that entry as one without a date (auditui.stored).
    return {
        "ENGINE": "django_mongodb_backend",
        "HOST": url,
        "NAME": name,
        "OPTIONS": {"datetime_conversion": "DATETIME_AUTO"},
    }


def _database(url: str) -> dict:
    if url.startswith(MONGODB_SCHEMES):
        return _mongodb_database(url)
    try:
        config = dj_database_url.parse(url, conn_max_age=CONN_MAX_AGE, conn_health_checks=True)
    except Exception as exc:  # dj_database_url raises bare ValueErrors/KeyErrors
        raise ImproperlyConfigured(f"Cannot parse database URL {url!r}: {exc}") from exc
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # A web request and the audit writer thread both write: wait for locks.
        config.setdefault("OPTIONS", {})["timeout"] = 20
        config["CONN_MAX_AGE"] = 0
    return config


DATABASES = {"default": _database(DATABASE_URL)}
if AUDIT_DATABASE_URL != DATABASE_URL:
    DATABASES["audit"] = _database(AUDIT_DATABASE_URL)
    AUDIT_DB_ALIAS = "audit"
else:
    AUDIT_DB_ALIAS = "default"
# The platform's llm_calls: read from its own database when LLM_CALLS_DATABASE_URL
# is set (the "platform" alias, never migrated or written), else a local table.
LLM_CALLS_DATABASE_URL = env_str("LLM_CALLS_DATABASE_URL")
if LLM_CALLS_DATABASE_URL:
    DATABASES["platform"] = _database(LLM_CALLS_DATABASE_URL)
LLM_CALLS_DB_ALIAS = "platform" if LLM_CALLS_DATABASE_URL else "default"
DATABASE_ROUTERS = ["dmobs.collectors.routers.PlatformRouter", "dmobs.routers.AuditRouter"]
# On MongoDB, let the free-text filter q use the text index ($text) before the
# substring test (see AuditLogQuerySet.search and the README).
DMOBS_MONGODB_TEXT_SEARCH = env_bool("DMOBS_MONGODB_TEXT_SEARCH", False)
AUDIT_ON_MONGODB = DATABASES[AUDIT_DB_ALIAS]["ENGINE"] == "django_mongodb_backend"
SILENCED_SYSTEM_CHECKS = []
if AUDIT_ON_MONGODB:
    SILENCED_SYSTEM_CHECKS += [
        # AuditLog's expression indexes are created on MongoDB by migration
        # dmobs.0003 (django-mongodb-backend skips them).
        "models.W043",
        # MongoDB has no CHECK constraints; audit_log() validates actor_type.
        "models.W027",
    ]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "dmobs.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Time ----------------------------------------------------------------
# Everything is stored in UTC; screens convert to the viewer's time zone
# (User.time_zone), falling back to TIME_ZONE.
USE_TZ = True
TIME_ZONE = env_str("TIME_ZONE", "UTC")
LANGUAGE_CODE = "en-us"
USE_I18N = True

# --- Static files ----------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# htmx comes from npm (package.json + package-lock.json), never from a CDN.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security ------------------------------------------------------------
# DMOBS_HTTPS (default: on outside DEBUG) turns on everything check --deploy wants.
HTTPS = env_bool("DMOBS_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Django's database sessions, read without the ORM (dmobs/sessions.py says why).
SESSION_ENGINE = "dmobs.sessions"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (no unsafe-inline/eval): dmobs/security.py says why a
# small middleware of ours rather than a package until Django 6.0's SECURE_CSP.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "dmobs.security.ContentSecurityPolicyMiddleware",
)
# Cache-Control: private, no-store on every response to a signed-in user.
MIDDLEWARE.insert(
    MIDDLEWARE.index("dmobs.security.ContentSecurityPolicyMiddleware") + 1,
    "dmobs.security.PrivateCacheMiddleware",
)
# Error reports (the DEBUG page, mails) hide the passwords in DATABASE_URL and
# every other URL, not only settings named like PASSWORD or SECRET.
DEFAULT_EXCEPTION_REPORTER_FILTER = "dmobs.security.SecretSettingsFilter"
# Reverse proxies in front of the app that append to X-Forwarded-For (0: none).
DMOBS_TRUSTED_PROXIES = env_int("DMOBS_TRUSTED_PROXIES", 0)

# --- Sign-in protection (django-axes) -----------------------------------------
# Five failures lock sign-in for 15 minutes, counted per username and, apart
# from that, per client address: guessing one person's password from many
# addresses and trying many usernames from one address are both stopped.
# Attempts during a lockout are refused (and audited) without extending it,
# so an attacker cannot keep a person locked out for longer than the cool-off
# by going on. Every failure and lockout is an audit entry (dmobs/signals.py).
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last: turns a lockout into the page
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in
    # Django's ModelBackend, the signed-in user read by one plain query (dmobs/auth.py).
    # Sessions record their backend: those signed in through Django's own (before
    # this was set) sign in again once.
    "dmobs.auth.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "dmobs.security.client_ip"
AXES_USERNAME_CALLABLE = "dmobs.security.axes_username"
AXES_VERBOSE = False  # our own audit entries and logs say what happened

# --- Audit writer ------------------------------------------------------------
AUDIT_WRITER_MODE = env_str("AUDIT_WRITER_MODE", "thread")
if AUDIT_WRITER_MODE not in ("thread", "inline"):
    raise ImproperlyConfigured(
        f"AUDIT_WRITER_MODE must be 'thread' or 'inline', got {AUDIT_WRITER_MODE!r}"
    )
# memory: entries wait in the queue (fast; a SIGKILL loses what is queued).
# disk: entries reach the fsynced spool before audit_log() returns (group commit).
AUDIT_DURABILITY = env_str("AUDIT_DURABILITY", "memory")
if AUDIT_DURABILITY not in ("memory", "disk"):
    raise ImproperlyConfigured(
        f"AUDIT_DURABILITY must be 'memory' or 'disk', got {AUDIT_DURABILITY!r}"
    )
AUDIT_SPOOL_DIR = Path(env_str("AUDIT_SPOOL_DIR", str(BASE_DIR / "var" / "spool")))
AUDIT_BATCH_SIZE = env_int("AUDIT_BATCH_SIZE", 500)
AUDIT_FLUSH_INTERVAL = env_float("AUDIT_FLUSH_INTERVAL", 0.2)
# Batches in flight at once on PostgreSQL, each on its own connection (1 elsewhere).
AUDIT_WRITER_CONNECTIONS = env_int("AUDIT_WRITER_CONNECTIONS", 2)
AUDIT_QUEUE_SIZE = env_int("AUDIT_QUEUE_SIZE", 100_000)
AUDIT_RETRY_MAX_SECONDS = env_float("AUDIT_RETRY_MAX_SECONDS", 30.0)
AUDIT_EXIT_FLUSH_TIMEOUT = env_float("AUDIT_EXIT_FLUSH_TIMEOUT", 10.0)

# --- Observability ---------------------------------------------------------
SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "dmobs")
LOG_FILE = env_str("LOG_FILE")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
DMOBS_ACCESS_LOG = env_bool("DMOBS_ACCESS_LOG", True)  # one "request" line per request

# /metrics answers an allowed client address (or network) or the bearer token.
DMOBS_METRICS_ALLOWED_IPS = env_list("DMOBS_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
try:
    DMOBS_METRICS_ALLOWED_NETWORKS = [
        ipaddress.ip_network(item, strict=False) for item in DMOBS_METRICS_ALLOWED_IPS
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"DMOBS_METRICS_ALLOWED_IPS: {exc}") from None
DMOBS_METRICS_TOKEN = env_str("DMOBS_METRICS_TOKEN")
if not DMOBS_METRICS_TOKEN and env_str("DMOBS_METRICS_TOKEN_FILE"):
    # The same file can be mounted into Prometheus (credentials_file).
    DMOBS_METRICS_TOKEN = Path(env_str("DMOBS_METRICS_TOKEN_FILE")).read_text().strip() or None
DMOBS_METRICS_MAX_TENANTS = env_int("DMOBS_METRICS_MAX_TENANTS", 200)

from dmobs.observability.logger import build_logging_config  # noqa: E402  (needs the values above)

LOGGING_CONFIG = "logging.config.dictConfig"
LOGGING = build_logging_config(
    level=LOG_LEVEL, log_file=LOG_FILE, service=SERVICE_NAME, env=DMOBS_ENV, debug=DEBUG
)

# --- Screens ---------------------------------------------------------------
DMOBS_MEMBERS_SEE_OWN_ACTIONS = env_bool("DMOBS_MEMBERS_SEE_OWN_ACTIONS", False)
DMOBS_APP_HOSTS = env_str("DMOBS_APP_HOSTS", "")
DMOBS_GRAFANA_URL = env_str("DMOBS_GRAFANA_URL", "http://127.0.0.1:3100")
DMOBS_TEMPO_DATASOURCE_UID = env_str("DMOBS_TEMPO_DATASOURCE_UID", "tempo")
DMOBS_LOKI_DATASOURCE_UID = env_str("DMOBS_LOKI_DATASOURCE_UID", "loki")
DMOBS_RESOURCE_URLS = env_str("DMOBS_RESOURCE_URLS", "")

# --- Platform collectors (/metrics/platform; docs/METRICS.md) ---------------
# The platform's BullMQ queues (one per agent role) in Redis. Unset: no queue metrics.
REDIS_URL = env_str("REDIS_URL")
DMOBS_BULLMQ_PREFIX = env_str("DMOBS_BULLMQ_PREFIX", "bull")
# Queue names; empty: discovered from the "<prefix>:<queue>:meta" keys (SCAN, cached).
DMOBS_BULLMQ_QUEUES = env_list("DMOBS_BULLMQ_QUEUES", [])
# Collected values are reused for this long, so several scrapers cost one read.
DMOBS_COLLECTOR_CACHE_SECONDS = env_float("DMOBS_COLLECTOR_CACHE_SECONDS", 10.0)
# How far back the HITL backlog looks for activities awaiting approval (days).
DMOBS_HITL_WINDOW_DAYS = env_int("DMOBS_HITL_WINDOW_DAYS", 7)

# --- Tamper evidence (dmobs.integrity) -----------------------------------------
# The sealer's signing key comes from the environment (DMOBS_AUDIT_SIGNING_KEY)
# or a file outside the database and the repository; in DEBUG the development
# key that `make run` creates in var/keys/ (git-ignored). See dmobs/integrity/keys.py.
DMOBS_AUDIT_SIGNING_KEY_FILE = env_str(
    "DMOBS_AUDIT_SIGNING_KEY_FILE",
    str(BASE_DIR / "var" / "keys" / "audit-signing.pem") if DEBUG else "",
)
DMOBS_AUDIT_SEAL_BLOCK = env_int("DMOBS_AUDIT_SEAL_BLOCK", 10_000)  # entries per digest
DMOBS_AUDIT_SEAL_SETTLE = env_float("DMOBS_AUDIT_SEAL_SETTLE", 10.0)  # seconds
DMOBS_AUDIT_SEAL_HEARTBEAT = env_float("DMOBS_AUDIT_SEAL_HEARTBEAT", 3600.0)  # seconds
DMOBS_AUDIT_SEAL_INTERVAL = env_float("DMOBS_AUDIT_SEAL_INTERVAL", 60.0)  # --loop, seconds

# Live tail: seconds between polls, and how far behind "now" a poll stops (an
# entry stamped a moment ago may still be on its way to the store).
DMOBS_LIVE_TAIL_SECONDS = env_float("DMOBS_LIVE_TAIL_SECONDS", 5.0)
DMOBS_LIVE_TAIL_SETTLE_SECONDS = env_float("DMOBS_LIVE_TAIL_SETTLE_SECONDS", 1.0)
