"""Settings for every environment, read from the environment (django-environ).

Production must set SECRET_KEY and DATABASE_URL; nothing here invents them. The development
defaults (a generated secret, DEBUG on, the embedded PostgreSQL) are applied by the run/test
tooling in `config/localdb.py`, never here.
"""

import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
AUTOCOMMIT_DATABASE = "autocommit"
REPLICA_DATABASE = "replica"

env = environ.Env()

SECRET_KEY = env("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "recsys_experiments.apps.RecsysAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    # No longer authenticates anyone (knox does): kept because merged migrations depend on it.
    "rest_framework.authtoken",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "recsys_experiments.accounts",
    "recsys_experiments",
    "deck",
    "telemetry",
]

MIDDLEWARE = [
    "recsys_experiments.api.middleware.RequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django's PostgreSQL backend, whose per-request health check polls the idle connection's
# socket instead of sending `SELECT 1` (recsys_experiments/db_backend/base.py).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "recsys_experiments.db_backend"
# A database that does not answer must fail the health check quickly, not hang a worker.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
)
# The same database on a connection of its own, in autocommit, for the security counters
# (rate limits in the cache table, django-axes' failed logins; config/db_routers.py): they
# must be committed whatever the request's transaction does (a failed login's 400 rolls it
# back), must not hold row locks for a whole request, and run as the login role, never as a
# request's end-user role.
DATABASES[AUTOCOMMIT_DATABASE] = {
    **DATABASES["default"],
    "OPTIONS": dict(DATABASES["default"]["OPTIONS"]),
    "ATOMIC_REQUESTS": False,
    "TEST": {"MIRROR": "default"},
}
# A read replica (a streaming hot standby of the same cluster), when DATABASE_REPLICA_URL is
# set: results, reports and the admin results pages read there (recsys_experiments/db.py,
# config/db_routers.py; docs/scaling.md). Same options as "default", but no request
# transaction of its own: a read opens a read-only one, with the request's role.
if env("DATABASE_REPLICA_URL", default=""):
    _replica = env.db("DATABASE_REPLICA_URL")
    DATABASES[REPLICA_DATABASE] = {
        **DATABASES["default"],
        **_replica,
        "OPTIONS": {**DATABASES["default"]["OPTIONS"], **_replica.get("OPTIONS", {})},
        "ATOMIC_REQUESTS": False,
        "TEST": {"MIRROR": "default"},
    }
# Behind PgBouncer in transaction mode (docs/scaling.md, "Connection pooling") a named cursor
# cannot outlive its transaction's server connection: no server-side cursors.
if env.bool("DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False):
    for _alias in DATABASES:
        DATABASES[_alias]["DISABLE_SERVER_SIDE_CURSORS"] = True
DATABASE_ROUTERS = ["config.db_routers.AutocommitRouter", "config.db_routers.ReplicaRouter"]

# Shared by every gunicorn worker (no new server): the throttles' counters live here. Django's
# DatabaseCache with `set` as one upsert (recsys_experiments/db_cache.py): it runs on every
# throttled request.
CACHES = {
    "default": {
        "BACKEND": "recsys_experiments.db_cache.UpsertDatabaseCache",
        "LOCATION": "django_cache",
        # Django's default of 300 entries would cull live counters under load; culled
        # counters would let an attacker start over.
        "OPTIONS": {"MAX_ENTRIES": env.int("CACHE_MAX_ENTRIES", default=100_000)},
    }
}

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked-out username+address before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / ".local" / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# The largest API request body (a full outcome batch is about 150 kB; an experiment with a
# megabyte of description still gets its 400 naming the field); larger ones get a 413.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=2_000_000)

# CUPED: the experiment results adjust each metric by the user's value of it in this many days
# before their first exposure (docs/recsys-experiments.md, "CUPED"); 0 turns it off.
RESULTS_CUPED_DAYS = env.int("RESULTS_CUPED_DAYS", default=7)
if not 0 <= RESULTS_CUPED_DAYS <= 90:
    raise ImproperlyConfigured(f"RESULTS_CUPED_DAYS: 0 (off) to 90 days, got {RESULTS_CUPED_DAYS}")

# Results read complete days from the daily rollups (docs/telemetry.md, "Rollups"); off reads
# every window raw (a debugging aid: the answers are the same).
TELEMETRY_ROLLUPS = env.bool("TELEMETRY_ROLLUPS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns "not logged in" into 401 instead of 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "recsys_experiments.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "recsys_experiments.api.errors.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": ["recsys_experiments.api.parsers.StrictJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Recsys Experiments API",
    "DESCRIPTION": "A/B experiments for the media swipe deck: assignment, deck, telemetry.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from our own static files: the docs page must work without a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "recsys_experiments.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ExperimentStatusEnum": ["draft", "active", "ended"],
        "AssignmentModeEnum": ["auto", "manual"],
        "AssignmentStateEnum": ["auto", "manual", "unassigned"],
        "OutcomeResultStatusEnum": ["accepted", "duplicate", "rejected"],
    },
}

# Mobile API tokens (django-rest-knox): only a SHA-512 digest is stored; each login makes a new
# token, so a user has one per device; each expires TOKEN_TTL_HOURS after its last use.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.int("TOKEN_TTL_HOURS", default=720)),
    "AUTO_REFRESH": True,
    "AUTH_HEADER_PREFIX": "Token",
}
# Logging in again beyond this many live tokens revokes the user's oldest ones.
TOKEN_LIMIT_PER_USER = env.int("TOKEN_LIMIT_PER_USER", default=10)
if TOKEN_LIMIT_PER_USER < 1:
    raise ImproperlyConfigured("TOKEN_LIMIT_PER_USER: at least 1 (a login must keep its token)")


def _rate(name: str, default: str) -> str | None:
    """A DRF rate such as "10/min" from the environment; "off" disables the limit."""
    value = env(name, default=default).strip().lower()
    if value in {"off", "none", ""}:
        return None
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name}: expected a rate such as 10/min, got {value!r}")
    return value


# Read at each request (recsys_experiments/api/throttling.py), keyed by throttle scope.
API_THROTTLE_RATES = {
    "login_username": _rate("THROTTLE_LOGIN_PER_USERNAME", "10/min"),
    "login_address": _rate("THROTTLE_LOGIN_PER_ADDRESS", "30/min"),
    # Each anonymous identity or sign-up may be a new account: per client address, and low
    # (raise them when many installs share an address, e.g. behind a carrier's NAT).
    "anonymous_address": _rate("THROTTLE_ANONYMOUS_PER_ADDRESS", "60/hour"),
    "signup_address": _rate("THROTTLE_SIGNUP_PER_ADDRESS", "20/hour"),
    "deck": _rate("THROTTLE_DECK", "120/min"),
    "outcomes": _rate("THROTTLE_OUTCOMES", "240/min"),
    "assignments": _rate("THROTTLE_ASSIGNMENTS", "120/min"),
    "exposures": _rate("THROTTLE_EXPOSURES", "240/min"),
    "conversions": _rate("THROTTLE_CONVERSIONS", "240/min"),
}
# How many reverse proxies in front of gunicorn append to X-Forwarded-For. 0: the client
# address is REMOTE_ADDR and X-Forwarded-For (which anyone can send) is ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Admin (and API) login lockout, django-axes: AXES_FAILURE_LIMIT failures for one username
# from one address lock that pair out for AXES_COOLOFF_MINUTES. Keyed on the pair so that
# nobody can lock a real admin out by failing from elsewhere.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
_cooloff_minutes = env.int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=_cooloff_minutes)
if AXES_FAILURE_LIMIT < 1 or _cooloff_minutes < 1:
    # axes reads a zero cool-off as "locked until an admin resets it".
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT and AXES_COOLOFF_MINUTES: at least 1")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "recsys_experiments.api.throttling.request_client_address"
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# Not verbose: no banner on every manage.py command (whose stdout may be JSON), and failure
# warnings name only the lockout parameters, which axes masks.
AXES_VERBOSE = False

# HTTPS: production-safe unless DEBUG (the dev tooling's `make run` serves plain http on
# 127.0.0.1). Each one can be set on its own.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe health over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/health$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Behind a TLS-terminating proxy, the header it sets to say the client used https; by default
# X-Forwarded-Proto when TRUSTED_PROXY_COUNT says there is a proxy, else none ("off").
_proxy_ssl_header = env(
    "SECURE_PROXY_SSL_HEADER", default="X-Forwarded-Proto" if TRUSTED_PROXY_COUNT else "off"
).strip()
if _proxy_ssl_header.lower() not in {"", "off", "none"}:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

# /api/docs/ and /api/schema/ for staff only: the default in production, open under DEBUG.
API_DOCS_STAFF_ONLY = env.bool("API_DOCS_STAFF_ONLY", default=not DEBUG)

# Experiment results (docs/recsys-experiments.md, "Sequential testing" and "Power and
# duration"): n*, the total users at which the always-valid confidence sequence is tightest;
# the relative minimum detectable effect the duration estimate aims for by default.
RESULTS_SEQUENTIAL_TUNING = env.float("RESULTS_SEQUENTIAL_TUNING", default=5000.0)
RESULTS_POWER_MDE = env.float("RESULTS_POWER_MDE", default=0.05)

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# Every record is masked on its way out (config/log_masking.py): no user UUIDs, emails,
# usernames in query strings, or tokens. The "django" loggers are routed here too, so that
# Django's own DEBUG console handler cannot print them unmasked.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_identifiers": {"()": "config.log_masking.MaskIdentifiers"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
            "filters": ["mask_identifiers"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
    },
}
