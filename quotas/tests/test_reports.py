"""quotas.reports: the cycles, summary, sessions, polls and providers bodies of the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from conftest import SYNTHETIC_KEY, store_failure, store_quotas
from quotas import reports
from quotas.locking import PollLock
from quotas.models import PollAttempt, PollRequest, PollSession, QuotaReading, ResetCycle
from quotas.providers.base import Quota

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

pytestmark = pytest.mark.django_db


def subscription(used: float, limit: float = 1000) -> Quota:
    return Quota(key="subscription", label="Subscription", kind="reset", unit="requests", used=used, limit=limit)


def rolling(used: float) -> Quota:
    return Quota(key="rolling_5h", label="Requests (5h rolling)", kind="rolling", unit="requests", used=used, limit=500)


def poll(at: datetime, *quotas: Quota, provider: str = "synthetic", session: PollSession | None = None) -> PollAttempt:
    return store_quotas(at, *quotas, provider=provider, session=session, latency_ms=120)


def failed_poll(at: datetime, provider: str = "synthetic", session: PollSession | None = None) -> PollAttempt:
    return store_failure(at, provider, session=session)


def three_cycles() -> None:
    """Subscription: cycles 1 and 2 completed, 3 running; readings from T0 to T0+3h."""
    poll(T0, subscription(100), rolling(10))  # first cycle begins at the first poll
    poll(T0 + 30 * MINUTE, subscription(400.5))
    poll(T0 + HOUR, subscription(20))  # reset: consumed 300.5 in cycle 1, peak 400.5
    poll(T0 + 90 * MINUTE, subscription(820))
    poll(T0 + 2 * HOUR, subscription(50))  # reset: cycle 2 consumed 20 + 800, peak 820
    poll(T0 + 3 * HOUR, subscription(80), rolling(30))


def test_cycles_are_listed_newest_first_with_duration_and_rate(django_assert_num_queries) -> None:
    three_cycles()

    # 1. the cycles, newest first, limited
    with django_assert_num_queries(1):
        answer = reports.cycles("synthetic", "subscription", 50, now=T0 + 4 * HOUR)

    assert answer == {
        "provider": "synthetic",
        "cycles": [
            {
                "id": answer["cycles"][0]["id"],
                "quota": "subscription",
                "unit": "requests",
                "started_at": "2026-03-02T14:00:00Z",
                "ended_at": None,
                "active": True,
                "duration_seconds": 7200.0,
                "limit": 1000.0,
                "peak_used": 80.0,
                "consumed": 80.0,
                "rate_per_hour": 40.0,
                "resets_at": None,
            },
            {
                "id": answer["cycles"][1]["id"],
                "quota": "subscription",
                "unit": "requests",
                "started_at": "2026-03-02T13:00:00Z",
                "ended_at": "2026-03-02T14:00:00Z",
                "active": False,
                "duration_seconds": 3600.0,
                "limit": 1000.0,
                "peak_used": 820.0,
                "consumed": 820.0,
                "rate_per_hour": 820.0,
                "resets_at": None,
            },
            {
                "id": answer["cycles"][2]["id"],
                "quota": "subscription",
                "unit": "requests",
                "started_at": "2026-03-02T12:00:00Z",
                "ended_at": "2026-03-02T13:00:00Z",
                "active": False,
                "duration_seconds": 3600.0,
                "limit": 1000.0,
                "peak_used": 400.5,
                "consumed": 300.5,
                "rate_per_hour": 300.5,
                "resets_at": None,
            },
        ],
    }


def test_cycles_honour_the_limit_the_quota_and_the_provider() -> None:
    three_cycles()
    poll(T0, Quota(key="tokens_5h", label="Tokens (5h)", kind="reset", unit="tokens", percent=5.0), provider="zai")

    assert [c["started_at"] for c in reports.cycles("synthetic", None, 2, now=T0 + 4 * HOUR)["cycles"]] == [
        "2026-03-02T14:00:00Z",
        "2026-03-02T13:00:00Z",
    ]
    assert [c["quota"] for c in reports.cycles("zai", None, 50)["cycles"]] == ["tokens_5h"]
    assert reports.cycles("synthetic", "search_hourly", 50) == {"provider": "synthetic", "cycles": []}


def test_a_cycle_that_lasted_no_time_has_no_rate() -> None:
    cycle = ResetCycle.objects.create(provider="synthetic", quota="subscription", started_at=T0, ended_at=T0)

    (row,) = reports.cycles("synthetic", None, 10)["cycles"]

    assert (row["id"], row["duration_seconds"], row["rate_per_hour"]) == (cycle.id, 0.0, None)


def test_the_summary_lists_every_quota_with_cycle_figures(django_assert_num_queries) -> None:
    three_cycles()

    # 1. quotas with first and last reading  2. their newest readings  3. cycle aggregates per quota
    # 4-5. each quota's first hourly roll-up (an index seek each)
    with django_assert_num_queries(5):
        answer = reports.summary("synthetic")

    assert answer == {
        "provider": "synthetic",
        "quotas": [
            {
                "key": "rolling_5h",
                "label": "Requests (5h rolling)",
                "kind": "rolling",
                "unit": "requests",
                "completed_cycles": 0,
                "avg_consumed_per_cycle": None,
                "max_consumed_per_cycle": None,
                "avg_peak_percent": None,
                "total_consumed": None,
                "tracking_since": "2026-03-02T12:00:00Z",
            },
            {
                "key": "subscription",
                "label": "Subscription",
                "kind": "reset",
                "unit": "requests",
                "completed_cycles": 2,
                "avg_consumed_per_cycle": (300.5 + 820.0) / 2,
                "max_consumed_per_cycle": 820.0,
                # 61.025, to 2 decimals (which way the half goes is the float's business)
                "avg_peak_percent": pytest.approx((40.05 + 82.0) / 2, abs=0.005),
                "total_consumed": 300.5 + 820.0 + 80.0,
                "tracking_since": "2026-03-02T12:00:00Z",
            },
        ],
    }
    share = answer["quotas"][1]["avg_peak_percent"]
    assert round(share, 2) == share


def test_tracking_since_is_the_oldest_reading_or_cycle_not_the_newest() -> None:
    three_cycles()
    # A cycle older than any kept reading (the readings' retention dropped them)
    ResetCycle.objects.create(
        provider="synthetic", quota="subscription", started_at=T0 - 48 * HOUR, ended_at=T0 - 47 * HOUR, consumed=5
    )

    by_key = {q["key"]: q for q in reports.summary("synthetic")["quotas"]}

    assert by_key["subscription"]["tracking_since"] == "2026-02-28T12:00:00Z"
    assert by_key["subscription"]["completed_cycles"] == 3
    assert by_key["rolling_5h"]["tracking_since"] == "2026-03-02T12:00:00Z"


def test_the_summary_of_a_provider_without_data_is_empty() -> None:
    three_cycles()
    assert reports.summary("zai") == {"provider": "zai", "quotas": []}


def test_sessions_are_listed_newest_first_with_their_quotas(django_assert_num_queries) -> None:
    first = PollSession.objects.create(provider="synthetic", interval_seconds=60, started_at=T0)
    poll(T0, subscription(100), session=first)
    poll(T0 + MINUTE, subscription(130.5), session=first)
    failed_poll(T0 + 2 * MINUTE, session=first)
    first.close(T0 + 3 * MINUTE)
    second = PollSession.objects.create(provider="zai", interval_seconds=30, started_at=T0 + HOUR)

    # 1. the sessions, newest first, limited
    with django_assert_num_queries(1):
        answer = reports.sessions(None, 50, now=T0 + 2 * HOUR)

    assert answer == {
        "sessions": [
            {
                "id": second.id,
                "provider": "zai",
                "started_at": "2026-03-02T13:00:00Z",
                "ended_at": None,
                "active": True,
                "duration_seconds": 3600.0,
                "interval_seconds": 30,
                "polls_ok": 0,
                "polls_failed": 0,
                "quotas": {},
            },
            {
                "id": first.id,
                "provider": "synthetic",
                "started_at": "2026-03-02T12:00:00Z",
                "ended_at": "2026-03-02T12:03:00Z",
                "active": False,
                "duration_seconds": 180.0,
                "interval_seconds": 60,
                "polls_ok": 2,
                "polls_failed": 1,
                "quotas": {"subscription": {"peak_used": 130.5, "consumed": 30.5}},
            },
        ]
    }
    assert [s["id"] for s in reports.sessions("synthetic", 50)["sessions"]] == [first.id]
    assert [s["id"] for s in reports.sessions(None, 1)["sessions"]] == [second.id]
    assert reports.sessions("synthetic", 50)["sessions"][0]["quotas"] == answer["sessions"][1]["quotas"]


def test_no_sessions_is_an_empty_list() -> None:
    assert reports.sessions(None, 50) == {"sessions": []}


def test_polls_are_listed_newest_first(django_assert_num_queries) -> None:
    ok = poll(T0, subscription(1), Quota(key="x", label="X", kind="reset", unit="calls", used=1, limit=2))
    bad = failed_poll(T0 + MINUTE, provider="zai")

    # 1. the attempts, newest first, limited
    with django_assert_num_queries(1):
        answer = reports.polls(None, 50)

    assert answer == {
        "polls": [
            {
                "id": bad.id,
                "provider": "zai",
                "at": "2026-03-02T12:01:00Z",
                "outcome": "unauthorized",
                "drift": False,
                "latency_ms": 80,
                "message": "HTTP 401: the API key was rejected",
            },
            {
                "id": ok.id,
                "provider": "synthetic",
                "at": "2026-03-02T12:00:00Z",
                "outcome": "ok",
                "drift": False,
                "latency_ms": 120,
                "message": "2 quotas",
            },
        ]
    }
    assert [p["id"] for p in reports.polls("synthetic", 50)["polls"]] == [ok.id]
    assert [p["id"] for p in reports.polls(None, 1)["polls"]] == [bad.id]
    assert reports.polls("zai", 50)["polls"][0]["outcome"] == "unauthorized"


def test_providers_show_configuration_and_the_latest_poll(settings, django_assert_num_queries) -> None:
    settings.SYNTHETIC_API_KEY = SYNTHETIC_KEY
    settings.ZAI_API_KEY = ""
    settings.SYNTRACK_POLL_INTERVAL = 60
    poll(T0, subscription(1))
    failed_poll(T0 + MINUTE)

    # per known provider: its latest attempt, its latest successful one, its latest storage error;
    # then the open sessions and the pending poll requests (PostgreSQL: the lock too)
    with django_assert_num_queries(2 * 3 + 2 + (connection.vendor == "postgresql")):
        answer = reports.providers(now=T0 + 2 * MINUTE)

    assert answer == {
        "providers": [
            {
                "id": "synthetic",
                "name": "Synthetic",
                "configured": True,
                "last_poll_at": "2026-03-02T12:01:00Z",
                "last_status": "unauthorized",
                "last_success_at": "2026-03-02T12:00:00Z",
                "interval_seconds": 60,
                "stale": False,
                "poller_running": False,
                "poll_requested_at": None,
                "last_storage_error": None,
            },
            {
                "id": "zai",
                "name": "Z.ai",
                "configured": False,
                "last_poll_at": None,
                "last_status": None,
                "last_success_at": None,
                "interval_seconds": 60,
                "stale": True,
                "poller_running": False,
                "poll_requested_at": None,
                "last_storage_error": None,
            },
        ]
    }


def test_a_provider_is_stale_once_its_last_success_is_older_than_two_intervals(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 60
    poll(T0, subscription(1))
    failed_poll(T0 + MINUTE)
    failed_poll(T0 + 2 * MINUTE)

    def synthetic(now: datetime) -> dict:
        return reports.providers(now=now)["providers"][0]

    assert synthetic(T0 + 2 * MINUTE)["stale"] is False  # exactly two intervals: not yet
    assert synthetic(T0 + 2 * MINUTE + timedelta(seconds=1))["stale"] is True
    assert synthetic(T0 + 2 * MINUTE)["last_success_at"] == "2026-03-02T12:00:00Z"


def test_the_running_pollers_interval_decides_staleness_and_says_which_providers_it_polls(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 60
    poll(T0, subscription(1))
    poll(T0, provider="zai")
    PollSession.objects.create(provider="synthetic", interval_seconds=600, started_at=T0)
    now = T0 + 5 * MINUTE

    # Without a poller the open session is an orphan: the configured interval counts.
    before = reports.providers(now=now)["providers"]
    assert [(p["interval_seconds"], p["stale"], p["poller_running"]) for p in before] == [
        (60, True, False),
        (60, True, False),
    ]

    with PollLock("test poller", wait=0):
        running = reports.providers(now=now)["providers"]
    # A poller started with --provider synthetic: its session says so.
    assert [(p["interval_seconds"], p["stale"], p["poller_running"]) for p in running] == [
        (600, False, True),
        (60, True, False),
    ]


def test_a_pending_poll_request_is_shown_until_a_poll_answers_it() -> None:
    poll(T0, subscription(1))
    PollRequest.ask("synthetic", now=T0 + MINUTE)

    assert [p["poll_requested_at"] for p in reports.providers()["providers"]] == ["2026-03-02T12:01:00Z", None]
    PollRequest.answered("synthetic", T0 + MINUTE + timedelta(seconds=2))
    assert [p["poll_requested_at"] for p in reports.providers()["providers"]] == [None, None]


def test_a_storage_error_of_the_last_day_is_shown_though_later_polls_succeeded() -> None:
    # As the poller records an outage (quotas/backlog.py): the storage_error is dated at the first
    # refused write, and the answers held meanwhile are written with their own, later, times.
    PollAttempt.objects.create(provider="synthetic", at=T0 - HOUR, outcome="storage_error", message="older")
    PollAttempt.objects.create(provider="synthetic", at=T0, outcome="storage_error", message="refused for 66 s")
    poll(T0 + MINUTE, subscription(1))
    poll(T0 + 2 * MINUTE, subscription(2))

    def synthetic(now: datetime) -> dict:
        return reports.providers(now=now)["providers"][0]

    shown = synthetic(T0 + 3 * MINUTE)
    assert shown["last_status"] == "ok"
    assert shown["last_storage_error"] == {"at": "2026-03-02T12:00:00Z", "message": "refused for 66 s"}
    assert synthetic(T0 + 24 * HOUR)["last_storage_error"]["at"] == "2026-03-02T12:00:00Z"
    assert synthetic(T0 + 24 * HOUR + timedelta(seconds=1))["last_storage_error"] is None
    assert reports.providers(now=T0)["providers"][1]["last_storage_error"] is None  # zai's own


@pytest.mark.parametrize("limit", [0, 501])
def test_a_limit_outside_1_to_500_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        reports.polls(None, limit)
    with pytest.raises(ValueError, match="limit"):
        reports.cycles("synthetic", None, limit)


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        reports.summary("openai")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
def test_the_summary_seeks_each_quotas_ends_instead_of_scanning_the_readings() -> None:
    three_cycles()
    with connection.cursor() as cursor:
        sql = reports.READING_ENDS_SQL.format(table=QuotaReading._meta.db_table)
        cursor.execute("EXPLAIN QUERY PLAN " + sql, ["synthetic"] * 4)
        plan = [row[-1] for row in cursor.fetchall()]

    readings = [step for step in plan if "reading_quota_history" in step or "quotas_quotareading" in step]
    # the first key, each next key, each key's oldest and newest reading: index seeks, no scan
    assert len(readings) == 4
    assert all(step.startswith("SEARCH") and "INDEX reading_quota_history" in step for step in readings)
