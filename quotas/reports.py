"""The tables of the JSON API: cycles, summary, sessions, polls, providers (product.md §8).

Each function returns the JSON body for one provider (or all) and runs a fixed
number of queries, whatever the number of rows. Times are ISO-8601 UTC
strings, numbers are rounded by kind (quotas.rounding), and empty lists are ``[]``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypedDict

from django.db import connection
from django.db.models import Avg, Count, F, Max, Min, Q, Sum
from django.utils import timezone

from lib.timefmt import isostring
from quotas import pollnow, rounding
from quotas.models import (
    Outcome,
    PollAttempt,
    PollRequest,
    PollSession,
    QuotaReading,
    QuotaRollup,
    ResetCycle,
    Resolution,
)
from quotas.providers import ADAPTERS, NAMES, configured
from quotas.providers.base import MAX_AMOUNT

# A cycle's figures within what the adapters accept (providers.base); NaN fails both bounds.
_SANE_CYCLE = Q(consumed__gte=0, consumed__lte=MAX_AMOUNT, peak_used__gte=0, peak_used__lte=MAX_AMOUNT)
# The smallest limit a peak is divided by: 1e15 / 1e-3 × 100 still fits a float.
MIN_LIMIT = 1e-3

# The `limit` parameters of the API accept 1–500.
MAX_LIMIT = 500

# How long the dashboard keeps warning that SynTrack's own database refused writes.
STORAGE_ERROR_SHOWN = timedelta(hours=24)


class CycleDict(TypedDict):
    id: int
    quota: str
    unit: str
    started_at: str | None
    ended_at: str | None
    active: bool
    duration_seconds: int | None
    limit: float | None
    peak_used: float
    consumed: float
    rate_per_hour: float | None
    resets_at: str | None


class QuotaSummary(TypedDict):
    key: str
    label: str
    kind: str
    unit: str
    completed_cycles: int
    avg_consumed_per_cycle: float | None
    max_consumed_per_cycle: float | None
    avg_peak_percent: float | None
    total_consumed: float | None
    tracking_since: str | None


def _check_provider(provider: str | None, allow_all: bool = False) -> None:
    if provider is None and allow_all:
        return
    if provider not in ADAPTERS:
        raise ValueError(f"unknown provider {provider!r}")


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")


def _seconds(started_at: datetime, ended_at: datetime | None, now: datetime) -> float:
    """How long something ran: to its end, or until now while it runs (never negative)."""
    return max(((ended_at or now) - started_at).total_seconds(), 0.0)


def quota_keys(providers: list[str]) -> set[str]:
    """Every quota key the providers have reported: in readings, or in cycles (kept longer).

    One query per provider (an index walk over the keys, never a scan of the readings).
    """
    keys: set[str] = set()
    for provider in providers:
        keys.update(ends.key for ends in reading_ends(provider))
        keys.update(ResetCycle.objects.filter(provider=provider).values_list("quota", flat=True).distinct())
    return keys


def quota_known(providers: list[str], quota: str) -> bool:
    """Whether any of the providers has reported ``quota``: an index seek (two for a key only cycles hold)."""
    return (
        QuotaReading.objects.filter(provider__in=providers, key=quota).exists()
        or ResetCycle.objects.filter(provider__in=providers, quota=quota).exists()
    )


class ReadingEnds(NamedTuple):
    """A quota's oldest and newest reading (their ids)."""

    key: str
    first_id: int
    newest_id: int


# Walks the (provider, key, captured_at) index from key to key, the way a
# "loose index scan" does: one seek per distinct key and two per key for its
# ends, so the cost depends on the number of quotas, never on the readings.
# (SELECT DISTINCT key or GROUP BY key would read every reading of a year.)
READING_ENDS_SQL = """
WITH RECURSIVE keys(key) AS (
    SELECT MIN(key) FROM {table} WHERE provider = %s
    UNION ALL
    SELECT (SELECT MIN(r.key) FROM {table} r WHERE r.provider = %s AND r.key > keys.key)
    FROM keys WHERE keys.key IS NOT NULL
)
SELECT
    keys.key,
    (SELECT r.id FROM {table} r WHERE r.provider = %s AND r.key = keys.key
     ORDER BY r.captured_at, r.id LIMIT 1),
    (SELECT r.id FROM {table} r WHERE r.provider = %s AND r.key = keys.key
     ORDER BY r.captured_at DESC, r.id DESC LIMIT 1)
FROM keys
WHERE keys.key IS NOT NULL
ORDER BY keys.key
"""


def reading_ends(provider: str) -> list[ReadingEnds]:
    """Every key ``provider`` has readings of, with its oldest and newest reading, by key. One query."""
    with connection.cursor() as cursor:
        cursor.execute(READING_ENDS_SQL.format(table=QuotaReading._meta.db_table), [provider] * 4)
        return [ReadingEnds(*row) for row in cursor.fetchall()]


def cycles(provider: str, quota: str | None = None, limit: int = 50, now: datetime | None = None) -> dict[str, Any]:
    """Reset cycles of ``provider`` (of one quota, or of all), newest first.

    ``duration_seconds`` and ``rate_per_hour`` of an active cycle run until
    ``now``; the rate is null for a cycle that lasted no time. One query.
    """
    _check_provider(provider)
    _check_limit(limit)
    now = now or timezone.now()
    rows = ResetCycle.objects.filter(provider=provider)
    if quota is not None:
        rows = rows.filter(quota=quota)
    answer: list[CycleDict] = []
    for cycle in rows.order_by("-started_at", "-id")[:limit]:
        duration = _seconds(cycle.started_at, cycle.ended_at, now)
        answer.append(
            {
                "id": cycle.id,
                "quota": cycle.quota,
                "unit": cycle.unit,
                "started_at": isostring(cycle.started_at),
                "ended_at": isostring(cycle.ended_at),
                "active": cycle.active,
                "duration_seconds": rounding.seconds(duration),
                "limit": rounding.reported(cycle.limit, cycle.unit),
                "peak_used": rounding.reported(cycle.peak_used, cycle.unit),
                "consumed": rounding.derived(cycle.consumed),
                "rate_per_hour": rounding.derived(cycle.consumed / (duration / 3600)) if duration > 0 else None,
                "resets_at": isostring(cycle.resets_at),
            }
        )
    return {"provider": provider, "cycles": answer}


def summary(provider: str) -> dict[str, Any]:
    """Every quota ``provider`` has ever reported, with its cycle statistics.

    Cycle figures come from completed cycles (null without any, and always for
    rolling windows); ``total_consumed`` also counts the running cycle.
    ``tracking_since`` is the oldest reading, roll-up or cycle start of the quota.
    Label, kind and unit are the newest reading's. Three queries and one
    index seek per quota: the quotas with their first and last reading, the
    newest readings, the cycle aggregates, each quota's first roll-up.
    """
    _check_provider(provider)
    ends = reading_ends(provider)
    if not ends:
        return {"provider": provider, "quotas": []}
    readings = QuotaReading.objects.only("captured_at", "label", "kind", "unit").in_bulk(
        [end.first_id for end in ends] + [end.newest_id for end in ends]
    )
    # Cycles an older build filled from impossible readings (1e308, negatives, ∞, NaN: issue 10)
    # stay out of the figures: summed, they overflow PostgreSQL (an error) and SQLite (∞).
    completed = Q(ended_at__isnull=False) & _SANE_CYCLE
    stats = {
        row["quota"]: row
        for row in ResetCycle.objects.filter(provider=provider)
        .values("quota")
        .annotate(
            completed_cycles=Count("id", filter=completed),
            avg_consumed=Avg("consumed", filter=completed),
            max_consumed=Max("consumed", filter=completed),
            avg_peak_percent=Avg(
                F("peak_used") * 100.0 / F("limit"), filter=completed & Q(limit__gte=MIN_LIMIT, limit__lte=MAX_AMOUNT)
            ),
            total_consumed=Sum("consumed", filter=_SANE_CYCLE),
            first_started=Min("started_at"),
        )
        .order_by()
    }
    quotas: list[QuotaSummary] = []
    for end in ends:
        key = end.key
        latest = readings[end.newest_id]
        cycle = stats.get(key)
        since = readings[end.first_id].captured_at
        if cycle is not None and cycle["first_started"] is not None:
            since = min(since, cycle["first_started"])
        # Rolling windows have no cycles: past the readings' retention, their first roll-up says it.
        rolled = (
            QuotaRollup.objects.filter(provider=provider, key=key, resolution=Resolution.HOUR)
            .order_by("start")
            .values_list("first_at", flat=True)
            .first()
        )
        since = min(since, rolled) if rolled is not None else since
        quotas.append(
            {
                "key": key,
                "label": latest.label,
                "kind": latest.kind,
                "unit": latest.unit,
                "completed_cycles": cycle["completed_cycles"] if cycle else 0,
                "avg_consumed_per_cycle": rounding.derived(cycle["avg_consumed"]) if cycle else None,
                "max_consumed_per_cycle": rounding.derived(cycle["max_consumed"]) if cycle else None,
                "avg_peak_percent": rounding.percent(cycle["avg_peak_percent"]) if cycle else None,
                "total_consumed": rounding.derived(cycle["total_consumed"]) if cycle else None,
                "tracking_since": isostring(since),
            }
        )
    return {"provider": provider, "quotas": quotas}


def sessions(provider: str | None = None, limit: int = 50, now: datetime | None = None) -> dict[str, Any]:
    """Poll sessions, newest first, of one provider or (``None``) of all. One query.

    ``duration_seconds`` of a running session runs until ``now``.
    """
    _check_provider(provider, allow_all=True)
    _check_limit(limit)
    now = now or timezone.now()
    rows = PollSession.objects.all()
    if provider is not None:
        rows = rows.filter(provider=provider)
    answer = []
    for session in rows.order_by("-started_at", "-id")[:limit]:
        answer.append(
            {
                "id": session.id,
                "provider": session.provider,
                "started_at": isostring(session.started_at),
                "ended_at": isostring(session.ended_at),
                "active": session.active,
                "duration_seconds": rounding.seconds(_seconds(session.started_at, session.ended_at, now)),
                "interval_seconds": session.interval_seconds,
                "polls_ok": session.polls_ok,
                "polls_failed": session.polls_failed,
                # `last_used` is the poller's bookkeeping, not part of the answer.
                "quotas": {
                    key: {"peak_used": stats.get("peak_used"), "consumed": rounding.derived(stats.get("consumed"))}
                    for key, stats in (session.quotas or {}).items()
                },
            }
        )
    return {"sessions": answer}


def polls(provider: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Recent poll attempts, newest first, of one provider or (``None``) of all. One query."""
    _check_provider(provider, allow_all=True)
    _check_limit(limit)
    rows = PollAttempt.objects.all()
    if provider is not None:
        rows = rows.filter(provider=provider)
    return {
        "polls": [
            {
                "id": attempt["id"],
                "provider": attempt["provider"],
                "at": isostring(attempt["at"]),
                "outcome": attempt["outcome"],
                "drift": attempt["drift"],
                "latency_ms": attempt["latency_ms"],
                "message": attempt["message"],
            }
            for attempt in rows.order_by("-at", "-id").values(
                "id", "provider", "at", "outcome", "drift", "latency_ms", "message"
            )[:limit]
        ]
    }


def providers(now: datetime | None = None) -> dict[str, Any]:
    """Every known provider: configured or not, its latest and latest successful poll, freshness.

    ``stale``: no successful poll within two poll intervals (``interval_seconds``:
    the running poller's, else SYNTRACK_POLL_INTERVAL). ``poller_running``: a
    running poller polls this provider. ``poll_requested_at``: a "poll now"
    request still waiting for its poll, else null.

    ``last_storage_error``: the latest ``storage_error`` of the last
    ``STORAGE_ERROR_SHOWN`` ({"at", "message"}), else null. It is dated when the
    database first refused a write, before the answers then written late, so it
    is rarely the latest attempt: without this the dashboard's warning would be
    gone by the time anyone looked.

    Three queries per known provider (its latest attempt, its latest successful
    one, its latest storage error), one for the open sessions, one for pending
    requests; on PostgreSQL one more to see the poll lock.
    """
    now = now or timezone.now()
    keyed = set(configured())
    poller = pollnow.poller_state()
    requested = PollRequest.pending()
    answer = []
    for provider in ADAPTERS:
        attempts = PollAttempt.objects.filter(provider=provider).order_by("-at", "-id")
        latest = attempts.values("at", "outcome").first()
        success = attempts.filter(outcome=Outcome.OK).values_list("at", flat=True).first()
        interval = poller.interval(provider)
        answer.append(
            {
                "id": provider,
                "name": NAMES[provider],
                "configured": provider in keyed,
                "last_poll_at": isostring(latest["at"]) if latest else None,
                "last_status": latest["outcome"] if latest else None,
                "last_success_at": isostring(success),
                "interval_seconds": interval,
                "stale": success is None or (now - success).total_seconds() > 2 * interval,
                "poller_running": poller.polls(provider),
                "poll_requested_at": isostring(requested.get(provider)),
                "last_storage_error": last_storage_error(provider, now),
            }
        )
    return {"providers": answer}


def last_storage_error(provider: str, now: datetime) -> dict[str, str] | None:
    """The latest ``storage_error`` of ``provider`` in the last ``STORAGE_ERROR_SHOWN``: {"at", "message"}."""
    refused = PollAttempt.objects.filter(
        provider=provider, outcome=Outcome.STORAGE_ERROR, at__gte=now - STORAGE_ERROR_SHOWN
    )
    found = refused.order_by("-at", "-id").values("at", "message").first()
    return {"at": isostring(found["at"]), "message": found["message"]} if found else None


__all__ = [
    "MAX_LIMIT",
    "cycles",
    "last_storage_error",
    "polls",
    "providers",
    "quota_keys",
    "quota_known",
    "reading_ends",
    "sessions",
    "summary",
]
