"""The guard: ``GET /api/guard`` and ``manage.py guard`` (issue 9 §5)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client

from conftest import store_failure, store_quotas
from quotas import numbers
from quotas.models import Outcome, PollAttempt
from quotas.providers.base import Quota
from quotas.tests.helpers import base_env, database_env, run_manage

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 4, 2, 12, 0, 0, tzinfo=UTC)
RESET = NOW + timedelta(hours=3, minutes=20)
NEXT_TICK = NOW + timedelta(minutes=7)


def subscription(used: float) -> Quota:
    return Quota("subscription", "Subscription", "reset", "requests", used=used, limit=200.0, resets_at=RESET)


def rolling(percent: float, limited: bool = False) -> Quota:
    """A 5-hour regenerating window: 5 % back every 15 minutes."""
    details = {"tick_percent": 5.0, "next_tick_at": NEXT_TICK.isoformat(), "limited": limited}
    return Quota("rolling_5h", "Rolling 5 h", "rolling", "requests", percent=percent, details=details)


def not_in_plan() -> Quota:
    return Quota("search_hourly", "Search", "reset", "requests", used=0.0, limit=0.0, resets_at=RESET)


@pytest.fixture(autouse=True)
def interval(settings):
    settings.SYNTRACK_POLL_INTERVAL = 60
    return settings


def refused(at: datetime, provider: str) -> None:
    """The attempt the poller writes once its database takes writes again (quotas/backlog.py)."""
    PollAttempt.objects.create(provider=provider, at=at, outcome=Outcome.STORAGE_ERROR, message="database is locked")


def guard(client: Client, query: str, at: datetime = NOW):
    with time_machine.travel(at, tick=False):
        return client.get(f"/api/guard?{query}")


def test_it_answers_200_when_every_quota_has_enough_left(api: Client) -> None:
    store_quotas(NOW - timedelta(seconds=40), subscription(50), rolling(30), not_in_plan())

    response = guard(api, "provider=synthetic&min_remaining_percent=20")

    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["provider"] == "synthetic" and body["checked_at"] == "2026-04-02T12:00:00Z"
    assert body["min_remaining_percent"] == 20
    # The plan's hidden quota (limit 0) is not judged.
    assert [(q["key"], q["remaining_percent"], q["ok"]) for q in body["quotas"]] == [
        ("subscription", 75.0, True),
        ("rolling_5h", 70.0, True),
    ]


def test_too_little_left_in_a_reset_window_is_429_until_the_reset(api: Client) -> None:
    store_quotas(NOW - timedelta(seconds=40), subscription(185), rolling(30))

    response = guard(api, "provider=synthetic")  # default: 10 % must be left

    assert response.status_code == 429
    body = response.json()
    assert body["ok"] is False
    assert body["reason"] == "subscription: 7.5% left, below 10%"
    assert body["retry_at"] == "2026-04-02T15:20:00Z"
    assert response["Retry-After"] == str(3 * 3600 + 20 * 60)
    assert [q["ok"] for q in body["quotas"]] == [False, True]


def test_a_rolling_window_comes_back_with_the_refill_ticks_it_needs(api: Client) -> None:
    store_quotas(NOW - timedelta(seconds=40), subscription(10), rolling(95))

    # 5 % free, 20 % wanted: three ticks of 5 %, 15 minutes apart, the first at NEXT_TICK.
    response = guard(api, "provider=synthetic&quota=rolling_5h&min_remaining_percent=20")

    assert response.status_code == 429
    body = response.json()
    assert body["retry_at"] == "2026-04-02T12:37:00Z"
    assert response["Retry-After"] == str(37 * 60)
    # It agrees with the dashboard's own "25 % back at".
    with time_machine.travel(NOW, tick=False):
        card = next(q for q in numbers.current("synthetic")["quotas"] if q["key"] == "rolling_5h")
    quarter = guard(api, "provider=synthetic&quota=rolling_5h&min_remaining_percent=25").json()
    assert quarter["retry_at"] == card["details"]["available_again"]["25"] == "2026-04-02T12:52:00Z"


def test_a_limited_rolling_window_counts_as_empty(api: Client) -> None:
    store_quotas(NOW - timedelta(seconds=40), rolling(60, limited=True))

    response = guard(api, "provider=synthetic&min_remaining_percent=5")

    assert response.status_code == 429
    assert response.json()["reason"] == "rolling_5h: 0% left, below 5%"
    assert response.json()["retry_at"] == "2026-04-02T12:07:00Z"


def test_the_latest_of_several_failing_quotas_is_the_retry_time(api: Client) -> None:
    store_quotas(NOW - timedelta(seconds=40), subscription(199), rolling(99))

    body = guard(api, "provider=synthetic&min_remaining_percent=50").json()

    assert body["retry_at"] == "2026-04-02T15:20:00Z"  # the reset; the window needs 10 ticks, 2 h 22 min
    assert [q["retry_at"] for q in body["quotas"]] == ["2026-04-02T15:20:00Z", "2026-04-02T14:22:00Z"]


def test_one_quota_can_be_guarded_alone(api: Client) -> None:
    store_quotas(NOW - timedelta(seconds=40), subscription(199), rolling(10))

    response = guard(api, "provider=synthetic&quota=rolling_5h")

    assert response.status_code == 200
    assert [q["key"] for q in response.json()["quotas"]] == ["rolling_5h"]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda: None, "stale: synthetic has not been polled yet"),
        (
            lambda: store_quotas(NOW - timedelta(seconds=181), subscription(0)),
            "stale: the last poll of synthetic was 3 min ago, more than 3 poll intervals",
        ),
        (
            lambda: store_failure(NOW - timedelta(days=30)),
            "stale: the last poll of synthetic at 2026-03-03T12:00:00Z failed: unauthorized",
        ),
    ],
    ids=["never-polled", "old", "failed"],
)
def test_stale_numbers_are_never_ok(api: Client, setup, reason: str) -> None:
    setup()

    response = guard(api, "provider=synthetic&min_remaining_percent=0")

    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False and body["stale"] is True and body["retry_at"] is None
    assert body["reason"].startswith(reason)
    assert "Retry-After" not in response


def test_a_failed_poll_after_a_good_one_is_stale_however_recent(api: Client) -> None:
    store_quotas(NOW - timedelta(seconds=70), subscription(0))
    store_failure(NOW - timedelta(seconds=10), outcome="server_error")

    response = guard(api, "provider=synthetic")

    assert response.status_code == 503
    assert response.json()["reason"] == (
        "stale: the last poll of synthetic at 2026-04-02T11:59:50Z failed: server_error (HTTP 502: server error)"
    )


def test_a_storage_error_is_no_failed_poll(api: Client) -> None:
    # Its answers were written late with their own attempts; the latest of those decides.
    store_quotas(NOW - timedelta(seconds=70), subscription(0))
    refused(NOW - timedelta(seconds=10), "synthetic")

    assert guard(api, "provider=synthetic").status_code == 200


def test_three_intervals_is_still_fresh(api: Client) -> None:
    store_quotas(NOW - timedelta(seconds=180), subscription(0))

    assert guard(api, "provider=synthetic").status_code == 200


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "provider: is required: synthetic or zai"),
        ("provider=both", "provider: must be one of synthetic, zai"),
        ("provider=zai&min_remaining_percent=101", "min_remaining_percent: must be a number from 0 to 100"),
        ("provider=zai&min_remaining_percent=-1", "min_remaining_percent: must be a number from 0 to 100"),
        ("provider=zai&min_remaining_percent=ten", "min_remaining_percent: must be a number from 0 to 100"),
        ("provider=zai&min_remaining_percent=nan", "min_remaining_percent: must be a number from 0 to 100"),
        ("provider=zai&quota=Tokens!", "quota: must be a quota key such as subscription or tokens_5h"),
        ("provider=synthetic&quota=tokens_5h", "quota: synthetic reports no quota tokens_5h (known: subscription)"),
    ],
)
def test_bad_parameters_are_a_json_400(api: Client, query: str, message: str) -> None:
    store_quotas(NOW - timedelta(seconds=40), subscription(0))

    response = guard(api, query)

    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_it_needs_authentication(client: Client) -> None:
    assert client.get("/api/guard?provider=zai").status_code == 401


def command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        try:
            call_command("guard", *args, stdout=out)
        except SystemExit as e:
            return int(e.code), out.getvalue()
    return 0, out.getvalue()


def test_the_command_exits_0_when_ok_and_1_when_not(providers_configured) -> None:
    store_quotas(NOW - timedelta(seconds=40), subscription(150), rolling(40))

    assert command("--provider", "synthetic", "--min-remaining-percent", "20") == (
        0,
        "ok: synthetic: subscription 25% left, rolling_5h 60% left\n",
    )
    assert command("--provider", "synthetic", "--min-remaining-percent", "30") == (
        1,
        "not ok: subscription: 25% left, below 30% (retry at 2026-04-02T15:20:00Z)\n",
    )
    code, out = command("--provider", "synthetic", "--json")
    assert code == 0 and out.startswith('{"ok": true, "provider": "synthetic"')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--provider: is required: synthetic or zai"),
        (["--provider", "openai"], "--provider: must be one of synthetic, zai"),
        (["--provider", "zai", "--min-remaining-percent", "200"], "--min-remaining-percent: must be a number"),
        (["--provider", "synthetic", "--quota", "weekly"], "--quota: synthetic reports no quota weekly"),
    ],
)
def test_command_usage_errors_exit_2(args: list[str], message: str) -> None:
    store_quotas(NOW - timedelta(seconds=40), subscription(0))

    with pytest.raises(CommandError) as caught, time_machine.travel(NOW, tick=False):
        call_command("guard", *args)

    assert caught.value.returncode == 2
    assert str(caught.value).startswith(message)


@pytest.mark.django_db(transaction=True)
def test_the_real_process_exits_1_for_stale_numbers_and_2_for_bad_usage() -> None:
    env = base_env(**database_env())

    stale = run_manage("guard", "--provider", "zai", env=env)
    bad = run_manage("guard", "--provider", "zai", "--min-remaining-percent", "x", env=env)
    unknown_flag = run_manage("guard", "--provider", "zai", "--quotas", "x", env=env)

    assert (stale.returncode, stale.stdout) == (1, "not ok: stale: zai has not been polled yet\n")
    assert bad.returncode == 2 and "--min-remaining-percent: must be a number from 0 to 100" in bad.stderr
    assert unknown_flag.returncode == 2 and len(unknown_flag.stderr.strip().splitlines()) == 1
