"""Property-based tests of both upstream parsers (issue 10): any JSON value, any body, ends in
storable readings whose numbers lie in their sane ranges, or in a classified PollFailure; never an exception.

Each property draws a modest number of examples, so the file runs in seconds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import fixture_json
from lib import http
from quotas.providers import interpret, synthetic, zai
from quotas.providers.base import INVALID_RESPONSE, MAX_AMOUNT, MAX_PERCENT, Parsed, PollFailure
from quotas.tests import robustness

ADAPTERS = {"synthetic": synthetic, "zai": zai}
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Numbers as upstream could send them: ordinary, huge, negative, NaN, ±∞, integers past any float,
# numeric and currency strings.
wild_numbers = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**9),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e308, -1e308, 1e15, 1e15 + 2, -1, 1000.0001, 5e-324]),
    st.sampled_from(["$24.00", "$-5", "1e999", "NaN", "-Infinity", "12", "", "abc"]),
)
# Keys the parsers look for, and any other text.
FIELD_NAMES = [
    "subscription", "search", "hourly", "toolCallDiscounts", "freeToolCalls", "rollingFiveHourLimit",
    "weeklyTokenLimit", "limit", "requests", "remaining", "renewsAt", "max", "tickPercent", "limited",
    "maxCredits", "remainingCredits", "percentRemaining", "nextRegenCredits", "nextRegenAt",
    "code", "msg", "success", "data", "limits", "level", "type", "unit", "number", "usage",
    "currentValue", "percentage", "nextResetTime", "usageDetails", "modelCode",
]  # fmt: skip
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    wild_numbers,
    st.text(max_size=20),
    st.sampled_from(["TOKENS_LIMIT", "TIME_LIMIT", "CREDIT_LIMIT", "2026-03-02T17:00:00Z", 200, 3, 5, 6, 1]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6)),
    max_leaves=30,
)


def assert_in_range(parsed: Parsed) -> None:
    """What an adapter hands over is storable (robustness) and within the sane ranges of providers.base."""
    robustness.assert_storable(parsed)
    for quota in parsed.quotas:
        for name in ("used", "limit", "remaining"):
            value = getattr(quota, name)
            assert value is None or 0.0 <= value <= MAX_AMOUNT, (quota.key, name, value)
        assert quota.percent is None or 0.0 <= quota.percent <= MAX_PERCENT, (quota.key, quota.percent)
        for tool in quota.details.get("tools", []):
            assert tool["used"] is None or 0.0 <= tool["used"] <= MAX_AMOUNT, tool


def outcome(adapter: Any, data: Any) -> Parsed | PollFailure:
    """Readings in range or a clean, classified failure; any other exception fails the property."""
    try:
        parsed = adapter.parse(data)
    except PollFailure as failure:
        robustness.assert_failure_is_clean(failure)
        return failure
    assert_in_range(parsed)
    return parsed


@pytest.mark.parametrize("provider", ADAPTERS)
@PROPERTY
@given(data=json_values)
def test_any_json_value_gives_readings_in_range_or_a_classified_failure(provider: str, data: Any) -> None:
    outcome(ADAPTERS[provider], data)


def synthetic_shape(numbers: st.DataObject) -> dict:
    def n() -> Any:
        return numbers.draw(wild_numbers)

    return {
        "subscription": {"limit": n(), "requests": n(), "renewsAt": "2026-03-02T17:00:00Z"},
        "search": {"hourly": {"limit": n(), "requests": n(), "remaining": n()}},
        "freeToolCalls": {"limit": n(), "requests": n()},
        "rollingFiveHourLimit": {"max": n(), "remaining": n(), "tickPercent": n(), "limited": False},
        "weeklyTokenLimit": {
            "maxCredits": n(), "remainingCredits": n(), "percentRemaining": n(), "nextRegenCredits": n(),
        },
    }  # fmt: skip


def zai_shape(numbers: st.DataObject) -> dict:
    def n() -> Any:
        return numbers.draw(wild_numbers)

    limits = [
        {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "usage": n(), "currentValue": n(), "remaining": n()},
        {"type": "TOKENS_LIMIT", "unit": 6, "number": 1, "percentage": n(), "nextResetTime": n()},
        {
            "type": "TIME_LIMIT", "unit": 5, "number": 1, "usage": n(), "currentValue": n(), "percentage": n(),
            "usageDetails": [{"modelCode": "search-prime", "usage": n()}],
        },
    ]  # fmt: skip
    return {"code": 200, "success": True, "data": {"limits": limits, "level": "pro"}}


SHAPES = {"synthetic": synthetic_shape, "zai": zai_shape}


@pytest.mark.parametrize("provider", ADAPTERS)
@PROPERTY
@given(numbers=st.data())
def test_real_shapes_with_wild_numbers_store_only_numbers_in_range(provider: str, numbers: st.DataObject) -> None:
    """The payloads' own shapes with any number in every numeric field: a window either stores
    in range or is missing, and then a drift note (or the drift failure) says why."""
    data = SHAPES[provider](numbers)
    result = outcome(ADAPTERS[provider], data)
    if isinstance(result, PollFailure):
        assert result.outcome == "drift", result.message
        return
    # Every window of the shape is accounted for, once: stored, or noted (unreadable, or out of range).
    assert len(result.quotas) + len(result.unknown) == (5 if provider == "synthetic" else 3), result


@PROPERTY
@given(
    provider=st.sampled_from(list(ADAPTERS)),
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.integers(min_value=1, max_value=200_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(min_value=1, max_value=200_000).map(lambda depth: b'{"data":' * depth + b"1" + b"}" * depth),
    ),
)
@example(provider="zai", body=b"[" * 10_000 + b"]" * 10_000)
@example(provider="synthetic", body=b'{"a":' * 10_000 + b"1" + b"}" * 10_000)
@example(provider="zai", body=b'{"code": 200, "success": true, "data": {"limits": [{"percentage": 1e308}]}}')
def test_any_body_of_a_200_answer_gives_readings_or_a_classified_failure(provider: str, body: bytes) -> None:
    """Through providers.interpret, as the poller decodes and parses a 200 answer: deep nesting included."""
    try:
        parsed = interpret(ADAPTERS[provider], http.Response(status=200, body=body))
    except PollFailure as failure:
        robustness.assert_failure_is_clean(failure)
        if body.startswith((b"[[", b'{"data":{"data":')) and len(body) > 20_000:
            assert failure.outcome == INVALID_RESPONSE
        return
    assert_in_range(parsed)


@pytest.mark.parametrize(
    "name",
    [
        "synthetic/v1_tool_call_discounts",
        "synthetic/v3_rolling_windows",
        "zai/v2_weekly_and_level",
        "zai/v3_credit_lite",
    ],
)
def test_the_real_payloads_are_in_range_and_free_of_drift(name: str) -> None:
    """The bounds leave every real payload generation alone."""
    provider = name.split("/")[0]
    parsed = ADAPTERS[provider].parse(fixture_json(f"{name}.json"))
    assert_in_range(parsed)
    assert not [note for note in parsed.unknown if "out of range" in note]
