"""Pollers on databases of their own, for quotas/tests/test_upstream_faults.py.

Each run's poller gets an SQLite file copied from one migrated template: the
single-poller lock is per database, so the runs go side by side. What a poller
stored is read back with ``sqlite3`` (read-only), not through this process's
Django connection, which may be PostgreSQL and never sees these files.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import zlib
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from quotas.tests.helpers import SYNTHETIC_KEY, ZAI_KEY, base_env, run_manage

KEYS = {"synthetic": SYNTHETIC_KEY, "zai": ZAI_KEY}


def migrated_template(folder: Path) -> Path:
    """An empty, migrated SQLite database in ``folder``, to copy for each run."""
    template = folder / "template.db"
    done = run_manage("migrate", "--noinput", "-v0", env=sqlite_env(template), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return template


def copy_database(template: Path, path: Path) -> None:
    # The backup API copies a consistent database whatever state its WAL is in.
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as copy:
        source.backup(copy)


def sqlite_env(path: Path, **overrides: str) -> dict[str, str]:
    """The hermetic environment of a process on the SQLite file ``path`` (DATABASE_URL empty)."""
    return base_env(SYNTRACK_DB_PATH=str(path), DATABASE_URL="", **overrides)


def poller_env(path: Path, urls: dict[str, str]) -> dict[str, str]:
    """Both providers configured, each against its base URL in ``urls``."""
    return sqlite_env(
        path,
        SYNTHETIC_API_KEY=SYNTHETIC_KEY,
        SYNTHETIC_BASE_URL=urls["synthetic"],
        ZAI_API_KEY=ZAI_KEY,
        ZAI_BASE_URL=f"{urls['zai']}/api",
    )


def free_port() -> int:
    """A port nothing listens on (until something is started on it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Attempt:
    id: int
    provider: str
    at: float  # a wall-clock timestamp, as time.time() gives
    outcome: str
    drift: bool
    message: str
    snapshot_id: int | None


@dataclass
class Snapshot:
    id: int
    provider: str
    usable: bool
    raw: bytes | None
    drift_notes: list[str]
    readings: list[dict] = field(default_factory=list)


@dataclass
class Stored:
    """What one poller's database holds: attempts per provider (in order), snapshots with their readings."""

    attempts: dict[str, list[Attempt]]
    snapshots: dict[int, Snapshot]


def _timestamp(text: str) -> float:
    # Django keeps aware datetimes in SQLite as UTC text without an offset.
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def attempt_count(path: Path, provider: str) -> int:
    with closing(_connect(path)) as db:
        return db.execute("SELECT count(*) FROM quotas_pollattempt WHERE provider = ?", (provider,)).fetchone()[0]


def read_stored(path: Path) -> Stored:
    with closing(_connect(path)) as db:
        attempts: dict[str, list[Attempt]] = {"synthetic": [], "zai": []}
        rows = db.execute(
            "SELECT id, provider, at, outcome, drift, message, snapshot_id FROM quotas_pollattempt ORDER BY id"
        )
        for id_, provider, at, outcome, drift, message, snapshot_id in rows:
            attempts.setdefault(provider, []).append(
                Attempt(id_, provider, _timestamp(at), outcome, bool(drift), message, snapshot_id)
            )
        snapshots = {}
        for id_, provider, usable, raw, notes in db.execute(
            "SELECT id, provider, usable, raw, drift_notes FROM quotas_snapshot"
        ):
            body = zlib.decompress(raw) if raw is not None else None
            snapshots[id_] = Snapshot(id_, provider, bool(usable), body, json.loads(notes))
        columns = ("snapshot_id", "key", "used", "limit", "remaining", "percent")
        readings = db.execute('SELECT snapshot_id, key, used, "limit", remaining, percent FROM quotas_quotareading')
        for row in readings:
            reading = dict(zip(columns, row, strict=True))
            snapshots[reading["snapshot_id"]].readings.append(reading)
    return Stored(attempts, snapshots)
