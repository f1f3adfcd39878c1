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
through the same ``_fold``, so both paths agree by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from quotas.bulk import save_fields
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
class Reading:
    """What a roll-up needs of one reading (a QuotaReading, or a row streamed by rebuild)."""

    at: datetime
    label: str
    kind: str
    unit: str
    percent: float
    used: float | None
    cycle_id: int | None
    # Each tool's counter (Z.ai's per-tool breakdown, see tool_levels); None for quotas without one.
    tools: dict[str, float] | None = None

    @property
    def level(self) -> float:
        return self.used if self.used is not None else self.percent


def _previous(rollup: QuotaRollup) -> Reading:
    """The last reading folded into ``rollup``."""
    return Reading(
        rollup.last_at,
        rollup.label,
        rollup.kind,
        rollup.unit,
        rollup.last_percent,
        rollup.last_used,
        rollup.last_cycle_id,
        rollup.last_tools,
    )


def tool_levels(details: object) -> dict[str, float] | None:
    """Each tool's counter in a reading's ``details`` (``{"tools": [{"name", "used"}]}``); None without a list."""
    tools = details.get("tools") if isinstance(details, dict) else None
    if not isinstance(tools, list):
        return None
    return {
        str(t.get("name")): float(t["used"])
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("used"), int | float) and math.isfinite(t["used"])
    }


def tools_added(reading: Reading, previous: Reading | None) -> dict[str, float]:
    """What ``reading`` adds to each tool's count after ``previous``, counted as ``added`` counts the quota.

    In a new reset cycle each tool counts its whole level; otherwise its rise. The
    first reading (no previous, or none with tools) is only a baseline.
    """
    if reading.tools is None or previous is None or previous.tools is None:
        return {}
    if _opened_cycle(reading, previous):
        return {name: level for name, level in reading.tools.items() if level > 0}
    if reading.unit != previous.unit:
        return {}
    added = {}
    for name, level in reading.tools.items():
        rise = level - previous.tools.get(name, 0.0)
        if rise > 0:
            added[name] = rise
    return added


def added(reading: Reading, previous: Reading | None) -> float:
    """What ``reading`` adds to consumption after ``previous`` (cycles.track counts the same).

    A reading that opened a new reset cycle counts its whole level (the usage
    since the reset); otherwise the rise of the level. A change of unit counts nothing.
    """
    if previous is None:
        return 0.0
    if _opened_cycle(reading, previous):
        return reading.level
    if reading.unit != previous.unit:
        return 0.0
    return max(reading.level - previous.level, 0.0)


def _opened_cycle(reading: Reading, previous: Reading) -> bool:
    """Whether ``reading`` is the first of a new reset cycle (a reset lies between the two)."""
    return reading.cycle_id is not None and previous.cycle_id is not None and reading.cycle_id != previous.cycle_id


def _new(provider: str, key: str, resolution: int, reading: Reading) -> QuotaRollup:
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


def _fold(rollup: QuotaRollup, reading: Reading, previous: Reading | None) -> None:
    """Add ``reading`` (later than every reading in ``rollup``) to it; ``previous``: the quota's reading before."""
    rollup.count += 1
    rollup.consumed += added(reading, previous)
    rollup.last_at, rollup.last_percent, rollup.last_used = reading.at, reading.percent, reading.used
    rollup.last_cycle_id = reading.cycle_id
    rollup.last_tools = reading.tools
    tools = tools_added(reading, previous)
    if tools:
        calls = dict(rollup.tool_calls or {})
        for name, rise in tools.items():
            calls[name] = calls.get(name, 0.0) + rise
        rollup.tool_calls = calls
    # The newest names win, as history labels a series with its newest reading's.
    rollup.label, rollup.kind, rollup.unit = reading.label, reading.kind, reading.unit
    # Ties: the earliest of the lowest, the latest of the highest (history's rule).
    if reading.percent < rollup.min_percent:
        rollup.min_at, rollup.min_percent, rollup.min_used = reading.at, reading.percent, reading.used
    if reading.percent >= rollup.max_percent:
        rollup.max_at, rollup.max_percent, rollup.max_used = reading.at, reading.percent, reading.used
    if previous is None:
        return
    if _opened_cycle(reading, previous):
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
    previous: dict[str, Reading] = {}
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
        row = Reading(
            at, reading.label, reading.kind, reading.unit, reading.percent, reading.used, reading.cycle_id,
            tool_levels(reading.details),
        )  # fmt: skip
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
        _save_folds(updated)


def _save_folds(rollups: list[QuotaRollup]) -> None:
    """Write back the folded fields of ``rollups`` (quotas.bulk: no CASE per field and row)."""
    save_fields(QuotaRollup, rollups, FOLDED)


class Builder:
    """Folds readings into roll-ups as they come: each quota's readings in time order (quotas may interleave).

    ``rebuild`` feeds it readings streamed from the database, ``demo`` the
    readings it simulates. ``before``: each quota's reading before the first
    one fed (consumption and gaps run on across it). ``since``: per
    resolution, the first bucket start to keep; older readings still carry
    consumption and gaps forward but open no roll-up of that size (the demo
    skips what retention would prune). Finished roll-ups go to ``write`` in
    lists of about BATCH.
    """

    def __init__(
        self,
        write: Callable[[list[QuotaRollup]], None],
        before: dict[tuple[str, str], Reading] | None = None,
        since: dict[int, datetime | None] | None = None,
    ) -> None:
        self.write = write
        self.previous: dict[tuple[str, str], Reading] = dict(before or {})
        self.since = {resolution: (since or {}).get(resolution) for resolution in RESOLUTIONS}
        self.open: dict[tuple[str, str], dict[int, QuotaRollup]] = {}
        self.done: list[QuotaRollup] = []
        self.written = 0

    def add(self, provider: str, key: str, reading: Reading) -> None:
        quota = (provider, key)
        buckets = self.open.setdefault(quota, {})
        previous = self.previous.get(quota)
        for resolution in RESOLUTIONS:
            rollup = buckets.get(resolution)
            if rollup is None or not _holds(rollup, reading.at):
                if rollup is not None:
                    self.done.append(buckets.pop(resolution))
                since = self.since[resolution]
                if since is not None and reading.at < since:
                    continue
                rollup = buckets[resolution] = _new(provider, key, resolution, reading)
            _fold(rollup, reading, previous)
        self.previous[quota] = reading
        if len(self.done) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Hand the finished roll-ups to ``write``."""
        if self.done:
            self.write(self.done)
            self.written += len(self.done)
            self.done = []

    def finish(self) -> int:
        """Hand every roll-up over, the open ones too; returns how many were written in all."""
        for buckets in self.open.values():
            self.done.extend(buckets.values())
        self.open = {}
        self.flush()
        return self.written


def _holds(rollup: QuotaRollup, at: datetime) -> bool:
    """Whether ``at`` (never earlier than the roll-up's readings) falls in the roll-up's bucket."""
    return (at - rollup.start).total_seconds() < rollup.resolution


def rebuild(provider: str | None = None, since: datetime | None = None) -> int:
    """Recompute the roll-ups of ``provider`` (every one when None) from the stored readings.

    From ``since`` on (rounded down to the hour; from the first reading when
    None): those roll-ups are deleted, then the readings are streamed in
    (quota, time) order and folded (``Builder``), and the roll-ups written in batches. A
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

    before: dict[tuple[str, str], Reading] = {}
    if cut is not None:
        earlier = QuotaRollup.objects.filter(resolution=Resolution.HOUR, start__lt=cut)
        if provider is not None:
            earlier = earlier.filter(provider=provider)
        quotas = earlier.values_list("provider", "key").distinct().order_by()
        for quota_provider, key in list(quotas):
            latest = earlier.filter(provider=quota_provider, key=key).order_by("-start").first()
            if latest is not None:
                before[(quota_provider, key)] = _previous(latest)

    builder = Builder(insert, before)
    fields = ("provider", "key", "captured_at", "label", "kind", "unit", "percent", "used", "cycle_id", "details")
    rows = readings.order_by("provider", "key", "captured_at", "id").values_list(*fields)
    for row_provider, key, at, label, kind, unit, percent, used, cycle_id, details in rows.iterator(chunk_size=BATCH):
        reading = Reading(at, label, kind, unit, percent, used, cycle_id, tool_levels(details))
        builder.add(row_provider, key, reading)
    return builder.finish()


def rebuilt_from(provider: str) -> datetime | None:
    """Where ``provider``'s roll-ups can be rebuilt from: everywhere (None) unless retention pruned the
    readings under the older ones; those are kept, and a rebuild starts at the first whole hour of readings left."""
    hourly = QuotaRollup.objects.filter(provider=provider, resolution=Resolution.HOUR)
    first = QuotaReading.objects.filter(provider=provider).order_by("captured_at").values_list("captured_at", flat=True)
    first_at = first.first()
    if first_at is None:
        latest = hourly.order_by("-start").values_list("start", flat=True).first()
        return None if latest is None else latest + timedelta(hours=1)
    hour = bucket_start(first_at, Resolution.HOUR)
    return hour + timedelta(hours=1) if hourly.filter(start__lt=hour).exists() else None


def insert(rollups: list[QuotaRollup]) -> None:
    QuotaRollup.objects.bulk_create(rollups, batch_size=BATCH)


__all__ = [
    "RESOLUTIONS",
    "Builder",
    "Reading",
    "bucket_start",
    "insert",
    "rebuild",
    "rebuilt_from",
    "record",
    "tool_levels",
]
