"""Past the readings' retention: what the insights, the summary and the demo make of roll-ups alone.

Ten days of demo polls every two minutes, with everything kept, are the
reference; retention then prunes them, and the answers are held against it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from quotas import demo, insights, reports, retention
from quotas.models import PollAttempt, QuotaReading, QuotaRollup, Setting, Snapshot

END = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
DAYS = 10
INTERVAL = 120
KEEP_ALL = retention.Horizons(raw=None, readings=None, attempts=None, five_minute_rollups=None, hourly_rollups=None)
# A short retention, so ten days see every kind of row pruned: readings 3 days, raw
# bodies 2, attempts 5, 5-minute roll-ups 4.
SHORT = retention.Horizons(
    raw=END - timedelta(days=2),
    readings=END - timedelta(days=3),
    attempts=END - timedelta(days=5),
    five_minute_rollups=END - timedelta(days=4),
    hourly_rollups=None,
)


def fill(horizons: retention.Horizons) -> None:
    demo.fill(DAYS, INTERVAL, end=END, parallel=False, horizons=horizons)


@pytest.fixture
def wiped(db):
    yield
    demo.wipe()
    Setting.objects.filter(key=demo.MARKER).delete()


def answers() -> dict:
    """Everything that reads long ranges, as the API would answer at END."""
    with time_machine.travel(END + timedelta(seconds=30), tick=False):
        now = END + timedelta(seconds=30)
        found = {}
        for provider in ("synthetic", "zai"):
            found[f"insights {provider}"] = insights.insights(provider, range_key="30d")
            found[f"summary {provider}"] = reports.summary(provider)
            for key in QuotaRollup.objects.filter(provider=provider).values_list("key", flat=True).distinct():
                # Sums in another order: equal to the last few bits.
                consumed = insights.consumed_between(provider, key, now - timedelta(days=30), now)
                found[f"{provider} {key} 30d"] = round(consumed, 6)
        found["tools 30d"] = insights.tool_calls_between("zai", now - timedelta(days=30), now)
        return found


def steps_from(next_hour: datetime, now: datetime) -> dict[tuple[str, str], float]:
    """Per rolled-up quota, from the readings: every step from ``next_hour`` on, the one into it included."""
    expected = {}
    for provider, key in QuotaRollup.objects.values_list("provider", "key").distinct():
        rows = list(
            QuotaReading.objects.filter(provider=provider, key=key, captured_at__lte=now, percent__isnull=False)
            .order_by("captured_at", "id")
            .values_list("captured_at", "used", "percent", "cycle_id", "unit")
        )
        total, previous = 0.0, None
        for at, used, percent, cycle, unit in rows:
            level = used if used is not None else percent
            if previous is not None and at >= next_hour:
                p_level, p_cycle, p_unit = previous
                if cycle is not None and p_cycle is not None and cycle != p_cycle:
                    total += level
                elif unit == p_unit:
                    total += max(level - p_level, 0.0)
            previous = (level, cycle, unit)
        expected[(provider, key)] = total
    return expected


def test_insights_and_summary_answer_alike_once_the_old_readings_are_gone(wiped, settings) -> None:
    settings.SYNTRACK_READING_RETENTION_DAYS = 8  # the default
    fill(KEEP_ALL)
    before = answers()
    # A range starting 9 days back, mid-hour: past the readings once pruned.
    start = END - timedelta(days=9, minutes=20)
    next_hour = start.replace(minute=0) + timedelta(hours=1)
    whole_hours = steps_from(next_hour, END)

    retention.Pruner(now=END).run()
    eight_days = END - timedelta(days=8)
    assert not QuotaReading.objects.filter(captured_at__lt=eight_days).exists()
    assert QuotaReading.objects.exists() and QuotaRollup.objects.filter(start__lt=eight_days).exists()

    # The 30-day range reaches back past the tracked span: the first roll-up
    # counts from the first reading, as the readings did; the 7-day ones are
    # within the readings' 8 days; tracking_since comes from the roll-ups.
    assert answers() == before
    assert before["tools 30d"].by_tool and before["zai time_monthly 30d"] > 0
    # A range starting past the readings counts the whole hours after its start
    # (the partial hour before is left out; the step into the first one is counted).
    for (provider, key), total in whole_hours.items():
        assert insights.consumed_between(provider, key, start, END) == pytest.approx(total, rel=1e-9, abs=1e-6)
    assert any(whole_hours.values())


def rows(model, *exclude: str) -> list[tuple]:
    names = [f.attname for f in model._meta.concrete_fields if f.attname not in {"id", *exclude}]
    return sorted(tuple(str(v) for v in row) for row in model.objects.values_list(*names))


def test_the_demo_keeps_what_retention_would_have_left(wiped) -> None:
    fill(KEEP_ALL)
    retention.Pruner(now=END, horizons=SHORT, vacuum=False).run()
    # Ids differ between the two runs; what the rows say does not.
    pruned = {
        "snapshots": rows(Snapshot),
        "readings": rows(QuotaReading, "snapshot_id", "cycle_id"),
        "attempts": rows(PollAttempt, "snapshot_id", "session_id"),
        "rollups": rows(QuotaRollup, "last_cycle_id"),
    }
    fill(SHORT)
    made = {
        "snapshots": rows(Snapshot),
        "readings": rows(QuotaReading, "snapshot_id", "cycle_id"),
        "attempts": rows(PollAttempt, "snapshot_id", "session_id"),
        "rollups": rows(QuotaRollup, "last_cycle_id"),
    }
    for name in pruned:
        assert len(made[name]) == len(pruned[name]), name
        assert made[name] == pruned[name], name
    assert QuotaRollup.objects.filter(resolution=3600, start__lt=SHORT.readings).exists()
    assert not QuotaRollup.objects.filter(resolution=300, start__lt=SHORT.five_minute_rollups).exists()
