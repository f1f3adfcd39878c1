"""quotas.insights: the cards and stats of GET /api/insights, from stored polls."""

from __future__ import annotations

import copy
import json
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import fixture_json, store_payload
from quotas.insights import ALL_HIDDEN_KEY, INSIGHT_KEYS, consumed_between, insights, tool_calls_between
from quotas.models import PollAttempt, PollSession, QuotaReading, ResetCycle

S = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
WINDOW = timedelta(hours=5)
M = 1_000_000

pytestmark = pytest.mark.django_db


def poll(provider: str, payload: dict[str, Any], at: datetime) -> PollAttempt:
    return store_payload(provider, payload, at)


def zai(tokens_used: float, resets_at: datetime, calls: float = 69) -> dict[str, Any]:
    """The v2 Z.ai payload (pro plan, 80M tokens per 5 h, tools 40/21/8) with the given usage.

    Other call counts than 69 split as 3/4 search-prime, 1/4 web-reader.
    """
    payload = fixture_json("zai/v2_weekly_and_level.json")
    tokens_5h = payload["data"]["limits"][0]
    tokens_5h.update(currentValue=tokens_used, nextResetTime=int(resets_at.timestamp() * 1000))
    del tokens_5h["remaining"], tokens_5h["percentage"]
    time_monthly = payload["data"]["limits"][2]
    time_monthly["currentValue"] = calls
    if calls != 69:
        time_monthly["usageDetails"] = [
            {"modelCode": "search-prime", "usage": calls * 0.75},
            {"modelCode": "web-reader", "usage": calls * 0.25},
        ]
    del time_monthly["remaining"], time_monthly["percentage"]
    return payload


def zai_cycles(consumptions: list[float], start: datetime = S) -> datetime:
    """Poll Z.ai through one 5-hour window per consumption, 10 polls each (every 30 min from +15 min).

    Usage grows linearly to the window's consumption; tool calls grow by 2 per
    poll. The first window starts when tracking does (a partial cycle); the
    last one stays open. Returns the time of the last poll.
    """
    at = start
    calls = 0.0
    for index, consumed in enumerate(consumptions):
        window_start = start + index * WINDOW
        for k in range(10):
            at = window_start + 15 * MINUTE + k * 30 * MINUTE
            calls += 2
            poll("zai", zai(consumed * (k + 1) / 10, window_start + WINDOW, calls), at)
    return at


def card(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((c for c in body["insights"] if c["key"] == key), None)


def keys(body: dict[str, Any]) -> list[str]:
    return [c["key"] for c in body["insights"]]


def test_before_any_poll_there_is_a_getting_started_card() -> None:
    body = insights("zai", "7d", now=S)

    assert body["provider"] == "zai"
    assert keys(body) == ["getting_started"]
    assert body["insights"][0] == {
        "key": "getting_started",
        "title": "Getting started",
        "value": "No data yet",
        "sublabel": "waiting for the first poll",
        "description": "Keep SynTrack polling Z.ai: usage insights appear once a day of data "
        "and 2 complete reset cycles are in.",
        "severity": "info",
    }
    assert body["stats"] == [
        {"label": "Polls (7d)", "value": "0"},
        {"label": "Poll success", "value": "—"},
        {"label": "Sessions (7d)", "value": "0"},
    ]


def test_after_the_first_poll_it_still_says_more_is_coming_next_to_what_it_knows() -> None:
    poll("zai", fixture_json("zai/v2_weekly_and_level.json"), S)

    body = insights("zai", "7d", now=S + MINUTE)

    # One reading is a baseline: no tool calls counted yet, so no top tool either.
    assert keys(body) == ["getting_started", "plan"]
    assert card(body, "getting_started")["value"] == "0 of 2 cycles"


def test_the_plan_card_names_the_plan_and_its_limits() -> None:
    poll("zai", fixture_json("zai/v2_weekly_and_level.json"), S)

    assert card(insights("zai", "7d", now=S), "plan") == {
        "key": "plan",
        "title": "Plan",
        "value": "Pro",
        "sublabel": "plan level",
        "description": "Z.ai reports the Pro plan. Limits: Tokens (5h): 80M tokens; Tokens (weekly): 400M tokens; "
        "Tool calls (monthly): 1K calls.",
        "severity": "info",
    }


def test_synthetic_has_no_plan_card() -> None:
    poll("synthetic", fixture_json("synthetic/v2_free_tool_calls.json"), S)

    assert card(insights("synthetic", "7d", now=S), "plan") is None


def test_the_tool_breakdown_names_the_top_tool_and_every_share_over_the_range() -> None:
    payload = fixture_json("zai/v2_weekly_and_level.json")
    # 40/21/8 of 69 calls: only a baseline for what follows
    poll("zai", payload, S)
    time_monthly = payload["data"]["limits"][2]
    time_monthly["currentValue"] = 94
    del time_monthly["remaining"], time_monthly["percentage"]
    time_monthly["usageDetails"] = [
        {"modelCode": "search-prime", "usage": 54},
        {"modelCode": "web-reader", "usage": 28},
        {"modelCode": "zread", "usage": 12},
    ]
    poll("zai", payload, S + MINUTE)

    body = insights("zai", "7d", now=S + MINUTE)

    # 14 + 7 + 4 = 25 calls in the range, as the stat beside it counts them
    assert card(body, "tool_breakdown") == {
        "key": "tool_breakdown",
        "title": "Top tool (7d)",
        "value": "search-prime",
        "sublabel": "56% of 25 calls",
        "description": "Tool calls in the last 7 days by tool: "
        "search-prime 14 (56%), web-reader 7 (28%), zread 4 (16%).",
        "severity": "info",
    }
    # the tokens never moved, so the tool calls are the headline quota
    assert {"label": "Tool calls (monthly) used (7d)", "value": "25 calls"} in body["stats"]


def test_the_tool_calls_stat_and_the_top_tool_agree_whatever_the_range() -> None:
    # Calls grow by 2 per poll every 30 minutes for 30 hours; 1d holds 48 of the 60 polls.
    now = zai_cycles([10 * M, 20 * M, 20 * M, 20 * M, 20 * M, 30 * M])

    for range_key in ("1d", "7d", "30d"):
        body = insights("zai", range_key, now=now)
        calls = next(s["value"] for s in body["stats"] if s["label"] == f"Tool calls ({range_key})")
        top = card(body, "tool_breakdown")
        assert top["title"] == f"Top tool ({range_key})"
        assert top["sublabel"] == f"75% of {calls} calls"
        assert card(body, "tokens_per_call")["title"] == f"Tokens per tool call ({range_key})"
    assert calls == "118"


def test_no_tool_breakdown_without_tool_calls() -> None:
    payload = fixture_json("zai/v2_weekly_and_level.json")
    for tool in payload["data"]["limits"][2]["usageDetails"]:
        tool["usage"] = 0
    poll("zai", payload, S)

    assert card(insights("zai", "7d", now=S), "tool_breakdown") is None


@pytest.mark.parametrize(
    ("consumed", "value", "severity", "verdict"),
    [
        (16 * M, "20%", "warning", "Significantly under-used: a cheaper plan than Pro would do."),
        (32 * M, "40%", "info", "Comfortable headroom: a smaller plan than Pro may be enough."),
        (48 * M, "60%", "positive", "The plan fits your usage well."),
        (72 * M, "90%", "warning", "Often close to the limit: keep an eye on it."),
        (78 * M, "98%", "negative", "Always near the limit: consider upgrading."),
    ],
)
def test_cycle_utilization_says_what_the_average_cycle_means_for_the_plan(
    consumed: float, value: str, severity: str, verdict: str
) -> None:
    # The first window is partial (tracking began mid-window) and the last one is still open: neither counts.
    now = zai_cycles([1 * M, consumed, consumed, 5 * M])

    utilization = card(insights("zai", "7d", now=now), "cycle_utilization")

    assert utilization is not None
    assert (utilization["value"], utilization["severity"]) == (value, severity)
    assert utilization["sublabel"] == "of the Tokens (5h) limit per cycle"
    assert utilization["description"].endswith(verdict)
    assert utilization["description"].startswith("Over the last 2 complete cycles you used ")


def test_one_complete_cycle_is_not_enough_for_utilization() -> None:
    now = zai_cycles([1 * M, 40 * M, 5 * M])

    body = insights("zai", "7d", now=now)

    assert card(body, "cycle_utilization") is None
    assert card(body, "getting_started")["value"] == "1 of 2 cycles"


def test_the_30_day_usage_sums_what_the_counter_went_up_by_across_resets() -> None:
    now = zai_cycles([10 * M, 20 * M, 20 * M, 20 * M, 20 * M, 30 * M])

    billing = card(insights("zai", "7d", now=now), "billing_period")

    # 9M after the first reading, 4 × 20M, 30M in the open window: 119M, over 29.5 tracked hours.
    # allowance: 80M × 29.5 h / 5 h = 472M
    assert billing == {
        "key": "billing_period",
        "title": "30-day usage",
        "value": "119M tokens",
        "sublabel": "last 1 day",
        "description": "119M tokens of Tokens (5h) used in the 1 day tracked so far. "
        "That is 25.2% of the 472M tokens the plan allowed.",
        "severity": "info",
    }


def test_the_weekly_pace_projects_a_month() -> None:
    now = zai_cycles([10 * M, 20 * M, 20 * M, 20 * M, 20 * M, 30 * M])

    pace = card(insights("zai", "7d", now=now), "weekly_pace")

    # 119M in 29.5 h: 96.8M a day, 2.9B in 30 days, of 80M × 144 windows = 11.52B
    assert pace == {
        "key": "weekly_pace",
        "title": "Weekly pace",
        "value": "119M tokens",
        "sublabel": "last 7 days",
        "description": "119M tokens of Tokens (5h) in the last 1 day (~96.8M tokens a day). "
        "At this pace: ~2.9B tokens in 30 days. That is 25.2% of what the plan allows in 30 days.",
        "severity": "info",
    }


def test_a_pace_near_the_monthly_allowance_is_a_warning() -> None:
    now = zai_cycles([70 * M, 75 * M, 75 * M, 75 * M, 75 * M, 75 * M])

    pace = card(insights("zai", "7d", now=now), "weekly_pace")

    assert pace is not None
    assert pace["severity"] == "warning"


def test_less_than_a_day_of_data_gives_no_pace_and_no_30_day_usage() -> None:
    now = zai_cycles([10 * M, 20 * M, 20 * M, 20 * M])  # 19.5 hours

    body = insights("zai", "7d", now=now)

    assert card(body, "weekly_pace") is None
    assert card(body, "billing_period") is None
    assert card(body, "cycle_utilization") is not None
    assert "getting_started" not in keys(body)


@pytest.mark.parametrize(
    ("complete", "title", "value", "severity"),
    [
        ([20 * M, 20 * M, 20 * M], "Consistent usage", "±0%", "positive"),
        ([10 * M, 20 * M, 30 * M], "Usage spread", "±41%", "info"),
        ([10 * M, 10 * M, 50 * M], "High variance", "±81%", "warning"),
    ],
)
def test_cycle_variance_is_the_spread_of_consumption_between_cycles(
    complete: list[float], title: str, value: str, severity: str
) -> None:
    now = zai_cycles([1 * M, *complete, 5 * M])

    variance = card(insights("zai", "7d", now=now), "cycle_variance")

    assert variance is not None
    assert (variance["title"], variance["value"], variance["severity"]) == (title, value, severity)


def test_cycle_variance_describes_the_range() -> None:
    now = zai_cycles([1 * M, 10 * M, 20 * M, 30 * M, 5 * M])

    variance = card(insights("zai", "7d", now=now), "cycle_variance")

    assert variance["description"] == (
        "Cycles ranged from 10M tokens to 30M tokens (38% of the limit), 20M tokens on average over 3 cycles. "
        "Moderately consistent."
    )


@pytest.mark.parametrize(
    ("complete", "value", "severity", "ending"),
    [
        ([10 * M, 10 * M, 20 * M, 20 * M], "+100%", "warning", "Usage is rising."),
        ([20 * M, 20 * M, 10 * M, 10 * M], "-50%", "positive", "Usage is falling."),
        ([10 * M, 11 * M, 10 * M, 11 * M], "Stable", "positive", "Steady usage."),
        # the middle cycle of an odd count is left out: 10 vs 10
        ([10 * M, 10 * M, 70 * M, 10 * M, 10 * M], "Stable", "positive", "Steady usage."),
    ],
)
def test_cycle_trend_compares_recent_cycles_with_earlier_ones(
    complete: list[float], value: str, severity: str, ending: str
) -> None:
    now = zai_cycles([1 * M, *complete, 5 * M])

    trend = card(insights("zai", "7d", now=now), "cycle_trend")

    assert trend is not None
    assert (trend["value"], trend["severity"]) == (value, severity)
    assert trend["description"].endswith(ending)


def test_three_cycles_give_no_trend() -> None:
    now = zai_cycles([1 * M, 10 * M, 20 * M, 30 * M, 5 * M])

    assert card(insights("zai", "7d", now=now), "cycle_trend") is None


def test_tokens_per_call_compares_the_two_counters_over_the_same_period() -> None:
    now = zai_cycles([10 * M, 20 * M, 20 * M, 20 * M, 20 * M, 30 * M])

    ratio = card(insights("zai", "7d", now=now), "tokens_per_call")

    # 119M tokens against 118 calls (2 per poll, the first poll is the baseline)
    assert ratio == {
        "key": "tokens_per_call",
        "title": "Tokens per tool call (7d)",
        "value": "1M",
        "sublabel": "model tokens per tool call",
        "description": "119M tokens used alongside 118 calls in the last 7 days: ~1M tokens per tool call. "
        "Tokens and tool calls are separate allowances; this compares the two counters, "
        "it is not what one call costs.",
        "severity": "info",
    }


def test_tokens_per_call_needs_tool_calls() -> None:
    payload = fixture_json("zai/v2_weekly_and_level.json")
    poll("zai", payload, S)
    payload["data"]["limits"][0]["currentValue"] = 20 * M
    poll("zai", payload, S + MINUTE)

    assert card(insights("zai", "7d", now=S + MINUTE), "tokens_per_call") is None


def test_hidden_insights_are_left_out() -> None:
    now = zai_cycles([1 * M, 20 * M, 20 * M, 5 * M])
    everything = keys(insights("zai", "7d", now=now))

    body = insights("zai", "7d", hidden={"plan", "tool_breakdown"}, now=now)

    assert "plan" in everything and "tool_breakdown" in everything
    assert keys(body) == [k for k in everything if k not in {"plan", "tool_breakdown"}]


def test_hiding_every_card_leaves_a_pointer_back_instead_of_nothing() -> None:
    now = zai_cycles([1 * M, 20 * M, 20 * M, 5 * M])
    everything = keys(insights("zai", "7d", now=now))

    body = insights("zai", "7d", hidden=set(INSIGHT_KEYS), now=now)

    assert keys(body) == [ALL_HIDDEN_KEY]
    assert body["insights"][0]["value"] == f"{len(everything)} hidden"
    assert ALL_HIDDEN_KEY not in INSIGHT_KEYS  # so it can never be hidden itself


def test_every_card_key_is_listed_and_every_severity_is_known() -> None:
    now = zai_cycles([10 * M, 20 * M, 20 * M, 30 * M, 30 * M, 5 * M])

    body = insights("zai", "30d", now=now)

    assert set(keys(body)) == set(INSIGHT_KEYS) - {"getting_started"}
    assert {c["severity"] for c in body["insights"]} <= {"positive", "info", "warning", "negative"}
    assert all(set(c) == {"key", "title", "value", "sublabel", "description", "severity"} for c in body["insights"])
    text = json.dumps(body, allow_nan=False)
    assert not any(word in text for word in ("nan", "NaN", "inf%", "Infinity"))


def test_an_unknown_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown range"):
        insights("zai", "2d", now=S)


def test_stats_count_this_providers_polls_and_sessions_in_the_range() -> None:
    now = zai_cycles([10 * M, 20 * M, 20 * M, 20 * M, 20 * M, 30 * M])
    poll("zai", fixture_json("zai/error_unauthorized_in_200.json"), now + MINUTE)
    poll("synthetic", fixture_json("synthetic/v2_free_tool_calls.json"), now + MINUTE)
    now += MINUTE
    PollSession.objects.create(provider="zai", started_at=now - timedelta(days=3), interval_seconds=60)
    PollSession.objects.create(
        provider="zai", started_at=now - timedelta(days=3), ended_at=now - timedelta(hours=2), interval_seconds=60
    )
    PollSession.objects.create(
        provider="zai", started_at=now - timedelta(days=3), ended_at=now - timedelta(days=2), interval_seconds=60
    )
    PollSession.objects.create(provider="synthetic", started_at=now - timedelta(hours=1), interval_seconds=60)

    body = insights("zai", "1d", now=now)

    # The last 24 hours (from 5:46) hold 48 of the 60 successful polls plus the failed one. Tokens: the
    # second window from its reading at 6:15 (6M, the baseline) to 20M, three windows of 20M, 30M: 104M.
    # Tool calls: 47 steps of 2.
    assert body["stats"] == [
        {"label": "Tokens (5h) used (1d)", "value": "104M tokens"},
        {"label": "Tool calls (1d)", "value": "94"},
        {"label": "Polls (1d)", "value": "49"},
        {"label": "Poll success", "value": "98.0%"},
        {"label": "Sessions (1d)", "value": "2"},
    ]


def test_synthetic_rolling_windows_are_the_main_quota_when_the_subscription_never_moves() -> None:
    payload = fixture_json("synthetic/v3_rolling_windows.json")
    # 26 hours of polls every 30 minutes, 10 more requests used each time, 5 restored on every 3rd
    remaining = 500.0
    for k in range(53):
        if k:
            remaining -= 10
            if k % 3 == 0:
                remaining += 5
        payload["rollingFiveHourLimit"]["remaining"] = remaining
        poll("synthetic", copy.deepcopy(payload), S + k * 30 * MINUTE)
    now = S + 52 * 30 * MINUTE

    body = insights("synthetic", "30d", now=now)

    # 52 steps of +10 requests, except the 17 where a tick gave 5 back (+5 each)
    assert body["stats"][0] == {"label": "Requests (5h rolling) used (30d)", "value": "435 requests"}
    assert card(body, "weekly_pace")["value"] == "435 requests"
    # `subscription` sits at 0: no cycle card, and never a "cheaper plan" verdict
    assert card(body, "cycle_utilization") is None
    assert "getting_started" not in keys(body)


def test_consumption_counts_a_reset_as_the_new_level_and_never_a_drop() -> None:
    reset = S + 2 * 60 * MINUTE
    for minutes, used in ((0, 10 * M), (60, 30 * M), (90, 29.5 * M), (100, 40 * M), (130, 5 * M), (150, 8 * M)):
        poll("zai", zai(used, reset if minutes < 120 else reset + WINDOW), S + minutes * MINUTE)

    # 20M + 10.5M before the reset, then 5M (the new window's usage) + 3M
    assert consumed_between("zai", "tokens_5h", S, S + 150 * MINUTE) == 38.5 * M
    # from 1:30: 10.5M + 5M + 3M
    assert consumed_between("zai", "tokens_5h", S + 90 * MINUTE, S + 150 * MINUTE) == 18.5 * M
    assert ResetCycle.objects.filter(provider="zai", quota="tokens_5h").count() == 2
    assert consumed_between("zai", "tokens_5h", S + 200 * MINUTE, S + 300 * MINUTE) == 0.0


def test_consumption_ignores_a_switch_between_numbers_and_shares() -> None:
    numbers = zai(10 * M, S + WINDOW)
    share_only = fixture_json("zai/v2_percentage_only.json")
    poll("zai", numbers, S)
    poll("zai", share_only, S + 10 * MINUTE)
    poll("zai", zai(12 * M, S + WINDOW), S + 20 * MINUTE)

    total = consumed_between("zai", "tokens_5h", S, S + 20 * MINUTE)

    assert math.isfinite(total)
    assert total == 0.0


def test_long_ranges_add_up_hourly_rollups_and_read_only_the_edge_hours() -> None:
    # Three days of Synthetic polls every 20 minutes: the subscription resets every
    # 5 hours, the rolling window goes up and down; a three-hour outage on day two.
    payload = fixture_json("synthetic/v3_rolling_windows.json")
    rng = random.Random(3)
    used, remaining, renews = 0.0, 400.0, S + WINDOW
    for k in range(3 * 72):
        at = S + k * 20 * MINUTE
        if 100 <= k < 109:
            continue
        if at >= renews:
            used, renews = 0.0, renews + WINDOW
        used += rng.choice([0, 1, 4, 9])
        remaining = min(max(remaining + rng.choice([-12, -3, 0, 5, 8]), 0), 500)
        payload["subscription"].update(requests=used, renewsAt=renews.isoformat())
        payload["rollingFiveHourLimit"]["remaining"] = remaining
        poll("synthetic", copy.deepcopy(payload), at)
    ranges = [(S, S + 72 * HOUR), (S + 37 * MINUTE, S + 53 * HOUR + 13 * MINUTE), (S + 90 * MINUTE, S + 4 * HOUR)]

    expected = {
        (key, start, end): steps_from_readings("synthetic", key, start, end)
        for key in ("subscription", "rolling_5h")
        for start, end in ranges
    }
    assert all(total > 0 for total in expected.values())
    # What the whole hours hold now comes from the roll-ups alone.
    QuotaReading.objects.filter(captured_at__gte=S + 3 * HOUR, captured_at__lt=S + 52 * HOUR).delete()

    for (key, start, end), total in expected.items():
        if end - start > 3 * HOUR:
            assert consumed_between("synthetic", key, start, end) == pytest.approx(total), (key, start, end)


def steps_from_readings(provider: str, key: str, start: datetime, end: datetime) -> float:
    """consumed_between's rule, step by step over every reading of the range."""
    total, previous = 0.0, None
    for reading in QuotaReading.objects.filter(
        provider=provider, key=key, captured_at__gte=start, captured_at__lte=end
    ).order_by("captured_at", "id"):
        if previous is not None and reading.unit == previous.unit:
            if reading.cycle_id is not None and previous.cycle_id is not None and reading.cycle_id != previous.cycle_id:
                total += reading.level
            else:
                total += max(reading.level - previous.level, 0.0)
        previous = reading
    return total


def test_tool_counts_across_a_monthly_reset_count_the_new_level() -> None:
    payload = fixture_json("zai/v2_weekly_and_level.json")
    time_monthly = payload["data"]["limits"][2]
    reset = S + 3 * HOUR
    polls = [
        # minutes, search-prime, web-reader, zread, next reset
        (0, 40, 21, 8, reset),
        (60, 50, 21, 9, reset),
        (120, 61, 30, 9, reset),
        (190, 3, 1, 0, reset + 30 * 24 * HOUR),
        (250, 7, 2, 0, reset + 30 * 24 * HOUR),
    ]
    for minutes, search, reader, zread, resets_at in polls:
        time_monthly.update(currentValue=search + reader + zread, nextResetTime=int(resets_at.timestamp() * 1000))
        time_monthly["usageDetails"] = [
            {"modelCode": "search-prime", "usage": search},
            {"modelCode": "web-reader", "usage": reader},
            {"modelCode": "zread", "usage": zread},
        ]
        poll("zai", copy.deepcopy(payload), S + minutes * MINUTE)

    calls = tool_calls_between("zai", S + 30 * MINUTE, S + 250 * MINUTE)

    # from the 1:00 baseline: 11 + 9 + 0 before the reset, then 7 + 2 + 0 after it
    assert calls.by_tool == [("search-prime", 18.0), ("web-reader", 11.0)]
    assert calls.total == 29.0
