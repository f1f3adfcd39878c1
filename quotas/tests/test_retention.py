"""Retention (quotas.retention): what goes at each horizon, what stays, and how the work is sliced."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from conftest import fixture_bytes, store_failure, store_payload
from quotas import numbers, retention
from quotas.models import (
    PollAttempt,
    PollSession,
    QuotaReading,
    QuotaRollup,
    ResetCycle,
    Resolution,
    Setting,
    Snapshot,
)

NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SYNTHETIC = fixture_bytes("synthetic/v2_free_tool_calls.json")
ZAI = fixture_bytes("zai/v2_weekly_and_level.json")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def default_retention(settings):
    settings.SYNTRACK_RAW_RETENTION_DAYS = 30
    settings.SYNTRACK_READING_RETENTION_DAYS = 8
    return settings


def prune(at: datetime = NOW) -> retention.Pruner:
    with time_machine.travel(at, tick=False):
        pruner = retention.Pruner()
        pruner.run()
    return pruner


def done(pruner: retention.Pruner) -> dict[str, int]:
    return {task.name: task.done for task in pruner.tasks}


def ages(rows, field: str = "captured_at") -> list[float]:
    return sorted((NOW - getattr(row, field)) / DAY for row in rows)


def test_each_kind_of_row_goes_at_its_own_horizon() -> None:
    session = PollSession.objects.create(provider="synthetic", interval_seconds=60, started_at=NOW - 120 * DAY)
    for age in (100, 40, 33, 29, 5, 1):
        store_payload("synthetic", SYNTHETIC, NOW - age * DAY, session=session)
    for age in (95, 50):
        store_failure(NOW - age * DAY, provider="synthetic", session=session)
    cycles_before = list(ResetCycle.objects.values_list("id", "started_at", "ended_at", "consumed"))

    pruner = prune()

    # Readings: kept 8 days; their snapshots go with them once the body has gone too.
    assert ages(Snapshot.objects.all()) == [1, 5, 29]
    assert sorted({age for age in ages(QuotaReading.objects.all())}) == [1, 5]
    # Raw bodies: kept 30 days.
    assert {(NOW - s.captured_at) / DAY: s.raw is not None for s in Snapshot.objects.all()} == {
        29: True,
        5: True,
        1: True,
    }
    # Attempts: kept 31 days (the session keeps the counts).
    assert ages(PollAttempt.objects.all(), "at") == [1, 5, 29]
    # Cycles and sessions: forever.
    assert list(ResetCycle.objects.values_list("id", "started_at", "ended_at", "consumed")) == cycles_before
    assert PollSession.objects.count() == 1
    per_snapshot = QuotaReading.objects.filter(captured_at=NOW - DAY).count()
    assert done(pruner) == {
        "raw bodies": 3,  # 100, 40 and 33 days old
        "readings": 4 * per_snapshot,  # 100, 40, 33 and 29 days old
        "snapshots": 3,  # 100, 40 and 33 days old: neither readings nor a body left
        "poll attempts": 5,  # 100, 95, 50, 40 and 33 days old
        "5-minute roll-ups": 4 * per_snapshot,  # one per quota of the polls 100, 40, 33 and 29 days old
        "hourly roll-ups": 0,
    }
    assert prune().finished and done(prune()) == dict.fromkeys(done(pruner), 0)


def rollup(resolution: int, start: datetime, provider: str = "synthetic") -> QuotaRollup:
    point = {
        f"{edge}_{field}": value
        for edge in ("first", "last", "min", "max")
        for field, value in (("at", start), ("percent", 1.0))
    }
    return QuotaRollup.objects.create(
        provider=provider,
        key="k",
        resolution=resolution,
        start=start,
        label="K",
        kind="reset",
        unit="requests",
        **point,
    )


def test_five_minute_roll_ups_go_after_8_days_and_hourly_ones_after_400() -> None:
    for provider in ("synthetic", "zai"):
        for age in (9, 7):
            rollup(Resolution.FIVE_MINUTES, NOW - age * DAY, provider)
        for age in (401, 399, 36):
            rollup(Resolution.HOUR, NOW - age * DAY, provider)

    pruner = prune()

    kept = QuotaRollup.objects.order_by("provider", "resolution", "start")
    assert [(r.provider, r.resolution, (NOW - r.start) / DAY) for r in kept] == [
        ("synthetic", 300, 7),
        ("synthetic", 3600, 399),
        ("synthetic", 3600, 36),
        ("zai", 300, 7),
        ("zai", 3600, 399),
        ("zai", 3600, 36),
    ]
    assert (done(pruner)["5-minute roll-ups"], done(pruner)["hourly roll-ups"]) == (2, 2)


def test_the_latest_usable_snapshot_and_the_hour_before_it_survive() -> None:
    """A provider no longer polled still shows its last numbers in /api/current."""
    last = NOW - 200 * DAY
    for minutes in (150, 30, 0):
        store_payload("zai", ZAI, last - timedelta(minutes=minutes))
    store_failure(last + DAY, provider="zai")  # a later failure: the latest attempt

    pruner = prune()

    assert list(Snapshot.objects.order_by("captured_at").values_list("captured_at", flat=True)) == [
        last - timedelta(minutes=30),
        last,
    ]
    assert done(pruner)["snapshots"] == 1
    body = numbers.current("zai", now=NOW)
    assert body["captured_at"] == "2026-11-13T12:00:00Z"
    assert body["last_poll"]["outcome"] == "unauthorized"
    assert {q["key"] for q in body["quotas"]} == {"tokens_5h", "tokens_weekly", "time_monthly"}
    # The latest attempt and the latest successful one stay, whatever their age.
    assert sorted(PollAttempt.objects.values_list("outcome", "at")) == [("ok", last), ("unauthorized", last + DAY)]


def test_zero_days_keeps_everything_forever(settings) -> None:
    settings.SYNTRACK_RAW_RETENTION_DAYS = 0
    settings.SYNTRACK_READING_RETENTION_DAYS = 0
    for age in (3000, 400):
        store_payload("synthetic", SYNTHETIC, NOW - age * DAY)
    store_payload("synthetic", SYNTHETIC, NOW)

    pruner = prune()

    assert pruner.tasks == []
    assert Snapshot.objects.filter(raw__isnull=False).count() == 3
    assert PollAttempt.objects.count() == 3


def test_raw_bodies_kept_longer_than_readings_keep_their_snapshot(settings) -> None:
    """Then `reparse` can rebuild the readings from the body."""
    settings.SYNTRACK_RAW_RETENTION_DAYS = 0
    store_payload("synthetic", SYNTHETIC, NOW - 50 * DAY)
    store_payload("synthetic", SYNTHETIC, NOW)

    prune()

    old = Snapshot.objects.get(captured_at=NOW - 50 * DAY)
    assert old.raw_body() == SYNTHETIC
    assert not old.readings.exists()


def test_reparse_after_pruning_keeps_the_cycles_it_cannot_rebuild() -> None:
    def poll(at: datetime, used: float, resets: datetime) -> None:
        renews = resets.isoformat().replace("+00:00", "Z")
        store_payload("synthetic", {"subscription": {"limit": 100, "requests": used, "renewsAt": renews}}, at)

    # Three daily cycles two months ago, then one running now.
    for day in (60, 59, 58):
        start = NOW - day * DAY
        for hour, used in ((1, 10), (12, 40)):
            poll(start + timedelta(hours=hour), used, start + DAY)
    for hour, used in ((1, 5), (2, 7)):
        poll(NOW - DAY + timedelta(hours=hour), used, NOW + timedelta(hours=12))
    ended = ResetCycle.objects.filter(ended_at__isnull=False).order_by("started_at")
    old_cycles = list(ended.values_list("id", "started_at", "ended_at", "consumed", "readings_count"))
    assert len(old_cycles) == 3

    prune()
    call_command("reparse", "--provider", "synthetic", stdout=io.StringIO())

    assert list(ended.values_list("id", "started_at", "ended_at", "consumed", "readings_count")) == old_cycles
    # The cycle running across the horizon is rebuilt from the readings left.
    running = ResetCycle.objects.get(ended_at__isnull=True)
    assert (running.readings_count, running.peak_used) == (2, 7.0)


# Scheduling and slicing


def test_the_poller_prunes_at_most_once_a_day() -> None:
    with time_machine.travel(NOW, tick=False):
        assert retention.due()
        retention.mark_done(NOW)
    assert retention.last_prune() == NOW
    assert not retention.due(NOW + 23 * timedelta(hours=1))
    assert retention.due(NOW + DAY)
    assert Setting.objects.filter(key=retention.LAST_PRUNE_KEY).count() == 1


def test_a_last_prune_time_that_cannot_be_read_makes_the_prune_due() -> None:
    Setting.objects.create(key=retention.LAST_PRUNE_KEY, value="yesterday")
    assert retention.last_prune() is None
    assert retention.due(NOW)


def many_old_readings(count: int, at: datetime) -> None:
    """``count`` readings in one snapshot at ``at``, with a usable snapshot now (the latest is always kept)."""
    if not Snapshot.objects.filter(captured_at=NOW).exists():
        store_payload("synthetic", SYNTHETIC, NOW)
    snapshot = Snapshot.objects.create(provider="synthetic", captured_at=at, raw=None)
    QuotaReading.objects.bulk_create(
        QuotaReading(
            snapshot=snapshot,
            provider="synthetic",
            captured_at=at,
            key=f"k{i}",
            label="k",
            kind="reset",
            unit="requests",
            used=i,
        )
        for i in range(count)
    )


class FakeClock:
    """time.monotonic for quotas.retention: every reading of the clock moves it ``tick`` seconds."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 1000.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_a_step_stops_when_its_budget_is_spent_and_the_next_one_goes_on(monkeypatch) -> None:
    many_old_readings(10 * retention.BATCH + 7, NOW - 40 * DAY)
    # Each batch "takes" 0.1 s: a 0.5 s budget is spent after 5 batches.
    monkeypatch.setattr(retention, "clock", FakeClock(0.1))
    with time_machine.travel(NOW, tick=False):
        pruner = retention.Pruner()
    readings = next(task for task in pruner.tasks if task.name == "readings")

    # The clock is read at the start and after each batch: the first step spends
    # one read on the raw bodies (none to prune) and four on readings, the next five.
    assert pruner.step(0.5) is False
    assert readings.done == 4 * retention.BATCH
    assert pruner.step(0.5) is False
    assert readings.done == 9 * retention.BATCH
    while not pruner.step(0.5):
        pass
    assert readings.done == 10 * retention.BATCH + 7
    assert not QuotaReading.objects.filter(captured_at__lt=NOW).exists()
    assert list(Snapshot.objects.values_list("captured_at", flat=True)) == [NOW]


def test_a_batch_is_quick() -> None:
    """The budget holds only if one batch is far below it (0.5 s); here, on whatever machine runs the suite."""
    many_old_readings(3 * retention.BATCH, NOW - 40 * DAY)
    with time_machine.travel(NOW, tick=False):
        pruner = retention.Pruner()
    readings = next(task for task in pruner.tasks if task.name == "readings")
    started = time.monotonic()
    assert readings.batch() == retention.BATCH
    assert time.monotonic() - started < 0.25


# manage.py prune


def run_prune(*args: str) -> str:
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("prune", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_prune_command_dry_run_counts_and_removes_nothing() -> None:
    for age in (100, 40, 1):
        store_payload("zai", ZAI, NOW - age * DAY)

    out = run_prune("--dry-run")

    assert out.splitlines() == [
        "raw bodies to prune: before 2027-05-02 12:00Z",
        "readings to prune: before 2027-05-24 12:00Z",
        "poll attempts to prune: before 2027-05-01 12:00Z",
        "5-minute roll-ups to prune: before 2027-05-24 12:00Z",
        "hourly roll-ups to prune: before 2026-04-27 12:00Z",
        "raw bodies: 2 would be removed",
        "readings: 6 would be removed",
        "snapshots: 2 would be removed",
        "poll attempts: 2 would be removed",
        "5-minute roll-ups: 6 would be removed",
        "hourly roll-ups: 0 would be removed",
    ]
    assert Snapshot.objects.count() == 3
    assert retention.last_prune() is None


def test_prune_command_prunes_everything_and_records_when() -> None:
    for age in (100, 40, 1):
        store_payload("zai", ZAI, NOW - age * DAY)

    out = run_prune()  # call_command raising would fail the test: exit 0

    assert out.splitlines()[5:] == [
        "raw bodies: 2 removed",
        "readings: 6 removed",
        "snapshots: 2 removed",
        "poll attempts: 2 removed",
        "5-minute roll-ups: 6 removed",
        "hourly roll-ups: 0 removed",
    ]
    assert Snapshot.objects.count() == 1
    assert retention.last_prune() == NOW


def test_reading_retention_is_days_or_zero_for_ever(monkeypatch) -> None:
    from syntrack_site.config import Config, ConfigError

    cfg = Config()
    for value, expected in (("", 8), ("0", 0), ("1", 1), ("31", 31)):
        monkeypatch.setenv("SYNTRACK_READING_RETENTION_DAYS", value)
        assert cfg.retention_days("SYNTRACK_READING_RETENTION_DAYS", 8, 1) == expected
    monkeypatch.setenv("SYNTRACK_READING_RETENTION_DAYS", "-3")
    with pytest.raises(ConfigError, match="SYNTRACK_READING_RETENTION_DAYS"):
        cfg.retention_days("SYNTRACK_READING_RETENTION_DAYS", 8, 1)


# SQLite: the space goes back to the file system


sqlite_only = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite only")


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_sqlite_hands_the_pages_back_after_a_prune() -> None:
    assert retention.incremental_vacuum_enabled()  # the test database was created with it
    for day in range(40, 60):
        many_old_readings(400, NOW - day * DAY)
    pages = retention.page_count()

    pruner = prune()

    assert pruner.vacuumed_pages > 0
    assert retention.free_pages() == 0
    assert retention.page_count() <= pages - pruner.vacuumed_pages
    assert retention.page_count() < pages * 0.5


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_prune_vacuum_switches_an_older_database_to_incremental_auto_vacuum() -> None:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA auto_vacuum=NONE")
        cursor.execute("VACUUM")
    assert not retention.incremental_vacuum_enabled()

    out = run_prune("--vacuum")

    assert retention.incremental_vacuum_enabled()
    assert out.splitlines()[-1].startswith("SQLite: VACUUM ")
    assert out.splitlines()[-1].endswith(" pages, auto-vacuum incremental")


# The poller's share


@pytest.fixture
def both_ok(upstream, providers_configured):
    from conftest import SYNTHETIC_URL, ZAI_URL

    upstream.get(SYNTHETIC_URL, body=SYNTHETIC)
    upstream.get(ZAI_URL, body=ZAI)
    return upstream


def poller():
    from quotas.management.commands.poll import Command

    return Command(stdout=io.StringIO(), stderr=io.StringIO())


def old_polls(days: int = 100) -> None:
    for provider, body in (("synthetic", SYNTHETIC), ("zai", ZAI)):
        store_payload(provider, body, timezone.now() - days * DAY)


def test_the_poll_loop_prunes_once_a_day_in_slices_within_the_budget(both_ok, monkeypatch) -> None:
    slices: list[tuple[float, float]] = []
    real_step = retention.Pruner.step

    def step(self, budget: float = retention.STEP_BUDGET, progress=None) -> bool:
        started = time.monotonic()
        finished = real_step(self, budget, progress)
        slices.append((budget, time.monotonic() - started))
        return finished

    monkeypatch.setattr(retention.Pruner, "step", step)
    old_polls()

    poller().run_loop(["synthetic", "zai"], 0.5, max_polls=4)

    assert Snapshot.objects.filter(captured_at__lt=timezone.now() - DAY).count() == 0
    assert timezone.now() - retention.last_prune() < timedelta(minutes=1)
    assert slices and all(budget <= retention.STEP_BUDGET for budget, _ in slices)
    # A slice overruns its budget by one batch at most: a poll waits well under a second.
    assert all(spent < budget + 0.25 for budget, spent in slices)

    # Within the day, nothing more is pruned, even by a new run of the poller.
    slices.clear()
    old_polls()
    poller().run_loop(["synthetic", "zai"], 0.5, max_polls=4)
    assert not slices
    assert Snapshot.objects.filter(captured_at__lt=timezone.now() - DAY).count() == 2

    # A day later it is.
    with time_machine.travel(timezone.now() + DAY + timedelta(minutes=1)):
        poller().run_loop(["synthetic", "zai"], 0.5, max_polls=4)
    assert slices
    assert Snapshot.objects.filter(captured_at__lt=timezone.now() - DAY).count() == 0


def test_poll_once_takes_a_slice_of_the_daily_prune(both_ok) -> None:
    old_polls()

    call_command("poll", "--once", stdout=io.StringIO(), stderr=io.StringIO())

    assert Snapshot.objects.count() == 2
    assert retention.last_prune() is not None


def test_a_long_prune_never_holds_up_a_stop(both_ok, monkeypatch) -> None:
    """SIGTERM is acted on within 2 s however much is left to prune."""
    monkeypatch.setattr(retention, "BATCH", 5)  # a slow prune: many small batches
    monkeypatch.setattr(retention, "STEP_BUDGET", 0.05)  # ... in short slices, however fast the machine
    many_old_readings(3000, timezone.now() - 40 * DAY)
    cmd = poller()
    stopped_at: list[float] = []
    step = retention.Pruner.step

    def step_then_stop(self, *args, **kwargs) -> bool:
        # The stop arrives while the prune is under way, as a SIGTERM would.
        done = step(self, *args, **kwargs)
        if not stopped_at:
            stopped_at.append(time.monotonic())
            cmd.shutdown = True
        return done

    monkeypatch.setattr(retention.Pruner, "step", step_then_stop)
    cmd.run_loop(["synthetic", "zai"], 60)

    assert time.monotonic() - stopped_at[0] < 2.0
    # Stopped half-way: the rest waits for the next run, which finds the prune still due.
    assert 0 < QuotaReading.objects.filter(captured_at__lt=timezone.now() - DAY).count() < 3000
    assert retention.last_prune() is None


# Charts and reparse after the readings are gone


def synthetic_month() -> None:
    """A poll every 3 hours for 32 days, used counting up through each day and resetting at midnight."""
    start = NOW - 32 * DAY
    for step in range(32 * 8):
        at = start + step * timedelta(hours=3)
        day_end = datetime(at.year, at.month, at.day, tzinfo=UTC) + DAY
        renews = day_end.isoformat().replace("+00:00", "Z")
        used = 10 + 15 * (step % 8) + step % 5
        store_payload("synthetic", {"subscription": {"limit": 200, "requests": used, "renewsAt": renews}}, at)


def test_the_30_day_chart_still_draws_from_roll_ups_once_the_readings_are_gone(settings) -> None:
    from quotas.history import history

    synthetic_month()
    with time_machine.travel(NOW, tick=False):
        before = history("synthetic", "30d")
    assert len(before["series"][0]["points"]) > 100
    # Shorter than the settings allow (31 days at least), to leave the chart's range with almost no readings.
    settings.SYNTRACK_READING_RETENTION_DAYS = 2

    prune()

    assert QuotaReading.objects.filter(captured_at__lt=NOW - 2 * DAY).count() == 0
    with time_machine.travel(NOW, tick=False):
        assert history("synthetic", "30d") == before
    # reparse rebuilds what it can and keeps the hourly roll-ups it cannot.
    call_command("reparse", "--provider", "synthetic", stdout=io.StringIO())
    with time_machine.travel(NOW, tick=False):
        assert history("synthetic", "30d") == before
