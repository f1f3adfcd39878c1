"""quotas.pollnow and the poll loop's side of "poll now": requests, coalescing, hastening."""

from __future__ import annotations

import io
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError

from conftest import store_quotas
from quotas import pollnow
from quotas.locking import PollLock
from quotas.management.commands.poll import Command
from quotas.models import PollAttempt, PollRequest, PollSession
from quotas.providers import Fetched

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)
PROVIDERS = ["synthetic", "zai"]


def command() -> Command:
    return Command(stdout=io.StringIO(), stderr=io.StringIO())


# PollRequest


def test_a_request_is_pending_until_a_poll_lands_after_it() -> None:
    assert PollRequest.ask("zai", now=T0) == T0
    assert PollRequest.pending() == {"zai": T0}

    # A poll that landed before the request does not answer it.
    assert PollRequest.answered("zai", T0 - SECOND) == 0
    assert PollRequest.answered("synthetic", T0 + SECOND) == 0
    assert PollRequest.pending() == {"zai": T0}

    assert PollRequest.answered("zai", T0 + 2 * SECOND) == 1
    assert PollRequest.pending() == {}
    assert PollRequest.objects.get().handled_at == T0 + 2 * SECOND


def test_asking_again_while_pending_changes_nothing_and_after_the_answer_renews_the_row() -> None:
    PollRequest.ask("zai", now=T0)
    assert PollRequest.ask("zai", now=T0 + 3 * SECOND) == T0
    PollRequest.answered("zai", T0 + 4 * SECOND)

    assert PollRequest.ask("zai", now=T0 + 10 * SECOND) == T0 + 10 * SECOND
    row = PollRequest.objects.get()  # one row per provider, ever
    assert (row.requested_at, row.handled_at) == (T0 + 10 * SECOND, None)


# hasten: the loop's clock is plain numbers here, so time is fully controlled.


def test_hasten_moves_an_asked_provider_to_now() -> None:
    PollRequest.ask("zai", now=T0)
    due = {"synthetic": 1060.0, "zai": 1060.0}

    moved = pollnow.hasten(due, {"synthetic": 1005.0, "zai": 1005.0}, busy=set(), now=1020.0)

    assert moved == ["zai"]
    assert due == {"synthetic": 1060.0, "zai": 1020.0}


def test_hasten_keeps_the_minimum_gap_after_the_previous_poll() -> None:
    PollRequest.ask("zai", now=T0)
    due = {"zai": 1060.0}
    gap = pollnow.not_before(started=1000.0, retry_after=None)
    assert gap == 1000.0 + pollnow.ASKED_MIN_GAP

    assert pollnow.hasten(due, {"zai": gap}, busy=set(), now=1001.0) == ["zai"]
    assert due == {"zai": gap}
    # Looking again a second later moves nothing (and logs nothing).
    assert pollnow.hasten(due, {"zai": gap}, busy=set(), now=1002.0) == []
    assert due == {"zai": gap}


def test_hasten_skips_the_backoff_but_not_a_retry_after() -> None:
    PollRequest.ask("synthetic", now=T0)
    PollRequest.ask("zai", now=T0)
    # Both backed off to eight intervals; Z.ai's provider asked for 600 s.
    due = {"synthetic": 1480.0, "zai": 1600.0}
    not_before = {"synthetic": pollnow.not_before(1000.0, None), "zai": pollnow.not_before(1000.0, 600.0)}

    moved = pollnow.hasten(due, not_before, busy=set(), now=1030.0)

    assert moved == ["synthetic"]
    assert due == {"synthetic": 1030.0, "zai": 1600.0}


def test_hasten_leaves_alone_a_provider_in_flight_or_not_polled_or_due_sooner() -> None:
    for provider in PROVIDERS:
        PollRequest.ask(provider, now=T0)
    due = {"synthetic": 1000.0}  # this poller polls only Synthetic

    assert pollnow.hasten(due, {"synthetic": 900.0}, busy={"synthetic"}, now=1010.0) == []
    assert pollnow.hasten(due, {"synthetic": 900.0}, busy=set(), now=1010.0) == []  # already due
    assert due == {"synthetic": 1000.0}


def test_a_failing_look_is_logged_once_and_the_loop_goes_on(monkeypatch, caplog) -> None:
    def broken(*args: object) -> list[str]:
        raise OperationalError("database is locked")

    monkeypatch.setattr(pollnow, "hasten", broken)
    caplog.set_level(logging.WARNING, logger="syntrack.poll")

    failed = Command.answer_requests({}, {}, {}, 0.0, failed=False)
    assert failed is True
    assert Command.answer_requests({}, {}, {}, 1.0, failed=True) is True

    assert [r.getMessage() for r in caplog.records] == ["cannot read poll-now requests: database is locked"]


# The loop


def test_the_loop_polls_an_asked_provider_at_once_and_answers_the_request(both_ok, monkeypatch, caplog) -> None:
    monkeypatch.setattr(pollnow, "ASKED_MIN_GAP", 0.0)
    monkeypatch.setattr(pollnow, "CHECK_EVERY", 0.05)
    caplog.set_level(logging.INFO, logger="syntrack.poll")
    cmd = command()
    real_record = cmd.record
    asked: list[datetime] = []

    def record(fetched: Fetched, session: PollSession | None) -> PollAttempt:
        attempt = real_record(fetched, session)
        if PollAttempt.objects.count() == 2:  # both first polls landed: ask for Z.ai
            asked.append(PollRequest.ask("zai"))
        return attempt

    cmd.record = record  # type: ignore[method-assign]
    # Without the request, the next poll is an hour away: fail instead of hanging.
    guard = threading.Timer(10, lambda: setattr(cmd, "shutdown", True))
    guard.start()
    try:
        cmd.run_loop(PROVIDERS, 3600, max_polls=3)
    finally:
        guard.cancel()

    assert not cmd.shutdown, "the asked poll never came"
    zai = list(PollAttempt.objects.filter(provider="zai").order_by("at"))
    assert len(zai) == 2
    assert zai[1].at >= asked[0]
    assert PollAttempt.objects.filter(provider="synthetic").count() == 1
    request = PollRequest.objects.get()
    assert request.handled_at == zai[1].at
    assert "Z.ai: polling, as asked" in caplog.messages


def test_poll_once_answers_a_pending_request(both_ok) -> None:
    store_quotas(T0, provider="zai")  # an older poll does not answer it
    PollRequest.ask("zai", now=T0 + SECOND)

    command().run_once(PROVIDERS)

    assert PollRequest.pending() == {}
    assert PollRequest.objects.get().handled_at == PollAttempt.objects.filter(provider="zai").latest("at").at


def test_poller_state_reads_the_lock_and_the_sessions(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 60
    PollSession.objects.create(provider="zai", interval_seconds=300)

    idle = pollnow.poller_state()
    assert (idle.running, idle.polls("zai"), idle.interval("zai")) == (False, False, 60)

    with PollLock("manage.py poll", wait=0):
        state = pollnow.poller_state()
    assert state.running
    assert "manage.py poll" in state.holder
    assert (state.polls("zai"), state.polls("synthetic")) == (True, False)
    assert (state.interval("zai"), state.interval("synthetic")) == (300, 60)

    # `--once` opens no session: it polls every configured provider.
    PollSession.objects.all().delete()
    settings.ZAI_API_KEY = "zai-key-0123456789"
    with PollLock("manage.py poll", wait=0):
        once = pollnow.poller_state()
    assert (once.polls("zai"), once.polls("synthetic")) == (True, False)
