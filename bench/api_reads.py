"""How long the read endpoints' bodies take over a long history of both providers.

    .venv/bin/python bench/api_reads.py --days 365 --db /tmp/year.db    # build once and time
    .venv/bin/python bench/api_reads.py --db /tmp/year.db               # time an existing file again
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/syntrack_bench .venv/bin/python bench/api_reads.py --days 365

Fills the database with raw inserts (no poller, no HTTP): 60-s polls of
Synthetic (five quotas: three that reset, two rolling windows) and Z.ai
(tokens 5 h and weekly, tool calls monthly with a per-tool breakdown), their
reset cycles as cycle tracking would have built them, one poll attempt per
poll with a few failures, a two-hour outage and a new poll session every
week; then ``rollups.rebuild()`` (most of the time a year takes: over ten
minutes). Then times each body in-process (``quotas.reports``, ``insights``,
``numbers``) and prints median / p95 and the queries it ran. The CPU time (SQLite
runs in the process) is what a loaded machine disturbs least. ``make bench``
(issue 7) measures the same over HTTP; this one is for profiling.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = 86400
# key, label, kind, unit, limit, reset period in seconds (None: rolling), mean use per poll
QUOTAS = {
    "synthetic": [
        ("subscription", "Subscription", "reset", "requests", 1350.0, 5 * 3600, 0.4),
        ("search_hourly", "Search (hourly)", "reset", "requests", 250.0, 3600, 0.05),
        ("free_tool_calls", "Tool calls", "reset", "calls", 500.0, DAY, 0.02),
        ("rolling_5h", "Requests (5h rolling)", "rolling", "requests", 500.0, None, 0.3),
        ("weekly_credits", "Credits (weekly)", "rolling", "usd", 24.0, None, 0.0002),
    ],
    "zai": [
        ("tokens_5h", "Tokens (5h)", "reset", "tokens", 80e6, 5 * 3600, 20_000.0),
        ("tokens_weekly", "Tokens (weekly)", "reset", "tokens", 800e6, 7 * DAY, 20_000.0),
        ("time_monthly", "Tool calls (monthly)", "reset", "calls", 1000.0, 30 * DAY, 0.02),
    ],
}
TOOLS = (("search-prime", 0.6), ("web-reader", 0.3), ("zread", 0.1))
OUTAGE = 2 * 3600


def setup(db: Path | None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syntrack_site.settings")
    os.environ.update(
        SECRET_KEY="bench-secret-key-0123456789-0123456789-abcdef",
        SYNTRACK_LOG_LEVEL="warn",
        SYNTRACK_POLL_INTERVAL="60",
        SYNTRACK_ADMIN_PASS=secrets.token_urlsafe(),
    )
    if db is not None:
        os.environ["SYNTRACK_DB_PATH"] = str(db)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class Writer:
    """Rows of one table, inserted in batches with explicit ids."""

    def __init__(self, table: str, columns: list[str], casts: dict[str, str] | None = None) -> None:
        from django.db import connection

        casts = casts or {}
        marks = ", ".join(f"%s{casts.get(c, '')}" for c in columns)
        self.sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        self.rows: list[tuple] = []
        self.cursor = connection.cursor()
        self.count = 0

    def add(self, *row: object) -> None:
        self.rows.append(row)
        if len(self.rows) >= 20_000:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.cursor.executemany(self.sql, self.rows)
            self.count += len(self.rows)
            self.rows = []


def generate(days: int, interval: int, end: datetime) -> dict[str, int]:
    """Both providers' polls over ``days`` up to ``end``, written in one transaction."""
    from django.db import connection, transaction

    ops = connection.ops
    postgres = connection.vendor == "postgresql"
    json_cast = {"details": "::jsonb", "drift_notes": "::jsonb", "quotas": "::jsonb"} if postgres else {}

    def when(value: datetime) -> object:
        return ops.adapt_datetimefield_value(value)

    snapshots = Writer(
        "quotas_snapshot", ["id", "provider", "captured_at", "plan", "drift", "drift_notes", "usable"], json_cast
    )
    readings = Writer(
        "quotas_quotareading",
        [
            "id", "snapshot_id", "provider", "captured_at", "cycle_id", "key", "label", "kind", "unit",
            "used", '"limit"', "remaining", "percent", "resets_at", "details",
        ],
        json_cast,
    )  # fmt: skip
    attempts = Writer(
        "quotas_pollattempt",
        ["provider", "at", "outcome", "drift", "latency_ms", "message", "session_id", "snapshot_id"],
    )
    cycle_columns = [
        "id", "provider", "quota", "unit", "started_at", "ended_at", "resets_at", '"limit"', "peak_used",
        "consumed", "readings_count", "last_used", "last_reading_at", "reported_resets_at",
    ]  # fmt: skip
    cycles = Writer("quotas_resetcycle", cycle_columns)
    sessions = Writer(
        "quotas_pollsession",
        ["id", "provider", "started_at", "ended_at", "interval_seconds", "polls_ok", "polls_failed",
         "last_success_at", "quotas"],
        json_cast,
    )  # fmt: skip
    rng = random.Random(7)
    start = end - timedelta(days=days)
    polls = days * DAY // interval
    empty = "{}"
    snapshot_id = reading_id = cycle_id = session_id = 0
    with transaction.atomic():
        for provider, quotas in QUOTAS.items():
            used = {q[0]: 0.0 for q in quotas}
            tools = dict.fromkeys((name for name, _ in TOOLS), 0.0)
            open_cycles: dict[str, list] = {}
            session: list | None = None
            for i in range(polls):
                elapsed = i * interval
                at = start + timedelta(seconds=elapsed)
                if session is None or elapsed % (7 * DAY) < interval:
                    if session is not None:
                        session[3] = when(at - timedelta(seconds=interval))
                        sessions.add(*session)
                    session_id += 1
                    session = [session_id, provider, when(at), None, interval, 0, 0, None, empty]
                outage = elapsed % (7 * DAY) >= 3 * DAY and elapsed % (7 * DAY) < 3 * DAY + OUTAGE
                if outage or rng.random() < 0.002:
                    session[6] += 1
                    attempts.add(provider, when(at), "network_error", False, None, "timed out", session_id, None)
                    continue
                snapshot_id += 1
                stamp = when(at)
                snapshots.add(snapshot_id, provider, stamp, "pro" if provider == "zai" else "", False, "[]", True)
                attempts.add(provider, stamp, "ok", False, 180, f"{len(quotas)} quotas", session_id, snapshot_id)
                session[5] += 1
                session[7] = stamp
                for key, label, kind, unit, limit, period, mean in quotas:
                    resets_at = None
                    reset = False
                    if period is not None:
                        boundary = start + timedelta(seconds=(elapsed // period + 1) * period)
                        resets_at = boundary
                        reset = elapsed % period < interval and i > 0
                    if reset:
                        used[key] = 0.0
                        if key == "time_monthly":
                            tools = dict.fromkeys(tools, 0.0)
                    if kind == "rolling":
                        used[key] = max(used[key] + rng.uniform(-1.2, 1.25) * mean * 2, 0.0)
                    elif key == "time_monthly":
                        if rng.random() < mean:
                            name = rng.choices([n for n, _ in TOOLS], [s for _, s in TOOLS])[0]
                            tools[name] += 1
                            used[key] += 1
                    elif rng.random() < 0.3:
                        used[key] += rng.expovariate(1 / mean) * 3
                    level = round(min(used[key], limit), 3)
                    details = empty
                    if key == "time_monthly":
                        details = json.dumps({"tools": [{"name": n, "used": u} for n, u in tools.items()]})
                    cycle = None
                    if kind == "reset":
                        current = open_cycles.get(key)
                        if current is not None and reset:
                            current[5] = when(at - timedelta(seconds=elapsed % period))
                            current[12] = when(current[12])
                            cycles.add(*current)
                            current = None
                        if current is None:
                            cycle_id += 1
                            began = at - timedelta(seconds=elapsed % period) if i > 0 else at
                            consumed = level if i > 0 else 0.0
                            current = [cycle_id, provider, key, unit, when(began), None, when(resets_at), limit,
                                       level, consumed, 0, level, at, when(resets_at)]  # fmt: skip
                            open_cycles[key] = current
                        else:
                            current[9] += max(level - current[11], 0.0)
                            current[8] = max(current[8], level)
                        current[10] += 1
                        current[11] = level
                        current[12] = at
                        cycle = current[0]
                    reading_id += 1
                    readings.add(
                        reading_id, snapshot_id, provider, stamp, cycle, key, label, kind, unit, level, limit,
                        max(limit - level, 0.0), level / limit * 100, when(resets_at) if resets_at else None, details,
                    )  # fmt: skip
            for current in open_cycles.values():
                current[12] = when(current[12])
                cycles.add(*current)
            sessions.add(*session)
        for writer in (cycles, sessions, snapshots, readings, attempts):
            writer.flush()
    if postgres:
        with connection.cursor() as cursor:
            for table in ("quotas_snapshot", "quotas_quotareading", "quotas_resetcycle", "quotas_pollsession"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
            cursor.execute("ANALYZE")
    return {"snapshots": snapshots.count, "readings": readings.count, "cycles": cycles.count}


def bodies(now: datetime) -> dict[str, object]:
    from quotas import numbers, reports
    from quotas.insights import insights

    calls: dict[str, object] = {}
    for provider in QUOTAS:
        calls[f"current {provider}"] = lambda p=provider: numbers.current(p, now=now)
        calls[f"summary {provider}"] = lambda p=provider: reports.summary(p)
        calls[f"cycles {provider}"] = lambda p=provider: (reports.quota_keys([p]), reports.cycles(p, None, 50, now))
        for range_key in ("1d", "7d", "30d"):
            calls[f"insights {provider} {range_key}"] = lambda p=provider, r=range_key: insights(p, r, now=now)
    calls["sessions"] = lambda: reports.sessions(None, 50, now)
    calls["polls"] = lambda: reports.polls(None, 50)
    return calls


def measure(now: datetime, repeats: int, only: str | None) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for name, call in bodies(now).items():
        if only and only not in name:
            continue
        call()  # warm up
        times, cpu = [], []
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as queries:
                began, began_cpu = time.perf_counter(), time.process_time()
                call()
                times.append((time.perf_counter() - began) * 1000)
                cpu.append((time.process_time() - began_cpu) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]), default=None)
        print(
            f"  {name:<24} median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms"
            f"  CPU median {statistics.median(cpu):7.1f} ms  queries {len(queries):2}"
            + (f"  slowest {float(slowest['time']) * 1000:6.1f} ms: {slowest['sql'][:90]}" if slowest else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=0, help="fill this many days first (0: use the database as is)")
    parser.add_argument("--interval", type=int, default=60, help="seconds between polls")
    parser.add_argument("--db", type=Path, help="SQLite file (default: SYNTRACK_DB_PATH / DATABASE_URL)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", help="time only the bodies whose name contains this")
    args = parser.parse_args()

    setup(args.db)
    from django.conf import settings

    settings.DEBUG = False
    end = datetime(2026, 3, 1, tzinfo=UTC)
    if args.days:
        began = time.perf_counter()
        counts = generate(args.days, args.interval, end)
        from quotas import rollups

        counts["rollups"] = rollups.rebuild()
        print(f"{args.days} days of {args.interval}-s polls: {counts} in {time.perf_counter() - began:.0f} s")
    if args.db is not None and args.db.exists():
        print(f"SQLite file {args.db.stat().st_size / 2**20:.0f} MiB")
    measure(end, args.repeats, args.only)


if __name__ == "__main__":
    main()
