"""quotas.numbers: status, burn rate and tick math on readings built in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from quotas.models import QuotaReading, ResetCycle
from quotas.numbers import burn_rate, quota_numbers, status_for

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def reading(**fields: Any) -> QuotaReading:
    values: dict[str, Any] = {
        "provider": "zai",
        "captured_at": T0,
        "key": "tokens_5h",
        "label": "Tokens (5h)",
        "kind": "reset",
        "unit": "tokens",
        "used": 100.0,
        "limit": 1000.0,
        "remaining": 900.0,
        "percent": 10.0,
        "details": {},
        "cycle_id": 7,
    }
    values.update(fields)
    return QuotaReading(**values)


@pytest.mark.parametrize(
    ("percent", "status"),
    [
        (None, "unknown"),
        (float("nan"), "unknown"),
        (0.0, "healthy"),
        (49.999, "healthy"),
        (50.0, "warning"),
        (79.99, "warning"),
        (80.0, "danger"),
        (94.9, "danger"),
        (95.0, "critical"),
        (100.0, "critical"),
        (250.0, "critical"),
    ],
)
def test_status_follows_the_thresholds_with_inclusive_lower_bounds(percent: float | None, status: str) -> None:
    assert status_for(percent) == status


def test_the_rate_sums_positive_steps_over_the_time_they_span() -> None:
    recent = [
        (T0 - 40 * MINUTE, 10.0, "tokens", 7),
        (T0 - 20 * MINUTE, 40.0, "tokens", 7),
        (T0 - 10 * MINUTE, 35.0, "tokens", 7),
        (T0, 100.0, "tokens", 7),
    ]
    # 30 + 65 over 40 minutes
    assert burn_rate(reading(), recent) == (142.5, "recent")


def test_the_rate_skips_other_cycles_other_units_and_empty_values() -> None:
    recent = [
        (T0 - 50 * MINUTE, 900.0, "tokens", 6),
        (T0 - 40 * MINUTE, 12.0, "percent", 7),
        (T0 - 30 * MINUTE, None, "tokens", 7),
        (T0 - 30 * MINUTE, 40.0, "tokens", 7),
        (T0 - 20 * MINUTE, 70.0, "tokens", 7),
        (T0, 100.0, "tokens", 7),
    ]
    assert burn_rate(reading(), recent) == (120.0, "recent")


def test_without_two_recent_readings_the_rate_is_the_open_cycles_average() -> None:
    cycle = ResetCycle(started_at=T0 - 2 * 60 * MINUTE, last_reading_at=T0, consumed=300.0, readings_count=3)

    assert burn_rate(reading(), [(T0, 100.0, "tokens", 7)], cycle) == (150.0, "cycle")
    # a cycle that has not lasted yet, or no cycle: no rate rather than a division by zero
    assert burn_rate(reading(), [], ResetCycle(started_at=T0, last_reading_at=T0, consumed=5.0)) == (None, None)
    assert burn_rate(reading(), []) == (None, None)


def test_readings_at_the_same_instant_give_no_rate() -> None:
    assert burn_rate(reading(), [(T0, 1.0, "tokens", 7), (T0, 9.0, "tokens", 7)]) == (None, None)


def test_rolling_windows_ignore_cycles_and_have_no_cycle_fallback() -> None:
    rolling = reading(kind="rolling", key="rolling_5h", cycle_id=None)
    recent = [(T0 - 30 * MINUTE, 80.0, "tokens", None), (T0, 100.0, "tokens", None)]

    assert burn_rate(rolling, recent) == (40.0, "insufficient")
    assert burn_rate(rolling, [], ResetCycle(started_at=T0 - MINUTE, last_reading_at=T0, consumed=5.0)) == (None, None)


def test_a_reset_time_in_the_past_gives_zero_seconds_and_no_projection() -> None:
    numbers = quota_numbers(
        reading(resets_at=T0 - MINUTE),
        [(T0 - 30 * MINUTE, 50.0, "tokens", 7), (T0, 100.0, "tokens", 7)],
        None,
        now=T0,
    )

    assert numbers["seconds_until_reset"] == 0
    assert numbers["rate_per_hour"] == 100.0
    assert (numbers["projected_used"], numbers["projected_percent"]) == (None, None)


def test_a_zero_limit_gives_no_projected_percent_and_no_division_error() -> None:
    numbers = quota_numbers(
        reading(limit=0.0, remaining=0.0, percent=0.0, used=3.0, resets_at=T0 + 60 * MINUTE),
        [(T0 - 60 * MINUTE, 1.0, "tokens", 7), (T0 - 30 * MINUTE, 2.0, "tokens", 7), (T0, 3.0, "tokens", 7)],
        None,
        now=T0,
    )

    assert numbers["projected_used"] == 5.0
    assert numbers["projected_percent"] is None
    assert numbers["exhausted"] is False
    assert numbers["hidden"] is False


def test_the_stored_details_are_not_changed_by_the_tick_math() -> None:
    details = {"limited": False, "next_tick_at": "2026-03-02T12:05:00Z", "tick_percent": 5.0, "regen_amount": 25.0}
    rolling = reading(key="rolling_5h", kind="rolling", unit="requests", used=0.0, limit=500.0, remaining=500.0)
    rolling.details = details

    numbers = quota_numbers(rolling, [], None, now=T0)

    assert numbers["details"]["available_again"] == {"25": None, "50": None, "100": None}
    assert numbers["details"]["seconds_until_next_tick"] == 300
    assert "available_again" not in details


def test_a_rolling_window_known_only_by_share_counts_ticks_in_points() -> None:
    weekly = reading(
        key="weekly_credits",
        kind="rolling",
        unit="usd",
        used=None,
        limit=None,
        remaining=None,
        percent=90.0,
        details={"limited": False, "next_tick_at": "2026-03-02T13:00:00Z", "tick_percent": 2.0, "regen_amount": None},
    )

    details = quota_numbers(weekly, [], None, now=T0)["details"]

    # 10 % free: 25 % after 8 ticks, 50 % after 20, 100 % after 45, every 201.6 minutes
    assert details["tick_interval_seconds"] == 12096
    assert details["regen_per_hour"] == round(2 / 3.36, 2)
    assert details["available_again"] == {
        "25": "2026-03-03T12:31:12Z",
        "50": "2026-03-05T04:50:24Z",
        "100": "2026-03-08T16:50:24Z",
    }


def test_an_unknown_rolling_window_gets_no_tick_math() -> None:
    other = reading(key="daily_thing", kind="rolling", details={"tick_percent": 5.0, "next_tick_at": None})

    assert "tick_interval_seconds" not in quota_numbers(other, [], None, now=T0)["details"]
