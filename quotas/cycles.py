"""Reset-cycle tracking for ``reset`` windows (product.md §5).

All state lives in the open ``ResetCycle`` row (last value, last reset time),
so a restart of the poller, or a ``reparse``, continues exactly where the
database left off.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from quotas.bulk import save_fields
from quotas.models import Kind, QuotaReading, ResetCycle
from quotas.providers.base import MAX_AMOUNT, MAX_PERCENT


class LightReading:
    """What cycle tracking and sessions read of a reading, without a model instance.

    ``track`` and ``PollSession.record`` only read these attributes (and set
    ``cycle``); the demo's and an import's millions of model instances would
    cost minutes.
    """

    __slots__ = ("captured_at", "cycle", "key", "kind", "limit", "percent", "provider", "resets_at", "unit", "used")
    level = QuotaReading.level
    scale = QuotaReading.scale

    def __init__(self, provider: str, captured_at: datetime, quota) -> None:
        self.provider, self.captured_at, self.cycle = provider, captured_at, None
        self.key, self.kind, self.unit = quota.key, quota.kind, quota.unit
        self.used, self.limit, self.percent, self.resets_at = quota.used, quota.limit, quota.percent, quota.resets_at


# A reported reset time has to lie this far past the stored one to count as a
# new window: Z.ai's nextResetTime jitters by milliseconds. The same tolerance
# decides whether a reset time "moved in step with the poll clock" (drift).
RESET_TIME_TOLERANCE = timedelta(seconds=60)


# What folding a reading into an open cycle changes.
FOLDED_FIELDS = [
    "consumed",
    "peak_used",
    "readings_count",
    "last_used",
    "last_reading_at",
    "unit",
    "limit",
    "resets_at",
    "reported_resets_at",
]


class OpenCycles:
    """The open cycles of a sole writer (the poller, ``reparse``: each under the poller lock), kept in memory.

    Tracking then reads each quota's open cycle from the database once (or a
    provider's all at once: ``of``), and the readings folded into cycles
    reach the database at ``flush()`` rather than with one UPDATE each.
    Cycles are still created and closed at once.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], ResetCycle | None] = {}
        self._dirty: dict[int, ResetCycle] = {}
        self._loaded: set[str] = set()

    @classmethod
    def of(cls, provider: str) -> OpenCycles:
        """Every open cycle of ``provider``, in one query (a poll tracks all of its quotas)."""
        found = cls()
        found._loaded.add(provider)
        # Oldest first, so the newest open cycle of a quota wins, as _load_open picks it.
        for cycle in ResetCycle.objects.filter(provider=provider, ended_at__isnull=True).order_by("started_at", "id"):
            found._open[(provider, cycle.quota)] = cycle
        return found

    def get(self, provider: str, key: str) -> ResetCycle | None:
        if (provider, key) not in self._open:
            self._open[(provider, key)] = None if provider in self._loaded else _load_open(provider, key)
        return self._open[(provider, key)]

    def opened(self, cycle: ResetCycle) -> None:
        self._open[(cycle.provider, cycle.quota)] = cycle

    def folded(self, cycle: ResetCycle) -> None:
        self._dirty[cycle.pk] = cycle

    def flush(self) -> None:
        """Write the folded cycles: one UPDATE statement, run once per cycle (quotas.bulk)."""
        if self._dirty:
            save_fields(ResetCycle, list(self._dirty.values()), FOLDED_FIELDS)
            self._dirty.clear()


def track(reading: QuotaReading, open_cycles: OpenCycles | None = None) -> float | None:
    """Attach ``reading`` to its cycle, opening a new one at a reset.

    Returns the consumption this reading adds (the positive change since the
    previous reading, or all of its usage when it reveals a reset), or None
    for readings that have no cycle (rolling windows, no usable value).

    1. No open cycle: open one at the reading (not a true reset: consumed 0).
    2. The counter dropped by more than 1 % of the limit (half of the last
       value when no limit is known), or the stored reset time has passed and
       the new one lies later: close the open cycle at the reset instant and
       open a new one that starts with this reading.
    3. Otherwise fold the reading into the open cycle.

    Without ``open_cycles`` every call reads and writes the database at once.
    """
    if reading.kind != Kind.RESET or reading.level is None or not _sane(reading):
        return None
    if open_cycles is not None:
        cycle = open_cycles.get(reading.provider, reading.key)
    else:
        cycle = _load_open(reading.provider, reading.key)
    at = reading.captured_at
    if cycle is None:
        reading.cycle = _open(reading, started_at=at, consumed=0.0)
        if open_cycles is not None:
            open_cycles.opened(reading.cycle)
        return 0.0

    reset_at = _reset_instant(cycle, reading)
    if reset_at is not None:
        cycle.ended_at = reset_at
        cycle.save(update_fields=["ended_at"])
        reading.cycle = _open(reading, started_at=reset_at, consumed=reading.level)
        if open_cycles is not None:
            open_cycles.opened(reading.cycle)
        return reading.level

    if cycle.unit != reading.unit:
        _change_unit(cycle, reading)
    delta = 0.0
    if cycle.last_used is not None:
        delta = max(reading.level - cycle.last_used, 0.0)
    cycle.consumed += delta
    cycle.peak_used = max(cycle.peak_used, reading.level)
    cycle.readings_count += 1
    cycle.last_used = reading.level
    cycle.last_reading_at = at
    cycle.unit = reading.unit
    if reading.scale is not None:
        cycle.limit = reading.scale
    if reading.resets_at is not None:
        cycle.resets_at = reading.resets_at
        cycle.reported_resets_at = reading.resets_at
    if open_cycles is not None:
        open_cycles.folded(cycle)
    else:
        cycle.save(update_fields=FOLDED_FIELDS)
    reading.cycle = cycle
    return delta


def _sane(reading: QuotaReading) -> bool:
    """Whether the reading's numbers lie in the ranges the adapters accept (providers.base).

    The adapters turn anything else into drift; a reading that got past them
    (a test, an older build's row being reparsed) still never ends a cycle.
    """
    for value, high in ((reading.used, MAX_AMOUNT), (reading.limit, MAX_AMOUNT), (reading.percent, MAX_PERCENT)):
        if value is not None and not 0.0 <= value <= high:  # NaN fails too
            return False
    return True


def _change_unit(cycle: ResetCycle, reading: QuotaReading) -> None:
    """Carry the cycle over to the reading's unit.

    A Z.ai window may start reporting only its percentage (or its numbers
    again). With both scales known the figures are converted; otherwise the
    peak restarts from this reading and its change is not counted.
    """
    old_scale, new_scale = cycle.limit, reading.scale
    if old_scale and new_scale:
        factor = new_scale / old_scale
        cycle.peak_used *= factor
        cycle.consumed *= factor
        cycle.last_used = cycle.last_used * factor if cycle.last_used is not None else None
    else:
        cycle.peak_used = reading.level
        cycle.last_used = None


def _load_open(provider: str, key: str) -> ResetCycle | None:
    return (
        ResetCycle.objects.filter(provider=provider, quota=key, ended_at__isnull=True).order_by("-started_at").first()
    )


def _open(reading: QuotaReading, *, started_at: datetime, consumed: float) -> ResetCycle:
    return ResetCycle.objects.create(
        provider=reading.provider,
        quota=reading.key,
        unit=reading.unit,
        started_at=started_at,
        resets_at=reading.resets_at,
        limit=reading.scale,
        peak_used=reading.level,
        consumed=consumed,
        readings_count=1,
        last_used=reading.level,
        last_reading_at=reading.captured_at,
        reported_resets_at=reading.resets_at,
    )


def _reset_instant(cycle: ResetCycle, reading: QuotaReading) -> datetime | None:
    """When the window reset between the cycle's last reading and this one, or None."""
    at = reading.captured_at
    dropped = False
    if cycle.last_used is not None and cycle.unit == reading.unit:
        drop = cycle.last_used - reading.level
        scale = reading.scale
        threshold = 0.01 * scale if scale else 0.5 * cycle.last_used
        dropped = drop > 0 and drop > threshold
    if not (dropped or _rolled_over(cycle, reading)):
        return None
    # The true reset instant when we know it, else the revealing poll. A reset time the upstream
    # kept reporting after it had passed, while usage went on rising, is not it: the cycle would
    # end before readings it holds.
    old = cycle.resets_at
    last = cycle.last_reading_at
    if old is not None and cycle.started_at < old <= at and (last is None or old >= last):
        return old
    return max(at, cycle.started_at)


def _rolled_over(cycle: ResetCycle, reading: QuotaReading) -> bool:
    """The stored reset time has passed and a later one is reported, and that is no drift.

    Decided at the first poll after the stored time, so the reading that
    reveals the reset belongs to the new cycle (a poll a few seconds after the
    reset must not fold its usage into the old one).
    """
    stored, new = cycle.resets_at, reading.resets_at
    if stored is None or new is None:
        return False
    if reading.captured_at < stored or new - stored <= RESET_TIME_TOLERANCE:
        return False
    return not _moved_with_poll_clock(cycle, reading)


def _moved_with_poll_clock(cycle: ResetCycle, reading: QuotaReading) -> bool:
    """Whether the reported reset time moved on by the time between the two polls.

    Synthetic reports its `search` window as "now + 1 h" on every poll: the
    time then keeps a constant distance ahead of the poll clock, and with an
    interval as long as the window the stored time has passed at every poll.
    A true reset moves the time by a window length, not by the poll gap.
    """
    reported, last_at = cycle.reported_resets_at, cycle.last_reading_at
    if reported is None or last_at is None:
        return False
    moved = reading.resets_at - reported
    gap = reading.captured_at - last_at
    return moved > RESET_TIME_TOLERANCE and abs(moved - gap) <= RESET_TIME_TOLERANCE
