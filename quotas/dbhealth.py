"""Whether a write would get through now, for ``GET /api/status``: cheap, and nothing is ever written.

- SQLite: ``BEGIN IMMEDIATE`` with a short busy timeout, a DELETE that
  matches no row, then ROLLBACK. It takes the write lock every writer
  needs, so a connection holding it (a stuck transaction, a backup with an
  exclusive lock) or a read-only file shows up here, not as a request that
  waits 20 s and fails.
- PostgreSQL: a transaction with short lock and statement timeouts takes
  ROW EXCLUSIVE on the poll attempts table (what every poll's INSERT takes:
  it waits only behind DDL, ``LOCK TABLE``, ``VACUUM FULL``), asks whether
  the server takes writes at all (a standby, ``default_transaction_read_only``),
  and rolls back.

Both run on the driver's connection, as Django's own transaction control
does: Django's query log (and the one-query budget of the health check)
sees only the read.
"""

from __future__ import annotations

import sqlite3

from django.db import connection

from quotas.models import PollAttempt

WRITE_PROBE_SECONDS = 1.0
BUSY = "database busy: writes are blocked"
READ_ONLY = "database is read-only"
UNWRITABLE = "database cannot be written"


def write_problem() -> str | None:
    """None when a write would get the database's lock within WRITE_PROBE_SECONDS, else what stops it."""
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        return _sqlite(connection.connection)
    if connection.vendor == "postgresql":
        return _postgresql(connection.connection)
    return None  # no other backend is supported (syntrack_site.config)


def _sqlite(raw: sqlite3.Connection) -> str | None:
    if raw.in_transaction:
        # Only inside a transaction of this connection (ATOMIC_REQUESTS, tests): it began
        # IMMEDIATE (syntrack_site.config), so the write lock is already ours.
        return None
    table = connection.ops.quote_name(PollAttempt._meta.db_table)
    (previous,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute(f"PRAGMA busy_timeout = {int(WRITE_PROBE_SECONDS * 1000)}")
    try:
        raw.execute("BEGIN IMMEDIATE")
        try:
            # Deletes nothing, ever; but a read-only file or connection refuses it (BEGIN does not).
            raw.execute(f"DELETE FROM {table} WHERE 0")
        finally:
            raw.execute("ROLLBACK")
    except sqlite3.Error as e:
        if "readonly" in str(e):  # "attempt to write a readonly database"
            return READ_ONLY
        if "locked" in str(e):  # "database is locked"
            return BUSY
        return UNWRITABLE  # disk I/O error and the like
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(previous)}")
    return None


def _postgresql(raw: object) -> str | None:
    import psycopg

    table = connection.ops.quote_name(PollAttempt._meta.db_table)
    milliseconds = int(WRITE_PROBE_SECONDS * 1000)
    try:
        # A savepoint when a transaction is open already (ATOMIC_REQUESTS, tests); always rolled back.
        with raw.transaction(force_rollback=True):
            raw.execute(
                f"SET LOCAL lock_timeout = {milliseconds}; SET LOCAL statement_timeout = {2 * milliseconds}; "
                f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE"
            )
            (read_only,) = raw.execute(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
            ).fetchone()
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
        return BUSY
    except psycopg.errors.ReadOnlySqlTransaction:
        return READ_ONLY
    except psycopg.Error:
        return UNWRITABLE
    return READ_ONLY if read_only else None
