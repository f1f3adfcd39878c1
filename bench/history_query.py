"""How long `quotas.history.history()` takes for every range over many snapshots, from readings and roll-ups.

    .venv/bin/python bench/history_query.py                 # 30 days of 60-s polls, 5 quotas
    .venv/bin/python bench/history_query.py --days 7 --interval 10
    .venv/bin/python bench/history_query.py --index         # also with a covering index (see --help)

Generates the data into a throw-away SQLite file (one snapshot per poll, five
quotas per snapshot: three that reset, two rolling windows; an outage of two
hours every week), rebuilds the roll-ups (timed), then times each range several
times (the first call with nothing remembered, then again) and prints the
medians, the number of queries, points per series and gaps:
first with 24h, 7d and 30d read from the readings (what history did before
roll-ups), then as the API answers (roll-ups).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUOTAS = [
    # key, kind, limit, reset period in seconds (None: rolling), mean use per poll
    ("subscription", "reset", 1350.0, 5 * 3600, 0.4),
    ("search_hourly", "reset", 250.0, 3600, 0.05),
    ("free_tool_calls", "reset", 500.0, 24 * 3600, 0.02),
    ("rolling_5h", "rolling", 500.0, None, 0.3),
    ("weekly_credits", "rolling", 24.0, None, 0.0002),
]


def setup(db: Path) -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="syntrack_site.settings",
        SYNTRACK_DB_PATH=str(db),
        SECRET_KEY="bench-secret-key-0123456789-0123456789-abcdef",
        SYNTRACK_LOG_LEVEL="warn",
        SYNTRACK_POLL_INTERVAL="60",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def generate(days: int, interval: int, end: datetime) -> int:
    from django.db import transaction

    from quotas.models import PollSession, QuotaReading, Snapshot

    rng = random.Random(7)
    start = end - timedelta(days=days)
    PollSession.objects.create(
        provider="synthetic", started_at=start, ended_at=None, interval_seconds=interval, polls_ok=0
    )
    used = {key: 0.0 for key, *_ in QUOTAS}
    polls = days * 86400 // interval
    step = timedelta(seconds=interval)
    batch = 20_000 // len(QUOTAS)
    written = 0
    for first in range(0, polls, batch):
        snapshots: list[Snapshot] = []
        for i in range(first, min(first + batch, polls)):
            at = start + i * step
            # a two-hour outage every week
            if (i * interval) % (7 * 86400) < 2 * 3600 and i * interval >= 7 * 86400:
                continue
            snapshots.append(Snapshot(provider="synthetic", captured_at=at, raw=None))
        with transaction.atomic():
            Snapshot.objects.bulk_create(snapshots)
            readings = []
            for snapshot in snapshots:
                elapsed = (snapshot.captured_at - start).total_seconds()
                for key, kind, limit, period, mean in QUOTAS:
                    if period is not None and elapsed % period < interval:
                        used[key] = 0.0
                    elif kind == "rolling":
                        used[key] = max(used[key] + rng.uniform(-1.2, 1.25) * mean * 2, 0.0)
                    else:
                        used[key] += rng.expovariate(1 / mean)
                    value = round(min(used[key], limit * 1.1), 3)
                    readings.append(
                        QuotaReading(
                            snapshot=snapshot,
                            provider="synthetic",
                            captured_at=snapshot.captured_at,
                            key=key,
                            label=key.replace("_", " ").capitalize(),
                            kind=kind,
                            unit="requests",
                            used=value,
                            limit=limit,
                            remaining=max(limit - value, 0.0),
                            percent=value / limit * 100,
                        )
                    )
            QuotaReading.objects.bulk_create(readings, batch_size=5000)
            written += len(readings)
    return written


def measure(end: datetime, repeats: int, source: str | None = None) -> None:
    """Each range's time: "first" with nothing remembered (a worker's first call, or its first after
    the settled buckets moved on: once an hour for 7d and 30d), "again" as a dashboard's refreshes find it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from quotas import history as history_module
    from quotas.history import history

    for range_key in ("1h", "6h", "24h", "7d", "30d"):
        first, again = [], []
        for _ in range(repeats):
            history_module._SETTLED.clear()
            for times in (first, again):
                with CaptureQueriesContext(connection) as queries:
                    began = time.perf_counter()
                    answer = history("synthetic", range_key, now=end, source=source)
                    times.append(time.perf_counter() - began)
        points = max((len(s["points"]) for s in answer["series"]), default=0)
        print(
            f"  {range_key:>4}: median first {statistics.median(first) * 1000:7.1f} ms,"
            f" again {statistics.median(again) * 1000:7.1f} ms  queries again {len(queries)}"
            f"  series {len(answer['series'])}  max points/series {points}  gaps {len(answer['gaps'])}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=60, help="seconds between polls")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--index",
        action="store_true",
        help="then add a covering index (provider, captured_at, key, percent, used) on readings and time again",
    )
    args = parser.parse_args()

    db = Path(tempfile.mkdtemp(prefix="syntrack-bench-")) / "history.db"
    setup(db)
    end = datetime(2026, 3, 1, tzinfo=UTC)
    began = time.perf_counter()
    rows = generate(args.days, args.interval, end)
    print(
        f"{args.days} days of {args.interval}-s polls: {rows} readings ({len(QUOTAS)} quotas) "
        f"in {time.perf_counter() - began:.0f} s; SQLite file {db.stat().st_size / 2**20:.0f} MiB"
    )
    from quotas import rollups

    began = time.perf_counter()
    written = rollups.rebuild()
    print(f"rollups.rebuild(): {written} roll-ups in {time.perf_counter() - began:.1f} s")
    now = end + timedelta(seconds=args.interval)
    print("history() from the readings (24h, 7d, 30d as before roll-ups):")
    measure(now, args.repeats, source="readings")
    print("history() as the API answers (24h, 7d, 30d from roll-ups):")
    measure(now, args.repeats)

    from django.db import connection

    if args.index:
        from django.db import models

        from quotas.models import QuotaReading

        index = models.Index(fields=["provider", "captured_at", "key", "percent", "used"], name="reading_chart_cover")
        with connection.schema_editor() as editor:
            editor.add_index(QuotaReading, index)
        print("history() with a covering index (provider, captured_at, key, percent, used):")
        measure(now, args.repeats)
    connection.close()
    shutil.rmtree(db.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
