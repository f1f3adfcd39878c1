"""One poller per database, with a lock that dies with its holder.

SQLite: ``flock`` on a file beside the database, which the kernel releases
when the holding process exits for any reason. PostgreSQL: a session-level
advisory lock on a dedicated connection, which the server releases when that
connection drops.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.backends.utils import CursorWrapper

logger = logging.getLogger("syntrack.poll")

# "SYNTRACK" in ASCII: the advisory-lock key shared by every SynTrack poller.
ADVISORY_KEY = 0x53594E545241434B
# How long a newcomer waits for a holder to go: a predecessor being stopped
# exits within 2 s, and a refusal must come within 5 s of starting.
WAIT_SECONDS = 2.0


class LockHeld(Exception):
    """Another poller holds the lock; the message names it."""


def holder_description(role: str) -> str:
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{role} (pid {os.getpid()} on {socket.gethostname()}, since {started})"


class PollLock:
    """Context manager: ``with PollLock("manage.py poll"): …``."""

    def __init__(self, role: str, wait: float | None = None) -> None:
        self.role = role
        self.wait = WAIT_SECONDS if wait is None else wait
        self._fd: int | None = None
        self._pg = None
        self._pg_held = False

    def __enter__(self) -> PollLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, stop: Callable[[], bool] | None = None) -> bool:
        """Take the lock, waiting up to ``wait`` seconds for a holder to go.

        Returns False if ``stop()`` turned true while waiting; raises
        ``LockHeld``, naming the holder, when the wait is over.
        """
        deadline = time.monotonic() + self.wait
        while True:
            try:
                holder = self._try_acquire()
            except BaseException:
                self.release()
                raise
            if holder is None:
                return True
            stopped = stop is not None and stop()
            if stopped or time.monotonic() >= deadline:
                # Not ours: drop the PostgreSQL connection opened to ask.
                self.release()
                if stopped:
                    return False
                raise LockHeld(f"another poller is running against this database: {holder}")
            time.sleep(0.2)

    def _try_acquire(self) -> str | None:
        if connections["default"].vendor == "postgresql":
            return self._try_postgres()
        return self._try_file()

    # SQLite (and anything else): a file lock beside the database.
    def _try_file(self) -> str | None:
        fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _file_holder(fd)
            os.close(fd)
            return holder
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder_description(self.role).encode() + b"\n", 0)
        self._fd = fd
        return None

    # PostgreSQL: a session advisory lock on a connection of its own, so the
    # poll loop may close and reopen its ORM connection freely.
    def _try_postgres(self) -> str | None:
        if self._pg is None:
            self._pg = connections.create_connection("default")
            self._pg.ensure_connection()
            with self._pg.cursor() as cur:
                cur.execute("SELECT set_config('application_name', %s, false)", [holder_description(self.role)[:63]])
        with self._pg.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
            if cur.fetchone()[0]:
                self._pg_held = True
                return None
            return _postgres_holder(cur) or "a process of another client"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
        if self._pg is not None:
            if self._pg_held:
                # The server frees a closed session's locks a moment later;
                # unlocking first makes the lock free when release() returns,
                # so poller_holder() is truthful at once.
                with suppress(DatabaseError), self._pg.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
                self._pg_held = False
            self._pg.close()  # ends the session, and with it the advisory lock
            self._pg = None


def lock_path() -> Path:
    db = connections["default"]
    name = db.settings_dict["NAME"] if db.vendor == "sqlite" else settings.SYNTRACK_DB_PATH
    return Path(f"{name}.poll.lock")


def _file_holder(fd: int) -> str:
    return os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "unknown process"


def _postgres_holder(cursor: CursorWrapper) -> str | None:
    """The holder of the advisory lock in this database: its application name, "" if unnamed, None if free."""
    # Advisory locks belong to one database: a poller of another database on
    # the same server holds the same key without conflict.
    cursor.execute(
        "SELECT coalesce(a.application_name, '') FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
        "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [(ADVISORY_KEY >> 32) & 0xFFFFFFFF, ADVISORY_KEY & 0xFFFFFFFF],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def poller_holder() -> str | None:
    """Who holds the poll lock right now (a running ``poll``, loop or ``--once``), or None.

    A fact, not a guess from recent polls: the lock is freed the moment its
    holder dies. The probe never takes the lock from, or blocks, a poller:
    on SQLite it takes a *shared* flock for an instant (a poller trying to
    start retries for 2 s, and concurrent probes share it); on PostgreSQL it
    only reads ``pg_locks``.
    """
    if connections["default"].vendor == "postgresql":
        with connections["default"].cursor() as cur:
            holder = _postgres_holder(cur)
        return None if holder is None else holder or "a process of another client"
    path = lock_path()
    try:
        # Read-only and never created: no lock file means no poller ever ran here.
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as e:
        # A lock file we may not open (the poller runs as another user) cannot
        # tell; "running" is the failure that costs least: a request waits.
        logger.warning("cannot tell whether a poller runs: %s: %s", path, e.strerror)
        return f"unknown ({path} cannot be opened: {e.strerror})"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _file_holder(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
