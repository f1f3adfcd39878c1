"""SYNTRACK_LOG_FORMAT: text by default, one JSON object per line when asked, provider keys never."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from accounts.models import User
from quotas.models import PollAttempt
from quotas.tests.helpers import SYNTHETIC_KEY, ZAI_KEY, fake_upstream, poller_env, run_manage
from syntrack_site.config import Config, ConfigError
from syntrack_site.logformat import JsonFormatter, RedactSecrets

REQUIRED = {"time", "level", "logger", "message"}


def record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("quotas.polling", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_json_line_holds_time_level_logger_message() -> None:
    entry = json.loads(JsonFormatter().format(record("polled %s\nsecond line", "zai")))

    assert set(entry) == REQUIRED
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "quotas.polling"
    assert entry["message"] == "polled zai\nsecond line"
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_a_json_line_carries_the_exception() -> None:
    try:
        raise ValueError("bad payload")
    except ValueError:
        line = JsonFormatter().format(record("poll failed", exc_info=__import__("sys").exc_info()))

    assert "\n" not in line
    entry = json.loads(line)
    assert "ValueError: bad payload" in entry["exception"]
    assert entry["exception"].startswith("Traceback")


def test_the_filter_masks_provider_keys_in_messages_and_tracebacks(settings) -> None:
    settings.SYNTHETIC_API_KEY = SYNTHETIC_KEY
    try:
        raise RuntimeError(f"refused {SYNTHETIC_KEY}")
    except RuntimeError:
        rec = record("key %s failed", SYNTHETIC_KEY, exc_info=__import__("sys").exc_info())

    assert RedactSecrets().filter(rec)
    line = JsonFormatter().format(rec)

    assert SYNTHETIC_KEY not in line
    assert "syn_pr…def" in json.loads(line)["message"]
    assert "RuntimeError: refused syn_pr…def" in json.loads(line)["exception"]


@pytest.mark.parametrize("value", ["xml", "JSONL", "1"])
def test_an_unknown_format_is_one_line_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from syntrack_site.config import LOG_FORMATS

    monkeypatch.setenv("SYNTRACK_LOG_FORMAT", value)
    with pytest.raises(ConfigError, match=r"^SYNTRACK_LOG_FORMAT must be one of json, text, got"):
        Config().choice("SYNTRACK_LOG_FORMAT", "text", LOG_FORMATS)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_poll_once_writes_only_json_lines_without_keys() -> None:
    # No accounts.W001 (the test admin's "changeme") among the lines: that is a system check's
    # text, not a log record.
    for user in User.objects.filter(password_is_default=True):
        user.set_password("a-real-passw0rd")
        user.save()
    with fake_upstream() as upstream:
        env = poller_env(upstream, SYNTRACK_LOG_FORMAT="json", SYNTRACK_LOG_LEVEL="debug")
        result = run_manage("poll", "--once", env=env)

    assert result.returncode == 0, result.stderr
    assert PollAttempt.objects.count() == 2
    lines = result.stderr.splitlines()
    assert lines, "the poller logged nothing at debug"
    for line in lines:
        entry = json.loads(line)
        assert set(entry) >= REQUIRED, line
    messages = [json.loads(line)["message"] for line in lines]
    assert any(m.startswith("Synthetic: ok") for m in messages) and any(m.startswith("Z.ai: ok") for m in messages)
    for key in (SYNTHETIC_KEY, ZAI_KEY):
        assert key not in result.stderr and key not in result.stdout


def test_settings_pick_the_json_formatter(tmp_path: Path) -> None:
    env = {**poller_env(), "SYNTRACK_LOG_FORMAT": "json", "SYNTRACK_DB_PATH": str(tmp_path / "x.db")}
    code = "from django.conf import settings; print(settings.LOGGING['handlers']['console']['formatter'])"
    result = run_manage("shell", "-c", code, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "json"
