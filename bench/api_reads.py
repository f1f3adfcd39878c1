"""How long the read endpoints' bodies take over a long history of both providers.

    .venv/bin/python bench/api_reads.py --days 365 --db /tmp/year.db    # build once and time
    .venv/bin/python bench/api_reads.py --db /tmp/year.db               # time an existing file again
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/syntrack_bench .venv/bin/python bench/api_reads.py --days 365

``--days`` fills the database with ``manage.py demo`` first (both providers,
as the configured retention leaves them); without it the database is timed
as it is, at its newest poll. Times each body in-process (``quotas.reports``,
``insights``, ``numbers``) and prints median / p95 and the queries it ran. The
CPU time (SQLite runs in the process) is what a loaded machine disturbs least. ``make bench``
(issue 7) measures the same over HTTP; this one is for profiling.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROVIDERS = ("synthetic", "zai")


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


def bodies(now: datetime) -> dict[str, object]:
    from quotas import numbers, reports
    from quotas.insights import insights

    calls: dict[str, object] = {}
    for provider in PROVIDERS:
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
    if args.days:
        from django.core.management import call_command

        began = time.perf_counter()
        call_command("demo", "--days", str(args.days), "--interval", str(args.interval), "--force")
        print(f"filled in {time.perf_counter() - began:.0f} s")
    from quotas.models import Snapshot

    newest = Snapshot.objects.order_by("-captured_at").values_list("captured_at", flat=True).first()
    if newest is None:
        raise SystemExit("the database holds no polls: give --days")
    end = newest + timedelta(seconds=30)
    if args.db is not None and args.db.exists():
        print(f"SQLite file {args.db.stat().st_size / 2**20:.0f} MiB")
    measure(end, args.repeats, args.only)


if __name__ == "__main__":
    main()
