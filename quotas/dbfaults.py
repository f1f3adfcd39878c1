"""Database faults told apart from bugs: a lock held too long, a read-only or full disk, a lost server.

The API answers a fault with a 503 (syntrack_site.api_errors); the poller
keeps what it fetched and writes it once the database takes writes again
(quotas.backlog). A bug (a value too long for its column, a constraint
broken) is no fault of the database: ``kind()`` says None for it.

The poller also waits less for a lock than a web request does: a write it
cannot make within POLLER_LOCK_WAIT is retried by the poll loop, between
waits that notice a signal, rather than inside SQLite's busy handler or a
PostgreSQL lock queue, where a SIGTERM is not acted on until the wait ends.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, InterfaceError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

BUSY = "busy"  # another connection holds the lock: the write gets through a moment later
UNAVAILABLE = "unavailable"  # gone, refused, read-only, disk full: not until someone acts

# PostgreSQL SQLSTATEs of a database that will take the write a moment later:
# lock_not_available (lock_timeout), query_canceled (statement_timeout),
# deadlock_detected, serialization_failure.
PG_BUSY_STATES = frozenset({"55P03", "57014", "40P01", "40001"})
# read_only_sql_transaction (a standby, default_transaction_read_only), cannot_connect_now (starting up).
PG_UNAVAILABLE_STATES = frozenset({"25006", "57P03"})
# SQLite's primary result codes for "another connection holds the lock".
SQLITE_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED

# How long a poller's write waits for another connection's lock before the poll
# loop takes over (its retries back off from quotas.backlog.RETRY_FIRST).
POLLER_LOCK_WAIT = 1.0
# At shutdown: what is left to write gets this long, so a stop stays within 2 s.
SHUTDOWN_LOCK_WAIT = 0.3


def _driver_error(exc: BaseException) -> BaseException:
    """The database driver's own exception behind Django's wrapper (Django chains it as the cause)."""
    cause = exc.__cause__
    return cause if cause is not None else exc


def kind(exc: BaseException) -> str | None:
    """BUSY, UNAVAILABLE, or None when ``exc`` is no database fault (a bug, say)."""
    if not isinstance(exc, DatabaseError):
        return None
    driver = _driver_error(exc)
    state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    if state in PG_BUSY_STATES:
        return BUSY
    if state in PG_UNAVAILABLE_STATES:
        return UNAVAILABLE
    if isinstance(driver, sqlite3.Error):
        code = getattr(driver, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in SQLITE_BUSY_CODES:
            return BUSY
        if "is locked" in str(driver):  # "database is locked", "database table is locked"
            return BUSY
    if isinstance(exc, OperationalError | InterfaceError):
        return UNAVAILABLE  # gone, refused, read-only file, disk full: not a bug of ours
    return None


def reason(exc: BaseException) -> str:
    """The fault in one line, as the database said it ("database is locked")."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def set_lock_wait(connection: BaseDatabaseWrapper, seconds: float) -> None:
    """From now on, statements on ``connection`` wait ``seconds`` at most for another connection's lock.

    The open connection is changed, and so are the options every later one is
    opened with: SQLite applies its busy timeout while it opens a connection
    too (the pragmas of syntrack_site.config), and a connection reopened after
    a fault must not wait longer than the one it replaces.
    """
    milliseconds = max(int(seconds * 1000), 1)
    options = connection.settings_dict.setdefault("OPTIONS", {})
    if connection.vendor == "sqlite":
        options["timeout"] = seconds
    elif connection.vendor == "postgresql":
        others = re.sub(r"\s*-c\s*lock_timeout=\S+", "", options.get("options", ""))
        options["options"] = f"{others} -c lock_timeout={milliseconds}".strip()
    _apply(connection, f"{milliseconds}")


@contextmanager
def lock_wait(connection: BaseDatabaseWrapper, seconds: float) -> Iterator[None]:
    """Within the block, set_lock_wait(``seconds``); after it, the waits as they were (connection and options)."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = dict(options)
    set_lock_wait(connection, seconds)
    try:
        yield
    finally:
        options.clear()
        options.update(saved)
        if connection.vendor == "sqlite":
            _apply(connection, f"{max(int(float(options.get('timeout', 5)) * 1000), 1)}")
        else:
            configured = re.search(r"-c\s*lock_timeout=(\S+)", options.get("options", ""))
            _apply(connection, configured.group(1) if configured else None)


def _apply(connection: BaseDatabaseWrapper, milliseconds: str | None) -> None:
    """Set the open connection's lock wait (None: the server's default); a closed one is left alone."""
    if connection.connection is None:
        return
    try:
        if connection.vendor == "sqlite":
            connection.connection.execute(f"PRAGMA busy_timeout = {milliseconds}")
        elif connection.vendor == "postgresql":
            with connection.connection.cursor() as cursor:
                # Session-wide: SET LOCAL would end with the transaction.
                cursor.execute("RESET lock_timeout" if milliseconds is None else f"SET lock_timeout = {milliseconds}")
    except Exception as e:  # the driver's own: a connection that broke is replaced before its next use
        if not _is_driver_error(e):
            raise


def _is_driver_error(error: Exception) -> bool:
    if isinstance(error, sqlite3.Error):
        return True
    try:
        import psycopg
    except ImportError:  # SQLite only
        return False
    return isinstance(error, psycopg.Error)
