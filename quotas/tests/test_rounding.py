"""quotas.rounding: one rule per kind of number, and the API bodies that follow it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from conftest import fixture_json, store_payload
from quotas import history, numbers, reports, rounding

AT = datetime(2026, 4, 6, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (154.3, "requests", 154.3),
        (0.1 + 0.2, "requests", 0.1 + 0.2),  # as reported, even the float's own fuzz
        (200112618.0, "tokens", 200112618.0),
        (12.799999999999999, "usd", 12.8),
        (53.333333, "percent", 53.33),
        (None, "usd", None),
        (float("nan"), "calls", None),
    ],
)
def test_reported_amounts_keep_counts_and_round_money_and_shares(value, unit, expected) -> None:
    assert rounding.reported(value, unit) == expected


def test_shares_and_derived_amounts_have_two_decimals_and_durations_whole_seconds() -> None:
    assert rounding.percent(11.429629629) == 11.43
    assert rounding.derived(0.1 + 0.2) == 0.3
    assert rounding.derived(3_000_000.123456) == 3_000_000.12
    assert rounding.seconds(3599.6) == 3600
    assert rounding.derived(float("inf")) is None
    assert rounding.percent(None) is None


@pytest.mark.django_db
def test_api_bodies_round_by_kind() -> None:
    payload = fixture_json("synthetic/v2_free_tool_calls.json")
    # 154.3 of 335 requests, then steps of 0.1 and 0.2: 0.30000000000000004 in floats
    for minutes, requests in ((0, 154.3), (10, 154.4), (20, 154.6)):
        payload["subscription"]["requests"] = requests
        store_payload("synthetic", copy.deepcopy(payload), AT + minutes * MINUTE)
    now = AT + 20 * MINUTE

    subscription = next(q for q in numbers.current("synthetic", now=now)["quotas"] if q["key"] == "subscription")
    assert subscription["used"] == 154.6
    # 154.6 / 335
    assert subscription["percent"] == 46.15
    # 0.3 in 20 minutes
    assert subscription["rate_per_hour"] == 0.9
    assert subscription["projected_percent"] == round(subscription["projected_percent"], 2)

    cycle = reports.cycles("synthetic", "subscription", now=now)["cycles"][0]
    assert (cycle["peak_used"], cycle["consumed"], cycle["duration_seconds"]) == (154.6, 0.3, 1200)
    assert reports.summary("synthetic")["quotas"][-1]["total_consumed"] == 0.3

    series = next(s for s in history.history("synthetic", "1h", now=now)["series"] if s["key"] == "subscription")
    assert [point[1:] for point in series["points"]] == [[46.06, 154.3], [46.09, 154.4], [46.15, 154.6]]


@pytest.mark.django_db
def test_money_is_in_cents() -> None:
    at = datetime(2026, 8, 25, 1, 10, tzinfo=UTC)
    payload = fixture_json("synthetic/v3_rolling_windows.json")
    payload["weeklyTokenLimit"].update(maxCredits="$24.00", remainingCredits="$11.2049")
    store_payload("synthetic", payload, at)

    weekly = next(q for q in numbers.current("synthetic", now=at)["quotas"] if q["key"] == "weekly_credits")

    assert (weekly["limit"], weekly["remaining"], weekly["used"]) == (24.0, 11.2, 12.8)
