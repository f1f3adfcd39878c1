"""Typed readers for SynTrack's environment variables.

Every reader fails with a one-line ``ConfigError`` that names the variable, so
``manage.py`` and the WSGI entry point can print it and exit 2 instead of
showing a traceback (product.md §3).
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import secrets
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import environ


class ConfigError(Exception):
    """A missing, malformed or out-of-range setting."""


# Every variable SynTrack reads (product.md §3).
VARIABLES = (
    "SYNTHETIC_API_KEY",
    "ZAI_API_KEY",
    "SYNTHETIC_BASE_URL",
    "ZAI_BASE_URL",
    "SYNTRACK_POLL_INTERVAL",
    "SYNTRACK_ADMIN_USER",
    "SYNTRACK_ADMIN_PASS",
    "SYNTRACK_DB_PATH",
    "DATABASE_URL",
    "SYNTRACK_HOST",
    "SYNTRACK_PORT",
    "SYNTRACK_LOG_LEVEL",
    "SECRET_KEY",
    "SYNTRACK_DEBUG",
    "SYNTRACK_ALLOWED_HOSTS",
    "SYNTRACK_CSRF_TRUSTED_ORIGINS",
    "SYNTRACK_TRUSTED_PROXIES",
    "SYNTRACK_RAW_RETENTION_DAYS",
    "SYNTRACK_READING_RETENTION_DAYS",
    "SYNTRACK_NOTIFY_URLS",
    "SYNTRACK_ALERT_EMAILS",
    "SYNTRACK_ALERT_FROM",
    "EMAIL_URL",
    "SYNTRACK_HEARTBEAT_URL",
    "SYNTRACK_ALERT_FAILING_POLLS",
    "SYNTRACK_BASE_PATH",
    "SYNTRACK_LOG_FORMAT",
    "SYNTRACK_METRICS_PUBLIC",
)
# Read by the development tools (CI, screenshot refresh), not by SynTrack: never "unknown".
TOOL_VARIABLES = ("SYNTRACK_REQUIRE_POSTGRES", "SYNTRACK_UPDATE_DOC_SCREENSHOTS")
# A name that, when unknown, is probably meant for SynTrack (in the environment: SYNTRACK_ only,
# as other tools may well own SYNTHETIC_* or ZAI_* names there).
OUR_PREFIXES = ("SYNTRACK_", "SYNTHETIC_", "ZAI_")
# django-environ's line syntax: NAME=value, optionally after "export ".
ENV_FILE_LINE = re.compile(r"\A\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
# django-environ's schemes for the two databases SynTrack supports.
DATABASE_SCHEMES = {"postgres", "postgresql", "pgsql", "psql", "sqlite"}
# django-environ's email schemes.
EMAIL_SCHEMES = {"smtp", "smtps", "smtp+tls", "smtp+ssl", "consolemail", "filemail", "memorymail", "dummymail"}
LOG_FORMATS = {"text": "text", "json": "json"}
LOG_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "warning": "WARNING", "error": "ERROR"}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class Config:
    """Reads variables from the process environment, then from ``.env``.

    The process environment wins: ``.env`` never overrides a variable that is
    already set, so flags and ``VAR=… make run`` behave as users expect.
    """

    def __init__(self, env_file: Path | None = None) -> None:
        self.env = environ.Env()
        if env_file is not None and env_file.is_file():
            try:
                environ.Env.read_env(str(env_file), overwrite=False)
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(f"cannot read {env_file}: {e}") from None

    def raw(self, name: str) -> str | None:
        value = os.environ.get(name)
        if value is None:
            return None
        return value.strip()

    def string(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None or value == "" else value

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        value = self.raw(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
        if not lo <= number <= hi:
            raise ConfigError(f"{name} must be between {lo} and {hi}, got {number}")
        return number

    def retention_days(self, name: str, default: int, minimum: int) -> int:
        """Days to keep something: 0 for ever, else at least ``minimum``."""
        days = self.integer(name, default, 0, 36500)
        if 0 < days < minimum:
            raise ConfigError(f"{name} must be 0 (keep forever) or at least {minimum} days, got {days}")
        return days

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def items(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None or value == "":
            return default
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(self, name: str, default: str, choices: dict[str, str]) -> str:
        value = self.string(name, default).lower()
        if value not in choices:
            allowed = ", ".join(sorted({k for k in choices if k != "warning"}))
            raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
        return choices[value]

    def base_path(self, name: str) -> str:
        """A URL path prefix such as ``/syntrack`` (no trailing slash), or "" for the site's root."""
        value = self.string(name, "")
        if value in ("", "/"):
            return ""
        segments = value.split("/")[1:]
        if (
            not value.startswith("/")
            or value.endswith("/")
            or any(s in ("", ".", "..") for s in segments)
            or not re.fullmatch(r"[A-Za-z0-9._~/-]+", value)
        ):
            raise ConfigError(
                f"{name} must be a path such as /syntrack (leading slash, no trailing slash, "
                f"no '..', letters, digits and - . _ ~ only), got {value!r}"
            )
        return value

    def url(self, name: str, default: str) -> str:
        value = self.string(name, default).rstrip("/")
        try:
            parts = urlsplit(value)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            valid = False
        if not valid:
            raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
        return value

    def database(self, sqlite_path: Path) -> dict:
        """``DATABASE_URL`` (PostgreSQL or SQLite) when set, else the SQLite file.

        No message, and no warning of django-environ's, ever repeats the URL:
        it may carry a password.
        """
        url = self.string("DATABASE_URL")
        if not url:
            return sqlite_database(sqlite_path)
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in DATABASE_SCHEMES:
            shown = f"{scheme}://" if scheme and scheme.isalnum() else "a URL without a known scheme"
            raise ConfigError(f"DATABASE_URL must start with postgres:// or sqlite:///, got {shown}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                db = self.env.db_url_config(url)
        except Exception:
            raise ConfigError("DATABASE_URL is not a database URL Django understands") from None
        if db.get("ENGINE") == "django.db.backends.sqlite3":
            if db.get("NAME") in ("", ":memory:"):
                raise ConfigError("DATABASE_URL: an SQLite URL needs a file, e.g. sqlite:////var/lib/syntrack/db")
            return sqlite_database(Path(db["NAME"]))
        if not db.get("NAME"):
            raise ConfigError("DATABASE_URL names no database, e.g. postgres://user:password@host:5432/syntrack")
        db.setdefault("OPTIONS", {})
        # A web worker keeps its connection between requests: opening one costs
        # PostgreSQL a backend process and the client some 10 ms, more than most
        # API answers. The health check replaces a connection that a database
        # restart broke before the request uses it.
        db["CONN_MAX_AGE"] = PERSISTENT_CONNECTION_SECONDS
        db["CONN_HEALTH_CHECKS"] = True
        return db

    def notify_urls(self, name: str) -> str:
        """Apprise URLs separated by spaces or commas; each must at least look like ``scheme://…``.

        Which schemes Apprise knows is checked when a channel is tested or
        used (importing Apprise costs every process some 80 ms). The error
        names the position of a bad URL, never the URL: it may hold a token.
        """
        value = self.string(name)
        for position, url in enumerate(re.split(r"[\s,]+", value), start=1):
            if url and not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}://\S+", url):
                raise ConfigError(
                    f"{name}: URL {position} is not an Apprise URL such as ntfy://topic or json://host/path"
                )
        return value

    def emails(self, name: str) -> list[str]:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        addresses = self.items(name, [])
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ConfigError(f"{name}: {address[:64]!r} is not an email address") from None
        return addresses

    def email(self, name: str) -> dict[str, object]:
        """Django's email settings from ``EMAIL_URL`` (``smtp+tls://user:pass@host:587``); empty when unset.

        No message repeats the URL: it carries the mail password.
        """
        url = self.string(name)
        if not url:
            return {}
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in EMAIL_SCHEMES:
            known = ", ".join(sorted(EMAIL_SCHEMES))
            raise ConfigError(f"{name} must start with one of {known}, e.g. smtp+tls://user:password@host:587")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                config = self.env.email_url_config(url)
        except Exception:
            raise ConfigError(f"{name} is not an email URL, e.g. smtp+tls://user:password@host:587") from None
        if scheme.startswith("smtp") and not config.get("EMAIL_HOST"):
            raise ConfigError(f"{name} names no mail server, e.g. smtp+tls://user:password@host:587")
        return config

    def sqlite_path(self) -> Path:
        value = self.string("SYNTRACK_DB_PATH", "~/.syntrack/data/syntrack.db")
        path = Path(value).expanduser()
        if path.exists() and path.is_dir():
            raise ConfigError(f"SYNTRACK_DB_PATH points at a directory: {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise ConfigError(f"SYNTRACK_DB_PATH: cannot create {path.parent}: {e.strerror}") from None
        return path.resolve()


# How long a web worker reuses a database connection (gunicorn's sync workers
# serve one request at a time, so one connection per worker).
PERSISTENT_CONNECTION_SECONDS = 600


def sqlite_database(path: Path) -> dict:
    """SQLite settings shared by the poller and every web worker.

    WAL lets readers run beside the single writer; the busy timeout and
    IMMEDIATE transactions make a writer wait for the lock instead of failing
    with "database is locked" half-way through a transaction. Django applies
    both on every new connection.

    Incremental auto-vacuum lets pruning hand freed pages back to the file
    system (quotas.retention). SQLite honours it only before the first table
    is created: a connection to a file without tables asks for it
    (syntrack_site.sqlite), so a new database gets it at ``migrate``; an older
    one keeps its mode until ``manage.py prune --vacuum``.
    """
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # Kept between requests: no pragmas and SQL functions to set up again, and
        # the page cache stays warm until the poller's next commit.
        "CONN_MAX_AGE": PERSISTENT_CONNECTION_SECONDS,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                # WAL and auto-vacuum in syntrack_site.sqlite: the order matters, and the latter is not free.
                "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON"
            ),
        },
    }


def load_secret_key(cfg: Config, beside: Path) -> str:
    """``SECRET_KEY`` from the environment, else a key generated once.

    The generated key lives next to the database with mode 0600 so sessions
    survive restarts and other local users cannot read it.
    """
    given = cfg.string("SECRET_KEY")
    if given:
        if len(given) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters long")
        return given
    key_file = beside / "secret_key"
    try:
        key = _read_key(key_file)
        if key is not None:
            return key
        # Written whole under a temporary name, then linked into place: web
        # workers starting together all end up with the key that won.
        candidate = secrets.token_urlsafe(50)
        tmp = beside / f".secret_key.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(candidate + "\n")
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, key_file)
            except FileExistsError:
                # Another process won the race, or left a key too short to use.
                key = _read_key(key_file)
                if key is not None:
                    return key
                os.replace(tmp, key_file)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                os.replace(tmp, key_file)  # a filesystem without hard links
            return candidate
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot keep the secret key in {key_file}: {e.strerror}") from None


def _read_key(key_file: Path) -> str | None:
    if not key_file.exists():
        return None
    key = key_file.read_text().strip()
    return key if len(key) >= 32 else None


def env_file_names(env_file: Path | None) -> list[str]:
    """The variable names a ``.env`` file sets, in file order; none when it is missing or unreadable."""
    if env_file is None:
        return []
    try:
        text = env_file.read_text(errors="replace")
    except OSError:
        return []
    return [m.group(1) for line in text.splitlines() if (m := ENV_FILE_LINE.match(line))]


def unknown_variables(environ: Mapping[str, str], env_file: Path | None) -> list[tuple[str, str, str | None]]:
    """``(name, where, closest known name or None)`` for each variable SynTrack ignores but was probably meant for it.

    From ``.env``, every unknown name with a SynTrack prefix or close to a
    known one (the file is SynTrack's own); from the environment, unknown
    ``SYNTRACK_*`` names. A name found in both is reported as from ``.env``:
    reading the file copied it into the environment.
    """
    known = set(VARIABLES) | set(TOOL_VARIABLES)
    found: dict[str, str] = {}
    for name in env_file_names(env_file):
        if name not in known and (name.startswith(OUR_PREFIXES) or _closest(name)):
            found.setdefault(name, ".env")
    for name in sorted(environ):
        if name.startswith("SYNTRACK_") and name not in known:
            found.setdefault(name, "the environment")
    return [(name, where, _closest(name)) for name, where in found.items()]


def _closest(name: str) -> str | None:
    matches = difflib.get_close_matches(name.upper(), VARIABLES, n=1, cutoff=0.75)
    return matches[0] if matches else None
