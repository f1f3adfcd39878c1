"""The data ``manage.py demo`` makes holds the same invariants as polled data.

Two days are simulated once for the module (committed, then wiped at its end):
every test here only reads them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import time_machine
from django.db.models import Count, F

from quotas import demo
from quotas.invariants import cycle_violations
from quotas.models import PollAttempt, PollSession, QuotaReading, QuotaRollup, ResetCycle, Setting, Snapshot

END = datetime(2026, 3, 11, 17, 30, tzinfo=UTC)
INTERVAL = 60
SYNTHETIC_KEYS = {"subscription", "search_hourly", "free_tool_calls", "rolling_5h", "weekly_credits"}
ZAI_KEYS = {"tokens_5h", "tokens_weekly", "time_monthly"}
ROLLING_KEYS = {"rolling_5h", "weekly_credits"}


@pytest.fixture(scope="module")
def two_days(django_db_setup, django_db_blocker):
    """Two days of demo history, filled once for the module's read-only checks."""
    with django_db_blocker.unblock():
        counts = demo.fill(2, INTERVAL, end=END, parallel=False)
    yield counts
    with django_db_blocker.unblock():
        demo.wipe()
        Setting.objects.filter(key=demo.MARKER).delete()


@pytest.fixture
def filled(two_days, db):
    return two_days


# invariants shared with polled data


def test_every_provider_reports_every_window_kind(filled) -> None:
    keys = defaultdict(set)
    for provider, key in QuotaReading.objects.values_list("provider", "key").distinct():
        keys[provider].add(key)

    assert keys["synthetic"] >= SYNTHETIC_KEYS
    assert keys["zai"] >= ZAI_KEYS
    assert set(Snapshot.objects.filter(provider="zai", usable=True).values_list("plan", flat=True)) == {"pro"}
    tools = QuotaReading.objects.filter(provider="zai", key="time_monthly").latest("captured_at").details["tools"]
    assert {tool["name"] for tool in tools} == {"search-prime", "web-reader", "zread"}
    weekly = QuotaReading.objects.filter(key="weekly_credits").latest("captured_at")
    assert weekly.unit == "usd" and weekly.limit == 24.0


def test_cycles_are_consistent(filled) -> None:
    # One open cycle per quota at most, none overlapping, counts right (quotas.invariants, as tools/soak.py checks).
    assert cycle_violations() == []
    open_per_quota = (
        ResetCycle.objects.filter(ended_at__isnull=True).values("provider", "quota").annotate(n=Count("id"))
    )
    assert {row["n"] for row in open_per_quota} == {1}


def test_readings_lie_within_their_cycle(filled) -> None:
    assert QuotaReading.objects.filter(cycle__isnull=False).exists()
    assert [v for v in cycle_violations() if "outside its cycle" in v] == []


def test_windows_reset_at_the_right_times(filled) -> None:
    # Subscription: every 5 hours on its own grid; a day: at the same time of day.
    subscription = ResetCycle.objects.filter(provider="synthetic", quota="subscription", ended_at__isnull=False)
    ends = sorted(subscription.values_list("ended_at", flat=True))
    assert len(ends) >= 5
    assert {(b - a) % timedelta(hours=5) for a, b in pairwise(ends)} == {timedelta(0)}
    tokens = ResetCycle.objects.filter(provider="zai", quota="tokens_5h", ended_at__isnull=False)
    assert tokens.count() >= 5


def test_rolling_windows_have_no_cycles(filled) -> None:
    assert not ResetCycle.objects.filter(quota__in=ROLLING_KEYS).exists()
    assert not QuotaReading.objects.filter(key__in=ROLLING_KEYS, cycle__isnull=False).exists()
    rolling = QuotaReading.objects.filter(key="rolling_5h").latest("captured_at")
    assert rolling.details["tick_percent"] == 5.0 and "limited" in rolling.details


def test_every_reading_has_its_snapshot(filled) -> None:
    orphans = QuotaReading.objects.exclude(snapshot__provider=F("provider"))
    assert not orphans.exists()
    mismatched = QuotaReading.objects.exclude(snapshot__captured_at=F("captured_at"))
    assert not mismatched.exists()
    assert not Snapshot.objects.filter(usable=True, readings__isnull=True).exists()


def test_sessions_are_closed_and_count_their_polls(filled) -> None:
    sessions = PollSession.objects.all()
    assert sessions.count() >= 6  # a few restarts and an outage, per provider
    assert not sessions.filter(ended_at__isnull=True).exists()
    attempts = dict(PollAttempt.objects.values_list("session").annotate(n=Count("id")))
    for session in sessions:
        assert session.ended_at >= session.started_at
        assert session.polls_ok + session.polls_failed == attempts[session.pk]
        assert session.ended_at == session.last_success_at
    assert PollAttempt.objects.filter(session__isnull=True).count() == 0


def test_failed_polls_are_recorded_as_attempts(filled) -> None:
    for provider in ("synthetic", "zai"):
        outcomes = set(PollAttempt.objects.filter(provider=provider).values_list("outcome", flat=True))
        assert {"ok", "server_error", "network_error", "rate_limited", "drift"} <= outcomes
        assert PollAttempt.objects.filter(provider=provider, outcome="ok", drift=True).count() == 1
    failed = PollAttempt.objects.exclude(outcome__in=["ok", "drift"])
    assert failed.exists() and not failed.filter(snapshot__isnull=False).exists()
    drifted = Snapshot.objects.filter(usable=False)
    assert drifted.count() == 2 and not drifted.filter(readings__isnull=False).exists()
    assert all(snapshot.raw_body() for snapshot in drifted)


def test_the_poller_was_down_for_hours_and_backed_off(filled) -> None:
    times = list(PollAttempt.objects.filter(provider="synthetic").order_by("at").values_list("at", flat=True))
    gaps = [b - a for a, b in pairwise(times)]
    assert max(gaps) > timedelta(hours=1)
    # rate limited: Retry-After (300 s) honoured
    assert any(timedelta(seconds=299) < gap < timedelta(seconds=302) for gap in gaps)


def test_raw_bodies_are_kept_as_configured(filled) -> None:
    # Two days, within the default 30 days of raw bodies: every poll keeps its body.
    usable = Snapshot.objects.filter(usable=True)
    assert usable.exists() and not usable.filter(raw__isnull=True).exists()
    latest = usable.filter(provider="synthetic").latest("captured_at")
    assert set(json.loads(latest.raw_body())) >= {
        "subscription",
        "rollingFiveHourLimit",
        "weeklyTokenLimit",
    }


def test_the_work_day_is_busier_than_the_night(filled) -> None:
    night = QuotaReading.objects.filter(key="subscription", captured_at__hour__in=[2, 3, 4])
    day = QuotaReading.objects.filter(key="subscription", captured_at__hour__in=[14, 15, 16])
    assert max(r.used for r in day) > max(r.used for r in night)


def test_counts_match_the_database_and_rollups_exist(filled) -> None:
    assert filled.snapshots == Snapshot.objects.count()
    assert filled.readings == QuotaReading.objects.count()
    assert filled.attempts == PollAttempt.objects.count()
    assert filled.cycles == ResetCycle.objects.count()
    assert filled.rollups == QuotaRollup.objects.count() > 0
    marker = Setting.objects.get(key=demo.MARKER).value
    assert datetime.fromisoformat(marker["until"]) == END + demo.MARGIN
    assert Snapshot.objects.latest("captured_at").captured_at < END + demo.MARGIN


def test_the_api_answers_from_demo_data(filled, api) -> None:
    with time_machine.travel(END + timedelta(minutes=1), tick=False):
        history = api.get("/api/history", {"provider": "synthetic", "range": "24h"}).json()
        insights = api.get("/api/insights", {"provider": "zai"}).json()
    assert {s["key"] for s in history["series"]} >= SYNTHETIC_KEYS
    assert all(series["points"] for series in history["series"])
    assert insights["insights"]
