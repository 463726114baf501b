"""Settings for callrouting, read from the environment (see .env.example for every variable).

Defaults give an embedded set-up: SQLite and the django-q2 ORM broker. Production (DEBUG off) refuses to start
with the default SECRET_KEY.
"""
from pathlib import Path

import environ
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
if not DEBUG and SECRET_KEY == INSECURE_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value, "
        "or DEBUG=true for local development."
    )
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must not be empty.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Public https base URL Vonage reaches this deployment on; used in every webhook URL handed to Vonage.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "escalation",
    "incidents",
    "callrouting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

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
# Number that outbound notification calls and SMS come from (E.164).
VONAGE_FROM_NUMBER = env.str("VONAGE_FROM_NUMBER", default="")
# Signed webhooks older than this many seconds are refused (replay protection).
VONAGE_SIGNATURE_MAX_AGE = env.int("VONAGE_SIGNATURE_MAX_AGE", default=300)

# The local phone network (manage.py phone_network; run_local starts it and sets these when no Vonage
# credentials are configured). The Test call page talks to its control API.
EMULATOR_URL = env.str("EMULATOR_URL", default="")
EMULATOR_TOKEN = secret("EMULATOR_TOKEN", default="")
EMULATOR_CA = env.str("EMULATOR_CA", default="")

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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# OpenAPI schema at /api/schema/, Swagger UI at /api/docs/ and Redoc at /api/redoc/, served without a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "callrouting API",
    "DESCRIPTION": "Routing numbers, escalation policies, on-call schedules, incidents and the call log of your "
    "account. Authenticate with `Authorization: Token <token>` (create one at /settings/api-token/).",
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
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("callrouting", "incidents", "escalation")
    },
}

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=PUBLIC_BASE_URL.startswith("https://"))
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
