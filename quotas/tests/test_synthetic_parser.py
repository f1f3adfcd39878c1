"""The Synthetic adapter: every payload generation to provider-neutral quotas (product.md §5)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import fixture_json
from quotas.providers import synthetic
from quotas.providers.base import (
    DRIFT,
    INVALID_RESPONSE,
    Parsed,
    PollFailure,
    iso_time,
    number,
)
from quotas.tests import robustness


def at(*args: int, ms: int = 0) -> datetime:
    """An aware UTC instant: ``at(2026, 2, 6, 16, 16, 18, ms=386)``."""
    return datetime(*args, microsecond=ms * 1000, tzinfo=UTC)


def by_key(parsed: Parsed) -> dict[str, dict[str, Any]]:
    return {q.key: asdict(q) for q in parsed.quotas}


def parse(name: str) -> Parsed:
    return synthetic.parse(fixture_json(f"synthetic/{name}.json"))


# --- every generation, exactly -------------------------------------------------------------------


def test_it_parses_the_first_generation_with_tool_call_discounts() -> None:
    parsed = parse("v1_tool_call_discounts")

    assert [q.key for q in parsed.quotas] == ["subscription", "search_hourly", "free_tool_calls"]
    assert parsed.plan is None
    assert parsed.unknown == []
    assert by_key(parsed) == {
        "subscription": {
            "key": "subscription",
            "label": "Subscription",
            "kind": "reset",
            "unit": "requests",
            "used": 154.3,
            "limit": 1350.0,
            "remaining": 1195.7,
            "percent": pytest.approx(154.3 / 1350 * 100, rel=1e-12),
            "resets_at": at(2026, 2, 6, 16, 16, 18, ms=386),
            "details": {},
        },
        "search_hourly": {
            "key": "search_hourly",
            "label": "Search (hourly)",
            "kind": "reset",
            "unit": "requests",
            "used": 0.0,
            "limit": 250.0,
            "remaining": 250.0,
            "percent": 0.0,
            "resets_at": at(2026, 2, 6, 13, 58, 14, ms=386),
            "details": {},
        },
        "free_tool_calls": {
            "key": "free_tool_calls",
            "label": "Tool calls",
            "kind": "reset",
            "unit": "calls",
            "used": 7635.0,
            "limit": 16200.0,
            "remaining": 8565.0,
            "percent": pytest.approx(7635 / 16200 * 100, rel=1e-12),
            "resets_at": at(2026, 2, 6, 15, 26, 41, ms=390),
            "details": {},
        },
    }


def test_it_keeps_fractional_requests_exactly() -> None:
    subscription = by_key(parse("v1_tool_call_discounts"))["subscription"]

    # Exact equality on purpose: 1350 - 154.3 in binary floats is 1195.7000000000000455.
    assert subscription["used"] == 154.3
    assert subscription["remaining"] == 1195.7
    assert repr(subscription["remaining"]) == "1195.7"


def test_it_parses_the_second_generation_with_free_tool_calls() -> None:
    parsed = parse("v2_free_tool_calls")

    assert parsed.unknown == []
    assert by_key(parsed) == {
        "subscription": {
            "key": "subscription",
            "label": "Subscription",
            "kind": "reset",
            "unit": "requests",
            "used": 9.0,
            "limit": 335.0,
            "remaining": 326.0,
            "percent": pytest.approx(9 / 335 * 100, rel=1e-12),
            "resets_at": at(2026, 4, 6, 17, 4, 31, ms=154),
            "details": {},
        },
        "search_hourly": {
            "key": "search_hourly",
            "label": "Search (hourly)",
            "kind": "reset",
            "unit": "requests",
            "used": 0.0,
            "limit": 250.0,
            "remaining": 250.0,
            "percent": 0.0,
            "resets_at": at(2026, 4, 6, 14, 13, 54, ms=154),
            "details": {},
        },
        "free_tool_calls": {
            "key": "free_tool_calls",
            "label": "Tool calls",
            "kind": "reset",
            "unit": "calls",
            "used": 251.0,
            "limit": 1250.0,
            "remaining": 999.0,
            "percent": 20.08,
            "resets_at": at(2026, 4, 7, 9, 10, 25, ms=324),
            "details": {},
        },
    }


def test_tool_call_discounts_and_free_tool_calls_become_the_same_quota() -> None:
    block = {"limit": 500, "requests": 12.5, "renewsAt": "2026-04-07T09:10:25.324Z"}

    old = synthetic.parse({"toolCallDiscounts": block})
    new = synthetic.parse({"freeToolCalls": block})

    assert [q.key for q in old.quotas] == ["free_tool_calls"]
    assert old.quotas == new.quotas
    assert old.unknown == new.unknown == []


def test_the_new_tool_call_name_wins_when_both_are_present() -> None:
    parsed = synthetic.parse(
        {"freeToolCalls": {"limit": 1250, "requests": 3}, "toolCallDiscounts": {"limit": 16200, "requests": 7635}}
    )

    assert [(q.key, q.used, q.limit) for q in parsed.quotas] == [("free_tool_calls", 3.0, 1250.0)]


def test_a_readable_old_tool_call_block_is_used_when_the_new_one_is_garbage() -> None:
    parsed = synthetic.parse({"freeToolCalls": "n/a", "toolCallDiscounts": {"limit": 100, "requests": 7}})

    assert [(q.key, q.used) for q in parsed.quotas] == [("free_tool_calls", 7.0)]


def test_it_parses_the_current_generation_with_rolling_windows() -> None:
    parsed = parse("v3_rolling_windows")

    assert [q.key for q in parsed.quotas] == [
        "subscription",
        "search_hourly",
        "free_tool_calls",
        "rolling_5h",
        "weekly_credits",
    ]
    assert parsed.unknown == []
    quotas = by_key(parsed)
    assert quotas["rolling_5h"] == {
        "key": "rolling_5h",
        "label": "Requests (5h rolling)",
        "kind": "rolling",
        "unit": "requests",
        "used": 136.0,  # max - remaining
        "limit": 500.0,
        "remaining": 364.0,
        "percent": 27.2,
        "resets_at": at(2026, 8, 25, 1, 19, 0),
        "details": {
            "limited": False,
            "next_tick_at": "2026-08-25T01:19:00Z",
            "tick_percent": 5.0,
            "regen_amount": 25.0,
        },
    }
    assert quotas["weekly_credits"] == {
        "key": "weekly_credits",
        "label": "Weekly credits",
        "kind": "rolling",
        "unit": "usd",
        "used": 12.8,
        "limit": 24.0,
        "remaining": 11.2,
        "percent": pytest.approx(12.8 / 24 * 100, rel=1e-12),
        "resets_at": at(2026, 8, 25, 2, 15, 17),
        "details": {
            "limited": False,
            "next_tick_at": "2026-08-25T02:15:17Z",
            "tick_percent": 2.0,
            "regen_amount": 0.48,
            "percent_remaining": 46.7,
        },
    }
    assert quotas["subscription"] == {
        "key": "subscription",
        "label": "Subscription",
        "kind": "reset",
        "unit": "requests",
        "used": 0.0,  # stuck at 0 under V3, but still reported
        "limit": 500.0,
        "remaining": 500.0,
        "percent": 0.0,
        "resets_at": at(2026, 8, 25, 6, 17, 51, ms=747),
        "details": {},
    }
    assert quotas["search_hourly"]["used"] == 12.0
    assert quotas["search_hourly"]["percent"] == 4.8
    assert quotas["search_hourly"]["resets_at"] == at(2026, 8, 25, 2, 17, 51, ms=751)


def test_a_zero_limit_quota_is_still_returned() -> None:
    # The dashboard hides it; the parser must not.
    tool_calls = by_key(parse("v3_rolling_windows"))["free_tool_calls"]

    assert tool_calls == {
        "key": "free_tool_calls",
        "label": "Tool calls",
        "kind": "reset",
        "unit": "calls",
        "used": 0.0,
        "limit": 0.0,
        "remaining": 0.0,
        "percent": 0.0,
        "resets_at": at(2026, 8, 26, 1, 17, 51, ms=756),
        "details": {},
    }


def test_an_exhausted_rolling_window_is_limited_with_nothing_remaining() -> None:
    quotas = by_key(parse("v3_limited"))

    rolling = quotas["rolling_5h"]
    assert (rolling["used"], rolling["limit"], rolling["remaining"], rolling["percent"]) == (500.0, 500.0, 0.0, 100.0)
    assert rolling["details"] == {
        "limited": True,
        "next_tick_at": "2026-08-25T01:19:00Z",
        "tick_percent": 5.0,
        "regen_amount": 25.0,
    }
    weekly = quotas["weekly_credits"]
    assert (weekly["used"], weekly["limit"], weekly["remaining"]) == (23.81, 24.0, 0.19)
    assert weekly["details"]["limited"] is False
    assert weekly["details"]["percent_remaining"] == 0.8


def test_limited_is_derived_from_remaining_when_upstream_omits_it() -> None:
    parsed = synthetic.parse({"rollingFiveHourLimit": {"max": 200, "remaining": 0}})

    assert parsed.quotas[0].details["limited"] is True
    assert parsed.quotas[0].details["tick_percent"] is None
    assert parsed.quotas[0].details["regen_amount"] is None


def test_an_empty_object_is_drift_and_never_zero_usage() -> None:
    with pytest.raises(PollFailure) as raised:
        parse("empty_object")

    assert raised.value.outcome == DRIFT
    assert "empty" in raised.value.message


def test_a_payload_with_only_unknown_keys_is_drift() -> None:
    # Even a block shaped like a counter: every known quota is missing, so the
    # last good readings must stay (product.md §4).
    with pytest.raises(PollFailure) as raised:
        synthetic.parse({"dailyCap": {"limit": 10, "requests": 2}, "version": 3})

    assert raised.value.outcome == DRIFT
    assert "dailyCap" in raised.value.message and "version" in raised.value.message


def test_the_unauthorized_body_is_not_a_quota() -> None:
    with pytest.raises(PollFailure) as raised:
        parse("unauthorized")

    assert raised.value.outcome == DRIFT


def test_unknown_keys_next_to_known_quotas_are_listed_and_still_parsed() -> None:
    data = fixture_json("synthetic/v2_free_tool_calls.json")
    data["dailyImageLimit"] = {"limit": 40, "requests": 4, "renewsAt": "2026-04-07T00:00:00Z"}
    data["banner"] = "new plans!"
    data["search"]["daily"] = {"limit": 1000, "requests": 10}

    parsed = synthetic.parse(data)

    assert sorted(parsed.unknown) == ["banner", "dailyImageLimit", "search.daily"]
    quotas = by_key(parsed)
    assert set(quotas) == {"subscription", "search_hourly", "free_tool_calls", "daily_image_limit", "search_daily"}
    assert quotas["daily_image_limit"]["label"] == "Daily image limit"
    assert quotas["daily_image_limit"]["used"] == 4.0
    assert quotas["daily_image_limit"]["resets_at"] == at(2026, 4, 7, 0, 0, 0)
    assert quotas["search_daily"]["label"] == "Search (daily)"
    # The known quotas are untouched by the extras.
    assert quotas["subscription"] == by_key(parse("v2_free_tool_calls"))["subscription"]


def test_a_generic_block_never_shadows_a_known_quota() -> None:
    data = fixture_json("synthetic/v2_free_tool_calls.json")
    data["Subscription"] = {"limit": 1, "requests": 1}
    data["search_hourly"] = {"limit": 2, "requests": 2}

    parsed = synthetic.parse(data)

    quotas = by_key(parsed)
    assert [q.key for q in parsed.quotas].count("subscription") == 1
    assert quotas["subscription"]["limit"] == 335.0
    assert quotas["search_hourly"]["limit"] == 250.0
    assert sorted(parsed.unknown) == ["Subscription", "search_hourly"]


def test_an_unreadable_known_block_is_listed_and_the_rest_still_parses() -> None:
    data = fixture_json("synthetic/v3_rolling_windows.json")
    data["subscription"] = None
    data["weeklyTokenLimit"] = "soon"

    parsed = synthetic.parse(data)

    assert [q.key for q in parsed.quotas] == ["search_hourly", "free_tool_calls", "rolling_5h"]
    assert parsed.unknown == ["subscription (unreadable)", "weeklyTokenLimit (unreadable)"]


def test_a_payload_whose_every_known_block_is_unreadable_is_drift() -> None:
    with pytest.raises(PollFailure) as raised:
        synthetic.parse({"subscription": {}, "search": [], "freeToolCalls": {"renewsAt": "2026-04-07T09:10:25Z"}})

    assert raised.value.outcome == DRIFT


def test_a_non_object_payload_is_an_invalid_response() -> None:
    for data in ([], [{"subscription": {}}], "text", 3, None):
        with pytest.raises(PollFailure) as raised:
            synthetic.parse(data)
        assert raised.value.outcome == INVALID_RESPONSE


def test_remaining_above_the_maximum_never_gives_negative_usage() -> None:
    quota = synthetic.parse({"rollingFiveHourLimit": {"max": 500, "remaining": 520, "tickPercent": 0.05}}).quotas[0]

    assert quota.used == 0.0
    assert quota.percent == 0.0
    assert quota.remaining == 500.0


def test_weekly_credits_with_only_a_percentage_keep_the_upstream_percent() -> None:
    quota = synthetic.parse({"weeklyTokenLimit": {"percentRemaining": 46.7}}).quotas[0]

    assert (quota.used, quota.limit, quota.remaining) == (None, None, None)
    assert quota.percent == 53.3
    assert quota.details["percent_remaining"] == 46.7
    assert quota.details["tick_percent"] is None


def test_money_strings_are_read_as_exact_decimals() -> None:
    quota = synthetic.parse(
        {
            "weeklyTokenLimit": {
                "maxCredits": "US$1,024.00",
                "remainingCredits": " $0.10 ",
                "nextRegenCredits": "20.48 USD",
            }
        }
    ).quotas[0]

    assert (quota.limit, quota.remaining, quota.used) == (1024.0, 0.1, 1023.9)
    assert quota.details["regen_amount"] == 20.48
    assert quota.details["tick_percent"] == 2.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (154.3, 154.3),
        (7, 7.0),
        ("$24.00", 24.0),
        ("$11.20", 11.2),
        ("-$1.50", -1.5),
        ("1,250", 1250.0),
        ("12", 12.0),
        (" 3.5 ", 3.5),
        (True, None),
        (False, None),
        (None, None),
        ("", None),
        ("$", None),
        ("twelve", None),
        ("NaN", None),
        ("Infinity", None),
        ("sNaN", None),
        ("1e400", None),
        (float("nan"), None),
        (float("inf"), None),
        (10**400, None),
        ([1], None),
        ({"value": 1}, None),
    ],
)
def test_number_reads_json_numbers_and_money_strings(value: Any, expected: float | None) -> None:
    assert number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-06T16:16:18.386Z", at(2026, 2, 6, 16, 16, 18, ms=386)),
        ("2026-02-06T16:16:18z", at(2026, 2, 6, 16, 16, 18)),
        ("2026-02-06T18:16:18+02:00", at(2026, 2, 6, 16, 16, 18)),
        ("2026-02-06T16:16:18", at(2026, 2, 6, 16, 16, 18)),  # naive: taken as UTC
        ("0001-01-01T00:00:00Z", None),  # Go's zero time means "not set"
        ("0001-01-01T00:00:00+05:00", None),  # would overflow
        ("9999-12-31T23:59:59-05:00", None),  # would overflow
        ("", None),
        ("tomorrow", None),
        (1770398385482, None),
        (None, None),
    ],
)
def test_reset_times_become_aware_utc_or_nothing(value: Any, expected: datetime | None) -> None:
    result = iso_time(value)

    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC


def test_the_go_zero_time_gives_no_reset_time() -> None:
    quota = synthetic.parse({"subscription": {"limit": 135, "requests": 1, "renewsAt": "0001-01-01T00:00:00Z"}})

    assert quota.quotas[0].resets_at is None


def test_snake_case_aliases_are_accepted() -> None:
    parsed = synthetic.parse(
        {
            "subscription": {"limit": 135, "requests": 2, "renews_at": "2026-04-06T17:04:31Z"},
            "rollingFiveHourLimit": {"max": 135, "remaining": 100, "next_tick_at": "2026-04-06T12:00:00Z"},
            "weeklyTokenLimit": {"max_credits": "$24.00", "remaining_credits": "$20.00", "next_regen_at": None},
        }
    )

    quotas = by_key(parsed)
    assert quotas["subscription"]["resets_at"] == at(2026, 4, 6, 17, 4, 31)
    assert quotas["rolling_5h"]["used"] == 35.0
    assert quotas["rolling_5h"]["resets_at"] == at(2026, 4, 6, 12, 0, 0)
    assert quotas["weekly_credits"]["used"] == 4.0
    assert quotas["weekly_credits"]["resets_at"] is None


def test_a_counter_with_a_string_number_is_still_read() -> None:
    quota = synthetic.parse({"subscription": {"limit": "1350", "requests": "154.3"}}).quotas[0]

    assert (quota.used, quota.limit, quota.remaining) == (154.3, 1350.0, 1195.7)


# --- robustness: odd but valid JSON never escapes as anything but PollFailure ---------------------


def parse_safely(data: Any) -> Parsed | PollFailure:
    return robustness.parse_safely(synthetic.parse, data)


SYNTHETIC_FIXTURES = ["v1_tool_call_discounts", "v2_free_tool_calls", "v3_rolling_windows", "v3_limited"]


@pytest.mark.parametrize("name", SYNTHETIC_FIXTURES)
def test_every_fixture_gives_storable_quotas(name: str) -> None:
    assert isinstance(parse_safely(fixture_json(f"synthetic/{name}.json")), Parsed)


@pytest.mark.parametrize("name", SYNTHETIC_FIXTURES)
def test_any_value_replaced_by_an_odd_one_gives_quotas_or_a_poll_failure(name: str) -> None:
    robustness.assert_survives_every_replacement(synthetic.parse, fixture_json(f"synthetic/{name}.json"), name)


@pytest.mark.parametrize(
    "data",
    [
        {"subscription": None, "search": None, "freeToolCalls": None},
        {"subscription": {"limit": "many", "requests": "some", "renewsAt": 12}},
        {"subscription": [[{"limit": 1}]], "search": [["hourly"]]},
        {"search": {"hourly": {"hourly": {"limit": 1}}}},
        {"rollingFiveHourLimit": {"max": [500], "remaining": {"n": 1}, "limited": "yes", "tickPercent": "5%"}},
        {"rollingFiveHourLimit": {"max": 1e308, "remaining": -1e308, "tickPercent": 1e308}},
        {"weeklyTokenLimit": {"maxCredits": "$0", "remainingCredits": "$0", "nextRegenCredits": "$1"}},
        {"weeklyTokenLimit": {"maxCredits": 1e-320, "remainingCredits": -1e308, "nextRegenCredits": 1e308}},
        {"weeklyTokenLimit": {"percentRemaining": 1e308}},
        {"": {"limit": 1, "requests": 1}, "subscription": {"limit": 1}},
        {"\x00\x00": {"limit": 1}, "subscription": {"requests": 1}},
        {"ключ": {"limit": 1}, "subscription": {"limit": 1}, "search": {"\x00": {"limit": 1}}},
        {"a" * 500: {"limit": 1}, "subscription": {"limit": 1}, "search": {"b" * 500: {"limit": 1}}},
        {"subscription": {"limit": 10**400, "requests": float("nan"), "renewsAt": "2026-13-45T99:99:99Z"}},
    ],
)
def test_hand_picked_odd_shapes_give_quotas_or_a_poll_failure(data: dict) -> None:
    parse_safely(data)


def test_random_mutations_give_quotas_or_a_poll_failure() -> None:
    documents = [fixture_json(f"synthetic/{name}.json") for name in SYNTHETIC_FIXTURES]
    robustness.assert_survives_random_mutations(synthetic.parse, documents, seed=20260825)


@pytest.mark.django_db
def test_odd_but_parsable_payloads_store_on_this_database() -> None:
    parsed = synthetic.parse(
        {
            "subscription": {"limit": 1e308, "requests": -1e308, "renewsAt": "0001-01-01T00:00:00Z"},
            "search": {"hourly": {"limit": "$5"}, "\x00nul\ud800": {"limit": 1}},
            "rollingFiveHourLimit": {"max": 1e308, "remaining": -1e308, "tickPercent": 1e308},
            "x" * 300: {"limit": 3, "requests": 1},
        }
    )
    # The subscription's and the rolling window's extreme numbers make those two drift (issue 10).
    assert robustness.store_parsed("synthetic", parsed) == len(parsed.quotas) == 3
    assert sum("out of range" in note for note in parsed.unknown) == 2
