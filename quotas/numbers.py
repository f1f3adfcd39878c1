"""The numbers users see for each quota (product.md §6): status, burn rate, projection, ticks.

``current()`` builds the per-provider body of ``GET /api/current``. It reads a
fixed number of queries whatever the size of the history: the latest usable
snapshot and its readings with their cycles, the latest poll attempt, and
each quota's readings of the last ``RATE_WINDOW`` (for the burn rate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from lib.timefmt import isostring
from quotas import rounding
from quotas.models import Kind, Outcome, PollAttempt, QuotaReading, ResetCycle, Snapshot

# Lower bounds of each status, highest first (inclusive).
STATUS_THRESHOLDS = ((95.0, "critical"), (80.0, "danger"), (50.0, "warning"), (0.0, "healthy"))
# The burn rate looks at the readings of this last stretch before the latest snapshot.
RATE_WINDOW = timedelta(hours=1)
# At most this many of them per quota: an hour at the poller's fastest interval (10 s), both ends
# included. Only polls closer together than that (`poll --once` in a tight loop, a benchmark)
# reach it, and then the rate covers the latest of them.
RATE_READINGS = 361
# Length of the regenerating windows: a tick restores tick_percent of the limit,
# so a tick comes every window × tick share (5 h × 5 % = 15 min; 7 d × 2 % ≈ 202 min).
ROLLING_WINDOWS = {"rolling_5h": timedelta(hours=5), "weekly_credits": timedelta(days=7)}
# A refill more often than this is no schedule (the real ones are 15 minutes and hours apart): a share
# like 1e-12 would make the interval round to zero and every tick count divide by it.
MIN_TICK_INTERVAL = timedelta(minutes=1)
# How far ahead an exhaustion is projected at most: ten years. A pace slower than that is no
# pace to warn about; 1 token an hour against billions left would pass year 9999 and raise.
PROJECTION_HORIZON_HOURS = 10 * 366 * 24
# A quota's outlook: the worse of these that applies (product.md §6).
OUTLOOK_OK = "ok"
OUTLOOK_RUNS_OUT = "runs_out_before_reset"
OUTLOOK_EXHAUSTED = "exhausted"
# Shares of the limit (percent) for which details["available_again"] says when they are back.
AVAILABLE_SHARES = (25, 50, 100)
# Guards float fuzz in ceil(): 125 / 25 must stay 5 ticks, never 6.
EPSILON = 1e-9
# Least evidence a rate needs before it may project anything (projected_*,
# exhausts_at, the runs_out_before_reset outlook): at least MIN_READINGS
# readings spanning at least MIN_SPAN. Two readings a minute apart are one
# step, often a single request; extrapolated over hours it alarms for nothing.
# Three readings are two steps, and five minutes is six polls at the default
# interval (thirty-one at the fastest): several requests' worth of pace, yet
# soon enough that a session burning its quota hears it within minutes. With
# hourly polls the recent hour never holds three readings, so the open cycle
# (same minimum) carries the projection instead.
MIN_READINGS = 3
MIN_SPAN = timedelta(minutes=5)
# What a rate rests on: enough evidence to project, or only enough to show.
SUFFICIENT_BASES = ("recent", "cycle")


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

    Queries (4, 2 before the first poll): latest poll attempt, latest usable
    snapshot, its readings with their cycles, the quotas' recent readings.
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
    body["quotas"] = [numbers for _, numbers in snapshot_quotas(snapshot, now)]
    return body


def snapshot_quotas(snapshot: Snapshot, now: datetime) -> list[tuple[QuotaReading, dict[str, Any]]]:
    """Each reading of ``snapshot`` with its numbers.

    Two queries: the readings with their cycles, and every quota's recent levels.
    """
    # Each reading's cycle joined by primary key: a year holds thousands of
    # closed cycles that a filter on the provider would walk.
    readings = list(snapshot.readings.select_related("cycle").order_by("id"))
    recent = _recent_levels(snapshot.provider, [r.key for r in readings], snapshot.captured_at)
    return [(r, quota_numbers(r, recent.get(r.key, []), _open(r.cycle), now)) for r in readings]


def _open(cycle: ResetCycle | None) -> ResetCycle | None:
    return cycle if cycle is not None and cycle.ended_at is None else None


# (captured_at, level, unit, cycle_id) of one reading, oldest first
Level = tuple[datetime, float | None, str, int | None]
# (exhausts_at, projected level, the instant it is projected for)
Projection = tuple[datetime | None, float | None, datetime | None]


def _recent_levels(provider: str, keys: list[str], anchor: datetime) -> dict[str, list[Level]]:
    """Each quota's readings of the last RATE_WINDOW before ``anchor``, at most RATE_READINGS, oldest first.

    One query for all the quotas: the database ranks each quota's readings of
    the window from the latest and returns the first RATE_READINGS, so what
    reaches Python stays the same however close together earlier polls came
    (one query per quota cost a round trip each on PostgreSQL).
    """
    if not keys:
        return {}
    latest_first = Window(RowNumber(), partition_by=[F("key")], order_by=[F("captured_at").desc(), F("id").desc()])
    rows = (
        QuotaReading.objects.filter(
            provider=provider, key__in=keys, captured_at__gte=anchor - RATE_WINDOW, captured_at__lte=anchor
        )
        .annotate(latest_first=latest_first)
        .filter(latest_first__lte=RATE_READINGS)
        .order_by("key", "captured_at", "id")
        .values_list("key", "captured_at", "used", "percent", "unit", "cycle_id")
    )
    levels: dict[str, list[Level]] = {}
    for key, at, used, percent, unit, cycle_id in rows:
        levels.setdefault(key, []).append((at, used if used is not None else percent, unit, cycle_id))
    return levels


def quota_numbers(
    reading: QuotaReading, recent: Iterable[Level], cycle: ResetCycle | None, now: datetime
) -> dict[str, Any]:
    """One quota of ``/api/current``: the reading plus status, rate, projection, outlook and ticks.

    ``outlook`` is ``exhausted`` (nothing left, or the upstream says
    ``limited``), else ``runs_out_before_reset`` exactly when ``exhausts_at``
    is set (reset windows: before ``resets_at``, or with no reset known;
    rolling windows: within one window length, refills included), else ``ok``.
    Only a rate with enough evidence (MIN_READINGS, MIN_SPAN) projects.
    """
    level, scale = reading.level, reading.scale
    details = dict(reading.details or {})
    ticks = _ticks(details, reading) if reading.kind == Kind.ROLLING else None
    rate, basis = burn_rate(reading, recent, cycle, ticks)
    quota: dict[str, Any] = {
        "key": reading.key,
        "label": reading.label,
        "kind": reading.kind,
        "unit": reading.unit,
        "used": rounding.reported(reading.used, reading.unit),
        "limit": rounding.reported(reading.limit, reading.unit),
        "remaining": rounding.reported(reading.remaining, reading.unit),
        "percent": rounding.percent(reading.percent),
        "status": status_for(reading.percent),
        "resets_at": isostring(reading.resets_at),
        "seconds_until_reset": _seconds_until(reading.resets_at, now),
        "rate_per_hour": rounding.derived(rate),
        "projected_used": None,
        "projected_percent": None,
        "exhausts_at": None,
        "seconds_until_exhausted": None,
        "outlook": OUTLOOK_OK,
        "details": details,
        # Extras (more fields are allowed by the contract):
        "rate_basis": basis,
        # The instant projected_* are for: the reset, or one window ahead (rolling).
        "projected_at": None,
        # The dashboard hides a quota the plan does not include (limit 0, nothing used).
        "hidden": reading.limit == 0 and not reading.used,
        "exhausted": False,
    }

    # What is left, in the unit of `level` (percent points for share-only windows).
    left: float | None = None
    if reading.used is not None and reading.remaining is not None:
        left = reading.remaining
    elif level is not None and scale is not None:
        left = max(scale - level, 0.0)
    exhausted = bool(left is not None and left <= 0 and scale) or details.get("limited") is True
    quota["exhausted"] = exhausted
    projecting = rate is not None and basis in SUFFICIENT_BASES and level is not None

    projection: Projection = (None, None, None)
    if ticks is not None:
        _add_tick_details(details, reading, ticks, now)
        if projecting and left is not None and scale:
            projection = _project_rolling(reading, ticks, rate, left, scale)
    elif reading.kind == Kind.RESET and projecting:
        projection = _project_reset(reading, rate, left, now)
    exhausts_at, projected_level, projected_at = projection

    if projected_level is not None:
        if reading.used is not None:
            quota["projected_used"] = rounding.derived(projected_level)
        if scale:
            quota["projected_percent"] = rounding.percent(projected_level / scale * 100)
        quota["projected_at"] = isostring(projected_at)
    if exhausted:
        quota["outlook"] = OUTLOOK_EXHAUSTED
    elif exhausts_at is not None:
        quota["outlook"] = OUTLOOK_RUNS_OUT
        quota["exhausts_at"] = isostring(exhausts_at)
        quota["seconds_until_exhausted"] = _seconds_until(exhausts_at, now)
    return quota


def _project_reset(reading: QuotaReading, rate: float, left: float | None, now: datetime) -> Projection:
    """(exhausts_at, projected level, its instant) of a window that resets to zero.

    The projection is ``level + rate × hours left`` at the reset, counted from
    the reading (the usage it reports is as of then). Exhaustion is what is
    left / rate, kept only when it comes before the reset (or no reset is known).
    """
    anchor, resets_at = reading.captured_at, reading.resets_at
    projected: float | None = None
    if resets_at is not None and resets_at > now:
        projected = reading.level + rate * (resets_at - anchor).total_seconds() / 3600
    exhausts_at = None
    # A crawl that would take past the horizon never "runs out" (and would not fit a datetime).
    if rate > 0 and left is not None and 0 < left / rate <= PROJECTION_HORIZON_HOURS:
        at = anchor + timedelta(hours=left / rate)
        if resets_at is None or at < resets_at:
            exhausts_at = at
    return exhausts_at, projected, resets_at if projected is not None else None


class Ticks(NamedTuple):
    """A regenerating window's refills: every ``interval`` from ``first`` on, ``per_tick`` back."""

    first: datetime
    interval: timedelta
    # In the unit of `level`: an amount, or percent points when only the share is known.
    per_tick: float | None
    tick_percent: float
    window: timedelta


def _ticks(details: dict[str, Any], reading: QuotaReading) -> Ticks | None:
    window = ROLLING_WINDOWS.get(reading.key)
    tick_percent = _number(details.get("tick_percent"))
    if tick_percent is None and reading.limit and _number(details.get("regen_amount")) is not None:
        tick_percent = details["regen_amount"] / reading.limit * 100
    first = _parse_iso(details.get("next_tick_at")) or reading.resets_at
    if window is None or tick_percent is None or tick_percent <= 0 or first is None:
        return None
    # A tick gives back at most the whole window; a share above that is no schedule either.
    if tick_percent > 100:
        return None
    interval = window * (tick_percent / 100)
    if interval < MIN_TICK_INTERVAL:
        return None
    per_tick: float | None = tick_percent
    if reading.used is not None:
        per_tick = _number(details.get("regen_amount"))
        if per_tick is None and reading.limit:
            per_tick = reading.limit * tick_percent / 100
    return Ticks(first, interval, per_tick, tick_percent, window)


def _project_rolling(reading: QuotaReading, ticks: Ticks, rate: float, left: float, scale: float) -> Projection:
    """(exhausts_at, level one window ahead, that instant) of a regenerating window, tick by tick.

    From the reading on, usage runs at ``rate`` and each tick gives
    ``per_tick`` back, the free amount never above the limit. It runs out when
    the free amount reaches 0 before one window length has passed; beyond that
    an hour of readings says too little. The projected level is the one a
    window ahead (100 % once it ran out: a limited user uses nothing more).
    """
    start = reading.captured_at
    end = start + ticks.window
    # A tick reported at or before the reading has already been applied to it.
    tick = _next_after(ticks.first, ticks.interval, start)
    per_tick = ticks.per_tick or 0.0
    free, at = left, start
    while True:
        stop = min(tick, end)
        burnt = rate * (stop - at).total_seconds() / 3600
        if rate > 0 and burnt >= free:
            return at + timedelta(hours=free / rate), scale, end
        free -= burnt
        at = stop
        if at >= end:
            return None, scale - free, end
        free = min(free + per_tick, scale)
        tick += ticks.interval


def burn_rate(
    reading: QuotaReading, recent: Iterable[Level], cycle: ResetCycle | None = None, ticks: Ticks | None = None
) -> tuple[float | None, str | None]:
    """Usage per hour, and what it rests on: ``recent``, ``cycle``, ``insufficient`` or None.

    ``recent``: Σ positive deltas of consecutive readings / hours between the
    first and the last, over the readings of the last RATE_WINDOW that belong
    to the reading's cycle (reset windows) and share its unit. A regenerating
    window's level also drops at each tick: with ``ticks``, a step adds back
    what the ticks between its two readings restored (_used_between), or the
    rate would be net of refills that the projection then counts again.
    ``cycle`` (reset windows, e.g. an hourly poll): the open cycle's consumed /
    hours from its start to its last reading. Consumption counts only what
    SynTrack saw since the cycle began, so a cycle that began when tracking
    did is not overstated (v1.7 divided the whole counter).
    Each basis needs MIN_READINGS readings over MIN_SPAN; when neither has
    them, the rate of two readings (recent first) is still given, as
    ``insufficient``: shown, never projected.
    """
    # One pass, nothing kept but the first and previous points: ``recent`` may stream thousands.
    first_at: datetime | None = None
    previous: tuple[datetime, float] | None = None
    count, used = 0, 0.0
    for at, value, unit, cycle_id in recent:
        if (
            value is None
            or unit != reading.unit
            or at > reading.captured_at
            or (reading.kind == Kind.RESET and cycle_id != reading.cycle_id)
        ):
            continue
        if previous is None:
            first_at = at
        else:
            used += _used_between(*previous, at, value, ticks)
        previous, count = (at, value), count + 1
    thin: float | None = None
    if previous is not None and count >= 2:
        span = previous[0] - first_at
        if span > timedelta(0):
            rate = used / (span.total_seconds() / 3600)
            if count >= MIN_READINGS and span >= MIN_SPAN:
                return rate, "recent"
            thin = rate
    if reading.kind == Kind.RESET and cycle is not None and cycle.last_reading_at is not None:
        span = cycle.last_reading_at - cycle.started_at
        if span > timedelta(0):
            rate = cycle.consumed / (span.total_seconds() / 3600)
            if cycle.readings_count >= MIN_READINGS and span >= MIN_SPAN:
                return rate, "cycle"
            thin = rate if thin is None else thin
    return (thin, "insufficient") if thin is not None else (None, None)


def _used_between(a_at: datetime, a: float, b_at: datetime, b: float, ticks: Ticks | None) -> float:
    """What was used between two readings: the rise, plus what the ticks between them gave back.

    Ticks keep a fixed schedule (``first`` + k × interval, also backwards). A
    tick gives back at most what was in use, so the level at the first
    reading bounds it.
    """
    restored = 0.0
    if ticks is not None and ticks.per_tick:
        count = (b_at - ticks.first) // ticks.interval - (a_at - ticks.first) // ticks.interval
        restored = min(max(count, 0) * ticks.per_tick, a)
    return max(b - a + restored, 0.0)


def _add_tick_details(details: dict[str, Any], reading: QuotaReading, ticks: Ticks, now: datetime) -> None:
    """Tick math of a regenerating window into ``details``.

    Adds ``tick_interval_seconds`` (window × tick share), ``regen_per_hour``,
    ``upcoming_tick_at`` and ``seconds_until_next_tick`` (the first tick after
    ``now``) and ``available_again`` {"25", "50", "100": ISO
    time or None}: when that share of the limit is free again if nothing more
    is used. The k-th tick (k = 1, 2, …) comes at next_tick_at (moved along
    its schedule past the reading) + (k − 1) × interval and restores the tick share. None means the share is free now;
    never while ``limited``, when such a share is promised at the next tick.
    A time already past ``now`` (an old reading: the poller stopped, or the
    tick came since) moves to the next tick after ``now``: the reading cannot
    say what was used since, so the answer errs late, never says "now".
    """
    interval_seconds = ticks.interval.total_seconds()
    upcoming = _next_after(ticks.first, ticks.interval, now)
    details["tick_interval_seconds"] = round(interval_seconds)
    # next_tick_at stays as reported; an old reading's may have passed, this one never has.
    details["upcoming_tick_at"] = isostring(upcoming)
    details["seconds_until_next_tick"] = _seconds_until(upcoming, now)
    details["regen_per_hour"] = (
        rounding.derived(ticks.per_tick / (interval_seconds / 3600)) if ticks.per_tick is not None else None
    )

    # What is free now, as a share of the limit.
    free_share: float | None = None
    if reading.remaining is not None and reading.limit:
        free_share = reading.remaining / reading.limit * 100
    elif reading.percent is not None:
        free_share = max(100 - reading.percent, 0.0)
    if free_share is None:
        details["available_again"] = None
        return
    # Never more than all of it: a limit of 1e-308 against 1 remaining is infinitely free otherwise.
    free_share = min(free_share, 100.0)
    limited = details.get("limited") is True
    # The reading's own next tick: a reported one at or before the reading has already counted.
    first = _next_after(ticks.first, ticks.interval, reading.captured_at)
    available: dict[str, str | None] = {}
    for share in AVAILABLE_SHARES:
        missing = share - free_share
        if missing <= EPSILON and not limited:
            available[str(share)] = None
            continue
        ticks_needed = max(math.ceil(missing / ticks.tick_percent - EPSILON), 1)
        at = first + (ticks_needed - 1) * ticks.interval
        available[str(share)] = isostring(at if at > now else upcoming)
    details["available_again"] = available


def _next_after(first: datetime, interval: timedelta, now: datetime) -> datetime:
    """The first tick of the schedule ``first + k × interval`` that lies after ``now``."""
    if first > now:
        return first
    return first + (math.floor((now - first) / interval) + 1) * interval


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
