"""The Z.ai adapter: every payload generation to provider-neutral quotas (product.md §5)."""

from __future__ import annotations

import copy
import itertools
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import fixture_json
from quotas.providers import zai
from quotas.providers.base import (
    DRIFT,
    INVALID_RESPONSE,
    RATE_LIMITED,
    SERVER_ERROR,
    UNAUTHORIZED,
    Parsed,
    PollFailure,
    epoch_ms,
)
from quotas.tests import robustness

ZAI_FIXTURES = ["v1_tokens_and_time", "v2_weekly_and_level", "v2_percentage_only", "v3_credit_lite"]


def at(*args: int, ms: int = 0) -> datetime:
    return datetime(*args, microsecond=ms * 1000, tzinfo=UTC)


def by_key(parsed: Parsed) -> dict[str, dict[str, Any]]:
    return {q.key: asdict(q) for q in parsed.quotas}


def parse(name: str) -> Parsed:
    return zai.parse(fixture_json(f"zai/{name}.json"))


def envelope(*limits: dict, level: str | None = None) -> dict:
    data: dict[str, Any] = {"limits": list(limits)}
    if level is not None:
        data["level"] = level
    return {"code": 200, "msg": "Operation successful", "success": True, "data": data}


# --- every generation, exactly -------------------------------------------------------------------


def test_it_parses_the_first_generation_with_tokens_and_time() -> None:
    parsed = parse("v1_tokens_and_time")

    assert [q.key for q in parsed.quotas] == ["time_monthly", "tokens_5h"]
    assert parsed.plan is None
    assert parsed.unknown == []
    assert by_key(parsed) == {
        "time_monthly": {
            "key": "time_monthly",
            "label": "Tool calls (monthly)",
            "kind": "reset",
            "unit": "calls",
            "used": 19.0,
            "limit": 1000.0,
            "remaining": 981.0,
            "percent": 1.9,
            "resets_at": None,  # no nextResetTime on TIME_LIMIT in this generation
            "details": {
                "window": {"type": "TIME_LIMIT", "unit": 5, "number": 1},
                "tools": [
                    {"name": "search-prime", "used": 16.0},
                    {"name": "web-reader", "used": 39.0},
                    {"name": "zread", "used": 79.0},
                ],
            },
        },
        "tokens_5h": {
            "key": "tokens_5h",
            "label": "Tokens (5h)",
            "kind": "reset",
            "unit": "tokens",
            "used": 200112618.0,
            "limit": 200000000.0,
            "remaining": 0.0,
            "percent": 100.056309,
            "resets_at": at(2026, 2, 6, 17, 19, 45, ms=482),
            "details": {"window": {"type": "TOKENS_LIMIT", "unit": 3, "number": 5}},
        },
    }


def test_usage_above_the_limit_gives_nothing_remaining_and_a_percent_above_100() -> None:
    tokens = by_key(parse("v1_tokens_and_time"))["tokens_5h"]

    # usage is the capacity, currentValue the consumption; the percent is ours, not the rounded 100.
    assert tokens["used"] > tokens["limit"]
    assert tokens["remaining"] == 0.0
    assert tokens["percent"] > 100
    assert tokens["percent"] == pytest.approx(200112618 / 200000000 * 100, rel=1e-12)
    assert tokens["resets_at"].isoformat() == "2026-02-06T17:19:45.482000+00:00"


def test_it_parses_the_second_generation_with_both_token_windows_and_the_plan() -> None:
    parsed = parse("v2_weekly_and_level")

    assert parsed.plan == "pro"
    assert parsed.unknown == []
    assert by_key(parsed) == {
        "tokens_5h": {
            "key": "tokens_5h",
            "label": "Tokens (5h)",
            "kind": "reset",
            "unit": "tokens",
            "used": 9600000.0,
            "limit": 80000000.0,
            "remaining": 70400000.0,
            "percent": 12.0,
            "resets_at": at(2026, 9, 3, 17, 10, 20, ms=775),
            "details": {"window": {"type": "TOKENS_LIMIT", "unit": 3, "number": 5}},
        },
        "tokens_weekly": {
            "key": "tokens_weekly",
            "label": "Tokens (weekly)",
            "kind": "reset",
            "unit": "tokens",
            "used": 236000000.0,
            "limit": 400000000.0,
            "remaining": 164000000.0,
            "percent": 59.0,
            "resets_at": at(2026, 9, 10, 2, 5, 6, ms=998),
            "details": {"window": {"type": "TOKENS_LIMIT", "unit": 6, "number": 1}},
        },
        "time_monthly": {
            "key": "time_monthly",
            "label": "Tool calls (monthly)",
            "kind": "reset",
            "unit": "calls",
            "used": 69.0,
            "limit": 1000.0,
            "remaining": 931.0,
            "percent": 6.9,
            "resets_at": at(2026, 9, 30, 2, 5, 6, ms=999),  # the monthly reset added in this generation
            "details": {
                "window": {"type": "TIME_LIMIT", "unit": 5, "number": 1},
                "tools": [
                    {"name": "search-prime", "used": 40.0},
                    {"name": "web-reader", "used": 21.0},
                    {"name": "zread", "used": 8.0},
                ],
            },
        },
    }


def test_windows_that_carry_only_a_percentage_keep_the_upstream_percent() -> None:
    parsed = parse("v2_percentage_only")

    assert parsed.plan == "lite"
    assert parsed.unknown == []
    quotas = by_key(parsed)
    assert quotas["tokens_5h"] == {
        "key": "tokens_5h",
        "label": "Tokens (5h)",
        "kind": "reset",
        "unit": "percent",
        "used": None,
        "limit": None,
        "remaining": None,
        "percent": 12.0,
        "resets_at": at(2026, 9, 3, 17, 10, 20, ms=775),
        "details": {"window": {"type": "TOKENS_LIMIT", "unit": 3, "number": 5}},
    }
    assert quotas["tokens_weekly"] == {
        "key": "tokens_weekly",
        "label": "Tokens (weekly)",
        "kind": "reset",
        "unit": "percent",
        "used": None,
        "limit": None,
        "remaining": None,
        "percent": 59.0,
        "resets_at": at(2026, 9, 10, 2, 5, 6, ms=998),
        "details": {"window": {"type": "TOKENS_LIMIT", "unit": 6, "number": 1}},
    }
    assert quotas["time_monthly"] == {
        "key": "time_monthly",
        "label": "Tool calls (monthly)",
        "kind": "reset",
        "unit": "calls",
        "used": 3.0,
        "limit": 100.0,
        "remaining": 97.0,
        "percent": 3.0,
        "resets_at": at(2026, 9, 30, 2, 5, 6, ms=999),
        "details": {"window": {"type": "TIME_LIMIT", "unit": 5, "number": 1}},
    }


def test_it_parses_the_credit_plans() -> None:
    parsed = parse("v3_credit_lite")

    assert parsed.plan == "lite"
    assert parsed.unknown == []
    assert by_key(parsed) == {
        "credits_5h": {
            "key": "credits_5h",
            "label": "Credits (5h)",
            "kind": "reset",
            "unit": "credits",
            "used": 402.0,
            "limit": 2000.0,
            "remaining": 1598.0,  # max(limit - used, 0); upstream's own 1597 is rounded
            "percent": 20.1,
            "resets_at": at(2026, 9, 2, 12, 12, 25, ms=586),
            "details": {"window": {"type": "CREDIT_LIMIT", "unit": 3, "number": 5}},
        },
        "credits_weekly": {
            "key": "credits_weekly",
            "label": "Credits (weekly)",
            "kind": "reset",
            "unit": "credits",
            "used": 5207.0,
            "limit": 10000.0,
            "remaining": 4793.0,
            "percent": 52.07,
            "resets_at": at(2026, 9, 7, 12, 34, 26, ms=996),
            "details": {"window": {"type": "CREDIT_LIMIT", "unit": 6, "number": 1}},
        },
    }


def test_an_unknown_limit_type_becomes_a_generic_quota_and_is_listed() -> None:
    data = fixture_json("zai/v2_weekly_and_level.json")
    data["data"]["limits"].append(
        {"type": "FOO_LIMIT", "unit": 4, "number": 7, "usage": 50, "currentValue": 5, "remaining": 45, "percentage": 10}
    )

    parsed = zai.parse(data)

    quotas = by_key(parsed)
    assert list(quotas) == ["tokens_5h", "tokens_weekly", "time_monthly", "foo_limit_4_7"]
    assert quotas["foo_limit_4_7"] == {
        "key": "foo_limit_4_7",
        "label": "Foo (7 days)",
        "kind": "reset",
        "unit": "requests",
        "used": 5.0,
        "limit": 50.0,
        "remaining": 45.0,
        "percent": 10.0,
        "resets_at": None,
        "details": {"window": {"type": "FOO_LIMIT", "unit": 4, "number": 7}},
    }
    assert parsed.unknown == ["limit foo_limit_4_7 (type=FOO_LIMIT)"]
    # The known windows are untouched.
    assert {k: v for k, v in quotas.items() if k != "foo_limit_4_7"} == by_key(parse("v2_weekly_and_level"))


def test_a_known_type_with_an_unknown_window_is_generic_too() -> None:
    parsed = zai.parse(envelope({"type": "TOKENS_LIMIT", "unit": 4, "number": 1, "percentage": 3}))

    assert [(q.key, q.label, q.unit, q.percent) for q in parsed.quotas] == [
        ("tokens_limit_4_1", "Tokens (1 day)", "percent", 3.0)
    ]
    assert parsed.unknown == ["limit tokens_limit_4_1 (type=TOKENS_LIMIT)"]


def test_a_limit_without_unit_or_number_gets_placeholders_in_its_key() -> None:
    parsed = zai.parse(envelope({"type": "CREDIT_LIMIT", "usage": 10, "currentValue": 1}))

    assert [(q.key, q.unit) for q in parsed.quotas] == [("credit_limit_x_x", "credits")]
    assert parsed.quotas[0].label == "Credit (unit None, number None)"


def test_payloads_with_only_unknown_limit_types_still_show_them() -> None:
    parsed = zai.parse(envelope({"type": "MCP_LIMIT", "unit": 5, "number": 1, "usage": 10, "currentValue": 4}))

    assert [(q.key, q.used, q.limit) for q in parsed.quotas] == [("mcp_limit_5_1", 4.0, 10.0)]
    assert parsed.unknown == ["limit mcp_limit_5_1 (type=MCP_LIMIT)"]


@pytest.mark.parametrize("name", ZAI_FIXTURES)
def test_windows_are_classified_by_type_unit_and_number_never_by_position(name: str) -> None:
    data = fixture_json(f"zai/{name}.json")
    data["data"]["limits"].append({"type": "FOO_LIMIT", "unit": 4, "number": 7, "percentage": 1})
    expected = by_key(zai.parse(data))

    for order in itertools.permutations(data["data"]["limits"]):
        shuffled = copy.deepcopy(data)
        shuffled["data"]["limits"] = list(order)
        parsed = zai.parse(shuffled)
        assert by_key(parsed) == expected
        assert parsed.unknown == ["limit foo_limit_4_7 (type=FOO_LIMIT)"]


def test_the_weekly_window_never_overwrites_the_five_hour_one() -> None:
    five_hours = {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "usage": 100, "currentValue": 10}
    weekly = {"type": "TOKENS_LIMIT", "unit": 6, "number": 1, "usage": 1000, "currentValue": 900}

    for limits in ([five_hours, weekly], [weekly, five_hours]):
        quotas = by_key(zai.parse(envelope(*limits)))
        assert (quotas["tokens_5h"]["used"], quotas["tokens_weekly"]["used"]) == (10.0, 900.0)


def test_numeric_strings_in_unit_and_number_classify_the_same() -> None:
    parsed = zai.parse(envelope({"type": "tokens_limit", "unit": "3", "number": 5.0, "percentage": 7}))

    assert [q.key for q in parsed.quotas] == ["tokens_5h"]
    assert parsed.unknown == []


def test_a_duplicate_window_keeps_the_first_and_is_listed() -> None:
    first = {"type": "CREDIT_LIMIT", "unit": 3, "number": 5, "usage": 2000, "currentValue": 1}
    second = {"type": "CREDIT_LIMIT", "unit": 3, "number": 5, "usage": 2000, "currentValue": 2}

    parsed = zai.parse(envelope(first, second))

    assert [(q.key, q.used) for q in parsed.quotas] == [("credits_5h", 1.0)]
    assert parsed.unknown == ["duplicate window credits_5h"]


def test_snake_case_aliases_are_accepted() -> None:
    parsed = zai.parse(
        envelope(
            {
                "type": "TIME_LIMIT",
                "unit": 5,
                "number": 1,
                "usage": 1000,
                "current_value": 12,
                "next_reset_time": 1790733906999,
                "usage_details": [{"model_code": "zread", "used": 12}],
            }
        )
    )

    quota = parsed.quotas[0]
    assert (quota.used, quota.limit, quota.remaining) == (12.0, 1000.0, 988.0)
    assert quota.resets_at == at(2026, 9, 30, 2, 5, 6, ms=999)
    assert quota.details["tools"] == [{"name": "zread", "used": 12.0}]


def test_tools_without_a_name_are_skipped_and_odd_counts_become_none() -> None:
    item = {
        "type": "TIME_LIMIT",
        "unit": 5,
        "number": 1,
        "usage": 100,
        "currentValue": 3,
        "usageDetails": [{"usage": 3}, "zread", {"modelCode": "web-reader", "usage": "lots"}, None],
    }

    assert zai.parse(envelope(item)).quotas[0].details["tools"] == [{"name": "web-reader", "used": None}]


def test_remaining_alone_keeps_the_unit_of_the_window() -> None:
    quota = zai.parse(envelope({"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "remaining": 5000})).quotas[0]

    assert (quota.unit, quota.used, quota.limit, quota.remaining, quota.percent) == ("tokens", None, None, 5000.0, None)


def test_the_sum_of_tools_is_not_assumed_to_be_the_usage() -> None:
    quota = by_key(parse("v1_tokens_and_time"))["time_monthly"]

    assert sum(tool["used"] for tool in quota["details"]["tools"]) == 134.0
    assert quota["used"] == 19.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1770398385482, at(2026, 2, 6, 17, 19, 45, ms=482)),
        ("1770398385482", at(2026, 2, 6, 17, 19, 45, ms=482)),
        (1770398385, at(2026, 2, 6, 17, 19, 45)),  # seconds, as some clients report
        (0, None),
        (-5, None),
        (None, None),
        ("soon", None),
        (1e300, None),
    ],
)
def test_reset_times_are_epoch_milliseconds(value: Any, expected: datetime | None) -> None:
    assert epoch_ms(value) == expected


# --- errors inside HTTP 200 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "outcome", "words"),
    [
        ("error_unauthorized_in_200", UNAUTHORIZED, "token expired or incorrect"),
        ("error_no_coding_plan", UNAUTHORIZED, "当前用户不存在coding plan"),
        ("error_server_in_200", SERVER_ERROR, "Internal server error"),
    ],
)
def test_errors_inside_http_200_are_classified(name: str, outcome: str, words: str) -> None:
    with pytest.raises(PollFailure) as raised:
        parse(name)

    assert raised.value.outcome == outcome
    assert words in raised.value.message


def test_a_key_without_a_coding_plan_says_so() -> None:
    with pytest.raises(PollFailure) as raised:
        parse("error_no_coding_plan")

    assert raised.value.outcome == UNAUTHORIZED
    assert raised.value.message.startswith("this key has no GLM Coding Plan")
    assert "code=1113" in raised.value.message


def test_the_no_plan_message_is_recognised_under_another_code_too() -> None:
    # Not a generic "API returned an error": the message names the missing plan.
    with pytest.raises(PollFailure) as raised:
        zai.parse({"code": 500, "msg": "当前用户不存在coding plan", "success": False, "data": None})

    assert raised.value.outcome == UNAUTHORIZED
    assert raised.value.message.startswith("this key has no GLM Coding Plan")


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"code": 1302, "msg": "请求过于频繁", "success": False}, RATE_LIMITED),
        ({"code": 429, "msg": "Too many requests", "success": False}, RATE_LIMITED),
        ({"code": 1001, "msg": "Authorization header missing", "success": False}, UNAUTHORIZED),
        ({"code": 401, "msg": "token expired"}, UNAUTHORIZED),  # no `success` at all
        ({"code": "401", "success": False}, UNAUTHORIZED),
        ({"success": False}, SERVER_ERROR),
        ({"code": 200, "success": False, "msg": "odd"}, SERVER_ERROR),
        ({"code": 503, "message": "busy", "success": False}, SERVER_ERROR),
        ({"code": float("inf"), "success": False}, SERVER_ERROR),
        ({"code": [401], "success": False}, SERVER_ERROR),
    ],
)
def test_error_envelopes_are_classified(body: dict, outcome: str) -> None:
    with pytest.raises(PollFailure) as raised:
        zai.parse(body)

    assert raised.value.outcome == outcome
    robustness.assert_failure_is_clean(raised.value)


def test_a_missing_success_with_code_200_is_not_an_error() -> None:
    # The Go v1.7 client treated this as an error; code 200 alone is a success.
    data = fixture_json("zai/v3_credit_lite.json")
    del data["success"]

    assert [q.key for q in zai.parse(data).quotas] == ["credits_5h", "credits_weekly"]


def test_a_payload_without_any_envelope_is_judged_by_its_data() -> None:
    parsed = zai.parse({"data": {"limits": [{"type": "CREDIT_LIMIT", "unit": 3, "number": 5, "percentage": 4}]}})

    assert [q.key for q in parsed.quotas] == ["credits_5h"]


def test_a_long_error_message_is_cut() -> None:
    with pytest.raises(PollFailure) as raised:
        zai.parse({"code": 500, "msg": "x" * 5000, "success": False})

    assert len(raised.value.message) < 300


# --- drift ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": 200, "success": True},
        {"code": 200, "success": True, "data": None},
        {"code": 200, "success": True, "data": []},
        {"code": 200, "success": True, "data": {}},
        {"code": 200, "success": True, "data": {"limits": None}},
        {"code": 200, "success": True, "data": {"limits": []}},
        {"code": 200, "success": True, "data": {"limits": [1, "two", None]}},
        {"code": 200, "success": True, "data": {"limits": [{"type": "TOKENS_LIMIT", "unit": 3, "number": 5}]}},
        {"code": 200, "success": True, "data": {"windows": [{"type": "TOKENS_LIMIT", "percentage": 5}]}},
    ],
)
def test_payloads_without_a_usable_window_are_drift(body: dict) -> None:
    with pytest.raises(PollFailure) as raised:
        zai.parse(body)

    assert raised.value.outcome == DRIFT


def test_unknown_envelope_and_data_keys_are_listed_but_do_not_fail_the_poll() -> None:
    data = fixture_json("zai/v3_credit_lite.json")
    data["traceId"] = "abc"
    data["data"]["renewal"] = {"at": 1}

    parsed = zai.parse(data)

    assert [q.key for q in parsed.quotas] == ["credits_5h", "credits_weekly"]
    assert parsed.unknown == ["envelope.traceId", "data.renewal"]


def test_a_known_window_without_numbers_is_listed_as_unreadable() -> None:
    data = fixture_json("zai/v2_weekly_and_level.json")
    data["data"]["limits"][1] = {"type": "TOKENS_LIMIT", "unit": 6, "number": 1, "nextResetTime": 1789005906998}

    parsed = zai.parse(data)

    assert [q.key for q in parsed.quotas] == ["tokens_5h", "time_monthly"]
    assert parsed.unknown == ["limit tokens_weekly (unreadable)"]


def test_a_non_object_payload_is_an_invalid_response() -> None:
    for data in ([], [{"code": 200}], "ok", 200, None):
        with pytest.raises(PollFailure) as raised:
            zai.parse(data)
        assert raised.value.outcome == INVALID_RESPONSE


@pytest.mark.parametrize(("level", "plan"), [("pro", "pro"), ("  max ", "max"), ("", None), (3, None), (None, None)])
def test_the_plan_comes_from_the_level(level: Any, plan: str | None) -> None:
    data = fixture_json("zai/v3_credit_lite.json")
    data["data"]["level"] = level

    assert zai.parse(data).plan == plan


@pytest.mark.parametrize(
    ("level", "plan_name", "plan"),
    [(None, "GLM Coding Pro", "GLM Coding Pro"), ("lite", "GLM Coding Pro", "lite"), ("", "Max", "Max")],
)
def test_the_plan_name_stands_in_when_the_level_is_absent(level: str | None, plan_name: str, plan: str) -> None:
    data = fixture_json("zai/v3_credit_lite.json")
    data["data"].pop("level")
    if level is not None:
        data["data"]["level"] = level
    data["data"]["planName"] = plan_name

    parsed = zai.parse(data)

    assert parsed.plan == plan
    # a known key: no drift
    assert parsed.unknown == []


# --- robustness: odd but valid JSON never escapes as anything but PollFailure ---------------------


def parse_safely(data: Any) -> Parsed | PollFailure:
    return robustness.parse_safely(zai.parse, data)


@pytest.mark.parametrize("name", ZAI_FIXTURES)
def test_every_fixture_gives_storable_quotas(name: str) -> None:
    assert isinstance(parse_safely(fixture_json(f"zai/{name}.json")), Parsed)


@pytest.mark.parametrize("name", [*ZAI_FIXTURES, "error_unauthorized_in_200", "error_no_coding_plan"])
def test_any_value_replaced_by_an_odd_one_gives_quotas_or_a_poll_failure(name: str) -> None:
    robustness.assert_survives_every_replacement(zai.parse, fixture_json(f"zai/{name}.json"), name)


@pytest.mark.parametrize(
    "data",
    [
        {"code": None, "success": None, "data": None},
        {"code": {"a": 1}, "success": "false", "msg": ["x"]},
        {"code": float("nan"), "success": False, "msg": None},
        {"code": 200, "success": True, "data": {"limits": [[{"type": "TOKENS_LIMIT"}]], "level": ["pro"]}},
        envelope({"type": None, "unit": None, "number": None, "usage": None, "percentage": "12"}),
        envelope({"type": ["TOKENS_LIMIT"], "unit": [3], "number": {"n": 5}, "percentage": 12}),
        envelope({"type": "TOKENS_LIMIT", "unit": 3.5, "number": -1e308, "usage": 1e308, "currentValue": -1e308}),
        envelope({"type": "TOKENS_LIMIT", "unit": 10**400, "number": 1e300, "percentage": 12}),
        envelope({"type": "\x00\ud800", "unit": 1, "number": 1, "percentage": 1}, level="\x00"),
        envelope({"type": "X" * 500, "unit": 1, "number": 1, "percentage": 1}, level="p" * 500),
        envelope({"type": "TIME_LIMIT", "unit": 5, "number": 1, "usage": 0, "currentValue": 0, "nextResetTime": 1e30}),
        envelope({"type": "TIME_LIMIT", "unit": 5, "number": 1, "percentage": 1, "usageDetails": {"zread": 1}}),
        envelope({"type": "TIME_LIMIT", "unit": 5, "number": 1, "percentage": 1, "usageDetails": [{"modelCode": []}]}),
    ],
)
def test_hand_picked_odd_shapes_give_quotas_or_a_poll_failure(data: dict) -> None:
    parse_safely(data)


def test_random_mutations_give_quotas_or_a_poll_failure() -> None:
    documents = [fixture_json(f"zai/{name}.json") for name in ZAI_FIXTURES]
    robustness.assert_survives_random_mutations(zai.parse, documents, seed=20260902)


@pytest.mark.django_db
def test_odd_but_parsable_payloads_store_on_this_database() -> None:
    parsed = zai.parse(
        envelope(
            {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "usage": 1e308, "currentValue": -1e308},
            {"type": "\x00NEW\ud800", "unit": 4, "number": 7, "percentage": 1e308, "nextResetTime": 1e30},
            {"type": "TIME_LIMIT", "unit": 5, "number": 1, "percentage": 2, "usageDetails": [{"modelCode": "\x00"}]},
            {"type": "Y" * 300, "unit": 10**12, "number": 1, "percentage": 3},
            level="\x00" + "p" * 300,
        )
    )
    # The two windows with extreme numbers are drift (issue 10).
    assert robustness.store_parsed("zai", parsed) == len(parsed.quotas) == 2
    assert sum("out of range" in note for note in parsed.unknown) == 2
