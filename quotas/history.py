"""The chart's time series: every quota as % of its limit, downsampled in the database.

``history()`` answers ``GET /api/history`` (product.md §8, §10). Whatever the
range and however many snapshots it holds, each series has at most
``MAX_POINTS`` points: the range is cut into ``BUCKETS`` equal time buckets
and the database aggregates, per quota and bucket, the lowest percent, the highest
and the last reading (up to three points, in time order). Peaks and resets survive; the rows in between stay in the
database.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db import NotSupportedError
from django.db.models import F, FloatField, Func, Max, Min, Q, Subquery, Value, Window
from django.db.models.functions import Coalesce, Floor, Lead
from django.utils import timezone

from lib.timefmt import isostring
from quotas import rounding
from quotas.models import PollSession, QuotaReading, Snapshot
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
# Scale of the percent in the packed "percent and time" values of _series.
PACK = 2.0**30
# Two times this close (seconds) belong to the same reading: unpacking loses some precision.
SAME_READING = 0.01


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


def history(provider: str, range_key: str, now: datetime | None = None) -> History:
    """Every quota of ``provider`` as % of its limit over the range, with the gaps.

    Points are ``[time, percent, used]`` (``used`` null when the upstream only
    gave a percentage), oldest first; readings without a percent are left
    out. Gaps are ``[start, end]`` pairs: two successful snapshots further
    apart than 2.5 poll intervals, clipped to the range, and a trailing gap
    from the last snapshot to ``now`` when polling stopped. No point lies
    inside a gap; the chart breaks its lines there.

    Four queries: the per-bucket aggregates, the buckets' last readings, the
    poll sessions overlapping the range, the stretches between snapshots.
    """
    if provider not in ADAPTERS:
        raise ValueError(f"unknown provider {provider!r}")
    if range_key not in RANGES:
        raise ValueError(f"unknown range {range_key!r}; use one of {', '.join(RANGES)}")
    now = now or timezone.now()
    start = now - RANGES[range_key]
    width = RANGES[range_key].total_seconds() / BUCKETS
    return {
        "provider": provider,
        "range": range_key,
        "start": isostring(start),
        "end": isostring(now),
        "bucket_seconds": round(width, 3),
        "series": _series(provider, start, now, width),
        "gaps": _gaps(provider, start, now),
    }


def _series(provider: str, start: datetime, now: datetime, width: float) -> list[Series]:
    """Two queries: the per-bucket aggregates (one pass over the range), then the buckets' last readings.

    Aggregates cannot say *which* row held a bucket's extreme, so the time of
    the lowest and highest reading rides along in a packed value,
    ``percent × PACK + seconds into the bucket``: its minimum belongs to the
    earliest of the lowest readings, its maximum to the latest of the highest
    (percents closer than ``width / PACK``, about 1e-5 %, count as equal).
    ``used`` at those points is the bucket's lowest and highest ``used``,
    the same readings unless the limit changed inside the bucket.
    """
    epoch = EpochSeconds("captured_at")
    now_epoch = now.timestamp()
    # Buckets count back from `now`, so the newest bucket always ends at `now`.
    bucket = Floor((Value(now_epoch) - epoch) / Value(width))
    into_bucket = epoch - Value(now_epoch) + (F("bucket") + Value(1.0)) * Value(width)
    buckets = list(
        QuotaReading.objects.filter(
            provider=provider, captured_at__gt=start, captured_at__lte=now, percent__isnull=False
        )
        .annotate(bucket=bucket)
        .values("key", "bucket")
        .annotate(
            lowest=Min("percent"),
            highest=Max("percent"),
            lowest_mark=Min(F("percent") * Value(PACK) + into_bucket),
            highest_mark=Max(F("percent") * Value(PACK) + into_bucket),
            lowest_used=Min("used"),
            highest_used=Max("used"),
            last_at=Max("captured_at"),
        )
        .order_by()
    )
    if not buckets:
        return []
    last_rows = {
        (key, captured_at): (label, unit, percent, used)
        for key, captured_at, label, unit, percent, used in QuotaReading.objects.filter(
            provider=provider,
            key__in={row["key"] for row in buckets},
            captured_at__in={row["last_at"] for row in buckets},
            percent__isnull=False,
        ).values_list("key", "captured_at", "label", "unit", "percent", "used")
    }

    points: dict[str, list[tuple[datetime, float, float | None]]] = {}
    # The newest label and unit of each quota.
    labels: dict[str, tuple[datetime, str, str]] = {}
    for row in buckets:
        key, last_at = row["key"], row["last_at"]
        label, unit, last_percent, last_used = last_rows[(key, last_at)]
        if key not in labels or labels[key][0] < last_at:
            labels[key] = (last_at, label, unit)
        begins = now - timedelta(seconds=(int(row["bucket"]) + 1) * width)
        lowest_at = _unpack(begins, row["lowest_mark"], row["lowest"], width)
        highest_at = _unpack(begins, row["highest_mark"], row["highest"], width)
        chosen = {last_at: (last_at, last_percent, last_used)}
        # An extreme that is the last reading itself adds nothing.
        if not (row["lowest"] == last_percent and abs((last_at - lowest_at).total_seconds()) < SAME_READING):
            chosen.setdefault(lowest_at, (lowest_at, row["lowest"], row["lowest_used"]))
        if not (row["highest"] == last_percent and abs((last_at - highest_at).total_seconds()) < SAME_READING):
            chosen.setdefault(highest_at, (highest_at, row["highest"], row["highest_used"]))
        points.setdefault(key, []).extend(chosen.values())

    series: list[Series] = []
    for key in sorted(points):
        ordered = sorted(points[key], key=lambda point: point[0])
        series.append(
            {
                "key": key,
                "label": labels[key][1],
                "points": [
                    [isostring(at), rounding.percent(percent), rounding.reported(used, labels[key][2])]
                    for at, percent, used in ordered
                ],
            }
        )
    return series


def _unpack(begins: datetime, mark: float, percent: float, width: float) -> datetime:
    """The time packed into ``mark`` (see ``_series``), kept inside its bucket.

    Rounded to the millisecond: SQLite's julianday() carries the time to
    some tens of microseconds, and a reading at 08:05:00 must not show as 08:04:59.
    """
    seconds = min(max(mark - percent * PACK, 0.0), width)
    moment = begins + timedelta(seconds=seconds)
    return moment.replace(microsecond=0) + timedelta(milliseconds=round(moment.microsecond / 1000))


def _gaps(provider: str, start: datetime, now: datetime) -> list[list[str | None]]:
    """Stretches without a successful snapshot longer than 2.5 poll intervals.

    The database returns only the candidate stretches, those longer than 2.5
    times the shortest interval in play; each is then held against the
    interval of the session that was polling when it began.
    """
    sessions = list(
        PollSession.objects.filter(provider=provider, started_at__lte=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start - timedelta(days=1)))
        .order_by("started_at")
        .values_list("started_at", "ended_at", "interval_seconds")
    )
    default = float(settings.SYNTRACK_POLL_INTERVAL)
    shortest = min([default, *(interval for _, _, interval in sessions)])

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
