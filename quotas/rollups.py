"""Roll-ups: each quota's readings summed up per time bucket, so long charts and reports skip the readings.

Two bucket sizes (``Resolution``), aligned on the Unix epoch:

- **5 minutes** serve the 24h and 7d charts. history cuts a range into at
  most 165 buckets (3 points each, 500 points per series): 24h/165 ≈ 9 min and
  7d/165 ≈ 61 min, so 5-minute roll-ups fold into the chart's buckets with
  at most one roll-up's worth (5 min) of rounding, and a week is 2,016 rows per quota.
- **1 hour** serves 30d and beyond (30d/165 ≈ 4.4 h per chart bucket) and
  per-hour/per-day reports: 720 rows per quota for a month, 8,760 for a year.

Finer roll-ups would add rows without serving any chart (1h and 6h charts
read raw readings: at most a few thousand per quota); coarser ones would
blur the 7d chart.

Both sizes are kept by the poller inside the poll's transaction
(``record``) and rebuilt from the readings by ``reparse`` (``rebuild``),
through the same ``_Bucket.fold``, so both paths agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from quotas.models import QuotaReading, QuotaRollup, Resolution, Snapshot

RESOLUTIONS = [int(Resolution.FIVE_MINUTES), int(Resolution.HOUR)]
# Roll-ups written per INSERT by rebuild().
BATCH = 2000
# Every field a fold can change, for bulk_update.
FOLDED = [
    field.name
    for field in QuotaRollup._meta.concrete_fields
    if field.name not in {"id", "provider", "key", "resolution", "start"}
]


def bucket_start(at: datetime, resolution: int) -> datetime:
    """The start of the ``resolution``-second bucket holding ``at``."""
    seconds = at.timestamp()
    return datetime.fromtimestamp(seconds - seconds % resolution, UTC)


@dataclass(slots=True)
class _Reading:
    """What a roll-up needs of one reading (a QuotaReading, or a row streamed by rebuild)."""

    at: datetime
    label: str
    kind: str
    unit: str
    percent: float
    used: float | None
    cycle_id: int | None

    @property
    def level(self) -> float:
        return self.used if self.used is not None else self.percent


def _previous(rollup: QuotaRollup) -> _Reading:
    """The last reading folded into ``rollup``."""
    return _Reading(
        rollup.last_at,
        rollup.label,
        rollup.kind,
        rollup.unit,
        rollup.last_percent,
        rollup.last_used,
        rollup.last_cycle_id,
    )


def _added(reading: _Reading, previous: _Reading | None) -> float:
    """What ``reading`` adds to consumption after ``previous`` (cycles.track counts the same).

    A reading that opened a new reset cycle counts its whole level (the usage
    since the reset); otherwise the rise of the level. A change of unit counts nothing.
    """
    if previous is None:
        return 0.0
    if reading.cycle_id is not None and previous.cycle_id is not None and reading.cycle_id != previous.cycle_id:
        return reading.level
    if reading.unit != previous.unit:
        return 0.0
    return max(reading.level - previous.level, 0.0)


def _new(provider: str, key: str, resolution: int, reading: _Reading) -> QuotaRollup:
    return QuotaRollup(
        provider=provider,
        key=key,
        resolution=resolution,
        start=bucket_start(reading.at, resolution),
        label=reading.label,
        kind=reading.kind,
        unit=reading.unit,
        count=0,
        first_at=reading.at,
        first_percent=reading.percent,
        first_used=reading.used,
        last_at=reading.at,
        last_percent=reading.percent,
        last_used=reading.used,
        min_at=reading.at,
        min_percent=reading.percent,
        min_used=reading.used,
        max_at=reading.at,
        max_percent=reading.percent,
        max_used=reading.used,
        consumed=0.0,
        gap_seconds=0.0,
    )


def _fold(rollup: QuotaRollup, reading: _Reading, previous: _Reading | None) -> None:
    """Add ``reading`` (later than every reading in ``rollup``) to it; ``previous``: the quota's reading before."""
    rollup.count += 1
    rollup.consumed += _added(reading, previous)
    rollup.last_at, rollup.last_percent, rollup.last_used = reading.at, reading.percent, reading.used
    rollup.last_cycle_id = reading.cycle_id
    # The newest names win, as history labels a series with its newest reading's.
    rollup.label, rollup.kind, rollup.unit = reading.label, reading.kind, reading.unit
    # Ties: the earliest of the lowest, the latest of the highest (history's rule).
    if reading.percent < rollup.min_percent:
        rollup.min_at, rollup.min_percent, rollup.min_used = reading.at, reading.percent, reading.used
    if reading.percent >= rollup.max_percent:
        rollup.max_at, rollup.max_percent, rollup.max_used = reading.at, reading.percent, reading.used
    if previous is None:
        return
    if reading.cycle_id is not None and previous.cycle_id is not None and reading.cycle_id != previous.cycle_id:
        rollup.reset_before_at, rollup.reset_before_percent = previous.at, previous.percent
        rollup.reset_before_used = previous.used
        rollup.reset_after_at, rollup.reset_after_percent = reading.at, reading.percent
        rollup.reset_after_used = reading.used
    silence = (reading.at - previous.at).total_seconds()
    if silence > rollup.gap_seconds:
        rollup.gap_began_at, rollup.gap_ended_at, rollup.gap_seconds = previous.at, reading.at, silence


def _charted(reading: QuotaReading) -> bool:
    return reading.percent is not None


def record(snapshot: Snapshot, readings: Iterable[QuotaReading]) -> None:
    """Fold one poll's readings (already cycle-tracked) into their roll-ups, inside the poll's transaction.

    1. One SELECT reads, for the snapshot's quotas, the current 5-minute
       bucket and the current and previous hourly ones: together they hold
       each quota's previous reading (polls come minutes apart).
    2. A quota whose previous reading is older (after an outage) reads its
       latest hourly roll-up: one more SELECT per such quota, rare.
    3. One INSERT for the buckets this poll opens, one UPDATE for the others.
    """
    charted = [reading for reading in readings if _charted(reading)]
    if not charted:
        return
    provider, at = snapshot.provider, snapshot.captured_at
    keys = {reading.key for reading in charted}
    five, hour = bucket_start(at, Resolution.FIVE_MINUTES), bucket_start(at, Resolution.HOUR)
    current: dict[tuple[str, int], QuotaRollup] = {}
    previous: dict[str, _Reading] = {}
    found = QuotaRollup.objects.filter(provider=provider, key__in=keys).filter(
        Q(resolution=Resolution.FIVE_MINUTES, start=five)
        | Q(resolution=Resolution.HOUR, start__in=[hour, hour - timedelta(hours=1)])
    )
    for rollup in found:
        if rollup.start in (five, hour):
            current[(rollup.key, rollup.resolution)] = rollup
        if rollup.key not in previous or previous[rollup.key].at < rollup.last_at:
            previous[rollup.key] = _previous(rollup)
    for key in sorted(keys - previous.keys()):
        latest = (
            QuotaRollup.objects.filter(provider=provider, key=key, resolution=Resolution.HOUR, start__lt=hour)
            .order_by("-start")
            .first()
        )
        if latest is not None:
            previous[key] = _previous(latest)

    created: list[QuotaRollup] = []
    updated: list[QuotaRollup] = []
    for reading in charted:
        row = _Reading(at, reading.label, reading.kind, reading.unit, reading.percent, reading.used, reading.cycle_id)
        for resolution in RESOLUTIONS:
            rollup = current.get((reading.key, resolution))
            if rollup is None:
                rollup = current[(reading.key, resolution)] = _new(provider, reading.key, resolution, row)
                created.append(rollup)
            elif rollup.pk is not None and rollup not in updated:
                updated.append(rollup)
            _fold(rollup, row, previous.get(reading.key))
        previous[reading.key] = row
    if created:
        QuotaRollup.objects.bulk_create(created)
    if updated:
        QuotaRollup.objects.bulk_update(updated, FOLDED)


def rebuild(provider: str | None = None, since: datetime | None = None) -> int:
    """Recompute the roll-ups of ``provider`` (every one when None) from the stored readings.

    From ``since`` on (rounded down to the hour; from the first reading when
    None): those roll-ups are deleted, then the readings are streamed in
    (quota, time) order and folded, and the roll-ups written in batches. A
    quota's reading before ``since`` comes from its last roll-up before it,
    so consumption and gaps run on across the cut. Returns the number of roll-ups written.
    """
    cut = bucket_start(since, Resolution.HOUR) if since is not None else None
    existing = QuotaRollup.objects.all()
    readings = QuotaReading.objects.filter(percent__isnull=False)
    if provider is not None:
        existing = existing.filter(provider=provider)
        readings = readings.filter(provider=provider)
    if cut is not None:
        existing = existing.filter(start__gte=cut)
        readings = readings.filter(captured_at__gte=cut)
    existing.delete()

    before: dict[tuple[str, str], _Reading] = {}
    if cut is not None:
        earlier = QuotaRollup.objects.filter(resolution=Resolution.HOUR, start__lt=cut)
        if provider is not None:
            earlier = earlier.filter(provider=provider)
        quotas = earlier.values_list("provider", "key").distinct().order_by()
        for quota_provider, key in list(quotas):
            latest = earlier.filter(provider=quota_provider, key=key).order_by("-start").first()
            if latest is not None:
                before[(quota_provider, key)] = _previous(latest)

    written = 0
    pending: list[QuotaRollup] = []
    quota: tuple[str, str] | None = None
    previous: _Reading | None = None
    open_buckets: dict[int, QuotaRollup] = {}
    fields = ("provider", "key", "captured_at", "label", "kind", "unit", "percent", "used", "cycle_id")
    rows = readings.order_by("provider", "key", "captured_at", "id").values_list(*fields)
    for row_provider, key, at, label, kind, unit, percent, used, cycle_id in rows.iterator(chunk_size=BATCH):
        if (row_provider, key) != quota:
            pending.extend(open_buckets.values())
            open_buckets = {}
            quota = (row_provider, key)
            previous = before.get(quota)
        row = _Reading(at, label, kind, unit, percent, used, cycle_id)
        for resolution in RESOLUTIONS:
            rollup = open_buckets.get(resolution)
            if rollup is None or rollup.start != bucket_start(at, resolution):
                if rollup is not None:
                    pending.append(rollup)
                rollup = open_buckets[resolution] = _new(row_provider, key, resolution, row)
            _fold(rollup, row, previous)
        previous = row
        if len(pending) >= BATCH:
            QuotaRollup.objects.bulk_create(pending)
            written += len(pending)
            pending = []
    pending.extend(open_buckets.values())
    QuotaRollup.objects.bulk_create(pending, batch_size=BATCH)
    return written + len(pending)


__all__ = ["RESOLUTIONS", "bucket_start", "rebuild", "record"]
