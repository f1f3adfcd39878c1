"""Reset-cycle tracking (product.md §5, "Reset cycles"), fed the way the poller feeds it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from conftest import fixture_json
from quotas import cycles
from quotas.models import QuotaReading, ResetCycle, Snapshot
from quotas.polling import add_readings
from quotas.providers import zai
from quotas.providers.base import Quota

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

pytestmark = pytest.mark.django_db


def quota(
    used: float | None,
    limit: float | None = 1000,
    *,
    resets_at: datetime | None = None,
    key: str = "tokens_5h",
    kind: str = "reset",
    unit: str = "tokens",
    percent: float | None = None,
) -> Quota:
    return Quota(key=key, label=key, kind=kind, unit=unit, used=used, limit=limit, percent=percent, resets_at=resets_at)


def poll(at: datetime, *quotas: Quota, provider: str = "zai") -> list[QuotaReading]:
    """One successful poll at ``at``: a snapshot and its readings, as store() writes them."""
    snapshot = Snapshot.objects.create(provider=provider, captured_at=at)
    return add_readings(snapshot, list(quotas))


def cycles_of(key: str = "tokens_5h", provider: str = "zai") -> list[ResetCycle]:
    return list(ResetCycle.objects.filter(provider=provider, quota=key).order_by("started_at", "id"))


def test_the_first_reading_opens_a_cycle_that_has_consumed_nothing() -> None:
    resets = T0 + 3 * HOUR
    (reading,) = poll(T0, quota(40, resets_at=resets))

    (cycle,) = cycles_of()
    assert reading.cycle == cycle
    assert QuotaReading.objects.get().cycle_id == cycle.pk
    assert (cycle.started_at, cycle.ended_at, cycle.resets_at) == (T0, None, resets)
    assert (cycle.consumed, cycle.peak_used, cycle.limit, cycle.readings_count) == (0.0, 40.0, 1000.0, 1)
    assert cycle.unit == "tokens"
    assert cycle.active is True


def test_positive_deltas_accumulate_and_the_peak_is_kept() -> None:
    resets = T0 + 3 * HOUR
    for i, used in enumerate([10, 25, 25, 60, 55.5, 70.25]):
        poll(T0 + i * MINUTE, quota(used, resets_at=resets))

    (cycle,) = cycles_of()
    # 15 + 0 + 35 + 0 (a dip of 0.45 % is no reset) + 14.75
    assert cycle.consumed == 64.75
    assert cycle.peak_used == 70.25
    assert cycle.readings_count == 6
    assert cycle.last_used == 70.25
    assert cycle.last_reading_at == T0 + 5 * MINUTE
    assert cycle.ended_at is None
    assert QuotaReading.objects.filter(cycle=cycle).count() == 6


def test_a_dip_keeps_the_peak_and_the_rise_after_it_counts_again() -> None:
    for i, used in enumerate([500, 495, 505]):
        poll(T0 + i * MINUTE, quota(used))

    (cycle,) = cycles_of()
    assert cycle.peak_used == 505
    assert cycle.consumed == 10.0


def test_it_opens_a_new_cycle_on_a_clear_drop() -> None:
    resets = T0 + 3 * HOUR
    poll(T0, quota(700, resets_at=resets))
    poll(T0 + MINUTE, quota(800, resets_at=resets))
    (revealing,) = poll(T0 + 2 * MINUTE, quota(5, resets_at=resets + 5 * HOUR))

    old, new = cycles_of()
    assert (old.started_at, old.ended_at) == (T0, T0 + 2 * MINUTE)
    assert (old.consumed, old.peak_used, old.readings_count) == (100.0, 800.0, 2)
    # The reading that reveals the reset belongs to the new cycle and counts in full.
    assert revealing.cycle == new
    assert QuotaReading.objects.get(pk=revealing.pk).cycle_id == new.pk
    assert (new.started_at, new.ended_at, new.resets_at) == (T0 + 2 * MINUTE, None, resets + 5 * HOUR)
    assert (new.consumed, new.peak_used, new.readings_count) == (5.0, 5.0, 1)
    assert QuotaReading.objects.filter(cycle=old).count() == 2


def test_a_drop_after_the_stored_reset_time_ends_the_cycle_at_that_time() -> None:
    resets = T0 + 10 * MINUTE
    poll(T0, quota(300, resets_at=resets))
    poll(T0 + 9 * MINUTE, quota(320, resets_at=resets))
    poll(T0 + 10 * MINUTE + timedelta(seconds=20), quota(2, resets_at=resets + 5 * HOUR))

    old, new = cycles_of()
    assert old.ended_at == resets
    assert new.started_at == resets
    assert new.consumed == 2.0


def test_a_drop_of_at_most_one_percent_of_the_limit_is_not_a_reset() -> None:
    poll(T0, quota(500))
    poll(T0 + MINUTE, quota(490))  # exactly 1 %: not more than 1 %
    poll(T0 + 2 * MINUTE, quota(482))  # 0.8 %

    (cycle,) = cycles_of()
    assert cycle.consumed == 0.0
    assert cycle.peak_used == 500
    assert cycle.readings_count == 3


def test_a_drop_just_over_one_percent_of_the_limit_is_a_reset() -> None:
    poll(T0, quota(500))
    poll(T0 + MINUTE, quota(489.9))

    old, new = cycles_of()
    assert old.ended_at == T0 + MINUTE
    assert new.consumed == 489.9


@pytest.mark.parametrize(("after", "resets"), [(51, False), (50, False), (49.9, True), (0, True)])
def test_without_a_limit_only_a_drop_of_more_than_half_is_a_reset(after: float, resets: bool) -> None:
    poll(T0, quota(100, limit=None))
    poll(T0 + MINUTE, quota(after, limit=None))

    found = cycles_of()
    assert len(found) == (2 if resets else 1)
    assert found[0].limit is None
    if resets:
        assert found[1].consumed == after
        assert found[0].ended_at == T0 + MINUTE


@pytest.mark.parametrize("interval", [60, 600, 3600])
def test_synthetic_drift_of_the_reset_time_by_one_poll_interval_is_not_a_reset(interval: int) -> None:
    """Synthetic reports `search` renewing "now + 1 h" on every poll.

    With an hourly poll the stored time has just passed at every poll; the
    drift still must not read as a reset, over 100 polls.
    """
    used = 0.0
    for i in range(100):
        latency = timedelta(milliseconds=200 + (i * 379) % 2800)
        at = T0 + i * timedelta(seconds=interval) + latency
        # Upstream stamps its answer half-way through the request.
        renews = at - latency / 2 + HOUR
        used += i % 3
        poll(at, quota(used, limit=250, resets_at=renews, key="search_hourly", unit="requests"), provider="synthetic")

    (cycle,) = cycles_of("search_hourly", "synthetic")
    assert cycle.ended_at is None
    assert cycle.readings_count == 100
    assert cycle.consumed == used
    assert QuotaReading.objects.filter(cycle=cycle).count() == 100


def zai_payload(current: int, next_reset_ms: int) -> dict:
    return {
        "code": 200,
        "msg": "Operation successful",
        "success": True,
        "data": {
            "limits": [
                {
                    "type": "TOKENS_LIMIT",
                    "unit": 3,
                    "number": 5,
                    "usage": 80000000,
                    "currentValue": current,
                    "nextResetTime": next_reset_ms,
                }
            ],
            "level": "pro",
        },
    }


def test_millisecond_jitter_of_the_zai_reset_time_is_not_a_reset() -> None:
    reset_ms = int((T0 + 4 * HOUR).timestamp() * 1000)
    for i in range(60):
        jitter = (-3, 0, 2, 5, -1)[i % 5]
        parsed = zai.parse(json.loads(json.dumps(zai_payload(1_000_000 + i * 5000, reset_ms + jitter))))
        poll(T0 + i * MINUTE, *parsed.quotas)

    (cycle,) = cycles_of()
    assert cycle.ended_at is None
    assert cycle.readings_count == 60
    assert cycle.consumed == 59 * 5000.0
    assert abs(cycle.resets_at - (T0 + 4 * HOUR)) <= timedelta(milliseconds=5)


def test_jitter_around_a_reset_time_that_just_passed_is_not_a_reset() -> None:
    resets = T0 + 30 * MINUTE
    poll(T0 + 29 * MINUTE, quota(100, resets_at=resets))
    # The window did not reset yet (upstream is late); the time jitters by milliseconds.
    for i in range(1, 6):
        poll(T0 + 29 * MINUTE + i * MINUTE, quota(100 + i, resets_at=resets + timedelta(milliseconds=i % 3)))

    (cycle,) = cycles_of()
    assert cycle.readings_count == 6
    assert cycle.consumed == 5.0


@pytest.mark.parametrize("used_after", [309, 310, 350])
def test_a_reset_while_the_poller_was_down_is_found_and_ends_at_the_true_reset_instant(used_after: float) -> None:
    resets = T0 + 2 * HOUR
    poll(T0, quota(300, resets_at=resets))
    poll(T0 + MINUTE, quota(310, resets_at=resets))
    # Down from T0+1m to T0+4h: the window reset at T0+2h and was used again since.
    (revealing,) = poll(T0 + 4 * HOUR, quota(used_after, resets_at=resets + 5 * HOUR))

    old, new = cycles_of()
    assert (old.started_at, old.ended_at, old.resets_at) == (T0, resets, resets)
    assert (old.consumed, old.peak_used, old.readings_count) == (10.0, 310.0, 2)
    assert (new.started_at, new.ended_at, new.resets_at) == (resets, None, resets + 5 * HOUR)
    assert (new.consumed, new.peak_used, new.readings_count) == (used_after, used_after, 1)
    assert revealing.cycle == new


def test_a_reset_seen_moments_after_its_instant_is_decided_at_that_first_poll() -> None:
    """A quiet monthly window: the counter barely moves, so only the reset time tells."""
    resets = T0 + 30 * MINUTE
    month_later = resets + timedelta(days=30)
    calls = {"key": "time_monthly", "unit": "calls"}
    poll(resets - MINUTE, quota(3, resets_at=resets, **calls))
    (revealing,) = poll(resets + timedelta(seconds=20), quota(0, resets_at=month_later, **calls))
    (following,) = poll(resets + timedelta(seconds=80), quota(1, resets_at=month_later, **calls))

    old, new = cycles_of("time_monthly")
    assert old.ended_at == resets
    assert (old.peak_used, old.readings_count) == (3.0, 1)
    assert (new.started_at, new.resets_at, new.consumed, new.readings_count) == (resets, month_later, 1.0, 2)
    assert revealing.cycle == new
    assert following.cycle == new


@pytest.mark.parametrize("interval", [60, 3600])
def test_usage_after_a_reset_belongs_to_the_new_cycle_from_the_first_poll(interval: int) -> None:
    """50 → reset → 80: the counter rose across the reset, so only the reset time reveals it."""
    resets = T0 + 5 * HOUR
    gap = timedelta(seconds=interval)
    first_after = resets + timedelta(seconds=30)
    poll(first_after - gap, quota(50, resets_at=resets, key="subscription", unit="requests"), provider="synthetic")
    (revealing,) = poll(
        first_after, quota(80, resets_at=resets + 5 * HOUR, key="subscription", unit="requests"), provider="synthetic"
    )

    old, new = cycles_of("subscription", "synthetic")
    assert (old.ended_at, old.peak_used, old.readings_count) == (resets, 50.0, 1)
    assert (new.started_at, new.peak_used, new.consumed) == (resets, 80.0, 80.0)
    assert revealing.cycle == new


def test_a_reset_time_that_moves_with_the_poll_clock_after_a_long_gap_is_drift() -> None:
    """The poller was stopped for three hours: `search` still reports "now + 1 h", no reset."""
    search = {"key": "search_hourly", "unit": "requests", "limit": 250}
    poll(T0, quota(10, resets_at=T0 + HOUR, **search), provider="synthetic")
    later = T0 + 3 * HOUR + timedelta(seconds=7)
    poll(later, quota(12, resets_at=later + HOUR, **search), provider="synthetic")

    (cycle,) = cycles_of("search_hourly", "synthetic")
    assert (cycle.ended_at, cycle.readings_count, cycle.resets_at) == (None, 2, later + HOUR)


def test_a_cycle_never_ends_before_it_started() -> None:
    # The first reading reports a reset time that already lies before it.
    poll(T0, quota(400, resets_at=T0 - 10 * MINUTE))
    poll(T0 + MINUTE, quota(5, resets_at=T0 + 5 * HOUR))

    old, new = cycles_of()
    assert old.ended_at == T0 + MINUTE
    assert new.started_at == T0 + MINUTE
    assert all(c.ended_at is None or c.ended_at >= c.started_at for c in cycles_of())


def test_the_database_refuses_a_cycle_that_ends_before_it_starts() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        ResetCycle.objects.create(provider="zai", quota="tokens_5h", started_at=T0, ended_at=T0 - MINUTE)


def test_tracking_continues_from_the_database_after_a_restart() -> None:
    resets = T0 + 5 * HOUR
    poll(T0, quota(100, resets_at=resets))
    poll(T0 + MINUTE, quota(120, resets_at=resets))
    # The poller stops; nothing survives in memory. It starts again 40 minutes later.
    (reading,) = poll(T0 + 41 * MINUTE, quota(180, resets_at=resets))

    (cycle,) = cycles_of()
    assert reading.cycle == cycle
    assert cycle.consumed == 80.0  # 20 before, and the 60 used while the poller was down
    assert cycle.readings_count == 3


def test_track_returns_what_each_reading_adds() -> None:
    def one(at: datetime, used: float) -> float | None:
        snapshot = Snapshot.objects.create(provider="zai", captured_at=at)
        reading = QuotaReading(
            snapshot=snapshot,
            provider="zai",
            captured_at=at,
            key="tokens_5h",
            label="Tokens (5h)",
            kind="reset",
            unit="tokens",
            used=used,
            limit=1000,
        )
        return cycles.track(reading)

    assert one(T0, 100) == 0.0
    assert one(T0 + MINUTE, 150) == 50.0
    assert one(T0 + 2 * MINUTE, 149) == 0.0
    assert one(T0 + 3 * MINUTE, 7) == 7.0


def test_rolling_windows_get_no_cycles() -> None:
    readings = poll(
        T0,
        quota(30, limit=500, key="rolling_5h", kind="rolling", unit="requests", resets_at=T0 + MINUTE),
        provider="synthetic",
    )
    poll(
        T0 + 2 * MINUTE,
        quota(0, limit=500, key="rolling_5h", kind="rolling", unit="requests", resets_at=T0 + 3 * MINUTE),
        provider="synthetic",
    )

    assert ResetCycle.objects.count() == 0
    assert readings[0].cycle is None
    assert QuotaReading.objects.filter(cycle__isnull=False).count() == 0


def test_a_reading_without_any_number_gets_no_cycle() -> None:
    (reading,) = poll(T0, quota(None, limit=None, resets_at=T0 + HOUR))

    assert reading.cycle is None
    assert ResetCycle.objects.count() == 0


def test_percent_only_windows_track_cycles_on_the_percentage() -> None:
    def share(percent: float, resets_at: datetime) -> Quota:
        return quota(None, limit=None, percent=percent, unit="percent", resets_at=resets_at)

    resets = T0 + 2 * HOUR
    poll(T0, share(12, resets))
    poll(T0 + MINUTE, share(30, resets))
    poll(T0 + 2 * MINUTE, share(29.5, resets))  # 0.5 point: no reset
    (revealing,) = poll(T0 + 3 * MINUTE, share(0.5, resets))  # 29 points: a reset

    old, new = cycles_of()
    assert (old.unit, old.limit, old.peak_used, old.consumed, old.readings_count) == ("percent", 100.0, 30.0, 18.0, 3)
    assert old.ended_at == T0 + 3 * MINUTE
    assert (new.limit, new.peak_used, new.consumed) == (100.0, 0.5, 0.5)
    assert revealing.cycle == new


def test_the_zai_percentage_only_payload_tracks_its_token_windows_in_percent() -> None:
    parsed = zai.parse(fixture_json("zai/v2_percentage_only.json"))
    poll(T0, *parsed.quotas)

    five_hour = ResetCycle.objects.get(quota="tokens_5h")
    assert (five_hour.unit, five_hour.limit, five_hour.peak_used) == ("percent", 100.0, 12.0)
    weekly = ResetCycle.objects.get(quota="tokens_weekly")
    assert (weekly.unit, weekly.limit, weekly.peak_used) == ("percent", 100.0, 59.0)
    monthly = ResetCycle.objects.get(quota="time_monthly")
    assert (monthly.unit, monthly.limit, monthly.peak_used) == ("calls", 100.0, 3.0)


def test_there_is_one_open_cycle_per_provider_and_quota() -> None:
    ResetCycle.objects.create(provider="zai", quota="tokens_5h", started_at=T0)
    # Closed ones and other providers' are fine.
    ResetCycle.objects.create(provider="zai", quota="tokens_5h", started_at=T0 - HOUR, ended_at=T0)
    ResetCycle.objects.create(provider="synthetic", quota="tokens_5h", started_at=T0)

    with pytest.raises(IntegrityError), transaction.atomic():
        ResetCycle.objects.create(provider="zai", quota="tokens_5h", started_at=T0 + HOUR)


def test_each_quota_of_a_provider_has_its_own_cycle() -> None:
    poll(T0, quota(100, key="tokens_5h"), quota(50, key="tokens_weekly"))
    poll(T0 + MINUTE, quota(2, key="tokens_5h"), quota(60, key="tokens_weekly"))

    assert len(cycles_of("tokens_5h")) == 2
    (weekly,) = cycles_of("tokens_weekly")
    assert weekly.consumed == 10.0


def test_a_window_that_switches_to_percentages_carries_its_cycle_over_in_percent() -> None:
    resets = T0 + 2 * HOUR
    poll(T0, quota(200_000, limit=1_000_000, resets_at=resets))
    poll(T0 + MINUTE, quota(300_000, limit=1_000_000, resets_at=resets))
    # Upstream now sends only the share: 30 % is where the counter was, then 35 %.
    poll(T0 + 2 * MINUTE, quota(None, limit=None, percent=30, unit="percent", resets_at=resets))
    poll(T0 + 3 * MINUTE, quota(None, limit=None, percent=35, unit="percent", resets_at=resets))

    (cycle,) = cycles_of()
    assert (cycle.unit, cycle.limit, cycle.readings_count) == ("percent", 100.0, 4)
    assert cycle.peak_used == pytest.approx(35.0)
    assert cycle.consumed == pytest.approx(15.0)  # 100k tokens (10 %), then 5 %
    assert cycle.last_used == 35.0


def test_a_stale_reset_time_never_ends_a_cycle_before_its_own_readings() -> None:
    """Found by the soak (tools/soak.py): a reset time reported on after it passed, usage still rising."""
    stale = T0 + 5 * MINUTE
    for minutes, used in ((0, 100), (10, 150), (20, 200), (30, 250)):
        poll(T0 + minutes * MINUTE, quota(used, resets_at=stale))
    poll(T0 + 40 * MINUTE, quota(5, resets_at=T0 + 5 * HOUR))

    old, new = cycles_of()
    assert old.ended_at == T0 + 40 * MINUTE  # the revealing poll: the stale time lies before readings it holds
    assert QuotaReading.objects.filter(cycle=old, captured_at__gt=old.ended_at).count() == 0
    assert new.started_at == T0 + 40 * MINUTE
