"""``manage.py poll`` in-process, with both upstream APIs mocked by ``responses``."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DataError, OperationalError, connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from conftest import SYNTHETIC_KEY, SYNTHETIC_URL, ZAI_KEY, ZAI_URL, fixture_bytes, fixture_json
from quotas import locking, polling, providers
from quotas.management.commands import poll as poll_module
from quotas.management.commands.poll import Command
from quotas.models import Outcome, PollAttempt, PollSession, QuotaReading, Snapshot
from quotas.polling import MAX_BACKOFF_FACTOR, next_delay

pytestmark = pytest.mark.django_db


def poll(*args: str) -> str:
    out = io.StringIO()
    call_command("poll", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def poll_error(*args: str) -> CommandError:
    with pytest.raises(CommandError) as info:
        poll(*args)
    return info.value


def command() -> Command:
    return Command(stdout=io.StringIO(), stderr=io.StringIO())


# --once


def test_it_polls_every_configured_provider_once(both_ok) -> None:
    out = poll("--once")

    assert "Synthetic: ok" in out
    assert "Z.ai: ok" in out
    assert sorted(Snapshot.objects.values_list("provider", flat=True)) == ["synthetic", "zai"]
    assert QuotaReading.objects.filter(provider="synthetic").exists()
    assert QuotaReading.objects.filter(provider="zai").exists()
    attempts = PollAttempt.objects.order_by("provider")
    assert [(a.provider, a.outcome) for a in attempts] == [("synthetic", "ok"), ("zai", "ok")]
    assert all(a.snapshot_id is not None for a in attempts)


def test_it_opens_no_session_with_once(both_ok) -> None:
    poll("--once")

    assert not PollSession.objects.exists()
    assert PollAttempt.objects.filter(session__isnull=True).count() == 2


def test_it_exits_1_when_any_provider_fails(upstream, providers_configured) -> None:
    upstream.get(SYNTHETIC_URL, body=fixture_bytes("synthetic/v2_free_tool_calls.json"))
    upstream.get(ZAI_URL, status=503, body=b"unavailable")

    error = poll_error("--once")

    assert error.returncode == 1
    assert "Z.ai" in str(error)
    assert "Synthetic" not in str(error)
    assert PollAttempt.objects.get(provider="zai").outcome == Outcome.SERVER_ERROR
    assert Snapshot.objects.filter(provider="synthetic").exists()


def test_it_exits_1_on_an_empty_payload(upstream, providers_configured) -> None:
    upstream.get(SYNTHETIC_URL, body=fixture_bytes("synthetic/empty_object.json"))

    error = poll_error("--once", "--provider", "synthetic")

    assert error.returncode == 1
    attempt = PollAttempt.objects.get()
    assert attempt.outcome == Outcome.DRIFT
    assert attempt.drift
    # No readings, never zeros; the raw body is kept for reparse.
    assert not QuotaReading.objects.exists()
    snapshot = Snapshot.objects.get()
    assert not snapshot.usable
    assert snapshot.raw_body() == fixture_bytes("synthetic/empty_object.json")


def test_it_stores_known_quotas_flags_drift_and_succeeds_with_unknown_keys(upstream, providers_configured) -> None:
    payload = fixture_json("synthetic/v2_free_tool_calls.json")
    payload["turboCredits"] = {"limit": 10, "requests": 1}
    upstream.get(SYNTHETIC_URL, body=json.dumps(payload))

    poll("--once", "--provider", "synthetic")

    attempt = PollAttempt.objects.get()
    assert attempt.outcome == Outcome.OK
    assert attempt.drift
    assert "turboCredits" in attempt.message
    snapshot = Snapshot.objects.get()
    assert snapshot.drift and snapshot.usable
    keys = set(QuotaReading.objects.values_list("key", flat=True))
    assert {"subscription", "search_hourly", "free_tool_calls"} <= keys


def test_it_polls_only_the_chosen_provider(both_ok) -> None:
    poll("--once", "--provider", "zai")

    assert [call.request.url for call in both_ok.calls] == [ZAI_URL]
    assert list(PollAttempt.objects.values_list("provider", flat=True)) == ["zai"]


def test_it_sends_each_provider_its_own_authorization(both_ok) -> None:
    poll("--once")

    headers = {call.request.url: call.request.headers["Authorization"] for call in both_ok.calls}
    assert headers == {SYNTHETIC_URL: f"Bearer {SYNTHETIC_KEY}", ZAI_URL: ZAI_KEY}


# usage and configuration errors: exit code 2


def test_it_refuses_a_provider_without_a_key(providers_configured) -> None:
    providers_configured.ZAI_API_KEY = ""

    error = poll_error("--once", "--provider", "zai")

    assert error.returncode == 2
    assert "ZAI_API_KEY" in str(error)
    assert not PollAttempt.objects.exists()


def test_it_refuses_to_run_without_any_key(settings) -> None:
    settings.SYNTHETIC_API_KEY = ""
    settings.ZAI_API_KEY = ""

    error = poll_error("--once")

    assert error.returncode == 2
    assert "SYNTHETIC_API_KEY" in str(error)
    assert "ZAI_API_KEY" in str(error)


@pytest.mark.parametrize("interval", ["5", "9", "3601", "4000", "0", "-10"])
def test_it_refuses_an_interval_out_of_range(providers_configured, interval: str) -> None:
    error = poll_error("--once", f"--interval={interval}")

    assert error.returncode == 2
    assert "10" in str(error) and "3600" in str(error)


def test_it_refuses_an_interval_that_is_not_a_number(providers_configured) -> None:
    error = poll_error("--interval", "abc")

    assert error.returncode == 2
    assert "abc" in str(error)


@pytest.mark.parametrize("interval", ["10", "3600"])
def test_it_accepts_the_interval_bounds(both_ok, interval: str) -> None:
    poll("--once", "--interval", interval)

    assert PollAttempt.objects.count() == 2


def test_it_refuses_an_unmigrated_database(both_ok) -> None:
    MigrationRecorder(connection).migration_qs.filter(app="quotas").order_by("-name")[:1].get().delete()

    error = poll_error("--once")

    assert error.returncode == 2
    assert "lacks 1 migration(s)" in str(error)
    assert not PollAttempt.objects.exists()


def test_a_migrated_database_is_told_without_loading_the_migration_graph(both_ok, monkeypatch) -> None:
    def no_graph(*args: object) -> None:
        raise AssertionError("the migration graph was built")

    monkeypatch.setattr(poll_module.MigrationExecutor, "__init__", no_graph)

    poll("--once")

    assert PollAttempt.objects.count() == 2


def test_a_squash_recorded_as_its_replaced_migrations_counts_as_migrated(both_ok, monkeypatch) -> None:
    # What the names alone cannot tell (a squash file not yet recorded), the graph can.
    monkeypatch.setattr(poll_module, "migrations_missing_on_record", lambda: {("quotas", "0001_squashed_0009")})

    poll("--once")

    assert PollAttempt.objects.count() == 2


def test_it_refuses_an_unreachable_database_in_one_line(both_ok, monkeypatch) -> None:
    def unreachable() -> None:
        raise OperationalError('connection to server at "db", port 5432 failed: Connection refused\n\tIs it running?')

    monkeypatch.setattr(poll_module, "recorded_migrations", unreachable)

    error = poll_error("--once")

    assert error.returncode == 2
    assert "Connection refused" in str(error)
    assert "\n" not in str(error)


def test_it_exits_1_naming_the_holder_when_another_poller_holds_the_lock(both_ok, monkeypatch) -> None:
    monkeypatch.setattr(locking, "WAIT_SECONDS", 0.3)
    holder = locking.PollLock("test holder", wait=0)
    holder.acquire()
    try:
        error = poll_error("--once")
    finally:
        holder.release()

    assert error.returncode == 1
    assert "test holder" in str(error)
    assert f"pid {os.getpid()}" in str(error)
    assert not PollAttempt.objects.exists()


# poll_once() and failure isolation


def test_poll_once_returns_true_on_success(both_ok) -> None:
    assert command().poll_once("synthetic") is True
    assert PollAttempt.objects.get().outcome == Outcome.OK


def test_poll_once_returns_false_on_failure(upstream, providers_configured) -> None:
    upstream.get(SYNTHETIC_URL, status=401, body=fixture_bytes("synthetic/unauthorized.json"))

    assert command().poll_once("synthetic") is False
    attempt = PollAttempt.objects.get()
    assert attempt.outcome == Outcome.UNAUTHORIZED
    assert providers.api_key("synthetic") not in attempt.message


def test_one_failing_provider_never_stops_the_other(upstream, providers_configured) -> None:
    upstream.get(SYNTHETIC_URL, body=fixture_bytes("synthetic/v2_free_tool_calls.json"))
    upstream.get(ZAI_URL, body=requests.ConnectionError("connection refused"))

    error = poll_error("--once")

    assert error.returncode == 1
    outcomes = dict(PollAttempt.objects.values_list("provider", "outcome"))
    assert outcomes == {"synthetic": Outcome.OK, "zai": Outcome.NETWORK_ERROR}
    assert QuotaReading.objects.filter(provider="synthetic").count() == 3


def test_an_unexpected_error_in_one_provider_is_recorded_and_the_other_still_polls(both_ok, monkeypatch) -> None:
    real_fetch = providers.fetch

    def fetch(provider: str) -> providers.Fetched:
        if provider == "zai":
            raise KeyError("parser bug")
        return real_fetch(provider)

    monkeypatch.setattr(providers, "fetch", fetch)
    cmd = command()

    assert cmd.poll_once("zai") is False
    assert cmd.poll_once("synthetic") is True
    zai = PollAttempt.objects.get(provider="zai")
    assert zai.outcome == Outcome.INVALID_RESPONSE
    assert "KeyError" in zai.message


def test_a_payload_that_cannot_be_stored_is_recorded_as_a_failed_poll(both_ok, monkeypatch) -> None:
    real_add_readings = polling.add_readings

    def add_readings(snapshot: Snapshot, quotas: list, session: PollSession | None = None) -> list:
        if snapshot.provider == "zai":
            raise DataError("value too long for type character varying(64)")
        return real_add_readings(snapshot, quotas, session)

    monkeypatch.setattr(polling, "add_readings", add_readings)
    cmd = command()

    assert cmd.poll_once("zai") is False
    assert cmd.poll_once("synthetic") is True

    zai = PollAttempt.objects.get(provider="zai")
    assert zai.outcome == Outcome.INVALID_RESPONSE
    assert zai.message == "could not store the response: DataError"
    # The half-written poll was rolled back: no snapshot without its readings.
    assert not Snapshot.objects.filter(provider="zai").exists()


def test_the_loop_survives_a_payload_that_cannot_be_stored(both_ok, monkeypatch) -> None:
    def add_readings(snapshot: Snapshot, quotas: list, session: PollSession | None = None) -> list:
        raise DataError("value too long")

    monkeypatch.setattr(polling, "add_readings", add_readings)

    command().run_loop(["synthetic", "zai"], 0.05, max_polls=4)

    for session in PollSession.objects.all():
        assert session.polls_ok == 0
        assert session.polls_failed == 2
        assert session.quotas == {}
        assert session.ended_at is not None


# the loop


def test_the_loop_opens_a_session_per_provider_and_closes_them_after_max_polls(both_ok, monkeypatch) -> None:
    monkeypatch.setattr(poll_module, "MIN_INTERVAL", 1)

    out = poll("--interval", "1", "--max-polls", "4")

    assert "polling Synthetic, Z.ai every 1 s" in out
    assert "poll sessions closed" in out
    sessions = {s.provider: s for s in PollSession.objects.all()}
    assert set(sessions) == {"synthetic", "zai"}
    for session in sessions.values():
        assert session.polls_ok == 2
        assert session.polls_failed == 0
        assert session.interval_seconds == 1
        assert session.ended_at is not None
        assert session.last_success_at is not None
        assert session.ended_at >= session.last_success_at
        assert session.quotas  # per-quota peak and consumption
    assert PollAttempt.objects.filter(session__isnull=True).count() == 0


def test_the_loop_counts_failed_polls_in_the_session(upstream, providers_configured) -> None:
    upstream.get(SYNTHETIC_URL, body=fixture_bytes("synthetic/v2_free_tool_calls.json"))
    upstream.get(ZAI_URL, body=fixture_bytes("zai/error_server_in_200.json"))

    command().run_loop(["synthetic", "zai"], 0.05, max_polls=4)

    sessions = {s.provider: s for s in PollSession.objects.all()}
    assert sessions["synthetic"].polls_ok >= 2
    assert sessions["synthetic"].polls_failed == 0
    assert sessions["zai"].polls_ok == 0
    assert sessions["zai"].polls_failed >= 1
    assert sessions["synthetic"].polls_ok + sessions["zai"].polls_failed == 4
    assert sessions["zai"].last_success_at is None
    assert all(s.ended_at is not None for s in sessions.values())


def test_the_loop_closes_orphan_sessions_at_their_last_successful_poll(both_ok) -> None:
    now = timezone.now()
    crashed = PollSession.objects.create(
        provider="synthetic",
        started_at=now - timedelta(hours=2),
        interval_seconds=60,
        polls_ok=5,
        last_success_at=now - timedelta(hours=1),
    )
    never_succeeded = PollSession.objects.create(
        provider="zai", started_at=now - timedelta(minutes=30), interval_seconds=60, polls_failed=3
    )
    cmd = command()

    cmd.run_loop(["synthetic", "zai"], 0.05, max_polls=2)

    crashed.refresh_from_db()
    never_succeeded.refresh_from_db()
    assert crashed.ended_at == crashed.last_success_at
    assert never_succeeded.ended_at == never_succeeded.started_at
    assert "closed 2 session(s) left open by an earlier run" in cmd.stdout.getvalue()
    assert PollSession.objects.filter(ended_at__isnull=True).count() == 0
    assert PollSession.objects.count() == 4


def test_the_loop_backs_off_a_failing_provider(upstream, providers_configured, monkeypatch) -> None:
    upstream.get(SYNTHETIC_URL, body=fixture_bytes("synthetic/v2_free_tool_calls.json"))
    upstream.get(ZAI_URL, status=502, body=b"bad gateway")
    scheduled: list[tuple[str, int, float]] = []

    def recording_next_delay(interval: float, failures: int, retry_after: float | None = None) -> float:
        delay = next_delay(interval, failures, retry_after)
        scheduled.append(("zai" if failures else "synthetic", failures, delay))
        return delay

    monkeypatch.setattr(poll_module, "next_delay", recording_next_delay)

    command().run_loop(["synthetic", "zai"], 0.05, max_polls=14)

    zai = [(failures, delay) for who, failures, delay in scheduled if who == "zai"]
    synthetic = [delay for who, _, delay in scheduled if who == "synthetic"]
    assert [failures for failures, _ in zai] == list(range(1, len(zai) + 1))
    delays = [delay for _, delay in zai]
    assert delays == sorted(delays)
    assert delays[0] == pytest.approx(0.05)
    assert delays[2] > delays[1] > delays[0]
    assert max(delays) <= 0.05 * MAX_BACKOFF_FACTOR
    assert set(synthetic) == {0.05}
    # Backing off, Z.ai is asked less often than the healthy provider.
    assert len(zai) < len(synthetic)
    assert PollSession.objects.get(provider="zai").polls_failed == len(zai)


def test_the_loop_honours_retry_after(upstream, providers_configured, monkeypatch) -> None:
    upstream.get(SYNTHETIC_URL, body=fixture_bytes("synthetic/v2_free_tool_calls.json"))
    upstream.get(ZAI_URL, status=429, headers={"Retry-After": "30"})
    calls: list[tuple[int, float | None]] = []

    def recording_next_delay(interval: float, failures: int, retry_after: float | None = None) -> float:
        calls.append((failures, retry_after))
        return next_delay(interval, failures, retry_after)

    monkeypatch.setattr(poll_module, "next_delay", recording_next_delay)

    command().run_loop(["synthetic", "zai"], 0.05, max_polls=6)

    assert (1, 30.0) in calls
    assert PollAttempt.objects.filter(provider="zai").count() == 1
    assert PollAttempt.objects.get(provider="zai").outcome == Outcome.RATE_LIMITED


@pytest.mark.parametrize(
    ("failures", "factor"), [(0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (50, MAX_BACKOFF_FACTOR)]
)
def test_next_delay_doubles_after_repeated_failures_up_to_eight_intervals(failures: int, factor: int) -> None:
    assert next_delay(60, failures) == 60 * factor


def test_next_delay_takes_the_longer_of_backoff_and_retry_after() -> None:
    assert next_delay(60, 1, retry_after=300) == 300
    assert next_delay(60, 4, retry_after=10) == 480


def test_sigterm_stops_the_loop_closes_sessions_and_restores_the_handlers(both_ok) -> None:
    original = signal.getsignal(signal.SIGTERM)
    cmd = command()
    polled = threading.Event()
    stray: list[str] = []

    def send_sigterm_once_polled() -> None:
        # Only signal the test process when the poller's handler is in place.
        if polled.wait(5) and signal.getsignal(signal.SIGTERM) == cmd.on_signal:
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            stray.append("the poller never installed its SIGTERM handler")
            cmd.shutdown = True

    real_record = cmd.record

    def record(fetched: providers.Fetched, session: PollSession | None) -> PollAttempt:
        attempt = real_record(fetched, session)
        polled.set()
        return attempt

    cmd.record = record  # type: ignore[method-assign]
    timer = threading.Thread(target=send_sigterm_once_polled)
    timer.start()
    try:
        call_command(cmd, "--interval", "60")
    finally:
        timer.join()

    assert not stray
    assert "SIGTERM, finishing..." in cmd.stdout.getvalue()
    assert signal.getsignal(signal.SIGTERM) == original
    assert PollSession.objects.count() == 2
    assert not PollSession.objects.filter(ended_at__isnull=True).exists()


def test_a_fetch_stuck_past_the_watchdog_counts_as_a_network_error(both_ok, monkeypatch) -> None:
    # A server trickling its headers could hold a fetch thread beyond every
    # HTTP timeout; the loop must give up on it and keep polling the provider.
    monkeypatch.setattr(poll_module, "FETCH_WATCHDOG", 0.2)
    release = threading.Event()
    real_fetch = Command.fetch
    stuck_once = []

    def fetch(self, provider: str):
        if provider == "zai" and not stuck_once:
            stuck_once.append(True)
            release.wait(5)  # the abandoned fetch answers only after the test let it go
        return real_fetch(self, provider)

    monkeypatch.setattr(Command, "fetch", fetch)
    try:
        command().run_loop(["synthetic", "zai"], 0.05, max_polls=8)
    finally:
        release.set()

    zai = list(PollAttempt.objects.filter(provider="zai").order_by("at"))
    assert zai[0].outcome == Outcome.NETWORK_ERROR
    assert "no complete answer within" in zai[0].message
    assert any(a.outcome == Outcome.OK for a in zai[1:])
