"""Turning fetched payloads into rows, and deciding when to poll again."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from quotas import cycles
from quotas.models import Outcome, PollAttempt, PollSession, QuotaReading, Snapshot
from quotas.providers import Fetched
from quotas.providers.base import DRIFT

logger = logging.getLogger("syntrack.poll")

# Repeated failures wait up to this many intervals before the next try.
MAX_BACKOFF_FACTOR = 8


def store(fetched: Fetched, session: PollSession | None = None) -> PollAttempt:
    """Write one poll's outcome in a single transaction and return its attempt.

    1. A parsed payload becomes a snapshot (raw body compressed), one reading
       per window, and updates of the reset cycles.
    2. A payload with nothing usable keeps its raw body in an unusable
       snapshot (for ``reparse``) and leaves the last good readings alone.
    3. Every fetch, good or bad, becomes a poll attempt; the session counts it.
    """
    with transaction.atomic():
        at = timezone.now()
        snapshot = None
        if fetched.parsed is not None:
            parsed = fetched.parsed
            snapshot = Snapshot.objects.create(
                provider=fetched.provider,
                captured_at=at,
                plan=parsed.plan or "",
                raw=Snapshot.compress(fetched.body),
                drift=bool(parsed.unknown),
                drift_notes=parsed.unknown,
            )
            readings = add_readings(snapshot, parsed.quotas, session)
            outcome, drift = Outcome.OK, bool(parsed.unknown)
            message = f"{len(readings)} quotas"
            if parsed.unknown:
                message += "; unknown: " + ", ".join(parsed.unknown)
        else:
            failure = fetched.failure
            assert failure is not None
            outcome, drift, message = failure.outcome, failure.outcome == DRIFT, failure.message
            if failure.outcome == DRIFT and fetched.body is not None:
                snapshot = Snapshot.objects.create(
                    provider=fetched.provider,
                    captured_at=at,
                    raw=Snapshot.compress(fetched.body),
                    drift=True,
                    drift_notes=[failure.message],
                    usable=False,
                )
        attempt = PollAttempt.objects.create(
            provider=fetched.provider,
            at=at,
            outcome=outcome,
            drift=drift,
            latency_ms=fetched.latency_ms,
            message=message[:500],
            session=session,
            snapshot=snapshot,
        )
        if session is not None:
            if outcome == Outcome.OK:
                session.polls_ok += 1
                session.last_success_at = at
            else:
                session.polls_failed += 1
            session.save()
    return attempt


def add_readings(snapshot: Snapshot, quotas: list, session: PollSession | None = None) -> list[QuotaReading]:
    """Store one reading per parsed quota, tracking cycles along the way."""
    readings = []
    for quota in quotas:
        reading = QuotaReading(
            snapshot=snapshot,
            provider=snapshot.provider,
            captured_at=snapshot.captured_at,
            key=quota.key,
            label=quota.label,
            kind=quota.kind,
            unit=quota.unit,
            used=quota.used,
            limit=quota.limit,
            remaining=quota.remaining,
            percent=quota.percent,
            resets_at=quota.resets_at,
            details=quota.details,
        )
        consumed = cycles.track(reading)
        if session is not None:
            session.record(reading, consumed)
        readings.append(reading)
    QuotaReading.objects.bulk_create(readings)
    return readings


def next_delay(interval: float, failures: int, retry_after: float | None = None) -> float:
    """Seconds until the next poll after ``failures`` failures in a row.

    One failure keeps the normal interval (a blip); each further one doubles
    the wait, up to ``MAX_BACKOFF_FACTOR`` intervals. A provider's
    Retry-After is honoured when it asks for longer.
    """
    factor = 1 if failures <= 1 else min(2 ** (failures - 1), MAX_BACKOFF_FACTOR)
    delay = interval * factor
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def prune_raw_bodies(days: int) -> int:
    """Drop raw upstream bodies older than ``days`` (0 keeps them forever)."""
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    return Snapshot.objects.filter(captured_at__lt=cutoff, raw__isnull=False).update(raw=None)
