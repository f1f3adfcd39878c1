"""gunicorn's settings for SynTrack in production: `gunicorn --config deploy/gunicorn.conf.py`.

Run from the project directory (systemd's WorkingDirectory, supervisor's directory).
The address and the log format come from the same variables as the rest of SynTrack,
read from the environment and then `.env`, so one file configures everything.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from syntrack_site.config import Config, ConfigError  # noqa: E402 - needs the project on sys.path

try:
    _cfg = Config(PROJECT / ".env")
    _host = _cfg.string("SYNTRACK_HOST", "127.0.0.1")
    _port = _cfg.integer("SYNTRACK_PORT", 9211, 1, 65535)
    _json = _cfg.string("SYNTRACK_LOG_FORMAT", "text").lower() == "json"
    _proxies = _cfg.items("SYNTRACK_TRUSTED_PROXIES", [])
except ConfigError as e:
    sys.exit(f"SynTrack: {e}")

wsgi_app = "syntrack_site.wsgi"
chdir = str(PROJECT)
# IPv6 addresses go in brackets, as `manage.py serve` writes them.
bind = [f"[{_host.strip('[]')}]:{_port}" if ":" in _host else f"{_host}:{_port}"]
workers = 2
# As `manage.py serve`: requests end within 30 s, and a stop waits 5 s for those in flight.
timeout = 30
graceful_timeout = 5
keepalive = 5
# gunicorn believes X-Forwarded-* (its own scheme and access log) only from these; Django
# separately believes them only from SYNTRACK_TRUSTED_PROXIES (syntrack_site.middleware).
forwarded_allow_ips = ",".join(_proxies) or "127.0.0.1"

# Both logs go to stderr, for the journal or supervisor's log files.
accesslog = "-"
errorlog = "-"
# The client as the proxy saw it, then the request; never the query string's cookies or headers.
access_log_format = '%(h)s %({x-forwarded-for}i)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'

if _json:
    # SYNTRACK_LOG_FORMAT=json: gunicorn's own lines as JSON too, as Django's are (settings.LOGGING).
    _handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
    }
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "syntrack_site.logformat.JsonFormatter"}},
        "handlers": {"console": _handler},
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
