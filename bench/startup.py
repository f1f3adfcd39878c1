"""How long `manage.py poll --once` takes, against a bare `django.setup()` (issue 7: at most 1.2×).

    .venv/bin/python bench/startup.py                # 15 runs of each, SQLite
    .venv/bin/python bench/startup.py --runs 30 --json startup.json
    .venv/bin/python bench/startup.py --database-url postgres://postgres@127.0.0.1:5432/syntrack_bench

Both commands run as fresh processes with the same environment, alternately
so that the load of the machine weighs on both alike: a migrated database,
both providers pointing at the local fake upstream (which answers at once),
so `poll --once` is start-up plus one poll of each provider. One run of each
is made first and not counted: it writes the bytecode cache. Prints a table
and then the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, bench_env, drop_postgres, manage, start_upstream, summary_ms

TARGET_RATIO = 1.2
BARE = [sys.executable, "-c", "import django; django.setup()"]
POLL = [sys.executable, "manage.py", "poll", "--once"]


def wall_time(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return elapsed


def measure(env: dict[str, str], runs: int) -> dict:
    """Median and p95 of both commands over ``runs`` alternating runs, and the ratio of the medians."""
    wall_time(BARE, env)
    wall_time(POLL, env)
    bare: list[float] = []
    poll: list[float] = []
    for _ in range(runs):
        bare.append(wall_time(BARE, env))
        poll.append(wall_time(POLL, env))
    result = {"bare_setup": summary_ms(bare), "poll_once": summary_ms(poll)}
    result["ratio"] = round(result["poll_once"]["median_ms"] / result["bare_setup"]["median_ms"], 3)
    result["target_ratio"] = TARGET_RATIO
    result["met"] = result["ratio"] <= TARGET_RATIO
    return result


def table(result: dict) -> str:
    lines = [f"{'command':<28} {'median ms':>10} {'p95 ms':>8} {'min ms':>8} {'runs':>5}"]
    for key, label in (("bare_setup", "django.setup()"), ("poll_once", "manage.py poll --once")):
        row = result[key]
        figures = f"{row['median_ms']:>10.1f} {row['p95_ms']:>8.1f} {row['min_ms']:>8.1f}"
        lines.append(f"{label:<28} {figures} {row['runs']:>5}")
    verdict = "met" if result["met"] else "NOT met"
    lines.append(f"ratio of medians {result['ratio']:.2f} (target ≤ {result['target_ratio']}): {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (at least 10)")
    parser.add_argument(
        "--database-url", default="", help="a PostgreSQL database to create, use and drop instead of a SQLite file"
    )
    parser.add_argument("--json", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    if args.runs < 10:
        parser.error("--runs must be at least 10")

    upstream = start_upstream()
    if args.database_url:
        drop_postgres(args.database_url, create=True)
    try:
        with tempfile.TemporaryDirectory(prefix="syntrack-bench-") as tmp:
            env = bench_env(Path(tmp), args.database_url, upstream)
            manage("migrate", "--noinput", "-v0", env=env)
            result = measure(env, args.runs)
            result["database"] = "postgresql" if args.database_url else "sqlite"
    finally:
        upstream.shutdown()
        if args.database_url:
            drop_postgres(args.database_url)
    print(table(result))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
