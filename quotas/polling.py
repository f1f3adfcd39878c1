"""Turning fetched payloads into rows, and deciding when to poll again (old rows go in quotas.retention)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, fields
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from quotas import cycles, rollups
from quotas.models import Outcome, PollAttempt, PollSession, QuotaReading, Snapshot
from quotas.providers import Fetched
from quotas.providers.base import DRIFT, Parsed, PollFailure, Quota

logger = logging.getLogger("syntrack.poll")

# Repeated failures wait up to this many intervals before the next try.
MAX_BACKOFF_FACTOR = 8


@dataclass
class Received(Fetched):
    """A fetch result stamped with the moment its answer came."""

    received_at: datetime | None = None

    @classmethod
    def now(cls, fetched: Fetched) -> Received:
        """``fetched``, stamped now: call it as the fetch returns."""
        return cls(**{f.name: getattr(fetched, f.name) for f in fields(Fetched)}, received_at=timezone.now())


def received_at(fetched: Fetched) -> datetime | None:
    return fetched.received_at if isinstance(fetched, Received) else None


def store(fetched: Fetched, session: PollSession | None = None) -> PollAttempt:
    """Write one poll's outcome in a single transaction and return its attempt.

    Everything written (snapshot, readings, attempt, the session's last
    success) is stamped with when the answer came, for a ``Received`` fetch,
    else now: the write may wait (a lock, a slow disk), the figures do not.

    1. A parsed payload becomes a snapshot (raw body compressed), one reading
       per window, and updates of the reset cycles and the roll-ups.
    2. A payload with nothing usable keeps its raw body in an unusable
       snapshot (for ``reparse``) and leaves the last good readings alone.
    3. Every fetch, good or bad, becomes a poll attempt; the session counts it.

    If the transaction fails, the session is left as it was, in memory too.
    """
    saved = _session_state(session)
    try:
        with transaction.atomic():
            return _store(fetched, session, received_at(fetched) or timezone.now())
    except BaseException:
        _restore_session_state(session, saved)
        raise


def _store(fetched: Fetched, session: PollSession | None, at: datetime) -> PollAttempt:
    snapshot = None
    if fetched.parsed is not None:
        parsed = fetched.parsed
        snapshot = Snapshot(provider=fetched.provider, captured_at=at, raw=Snapshot.compress(fetched.body))
        apply_outcome(snapshot, parsed, None)
        snapshot.save()
        readings = add_readings(snapshot, parsed.quotas, session)
        rollups.record(snapshot, readings)
        outcome, drift, message = ok_outcome(parsed, readings)
    else:
        failure = fetched.failure
        assert failure is not None
        outcome, drift, message = failure.outcome, failure.outcome == DRIFT, failure.message
        if failure.outcome == DRIFT and fetched.body is not None:
            snapshot = Snapshot(provider=fetched.provider, captured_at=at, raw=Snapshot.compress(fetched.body))
            apply_outcome(snapshot, None, failure)
            snapshot.save()
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


def ok_outcome(parsed: Parsed, readings: list[QuotaReading]) -> tuple[str, bool, str]:
    """The attempt's outcome, drift flag and message for a payload that parsed."""
    message = f"{len(readings)} quotas"
    if parsed.unknown:
        message += "; unknown: " + ", ".join(parsed.unknown)
    return Outcome.OK, bool(parsed.unknown), message


# What apply_outcome sets on a snapshot.
OUTCOME_FIELDS = ["plan", "drift", "drift_notes", "usable"]


def apply_outcome(snapshot: Snapshot, parsed: Parsed | None, failure: PollFailure | None) -> None:
    """Set what a parse of the snapshot's body said: plan, drift flags, usable.

    A parse that failed leaves an unusable snapshot (no readings), flagged
    as drift with the failure's message.
    """
    if parsed is not None:
        snapshot.plan = parsed.plan or ""
        snapshot.drift = bool(parsed.unknown)
        snapshot.drift_notes = list(parsed.unknown)
        snapshot.usable = True
    else:
        assert failure is not None
        snapshot.plan = ""
        snapshot.drift = True
        snapshot.drift_notes = [failure.message]
        snapshot.usable = False


def build_readings(snapshot: Snapshot, quotas: list[Quota]) -> list[QuotaReading]:
    """One unsaved reading per parsed quota of ``snapshot``."""
    return [
        QuotaReading(
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
        for quota in quotas
    ]


def track_readings(
    readings: list[QuotaReading], session: PollSession | None = None, open_cycles: cycles.OpenCycles | None = None
) -> None:
    """Feed readings, in order, to cycle tracking (sets their cycle) and the session.

    ``open_cycles``: see cycles.OpenCycles (reparse keeps the open cycles in memory).
    """
    for reading in readings:
        consumed = cycles.track(reading, open_cycles)
        if session is not None:
            session.record(reading, consumed)


def add_readings(snapshot: Snapshot, quotas: list[Quota], session: PollSession | None = None) -> list[QuotaReading]:
    """Store one reading per parsed quota, tracking cycles along the way."""
    readings = build_readings(snapshot, quotas)
    # The provider's open cycles in one query, the folded ones written in one statement.
    open_cycles = cycles.OpenCycles.of(snapshot.provider)
    track_readings(readings, session, open_cycles)
    open_cycles.flush()
    QuotaReading.objects.bulk_create(readings)
    return readings


def _session_state(session: PollSession | None) -> dict | None:
    if session is None:
        return None
    return {
        "polls_ok": session.polls_ok,
        "polls_failed": session.polls_failed,
        "last_success_at": session.last_success_at,
        "quotas": copy.deepcopy(session.quotas),
    }


def _restore_session_state(session: PollSession | None, saved: dict | None) -> None:
    if session is not None and saved is not None:
        for name, value in saved.items():
            setattr(session, name, value)


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
