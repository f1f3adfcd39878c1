"""Answers the database did not take yet: kept in order, written once it takes writes again.

When the database refuses a poll's write (SQLite locked past the poller's
short lock wait, a read-only or full disk, PostgreSQL gone or read-only), the
answer is no less true: it is held here, stamped with when it came, and the
poll loop retries the write with a growing pause. Answers fetched meanwhile
queue behind it, so every provider's readings reach cycle tracking in the
order they were fetched. When the writes get through, each provider whose
answers waited gets one ``storage_error`` poll attempt, dated when its
first write was refused, saying how long and why: the poll history shows the
outage, and no upstream is blamed for it.

Memory stays bounded: past MAX_HELD answers or MAX_HELD_BYTES of bodies the
oldest are dropped, and counted in that attempt's message.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from quotas.models import Outcome, PollAttempt, PollSession
from quotas.polling import Received

# The first retry waits this long; each refused retry doubles it, up to RETRY_MAX.
RETRY_FIRST = 1.0
RETRY_MAX = 30.0
# A day of 10-s polls of both providers would be 17,280: an hour's worth of
# the default interval is plenty to ride out a backup or a full disk being cleared.
MAX_HELD = 500
MAX_HELD_BYTES = 32 * 1024 * 1024


@dataclass
class Refused:
    """A provider's part of an outage: when its first write was refused, how many answers waited or were lost."""

    since: datetime
    held: int = 0
    lost: int = 0


@dataclass
class Backlog:
    """Fetched answers waiting for the database, oldest first, and when to try writing them again."""

    items: deque[Received] = field(default_factory=deque)
    held_bytes: int = 0
    reason: str = ""
    reasons: list[str] = field(default_factory=list)  # every distinct one of the outage, in order
    retry_at: float = 0.0
    pause: float = RETRY_FIRST
    started: float | None = None  # monotonic, the outage's first refusal
    refused: dict[str, Refused] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def hold(self, fetched: Received, reason: str, now: float) -> int:
        """Keep ``fetched`` (after any held before it); how many of the oldest had to go to make room."""
        if self.started is None:
            self.started, self.pause, self.retry_at = now, RETRY_FIRST, now + RETRY_FIRST
        self._note(reason)
        self.items.append(fetched)
        self.held_bytes += len(fetched.body or b"")
        part = self.refused.setdefault(fetched.provider, Refused(timezone.now()))
        part.held += 1
        dropped = 0
        while len(self.items) > MAX_HELD or (self.held_bytes > MAX_HELD_BYTES and len(self.items) > 1):
            oldest = self.items.popleft()
            self.held_bytes -= len(oldest.body or b"")
            self.refused[oldest.provider].lost += 1
            dropped += 1
        return dropped

    def next(self) -> Received:
        return self.items[0]

    def written(self) -> None:
        """The oldest answer got through."""
        oldest = self.items.popleft()
        self.held_bytes -= len(oldest.body or b"")

    def refused_again(self, reason: str, now: float) -> bool:
        """A retry failed too: wait longer. True when the reason changed (worth a line of its own)."""
        changed = reason != self.reason
        self._note(reason)
        self.pause = min(self.pause * 2, RETRY_MAX)
        self.retry_at = now + self.pause
        return changed

    def _note(self, reason: str) -> None:
        self.reason = reason
        if reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def outstanding(self) -> bool:
        """Answers wait, or the outage's own record does (written once they are)."""
        return bool(self.items) or self.started is not None

    def due(self, now: float) -> bool:
        """Time to try again."""
        return self.outstanding and now >= self.retry_at

    def outage_seconds(self, now: float) -> float:
        return 0.0 if self.started is None else now - self.started

    def settle(self, now: float, sessions: dict[str, PollSession]) -> list[PollAttempt]:
        """Once everything is written: one ``storage_error`` attempt per provider that waited; the outage ends."""
        seconds = self.outage_seconds(now)
        attempts = []
        for provider, part in self.refused.items():
            written = part.held - part.lost
            message = f"the database refused writes for {seconds:.0f} s ({'; then '.join(self.reasons)}): "
            message += f"{written} answer(s) kept and written late"
            if part.lost:
                message += f", {part.lost} lost (more than {MAX_HELD} waited)"
            attempts.append(
                PollAttempt.objects.create(
                    provider=provider,
                    at=part.since,
                    outcome=Outcome.STORAGE_ERROR,
                    message=message[:500],
                    session=sessions.get(provider),
                )
            )
        self.started, self.refused, self.reason, self.reasons, self.pause = None, {}, "", [], RETRY_FIRST
        return attempts
