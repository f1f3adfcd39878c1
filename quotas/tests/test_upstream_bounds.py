"""Issue 10: an impossible upstream number is drift, never data, and rows already stored with one never break a read.

1. Each out-of-range value (NaN, ±∞, 1e308, a negative or enormous count, a
   share far beyond 100 %) makes its window drift, with a note naming the
   field; the other windows of the poll still store, the open cycle is not
   ended, and the next good poll's rate is the true one.
2. Rows an older build stored with such values (1e308, negatives, and the
   ∞/NaN a float column holds) leave every read endpoint answering 200.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction

from conftest import store_payload, store_quotas
from quotas import export, history, insights, rollups
from quotas.models import Outcome, PollAttempt, QuotaReading, QuotaRollup, ResetCycle, Snapshot
from quotas.providers import synthetic, zai
from quotas.providers.base import DRIFT, INVALID_RESPONSE, PollFailure, Quota, parse_json_object

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RESETS = "2026-03-02T17:00:00Z"
RESETS_MS = int(datetime(2026, 3, 2, 17, 0, tzinfo=UTC).timestamp() * 1000)

pytestmark = pytest.mark.django_db

# Numbers no window can report; each must make its window drift.
IMPOSSIBLE: list[Any] = [1e308, float("inf"), float("-inf"), float("nan"), -1, -1350, 10**400, 2e15, "1e999", "NaN"]
IMPOSSIBLE_SHARES: list[Any] = [1e308, float("inf"), float("nan"), -1, -0.5, 1001, 10**400, "Infinity"]


def body(payload: dict) -> bytes:
    # json.dumps writes NaN/Infinity as Python's json.loads (and so the poller) reads them.
    return json.dumps(payload).encode()


def synthetic_payload(requests: Any = 100, limit: Any = 1350, **subscription: Any) -> dict:
    return {
        "subscription": {"limit": limit, "requests": requests, "renewsAt": RESETS, **subscription},
        "search": {"hourly": {"limit": 250, "requests": 10, "renewsAt": RESETS}},
    }


def zai_payload(used: Any = 9_600_000, limit: Any = 80_000_000, percentage: Any = 12, **tokens: Any) -> dict:
    window = {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "usage": limit, "currentValue": used}
    window.update(percentage=percentage, nextResetTime=RESETS_MS, **tokens)
    return {
        "code": 200,
        "success": True,
        "data": {
            "limits": [
                window,
                {"type": "TIME_LIMIT", "unit": 5, "number": 1, "usage": 1000, "currentValue": 69, "remaining": 931},
            ]
        },
    }


def zai_share_only(percentage: Any) -> dict:
    """A token window that carries only its percentage (zai/v2_percentage_only.json)."""
    payload = zai_payload()
    payload["data"]["limits"][0] = {
        "type": "TOKENS_LIMIT", "unit": 3, "number": 5, "percentage": percentage, "nextResetTime": RESETS_MS,
    }  # fmt: skip
    return payload


# (provider, key of the window made bad, good payload, bad payload builder, field named in the note)
CASES = [
    ("synthetic", "subscription", synthetic_payload(), lambda v: synthetic_payload(requests=v), "requests"),
    ("synthetic", "subscription", synthetic_payload(), lambda v: synthetic_payload(limit=v), "limit"),
    ("synthetic", "subscription", synthetic_payload(), lambda v: synthetic_payload(remaining=v), "remaining"),
    ("zai", "tokens_5h", zai_payload(), lambda v: zai_payload(used=v), "currentValue"),
    ("zai", "tokens_5h", zai_payload(), lambda v: zai_payload(limit=v), "usage"),
    ("zai", "tokens_5h", zai_payload(), lambda v: zai_payload(remaining=v), "remaining"),
]


@pytest.mark.parametrize("value", IMPOSSIBLE, ids=repr)
@pytest.mark.parametrize(
    ("provider", "key", "good", "bad", "field"), CASES, ids=lambda c: c if isinstance(c, str) else ""
)
def test_an_impossible_amount_is_drift_of_that_window_only(provider, key, good, bad, field, value) -> None:
    parse = {"synthetic": synthetic.parse, "zai": zai.parse}[provider]
    parsed = parse(parse_json_object(body(bad(value))))
    assert key not in {q.key for q in parsed.quotas}
    assert len(parsed.quotas) == len(parse(good).quotas) - 1
    assert any(f"{field} out of range" in note for note in parsed.unknown), parsed.unknown


@pytest.mark.parametrize("value", IMPOSSIBLE_SHARES, ids=repr)
def test_an_impossible_share_is_drift_of_that_window_only(value) -> None:
    parsed = zai.parse(parse_json_object(body(zai_share_only(value))))
    assert [q.key for q in parsed.quotas] == ["time_monthly"]
    assert any("percentage out of range" in note for note in parsed.unknown), parsed.unknown

    weekly = {"maxCredits": "$24.00", "remainingCredits": "$11.20", "percentRemaining": value}
    parsed = synthetic.parse(parse_json_object(body({**synthetic_payload(), "weeklyTokenLimit": weekly})))
    assert "weekly_credits" not in {q.key for q in parsed.quotas}
    assert any("percentRemaining out of range" in note for note in parsed.unknown), parsed.unknown


def test_a_percent_derived_beyond_its_range_is_drift_too() -> None:
    # 5 requests of a limit of 0.001 is 500,000 %: each number alone is in range, together impossible.
    parsed = synthetic.parse(synthetic_payload(requests=5, limit=0.001))
    assert "subscription" not in {q.key for q in parsed.quotas}
    assert any("subscription (percent out of range" in note for note in parsed.unknown)


def test_a_payload_whose_only_window_is_impossible_is_a_drift_failure_that_names_the_field() -> None:
    with pytest.raises(PollFailure) as caught:
        synthetic.parse({"subscription": {"limit": -1350, "requests": 5}})
    assert caught.value.outcome == DRIFT
    assert "subscription (limit out of range: -1350)" in caught.value.message
    with pytest.raises(PollFailure) as caught:
        zai.parse(zai_share_only(1e308) | {"data": {"limits": [zai_share_only(1e308)["data"]["limits"][0]]}})
    assert caught.value.outcome == DRIFT
    assert "percentage out of range" in caught.value.message


def test_real_payloads_stay_in_range() -> None:
    # Usage above the limit (Z.ai's 200,112,618 of 200,000,000) and zero limits are real: not drift.
    parsed = zai.parse(zai_payload(used=200_112_618, limit=200_000_000, percentage=100))
    assert [q.key for q in parsed.quotas] == ["tokens_5h", "time_monthly"]
    assert parsed.unknown == []
    parsed = synthetic.parse(synthetic_payload(requests=0, limit=0))
    assert parsed.unknown == []


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_json_nested_too_deeply_is_an_invalid_response(depth: int) -> None:
    for nested in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        with pytest.raises(PollFailure) as caught:
            parse_json_object(nested.encode())
        assert caught.value.outcome == INVALID_RESPONSE
        assert "nested too deeply" in caught.value.message


# The two reports, end to end: stored through the poller's own path, read through the API.


@pytest.mark.parametrize("value", [-1350, 1e308, float("nan"), float("-inf")], ids=repr)
def test_a_negative_limit_neither_ends_the_cycle_nor_skews_the_next_rate(api, value) -> None:
    store_payload("synthetic", body(synthetic_payload(requests=100)), T0)
    attempt = store_payload("synthetic", body(synthetic_payload(requests=5, limit=value)), T0 + MINUTE)
    store_payload("synthetic", body(synthetic_payload(requests=110)), T0 + 3 * MINUTE)

    # The bad poll still counts (search stored) and is flagged as drift naming the field.
    assert (attempt.outcome, attempt.drift) == (Outcome.OK, True)
    assert "subscription (limit out of range" in attempt.message
    assert any("limit out of range" in note for note in attempt.snapshot.drift_notes)
    assert list(QuotaReading.objects.filter(snapshot=attempt.snapshot).values_list("key", flat=True)) == [
        "search_hourly"
    ]
    # One cycle, never ended; it counted 100 → 110 only.
    (cycle,) = ResetCycle.objects.filter(provider="synthetic", quota="subscription")
    assert (cycle.started_at, cycle.ended_at, cycle.consumed, cycle.peak_used) == (T0, None, 10.0, 110.0)

    with time_machine.travel(T0 + 4 * MINUTE, tick=False):
        current = api.get("/api/current?provider=synthetic")
        cycles = api.get("/api/cycles?provider=synthetic&quota=subscription")
    assert current.status_code == cycles.status_code == 200
    (subscription,) = [q for q in current.json()["quotas"] if q["key"] == "subscription"]
    assert subscription["used"] == 110.0
    # 10 requests in 3 minutes; the fake reset made this 3,450/h here (45,135/h in the issue).
    assert subscription["rate_per_hour"] == 200.0
    assert [c["ended_at"] for c in cycles.json()["cycles"]] == [None]
    assert cycles.json()["cycles"][0]["consumed"] == 10.0


@pytest.mark.parametrize("value", [1e308, float("inf"), -1e308, float("nan"), -3], ids=repr)
def test_an_extreme_percentage_is_never_stored_and_the_chart_stays_up(api, value) -> None:
    store_payload("zai", body(zai_share_only(12)), T0)
    attempt = store_payload("zai", body(zai_share_only(value)), T0 + MINUTE)
    store_payload("zai", body(zai_share_only(13)), T0 + 2 * MINUTE)

    assert (attempt.outcome, attempt.drift) == (Outcome.OK, True)
    assert "percentage out of range" in attempt.message
    percents = list(
        QuotaReading.objects.filter(key="tokens_5h").order_by("captured_at").values_list("percent", flat=True)
    )
    assert percents == [12.0, 13.0]
    assert list(ResetCycle.objects.filter(quota="tokens_5h").values_list("ended_at", "consumed")) == [(None, 1.0)]
    with time_machine.travel(T0 + 3 * MINUTE, tick=False):
        for range_key in history.RANGES:
            response = api.get(f"/api/history?provider=zai&range={range_key}")
            assert response.status_code == 200, (range_key, response.content)
            (series,) = [s for s in response.json()["series"] if s["key"] == "tokens_5h"]
            assert max(point[1] for point in series["points"]) == 13.0


# Rows an older build stored: every read path answers 200 with them present.

EXTREMES = [1e308, -1e308, float("inf"), float("-inf"), float("nan"), -1350.0]


def store_extreme_rows() -> None:
    """What a build without the bounds left behind, on both providers: readings, roll-ups, cycles, sessions."""
    at = T0
    for provider, key, unit in (("synthetic", "subscription", "requests"), ("zai", "tokens_5h", "tokens")):
        for i, value in enumerate([10.0, 1e308, 20.0, -1e308, 30.0, -1350.0, 40.0]):
            quota = Quota(key=key, label=key, kind="reset", unit=unit, used=value, limit=1000.0)
            share = Quota(key=f"{key}_share", label="share", kind="reset", unit="percent", percent=value)
            rolling = Quota(key="rolling_5h", label="rolling", kind="rolling", unit="requests", used=value, limit=500)
            store_quotas(at + i * MINUTE, quota, share, rolling, provider=provider)
    # ∞ and NaN (a float column holds them; SQLite keeps NaN as NULL) straight into the rows.
    readings = list(QuotaReading.objects.order_by("id"))
    for reading, value in zip(readings, EXTREMES * len(readings), strict=False):
        QuotaReading.objects.filter(pk=reading.pk).update(used=value, percent=value, remaining=value)
    # Roll-up shares are NOT NULL, and SQLite stores NaN as NULL: NaN only where PostgreSQL keeps it.
    values = EXTREMES if connection.vendor == "postgresql" else [v for v in EXTREMES if v == v]
    for rollup, value in zip(QuotaRollup.objects.order_by("id"), values * 100, strict=False):
        QuotaRollup.objects.filter(pk=rollup.pk).update(
            consumed=value, max_percent=value, max_used=value, last_percent=value, last_used=value
        )
    # More readings in the last hour than a chart shows (history ranks them in the database then).
    snapshots = Snapshot.objects.bulk_create(
        [
            Snapshot(provider="zai", captured_at=T0 - timedelta(minutes=50) + i * timedelta(seconds=5))
            for i in range(600)
        ]
    )
    QuotaReading.objects.bulk_create(
        QuotaReading(
            snapshot=snapshot,
            provider="zai",
            captured_at=snapshot.captured_at,
            key="bulk",
            label="bulk",
            kind="reset",
            unit="tokens",
            used=values[i % len(values)],
            limit=values[(i + 1) % len(values)],
            percent=EXTREMES[i % len(EXTREMES)],
            remaining=values[(i + 2) % len(values)],
        )
        for i, snapshot in enumerate(snapshots)
    )
    for provider, key in (("synthetic", "subscription"), ("zai", "tokens_5h")):
        for i, value in enumerate(values):
            ResetCycle.objects.create(
                provider=provider,
                quota=key,
                unit="requests",
                started_at=T0 - timedelta(hours=6 * (i + 2)),
                ended_at=T0 - timedelta(hours=6 * (i + 1)),
                limit=value,
                peak_used=value,
                consumed=value,
                readings_count=3,
                last_used=value,
            )


def read_urls() -> list[str]:
    urls = ["/", "/api/status", "/api/providers", "/api/polls", "/api/sessions", "/api/alerts"]
    for provider in ("synthetic", "zai"):
        urls += [f"/api/current?provider={provider}", f"/api/summary?provider={provider}"]
        urls += [f"/api/cycles?provider={provider}", f"/api/history?provider={provider}&range=1h"]
        urls += [f"/api/history?provider={provider}&range={r}" for r in history.RANGES]
        urls += [f"/api/insights?provider={provider}&range={r}" for r in insights.RANGES]
        urls += [f"/api/export?what={what}&provider={provider}" for what in export.WHAT]
        urls += [f"/api/export?what={what}&provider={provider}&format=json" for what in export.WHAT]
    urls += ["/api/guard?provider=synthetic&quota=subscription", "/api/guard?provider=zai&quota=tokens_5h"]
    return urls


@pytest.mark.parametrize("newest", ["extreme", "good"])
def test_every_read_endpoint_answers_with_extreme_rows_stored(api, settings, newest) -> None:
    store_extreme_rows()
    settings.SYNTRACK_METRICS_PUBLIC = True
    assert QuotaReading.objects.filter(used__gt=1e300).exists()
    assert ResetCycle.objects.filter(consumed__gt=1e300).exists()
    if newest == "good":
        # The next good polls store on top of them (cycles, roll-ups and sessions read the previous rows).
        assert store_payload("synthetic", body(synthetic_payload(requests=50)), T0 + 8 * MINUTE).outcome == Outcome.OK
        assert store_payload("zai", body(zai_payload()), T0 + 8 * MINUTE).outcome == Outcome.OK
    else:
        # The newest readings are the impossible ones: /api/current, the guard and /metrics show them.
        for provider, key in (("synthetic", "subscription"), ("zai", "tokens_5h")):
            extreme = Quota(key=key, label=key, kind="reset", unit="requests", used=1e308, limit=1e-300)
            share = Quota(key=f"{key}_share", label="share", kind="reset", unit="percent", percent=-1e308)
            store_quotas(T0 + 8 * MINUTE, extreme, share, provider=provider)
        QuotaReading.objects.filter(captured_at=T0 + 8 * MINUTE, key="subscription").update(remaining=float("inf"))
    failed = []
    with time_machine.travel(T0 + 10 * MINUTE, tick=False):
        for url in [*read_urls(), "/metrics"]:
            try:
                with transaction.atomic():  # on PostgreSQL, one failing query must not abort the rest
                    response = api.get(url)
                    content = b"".join(response.streaming_content) if response.streaming else response.content
            except Exception as error:  # the test client re-raises what a view raised: a 500
                failed.append((url, repr(error)[:200]))
                continue
            # The guard may say 429 (little left) or 503 (stale): answers, not errors.
            answers = (200, 429, 503) if url.startswith("/api/guard") else (200,)
            if response.status_code not in answers:
                failed.append((url, response.status_code, content[:200]))
            elif response.get("Content-Type", "").startswith("application/json"):
                # Strict JSON: no NaN or Infinity reaches a client.
                try:
                    json.loads(content, parse_constant=_no_constant)
                except AssertionError as error:
                    failed.append((url, str(error)))
    assert failed == []


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in a JSON answer")


def test_stored_extreme_readings_never_move_a_cycle() -> None:
    # A reading past the adapters (an older build's row, reparsed) is not a reset.
    store_quotas(T0, Quota(key="subscription", label="s", kind="reset", unit="requests", used=100, limit=1350))
    bad = Quota(key="subscription", label="s", kind="reset", unit="requests", used=-5, limit=-1350)
    store_quotas(T0 + MINUTE, bad)
    store_quotas(T0 + 2 * MINUTE, Quota(key="subscription", label="s", kind="reset", unit="requests", used=1e308))
    store_quotas(
        T0 + 3 * MINUTE, Quota(key="subscription", label="s", kind="reset", unit="requests", used=110, limit=1350)
    )
    (cycle,) = ResetCycle.objects.all()
    assert (cycle.ended_at, cycle.consumed, cycle.peak_used) == (None, 10.0, 110.0)
    assert Snapshot.objects.count() == PollAttempt.objects.count() == 4


@pytest.mark.parametrize("percent", [None, 50.0], ids=["summed-by-the-database", "rolled-up"])
def test_usage_over_a_range_of_extreme_readings_is_counted_without_overflow(percent) -> None:
    """Insights count a quota's steps: in the database (no percent: not rolled up) or from the roll-ups."""
    values = [10.0, 1e308, -1e308, 1e308, 20.0, -1350.0, 30.0]
    snapshots = Snapshot.objects.bulk_create(
        [Snapshot(provider="zai", captured_at=T0 - timedelta(hours=30) + i * timedelta(hours=5)) for i in range(7)]
    )
    QuotaReading.objects.bulk_create(
        QuotaReading(
            snapshot=snapshot,
            provider="zai",
            captured_at=snapshot.captured_at,
            key="tokens_5h",
            label="t",
            kind="reset",
            unit="tokens",
            used=used,
            limit=1000.0,
            percent=percent,
        )
        for snapshot, used in zip(snapshots, values, strict=True)
    )
    if percent is not None:
        rollups.rebuild("zai")
    total = insights.consumed_between("zai", "tokens_5h", T0 - timedelta(days=2), T0)
    assert total == total and abs(total) < 1e300  # finite, not NaN
