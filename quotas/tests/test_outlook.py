"""quotas.numbers: the outlook of a quota, its exhaustion time and the evidence a projection needs.

Readings are built in memory and every call passes an explicit ``now``, so no
test depends on the clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lib.timefmt import isostring
from quotas.models import QuotaReading, ResetCycle
from quotas.numbers import MIN_READINGS, MIN_SPAN, quota_numbers
from quotas.tests.test_numbers import MINUTE, T0, reading

HOUR = timedelta(hours=1)


def steps(*points: tuple[int, float], cycle_id: int | None = 7, unit: str = "tokens") -> list[Any]:
    """Recent levels from (minutes relative to T0, used) pairs."""
    return [(T0 + minutes * MINUTE, used, unit, cycle_id) for minutes, used in points]


def rolling_5h(remaining: float, **details: Any) -> QuotaReading:
    """Synthetic's 5-hour window: 500 requests, 25 back every 15 minutes from 12:05."""
    tick = {"limited": False, "next_tick_at": "2026-03-02T12:05:00Z", "tick_percent": 5.0, "regen_amount": 25.0}
    return reading(
        key="rolling_5h",
        kind="rolling",
        unit="requests",
        used=500 - remaining,
        limit=500.0,
        remaining=remaining,
        percent=(500 - remaining) / 5,
        cycle_id=None,
        details={**tick, **details},
    )


def test_a_pace_that_lasts_past_the_reset_is_ok() -> None:
    # 100 → 400 in 30 minutes: 600/h; 600 left lasts one hour, the reset is 50 minutes away
    numbers = quota_numbers(
        reading(used=400.0, remaining=600.0, percent=40.0, resets_at=T0 + 50 * MINUTE),
        steps((-30, 100.0), (-15, 250.0), (0, 400.0)),
        None,
        now=T0,
    )

    assert numbers["rate_basis"] == "recent"
    assert numbers["projected_used"] == 900.0
    assert (numbers["outlook"], numbers["exhausts_at"], numbers["seconds_until_exhausted"]) == ("ok", None, None)


def test_a_pace_that_reaches_the_limit_before_the_reset_runs_out_before_reset() -> None:
    numbers = quota_numbers(
        reading(used=400.0, remaining=600.0, percent=40.0, resets_at=T0 + 70 * MINUTE),
        steps((-30, 100.0), (-15, 250.0), (0, 400.0)),
        None,
        now=T0 + 5 * MINUTE,
    )

    assert numbers["outlook"] == "runs_out_before_reset"
    # 600 left at 600/h, counted from the reading
    assert numbers["exhausts_at"] == isostring(T0 + HOUR)
    assert numbers["seconds_until_exhausted"] == 55 * 60
    assert numbers["exhausts_at"] < numbers["resets_at"]
    assert numbers["projected_percent"] == 110.0
    # the status alone would say "healthy": the outlook is what tells the truth
    assert numbers["status"] == "healthy"


def test_without_a_known_reset_any_exhaustion_is_before_the_reset() -> None:
    numbers = quota_numbers(reading(resets_at=None), steps((-20, 40.0), (-10, 70.0), (0, 100.0)), None, now=T0)

    assert numbers["outlook"] == "runs_out_before_reset"
    # 900 left at 180/h
    assert numbers["exhausts_at"] == isostring(T0 + 5 * HOUR)
    assert (numbers["projected_used"], numbers["projected_at"]) == (None, None)


@pytest.mark.parametrize("resets_in", [None, 10**6 * HOUR])
def test_a_crawl_past_the_horizon_never_runs_out_and_never_overflows(resets_in) -> None:
    # 1e-9 an hour with 1e15 left: 1e24 hours, far past year 9999 (the fuzzer's poller raised OverflowError).
    numbers = quota_numbers(
        reading(used=1.0, limit=1e15, remaining=1e15 - 1, percent=0.0, resets_at=T0 + resets_in if resets_in else None),
        steps((-30, 1.0), (-15, 1.0 + 2.5e-10), (0, 1.0 + 5e-10)),
        None,
        now=T0,
    )

    assert numbers["rate_basis"] == "recent" and numbers["rate_per_hour"] is not None
    assert (numbers["outlook"], numbers["exhausts_at"], numbers["seconds_until_exhausted"]) == ("ok", None, None)


@pytest.mark.parametrize(
    "fields",
    [
        {"used": 1000.0, "remaining": 0.0, "percent": 100.0},
        {"used": 1200.0, "remaining": 0.0, "percent": 120.0},
        # only the share is known
        {"used": None, "limit": None, "remaining": None, "percent": 100.0, "unit": "percent"},
        # room left, but the upstream blocks the user
        {"used": 600.0, "remaining": 400.0, "percent": 60.0, "details": {"limited": True}},
    ],
)
def test_at_the_limit_or_limited_the_outlook_is_exhausted(fields: dict[str, Any]) -> None:
    numbers = quota_numbers(
        reading(resets_at=T0 + HOUR, **fields),
        steps((-20, 500.0), (-10, 700.0), (0, 900.0), unit=fields.get("unit", "tokens")),
        None,
        now=T0,
    )

    assert numbers["outlook"] == "exhausted"
    assert numbers["exhausted"] is True
    assert (numbers["exhausts_at"], numbers["seconds_until_exhausted"]) == (None, None)


def test_two_readings_a_minute_apart_show_a_rate_but_project_nothing() -> None:
    # 100 → 400 in one minute: 18 000/h would "run out" in two minutes
    numbers = quota_numbers(
        reading(used=400.0, remaining=600.0, resets_at=T0 + HOUR), steps((-1, 100.0), (0, 400.0)), None, T0
    )

    assert (numbers["rate_per_hour"], numbers["rate_basis"]) == (18_000.0, "insufficient")
    assert (numbers["projected_used"], numbers["projected_percent"], numbers["projected_at"]) == (None, None, None)
    assert (numbers["outlook"], numbers["exhausts_at"]) == ("ok", None)


@pytest.mark.parametrize(
    ("minutes", "basis"),
    [
        # enough readings, too short a span
        ((-4, -2, 0), "insufficient"),
        # enough span, too few readings
        ((-30, 0), "insufficient"),
        # both minimums exactly met
        ((-5, -3, 0), "recent"),
    ],
)
def test_a_projection_needs_three_readings_over_five_minutes(minutes: tuple[int, ...], basis: str) -> None:
    assert (MIN_READINGS, MIN_SPAN) == (3, 5 * MINUTE)
    recent = steps(*((m, 100.0 + 300 * i) for i, m in enumerate(minutes)))
    used = recent[-1][1]

    numbers = quota_numbers(reading(used=used, remaining=1000 - used, resets_at=T0 + HOUR), recent, None, now=T0)

    assert numbers["rate_basis"] == basis
    projects = basis != "insufficient"
    assert numbers["outlook"] == ("runs_out_before_reset" if projects else "ok")
    assert (numbers["exhausts_at"] is not None) is projects
    assert (numbers["projected_used"] is not None) is projects


def test_an_hourly_poller_projects_from_its_cycle_once_it_has_three_readings() -> None:
    # The recent hour holds two readings; the cycle has three over two hours.
    cycle = ResetCycle(started_at=T0 - 2 * HOUR, last_reading_at=T0, consumed=300.0, readings_count=3)
    recent = steps((-60, 200.0), (0, 300.0))

    numbers = quota_numbers(reading(used=300.0, remaining=700.0, resets_at=T0 + 2 * HOUR), recent, cycle, now=T0)

    assert (numbers["rate_per_hour"], numbers["rate_basis"]) == (150.0, "cycle")
    assert numbers["projected_used"] == 600.0

    young = ResetCycle(started_at=T0 - HOUR, last_reading_at=T0, consumed=300.0, readings_count=2)
    thin = quota_numbers(reading(used=300.0, remaining=700.0, resets_at=T0 + 2 * HOUR), recent, young, now=T0)
    assert (thin["rate_basis"], thin["projected_used"]) == ("insufficient", None)


def test_rolling_refills_that_keep_up_never_run_out() -> None:
    # 20 used and 25 back by the 11:35 and 11:50 ticks: 80/h against 100/h of refills, 300 free
    recent = steps((-30, 210.0), (-15, 205.0), (0, 200.0), unit="requests")
    numbers = quota_numbers(rolling_5h(300.0), recent, None, T0)

    assert numbers["rate_per_hour"] == 80.0
    assert (numbers["outlook"], numbers["exhausts_at"]) == ("ok", None)
    # one window ahead (17:00): 300 free − 5 h × 80 + 20 ticks × 25 (12:05 … 16:50) = 400 free
    assert numbers["projected_at"] == isostring(T0 + 5 * HOUR)
    assert (numbers["projected_used"], numbers["projected_percent"]) == (100.0, 20.0)


def test_refills_never_fill_beyond_the_limit() -> None:
    # 2.5 used per 15 minutes, each tick giving back all of it: 10/h with 497.5 free;
    # the window is full after the first tick and stays there
    recent = steps((-30, 2.5), (-15, 2.5), (0, 2.5), unit="requests")
    numbers = quota_numbers(rolling_5h(497.5), recent, None, T0)

    assert numbers["rate_per_hour"] == 10.0

    # 500 free after the 16:50 tick, 10 minutes of use after it
    assert numbers["projected_used"] == round(10 * 10 / 60, 2)


def test_rolling_refills_that_fall_behind_run_out_between_two_ticks() -> None:
    # 160/h against 100/h: 40 used and 25 back every 15 minutes; 100 free at 12:00
    recent = steps((-30, 370.0), (-15, 385.0), (0, 400.0), unit="requests")
    numbers = quota_numbers(rolling_5h(100.0), recent, None, T0)

    assert numbers["rate_per_hour"] == 160.0

    # 12:05: 86.67 + 25 = 111.67; then 40 used and 25 back per tick: 96.67 (12:20) … 36.67 (13:20),
    # less than the 40 the next 15 minutes use: gone 36.67 / 160 h = 13.75 minutes later
    assert numbers["outlook"] == "runs_out_before_reset"
    assert numbers["exhausts_at"] == "2026-03-02T13:33:45Z"
    assert numbers["projected_percent"] == 100.0


def test_a_pace_below_the_refill_rate_still_runs_out_when_too_little_is_free_for_the_next_tick() -> None:
    # 15 used every 10 minutes (the 11:50 tick gave 25 back): 90/h, less than the 100/h of refills,
    # but 5 free last 3 min 20 s and the next tick comes at 12:05
    recent = steps((-20, 490.0), (-10, 480.0), (0, 495.0), unit="requests")
    numbers = quota_numbers(rolling_5h(5.0), recent, None, T0)

    assert numbers["rate_per_hour"] == 90.0

    assert numbers["outlook"] == "runs_out_before_reset"
    assert numbers["exhausts_at"] == "2026-03-02T12:03:20Z"


def test_the_rate_of_a_rolling_window_adds_back_what_the_ticks_restored() -> None:
    # The level rises 10 between 11:40 and 12:00 while the 11:50 tick gave 25 back: 35 used.
    recent = steps((-20, 400.0), (-10, 390.0), (0, 410.0), unit="requests")

    numbers = quota_numbers(rolling_5h(90.0), recent, None, T0)

    assert numbers["rate_per_hour"] == 105.0
    # A tick gives back no more than was in use: from 10 used, the 11:50 tick restores 10, not 25,
    # so 5 then 3 were used in 25 minutes.
    almost_full = steps((-25, 5.0), (-15, 10.0), (0, 3.0), unit="requests")
    assert quota_numbers(rolling_5h(497.0), almost_full, None, T0)["rate_per_hour"] == 8 / (25 / 60)


def test_a_rolling_projection_needs_the_same_evidence() -> None:
    numbers = quota_numbers(rolling_5h(5.0), steps((-1, 480.0), (0, 495.0), unit="requests"), None, T0)

    assert (numbers["rate_basis"], numbers["outlook"], numbers["exhausts_at"]) == ("insufficient", "ok", None)


def test_a_limited_window_never_says_a_share_is_free_now() -> None:
    # Synthetic can block with requests left: no share is "free again now" while it does.
    numbers = quota_numbers(rolling_5h(300.0, limited=True), [], None, now=T0)

    assert numbers["outlook"] == "exhausted"
    # 60 % free by the numbers: 25 % and 50 % are promised at the next tick, 100 % after 8 ticks
    assert numbers["details"]["available_again"] == {
        "25": "2026-03-02T12:05:00Z",
        "50": "2026-03-02T12:05:00Z",
        "100": "2026-03-02T13:50:00Z",
    }


def test_an_old_reading_moves_ticks_that_have_passed_to_the_next_one_after_now() -> None:
    # 10 % free at 12:00; ticks from 12:05. At 12:40 the 12:05…12:35 ticks have passed.
    numbers = quota_numbers(rolling_5h(50.0), [], None, now=T0 + 40 * MINUTE)
    again = numbers["details"]["available_again"]

    # 25 % needs 3 ticks (12:35, already past): the next tick after now, never "now" or the past
    assert again["25"] == "2026-03-02T12:50:00Z"
    # 50 % needs 8 ticks (13:50) and 100 % 18 ticks: still ahead, unchanged
    assert again["50"] == "2026-03-02T13:50:00Z"
    assert again["100"] == "2026-03-02T16:20:00Z"
    assert numbers["details"]["seconds_until_next_tick"] == 10 * 60
    assert numbers["details"]["upcoming_tick_at"] == "2026-03-02T12:50:00Z"
    assert numbers["details"]["next_tick_at"] == "2026-03-02T12:05:00Z"  # as reported
    assert all(at is None or at > isostring(T0 + 40 * MINUTE) for at in again.values())


def test_a_tick_time_reported_long_before_the_reading_follows_its_schedule() -> None:
    # A stale next_tick_at (three days before the reading, on the same 15-minute schedule)
    # projects exactly like the fresh 12:05 one.
    recent = steps((-30, 370.0), (-15, 385.0), (0, 400.0), unit="requests")
    fresh = quota_numbers(rolling_5h(100.0), recent, None, T0)
    stale = quota_numbers(rolling_5h(100.0, next_tick_at="2026-02-27T12:05:00Z"), recent, None, T0)

    assert stale["exhausts_at"] == fresh["exhausts_at"] == "2026-03-02T13:33:45Z"
    assert stale["details"]["available_again"] == fresh["details"]["available_again"]


@pytest.mark.parametrize("tick_percent", [1e-10, 1e-300, 5e-324])
def test_a_refill_share_too_small_to_be_a_schedule_is_no_schedule(tick_percent: float) -> None:
    # A tick every few microseconds (or none at all once rounded): no ZeroDivisionError, no tick details.
    numbers = quota_numbers(
        rolling_5h(100.0, tick_percent=tick_percent, regen_amount=None),
        steps((-30, 300.0), (-15, 350.0), (0, 400.0), cycle_id=None, unit="requests"),
        None,
        now=T0,
    )

    assert numbers["rate_basis"] == "recent"
    assert "upcoming_tick_at" not in numbers["details"]
