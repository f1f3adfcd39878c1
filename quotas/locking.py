"""One poller per database, with a lock that dies with its holder.

SQLite: ``flock`` on a file beside the database, which the kernel releases
when the holding process exits for any reason. PostgreSQL: a session-level
advisory lock on a dedicated connection, which the server releases when that
connection drops.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connections

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
        db = connections["default"]
        name = db.settings_dict["NAME"] if db.vendor == "sqlite" else settings.SYNTRACK_DB_PATH
        path = Path(f"{name}.poll.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "unknown process"
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
                return None
            # Advisory locks belong to one database: a poller of another
            # database on the same server holds the same key without conflict.
            cur.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
                "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                [(ADVISORY_KEY >> 32) & 0xFFFFFFFF, ADVISORY_KEY & 0xFFFFFFFF],
            )
            row = cur.fetchone()
        return (row[0] if row and row[0] else None) or "a process of another client"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
        if self._pg is not None:
            self._pg.close()  # ends the session, and with it the advisory lock
            self._pg = None
