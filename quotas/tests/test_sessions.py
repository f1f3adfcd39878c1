"""Poll sessions (product.md §5) and the poll loop's backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from conftest import store_quotas
from quotas.models import PollSession
from quotas.polling import MAX_BACKOFF_FACTOR, next_delay, store
from quotas.providers import Fetched
from quotas.providers.base import PollFailure, Quota

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def subscription(used: float, limit: float = 1000) -> Quota:
    return Quota(key="subscription", label="Subscription", kind="reset", unit="requests", used=used, limit=limit)


def rolling(used: float) -> Quota:
    return Quota(key="rolling_5h", label="Requests (5h rolling)", kind="rolling", unit="requests", used=used, limit=500)


def poll(session: PollSession, at: datetime, *quotas: Quota) -> None:
    store_quotas(at, *quotas, session=session)


def new_session(started_at: datetime = T0, provider: str = "synthetic") -> PollSession:
    return PollSession.objects.create(provider=provider, interval_seconds=60, started_at=started_at)


@pytest.mark.django_db
def test_a_session_keeps_the_peak_and_consumption_of_each_quota() -> None:
    session = new_session()
    for i, used in enumerate([100, 130, 121, 150]):
        poll(session, T0 + i * MINUTE, subscription(used))

    session.refresh_from_db()
    # 100 is the baseline; +30, a dip of 0.9 % (no reset), +29
    assert session.quotas == {"subscription": {"peak_used": 150.0, "consumed": 59.0, "last_used": 150.0}}
    assert (session.polls_ok, session.polls_failed, session.last_success_at) == (4, 0, T0 + 3 * MINUTE)


@pytest.mark.django_db
def test_the_first_reading_of_a_session_is_only_its_baseline() -> None:
    earlier = new_session(T0 - 10 * MINUTE)
    poll(earlier, T0 - 9 * MINUTE, subscription(100))
    earlier.close(T0 - 8 * MINUTE)

    session = new_session()
    poll(session, T0, subscription(160))  # 60 used between the sessions: not this session's

    session.refresh_from_db()
    assert session.quotas == {"subscription": {"peak_used": 160.0, "consumed": 0.0, "last_used": 160.0}}


@pytest.mark.django_db
def test_a_reset_during_a_session_counts_the_new_usage() -> None:
    session = new_session()
    poll(session, T0, subscription(900))
    poll(session, T0 + MINUTE, subscription(950))
    poll(session, T0 + 2 * MINUTE, subscription(20))  # reset: 20 used in the new cycle
    poll(session, T0 + 3 * MINUTE, subscription(35))

    session.refresh_from_db()
    assert session.quotas["subscription"] == {"peak_used": 950.0, "consumed": 85.0, "last_used": 35.0}


@pytest.mark.django_db
def test_rolling_windows_count_the_positive_change() -> None:
    session = new_session()
    for i, used in enumerate([200, 260, 180, 190]):
        poll(session, T0 + i * MINUTE, rolling(used))

    session.refresh_from_db()
    assert session.quotas == {"rolling_5h": {"peak_used": 260.0, "consumed": 70.0, "last_used": 190.0}}


@pytest.mark.django_db
def test_each_quota_is_counted_on_its_own() -> None:
    session = new_session()
    poll(session, T0, subscription(10), rolling(50))
    poll(session, T0 + MINUTE, subscription(15), rolling(45))

    session.refresh_from_db()
    assert session.quotas == {
        "subscription": {"peak_used": 15.0, "consumed": 5.0, "last_used": 15.0},
        "rolling_5h": {"peak_used": 50.0, "consumed": 0.0, "last_used": 45.0},
    }


@pytest.mark.django_db
def test_failed_polls_do_not_touch_the_quota_statistics() -> None:
    session = new_session()
    poll(session, T0, subscription(10))
    with time_machine.travel(T0 + MINUTE, tick=False):
        store(Fetched("synthetic", None, PollFailure("network_error", "timed out"), None, None), session)

    session.refresh_from_db()
    assert (session.polls_ok, session.polls_failed, session.last_success_at) == (1, 1, T0)
    assert session.quotas == {"subscription": {"peak_used": 10.0, "consumed": 0.0, "last_used": 10.0}}


@pytest.mark.django_db
def test_close_orphans_closes_open_sessions_at_their_last_successful_poll() -> None:
    polled = new_session(T0)
    polled.last_success_at = T0 + 42 * MINUTE
    polled.save()
    never_polled = new_session(T0 + 5 * MINUTE, provider="zai")
    finished = new_session(T0 - 60 * MINUTE)
    finished.close(T0 - 30 * MINUTE)

    with time_machine.travel(T0 + 2 * 60 * MINUTE, tick=False):
        assert PollSession.close_orphans() == 2
        assert PollSession.close_orphans() == 0

    ended = dict(PollSession.objects.values_list("pk", "ended_at"))
    assert ended == {
        polled.pk: T0 + 42 * MINUTE,
        never_polled.pk: T0 + 5 * MINUTE,
        finished.pk: T0 - 30 * MINUTE,
    }
    assert not PollSession.objects.filter(ended_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_session_never_ends_before_it_started() -> None:
    session = new_session(T0)
    session.close(T0 - MINUTE)

    session.refresh_from_db()
    assert session.ended_at == T0
    assert session.active is False


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 60), (1, 60), (2, 120), (3, 240), (4, 480), (5, 480), (50, 480), (5000, 480)],
)
def test_next_delay_backs_off_by_doubling_up_to_eight_intervals(failures: int, expected: float) -> None:
    assert next_delay(60, failures) == expected


def test_the_backoff_cap_is_eight_intervals() -> None:
    assert MAX_BACKOFF_FACTOR == 8
    assert next_delay(3600, 10) == 8 * 3600


@pytest.mark.parametrize(
    ("failures", "retry_after", "expected"),
    [(1, 300, 300), (1, 30, 60), (3, 100, 240), (3, 1000, 1000), (0, 0, 60), (6, 3600, 3600)],
)
def test_a_longer_retry_after_wins(failures: int, retry_after: float, expected: float) -> None:
    assert next_delay(60, failures, retry_after) == expected
