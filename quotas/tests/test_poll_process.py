"""``manage.py poll`` as a real process: signals, the single-poller lock, crashes.

Each test starts the poller against ``tools.fake_upstream`` (in a thread of the
test process) and the database this test process uses, and kills whatever it
started when it ends, pass or fail.
"""

from __future__ import annotations

import signal
import time

import pytest
from django.test import Client, override_settings

from accounts.models import User
from quotas import pollnow
from quotas.locking import PollLock
from quotas.models import PollAttempt, PollRequest, PollSession
from quotas.tests.helpers import (
    SYNTHETIC_KEY,
    ZAI_KEY,
    Process,
    fake_upstream,
    manage,
    poller_env,
    processes,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

READY = "polling Synthetic, Z.ai every 10 s"


@pytest.fixture(autouse=True)
def no_default_password() -> None:
    """No accounts.W001 in the pollers' stderr: it holds only their own lines here.

    The test settings' admin has "changeme", and the post-migrate step
    brings it back after every flush of a transactional test.
    """
    for user in User.objects.filter(password_is_default=True):
        user.set_password("a-real-passw0rd")
        user.save()


def start_loop(start, upstream, *extra: str) -> Process:
    poller = start(manage("poll", "--interval", "10", *extra), poller_env(upstream))
    poller.wait_for_line(READY, stream="stdout")
    return poller


def stop(poller: Process, signum: int) -> tuple[int, float]:
    """Send ``signum``; return the exit code and how long the poller took to exit."""
    started = time.monotonic()
    poller.send(signum)
    code = poller.wait(timeout=10)
    return code, time.monotonic() - started


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_sleep_stops_it_within_2_seconds_and_closes_the_sessions(signum: int) -> None:
    with fake_upstream() as upstream, processes() as start:
        poller = start_loop(start, upstream)
        wait_until(lambda: PollAttempt.objects.count() == 2, 10, "both providers polled")

        code, took = stop(poller, signum)

        assert code == 0, poller.output
        assert took < 2.0
        assert f"{signal.Signals(signum).name}, finishing..." in poller.stdout
        assert "poll sessions closed" in poller.stdout
        assert "Traceback" not in poller.stderr
    sessions = list(PollSession.objects.all())
    assert sorted(s.provider for s in sessions) == ["synthetic", "zai"]
    for session in sessions:
        assert session.ended_at is not None
        assert session.polls_ok == 1
        assert session.interval_seconds == 10


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_in_the_middle_of_a_slow_upstream_request_stops_it_within_2_seconds(signum: int) -> None:
    with fake_upstream(delay=10) as upstream, processes() as start:
        poller = start_loop(start, upstream)
        wait_until(lambda: upstream.state.arrived >= 2, 5, "both requests in flight")

        code, took = stop(poller, signum)

        assert code == 0, poller.output
        assert took < 2.0
        assert f"{signal.Signals(signum).name}, finishing..." in poller.stdout
        assert "Traceback" not in poller.stderr
    # The abandoned requests wrote nothing; the sessions are closed, empty.
    assert not PollAttempt.objects.exists()
    sessions = list(PollSession.objects.all())
    assert len(sessions) == 2
    assert all(s.ended_at is not None and s.polls_ok == s.polls_failed == 0 for s in sessions)


@pytest.mark.parametrize("second", [["--once"], ["--interval", "10"]], ids=["once", "loop"])
def test_a_second_poller_refuses_within_5_seconds_naming_the_holder(second: list[str]) -> None:
    with fake_upstream() as upstream, processes() as start:
        holder = start_loop(start, upstream)

        started = time.monotonic()
        other = start(manage("poll", *second), poller_env(upstream))
        code = other.wait(timeout=15)
        took = time.monotonic() - started

        assert code == 1, other.output
        assert took < 5.0
        assert len(other.stderr_lines) == 1, other.output
        assert "another poller is running" in other.stderr
        assert f"pid {holder.pid}" in other.stderr
        assert "Traceback" not in other.stderr
        assert holder.popen.poll() is None  # the holder is undisturbed
    assert PollSession.objects.count() == 2


def test_a_new_poller_takes_the_lock_at_once_after_the_holder_is_killed() -> None:
    with fake_upstream() as upstream, processes() as start:
        holder = start_loop(start, upstream)
        holder.kill()  # SIGKILL: no clean-up at all, and reaped

        # Free the moment the holder died, without waiting.
        probe = PollLock("probe", wait=0)
        assert probe.acquire() is True
        probe.release()
        once = start(manage("poll", "--once"), poller_env(upstream))
        code = once.wait(timeout=15)

        assert code == 0, once.output
        assert "another poller" not in once.stderr


def test_the_next_poller_closes_the_sessions_a_killed_poller_left_open_at_their_last_successful_poll() -> None:
    with fake_upstream() as upstream, processes() as start:
        crashed = start_loop(start, upstream)
        wait_until(lambda: PollSession.objects.filter(polls_ok=1).count() == 2, 10, "both providers polled")
        crashed.kill()
        orphans = list(PollSession.objects.filter(ended_at__isnull=True))
        assert len(orphans) == 2
        assert all(s.last_success_at is not None for s in orphans)

        successor = start_loop(start, upstream)
        assert "closed 2 session(s) left open by an earlier run" in successor.stdout
        code, _ = stop(successor, signal.SIGTERM)

        assert code == 0, successor.output
    for orphan in orphans:
        orphan.refresh_from_db()
        assert orphan.ended_at == orphan.last_success_at
    assert PollSession.objects.count() == 4
    assert not PollSession.objects.filter(ended_at__isnull=True).exists()


def test_a_signal_stops_poll_once_waiting_on_a_slow_upstream_within_2_seconds() -> None:
    with fake_upstream(delay=10) as upstream, processes() as start:
        once = start(manage("poll", "--once"), poller_env(upstream))
        wait_until(lambda: upstream.state.arrived >= 2, 10, "both requests in flight")

        code, took = stop(once, signal.SIGTERM)

        assert code == 0, once.output
        assert took < 2.0
        assert "SIGTERM, finishing..." in once.stdout
        assert "stopped before Synthetic, Z.ai answered" in once.stdout
    assert not PollAttempt.objects.exists()
    assert not PollSession.objects.exists()


# The web side of the test needs the keys the poller has.
@override_settings(SYNTHETIC_API_KEY=SYNTHETIC_KEY, ZAI_API_KEY=ZAI_KEY)
def test_a_poll_asked_through_the_api_lands_within_seconds_and_sigterm_still_stops_it_at_once(
    client: Client, django_user_model
) -> None:
    client.force_login(django_user_model.objects.create_user("alice", password="s3cret-passw0rd"))
    with fake_upstream() as upstream, processes() as start:
        # An hour between polls: only the request can bring the second one.
        poller = start(manage("poll", "--interval", "3600"), poller_env(upstream))
        poller.wait_for_line("polling Synthetic, Z.ai every 3600 s", stream="stdout")
        wait_until(lambda: PollAttempt.objects.count() == 2, 10, "both providers polled")

        response = client.post("/api/poll?provider=zai")
        assert response.status_code == 202, response.content
        asked = time.monotonic()
        entry = client.get("/api/providers").json()["providers"][1]
        assert entry["poller_running"] is True
        assert entry["poll_requested_at"] == response.json()["requested_at"]

        # The first poll started moments ago: the asked one waits out the minimum gap.
        wait_until(lambda: PollAttempt.objects.filter(provider="zai").count() == 2, 10, "the asked poll")
        took = time.monotonic() - asked
        assert took < pollnow.ASKED_MIN_GAP + 2.0
        wait_until(lambda: not PollRequest.pending(), 2, "the request answered")
        assert PollAttempt.objects.filter(provider="synthetic").count() == 1
        assert client.get("/api/providers").json()["providers"][1]["poll_requested_at"] is None

        code, stopped_in = stop(poller, signal.SIGTERM)

        assert code == 0, poller.output
        assert stopped_in < 2.0
        assert "Z.ai: polling in" in poller.stderr and "as asked" in poller.stderr, poller.output
    refused = client.post("/api/poll")
    assert refused.status_code == 409
    assert refused.json()["poller_running"] is False
