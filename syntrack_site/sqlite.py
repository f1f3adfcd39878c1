"""WAL for every SQLite connection; incremental auto-vacuum asked for only while the file has no table.

SQLite honours ``auto_vacuum`` only before the first table is created
(quotas.retention hands freed pages back through it). Asking on every
connection, as an ``init_command`` would, is not free: the pragma takes the
write lock, so every connection a web worker or the poller opened while
another held that lock (a poll's transaction, a backup) waited for it, up to
the busy timeout, before its first read. Whether the file has a table yet is
a read, which WAL never blocks. It comes first: a file already in WAL mode
no longer takes the auto-vacuum setting.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper


def journal_and_vacuum(sender: object, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    """On each new connection (``connection_created``); the other pragmas are in syntrack_site.config."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    (tables,) = raw.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if tables == 0:
        raw.execute("PRAGMA auto_vacuum=INCREMENTAL")
    # A no-op, and lock-free, on a file already in WAL mode.
    raw.execute("PRAGMA journal_mode=WAL")
