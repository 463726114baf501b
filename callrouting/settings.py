"""Settings for callrouting, read from the environment (see .env.example for every variable).

Defaults give an embedded set-up: SQLite and the django-q2 ORM broker. Production (DEBUG off) refuses to start
with a default or short SECRET_KEY or an http PUBLIC_BASE_URL, and is served over https only.
"""
import datetime as dt
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
INSECURE_SECRET_KEY = "insecure-development-key-change-me"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    # Real environment variables win over the file.
    env.read_env(BASE_DIR / ".env", overwrite=False)


def secret(name, default=None):
    """A secret from NAME or from the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = secret("SECRET_KEY", default=INSECURE_SECRET_KEY)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must not be empty.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Public https base URL Vonage reaches this deployment on; used in every webhook URL handed to Vonage.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Plain http with DEBUG off, for load tests on a private machine (manage.py benchmark): no https checks, no HSTS,
# no SSL redirect, cookies not marked secure. Never in production.
INSECURE_PLAIN_HTTP = env.bool("INSECURE_PLAIN_HTTP", default=False)
# DEBUG off is production: it refuses to start rather than run with a guessable key or send webhook URLs, logins
# and API tokens over plain http.
if not DEBUG:
    if SECRET_KEY == INSECURE_SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value, "
            "or DEBUG=true for local development."
        )
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY is too short: use at least 50 random characters "
            "(python -c \"import secrets; print(secrets.token_urlsafe(50))\")."
        )
    if not PUBLIC_BASE_URL.startswith("https://") and not INSECURE_PLAIN_HTTP:
        raise ImproperlyConfigured(
            f"PUBLIC_BASE_URL={PUBLIC_BASE_URL!r} is not an https URL. With DEBUG off the app is served over https "
            "(Vonage's webhooks, logins and API tokens travel on it); set PUBLIC_BASE_URL=https://your.host."
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "health_check",  # /healthz (callrouting.monitoring)
    "axes",
    "csp",
    "escalation",
    "incidents",
    "callrouting",
]

MIDDLEWARE = [
    "callrouting.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "callrouting.urls"
WSGI_APPLICATION = "callrouting.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share the file: wait for locks instead of failing, write-ahead log for
    # concurrent readers, and take the write lock when a transaction starts so select_for_update sections serialise.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=600))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Server-side parameters and prepared statements: the webhooks run the same few queries all the time, and
# PostgreSQL then plans each once per connection (answer webhook 9.0 -> 6.5 ms in-process). Turn off behind a
# connection pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
POSTGRES_OPTIONS = (
    {"server_side_binding": True, "prepare_threshold": 1} if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else {}
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(POSTGRES_OPTIONS)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "escalation.User"
# django-axes first: it refuses a locked-out username and address before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
FORM_RENDERER = "callrouting.form_renderer.PlainWidgetRenderer"  # the commonest widgets without a template
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Request bodies: larger ones are answered 413 before they are read (callrouting/middleware.py). The default is just
# above the largest upload (audio, 10 MB) plus the multipart envelope. Uploads over FILE_UPLOAD_MAX_MEMORY_SIZE are
# spooled to a temporary file rather than held in memory; other bodies are capped at DATA_UPLOAD_MAX_MEMORY_SIZE.
MAX_REQUEST_BODY_SIZE = env.int("MAX_REQUEST_BODY_SIZE", default=11 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 512 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve from the app folders too, so a checkout works before (or without) collectstatic.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "/media/"
# Calls answered while the database is down are written here (one JSON file each) and recorded by the
# callrouting sweeper once it is back (callrouting.spool). Must be shared by the web and worker processes.
CALL_SPOOL_DIR = Path(env.str("CALL_SPOOL_DIR", default="") or BASE_DIR / "var" / "spool")

# Vonage (see README "Connecting Vonage"). Without an application id the product runs against no phone network.
VONAGE_APPLICATION_ID = env.str("VONAGE_APPLICATION_ID", default="")
VONAGE_PRIVATE_KEY = secret("VONAGE_PRIVATE_KEY", default="")
VONAGE_API_KEY = env.str("VONAGE_API_KEY", default="")
VONAGE_API_SECRET = secret("VONAGE_API_SECRET", default="")
VONAGE_SIGNATURE_SECRET = secret("VONAGE_SIGNATURE_SECRET", default="")
VONAGE_API_HOST = env.str("VONAGE_API_HOST", default="api.nexmo.com")
VONAGE_REST_HOST = env.str("VONAGE_REST_HOST", default="rest.nexmo.com")
VONAGE_TIMEOUT = env.float("VONAGE_TIMEOUT", default=5.0)
VONAGE_CALLS_PER_SECOND = env.int("VONAGE_CALLS_PER_SECOND", default=3)
VONAGE_CALL_SPACING = env.float("VONAGE_CALL_SPACING", default=1.1)
# Requests that modify a live call (hang-up, transfer) per VONAGE_CALL_SPACING seconds: Vonage allows 15 per second.
VONAGE_MODIFIES_PER_SECOND = env.int("VONAGE_MODIFIES_PER_SECOND", default=15)
# Number that outbound notification calls and SMS come from (E.164).
VONAGE_FROM_NUMBER = env.str("VONAGE_FROM_NUMBER", default="")
# Signed webhooks older than this many seconds are refused (replay protection).
VONAGE_SIGNATURE_MAX_AGE = env.int("VONAGE_SIGNATURE_MAX_AGE", default=300)
# /metrics answers only requests with "Authorization: Bearer <METRICS_TOKEN>"; without a token it is off (404).
METRICS_TOKEN = secret("METRICS_TOKEN", default="")
# The benchmark's floor webhook (/vonage/benchmark-floor: one indexed query, a fixed NCCO), switched on only by
# manage.py benchmark for the servers it starts; off (404) everywhere else.
BENCHMARK_FLOOR_WEBHOOK = env.bool("BENCHMARK_FLOOR_WEBHOOK", default=False)
# How long the signed voicemail links in alert-action messages (webhook, Slack, Teams) play the recording.
VOICEMAIL_LINK_MAX_AGE = dt.timedelta(days=env.int("VOICEMAIL_LINK_MAX_AGE_DAYS", default=7))

# The local phone network (manage.py phone_network; run_local starts it and sets these when no Vonage
# credentials are configured). The Test call page talks to its control API.
EMULATOR_URL = env.str("EMULATOR_URL", default="")
EMULATOR_TOKEN = secret("EMULATOR_TOKEN", default="")
EMULATOR_CA = env.str("EMULATOR_CA", default="")

# Requests to URLs an account typed (alert actions, Slack, Teams) go through incidents/outbound.py: https only and
# public addresses only. For local development: allow http:// URLs, and allow 127.0.0.1 / ::1 (never in production:
# it would let any account admin reach services listening on the host itself).
OUTBOUND_ALLOW_HTTP = env.bool("OUTBOUND_ALLOW_HTTP", default=False)
OUTBOUND_ALLOW_LOOPBACK = env.bool("OUTBOUND_ALLOW_LOOPBACK", default=False)
if OUTBOUND_ALLOW_LOOPBACK and not DEBUG:
    raise ImproperlyConfigured("OUTBOUND_ALLOW_LOOPBACK is for local development only: it needs DEBUG=true.")

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# Invitations are emailed only when outgoing email is set up; otherwise the People page shows the link only.
EMAIL_CONFIGURED = bool(env.str("EMAIL_URL", default=""))
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 24 * 3600)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="callrouting@localhost")

REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "callrouting",
    "workers": env.int("Q_WORKERS", default=2),
    # A task that places calls must never run twice because it was slow: one attempt, retry well past timeout.
    "timeout": 60,
    "retry": 120,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "poll": 0.1,
    "label": "Tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Reverse proxies in front of the app that append the client's address to X-Forwarded-For. The login lockout and
# the API throttles count per client address: with 0 that is REMOTE_ADDR and X-Forwarded-For is ignored (a client
# could write anything there).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Login lockout (django-axes): LOGIN_FAILURE_LIMIT failed logins for one username from one address lock that pair
# out of the product login and the Django admin for LOGIN_LOCKOUT_MINUTES (manage.py axes_reset_username unlocks).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "callrouting.web.lockout.locked_out"
AXES_CLIENT_IP_CALLABLE = "callrouting.api.throttling.client_address"

# REST API tokens (django-rest-knox): stored as SHA-512 digests, named, with an optional expiry (callrouting.api).
KNOX_TOKEN_MODEL = "escalation.ApiToken"
REST_KNOX = {"TOKEN_MODEL": KNOX_TOKEN_MODEL, "TOKEN_TTL": None, "AUTH_HEADER_PREFIX": "Token"}
# knox's own token model is swapped for escalation.ApiToken; its migrations would still create an unused table
# that references users (and blocks truncating them), so knox is left without migrations.
MIGRATION_MODULES = {"knox": None}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "callrouting.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "callrouting.api.renderers.BrowsableAPIRenderer",
    ],
    # Requests per client address (anonymous) or per user; a request with an invalid token counts against its
    # address in failed_token, and once that is full every token from the address gets 429 until it drains.
    "DEFAULT_THROTTLE_CLASSES": [
        "callrouting.api.throttling.AnonymousThrottle",
        "callrouting.api.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anonymous": env.str("API_THROTTLE_ANONYMOUS", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="600/min"),
        "failed_token": env.str("API_THROTTLE_FAILED_TOKEN", default="10/min"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# OpenAPI schema at /api/schema/, Swagger UI at /api/docs/ and Redoc at /api/redoc/, served without a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "callrouting API",
    "DESCRIPTION": "Routing numbers, escalation policies, on-call schedules, incidents and the call log of your "
    "account. Authenticate with `Authorization: Token <token>` (create one at /settings/api-tokens/ or with "
    "POST /api/tokens/).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "IncidentStatusEnum": "incidents.models.Incident.Status",
        "AgentLegStatusEnum": "callrouting.models.AgentLeg.Status",
    },
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# Phone numbers in the logs keep their last four digits (callrouting/log_privacy.py); false writes them in full.
# Tokens, JWTs and query strings are removed either way.
LOG_MASK_NUMBERS = env.bool("LOG_MASK_NUMBERS", default=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        **{
            name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
            for name in ("callrouting", "incidents", "escalation")
        },
        # django-q2 gives its logger a handler of its own only when none is configured anywhere (root included),
        # so without this line the worker's INFO lines (cluster start, each task processed) would stop at the
        # root logger's WARNING level.
        "django-q": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# Served over https only: with DEBUG off (unless INSECURE_PLAIN_HTTP) plain http is redirected, browsers are told
# to use https for a year (HSTS) and cookies are sent over https only; manage.py check --deploy is silent then.
HTTPS_ONLY = not DEBUG and not INSECURE_PLAIN_HTTP
SECURE_SSL_REDIRECT = HTTPS_ONLY
# A load balancer's health probe may come over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600) if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS_ONLY or env.bool(
    "SECURE_COOKIES", default=PUBLIC_BASE_URL.startswith("https://") and not INSECURE_PLAIN_HTTP
)
# Behind a proxy that terminates TLS, requests reach the app over http: the proxy's header says they came in over
# https (the proxy must set it, and overwrite one sent by the client).
if env.bool("BEHIND_TLS_PROXY", default=False):
    tls_proxy_header = env.str("TLS_PROXY_HEADER", default="X-Forwarded-Proto")
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + tls_proxy_header.upper().replace("-", "_"),
        env.str("TLS_PROXY_HEADER_VALUE", default="https"),
    )

# Content-Security-Policy (django-csp) on every response: scripts, styles, images, audio and requests from this
# site only, no inline scripts or styles (the pages' own are static files), no framing, no plugins. Redoc
# (callrouting/api/urls.py) and DRF's browsable API (callrouting/api/renderers.py) allow inline styles on their
# own pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# (Not named CSP_*: django-csp 4 refuses settings that look like its old ones.)
if csp_report_uri := env.str("CSP_REPORT_URI", default=""):
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["report-uri"] = [csp_report_uri]

# The throttle counters (callrouting.api.throttling) live in the cache: in Redis when REDIS_URL is set, so every
# web process counts together; otherwise in each process's memory.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "callrouting"}}
