"""quotas.numbers.current(): the per-provider body of GET /api/current, from stored polls."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import CURRENT_QUOTA_FIELDS, fixture_json, store_payload
from lib.timefmt import isostring
from quotas import numbers
from quotas.models import PollAttempt
from quotas.numbers import current

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
M = 1_000_000

pytestmark = pytest.mark.django_db


def poll(provider: str, payload: dict[str, Any], at: datetime) -> PollAttempt:
    return store_payload(provider, payload, at)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def zai(tokens_used: float, resets_at: datetime, *, calls: float = 69) -> dict[str, Any]:
    """The v2 Z.ai payload (pro plan, 80M tokens per 5 h) with the given 5-hour usage."""
    payload = fixture_json("zai/v2_weekly_and_level.json")
    tokens_5h = payload["data"]["limits"][0]
    tokens_5h.update(currentValue=tokens_used, nextResetTime=ms(resets_at))
    del tokens_5h["remaining"], tokens_5h["percentage"]
    payload["data"]["limits"][2]["currentValue"] = calls
    return payload


def quota(body: dict[str, Any], key: str) -> dict[str, Any]:
    return next(q for q in body["quotas"] if q["key"] == key)


def test_before_the_first_poll_it_has_no_capture_and_no_quotas() -> None:
    assert current("zai", now=T0) == {
        "provider": "zai",
        "captured_at": None,
        "plan": None,
        "drift": False,
        "last_poll": None,
        "quotas": [],
    }


def test_it_lists_every_quota_of_the_latest_snapshot_with_the_contract_fields() -> None:
    poll("zai", fixture_json("zai/v2_weekly_and_level.json"), T0)

    body = current("zai", now=T0 + MINUTE)

    assert body["provider"] == "zai"
    assert body["captured_at"] == "2026-03-02T12:00:00Z"
    assert body["plan"] == "pro"
    assert body["drift"] is False
    assert body["last_poll"] == {"at": "2026-03-02T12:00:00Z", "outcome": "ok", "message": "3 quotas"}
    assert [q["key"] for q in body["quotas"]] == ["tokens_5h", "tokens_weekly", "time_monthly"]
    tokens = quota(body, "tokens_5h")
    assert {k: tokens[k] for k in ("label", "kind", "unit", "used", "limit", "remaining", "percent", "status")} == {
        "label": "Tokens (5h)",
        "kind": "reset",
        "unit": "tokens",
        "used": 9600000.0,
        "limit": 80000000.0,
        "remaining": 70400000.0,
        "percent": 12.0,
        "status": "healthy",
    }
    # nextResetTime 1788455420775 ms
    assert tokens["resets_at"] == "2026-09-03T17:10:20Z"
    assert quota(body, "tokens_weekly")["status"] == "warning"
    assert quota(body, "time_monthly")["details"]["tools"] == [
        {"name": "search-prime", "used": 40.0},
        {"name": "web-reader", "used": 21.0},
        {"name": "zread", "used": 8.0},
    ]
    assert all(set(q) >= CURRENT_QUOTA_FIELDS for q in body["quotas"])


def test_a_single_reading_has_no_rate_and_no_projection() -> None:
    poll("zai", zai(4 * M, T0 + timedelta(hours=3)), T0)

    tokens = quota(current("zai", now=T0), "tokens_5h")

    assert (tokens["rate_per_hour"], tokens["rate_basis"]) == (None, None)
    assert (tokens["projected_used"], tokens["projected_percent"]) == (None, None)
    assert tokens["seconds_until_reset"] == 3 * 3600


def test_the_burn_rate_comes_from_the_readings_of_the_last_hour_and_projects_to_the_reset() -> None:
    resets = T0 + timedelta(hours=3)
    # The reading at -90 min lies outside the hour; its 0.5M → 1M step must not count.
    for minutes, used in ((-90, 0.5 * M), (-60, 1 * M), (-30, 2 * M), (0, 4 * M)):
        poll("zai", zai(used, resets), T0 + minutes * MINUTE)

    tokens = quota(current("zai", now=T0 + 30 * MINUTE), "tokens_5h")

    # (1M + 2M) over the hour from -60 to 0
    assert (tokens["rate_per_hour"], tokens["rate_basis"]) == (3 * M, "recent")
    # 4M + 3M/h × 3 h (from the reading to the reset)
    assert tokens["projected_used"] == 13 * M
    assert tokens["projected_percent"] == 16.25
    assert tokens["seconds_until_reset"] == 9000
    # 76M left at 3M/h: 25 h, long after the reset
    assert (tokens["exhausts_at"], tokens["seconds_until_exhausted"]) == (None, None)
    assert tokens["exhausted"] is False


def test_it_says_when_the_quota_runs_out_before_the_reset() -> None:
    resets = T0 + timedelta(hours=3)
    for minutes, used in ((-60, 40 * M), (-30, 55 * M), (0, 70 * M)):
        poll("zai", zai(used, resets), T0 + minutes * MINUTE)

    tokens = quota(current("zai", now=T0 + 5 * MINUTE), "tokens_5h")

    assert tokens["rate_per_hour"] == 30 * M
    # 10M left at 30M/h: 20 minutes after the reading
    assert tokens["exhausts_at"] == "2026-03-02T12:20:00Z"
    assert tokens["seconds_until_exhausted"] == 15 * 60
    assert tokens["projected_used"] == 160 * M
    assert tokens["projected_percent"] == 200.0
    assert tokens["status"] == "danger"


def test_readings_of_the_previous_cycle_never_count_and_a_young_cycle_uses_its_own_average() -> None:
    old_reset = T0 - 10 * MINUTE
    poll("zai", zai(70 * M, old_reset), T0 - 40 * MINUTE)
    poll("zai", zai(75 * M, old_reset), T0 - 20 * MINUTE)
    # The window reset at -10 min; this poll reveals it.
    poll("zai", zai(2 * M, old_reset + timedelta(hours=5)), T0)

    tokens = quota(current("zai", now=T0), "tokens_5h")

    # The new cycle began at the reset (-10 min) and has consumed 2M since: 12M/h,
    # from one reading: shown, but too little to project from.
    assert (tokens["rate_per_hour"], tokens["rate_basis"]) == (12 * M, "insufficient")
    assert (tokens["projected_used"], tokens["exhausts_at"], tokens["outlook"]) == (None, None, "ok")

    poll("zai", zai(3 * M, old_reset + timedelta(hours=5)), T0 + 10 * MINUTE)
    poll("zai", zai(4 * M, old_reset + timedelta(hours=5)), T0 + 20 * MINUTE)
    tokens = quota(current("zai", now=T0 + 20 * MINUTE), "tokens_5h")
    # three readings over 20 minutes: 2M from 00:00 to 00:20
    assert (tokens["rate_per_hour"], tokens["rate_basis"]) == (6 * M, "recent")
    assert tokens["projected_used"] == 4 * M + 6 * M * (4 + 30 / 60)


def test_a_drop_inside_a_cycle_is_not_negative_consumption() -> None:
    resets = T0 + timedelta(hours=3)
    # 10M → 9.99M is jitter (under 1 % of the limit), not a reset.
    for minutes, used in ((-30, 10 * M), (-20, 9.99 * M), (-10, 11 * M), (0, 12 * M)):
        poll("zai", zai(used, resets), T0 + minutes * MINUTE)

    tokens = quota(current("zai", now=T0), "tokens_5h")

    # positive steps 1.01M + 1M over 30 minutes
    assert tokens["rate_per_hour"] == 4_020_000


def test_share_only_windows_project_their_percentage_but_no_usage() -> None:
    payload = fixture_json("zai/v2_percentage_only.json")
    tokens = payload["data"]["limits"][0]
    tokens["nextResetTime"] = ms(T0 + timedelta(hours=2))
    for minutes, share in ((-60, 10), (-30, 15), (0, 20)):
        tokens["percentage"] = share
        poll("zai", copy.deepcopy(payload), T0 + minutes * MINUTE)

    body = current("zai", now=T0)
    tokens_5h = quota(body, "tokens_5h")

    assert body["plan"] == "lite"
    assert (tokens_5h["unit"], tokens_5h["used"], tokens_5h["percent"]) == ("percent", None, 20.0)
    assert tokens_5h["rate_per_hour"] == 10.0
    assert tokens_5h["projected_used"] is None
    assert tokens_5h["projected_percent"] == 40.0


def test_a_drift_poll_keeps_the_last_good_readings_and_flags_drift() -> None:
    poll("synthetic", fixture_json("synthetic/v2_free_tool_calls.json"), T0)
    poll("synthetic", {}, T0 + MINUTE)

    body = current("synthetic", now=T0 + 2 * MINUTE)

    assert body["drift"] is True
    assert body["captured_at"] == "2026-03-02T12:00:00Z"
    assert body["last_poll"]["outcome"] == "drift"
    assert body["last_poll"]["at"] == "2026-03-02T12:01:00Z"
    assert [q["key"] for q in body["quotas"]] == ["subscription", "search_hourly", "free_tool_calls"]
    assert quota(body, "free_tool_calls")["used"] == 251.0


def test_an_ok_poll_with_unknown_keys_is_drift_too_and_a_good_poll_clears_it() -> None:
    payload = fixture_json("synthetic/v2_free_tool_calls.json")
    poll("synthetic", {**payload, "brandNewQuota": {"limit": 5, "requests": 1}}, T0)
    assert current("synthetic", now=T0)["drift"] is True

    poll("synthetic", payload, T0 + MINUTE)
    assert current("synthetic", now=T0 + MINUTE)["drift"] is False


def test_a_failed_poll_is_the_last_poll_but_not_drift() -> None:
    poll("zai", fixture_json("zai/v2_weekly_and_level.json"), T0)
    poll("zai", fixture_json("zai/error_unauthorized_in_200.json"), T0 + MINUTE)

    body = current("zai", now=T0 + MINUTE)

    assert body["drift"] is False
    assert body["last_poll"]["outcome"] == "unauthorized"
    assert body["captured_at"] == "2026-03-02T12:00:00Z"


def test_a_quota_with_zero_limit_and_zero_usage_is_listed_but_marked_hidden() -> None:
    poll("synthetic", fixture_json("synthetic/v3_rolling_windows.json"), datetime(2026, 8, 25, 1, 10, tzinfo=UTC))

    body = current("synthetic", now=datetime(2026, 8, 25, 1, 10, tzinfo=UTC))

    assert {q["key"]: q["hidden"] for q in body["quotas"]} == {
        "subscription": False,
        "search_hourly": False,
        "free_tool_calls": True,
        "rolling_5h": False,
        "weekly_credits": False,
    }


def test_rolling_windows_say_when_shares_are_available_again() -> None:
    at = datetime(2026, 8, 25, 1, 10, tzinfo=UTC)
    poll("synthetic", fixture_json("synthetic/v3_rolling_windows.json"), at)

    body = current("synthetic", now=at)
    rolling, weekly = quota(body, "rolling_5h"), quota(body, "weekly_credits")

    assert [rolling[k] for k in ("kind", "used", "remaining", "percent")] == ["rolling", 136.0, 364.0, 27.2]
    assert rolling["resets_at"] == "2026-08-25T01:19:00Z"
    assert rolling["seconds_until_reset"] == 9 * 60
    assert rolling["details"] == {
        "limited": False,
        "next_tick_at": "2026-08-25T01:19:00Z",
        "tick_percent": 5.0,
        "regen_amount": 25.0,
        # 5 h × 5 %
        "tick_interval_seconds": 900,
        "upcoming_tick_at": "2026-08-25T01:19:00Z",
        "seconds_until_next_tick": 540,
        "regen_per_hour": 100.0,
        # 72.8 % free: 27.2 points missing for 100 % = 6 ticks of 5 %
        "available_again": {"25": None, "50": None, "100": "2026-08-25T02:34:00Z"},
    }
    # 7 d × 2 % = 201.6 min; 46.67 % free ($11.20 of $24): 2 ticks for 50 %, 27 for 100 %
    assert weekly["details"]["tick_interval_seconds"] == 12096
    assert weekly["details"]["available_again"] == {
        "25": None,
        "50": "2026-08-25T05:36:53Z",
        "100": "2026-08-28T17:36:53Z",
    }
    assert weekly["details"]["regen_per_hour"] == round(0.48 / 3.36, 2)
    assert (weekly["used"], weekly["percent"], weekly["unit"]) == (12.8, 53.33, "usd")
    # Rolling windows regenerate; they have no projection to a reset.
    assert (rolling["projected_used"], rolling["projected_percent"]) == (None, None)


def test_a_limited_rolling_window_counts_the_ticks_until_it_is_usable_again() -> None:
    at = datetime(2026, 8, 25, 1, 10, tzinfo=UTC)
    poll("synthetic", fixture_json("synthetic/v3_limited.json"), at)

    rolling = quota(current("synthetic", now=at), "rolling_5h")

    assert rolling["details"]["limited"] is True
    assert rolling["exhausted"] is True
    assert rolling["status"] == "critical"
    # 25 requests per tick from 01:19, every 15 minutes: 125 after 5 ticks, 250 after 10, 500 after 20
    assert rolling["details"]["available_again"] == {
        "25": "2026-08-25T02:19:00Z",
        "50": "2026-08-25T03:34:00Z",
        "100": "2026-08-25T06:04:00Z",
    }


def test_rolling_rates_add_back_the_refills_and_run_out_only_faster_than_they_refill() -> None:
    payload = fixture_json("synthetic/v3_rolling_windows.json")
    at = datetime(2026, 8, 25, 1, 10, tzinfo=UTC)
    # Ticks every 15 minutes on the 01:19 schedule (00:34, 00:49, 01:04): each step below holds one.
    # used 100, 95, 90, 85: 20 used and 25 given back every time
    for minutes, remaining in ((-45, 400), (-30, 405), (-15, 410), (0, 415)):
        payload["rollingFiveHourLimit"]["remaining"] = remaining
        poll("synthetic", copy.deepcopy(payload), at + minutes * MINUTE)

    rolling = quota(current("synthetic", now=at), "rolling_5h")
    assert (rolling["rate_per_hour"], rolling["rate_basis"]) == (80.0, "recent")
    # 80/h of use against 100/h of regeneration: it never runs out
    assert (rolling["exhausts_at"], rolling["outlook"]) == (None, "ok")

    payload["rollingFiveHourLimit"]["remaining"] = 200
    poll("synthetic", copy.deepcopy(payload), at + 15 * MINUTE)
    rolling = quota(current("synthetic", now=at + 15 * MINUTE), "rolling_5h")
    # 85 → 300 used across the 01:19 tick: 240 used; 20 + 20 + 20 + 240 in the hour
    assert rolling["rate_per_hour"] == 300.0
    # Tick by tick from 01:25 with 200 free: 45 used until the 01:34 tick (+25), then 75 used
    # and 25 back every 15 minutes: 30 left after the 02:19 tick, gone 30/300 h later.
    free = 200 - 45 + 25 - 3 * (75 - 25)
    assert free == 30
    assert rolling["exhausts_at"] == isostring(datetime(2026, 8, 25, 2, 19, tzinfo=UTC) + timedelta(hours=free / 300))
    assert rolling["exhausts_at"] == "2026-08-25T02:25:00Z"
    assert rolling["outlook"] == "runs_out_before_reset"


def test_synthetic_reset_windows_get_a_burn_rate_too() -> None:
    payload = fixture_json("synthetic/v2_free_tool_calls.json")
    at = datetime(2026, 4, 6, 14, 0, tzinfo=UTC)
    for minutes, requests in ((-20, 9), (-10, 19), (0, 29)):
        payload["subscription"]["requests"] = requests
        poll("synthetic", copy.deepcopy(payload), at + minutes * MINUTE)

    subscription = quota(current("synthetic", now=at), "subscription")

    assert subscription["rate_per_hour"] == 60.0
    # renewsAt 17:04:31.154: 29 + 60/h × 3.0753 h
    assert subscription["projected_used"] == round(29 + 60 * (3 * 3600 + 4 * 60 + 31.154) / 3600, 2)
    assert subscription["seconds_until_reset"] == 3 * 3600 + 4 * 60 + 31


def test_it_reads_a_fixed_number_of_queries_whatever_the_history(django_assert_num_queries: Any) -> None:
    resets = T0 + timedelta(hours=3)
    for minutes in range(-300, 1, 10):
        poll("zai", zai(10 * M + minutes * 1000, resets), T0 + minutes * MINUTE)

    # latest attempt, latest usable snapshot, its readings with their cycles, the quotas' last hour
    with django_assert_num_queries(4):
        body = current("zai", now=T0)
    assert len(body["quotas"]) == 3

    with django_assert_num_queries(2):
        current("synthetic", now=T0)


def test_polls_closer_than_the_fastest_interval_give_the_rate_of_the_latest_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(numbers, "RATE_READINGS", 6)
    resets = T0 + timedelta(hours=3)
    used = 10 * M
    for step in range(13):
        # 1M a minute, then 2M a minute over the last five steps (six readings)
        used += M if step <= 7 else 2 * M
        poll("zai", zai(used, resets, calls=100 + step), T0 + (step - 12) * MINUTE)

    body = current("zai", now=T0)

    assert (quota(body, "tokens_5h")["rate_per_hour"], quota(body, "tokens_5h")["rate_basis"]) == (120 * M, "recent")
    assert quota(body, "time_monthly")["rate_per_hour"] == 60.0


def test_another_providers_polls_do_not_leak_in() -> None:
    poll("zai", fixture_json("zai/v2_weekly_and_level.json"), T0)
    poll("synthetic", {}, T0 + MINUTE)

    body = current("zai", now=T0 + MINUTE)

    assert body["drift"] is False
    assert body["last_poll"]["at"] == "2026-03-02T12:00:00Z"
