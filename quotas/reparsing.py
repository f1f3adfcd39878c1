"""``reparse``: rebuild readings, reset cycles and roll-ups from the stored raw bodies.

A parser fix then recovers history instead of losing it (product.md §4).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from types import ModuleType

from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q

from quotas import cycles, rollups
from quotas.models import QuotaReading, ResetCycle, Snapshot
from quotas.polling import OUTCOME_FIELDS, apply_outcome, build_readings, track_readings
from quotas.providers import ADAPTERS
from quotas.providers.base import Parsed, PollFailure, parse_json_object

HOUR = timedelta(hours=1)
# Snapshots read (and raw bodies held in memory) at a time.
REPARSE_CHUNK = 500


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
    tracking again, exactly as the poller feeds them; then the roll-ups are
    rebuilt from the readings (quotas.rollups). The caller holds the
    poller lock.

    Cycles that ended before the oldest snapshot left are kept as they are:
    retention (quotas.retention) removed what they were built from, and
    cycles are kept forever. A cycle running across that point is rebuilt from
    the snapshots left, so it starts there.
    """
    adapter = ADAPTERS[provider]
    counts = ReparseCounts()
    with transaction.atomic():
        QuotaReading.objects.filter(provider=provider, cycle__isnull=False).update(cycle=None)
        _rebuilt_cycles(provider).delete()
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
        rollups.rebuild(provider, since=rollups.rebuilt_from(provider))
    return counts


def _rebuilt_cycles(provider: str):
    cycles_ = ResetCycle.objects.filter(provider=provider)
    first = (
        Snapshot.objects.filter(provider=provider).order_by("captured_at").values_list("captured_at", flat=True).first()
    )
    return cycles_ if first is None else cycles_.exclude(ended_at__lte=first)


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
