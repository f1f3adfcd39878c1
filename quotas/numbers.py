"""The numbers users see for each quota (product.md §6): status, burn rate, projection, ticks.

``current()`` builds the per-provider body of ``GET /api/current``. It reads a
fixed number of queries whatever the size of the history: the latest usable
snapshot and its readings, the latest poll attempt, the open cycles, and the
readings of the last ``RATE_WINDOW`` (for the burn rate).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from django.utils import timezone

from lib.timefmt import isostring
from quotas.models import Kind, Outcome, PollAttempt, QuotaReading, ResetCycle, Snapshot

# Lower bounds of each status, highest first (inclusive).
STATUS_THRESHOLDS = ((95.0, "critical"), (80.0, "danger"), (50.0, "warning"), (0.0, "healthy"))
# The burn rate looks at the readings of this last stretch before the latest snapshot.
RATE_WINDOW = timedelta(hours=1)
# Length of the regenerating windows: a tick restores tick_percent of the limit,
# so a tick comes every window × tick share (5 h × 5 % = 15 min; 7 d × 2 % ≈ 202 min).
ROLLING_WINDOWS = {"rolling_5h": timedelta(hours=5), "weekly_credits": timedelta(days=7)}
# Shares of the limit (percent) for which details["available_again"] says when they are back.
AVAILABLE_SHARES = (25, 50, 100)
# Derived numbers are rounded to this many decimals (floats never leak 0.30000000000000004).
DECIMALS = 4
# Guards float fuzz in ceil(): 125 / 25 must stay 5 ticks, never 6.
EPSILON = 1e-9


def status_for(percent: float | None) -> str:
    """``healthy`` < 50 ≤ ``warning`` < 80 ≤ ``danger`` < 95 ≤ ``critical``; None is ``unknown``."""
    if percent is None or not math.isfinite(percent):
        return "unknown"
    for bound, status in STATUS_THRESHOLDS:
        if percent >= bound:
            return status
    return "healthy"  # negative percentages never come from upstream, but stay sane


def current(provider: str, now: datetime | None = None) -> dict[str, Any]:
    """The per-provider body of ``GET /api/current``.

    Queries (5 with data, 2 before the first poll): latest poll attempt,
    latest usable snapshot, its readings, open cycles, recent readings.
    """
    now = now or timezone.now()
    attempt = PollAttempt.objects.filter(provider=provider).order_by("-at", "-id").first()
    snapshot = Snapshot.objects.filter(provider=provider, usable=True).order_by("-captured_at", "-id").first()
    body: dict[str, Any] = {
        "provider": provider,
        "captured_at": None,
        "plan": None,
        # A drift poll never replaces the last good readings, so the flag comes
        # from the latest attempt, not from the snapshot shown.
        "drift": attempt is not None and (attempt.outcome == Outcome.DRIFT or attempt.drift),
        "last_poll": (
            {"at": isostring(attempt.at), "outcome": attempt.outcome, "message": attempt.message}
            if attempt is not None
            else None
        ),
        "quotas": [],
    }
    if snapshot is None:
        return body
    body["captured_at"] = isostring(snapshot.captured_at)
    body["plan"] = snapshot.plan or None
    readings = list(snapshot.readings.order_by("id"))
    open_cycles = {c.pk: c for c in ResetCycle.objects.filter(provider=provider, ended_at__isnull=True)}
    recent = _recent_levels(provider, snapshot.captured_at)
    body["quotas"] = [quota_numbers(r, recent.get(r.key, []), open_cycles.get(r.cycle_id), now) for r in readings]
    return body


# (captured_at, level, unit, cycle_id) of one reading, oldest first
Level = tuple[datetime, float | None, str, int | None]


def _recent_levels(provider: str, anchor: datetime) -> dict[str, list[Level]]:
    """Readings of the last RATE_WINDOW before ``anchor``, by key, oldest first (one query)."""
    rows = (
        QuotaReading.objects.filter(provider=provider, captured_at__gte=anchor - RATE_WINDOW, captured_at__lte=anchor)
        .order_by("captured_at", "id")
        .values_list("key", "captured_at", "used", "percent", "unit", "cycle_id")
    )
    levels: dict[str, list[Level]] = defaultdict(list)
    for key, at, used, percent, unit, cycle_id in rows:
        levels[key].append((at, used if used is not None else percent, unit, cycle_id))
    return levels


def quota_numbers(
    reading: QuotaReading, recent: list[Level], cycle: ResetCycle | None, now: datetime
) -> dict[str, Any]:
    """One quota of ``/api/current``: the reading plus status, rate, projection and ticks."""
    level, scale = reading.level, reading.scale
    anchor = reading.captured_at
    rate, basis = burn_rate(reading, recent, cycle)
    quota: dict[str, Any] = {
        "key": reading.key,
        "label": reading.label,
        "kind": reading.kind,
        "unit": reading.unit,
        "used": reading.used,
        "limit": reading.limit,
        "remaining": reading.remaining,
        "percent": reading.percent,
        "status": status_for(reading.percent),
        "resets_at": isostring(reading.resets_at),
        "seconds_until_reset": _seconds_until(reading.resets_at, now),
        "rate_per_hour": _round(rate),
        "projected_used": None,
        "projected_percent": None,
        "details": dict(reading.details or {}),
        # Extras (more fields are allowed by the contract):
        "rate_basis": basis,
        # The dashboard hides a quota the plan does not include (limit 0, nothing used).
        "hidden": reading.limit == 0 and not reading.used,
        "exhausted": False,
        "exhausts_at": None,
        "seconds_until_exhausted": None,
    }

    # What is left, in the unit of `level` (percent points for share-only windows).
    left: float | None = None
    if reading.used is not None and reading.remaining is not None:
        left = reading.remaining
    elif level is not None and scale is not None:
        left = max(scale - level, 0.0)
    quota["exhausted"] = bool(left is not None and left <= 0 and scale)

    regen_per_hour = 0.0
    if reading.kind == Kind.ROLLING:
        regen_per_hour = _add_ticks(quota["details"], reading, now)
    elif rate is not None and level is not None and reading.resets_at is not None and reading.resets_at > now:
        # Projection at the reset: used + rate × hours left, counted from the
        # reading (the usage it reports is as of then).
        hours_left = (reading.resets_at - anchor).total_seconds() / 3600
        projected = level + rate * hours_left
        if reading.used is not None:
            quota["projected_used"] = _round(projected)
        if scale:
            quota["projected_percent"] = _round(projected / scale * 100)

    # Time to exhaustion: what is left / net rate, shown only when it comes
    # before the reset (rolling windows: usage minus regeneration, no reset).
    net = rate - regen_per_hour if rate is not None else None
    if net is not None and net > 0 and left is not None and left > 0:
        exhausts_at = anchor + timedelta(hours=left / net)
        if reading.kind == Kind.ROLLING or reading.resets_at is None or exhausts_at < reading.resets_at:
            quota["exhausts_at"] = isostring(exhausts_at)
            quota["seconds_until_exhausted"] = _seconds_until(exhausts_at, now)
    return quota


def burn_rate(
    reading: QuotaReading, recent: list[Level], cycle: ResetCycle | None = None
) -> tuple[float | None, str | None]:
    """Usage per hour, and what it was measured on (``recent``, ``cycle`` or None).

    ``recent``: Σ positive deltas of consecutive readings / hours between the
    first and the last, over the readings of the last RATE_WINDOW that belong
    to the reading's cycle (reset windows) and share its unit. At least two
    readings are needed.
    ``cycle`` (reset windows, fewer readings, e.g. an hourly poll): the open
    cycle's consumed / hours from its start to its last reading. Consumption
    counts only what SynTrack saw since the cycle began, so a cycle that began
    when tracking did is not overstated (v1.7 divided the whole counter).
    """
    points = [
        (at, value)
        for at, value, unit, cycle_id in recent
        if value is not None
        and unit == reading.unit
        and at <= reading.captured_at
        and (reading.kind != Kind.RESET or cycle_id == reading.cycle_id)
    ]
    if len(points) >= 2:
        hours = (points[-1][0] - points[0][0]).total_seconds() / 3600
        if hours > 0:
            consumed = sum(max(b - a, 0.0) for (_, a), (_, b) in pairwise(points))
            return consumed / hours, "recent"
    if reading.kind == Kind.RESET and cycle is not None and cycle.last_reading_at is not None:
        hours = (cycle.last_reading_at - cycle.started_at).total_seconds() / 3600
        if hours > 0:
            return cycle.consumed / hours, "cycle"
    return None, None


def _add_ticks(details: dict[str, Any], reading: QuotaReading, now: datetime) -> float:
    """Tick math of a regenerating window into ``details``; returns the regeneration per hour.

    Adds ``tick_interval_seconds`` (window × tick share), ``regen_per_hour``,
    ``seconds_until_next_tick`` and ``available_again`` {"25", "50", "100": ISO
    time or None}: when that share of the limit is free again if nothing more
    is used. The k-th tick (k = 1, 2, …) comes at next_tick_at + (k − 1) ×
    interval and restores regen_amount; a share already free is None.
    """
    window = ROLLING_WINDOWS.get(reading.key)
    tick_percent = _number(details.get("tick_percent"))
    if tick_percent is None and reading.limit and _number(details.get("regen_amount")) is not None:
        tick_percent = details["regen_amount"] / reading.limit * 100
    next_tick = _parse_iso(details.get("next_tick_at")) or reading.resets_at
    if window is None or tick_percent is None or tick_percent <= 0:
        return 0.0
    interval = window * (tick_percent / 100)
    interval_seconds = interval.total_seconds()
    details["tick_interval_seconds"] = round(interval_seconds)
    details["seconds_until_next_tick"] = _seconds_until(next_tick, now)
    # Restored per hour, in the unit of `level` (amounts, or percent points when only the share is known).
    per_tick: float | None = tick_percent
    if reading.used is not None:
        per_tick = _number(details.get("regen_amount"))
        if per_tick is None and reading.limit:
            per_tick = reading.limit * tick_percent / 100
    regen_per_hour = per_tick / (interval_seconds / 3600) if per_tick is not None else 0.0
    details["regen_per_hour"] = _round(regen_per_hour) if per_tick is not None else None

    # What is free now, as a share of the limit.
    free_share: float | None = None
    if reading.remaining is not None and reading.limit:
        free_share = reading.remaining / reading.limit * 100
    elif reading.percent is not None:
        free_share = max(100 - reading.percent, 0.0)
    if free_share is None or next_tick is None:
        details["available_again"] = None
        return regen_per_hour
    available: dict[str, str | None] = {}
    for share in AVAILABLE_SHARES:
        missing = share - free_share
        if missing <= EPSILON:
            available[str(share)] = None
            continue
        ticks = max(math.ceil(missing / tick_percent - EPSILON), 1)
        available[str(share)] = isostring(next_tick + (ticks - 1) * interval)
    details["available_again"] = available
    return regen_per_hour


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _seconds_until(moment: datetime | None, now: datetime) -> int | None:
    """Whole seconds from ``now`` to ``moment``, 0 once it has passed."""
    if moment is None:
        return None
    return max(int((moment - now).total_seconds()), 0)


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, DECIMALS)
