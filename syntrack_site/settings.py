"""SynTrack settings, read from the environment and ``.env`` (product.md §3)."""

from __future__ import annotations

from pathlib import Path

from syntrack_site.config import LOG_FORMATS, LOG_LEVELS, Config, load_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

# Kept for the unknown-variable check (syntrack_site.checks), which also names typos in the file.
SYNTRACK_ENV_FILE = BASE_DIR / ".env"
cfg = Config(SYNTRACK_ENV_FILE)

SYNTRACK_DB_PATH = cfg.sqlite_path()
SECRET_KEY = load_secret_key(cfg, SYNTRACK_DB_PATH.parent)
DEBUG = cfg.boolean("SYNTRACK_DEBUG", False)
ALLOWED_HOSTS = cfg.items("SYNTRACK_ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = cfg.items("SYNTRACK_CSRF_TRUSTED_ORIGINS", [])

# Providers. Keys stay out of every log line and page (lib.redact).
SYNTHETIC_API_KEY = cfg.string("SYNTHETIC_API_KEY")
ZAI_API_KEY = cfg.string("ZAI_API_KEY")
SYNTHETIC_BASE_URL = cfg.url("SYNTHETIC_BASE_URL", "https://api.synthetic.new")
ZAI_BASE_URL = cfg.url("ZAI_BASE_URL", "https://api.z.ai/api")

SYNTRACK_POLL_INTERVAL = cfg.integer("SYNTRACK_POLL_INTERVAL", 60, 10, 3600)
SYNTRACK_ADMIN_USER = cfg.string("SYNTRACK_ADMIN_USER", "admin")
# Empty: the admin bootstrap generates a password and prints it once (accounts.bootstrap).
SYNTRACK_ADMIN_PASS = cfg.string("SYNTRACK_ADMIN_PASS", "")
# Loopback unless asked: `serve` refuses any other address while a password is a default one.
SYNTRACK_HOST = cfg.string("SYNTRACK_HOST", "127.0.0.1")
SYNTRACK_PORT = cfg.integer("SYNTRACK_PORT", 9211, 1, 65535)
SYNTRACK_TRUSTED_PROXIES = cfg.items("SYNTRACK_TRUSTED_PROXIES", [])
# 0 keeps raw upstream bodies forever.
SYNTRACK_RAW_RETENTION_DAYS = cfg.integer("SYNTRACK_RAW_RETENTION_DAYS", 30, 0, 36500)
# Fine readings (one per quota and poll). 0 keeps them forever. The default is as long as the
# 5-minute roll-ups, which `reparse` rebuilds from them; everything longer (the 7d and 30d charts,
# the 30-day insights) reads the hourly roll-ups (quotas.retention says how long those stay).
SYNTRACK_READING_RETENTION_DAYS = cfg.retention_days("SYNTRACK_READING_RETENTION_DAYS", 8, 1)
# Alerts (the alerts app): Apprise URLs, email, the poller's heartbeat.
SYNTRACK_NOTIFY_URLS = cfg.notify_urls("SYNTRACK_NOTIFY_URLS")
SYNTRACK_ALERT_EMAILS = cfg.emails("SYNTRACK_ALERT_EMAILS")
EMAIL_CONFIG = cfg.email("EMAIL_URL")
EMAIL_URL_SET = bool(EMAIL_CONFIG)
# EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, … as django-environ's documentation sets them.
vars().update(EMAIL_CONFIG)
# An SMTP server that stops answering must not hold an alert past its time budget.
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = cfg.string("SYNTRACK_ALERT_FROM", "SynTrack <syntrack@localhost>")
SYNTRACK_ALERT_FAILING_POLLS = cfg.integer("SYNTRACK_ALERT_FAILING_POLLS", 5, 1, 1000)
SYNTRACK_HEARTBEAT_URL = cfg.url("SYNTRACK_HEARTBEAT_URL", "") if cfg.string("SYNTRACK_HEARTBEAT_URL") else ""
LOG_LEVEL = cfg.choice("SYNTRACK_LOG_LEVEL", "info", LOG_LEVELS)
LOG_FORMAT = cfg.choice("SYNTRACK_LOG_FORMAT", "text", LOG_FORMATS)
# Served under a sub-path behind a proxy that strips it (deploy/nginx/syntrack.conf): "" or e.g. "/syntrack".
SYNTRACK_BASE_PATH = cfg.base_path("SYNTRACK_BASE_PATH")
# /metrics without authentication (quotas.metrics); otherwise it needs a read-only token to exist.
SYNTRACK_METRICS_PUBLIC = cfg.boolean("SYNTRACK_METRICS_PUBLIC", False)

DATABASES = {"default": cfg.database(SYNTRACK_DB_PATH)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    # First, so that its `changepassword` (defaulting to SYNTRACK_ADMIN_USER) wins over Django's.
    "accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "quotas",
    "alerts",
]

MIDDLEWARE = [
    # First: strips X-Forwarded-Proto from untrusted clients before anything reads it.
    "syntrack_site.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before the session and common middleware: their errors (a disallowed host, a session that
    # cannot be saved) are answered at their layer and must still pass through it.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "quotas.middleware.AdminTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last: JSON answers (503 when the database is busy) for what an API view raises.
    "syntrack_site.api_errors.ApiErrorsMiddleware",
]

ROOT_URLCONF = "syntrack_site.urls"
WSGI_APPLICATION = "syntrack_site.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

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
                "accounts.context_processors.default_password_warning",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "accounts.passwords.PlaceholderPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Absolute, with the base path: a relative STATIC_URL takes the prefix of whichever request reads it first.
STATIC_URL = f"{SYNTRACK_BASE_PATH}/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "syntrack_site.storage.StaticFilesStorage"},
}

# URL names, so redirects carry the base path (FORCE_SCRIPT_NAME).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# None at the root: Django then takes SCRIPT_NAME from the server, as usual.
FORCE_SCRIPT_NAME = SYNTRACK_BASE_PATH or None
SESSION_COOKIE_PATH = CSRF_COOKIE_PATH = SYNTRACK_BASE_PATH or "/"

# Security (product.md §9). The session and CSRF cookies get `Secure`, and
# responses HSTS, on HTTPS requests only (syntrack_site.middleware and
# SecurityMiddleware), so one install serves http://localhost and a TLS proxy.
# X-Forwarded-Proto counts only from SYNTRACK_TRUSTED_PROXIES: the middleware
# drops it from anyone else.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Not HttpOnly: the dashboard's scripts read it for the X-CSRFToken header.
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31_536_000
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "syntrack_site.logformat.JsonFormatter"},
    },
    # A last guard: the provider keys are masked in whatever reaches the console.
    "filters": {"redact": {"()": "syntrack_site.logformat.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Third-party chatter stays quiet below warnings even at debug.
        "urllib3": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
        # Apprise logs the URLs it sends to, secrets and all: alerts.delivery captures its
        # messages, scrubs them and logs them itself; none goes out as Apprise wrote it.
        "apprise": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}
