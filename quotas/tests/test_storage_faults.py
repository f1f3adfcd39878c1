"""The poller's own database refusing writes: locked, read-only, full, killed mid-write (real processes).

Each test runs ``manage.py poll`` as a subprocess against ``tools.fake_upstream``
and the database this test process uses, and makes that database refuse the
poller's writes from outside, as a backup, a stuck client, a failover or a
full disk would:

- SQLite: another connection holds the write lock (``BEGIN IMMEDIATE``) for
  65 s; a database on a small tmpfs that fills up (root only).
- PostgreSQL: ``LOCK TABLE`` on the attempts table; the database turned
  read-only (``default_transaction_read_only``) under a running poller.

What must hold: the answers fetched meanwhile are kept and written once the
database takes writes again, dated when they came; the outage is one
``storage_error`` attempt per provider, never blamed on the upstream; the
poller keeps running and says each problem in one line, without a traceback;
a stop during the outage still ends within 2 s.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from accounts.models import User
from quotas.invariants import cycle_violations
from quotas.locking import PollLock
from quotas.models import Outcome, PollAttempt, PollSession, QuotaReading, Snapshot
from quotas.tests.helpers import Process, fake_upstream, manage, poller_env, processes, run_manage, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

READY = "polling Synthetic, Z.ai every 10 s"
REFUSED = "the database refused the write"
BACK = "the database takes writes again"

sqlite_only = pytest.mark.skipif(
    "connection.vendor != 'sqlite'", reason="SQLite's write lock (the suite runs on PostgreSQL)"
)
postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="PostgreSQL's table locks and read-only mode (set DATABASE_URL)"
)


@pytest.fixture(autouse=True)
def no_default_password() -> None:
    """No accounts.W001 in the pollers' stderr: it holds only their own lines here."""
    for user in User.objects.filter(password_is_default=True):
        user.set_password("a-real-passw0rd")
        user.save()


def start_loop(start, upstream, env: dict[str, str] | None = None) -> Process:
    poller = start(manage("poll", "--interval", "10"), env or poller_env(upstream))
    poller.wait_for_line(READY, stream="stdout")
    return poller


def ok_polls(provider: str | None = None) -> int:
    attempts = PollAttempt.objects.filter(outcome=Outcome.OK)
    return (attempts.filter(provider=provider) if provider else attempts).count()


def assert_clean(poller: Process) -> None:
    """One line per problem: no traceback, and the upstream never blamed for our database."""
    assert "Traceback" not in poller.output, poller.output
    assert "invalid_response" not in poller.output, poller.output


def assert_everything_fetched_was_stored(upstream) -> None:
    """Each answer the fake upstream gave became one ok attempt with its snapshot and readings; no other rows."""
    state = upstream.state
    assert ok_polls("synthetic") == state.synthetic_calls
    assert ok_polls("zai") == state.zai_calls
    assert Snapshot.objects.count() == ok_polls()
    assert not Snapshot.objects.filter(readings__isnull=True).exists()
    assert not PollAttempt.objects.filter(outcome=Outcome.OK, snapshot__isnull=True).exists()
    assert (
        QuotaReading.objects.values("provider", "key", "captured_at").distinct().count() == QuotaReading.objects.count()
    )
    assert cycle_violations() == []


def stop(poller: Process) -> float:
    started = time.monotonic()
    poller.send(signal.SIGTERM)
    assert poller.wait(timeout=10) == 0, poller.output
    return time.monotonic() - started


def assert_restart_recovers(start, upstream, orphans: list[PollSession]) -> None:
    """After a SIGKILL: the lock free at once, the orphans closed at their last good poll, polling resumed."""
    probe = PollLock("probe", wait=0)
    assert probe.acquire() is True
    probe.release()
    polled = ok_polls()
    successor = start_loop(start, upstream)
    assert f"closed {len(orphans)} session(s) left open by an earlier run" in successor.stdout
    wait_until(lambda: ok_polls() >= polled + 2, 15, "the successor's first round stored")
    stop(successor)
    assert_clean(successor)
    for orphan in orphans:
        orphan.refresh_from_db()
        assert orphan.ended_at == orphan.last_success_at


def assert_nothing_half_written() -> None:
    assert Snapshot.objects.count() == ok_polls()
    assert not Snapshot.objects.filter(readings__isnull=True).exists()
    assert not PollAttempt.objects.filter(outcome=Outcome.OK, snapshot__isnull=True).exists()
    for provider in ("synthetic", "zai"):
        times = list(Snapshot.objects.filter(provider=provider).values_list("captured_at", flat=True))
        assert len(times) == len(set(times)), "a poll stored twice"
    assert cycle_violations() == []


# --- SQLite ---------------------------------------------------------------------------------------------


@contextmanager
def sqlite_write_lock() -> Iterator[None]:
    """Another connection holds the database's write lock, as a backup or a stuck client would."""
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@sqlite_only
def test_a_write_lock_held_65_s_loses_no_answer_and_blames_no_upstream() -> None:
    with fake_upstream() as upstream, processes() as start:
        poller = start_loop(start, upstream)
        wait_until(lambda: ok_polls() == 2, 10, "the first round stored")
        with sqlite_write_lock():
            locked_at = time.monotonic()
            poller.wait_for_line(REFUSED, timeout=15, stream="stderr")
            time.sleep(max(0.0, 65 - (time.monotonic() - locked_at)))
            assert poller.popen.poll() is None, poller.output
            held = upstream.state.synthetic_calls + upstream.state.zai_calls - 2
            assert held >= 10  # six 10-s polls of each provider came while the lock was held
            assert ok_polls() == 2  # none of them could be written
        poller.wait_for_line(BACK, timeout=35, stream="stderr")
        wait_until(lambda: PollAttempt.objects.filter(outcome=Outcome.STORAGE_ERROR).count() == 2, 5, "outage recorded")
        took = stop(poller)

    assert took < 2, took
    assert_clean(poller)
    assert_everything_fetched_was_stored(upstream)
    # Dated when they came: 10 s apart through the lock, not bunched at the moment it was released.
    synthetic = list(PollAttempt.objects.filter(provider="synthetic", outcome=Outcome.OK).order_by("at"))
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(synthetic)]
    assert all(9 <= gap <= 12 for gap in gaps), gaps
    for outage in PollAttempt.objects.filter(outcome=Outcome.STORAGE_ERROR):
        assert "database is locked" in outage.message
        assert "written late" in outage.message and "lost" not in outage.message
        assert outage.snapshot is None
    # One line when the writes were first refused, one when they got through again.
    assert sum(REFUSED in line for line in poller.stderr_lines) == 1, poller.stderr
    assert sum(BACK in line for line in poller.stderr_lines) == 1, poller.stderr
    assert not PollSession.objects.filter(ended_at__isnull=True).exists()


@sqlite_only
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_poller_stopped_or_killed_while_the_database_is_locked_leaves_nothing_half_written(how: str) -> None:
    with fake_upstream() as upstream, processes() as start:
        poller = start_loop(start, upstream)
        wait_until(lambda: ok_polls() == 2, 10, "the first round stored")
        with sqlite_write_lock():
            poller.wait_for_line(REFUSED, timeout=15, stream="stderr")
            if how == "SIGKILL":
                poller.kill()  # with answers held in memory only
            else:
                took = stop(poller)
                assert took < 2, took
                assert_clean(poller)
                assert "could not be written before stopping (database is locked): lost" in poller.stderr
                assert "could not close the poll sessions (database is locked)" in poller.stderr
                assert "poll sessions closed" not in poller.stdout
        orphans = list(PollSession.objects.filter(ended_at__isnull=True))
        assert len(orphans) == 2
        # The lock is free at once; the next start closes what this one could not.
        assert_restart_recovers(start, upstream, orphans)
    # What was lost is lost whole: no snapshot without its attempt, nothing written twice.
    assert_nothing_half_written()


@sqlite_only
def test_a_poller_started_while_the_database_is_locked_waits_for_it_then_polls() -> None:
    with fake_upstream() as upstream, processes() as start:
        with sqlite_write_lock():
            poller = start(manage("poll", "--interval", "10"), poller_env(upstream))
            poller.wait_for_line("the database refuses writes (database is locked): waiting", stream="stderr")
            time.sleep(3)
            assert poller.popen.poll() is None, poller.output
            assert upstream.state.arrived == 0  # no poll it could not store
        poller.wait_for_line(READY, timeout=40, stream="stdout")
        wait_until(lambda: ok_polls() == 2, 10, "the first round stored")
        stop(poller)
    assert_clean(poller)


@contextmanager
def unwritable_file(path: Path) -> Iterator[None]:
    """The database file and its WAL made immutable (``chattr +i``: root ignores plain file modes).

    Not the shared-memory index: SQLite maps it, and an immutable mapping ends the process with SIGBUS.
    """
    files = [path, path.with_name(path.name + "-wal")]
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("making the file unwritable under a running poller needs root and chattr")
    made = subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True, text=True)
    try:
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {made.stderr.strip()}")
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], capture_output=True)


@sqlite_only
def test_a_database_file_made_unwritable_under_the_poller_holds_the_answers_until_it_is_writable() -> None:
    with fake_upstream() as upstream, processes() as start:
        poller = start_loop(start, upstream)
        wait_until(lambda: ok_polls() == 2, 10, "the first round stored")
        with unwritable_file(Path(connection.settings_dict["NAME"])):
            poller.wait_for_line(REFUSED, timeout=15, stream="stderr")
            time.sleep(12)
            assert poller.popen.poll() is None, poller.output
            assert ok_polls() == 2
        poller.wait_for_line(BACK, timeout=35, stream="stderr")
        wait_until(lambda: PollAttempt.objects.filter(outcome=Outcome.STORAGE_ERROR).count() == 2, 5, "outage recorded")
        assert stop(poller) < 2

    assert_clean(poller)
    assert_everything_fetched_was_stored(upstream)
    # What the database said first, and what it said once the poller opened the file anew (read-only to it).
    message = PollAttempt.objects.filter(outcome=Outcome.STORAGE_ERROR).first().message
    assert "(disk I/O error; then attempt to write a readonly database)" in message, message


@contextmanager
def small_disk(megabytes: int) -> Iterator[Path]:
    """A tmpfs of its own (root only: skipped where mounting is not allowed)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("filling a disk needs root to mount a small tmpfs")
    place = Path(tempfile.mkdtemp(prefix="syntrack-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(place)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        place.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield place
    finally:
        subprocess.run(["umount", "-l", str(place)], capture_output=True)
        place.rmdir()


def test_a_full_disk_holds_the_answers_until_space_is_freed() -> None:
    """On a SQLite file of its own, whichever database the suite runs on."""
    with small_disk(24) as disk, fake_upstream() as upstream, processes() as start:
        env = poller_env(upstream, SYNTRACK_DB_PATH=str(disk / "syntrack.db"), DATABASE_URL="")
        migrated = run_manage("migrate", "--no-input", env=env, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        poller = start_loop(start, upstream, env)
        db = sqlite3.connect(disk / "syntrack.db")
        count = lambda: db.execute("SELECT count(*) FROM quotas_pollattempt WHERE outcome = 'ok'").fetchone()[0]  # noqa: E731
        wait_until(lambda: count() == 2, 10, "the first round stored")

        ballast = disk / "ballast"
        subprocess.run(["dd", "if=/dev/zero", f"of={ballast}", "bs=1M", "count=64"], capture_output=True)
        poller.wait_for_line(REFUSED, timeout=25, stream="stderr")
        assert "database or disk is full" in poller.stderr
        time.sleep(2)
        assert poller.popen.poll() is None, poller.output
        ballast.unlink()
        poller.wait_for_line(BACK, timeout=35, stream="stderr")
        stop(poller)
        served = upstream.state.synthetic_calls + upstream.state.zai_calls
        stored = count()
        outages = db.execute("SELECT message FROM quotas_pollattempt WHERE outcome = 'storage_error'").fetchall()
        db.close()

    assert_clean(poller)
    assert stored == served
    assert len(outages) == 2 and all("database or disk is full" in m for (m,) in outages), outages


# --- PostgreSQL -----------------------------------------------------------------------------------------


def pg_admin():
    """A connection of the test's own, outside Django's (which the test's assertions use)."""
    import psycopg

    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or None,
        autocommit=True,
    )


@postgresql_only
def test_a_table_lock_held_20_s_loses_no_answer_and_blames_no_upstream() -> None:
    table = PollAttempt._meta.db_table
    with fake_upstream() as upstream, processes() as start, pg_admin() as admin:
        poller = start_loop(start, upstream)
        wait_until(lambda: ok_polls() == 2, 10, "the first round stored")
        with admin.transaction():
            admin.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            poller.wait_for_line(REFUSED, timeout=15, stream="stderr")
            time.sleep(20)
            assert poller.popen.poll() is None, poller.output
        poller.wait_for_line(BACK, timeout=35, stream="stderr")
        wait_until(lambda: PollAttempt.objects.filter(outcome=Outcome.STORAGE_ERROR).count() == 2, 5, "outage recorded")
        assert stop(poller) < 2

    assert_clean(poller)
    assert_everything_fetched_was_stored(upstream)
    assert "lock timeout" in PollAttempt.objects.filter(outcome=Outcome.STORAGE_ERROR).first().message


@postgresql_only
def test_a_database_turned_read_only_under_the_poller_holds_the_answers_until_it_is_writable() -> None:
    name = connection.settings_dict["NAME"]
    with fake_upstream() as upstream, processes() as start, pg_admin() as admin:
        poller = start_loop(start, upstream)
        wait_until(lambda: ok_polls() == 2, 10, "the first round stored")
        # As a failover to a standby would: the poller's connection drops, the new one is read-only.
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (ours,) = cursor.fetchone()
            # The poller's working connection; not the one holding its advisory poll lock, nor the test's.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                " AND pid NOT IN (pg_backend_pid(), %s)"
                " AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')",
                [name, ours],
            )
            poller.wait_for_line(REFUSED, timeout=25, stream="stderr")
            time.sleep(5)
            assert poller.popen.poll() is None, poller.output
        finally:
            admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        poller.wait_for_line(BACK, timeout=45, stream="stderr")
        assert stop(poller) < 2

    assert_clean(poller)
    assert_everything_fetched_was_stored(upstream)


# --- killed in the middle of a poll ---------------------------------------------------------------------


@postgresql_only
def test_a_poller_killed_inside_its_write_transaction_leaves_no_partial_snapshot() -> None:
    """SIGKILL while the poll's transaction has written its snapshot and waits to write the readings."""
    name = connection.settings_dict["NAME"]
    readings = QuotaReading._meta.db_table
    with fake_upstream() as upstream, processes() as start, pg_admin() as admin, pg_admin() as watcher:
        poller = start_loop(start, upstream)
        wait_until(lambda: ok_polls() == 2, 10, "the first round stored")
        with admin.transaction():
            admin.execute(f'LOCK TABLE "{readings}" IN ACCESS EXCLUSIVE MODE')
            deadline = time.monotonic() + 15
            # A backend that has written (it has a transaction id) and waits for our lock: the poller,
            # half-way through the poll. It waits a second at most (its lock_timeout): look often, from
            # outside the locking transaction (inside it, pg_stat_activity would stay as first read).
            while not watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
                " AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
                [name],
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "the poller never reached its write"
                time.sleep(0.01)
            poller.kill()
        orphans = list(PollSession.objects.filter(ended_at__isnull=True))
        assert len(orphans) == 2
        assert_restart_recovers(start, upstream, orphans)
    assert_nothing_half_written()
