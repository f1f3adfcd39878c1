"""The chart's time series: every quota as % of its limit, downsampled in the database.

``history()`` answers ``GET /api/history`` (product.md §8, §10). Whatever the
range and however many snapshots it holds, each series has at most
``MAX_POINTS`` points: the range is cut into at most ``BUCKETS`` (+1) time
buckets and the database picks, per quota and bucket, the reading with the
lowest percent, the highest and the last (up to three points, in time order), plus
the readings on either side of every reset. 1h and 6h read the readings; 24h,
7d and 30d read the roll-ups of quotas.rollups, so their cost follows the
points returned, not the readings stored. Peaks and resets survive; the rows
in between stay in the database.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db import NotSupportedError
from django.db.models import Count, F, FloatField, Func, Max, Q, Subquery, Value, Window
from django.db.models.functions import Coalesce, Lag, Lead, RowNumber
from django.utils import timezone

from lib.timefmt import epoch_isostring, isostring
from quotas import rounding
from quotas.memo import Memo
from quotas.models import PollSession, QuotaReading, QuotaRollup, Resolution, Snapshot
from quotas.providers import ADAPTERS

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
MAX_POINTS = 500
# Three points per bucket; one bucket more can appear when a reading sits
# right on the range's start (float rounding), so 165 keeps even that ≤ 500.
BUCKETS = MAX_POINTS // 3 - 1
# A stretch between two successful snapshots longer than this many poll
# intervals is a gap (product.md §8).
GAP_INTERVALS = 2.5
# How far (as a share of a roll-up) a chart bucket may fall short of the width BUCKETS asks for.
BUCKET_SLACK = 0.05
# Seconds added to a reading's time before it is bucketed (see _ReadingsPlan.bucket).
EPOCH_SLACK = 0.001


class Series(TypedDict):
    key: str
    label: str
    points: list[list[Any]]


class History(TypedDict):
    provider: str
    range: str
    start: str | None
    end: str | None
    bucket_seconds: float
    series: list[Series]
    gaps: list[list[str | None]]


class EpochSeconds(Func):
    """Seconds since 1970-01-01 UTC of a datetime column, as a float, computed by the database.

    Django has no portable epoch extraction, and its SQLite datetime functions
    are Python callbacks, far too slow for a scan of a month of readings;
    both templates here are native to their database.
    """

    arity = 1
    output_field = FloatField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotSupportedError(f"history is not implemented for {connection.vendor}")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Julian day 2440587.5 is the Unix epoch.
        template = "((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        return super().as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"
        return super().as_sql(compiler, connection, template=template, **extra)


class WholePart(Func):
    """The whole part of a non-negative number (a bucket's index), computed natively.

    Django runs FLOOR on SQLite as a Python callback, once per row and per
    window that partitions by it; a CAST truncates in C, which is the floor
    for the non-negative values here. PostgreSQL's CAST rounds: FLOOR there.
    """

    function = "FLOOR"
    arity = 1
    output_field = FloatField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, template="CAST(%(expressions)s AS INTEGER)", **extra)


def history(provider: str, range_key: str, now: datetime | None = None, source: str | None = None) -> History:
    """Every quota of ``provider`` as % of its limit over the range, with the gaps.

    Points are ``[time, percent, used]`` (``used`` null when the upstream only
    gave a percentage), oldest first; readings without a percent are left
    out. Gaps are ``[start, end]`` pairs: two successful snapshots further
    apart than 2.5 poll intervals, clipped to the range, and a trailing gap
    from the last snapshot to ``now`` when polling stopped. No point lies
    inside a gap; the chart breaks its lines there. The last reading before
    and the first after every reset in the range are points too.

    Ranges whose chart buckets are shorter than the finest roll-up (1h, 6h)
    read the readings, at most a few thousand per quota: four queries (each
    bucket's lowest, highest and last reading, the resets, the sessions, the
    stretches between snapshots). Longer ones (24h, 7d, 30d) read
    roll-ups: their buckets are whole roll-ups, aligned on the epoch, so the
    cost follows the points returned, not the readings stored; a web worker
    remembers the points of the buckets that can no longer change
    (``_from_rollups``) and ranks only the newest ones again. ``source``
    ("readings" or "rollups") forces one path for those ranges: the tests
    check both give the same answer.
    """
    if provider not in ADAPTERS:
        raise ValueError(f"unknown provider {provider!r}")
    if range_key not in RANGES:
        raise ValueError(f"unknown range {range_key!r}; use one of {', '.join(RANGES)}")
    now = now or timezone.now()
    start = now - RANGES[range_key]
    wanted = RANGES[range_key].total_seconds() / BUCKETS
    resolution = rollup_resolution(wanted)
    if resolution is None:
        width = wanted
        plan = _ReadingsPlan(provider, start, now, width)
        series = _every_reading(plan) if _fits(plan) else _series(plan)
        gaps = _gaps(provider, start, now)
    else:
        # Whole roll-ups only: the range starts at the first roll-up boundary in it. A few more
        # buckets than BUCKETS are let in where that keeps them one roll-up wide (7d: 168 hours);
        # _within_budget still holds every series to MAX_POINTS.
        width = math.ceil(wanted / resolution - BUCKET_SLACK) * resolution
        start = datetime.fromtimestamp(math.ceil(start.timestamp() / resolution) * resolution, UTC)
        if source == "readings":
            series = _series(_ReadingsPlan(provider, start, now, width, aligned=True))
            gaps = _gaps(provider, start, now)
        else:
            series, gaps = _from_rollups(provider, start, now, width, resolution)
    return {
        "provider": provider,
        "range": range_key,
        "start": isostring(start),
        "end": isostring(now),
        "bucket_seconds": round(width, 3),
        "series": series,
        "gaps": gaps,
    }


def rollup_resolution(width: float) -> int | None:
    """The roll-up size a chart with ``width``-second buckets reads, or None for the readings.

    The hourly roll-ups once a chart bucket spans about an hour or more (7d:
    61 min, taken as 1 h; 30d: 4.4 h, rounded up to 5 h), else 5-minute ones
    (24h: 9 min → 10), unless a chart bucket is shorter than 5 minutes (1h, 6h).
    """
    if width >= (1 - BUCKET_SLACK) * Resolution.HOUR:
        return int(Resolution.HOUR)
    if width >= Resolution.FIVE_MINUTES:
        return int(Resolution.FIVE_MINUTES)
    return None


class _ReadingsPlan:
    """Where ``_series`` finds the points: the readings themselves.

    Buckets count back from ``now`` (the newest bucket ends at ``now``), or,
    ``aligned``, are epoch-aligned multiples of ``width`` as roll-ups are.
    """

    def __init__(self, provider: str, start: datetime, now: datetime, width: float, aligned: bool = False) -> None:
        self.provider, self.start, self.now, self.width, self.aligned = provider, start, now, width, aligned
        after = {"captured_at__gte": start} if aligned else {"captured_at__gt": start}
        self.rows = QuotaReading.objects.filter(provider=provider, captured_at__lte=now, percent__isnull=False, **after)
        self.lowest = self.highest = self.last = ("captured_at", "percent", "used")

    def bucket(self, epoch: Any) -> Any:
        if self.aligned:
            # A reading right on a boundary opens its bucket, as in quotas.rollups; julianday()
            # may put it some microseconds early.
            return WholePart((epoch + Value(EPOCH_SLACK)) / Value(self.width))
        return WholePart((Value(self.now.timestamp()) - epoch) / Value(self.width))

    def resets(self) -> list[tuple[str, float, float, float | None]]:
        """The readings on either side of a reset (epoch seconds): the quota's cycle changes between them."""
        in_order = [F("captured_at").asc(), F("id").asc()]
        changed = Q(cycle_id__isnull=False) & (
            (Q(previous_cycle__isnull=False) & ~Q(previous_cycle=F("cycle_id")))
            | (Q(next_cycle__isnull=False) & ~Q(next_cycle=F("cycle_id")))
        )
        return list(
            self.rows.annotate(
                previous_cycle=Window(Lag("cycle_id"), partition_by=[F("key")], order_by=in_order),
                next_cycle=Window(Lead("cycle_id"), partition_by=[F("key")], order_by=in_order),
            )
            .filter(changed)
            .annotate(epoch=EpochSeconds("captured_at"))
            .values_list("key", "epoch", "percent", "used")
        )


class _RollupsPlan:
    """Where ``_series`` finds the points: ``resolution``-second roll-ups, whole ones in each epoch-aligned bucket.

    The roll-ups starting in [``start``, ``end``) (``end`` None: up to ``now``),
    and the resets among them whose reading before lies after ``since`` (the range's start).
    """

    def __init__(
        self,
        provider: str,
        start: datetime,
        now: datetime,
        width: float,
        resolution: int,
        end: datetime | None = None,
        since: datetime | None = None,
    ) -> None:
        self.start, self.width, self.resolution = start, width, resolution
        self.since = since or start
        self.rows = QuotaRollup.objects.filter(provider=provider, resolution=resolution, start__gte=start)
        self.rows = self.rows.filter(start__lt=end) if end is not None else self.rows.filter(start__lte=now)
        self.lowest = ("min_at", "min_percent", "min_used")
        self.highest = ("max_at", "max_percent", "max_used")
        self.last = ("last_at", "last_percent", "last_used")

    def bucket(self, epoch: Any) -> Any:
        # The roll-up's own start lies right on a boundary: placed by its middle, float error cannot move it.
        return WholePart((EpochSeconds("start") + Value(self.resolution / 2)) / Value(self.width))

    def resets(self) -> list[tuple[str, float, float, float | None]]:
        points = []
        resets = self.rows.filter(reset_after_at__isnull=False, reset_before_at__gte=self.since).annotate(
            before_epoch=EpochSeconds("reset_before_at"), after_epoch=EpochSeconds("reset_after_at")
        )
        for key, *pair in resets.values_list(
            "key",
            "before_epoch",
            "reset_before_percent",
            "reset_before_used",
            "after_epoch",
            "reset_after_percent",
            "reset_after_used",
        ):
            points.append((key, *pair[:3]))
            points.append((key, *pair[3:]))
        return points


def _series(plan: _ReadingsPlan | _RollupsPlan) -> list[Series]:
    return _finish(_collect(plan))


def _collect(plan: _ReadingsPlan | _RollupsPlan) -> _Collected:
    """Two queries: each bucket's lowest, highest and last reading (one pass over the range), the resets.

    The database numbers the rows of each (quota, bucket) three ways: by
    percent up (ties: the earliest), by percent down (ties: the latest), by
    time down; the first of each comes back, so at most three rows a bucket,
    exact values and times. Times come as epoch seconds (no datetime per
    row: a 6h chart of both providers returns some 2,500 points).
    """
    (low_at, low_percent, low_used), (high_at, high_percent, high_used) = plan.lowest, plan.highest
    last_at, last_percent, last_used = plan.last
    in_bucket = [F("key"), plan.bucket(EpochSeconds(last_at))]
    ranked = plan.rows.annotate(
        low_rank=Window(
            RowNumber(), partition_by=in_bucket, order_by=[F(low_percent).asc(), F(low_at).asc(), F("id").asc()]
        ),
        high_rank=Window(
            RowNumber(), partition_by=in_bucket, order_by=[F(high_percent).desc(), F(high_at).desc(), F("id").desc()]
        ),
        last_rank=Window(RowNumber(), partition_by=in_bucket, order_by=[F(last_at).desc(), F("id").desc()]),
        low_epoch=EpochSeconds(low_at),
        high_epoch=EpochSeconds(high_at),
        last_epoch=EpochSeconds(last_at),
    ).filter(Q(low_rank=1) | Q(high_rank=1) | Q(last_rank=1))
    rows = ranked.values_list(
        "key", "label", "unit", "low_rank", "high_rank", "last_rank",
        "low_epoch", low_percent, low_used, "high_epoch", high_percent, high_used,
        "last_epoch", last_percent, last_used,
    )  # fmt: skip

    # (second, percent, used, rank) by second: rank orders what a full series keeps (see _within_budget).
    points: dict[str, dict[int, Point]] = {}
    # The newest label and unit of each quota.
    labels: dict[str, tuple[float, str, str]] = {}
    for key, label, unit, low, high, last, *values in rows:
        chosen = points.setdefault(key, {})
        low_epoch, low_p, low_u, high_epoch, high_p, high_u, last_epoch, last_p, last_u = values
        if last == 1:
            second = _second(last_epoch)
            chosen[second] = (second, last_p, last_u, LAST)
            if key not in labels or labels[key][0] < last_epoch:
                labels[key] = (last_epoch, label, unit)
        # An extreme that is the bucket's last reading adds nothing: the last keeps its rank.
        for ranked_first, epoch, percent, used in ((low, low_epoch, low_p, low_u), (high, high_epoch, high_p, high_u)):
            second = _second(epoch)
            if ranked_first == 1 and (second not in chosen or chosen[second][3] == EXTREME):
                chosen[second] = (second, percent, used, EXTREME)
    for key, epoch, percent, used in plan.resets():
        if key in points:
            second = _second(epoch)
            points[key][second] = (second, percent, used, RESET)
    return _Collected(points, labels)


class _Collected:
    """A part of a chart: each quota's points by second and its newest (epoch, label, unit).

    The settled part (``settle``) also keeps each quota's points in time order,
    formatted for the API once, and its silences (see ``_rollup_gaps``), so a
    request that finds it formats only the newest points.
    """

    __slots__ = ("end", "formatted", "labels", "ordered", "points", "silences")

    def __init__(self, points: dict[str, dict[int, Point]], labels: dict[str, tuple[float, str, str]]) -> None:
        self.points, self.labels = points, labels
        self.end: datetime | None = None
        self.ordered: dict[str, list[Point]] = {}
        # Per quota: the unit they were formatted for, by second, and in time order.
        self.formatted: dict[str, tuple[str, dict[int, list[Any]], list[list[Any]]]] = {}
        # Per threshold in seconds: the silences longer than it, as _rollup_gaps reads them.
        self.silences: dict[float, list[tuple[datetime, datetime]]] = {}

    def settle(self, end: datetime) -> None:
        self.end = end
        for key, chosen in self.points.items():
            unit = self.labels[key][2]
            ordered = self.ordered[key] = sorted(chosen.values(), key=lambda point: point[0])
            formatted = [_format(point, unit) for point in ordered]
            self.formatted[key] = (unit, {point[0]: f for point, f in zip(ordered, formatted, strict=True)}, formatted)

    def followed_by(self, key: str, fresh: dict[int, Point], unit: str) -> list[list[Any]]:
        """Quota ``key``'s API points: these settled ones and the ``fresh`` ones; at a second both hold,
        the higher-ranked point (a reset's over a bucket's last over an extreme)."""
        earlier, ordered = self.points[key], self.ordered[key]
        known_unit, by_second, in_order = self.formatted[key]
        later = sorted(fresh.values(), key=lambda point: point[0])
        if (
            known_unit == unit
            and (not later or later[0][0] > ordered[-1][0])
            and len(ordered) + len(later) <= MAX_POINTS
        ):
            # The usual refresh: the newest bucket's few points after the settled ones, all within budget.
            return in_order + [_format(point, unit) for point in later]
        merged = [point for point in ordered if point[0] not in fresh or point[3] < fresh[point[0]][3]]
        merged.extend(point for point in later if point[3] <= earlier.get(point[0], point)[3])
        reuse = known_unit == unit
        return [
            by_second[point[0]] if reuse and earlier.get(point[0]) is point else _format(point, unit)
            for point in _within_budget(merged)
        ]


Point = tuple[int, float, float | None, int]


def _format(point: Point, unit: str) -> list[Any]:
    second, percent, used, _ = point
    return [epoch_isostring(second), rounding.percent(percent), rounding.reported(used, unit)]


def _finish(part: _Collected, settled: _Collected | None = None) -> list[Series]:
    """The series of ``part``, after the ``settled`` part's points when given; the newest label names each."""
    series: list[Series] = []
    keys = set(part.points) | (set(settled.points) if settled else set())
    for key in sorted(keys):
        chosen = part.points.get(key, {})
        label = part.labels.get(key) or settled.labels[key]  # type: ignore[union-attr]
        if settled is not None and key in settled.points:
            points = settled.followed_by(key, chosen, label[2])
        else:
            points = [_format(point, label[2]) for point in _within_budget(list(chosen.values()))]
        series.append({"key": key, "label": label[1], "points": points})
    return series


def _from_rollups(
    provider: str, start: datetime, now: datetime, width: float, resolution: int
) -> tuple[list[Series], list[list[str | None]]]:
    """The series and gaps of a roll-up range: its settled buckets from this process's memo, the rest fresh.

    A chart bucket is settled once every poll that can land in it is stored
    (SETTLE_SECONDS after it ends): its points never change again unless
    ``reparse`` rebuilds the roll-ups or retention drops them, and both change
    the roll-ups' ids or count, which key the memo. So a dashboard's refresh
    ranks only the newest bucket or two, whatever the range holds; the
    settled ones cost a query of their roll-ups' ids once they are known.
    """
    settled_end = math.floor((now.timestamp() - SETTLE_SECONDS) / width) * width
    if settled_end <= start.timestamp():
        series = _series(_RollupsPlan(provider, start, now, width, resolution))
        return series, _rollup_gaps(provider, start, now, resolution)
    end = datetime.fromtimestamp(settled_end, UTC)
    settled = _settled(provider, start, end, width, resolution)
    fresh = _collect(_RollupsPlan(provider, end, now, width, resolution, since=start))
    return _finish(fresh, settled), _rollup_gaps(provider, start, now, resolution, settled)


# Seconds after a chart bucket ends until it is settled: well past the longest poll (lib.http's 20 s),
# so no reading can still be on its way into it.
SETTLE_SECONDS = 120


def _settled(provider: str, start: datetime, end: datetime, width: float, resolution: int) -> _Collected:
    """The points of the settled chart buckets (see ``_from_rollups``), from this process's memo.

    Keyed by the range's bounds and bucket width, and the highest id and the
    number of the roll-ups in it: roll-ups are only ever inserted, updated while
    their bucket is open, and deleted (reparse, retention), and ids are never
    reused, so an unchanged key means unchanged roll-ups. Web workers each keep
    their own: nothing to invalidate across processes.
    """
    plan = _RollupsPlan(provider, start, start, width, resolution, end=end)
    version = plan.rows.aggregate(highest=Max("id"), count=Count("id"))

    def collected() -> _Collected:
        part = _collect(plan)
        part.settle(end)
        return part

    return _SETTLED.get((provider, resolution, width, start, end, *version.values()), collected)


# A few ranges' worth of settled buckets.
_SETTLED: Memo[_Collected] = Memo(16)


def _fits(plan: _ReadingsPlan) -> bool:
    """Whether every quota has at most MAX_POINTS readings in the range (one query): then they all go out."""
    counts = plan.rows.values("key").annotate(readings=Count("id")).order_by().values_list("readings", flat=True)
    return max(counts, default=0) <= MAX_POINTS


def _every_reading(plan: _ReadingsPlan) -> list[Series]:
    """Every reading of the range, a point each: a short range of a 60-s poller (6h: 360 a quota) fits
    the budget whole, and one plain indexed read beats ranking readings that would nearly all be kept.
    The readings around resets are among them."""
    rows = (
        plan.rows.annotate(epoch=EpochSeconds("captured_at"))
        .order_by("key", "captured_at", "id")
        .values_list("key", "label", "unit", "epoch", "percent", "used")
    )
    series: list[Series] = []
    current: Series | None = None
    for key, label, unit, epoch, percent, used in rows:
        if current is None or current["key"] != key:
            current = {"key": key, "label": label, "points": []}
            series.append(current)
        current["label"] = label  # the newest reading names the series (rows come oldest first)
        point = [epoch_isostring(_second(epoch)), rounding.percent(percent), rounding.reported(used, unit)]
        current["points"].append(point)
    return series


def _second(epoch: float) -> int:
    """The whole second of an epoch time, as the API shows it; to the millisecond first, because the
    database's epoch of a datetime (SQLite's julianday()) is some tens of microseconds off."""
    return math.floor(round(epoch, 3))


# What a series over budget keeps first: reset points, then each bucket's last, then its extremes.
RESET, LAST, EXTREME = 0, 1, 2


def _within_budget(points: list[tuple[datetime, float, float | None, int]]) -> list:
    """At most MAX_POINTS points in time order, dropping the least telling evenly.

    Only a range with very many resets needs it (an hourly window over 30
    days: 720 resets); the extremes go first, then, if reset points alone
    still overflow, every n-th of those of the lowest rank still in.
    """
    points.sort(key=lambda point: point[0])
    if len(points) <= MAX_POINTS:
        return points
    for rank in (EXTREME, LAST, RESET):
        others = sum(1 for point in points if point[3] < rank)
        ranked = [point for point in points if point[3] == rank]
        room = MAX_POINTS - others
        if room >= len(ranked):
            continue
        keep = {id(ranked[int(i * len(ranked) / room)]) for i in range(room)} if room > 0 else set()
        points = [point for point in points if point[3] != rank or id(point) in keep]
        if len(points) <= MAX_POINTS:
            break
    return points


def _rollup_gaps(
    provider: str, start: datetime, now: datetime, resolution: int, settled: _Collected | None = None
) -> list[list[str | None]]:
    """The gaps of a roll-up-served range, from the roll-ups alone (the readings may be pruned).

    Each roll-up keeps the longest silence ending in it; those longer than 2.5
    poll intervals are gaps (one per roll-up at most: finer ones do not show
    at this resolution), then the trailing one after the newest roll-up.
    Three queries: the sessions, the candidate silences (those of the
    ``settled`` roll-ups remembered with them), the newest roll-up.
    """
    sessions, default, shortest = _sessions(provider, start, now)
    rollups = QuotaRollup.objects.filter(provider=provider, resolution=resolution, start__lte=now)
    threshold = GAP_INTERVALS * shortest
    silences = rollups.filter(gap_seconds__gt=threshold).values_list("gap_began_at", "gap_ended_at")
    if settled is None or settled.end is None:
        stretches: list[tuple[datetime, datetime | None]] = sorted(set(silences.filter(start__gte=start)))
    else:
        known = settled.silences.get(threshold)
        if known is None:
            known = settled.silences[threshold] = list(silences.filter(start__gte=start, start__lt=settled.end))
        stretches = sorted({*known, *silences.filter(start__gte=settled.end)})
    newest = rollups.order_by("-start").values_list("last_at", flat=True).first()
    if newest is not None:
        stretches.append((newest, None))
    return _held_against_sessions(stretches, sessions, default, start, now)


def _gaps(provider: str, start: datetime, now: datetime) -> list[list[str | None]]:
    """Stretches without a successful snapshot longer than 2.5 poll intervals.

    The database returns only the candidate stretches, those longer than 2.5
    times the shortest interval in play; each is then held against the
    interval of the session that was polling when it began.
    """
    sessions, default, shortest = _sessions(provider, start, now)
    usable = Snapshot.objects.filter(provider=provider, usable=True)
    # The last successful snapshot before the range, so a gap running into the range shows.
    before = usable.filter(captured_at__lte=start).order_by("-captured_at").values("captured_at")[:1]
    in_order = [F("captured_at").asc(), F("id").asc()]
    stretches = (
        usable.filter(captured_at__gte=Coalesce(Subquery(before), Value(start)), captured_at__lte=now)
        .annotate(epoch=EpochSeconds("captured_at"))
        .annotate(
            following=Window(Lead("captured_at"), order_by=in_order),
            following_epoch=Window(Lead("epoch"), order_by=in_order),
        )
        # The newest snapshot's stretch runs to `now`: polling stopped or is failing.
        .annotate(length=Coalesce(F("following_epoch"), Value(now.timestamp())) - F("epoch"))
        .filter(length__gt=GAP_INTERVALS * shortest)
        .order_by("captured_at", "id")
        .values_list("captured_at", "following")
    )
    return _held_against_sessions(list(stretches), sessions, default, start, now)


def _sessions(
    provider: str, start: datetime, now: datetime
) -> tuple[list[tuple[datetime, datetime | None, int]], float, float]:
    """The poll sessions overlapping the range, the configured interval, and the shortest interval in play."""
    sessions = list(
        PollSession.objects.filter(provider=provider, started_at__lte=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start - timedelta(days=1)))
        .order_by("started_at")
        .values_list("started_at", "ended_at", "interval_seconds")
    )
    default = float(settings.SYNTRACK_POLL_INTERVAL)
    return sessions, default, min([default, *(interval for _, _, interval in sessions)])


def _held_against_sessions(
    stretches: list[tuple[datetime, datetime | None]],
    sessions: list[tuple[datetime, datetime | None, int]],
    default: float,
    start: datetime,
    now: datetime,
) -> list[list[str | None]]:
    """The candidate stretches (an open end runs to ``now``) longer than 2.5 intervals of the session polling then."""
    gaps: list[list[str | None]] = []
    for began, ended in stretches:
        ended = ended or now
        if (ended - began).total_seconds() > GAP_INTERVALS * _interval_at(began, sessions, default):
            gaps.append([isostring(max(began, start)), isostring(ended)])
    return gaps


def _interval_at(moment: datetime, sessions: list[tuple[datetime, datetime | None, int]], default: float) -> float:
    """The poll interval of the session running at ``moment``, else the configured one."""
    for started_at, ended_at, interval in reversed(sessions):
        if started_at <= moment and (ended_at is None or moment <= ended_at):
            return float(interval)
    return default


__all__ = ["RANGES", "History", "Series", "history"]
