"""How many polls a provider made in a range and how many succeeded (the insights' poll figures).

A month of a 60-s poller is some 43,000 attempts a provider, and counting
them walks that much index on every insights request (several ms a count,
more on PostgreSQL). Attempts are written once, at the time of their poll,
and deleted only past the retention horizon (quotas.retention, 31 days), so
the counts of hours that are over never change: each process remembers them
and counts only the range's two partial hours again. The memory is keyed by
the hours, so it moves on with the clock every hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q

from quotas.memo import Memo
from quotas.models import Outcome, PollAttempt
from quotas.rollups import bucket_start

HOUR = 3600
# An hour is over for counting once its last poll can have been recorded: well past the longest
# poll (lib.http's 20 s), so no attempt can still be on its way into it.
SETTLE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Tally:
    """Attempts in a range, and the successful ones among them."""

    total: int = 0
    ok: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.total + other.total, self.ok + other.ok)


def tally(provider: str, start: datetime, end: datetime) -> Tally:
    """The attempts of ``provider`` from ``start`` to ``end`` (both included)."""
    first_hour = bucket_start(start, HOUR)
    if first_hour < start:
        first_hour += timedelta(hours=1)
    last_hour = bucket_start(end - SETTLE, HOUR)
    if last_hour <= first_hour:
        return _counted(provider, start, end)
    return (
        _counted(provider, start, first_hour, end_included=False)
        + _SETTLED.get((provider, first_hour, last_hour), lambda: _settled(provider, first_hour, last_hour))
        + _counted(provider, last_hour, end)
    )


def _counted(provider: str, start: datetime, end: datetime, end_included: bool = True) -> Tally:
    before_end = {"at__lte": end} if end_included else {"at__lt": end}
    counts = PollAttempt.objects.filter(provider=provider, at__gte=start, **before_end).aggregate(
        total=Count("id"), ok=Count("id", filter=Q(outcome=Outcome.OK))
    )
    return Tally(counts["total"], counts["ok"])


def _settled(provider: str, start: datetime, end: datetime) -> Tally:
    attempts = PollAttempt.objects.filter(provider=provider, at__gte=start, at__lt=end)
    # Two counts, each from the index alone (provider, outcome, at), rather than one that reads every row.
    return Tally(attempts.count(), attempts.filter(outcome=Outcome.OK).count())


# Per process, the tallies of whole hours that are over, a few ranges' worth.
_SETTLED: Memo[Tally] = Memo(16)

__all__ = ["Tally", "tally"]
