"""quotas.attempts: poll counts over a range, the hours that are over remembered per process."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from quotas import attempts
from quotas.attempts import Tally, tally
from quotas.models import Outcome, PollAttempt

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def add_attempts(start: datetime, count: int, step: timedelta, provider: str = "synthetic") -> None:
    chance = random.Random(7)
    PollAttempt.objects.bulk_create(
        PollAttempt(
            provider=provider,
            at=start + i * step,
            outcome=Outcome.OK if chance.random() < 0.9 else Outcome.SERVER_ERROR,
        )
        for i in range(count)
    )


def counted(provider: str, start: datetime, end: datetime) -> Tally:
    rows = PollAttempt.objects.filter(provider=provider, at__gte=start, at__lte=end)
    return Tally(rows.count(), rows.filter(outcome=Outcome.OK).count())


def test_it_counts_every_attempt_in_the_range_both_ends_included() -> None:
    add_attempts(T0 - timedelta(days=2), 2 * 24 * 60 + 10, timedelta(minutes=1))
    add_attempts(T0 - timedelta(days=1), 50, timedelta(minutes=7), provider="zai")

    for start, end in [
        (T0 - timedelta(days=1), T0),
        (T0 - timedelta(hours=30, minutes=17, seconds=3), T0 + timedelta(minutes=9, seconds=30)),
        (T0 - timedelta(minutes=40), T0 + timedelta(minutes=5)),  # no whole hour over
        (T0 - timedelta(hours=5), T0 - timedelta(hours=1)),  # on the hours
    ]:
        assert tally("synthetic", start, end) == counted("synthetic", start, end)
    assert tally("zai", T0 - timedelta(days=3), T0) == Tally(50, counted("zai", T0 - timedelta(days=3), T0).ok)


def test_the_hours_that_are_over_are_counted_once(django_assert_num_queries) -> None:
    add_attempts(T0 - timedelta(days=1), 24 * 60, timedelta(minutes=1))
    start, end = T0 - timedelta(hours=20, minutes=30), T0 - timedelta(minutes=1)
    first = tally("synthetic", start, end)

    # the partial first hour, the partial last hours; the whole hours between come from memory
    with django_assert_num_queries(2):
        assert tally("synthetic", start, end) == first
    # a poll lands: it is in the part counted afresh
    add_attempts(T0 - timedelta(seconds=30), 1, timedelta(minutes=1))
    with django_assert_num_queries(2):
        now = tally("synthetic", start, T0)
    assert now == counted("synthetic", start, T0) == Tally(first.total + 1, first.ok + 1)


def test_the_memory_moves_on_with_the_hours() -> None:
    add_attempts(T0 - timedelta(days=1), 24 * 60, timedelta(minutes=1))
    for minutes in range(0, 4 * 60, 25):
        end = T0 - timedelta(hours=4) + timedelta(minutes=minutes)
        start = end - timedelta(hours=12)
        assert tally("synthetic", start, end) == counted("synthetic", start, end)
    assert 1 < len(attempts._SETTLED.entries) <= attempts._SETTLED.size
