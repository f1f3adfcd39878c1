"""quotas.polling.store(): one poll's outcome, written in one transaction."""

from __future__ import annotations

import copy
import zlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from conftest import fixture_bytes
from quotas import cycles, polling
from quotas.models import Outcome, PollAttempt, PollSession, QuotaReading, ResetCycle, Snapshot
from quotas.polling import store
from quotas.providers import ADAPTERS, Fetched
from quotas.providers.base import DRIFT, Parsed, PollFailure, Quota, parse_json_object

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

pytestmark = pytest.mark.django_db


def fetched_from(provider: str, body: bytes, latency_ms: int = 120) -> Fetched:
    """What providers.fetch returns for a 200 answer with ``body``."""
    try:
        parsed = ADAPTERS[provider].parse(parse_json_object(body))
    except PollFailure as failure:
        return Fetched(provider, None, failure, body if failure.outcome == DRIFT else None, latency_ms)
    return Fetched(provider, parsed, None, body, latency_ms)


def store_at(at: datetime, fetched: Fetched, session: PollSession | None = None) -> PollAttempt:
    with time_machine.travel(at, tick=False):
        return store(fetched, session)


def readings_table(provider: str = "zai") -> list[tuple]:
    return list(
        QuotaReading.objects.filter(provider=provider)
        .order_by("captured_at", "key")
        .values_list("captured_at", "key", "used", "limit", "remaining", "percent", "resets_at", "cycle_id")
    )


def test_a_good_poll_becomes_a_snapshot_with_readings_and_an_attempt() -> None:
    body = fixture_bytes("zai/v2_weekly_and_level.json")
    attempt = store_at(T0, fetched_from("zai", body, latency_ms=321))

    snapshot = Snapshot.objects.get()
    assert (snapshot.provider, snapshot.captured_at, snapshot.plan) == ("zai", T0, "pro")
    assert (snapshot.usable, snapshot.drift, snapshot.drift_notes) == (True, False, [])
    rows = {
        r.key: (r.used, r.limit, r.remaining, r.percent, r.captured_at)
        for r in QuotaReading.objects.filter(snapshot=snapshot)
    }
    assert rows == {
        "tokens_5h": (9600000.0, 80000000.0, 70400000.0, 12.0, T0),
        "tokens_weekly": (236000000.0, 400000000.0, 164000000.0, 59.0, T0),
        "time_monthly": (69.0, 1000.0, 931.0, 6.9, T0),
    }
    tools = QuotaReading.objects.get(key="time_monthly").details["tools"]
    assert tools == [
        {"name": "search-prime", "used": 40.0},
        {"name": "web-reader", "used": 21.0},
        {"name": "zread", "used": 8.0},
    ]
    assert ResetCycle.objects.filter(provider="zai", ended_at__isnull=True).count() == 3
    assert QuotaReading.objects.filter(cycle__isnull=True).count() == 0
    assert (attempt.provider, attempt.at, attempt.outcome, attempt.drift) == ("zai", T0, Outcome.OK, False)
    assert (attempt.latency_ms, attempt.message, attempt.snapshot_id) == (321, "3 quotas", snapshot.pk)
    assert attempt.session is None


def test_the_raw_body_is_stored_compressed_and_read_back_by_raw_body() -> None:
    body = fixture_bytes("synthetic/v2_free_tool_calls.json")
    store_at(T0, fetched_from("synthetic", body))

    snapshot = Snapshot.objects.get()
    stored = bytes(snapshot.raw)
    assert stored != body
    assert zlib.decompress(stored) == body
    assert snapshot.raw_body() == body
    assert Snapshot.objects.get().raw_body() == body


def test_unknown_keys_store_the_known_quotas_and_flag_drift() -> None:
    body = b'{"subscription": {"limit": 335, "requests": 9}, "brandNew": 3}'
    attempt = store_at(T0, fetched_from("synthetic", body))

    snapshot = Snapshot.objects.get()
    assert (snapshot.usable, snapshot.drift, snapshot.drift_notes) == (True, True, ["brandNew"])
    assert list(QuotaReading.objects.values_list("key", "used")) == [("subscription", 9.0)]
    assert (attempt.outcome, attempt.drift, attempt.message) == (Outcome.OK, True, "1 quotas; unknown: brandNew")


def test_it_writes_nothing_when_the_transaction_fails_half_way(monkeypatch: pytest.MonkeyPatch) -> None:
    session = PollSession.objects.create(provider="zai", interval_seconds=60, started_at=T0 - MINUTE)
    real_track = cycles.track
    calls = []

    def track_then_fail(reading: QuotaReading, open_cycles: cycles.OpenCycles | None = None) -> float | None:
        calls.append(reading.key)
        if len(calls) == 2:
            assert Snapshot.objects.count() == 1  # the snapshot was written already
            raise RuntimeError("disk full")
        return real_track(reading, open_cycles)

    monkeypatch.setattr(cycles, "track", track_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        store_at(T0, fetched_from("zai", fixture_bytes("zai/v2_weekly_and_level.json")), session)

    assert calls == ["tokens_5h", "tokens_weekly"]
    assert Snapshot.objects.count() == 0
    assert QuotaReading.objects.count() == 0
    assert ResetCycle.objects.count() == 0
    assert PollAttempt.objects.count() == 0
    session.refresh_from_db()
    assert (session.polls_ok, session.polls_failed, session.last_success_at, session.quotas) == (0, 0, None, {})


def test_a_failed_transaction_leaves_the_session_in_memory_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    session = PollSession.objects.create(provider="zai", interval_seconds=60, started_at=T0 - MINUTE)
    store_at(T0, fetched_from("zai", fixture_bytes("zai/v2_weekly_and_level.json")), session)
    before = (session.polls_ok, session.polls_failed, session.last_success_at, copy.deepcopy(session.quotas))

    def fail(**kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(PollAttempt.objects, "create", fail)
    with pytest.raises(RuntimeError):
        store_at(T0 + MINUTE, fetched_from("zai", fixture_bytes("zai/v1_tokens_and_time.json")), session)

    assert (session.polls_ok, session.polls_failed, session.last_success_at, session.quotas) == before
    assert session.polls_ok == 1
    assert Snapshot.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_failure_half_way_rolls_back_a_real_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(reading: QuotaReading, open_cycles: cycles.OpenCycles | None = None) -> float | None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cycles, "track", fail)
    with pytest.raises(RuntimeError):
        store_at(T0, fetched_from("synthetic", fixture_bytes("synthetic/v2_free_tool_calls.json")))

    assert (Snapshot.objects.count(), QuotaReading.objects.count(), PollAttempt.objects.count()) == (0, 0, 0)


def test_a_drift_failure_keeps_the_body_in_an_unusable_snapshot_and_leaves_the_last_good_readings() -> None:
    store_at(T0, fetched_from("synthetic", fixture_bytes("synthetic/v2_free_tool_calls.json")))
    good = readings_table("synthetic")
    cycles_before = list(ResetCycle.objects.order_by("id").values())

    fetched = fetched_from("synthetic", b"{}", latency_ms=80)
    assert fetched.failure is not None
    note = fetched.failure.message
    assert note.startswith("empty payload")

    attempt = store_at(T0 + MINUTE, fetched)

    drifted = Snapshot.objects.get(captured_at=T0 + MINUTE)
    assert (drifted.usable, drifted.drift, drifted.drift_notes) == (False, True, [note])
    assert drifted.raw_body() == b"{}"
    assert drifted.readings.count() == 0
    assert (attempt.outcome, attempt.drift, attempt.message) == (Outcome.DRIFT, True, note)
    assert (attempt.snapshot_id, attempt.latency_ms) == (drifted.pk, 80)
    # The last good readings and the cycles are untouched.
    assert readings_table("synthetic") == good
    assert list(ResetCycle.objects.order_by("id").values()) == cycles_before
    latest_usable = Snapshot.objects.filter(provider="synthetic", usable=True).latest("captured_at")
    assert latest_usable.captured_at == T0


def test_a_drift_failure_without_a_body_stores_no_snapshot() -> None:
    attempt = store_at(T0, Fetched("zai", None, PollFailure(DRIFT, "payload has no data object"), None, 50))

    assert Snapshot.objects.count() == 0
    assert (attempt.outcome, attempt.drift, attempt.snapshot) == (Outcome.DRIFT, True, None)


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (Outcome.UNAUTHORIZED, "HTTP 401: the API key was rejected"),
        (Outcome.RATE_LIMITED, "HTTP 429: rate limited, retry after 30 s"),
        (Outcome.SERVER_ERROR, "HTTP 503: server error"),
        (Outcome.NETWORK_ERROR, "connection refused"),
        (Outcome.INVALID_RESPONSE, "response is not JSON: <html>"),
        (Outcome.DRIFT, "empty payload {}"),
    ],
)
def test_a_failure_becomes_an_attempt_and_counts_as_failed_in_the_session(outcome: str, message: str) -> None:
    session = PollSession.objects.create(provider="synthetic", interval_seconds=60, started_at=T0 - MINUTE)
    store_at(T0, fetched_from("synthetic", fixture_bytes("synthetic/v2_free_tool_calls.json")), session)

    attempt = store_at(T0 + MINUTE, Fetched("synthetic", None, PollFailure(outcome, message), None, None), session)

    assert (attempt.at, attempt.outcome, attempt.message, attempt.latency_ms) == (T0 + MINUTE, outcome, message, None)
    assert attempt.drift is (outcome == Outcome.DRIFT)
    assert attempt.snapshot is None
    assert attempt.session_id == session.pk
    session.refresh_from_db()
    assert (session.polls_ok, session.polls_failed, session.last_success_at) == (1, 1, T0)
    assert Snapshot.objects.count() == 1
    assert PollAttempt.objects.filter(session=session).count() == 2


def test_failures_in_a_row_keep_counting() -> None:
    session = PollSession.objects.create(provider="zai", interval_seconds=60, started_at=T0)
    for i in range(3):
        failure = PollFailure(Outcome.SERVER_ERROR, "HTTP 502: server error")
        store_at(T0 + i * MINUTE, Fetched("zai", None, failure, None, 10), session)

    session.refresh_from_db()
    assert (session.polls_ok, session.polls_failed, session.last_success_at) == (0, 3, None)


def test_a_long_message_is_cut_to_500_characters() -> None:
    failure = PollFailure(Outcome.SERVER_ERROR, "server error")
    failure.message = "x" * 800
    attempt = store_at(T0, Fetched("zai", None, failure, None, None))

    assert PollAttempt.objects.get(pk=attempt.pk).message == "x" * 500


def test_a_parsed_poll_without_a_plan_stores_an_empty_plan() -> None:
    parsed = Parsed(quotas=[Quota(key="subscription", label="Subscription", kind="reset", unit="requests", used=1)])
    store_at(T0, Fetched("synthetic", parsed, None, b'{"subscription": {"requests": 1}}', 5))

    assert Snapshot.objects.get().plan == ""


def test_add_readings_stores_each_quota_with_its_cycle() -> None:
    snapshot = Snapshot.objects.create(provider="zai", captured_at=T0)
    quota = Quota(key="tokens_5h", label="Tokens (5h)", kind="reset", unit="tokens", used=5, limit=10)

    (reading,) = polling.add_readings(snapshot, [quota])

    stored = QuotaReading.objects.get()
    assert stored.pk == reading.pk
    assert (stored.provider, stored.captured_at, stored.snapshot_id) == ("zai", T0, snapshot.pk)
    assert (stored.used, stored.limit, stored.percent, stored.remaining) == (5.0, 10.0, 50.0, 5.0)
    assert stored.cycle == ResetCycle.objects.get(quota="tokens_5h")
