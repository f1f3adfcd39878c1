"""Answers held while the database refuses writes (quotas.backlog), and the poll loop around them.

The real faults (a lock held by another process, a full disk, a read-only
server) are in test_storage_faults.py; here the database's refusal is the
driver's own error, raised by the poller's write, so order, bounds and
messages can be checked poll by poll.
"""

from __future__ import annotations

import io
import sqlite3

import pytest
from django.db import DataError, IntegrityError, OperationalError
from django.utils import timezone

from quotas import backlog as backlog_module
from quotas import dbfaults, polling
from quotas.backlog import RETRY_FIRST, RETRY_MAX, Backlog
from quotas.management.commands import poll as poll_module
from quotas.models import Outcome, PollAttempt, PollSession, Snapshot
from quotas.polling import Received
from quotas.providers import Fetched
from quotas.providers.base import PollFailure


def answer(provider: str = "synthetic", body: bytes = b"{}") -> Received:
    return Received(provider, None, PollFailure("server_error", "HTTP 500"), body, 12, timezone.now())


def locked() -> OperationalError:
    error = OperationalError("database is locked")
    error.__cause__ = sqlite3.OperationalError("database is locked")
    return error


# --- telling faults from bugs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (locked(), dbfaults.BUSY),
        (OperationalError("attempt to write a readonly database"), dbfaults.UNAVAILABLE),
        (OperationalError("database or disk is full"), dbfaults.UNAVAILABLE),
        (OperationalError("server closed the connection unexpectedly"), dbfaults.UNAVAILABLE),
        (DataError("value too long for type character varying(64)"), None),
        (IntegrityError("UNIQUE constraint failed"), None),
        (KeyError("a bug"), None),
    ],
)
def test_a_database_fault_is_told_from_a_bug(error: Exception, kind: str | None) -> None:
    assert dbfaults.kind(error) == kind


def test_the_reason_is_one_line() -> None:
    assert dbfaults.reason(OperationalError("could not connect\n\tIs the server running?")) == "could not connect"


# --- the backlog itself ---------------------------------------------------------------------------


def test_answers_wait_in_order_and_the_pause_doubles_up_to_its_cap() -> None:
    backlog = Backlog()
    first, second = answer("synthetic"), answer("zai")
    backlog.hold(first, "database is locked", now=100.0)
    backlog.hold(second, "database is locked", now=101.0)

    assert backlog.next() is first and len(backlog) == 2
    assert not backlog.due(100.5) and backlog.due(100.0 + RETRY_FIRST)
    pauses = []
    for _ in range(8):
        backlog.refused_again("database is locked", now=200.0)
        pauses.append(backlog.retry_at - 200.0)
    assert pauses[:3] == [2 * RETRY_FIRST, 4 * RETRY_FIRST, 8 * RETRY_FIRST]
    assert pauses[-1] == RETRY_MAX
    assert backlog.refused_again("disk full", now=300.0) is True  # a new reason is worth a line
    assert backlog.refused_again("disk full", now=300.0) is False


def test_past_its_bounds_the_oldest_answers_go_and_are_counted(monkeypatch) -> None:
    monkeypatch.setattr(backlog_module, "MAX_HELD", 3)
    backlog = Backlog()
    held = [answer() for _ in range(5)]
    dropped = [backlog.hold(item, "database is locked", now=0.0) for item in held]

    assert dropped == [0, 0, 0, 1, 1]
    assert list(backlog.items) == held[2:]
    assert backlog.refused["synthetic"].held == 5 and backlog.refused["synthetic"].lost == 2


def test_bodies_are_bounded_too(monkeypatch) -> None:
    monkeypatch.setattr(backlog_module, "MAX_HELD_BYTES", 1000)
    backlog = Backlog()
    for _ in range(4):
        backlog.hold(answer(body=b"x" * 400), "database or disk is full", now=0.0)
    assert len(backlog) == 2 and backlog.held_bytes == 800


@pytest.mark.django_db
def test_settling_records_one_storage_error_per_provider_and_ends_the_outage() -> None:
    backlog = Backlog()
    for provider in ("synthetic", "zai", "synthetic"):
        backlog.hold(answer(provider), "database is locked", now=10.0)
    while backlog:
        backlog.written()

    attempts = backlog.settle(now=56.0, sessions={})

    assert {a.provider: a.message for a in attempts} == {
        "synthetic": "the database refused writes for 46 s (database is locked): 2 answer(s) kept and written late",
        "zai": "the database refused writes for 46 s (database is locked): 1 answer(s) kept and written late",
    }
    assert all(a.outcome == Outcome.STORAGE_ERROR and a.snapshot is None for a in attempts)
    assert backlog.started is None and not backlog.due(1e9)


# --- the poll loop around it ------------------------------------------------------------------------


@pytest.fixture
def refusing(monkeypatch):
    """The poller's writes fail with SQLite's "database is locked" while ``refusing["n"]`` > 0."""
    state = {"n": 0}
    real_store = polling.store

    def store(fetched: Fetched, session: PollSession | None = None) -> PollAttempt:
        if state["n"] > 0:
            state["n"] -= 1
            raise locked()
        return real_store(fetched, session)

    monkeypatch.setattr(poll_module, "store", store)
    monkeypatch.setattr(backlog_module, "RETRY_FIRST", 0.01)
    monkeypatch.setattr(poll_module, "RETRY_FIRST", 0.01)
    return state


@pytest.mark.django_db
def test_the_loop_keeps_refused_answers_and_writes_them_in_order_once_it_can(both_ok, refusing, caplog) -> None:
    refusing["n"] = 3  # the first poll's write and two retries
    poll_module.Command().run_loop(["synthetic", "zai"], 0.05, max_polls=6)

    ok = list(PollAttempt.objects.filter(outcome=Outcome.OK).order_by("id"))
    assert len(ok) == 6 and Snapshot.objects.count() == 6
    # Written in the order they were fetched, whatever the order of the writes.
    assert [a.at for a in ok if a.provider == "synthetic"] == sorted(a.at for a in ok if a.provider == "synthetic")
    outages = PollAttempt.objects.filter(outcome=Outcome.STORAGE_ERROR)
    assert outages.exists() and all("database is locked" in o.message for o in outages)
    assert not PollAttempt.objects.filter(outcome=Outcome.INVALID_RESPONSE).exists()
    lines = [r.getMessage() for r in caplog.records]
    assert sum("refused the write" in line for line in lines) == 1, lines
    assert sum("takes writes again" in line for line in lines) == 1, lines
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.django_db
def test_poll_once_exits_1_naming_what_the_database_would_not_take(both_ok, refusing, monkeypatch, capsys) -> None:
    refusing["n"] = 10**6
    monkeypatch.setattr(poll_module, "ONCE_STORE_PATIENCE", 0.2)
    command = poll_module.Command()

    with pytest.raises(poll_module.CommandError) as raised:
        command.run_once(["synthetic", "zai"])

    assert raised.value.returncode == 1
    out = capsys.readouterr().out
    assert "Synthetic: not stored, the database refused the write (database is locked)" in out
    assert "Z.ai: not stored" in out
    assert not PollAttempt.objects.exists()


@pytest.mark.django_db
def test_poll_once_writes_late_what_the_database_took_within_its_patience(both_ok, refusing, capsys) -> None:
    refusing["n"] = 2
    poll_module.Command().run_once(["synthetic", "zai"])

    assert PollAttempt.objects.filter(outcome=Outcome.OK).count() == 2
    assert PollAttempt.objects.filter(outcome=Outcome.STORAGE_ERROR).exists()
    assert "Synthetic: ok" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_poller_gives_the_connection_back_with_its_usual_lock_wait(both_ok) -> None:
    """Its brief waits (and the briefer ones at shutdown) end with it: a test or a shell goes on as configured."""
    from django.core.management import call_command
    from django.db import connection

    options = dict(connection.settings_dict["OPTIONS"])
    call_command("poll", "--max-polls", "2", "--interval", "10", stdout=io.StringIO(), stderr=io.StringIO())
    poll_module.Command().run_loop(["synthetic", "zai"], 0.05, max_polls=2)

    assert connection.settings_dict["OPTIONS"] == options
    if connection.vendor == "sqlite":
        (busy,) = connection.connection.execute("PRAGMA busy_timeout").fetchone()
        assert busy == int(options["timeout"] * 1000)


def test_an_outage_that_changed_its_reason_names_each_in_order() -> None:
    backlog = Backlog()
    backlog.hold(answer(), "disk I/O error", now=0.0)
    backlog.refused_again("attempt to write a readonly database", now=1.0)
    backlog.refused_again("disk I/O error", now=3.0)
    assert backlog.reasons == ["disk I/O error", "attempt to write a readonly database"]


@pytest.mark.django_db
def test_a_long_outage_says_once_that_old_answers_are_dropped(both_ok, refusing, monkeypatch, caplog) -> None:
    refusing["n"] = 10**6  # never takes a write, not even at the stop
    monkeypatch.setattr(backlog_module, "MAX_HELD", 2)
    poll_module.Command().run_loop(["synthetic", "zai"], 0.05, max_polls=8)

    lines = [r.getMessage() for r in caplog.records]
    assert sum("the oldest are dropped" in line for line in lines) == 1, lines
    assert sum("refused the write" in line for line in lines) == 1, lines
    assert any("2 answer(s) could not be written before stopping (database is locked): lost" in line for line in lines)
    assert not PollAttempt.objects.exists()
