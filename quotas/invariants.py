"""What stored reset cycles must always satisfy, as a list of violations (empty: all hold).

Polled data and ``manage.py demo``'s alike (quotas/tests/test_demo_data.py),
and whatever a long run with injected faults leaves behind (tools/soak.py):

- at most one open cycle per quota, and none ending before it started;
- a quota's cycles do not overlap: each one ends before (or as) the next starts;
- a cycle's ``readings_count`` is the number of readings pointing to it;
- every reading of a cycle lies within the cycle's span.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

from django.db.models import Count

from quotas.models import QuotaReading, ResetCycle

# A broken database could list thousands; the first few say enough.
MAX_LISTED = 20


def cycle_violations() -> list[str]:
    found: list[str] = []
    open_cycles = ResetCycle.objects.filter(ended_at__isnull=True)
    for row in open_cycles.values("provider", "quota").annotate(n=Count("id")):
        if row["n"] > 1:
            found.append(f"{row['provider']}/{row['quota']}: {row['n']} open cycles")

    by_quota = defaultdict(list)
    spans = {}
    for cycle in ResetCycle.objects.order_by("started_at", "id").only("provider", "quota", "started_at", "ended_at"):
        by_quota[(cycle.provider, cycle.quota)].append(cycle)
        spans[cycle.pk] = (cycle.started_at, cycle.ended_at)
        if cycle.ended_at is not None and cycle.ended_at < cycle.started_at:
            found.append(f"cycle {cycle.pk} ({cycle.provider}/{cycle.quota}) ends before it starts")
    for (provider, quota), cycles in by_quota.items():
        for before, after in pairwise(cycles):
            if before.ended_at is None or before.ended_at > after.started_at:
                found.append(
                    f"{provider}/{quota}: cycle {before.pk} (to {before.ended_at}) overlaps cycle {after.pk}"
                    f" (from {after.started_at})"
                )

    counted = dict(QuotaReading.objects.filter(cycle__isnull=False).values_list("cycle").annotate(n=Count("id")))
    for pk, readings_count in ResetCycle.objects.values_list("pk", "readings_count"):
        if counted.get(pk, 0) != readings_count:
            found.append(f"cycle {pk}: readings_count {readings_count}, {counted.get(pk, 0)} readings point to it")

    outside = 0
    for cycle_id, at in QuotaReading.objects.filter(cycle__isnull=False).values_list("cycle", "captured_at").iterator():
        started, ended = spans[cycle_id]
        if at < started or (ended is not None and at > ended):
            outside += 1
            if outside <= MAX_LISTED:
                found.append(f"a reading at {at} lies outside its cycle {cycle_id} ({started} to {ended})")
    if outside > MAX_LISTED:
        found.append(f"… {outside} readings outside their cycle in all")
    return found[: MAX_LISTED + 1] if len(found) > MAX_LISTED + 1 else found
