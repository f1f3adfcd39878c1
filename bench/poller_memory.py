"""Resident memory of `manage.py poll` over N polls, against the local fake upstream.

    .venv/bin/python bench/poller_memory.py            # 100 polls, interval 10 s (about 9 minutes)
    .venv/bin/python bench/poller_memory.py --polls 300

Prints the RSS of a bare Django process (the floor), then the poller's RSS
after its first poll and at every 25 polls. Uses a throw-away SQLite database.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, bare_rss_kib, bench_env, manage, rss_kib, start_upstream


def polls_done(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM quotas_pollattempt").fetchone()[0]
    except sqlite3.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--polls", type=int, default=100)
    parser.add_argument("--interval", type=int, default=10)
    args = parser.parse_args()

    server = start_upstream()
    tmp = Path(tempfile.mkdtemp(prefix="syntrack-bench-"))
    env = bench_env(tmp, upstream=server)
    db = Path(env["SYNTRACK_DB_PATH"])
    manage("migrate", "--noinput", "-v0", env=env)

    print(f"bare Django process (settings loaded, DB connected): {bare_rss_kib(env) / 1024:.1f} MiB")

    poller = subprocess.Popen(
        [sys.executable, "manage.py", "poll", "--interval", str(args.interval), "--max-polls", str(args.polls + 2)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    marks = [1, *list(range(25, args.polls + 1, 25))]
    if args.polls not in marks:
        marks.append(args.polls)
    started = time.monotonic()
    try:
        for mark in marks:
            while polls_done(db) < mark:
                if poller.poll() is not None:
                    raise SystemExit(f"poller exited early with {poller.returncode}")
                time.sleep(0.2)
            print(
                f"after {mark:4d} polls ({time.monotonic() - started:5.0f} s): RSS {rss_kib(poller.pid) / 1024:.1f} MiB"
            )
    finally:
        poller.terminate()
        poller.wait(timeout=10)
        server.shutdown()


if __name__ == "__main__":
    main()
