"""quotas.rollups: roll-ups kept by every store path, and /api/history reading them like the readings."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from conftest import store_failure, store_payload, store_quotas
from quotas import reparsing, rollups
from quotas.history import history
from quotas.models import PollSession, QuotaReading, QuotaRollup, ResetCycle, Snapshot
from quotas.providers.base import Quota

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

pytestmark = pytest.mark.django_db


def subscription(used: float, limit: float = 1000, resets_at: datetime | None = None) -> Quota:
    return Quota(
        key="subscription", label="Subscription", kind="reset", unit="requests", used=used, limit=limit,
        resets_at=resets_at,
    )  # fmt: skip


def rolling(percent: float) -> Quota:
    return Quota(key="rolling_5h", label="Rolling (5h)", kind="rolling", unit="percent", percent=percent)


def table(*leave_out: str) -> list[tuple]:
    """Every roll-up, every field but the id (and ``leave_out``), in a stable order."""
    fields = [field.name for field in QuotaRollup._meta.concrete_fields if field.name not in {"id", *leave_out}]
    rows = QuotaRollup.objects.order_by("provider", "key", "resolution", "start").values_list(*fields)
    return [tuple(round(value, 6) if isinstance(value, float) else value for value in row) for row in rows]


def polled_history(start: datetime, polls: int, step: timedelta, seed: int = 3) -> datetime:
    """Polls every ``step`` of a reset counter (resets every 5 h, drops, climbs) and a rolling window.

    With outages: one of 3 hours (the hourly roll-ups before are out of reach
    of the poller's usual SELECT) and some of a few steps. Returns the last poll's time.
    """
    rng = random.Random(seed)
    used, level = 0.0, 30.0
    at = start
    for i in range(polls):
        at = start + i * step
        if i % 97 in (40, 41, 42) or (polls // 2 <= i < polls // 2 + math.ceil(3 * HOUR / step)):
            continue  # outages
        period = 5 * HOUR
        resets_at = datetime.fromtimestamp((at.timestamp() // period.total_seconds() + 1) * period.total_seconds(), UTC)
        if i and at - step < resets_at - period:
            used = 0.0
        used += rng.choice([0, 0, 1, 4, 12])
        level = min(max(level + rng.uniform(-3, 3), 0.0), 100.0)
        store_quotas(at, subscription(used, resets_at=resets_at), rolling(round(level, 2)))
    return at


def test_the_poller_keeps_both_resolutions_of_every_charted_quota() -> None:
    store_quotas(T0 + 30 * MINUTE, subscription(100), rolling(10))
    store_quotas(T0 + 31 * MINUTE, subscription(150), rolling(4))
    store_quotas(T0 + 36 * MINUTE, subscription(145), rolling(8))  # a drop under 1 % is no reset...
    store_quotas(T0 + 37 * MINUTE, subscription(5), rolling(8))  # ...this one is

    five = QuotaRollup.objects.filter(key="subscription", resolution=300).order_by("start")
    assert [(r.start, r.count, r.consumed) for r in five] == [
        (T0 + 30 * MINUTE, 2, 50.0),
        (T0 + 35 * MINUTE, 2, 5.0),  # the reset counts the new level
    ]
    hour = QuotaRollup.objects.get(key="subscription", resolution=3600)
    assert (hour.start, hour.count, hour.consumed) == (T0, 4, 55.0)
    assert (hour.first_at, hour.first_percent, hour.last_at, hour.last_percent) == (
        T0 + 30 * MINUTE, 10.0, T0 + 37 * MINUTE, 0.5,
    )  # fmt: skip
    assert (hour.min_at, hour.min_used, hour.max_at, hour.max_used) == (T0 + 37 * MINUTE, 5, T0 + 31 * MINUTE, 150)
    assert (hour.reset_before_at, hour.reset_before_used, hour.reset_after_at, hour.reset_after_used) == (
        T0 + 36 * MINUTE, 145, T0 + 37 * MINUTE, 5,
    )  # fmt: skip
    assert (hour.gap_began_at, hour.gap_ended_at, hour.gap_seconds) == (T0 + 31 * MINUTE, T0 + 36 * MINUTE, 300)
    window = QuotaRollup.objects.get(key="rolling_5h", resolution=3600)
    assert (window.unit, window.consumed, window.min_at, window.max_at) == (
        "percent",
        4.0,
        T0 + 31 * MINUTE,
        T0 + 30 * MINUTE,
    )
    assert window.reset_after_at is None


def test_a_failed_poll_and_a_quota_without_a_percent_add_nothing() -> None:
    store_failure(T0, outcome="server_error")
    store_quotas(T0 + MINUTE, Quota(key="credits", label="Credits", kind="rolling", unit="USD", used=3.0))

    assert QuotaRollup.objects.count() == 0


def test_the_poller_and_a_rebuild_agree_field_for_field(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 120
    polled_history(T0, 250, 2 * MINUTE)
    polled = table()

    written = rollups.rebuild()

    assert written == len(polled) > 50
    assert table() == polled


def test_a_rebuild_from_a_point_on_matches_a_full_one() -> None:
    polled_history(T0, 200, 2 * MINUTE)
    full = table()

    rollups.rebuild("synthetic", since=T0 + 4 * HOUR + 17 * MINUTE)

    assert table() == full


def test_consumption_per_cycle_adds_up_from_the_roll_ups_as_cycles_count_it() -> None:
    polled_history(T0, 250, 5 * MINUTE)
    cycles = list(ResetCycle.objects.filter(quota="subscription").order_by("started_at"))
    assert len(cycles) >= 3

    for cycle in cycles:
        end = cycle.ended_at or T0 + 2000 * MINUTE
        # every reading of a cycle lies in [started_at, ended_at): sum the 5-minute buckets starting then
        buckets = QuotaRollup.objects.filter(
            key="subscription", resolution=300, first_at__gte=cycle.started_at, last_at__lt=end
        )
        assert sum(bucket.consumed for bucket in buckets) == pytest.approx(cycle.consumed)


@pytest.mark.parametrize(
    ("previous", "at", "expected"),
    [
        # 1 SELECT of the current buckets, 1 UPDATE of both resolutions of both quotas
        (T0 + MINUTE, T0 + 2 * MINUTE, 2),
        # a new 5-minute bucket: SELECT, INSERT (the new ones), UPDATE (the hourly ones)
        (T0 + 4 * MINUTE, T0 + 6 * MINUTE, 3),
        # a new hour: SELECT (finds the previous hour), INSERT
        (T0 + 59 * MINUTE, T0 + 61 * MINUTE, 2),
        # after a 3-hour outage: SELECT, one more per quota for its latest roll-up, INSERT
        (T0 + MINUTE, T0 + 4 * HOUR, 1 + 2 + 1),
    ],
)
def test_the_poller_spends_few_queries_on_roll_ups(django_assert_num_queries, previous, at, expected) -> None:
    store_quotas(previous, subscription(10), rolling(5))
    snapshot = Snapshot.objects.create(provider="synthetic", captured_at=at)
    readings = [
        QuotaReading(snapshot=snapshot, provider="synthetic", captured_at=at, key=key, label=key, kind=kind,
                     unit="requests", used=used, limit=100, percent=used)
        for key, kind, used in [("subscription", "reset", 12.0), ("rolling_5h", "rolling", 4.0)]
    ]  # fmt: skip

    with django_assert_num_queries(expected):
        rollups.record(snapshot, readings)

    latest = QuotaRollup.objects.get(key="subscription", resolution=300, start=rollups.bucket_start(at, 300))
    assert (latest.last_at, latest.last_used) == (at, 12.0)
    assert latest.consumed == 2.0  # the rise since the previous poll, however long ago


def zai_body(tokens: int, resets_at: datetime) -> bytes:
    limit = {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "usage": 1_000_000, "currentValue": tokens}
    limit["nextResetTime"] = int(resets_at.timestamp() * 1000)
    body = {"code": 200, "msg": "Operation successful", "success": True, "data": {"limits": [limit], "level": "pro"}}
    return json.dumps(body).encode()


def test_reparse_rebuilds_the_roll_ups_of_its_provider() -> None:
    resets = T0 + 2 * HOUR
    for minute, tokens in [(0, 100_000), (1, 150_000), (90, 500_000), (121, 20_000), (180, 90_000)]:
        at = T0 + minute * MINUTE
        store_payload("zai", zai_body(tokens, resets if at < resets else resets + 5 * HOUR), at)
    store_quotas(T0, subscription(3))
    # reparse makes new cycles: their ids differ
    polled = table("last_cycle_id")
    QuotaRollup.objects.filter(provider="zai").update(consumed=-1, count=0)

    reparsing.reparse("zai")

    assert table("last_cycle_id") == polled
    assert QuotaRollup.objects.get(provider="zai", resolution=3600, start=T0 + 2 * HOUR).reset_after_at == (
        T0 + 121 * MINUTE
    )


def test_a_24h_chart_keeps_a_reset_whose_bucket_minimum_came_before_its_peak(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 60
    now = T0 + 12 * HOUR
    # one 10-minute chart bucket: the minimum first, the peak, the reset, a climb
    for minute, used in enumerate([200, 400, 600, 250, 300]):
        store_quotas(T0 + 3 * HOUR + (minute + 1) * MINUTE, subscription(used))

    for source in ("rollups", "readings"):
        points = history("synthetic", "24h", now=now, source=source)["series"][0]["points"]
        assert points == [
            ["2026-03-02T15:01:00Z", 20.0, 200.0],  # the bucket's minimum
            ["2026-03-02T15:03:00Z", 60.0, 600.0],  # its peak, the last reading before the reset
            ["2026-03-02T15:04:00Z", 25.0, 250.0],  # the first reading after it
            ["2026-03-02T15:05:00Z", 30.0, 300.0],  # the last
        ], source


@pytest.mark.parametrize(
    ("range_key", "polls", "step"),
    [("24h", 300, 5 * MINUTE), ("7d", 340, 30 * MINUTE), ("30d", 370, 2 * HOUR)],
)
def test_roll_ups_answer_as_the_readings_do_point_for_point(settings, range_key, polls, step) -> None:
    settings.SYNTRACK_POLL_INTERVAL = int(step.total_seconds())
    start = T0 - polls * step
    PollSession.objects.create(provider="synthetic", started_at=start, interval_seconds=int(step.total_seconds()))
    last = polled_history(start, polls, step, seed=polls)
    # polling stopped 40 minutes before `now`: a trailing gap on the shorter ranges
    now = last + (40 * MINUTE if range_key == "24h" else 0.5 * step)

    from_readings = history("synthetic", range_key, now=now, source="readings")
    from_rollups = history("synthetic", range_key, now=now, source="rollups")

    assert from_rollups == from_readings
    assert [len(s["points"]) for s in from_rollups["series"]] == [pytest.approx(300, abs=200)] * 2
    assert len(from_rollups["gaps"]) >= 3
    resets = ResetCycle.objects.filter(ended_at__gt=datetime.fromisoformat(from_rollups["start"])).count()
    assert resets >= 1


def test_the_30d_chart_draws_from_roll_ups_alone_once_the_readings_are_pruned(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 7200
    step = 2 * HOUR
    last = polled_history(T0, 370, step)
    before = history("synthetic", "30d", now=last + MINUTE)

    QuotaReading.objects.all().delete()
    Snapshot.objects.all().delete()

    assert history("synthetic", "30d", now=last + MINUTE) == before
    assert before["gaps"] and all(len(s["points"]) > 100 for s in before["series"])


def tools(used: float, search: float, reader: float, limit: float = 1000) -> Quota:
    """Z.ai's monthly tool calls with their per-tool breakdown."""
    return Quota(
        key="time_monthly", label="Tool calls (monthly)", kind="reset", unit="calls", used=used, limit=limit,
        details={"tools": [{"name": "search-prime", "used": search}, {"name": "web-reader", "used": reader}]},
    )  # fmt: skip


def test_tool_counts_are_rolled_up_as_the_quota_is_counted() -> None:
    for minute, (used, search, reader) in enumerate([(10, 8, 2), (14, 11, 3), (14, 11, 3), (20, 15, 5)]):
        store_quotas(T0 + (50 + 5 * minute) * MINUTE, tools(used, search, reader), provider="zai")
    store_quotas(T0 + 70 * MINUTE, tools(3, 2, 1), provider="zai")  # the month resets
    store_quotas(T0 + 71 * MINUTE, tools(5, 2, 3), provider="zai")

    hours = QuotaRollup.objects.filter(key="time_monthly", resolution=3600).order_by("start")
    # The first reading is a baseline; after the reset each tool counts its whole level, then its rises.
    assert [(r.consumed, r.tool_calls, r.last_tools) for r in hours] == [
        (4.0, {"search-prime": 3.0, "web-reader": 1.0}, {"search-prime": 11.0, "web-reader": 3.0}),
        (
            6.0 + 3.0 + 2.0,
            {"search-prime": 4.0 + 2.0, "web-reader": 2.0 + 1.0 + 2.0},
            {"search-prime": 2.0, "web-reader": 3.0},
        ),
    ]
    assert not QuotaRollup.objects.exclude(key="time_monthly").exists()
    polled = table()
    rollups.rebuild()
    assert table() == polled
