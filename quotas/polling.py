"""Turning fetched payloads into rows, and deciding when to poll again."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from types import ModuleType

from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from quotas import cycles
from quotas.models import Outcome, PollAttempt, PollSession, QuotaReading, ResetCycle, Snapshot
from quotas.providers import ADAPTERS, Fetched
from quotas.providers.base import DRIFT, Parsed, PollFailure, Quota, parse_json_object

logger = logging.getLogger("syntrack.poll")

# Repeated failures wait up to this many intervals before the next try.
MAX_BACKOFF_FACTOR = 8
# Snapshots ``reparse`` reads (and raw bodies it holds in memory) at a time.
REPARSE_CHUNK = 500


def store(fetched: Fetched, session: PollSession | None = None) -> PollAttempt:
    """Write one poll's outcome in a single transaction and return its attempt.

    1. A parsed payload becomes a snapshot (raw body compressed), one reading
       per window, and updates of the reset cycles.
    2. A payload with nothing usable keeps its raw body in an unusable
       snapshot (for ``reparse``) and leaves the last good readings alone.
    3. Every fetch, good or bad, becomes a poll attempt; the session counts it.

    If the transaction fails, the session is left as it was, in memory too.
    """
    saved = _session_state(session)
    try:
        with transaction.atomic():
            return _store(fetched, session)
    except BaseException:
        _restore_session_state(session, saved)
        raise


def _store(fetched: Fetched, session: PollSession | None) -> PollAttempt:
    at = timezone.now()
    snapshot = None
    if fetched.parsed is not None:
        parsed = fetched.parsed
        snapshot = Snapshot(provider=fetched.provider, captured_at=at, raw=Snapshot.compress(fetched.body))
        apply_outcome(snapshot, parsed, None)
        snapshot.save()
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
    track_readings(readings, session)
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


def prune_raw_bodies(days: int) -> int:
    """Drop raw upstream bodies older than ``days`` (0 keeps them forever)."""
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    return Snapshot.objects.filter(captured_at__lt=cutoff, raw__isnull=False).update(raw=None)


@dataclass
class ReparseCounts:
    reparsed: int = 0  # snapshots re-read from their raw body
    kept: int = 0  # snapshots whose raw body was pruned: readings kept as they were
    unusable: int = 0  # reparsed snapshots that still yield no usable quota
    readings: int = 0
    cycles: int = 0

    def __iadd__(self, other: ReparseCounts) -> ReparseCounts:
        for name in ("reparsed", "kept", "unusable", "readings", "cycles"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


class ReparseError(Exception):
    """The parser failed unexpectedly on a stored body; nothing was changed."""


def reparse(provider: str, chunk_size: int = REPARSE_CHUNK) -> ReparseCounts:
    """Rebuild ``provider``'s readings and reset cycles from the stored raw bodies.

    One transaction: the provider's cycles are dropped, then its snapshots
    are walked in capture order. A snapshot with a raw body is parsed again
    (readings replaced; plan, drift and usable updated); one whose body was
    pruned keeps its readings. Either way the readings go through cycle
    tracking again, exactly as the poller feeds them. The caller holds the
    poller lock.
    """
    adapter = ADAPTERS[provider]
    counts = ReparseCounts()
    with transaction.atomic():
        QuotaReading.objects.filter(provider=provider, cycle__isnull=False).update(cycle=None)
        ResetCycle.objects.filter(provider=provider).delete()
        walk = (
            Snapshot.objects.filter(provider=provider)
            .order_by("captured_at", "id")
            .defer("raw")
            .annotate(has_raw=ExpressionWrapper(Q(raw__isnull=False), output_field=BooleanField()))
        )
        # Nothing else writes this provider's cycles meanwhile (the caller
        # holds the poller lock): the open ones can stay in memory.
        open_cycles = cycles.OpenCycles()
        for chunk in _batches(walk.iterator(chunk_size=chunk_size), chunk_size):
            _reparse_chunk(adapter, chunk, counts, open_cycles)
            open_cycles.flush()
        counts.cycles = ResetCycle.objects.filter(provider=provider).count()
    return counts


def _reparse_chunk(
    adapter: ModuleType, chunk: list[Snapshot], counts: ReparseCounts, open_cycles: cycles.OpenCycles
) -> None:
    """Reparse (or re-track) one chunk of snapshots, in order; readings are written per chunk."""
    with_body = [snapshot for snapshot in chunk if snapshot.has_raw]
    bodies = dict(Snapshot.objects.filter(pk__in=[s.pk for s in with_body]).values_list("pk", "raw"))
    kept: dict[int, list[QuotaReading]] = {}
    pruned_ids = [snapshot.pk for snapshot in chunk if not snapshot.has_raw]
    for reading in QuotaReading.objects.filter(snapshot_id__in=pruned_ids).order_by("snapshot_id", "id"):
        kept.setdefault(reading.snapshot_id, []).append(reading)
    QuotaReading.objects.filter(snapshot__in=with_body).delete()

    refed: list[QuotaReading] = []  # kept readings, with their new cycle
    rebuilt: list[QuotaReading] = []  # readings parsed again
    changed: list[Snapshot] = []
    for snapshot in chunk:
        if not snapshot.has_raw:
            readings = kept.get(snapshot.pk, [])
            track_readings(readings, open_cycles=open_cycles)
            refed.extend(readings)
            counts.kept += 1
            counts.readings += len(readings)
            continue
        parsed, failure = _parse_stored(adapter, snapshot, bodies.pop(snapshot.pk))
        before = [getattr(snapshot, name) for name in OUTCOME_FIELDS]
        apply_outcome(snapshot, parsed, failure)
        if [getattr(snapshot, name) for name in OUTCOME_FIELDS] != before:
            changed.append(snapshot)
        counts.reparsed += 1
        if parsed is not None:
            readings = build_readings(snapshot, parsed.quotas)
            track_readings(readings, open_cycles=open_cycles)
            rebuilt.extend(readings)
            counts.readings += len(readings)
        else:
            counts.unusable += 1
    Snapshot.objects.bulk_update(changed, OUTCOME_FIELDS)
    QuotaReading.objects.bulk_create(rebuilt)
    # A chunk spans few cycles: one UPDATE per cycle beats a row-by-row bulk_update.
    by_cycle: dict[int, list[int]] = {}
    for reading in refed:
        if reading.cycle_id is not None:
            by_cycle.setdefault(reading.cycle_id, []).append(reading.pk)
    for cycle_id, reading_ids in by_cycle.items():
        QuotaReading.objects.filter(pk__in=reading_ids).update(cycle_id=cycle_id)


def _parse_stored(
    adapter: ModuleType, snapshot: Snapshot, raw: bytes | memoryview
) -> tuple[Parsed | None, PollFailure | None]:
    try:
        body = Snapshot.decompress(raw)
        return adapter.parse(parse_json_object(body)), None
    except PollFailure as failure:
        return None, failure
    except Exception as e:
        raise ReparseError(
            f"{adapter.NAME}: cannot read the snapshot of {snapshot.captured_at:%Y-%m-%dT%H:%M:%SZ} "
            f"(id {snapshot.pk}): {type(e).__name__}: {e}"
        ) from e


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
