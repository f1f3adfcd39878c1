"""Log output: a JSON line per record (SYNTRACK_LOG_FORMAT=json), and the provider keys masked in every line.

Importable without Django's settings, so gunicorn's config (deploy/gunicorn.conf.py)
can use the same formatter for its own error and access logs.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from lib.redact import redact

# The variables whose values must never reach a log line (product.md §9).
SECRET_SETTINGS = ("SYNTHETIC_API_KEY", "ZAI_API_KEY")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, and exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        entry = {
            "time": when.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: a message's own newlines and odd characters can never split the line.
        return json.dumps(entry, ensure_ascii=True)


class RedactSecrets(logging.Filter):
    """Masks the provider keys in a record's message and arguments, a last guard behind lib.redact at the sources.

    Reads the keys from Django's settings when they are configured; outside Django (gunicorn's
    master before the app loads) there is nothing of ours to mask.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _secrets()
        if not secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
            # The formatters would render exc_info afresh; exc_text is the masked copy.
            record.exc_info = None
        return True


def _secrets() -> list[str]:
    try:
        from django.conf import settings

        if not settings.configured:
            return []
        return [value for name in SECRET_SETTINGS if (value := getattr(settings, name, ""))]
    except Exception:  # settings that fail to load have their own error; logging must go on
        return []
