"""``manage.py status`` (issue 9 §6): poller, last polls, database; exit 0 healthy, 1 not, 2 bad usage."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from conftest import store_failure, store_quotas
from quotas import status as quotas_status
from quotas.locking import PollLock
from quotas.models import Outcome, PollAttempt
from quotas.providers.base import Quota
from quotas.tests.helpers import base_env, database_env, run_manage

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 4, 2, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def interval(settings):
    settings.SYNTRACK_POLL_INTERVAL = 60
    return settings


def quota() -> Quota:
    return Quota("subscription", "Subscription", "reset", "requests", used=5.0, limit=100.0)


def status(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        try:
            call_command("status", *args, stdout=out)
        except SystemExit as e:
            return int(e.code), out.getvalue()
    return 0, out.getvalue()


def refused(at: datetime, provider: str) -> None:
    """The attempt the poller writes once its database takes writes again (quotas/backlog.py)."""
    PollAttempt.objects.create(provider=provider, at=at, outcome=Outcome.STORAGE_ERROR, message="database is locked")


def both_polled(ago: float = 30) -> None:
    store_quotas(NOW - timedelta(seconds=ago), quota(), provider="synthetic")
    store_quotas(NOW - timedelta(seconds=ago + 5), quota(), provider="zai")


def test_it_is_healthy_when_every_configured_provider_polled_lately(providers_configured) -> None:
    both_polled()

    code, out = status()

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "status: healthy at 2026-04-02T12:00:00Z"
    assert lines[1] == "poller: not running"
    assert lines[2] == "synthetic: configured, every 60 s, last poll 2026-04-02T11:59:30Z (30 s ago): ok"
    assert lines[3] == "zai: configured, every 60 s, last poll 2026-04-02T11:59:25Z (35 s ago): ok"
    assert lines[4].startswith(f"database: {connection.vendor} ")
    assert lines[5].startswith("rows: snapshots 2, readings 2, rollups ")
    assert "problem" not in out


def test_it_names_the_poller_holding_the_lock_and_its_pid(providers_configured) -> None:
    both_polled()

    with PollLock("manage.py poll", wait=0):
        code, out = status("--json")

    body = json.loads(out)
    assert code == 0
    assert body["poller"]["running"] is True and body["poller"]["pid"] == os.getpid()
    assert body["poller"]["holder"].startswith("manage.py poll (pid ")


def test_a_failed_last_poll_is_exit_1(providers_configured) -> None:
    both_polled()
    store_failure(NOW - timedelta(seconds=10), provider="zai", outcome="server_error")

    code, out = status()

    assert code == 1
    assert out.splitlines()[0] == "status: UNHEALTHY at 2026-04-02T12:00:00Z"
    assert "zai: configured, every 60 s, last poll 2026-04-02T11:59:50Z (10 s ago): server_error (HTTP 502" in out
    assert out.splitlines()[-1] == "problem: zai: the last poll failed: server_error"


def test_a_storage_error_of_the_last_day_is_a_warning_not_a_problem(providers_configured) -> None:
    # The poller dates it at the first refused write; the answers written late come after it...
    refused(NOW - timedelta(seconds=90), "synthetic")
    both_polled()
    # ...or, when every held answer was lost, nothing does: the last poll is still the one judged.
    refused(NOW - timedelta(seconds=5), "zai")

    code, out = status()

    assert code == 0, out
    assert "synthetic: configured, every 60 s, last poll 2026-04-02T11:59:30Z (30 s ago): ok" in out
    assert "zai: configured, every 60 s, last poll 2026-04-02T11:59:25Z (35 s ago): ok" in out
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert [w.split(": ", 2)[1] for w in warnings] == ["synthetic", "zai"]
    assert warnings[0].startswith("warning: synthetic: SynTrack's database refused writes from 2026-04-02T11:58:30Z: ")
    assert "problem" not in out

    a_day_on = quotas_status.report(now=NOW + timedelta(hours=24, seconds=-90))["providers"]
    assert a_day_on[0]["last_storage_error"]["at"] == "2026-04-02T11:58:30Z"
    assert quotas_status.report(now=NOW + timedelta(hours=24))["providers"][0]["last_storage_error"] is None


@pytest.mark.parametrize(("ago", "healthy"), [(180, True), (181, False)])
def test_a_last_poll_older_than_three_intervals_is_exit_1(providers_configured, ago: int, healthy: bool) -> None:
    store_quotas(NOW - timedelta(seconds=10), quota(), provider="synthetic")
    store_quotas(NOW - timedelta(seconds=ago), quota(), provider="zai")

    code, out = status("--json")

    body = json.loads(out)
    assert code == (0 if healthy else 1)
    assert body["healthy"] is healthy
    assert body["problems"] == ([] if healthy else ["zai: the last poll is 181 s old, over 3 intervals of 60 s"])


def test_a_configured_provider_never_polled_is_unhealthy(providers_configured) -> None:
    store_quotas(NOW - timedelta(seconds=30), quota(), provider="synthetic")

    code, out = status("--json")

    assert code == 1
    assert json.loads(out)["problems"] == ["zai: configured but never polled"]


def test_without_keys_the_polled_providers_are_judged(settings) -> None:
    settings.SYNTHETIC_API_KEY = settings.ZAI_API_KEY = ""
    assert status()[0] == 0  # nothing configured, nothing polled
    store_quotas(NOW - timedelta(hours=2), quota(), provider="zai")

    code, out = status("--json")

    body = json.loads(out)
    assert code == 1
    assert body["problems"] == ["zai: the last poll is 7200 s old, over 3 intervals of 60 s"]
    assert [p["configured"] for p in body["providers"]] == [False, False]


def test_json_has_the_database_and_row_counts(providers_configured) -> None:
    both_polled()

    body = json.loads(status("--json")[1])

    assert body["database"]["engine"] == connection.vendor
    assert body["database"]["size_bytes"] > 0
    assert body["rows"] == {
        "snapshots": 2,
        "readings": 2,
        "rollups": body["rows"]["rollups"],
        "cycles": 2,
        "sessions": 0,
        "polls": 2,
        "alerts": 0,
        "deliveries": 0,
    }
    assert body["rows"]["rollups"] >= 2
    assert body["providers"][0]["last_success_at"] == "2026-04-02T11:59:30Z"


def test_the_database_password_is_never_shown(providers_configured, monkeypatch) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("only a PostgreSQL connection has a password")
    monkeypatch.setitem(connection.settings_dict, "PASSWORD", "pw-hunter2-secret")
    both_polled()

    for args in ((), ("--json",)):
        out = status(*args)[1]
        assert "pw-hunter2-secret" not in out
        assert f"/{connection.settings_dict['NAME']}" in out


@pytest.mark.django_db(transaction=True)
def test_the_real_process_exit_codes() -> None:
    env = base_env(**database_env())

    empty = run_manage("status", env=env)  # no key, no poll: nothing is failing
    bad = run_manage("status", "--verbose-ish", env=env)

    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("status: healthy")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
