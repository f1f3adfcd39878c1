"""Retention: which old rows go, and how they go without holding anything up (product.md §10).

What goes, per provider:

1. raw bodies older than ``SYNTRACK_RAW_RETENTION_DAYS`` (the snapshot stays);
2. readings older than ``SYNTRACK_READING_RETENTION_DAYS``, except the latest
   usable snapshot's and the hour before it (``/api/current`` and its burn rate);
3. snapshots older than that horizon left with neither readings nor a raw body;
4. poll attempts older than ``ATTEMPT_RETENTION_DAYS`` (never shorter than the
   readings' horizon), except each provider's latest and latest successful one
   (``/api/providers`` freshness);
5. 5-minute roll-ups after ``FIVE_MINUTE_ROLLUP_RETENTION_DAYS``, hourly ones
   after ``HOURLY_ROLLUP_RETENTION_DAYS`` (quotas.rollups).

Reset cycles and poll sessions are kept forever. A retention of 0 days keeps
that kind of row forever.

Everything goes in batches of ``BATCH`` rows, each in its own short
transaction, so the poller and the web workers never wait on a long write
("database is locked" never comes). ``Pruner.step(budget)`` works until the
budget is spent and returns; the poller gives it slices between polls and
``manage.py prune`` runs it to the end. On SQLite the freed pages are then
handed back to the file system by ``PRAGMA incremental_vacuum``, a few at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from quotas import failures
from quotas.models import (
    Outcome,
    PollAttempt,
    Provider,
    QuotaReading,
    QuotaRollup,
    Resolution,
    Setting,
    Snapshot,
)

# Rows per batch: one batch is a few milliseconds on SQLite, so a step
# overshoots its budget by little.
BATCH = 500
# The poller's slice of pruning between two looks at its schedule.
STEP_BUDGET = 0.5
# The poller prunes at most this often; the time of the last full prune is kept in the database.
PRUNE_EVERY = timedelta(days=1)
LAST_PRUNE_KEY = "retention.last_prune_at"
# Poll attempts feed /api/polls (the latest 500 at most) and the uptime insight (30 days at most,
# plus a day between two prunes); the sessions, kept forever, keep their counts.
ATTEMPT_RETENTION_DAYS = 31
# 5-minute roll-ups draw the 24h and 7d charts only (quotas.rollups): a week and a day of them.
FIVE_MINUTE_ROLLUP_RETENTION_DAYS = 8
# Hourly roll-ups draw the long chart ranges, at some 400 bytes an hour per quota: a year and a
# month of them (~30 MB for both providers' 8 quotas) keeps a year of history at hand, and the
# database stops growing past that horizon.
HOURLY_ROLLUP_RETENTION_DAYS = 400
# Free pages handed back per PRAGMA incremental_vacuum (4 KiB each: 1 MiB).
VACUUM_PAGES = 256
# The clock budgets are measured with (tests replace it).
clock = time.monotonic


@dataclass(frozen=True)
class Horizons:
    """Rows older than these go; None keeps that kind of row forever."""

    raw: datetime | None
    readings: datetime | None
    attempts: datetime | None
    five_minute_rollups: datetime | None
    hourly_rollups: datetime | None

    @classmethod
    def at(cls, now: datetime) -> Horizons:
        raw_days = settings.SYNTRACK_RAW_RETENTION_DAYS
        reading_days = settings.SYNTRACK_READING_RETENTION_DAYS
        # Keeping the readings forever keeps everything forever.
        attempt_days = max(ATTEMPT_RETENTION_DAYS, reading_days) if reading_days else 0
        five_minute_days = FIVE_MINUTE_ROLLUP_RETENTION_DAYS if reading_days else 0
        hourly_days = max(HOURLY_ROLLUP_RETENTION_DAYS, reading_days) if reading_days else 0

        def before(days: int) -> datetime | None:
            return now - timedelta(days=days) if days else None

        return cls(
            raw=before(raw_days),
            readings=before(reading_days),
            attempts=before(attempt_days),
            five_minute_rollups=before(five_minute_days),
            hourly_rollups=before(hourly_days),
        )

    def named(self) -> list[tuple[str, datetime | None]]:
        return [
            ("raw bodies", self.raw),
            ("readings", self.readings),
            ("poll attempts", self.attempts),
            ("5-minute roll-ups", self.five_minute_rollups),
            ("hourly roll-ups", self.hourly_rollups),
        ]


@dataclass
class Task:
    """One kind of row to prune: ``batch()`` removes up to BATCH rows and returns how many it removed."""

    name: str
    batch: Callable[[], int]
    count: Callable[[], int]
    done: int = 0
    finished: bool = False


@dataclass
class Pruner:
    """A prune job, resumable step by step; its horizons are fixed when it is made."""

    now: datetime = field(default_factory=timezone.now)
    vacuum: bool = True
    # The configured retention's at ``now`` unless given (tests, and ``demo``'s equivalence test).
    horizons: Horizons | None = None

    def __post_init__(self) -> None:
        self.horizons = self.horizons or Horizons.at(self.now)
        self.tasks = list(self._tasks())
        self.vacuumed_pages = 0
        # Not inside a transaction (a test's): the pragma would commit it.
        self._vacuum_done = not (self.vacuum and not connection.in_atomic_block and incremental_vacuum_enabled())

    @property
    def finished(self) -> bool:
        return all(task.finished for task in self.tasks) and self._vacuum_done

    def step(self, budget: float = STEP_BUDGET, progress: Callable[[Task], None] | None = None) -> bool:
        """Prune batch after batch until ``budget`` seconds are spent or all is done; return whether all is done.

        At least one batch runs, so a tiny budget still makes progress.
        """
        deadline = clock() + budget
        for task in self.tasks:
            while not task.finished:
                removed = task.batch()
                task.done += removed
                task.finished = removed < BATCH
                if progress is not None:
                    progress(task)
                if clock() >= deadline:
                    return self.finished
        while not self._vacuum_done:
            freed = vacuum_step()
            self.vacuumed_pages += freed
            self._vacuum_done = freed == 0
            if clock() >= deadline:
                break
        return self.finished

    def run(self, progress: Callable[[Task], None] | None = None) -> None:
        """The whole job."""
        while not self.step(budget=1.0, progress=progress):
            pass

    def counts(self) -> dict[str, int]:
        """What the job would remove, without removing anything (``prune --dry-run``)."""
        return {task.name: task.count() for task in self.tasks}

    def _tasks(self) -> Iterator[Task]:
        h = self.horizons
        if h.raw is not None:
            yield Task("raw bodies", *_raw_bodies(h.raw))
        if h.readings is not None:
            kept = {provider: _kept_from(provider, h.readings) for provider in Provider.values}
            yield Task("readings", *_readings(kept))
            yield Task("snapshots", *_snapshots(kept, h.raw))
        if h.attempts is not None:
            yield Task("poll attempts", *_attempts(h.attempts))
        if h.five_minute_rollups is not None:
            yield Task("5-minute roll-ups", *_rollups(Resolution.FIVE_MINUTES, h.five_minute_rollups))
        if h.hourly_rollups is not None:
            yield Task("hourly roll-ups", *_rollups(Resolution.HOUR, h.hourly_rollups))


def _kept_from(provider: str, horizon: datetime) -> datetime:
    """Where ``provider``'s readings start to be kept: the horizon, or earlier to keep the latest usable
    snapshot and the RATE_WINDOW before it (``/api/current`` of a provider no longer polled)."""
    from quotas.numbers import RATE_WINDOW  # here: `poll --once` need not import the numbers

    latest = (
        Snapshot.objects.filter(provider=provider, usable=True)
        .order_by("-captured_at", "-id")
        .values_list("captured_at", flat=True)
        .first()
    )
    return horizon if latest is None else min(horizon, latest - RATE_WINDOW)


def _in_batches(rows, remove: Callable[[list[int]], object]) -> Callable[[], int]:
    """A batch function: the next BATCH ids of ``rows`` (oldest first), removed in one transaction."""

    def batch() -> int:
        with transaction.atomic():
            ids = list(rows.values_list("pk", flat=True)[:BATCH])
            if ids:
                remove(ids)
        return len(ids)

    return batch


def _raw_bodies(horizon: datetime) -> tuple[Callable[[], int], Callable[[], int]]:
    # The partial index snapshot_captured holds exactly the snapshots that still have a body.
    rows = Snapshot.objects.filter(captured_at__lt=horizon, raw__isnull=False).order_by("captured_at")
    return _in_batches(rows, lambda ids: Snapshot.objects.filter(pk__in=ids).update(raw=None)), rows.count


def _readings(kept: dict[str, datetime]) -> tuple[Callable[[], int], Callable[[], int]]:
    # One provider at a time, so the (provider, captured_at) index finds the oldest rows.
    per_provider = [
        QuotaReading.objects.filter(provider=provider, captured_at__lt=since).order_by("captured_at")
        for provider, since in kept.items()
    ]
    return _chain(per_provider, lambda ids: QuotaReading.objects.filter(pk__in=ids).delete())


def _snapshots(kept: dict[str, datetime], raw_horizon: datetime | None) -> tuple[Callable[[], int], Callable[[], int]]:
    """Snapshots before the readings' horizon without a raw body (or with one about to go).

    Their readings went in the task before (a reading's time is its snapshot's);
    their attempts stay, unlinked (SET_NULL).
    """
    body_gone = Q(raw__isnull=True) | (Q(captured_at__lt=raw_horizon) if raw_horizon is not None else Q(pk__in=[]))
    per_provider = [
        Snapshot.objects.filter(body_gone, provider=provider, captured_at__lt=since).order_by("captured_at")
        for provider, since in kept.items()
    ]
    return _chain(per_provider, lambda ids: Snapshot.objects.filter(pk__in=ids).delete())


def _attempts(horizon: datetime) -> tuple[Callable[[], int], Callable[[], int]]:
    per_provider = []
    for provider in Provider.values:
        latest = PollAttempt.objects.filter(provider=provider).order_by("-at", "-id")
        spared = [pk for pk in (latest.values_list("pk", flat=True).first(),) if pk is not None]
        ok = latest.filter(outcome=Outcome.OK).values_list("pk", flat=True).first()
        spared += [ok] if ok is not None else []
        per_provider.append(
            PollAttempt.objects.filter(provider=provider, at__lt=horizon).exclude(pk__in=spared).order_by("at")
        )
    # Their failures go on counting in the metrics (quotas.failures: a counter never goes down).
    return _chain(per_provider, failures.delete_attempts)


def _rollups(resolution: int, horizon: datetime) -> tuple[Callable[[], int], Callable[[], int]]:
    # Per provider, along the (provider, resolution, start) index.
    per_provider = [
        QuotaRollup.objects.filter(provider=provider, resolution=resolution, start__lt=horizon).order_by("start")
        for provider in Provider.values
    ]
    return _chain(per_provider, lambda ids: QuotaRollup.objects.filter(pk__in=ids).delete())


def _chain(querysets: list, remove: Callable[[list[int]], object]) -> tuple[Callable[[], int], Callable[[], int]]:
    """One batch function over several querysets in turn; a short batch from one moves on to the next."""
    batches = [_in_batches(rows, remove) for rows in querysets]
    position = [0]

    def batch() -> int:
        removed = 0
        while position[0] < len(batches) and removed < BATCH:
            got = batches[position[0]]()
            removed += got
            if got < BATCH:
                position[0] += 1
        return removed

    return batch, lambda: sum(rows.count() for rows in querysets)


# Scheduling: the poller prunes at most once per PRUNE_EVERY.


def last_prune() -> datetime | None:
    value = Setting.objects.filter(key=LAST_PRUNE_KEY).values_list("value", flat=True).first()
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def due(now: datetime | None = None) -> bool:
    last = last_prune()
    return last is None or (now or timezone.now()) - last >= PRUNE_EVERY


def mark_done(at: datetime) -> None:
    Setting.objects.update_or_create(key=LAST_PRUNE_KEY, defaults={"value": at.isoformat()})


# SQLite space: freed pages go back to the file system.


def incremental_vacuum_enabled() -> bool:
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA auto_vacuum")
        return cursor.fetchone()[0] == 2


def vacuum_step(pages: int = VACUUM_PAGES) -> int:
    """Hand back up to ``pages`` free pages of the SQLite file; return how many went."""
    before = free_pages()
    if not before:
        return 0
    connection.ensure_connection()
    # executescript steps the pragma to the end; cursor.execute would free a single page.
    connection.connection.executescript(f"PRAGMA incremental_vacuum({int(pages)})")
    return before - free_pages()


def free_pages() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA freelist_count")
        return cursor.fetchone()[0]


def page_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        return cursor.fetchone()[0]
