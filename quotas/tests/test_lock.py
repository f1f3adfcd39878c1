"""The single-poller lock: a file lock beside SQLite, an advisory lock on PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, connections
from django.db.utils import load_backend

from quotas.locking import ADVISORY_KEY, LockHeld, PollLock, lock_path, poller_holder
from quotas.tests.helpers import base_env, database_env, processes

pytestmark = pytest.mark.django_db(transaction=True)

HOLDER_SCRIPT = """
import time
import django
django.setup()
from quotas.locking import PollLock
lock = PollLock("lock-holder")
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""

sqlite_only = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="the file lock is SQLite's")
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the advisory lock is PostgreSQL's")


def start_holder(start):
    holder = start([sys.executable, "-c", HOLDER_SCRIPT], base_env(**database_env()))
    holder.wait_for_line("locked", stream="stdout")
    return holder


def test_it_acquires_and_releases() -> None:
    lock = PollLock("test", wait=0)
    assert lock.acquire() is True
    lock.release()

    again = PollLock("test", wait=0)
    assert again.acquire() is True
    again.release()


def test_it_works_as_a_context_manager() -> None:
    with PollLock("first", wait=0), pytest.raises(LockHeld):
        PollLock("second", wait=0).acquire()
    with PollLock("third", wait=0):
        pass


def test_a_held_lock_names_its_holder() -> None:
    with PollLock("the first poller", wait=0), pytest.raises(LockHeld) as info:
        PollLock("second", wait=0).acquire()

    message = str(info.value)
    assert "another poller is running against this database" in message
    assert "the first poller" in message
    assert f"pid {os.getpid()}" in message


def test_it_waits_for_the_holder_before_giving_up() -> None:
    with PollLock("holder", wait=0):
        started = time.monotonic()
        with pytest.raises(LockHeld):
            PollLock("waiter", wait=0.5).acquire()
        assert 0.4 <= time.monotonic() - started < 2.0


def test_it_stops_waiting_when_asked() -> None:
    asked = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) >= 2

    with PollLock("holder", wait=0):
        started = time.monotonic()
        assert PollLock("waiter", wait=30).acquire(stop=stop) is False
        assert time.monotonic() - started < 2.0


def test_a_lock_held_by_another_process_raises_lock_held_naming_it() -> None:
    with processes() as start:
        holder = start_holder(start)

        with pytest.raises(LockHeld) as info:
            PollLock("test", wait=0.3).acquire()

        assert "lock-holder" in str(info.value)
        assert f"pid {holder.pid}" in str(info.value)


def test_the_lock_of_a_killed_process_is_free_at_once() -> None:
    with processes() as start:
        holder = start_holder(start)
        holder.kill()

        lock = PollLock("successor", wait=0)
        assert lock.acquire() is True
        lock.release()


def test_a_failed_attempt_leaves_nothing_open() -> None:
    with PollLock("holder", wait=0):
        waiter = PollLock("waiter", wait=0)
        with pytest.raises(LockHeld):
            waiter.acquire()
        assert waiter._fd is None
        assert waiter._pg is None


# poller_holder(): is a poller running?


def test_no_holder_while_the_lock_is_free() -> None:
    assert poller_holder() is None
    with PollLock("brief", wait=0):
        pass
    assert poller_holder() is None


def test_the_holder_in_this_process_is_named() -> None:
    with PollLock("manage.py poll", wait=0):
        holder = poller_holder()
    assert holder is not None
    assert "manage.py poll" in holder
    assert f"pid {os.getpid()}" in holder


def test_a_holder_process_is_named_until_it_dies() -> None:
    with processes() as start:
        holder = start_holder(start)

        named = poller_holder()
        assert named is not None
        assert "lock-holder" in named
        assert f"pid {holder.pid}" in named
        # Asking took nothing from the holder: it still keeps others out.
        with pytest.raises(LockHeld):
            PollLock("second", wait=0).acquire()

        holder.kill()
        assert poller_holder() is None


def test_asking_leaves_the_lock_free_for_the_next_poller() -> None:
    for _ in range(3):
        assert poller_holder() is None
    lock = PollLock("poller", wait=0)
    assert lock.acquire() is True
    lock.release()


@sqlite_only
def test_on_sqlite_asking_never_creates_the_lock_file() -> None:
    path = lock_path()
    path.unlink(missing_ok=True)
    assert poller_holder() is None
    assert not path.exists()


@sqlite_only
def test_on_sqlite_concurrent_questions_do_not_see_each_other_as_a_poller() -> None:
    # Two web workers asking at the same instant share the shared flock.
    with PollLock("a poller that has gone", wait=0):
        pass
    fd = os.open(lock_path(), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        assert poller_holder() is None
    finally:
        os.close(fd)


@postgres_only
def test_on_postgresql_asking_reads_pg_locks_without_locking() -> None:
    with connection.cursor() as cur:
        with PollLock("pg poller", wait=0):
            assert "pg poller" in (poller_holder() or "")
        assert poller_holder() is None
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cur.fetchone()[0] == 0


@sqlite_only
def test_on_sqlite_it_is_a_file_lock_beside_the_database() -> None:
    path = Path(f"{connection.settings_dict['NAME']}.poll.lock")
    with PollLock("file holder", wait=0):
        assert path.exists()
        assert "file holder" in path.read_text()
        assert f"pid {os.getpid()}" in path.read_text()
        assert path.stat().st_mode & 0o777 == 0o600


@postgres_only
def test_on_postgresql_it_is_an_advisory_lock_on_a_connection_of_its_own() -> None:
    def advisory_holders() -> list[int]:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                [(ADVISORY_KEY >> 32) & 0xFFFFFFFF, ADVISORY_KEY & 0xFFFFFFFF],
            )
            return [row[0] for row in cur.fetchall()]

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        own_pid = cur.fetchone()[0]

    with PollLock("pg holder", wait=0) as lock:
        holders = advisory_holders()
        assert len(holders) == 1
        assert holders[0] != own_pid  # not the ORM connection, which the loop may close
        assert lock._pg is not None
        # Closing every ORM connection keeps the lock.
        connections.close_all()
        assert len(advisory_holders()) == 1
    assert advisory_holders() == []


@postgres_only
def test_on_postgresql_a_poller_of_another_database_does_not_count() -> None:
    elsewhere = {**connection.settings_dict, "NAME": "postgres"}
    other = load_backend(elsewhere["ENGINE"]).DatabaseWrapper(elsewhere, "elsewhere")
    try:
        with other.cursor() as cur:
            cur.execute("SELECT set_config('application_name', 'poller of another database', false)")
            cur.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
        assert poller_holder() is None
        with PollLock("this database's poller", wait=0), pytest.raises(LockHeld) as info:
            assert "this database's poller" in (poller_holder() or "")
            PollLock("second", wait=0).acquire()
        assert "this database's poller" in str(info.value)
        assert "another database" not in str(info.value)
    finally:
        other.close()
