"""Reset-cycle tracking for ``reset`` windows (product.md §5).

All state lives in the open ``ResetCycle`` row (last value, last reset time),
so a restart of the poller, or a ``reparse``, continues exactly where the
database left off.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from quotas.models import Kind, QuotaReading, ResetCycle

# A reported reset time has to lie this far past the stored one to count as a
# new window: Z.ai's nextResetTime jitters by milliseconds.
RESET_TIME_TOLERANCE = timedelta(seconds=60)
# How long past the stored reset time a poll must be before the later reset
# time is believed. Synthetic moves `search` forward by one poll interval on
# every poll; with an interval as long as the window the stored time is just
# "passed" on every poll, and this grace keeps that drift from reading as a reset.
RESET_GRACE = timedelta(seconds=60)


def track(reading: QuotaReading) -> float | None:
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
    """
    if reading.kind != Kind.RESET or reading.level is None:
        return None
    cycle = (
        ResetCycle.objects.filter(provider=reading.provider, quota=reading.key, ended_at__isnull=True)
        .order_by("-started_at")
        .first()
    )
    at = reading.captured_at
    if cycle is None:
        reading.cycle = _open(reading, started_at=at, consumed=0.0)
        return 0.0

    reset_at = _reset_instant(cycle, reading)
    if reset_at is not None:
        cycle.ended_at = reset_at
        cycle.save(update_fields=["ended_at"])
        reading.cycle = _open(reading, started_at=reset_at, consumed=reading.level)
        return reading.level

    delta = 0.0
    if cycle.last_used is not None and cycle.unit == reading.unit:
        delta = max(reading.level - cycle.last_used, 0.0)
    cycle.consumed += delta
    cycle.peak_used = max(cycle.peak_used, reading.level)
    cycle.readings_count += 1
    cycle.last_used = reading.level
    cycle.last_reading_at = at
    cycle.unit = reading.unit
    if reading.scale is not None:
        cycle.limit = reading.scale
    if reading.resets_at is not None and not _reset_time_pending(cycle, reading):
        cycle.resets_at = reading.resets_at
    cycle.save()
    reading.cycle = cycle
    return delta


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
    rolled_over = (
        cycle.resets_at is not None
        and reading.resets_at is not None
        and at - cycle.resets_at >= RESET_GRACE
        and reading.resets_at - cycle.resets_at > RESET_TIME_TOLERANCE
    )
    if not (dropped or rolled_over):
        return None
    # The true reset instant when we know it, else the revealing poll.
    old = cycle.resets_at
    if old is not None and cycle.started_at < old <= at:
        return old
    return max(at, cycle.started_at)


def _reset_time_pending(cycle: ResetCycle, reading: QuotaReading) -> bool:
    """The stored reset time passed only moments ago and a later one is reported.

    Keep the stored one: the next poll, past the grace, reveals the reset at
    its true instant instead of the reset being lost to the newer time.
    """
    return (
        cycle.resets_at is not None
        and reading.captured_at >= cycle.resets_at
        and reading.resets_at - cycle.resets_at > RESET_TIME_TOLERANCE
    )
