"""A poll is dated by when the provider answered, not by when its write got through.

The poller fetches from ``tools.fake_upstream`` on 127.0.0.1 under a stopped
clock; the write is then held back 13 s (the clock moved on before the write,
as a write waiting on a lock would see it). Snapshot, readings, attempt and
session must all carry the fetch time.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.db import DataError
from django.utils import timezone

from quotas import polling
from quotas.management.commands.poll import Command
from quotas.models import Outcome, PollAttempt, PollSession, QuotaReading, Snapshot
from quotas.polling import Received, store
from quotas.providers import Fetched
from quotas.providers.base import PollFailure
from quotas.tests.helpers import providers_at_fake_upstream

pytestmark = pytest.mark.django_db

WRITE_DELAY = timedelta(seconds=13)


@pytest.fixture
def upstream(settings) -> Iterator[None]:
    with providers_at_fake_upstream(settings):
        yield


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    # Today, to the second: the fake upstream's reset times stay plausible.
    with time_machine.travel(timezone.now().replace(microsecond=0), tick=False) as traveller:
        yield traveller


def late_writer(clock: time_machine.Coordinates) -> tuple[Command, list]:
    """A poller whose every write starts WRITE_DELAY after its fetch ended; the write times it saw."""
    cmd = Command(stdout=io.StringIO(), stderr=io.StringIO())
    real_record = cmd.record
    writes = []

    def record(fetched: Fetched, session: PollSession | None) -> PollAttempt:
        clock.shift(WRITE_DELAY)
        writes.append(timezone.now())
        return real_record(fetched, session)

    cmd.record = record  # type: ignore[method-assign]
    return cmd, writes


def assert_dated(provider: str, when) -> None:
    snapshot = Snapshot.objects.get(provider=provider)
    assert snapshot.captured_at == when
    readings = QuotaReading.objects.filter(provider=provider)
    assert readings.exists()
    assert set(readings.values_list("captured_at", flat=True)) == {when}
    attempt = PollAttempt.objects.get(provider=provider)
    assert (attempt.outcome, attempt.at, attempt.snapshot_id) == (Outcome.OK, when, snapshot.pk)


def test_once_dates_each_poll_by_its_answer_not_its_write(upstream, clock) -> None:
    fetched_at = timezone.now()
    cmd, writes = late_writer(clock)

    cmd.run_once(["zai"])

    assert writes == [fetched_at + WRITE_DELAY]  # the clock really moved before the write
    assert_dated("zai", fetched_at)


def test_the_loop_dates_the_poll_and_the_session_by_the_answer(upstream, clock) -> None:
    fetched_at = timezone.now()
    cmd, writes = late_writer(clock)

    cmd.run_loop(["synthetic"], 60, max_polls=1)

    assert writes == [fetched_at + WRITE_DELAY]
    assert_dated("synthetic", fetched_at)
    session = PollSession.objects.get()
    assert session.last_success_at == fetched_at
    assert session.polls_ok == 1


def test_poll_once_dates_the_poll_by_the_answer(upstream, clock) -> None:
    fetched_at = timezone.now()
    cmd, _ = late_writer(clock)

    assert cmd.poll_once("zai") is True

    assert_dated("zai", fetched_at)


def test_a_payload_that_cannot_be_stored_is_recorded_at_the_answer_time(upstream, clock, monkeypatch) -> None:
    def add_readings(*args: object, **kwargs: object) -> list:
        raise DataError("value too long for type character varying(64)")

    monkeypatch.setattr(polling, "add_readings", add_readings)
    fetched_at = timezone.now()
    cmd, _ = late_writer(clock)

    assert cmd.poll_once("synthetic") is False

    attempt = PollAttempt.objects.get()
    assert (attempt.outcome, attempt.at) == (Outcome.INVALID_RESPONSE, fetched_at)
    assert not Snapshot.objects.exists()


def test_store_dates_an_unstamped_fetch_now_and_a_stamped_one_by_its_stamp(clock) -> None:
    failure = PollFailure(Outcome.NETWORK_ERROR, "connection failed: refused")
    stamped = Received.now(Fetched("zai", None, failure, None, None))
    clock.shift(WRITE_DELAY)

    assert store(stamped).at == stamped.received_at
    assert store(Fetched("zai", None, failure, None, None)).at == timezone.now()
    assert stamped.received_at == timezone.now() - WRITE_DELAY
