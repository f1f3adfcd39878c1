"""`make bench`: SynTrack's figures against the targets of issue 7, on SQLite and PostgreSQL.

    .venv/bin/python bench/run.py                              # 1, 30, 365 days; SQLite and PostgreSQL
    .venv/bin/python bench/run.py --days 1,30 --db sqlite      # a quick run
    .venv/bin/python bench/run.py --polls 1000 --requests 20

For each database kind and each size: `manage.py demo` fills a fresh database
with that many days of 60-s polls of both providers; the real gunicorn (2
workers, a free loopback port) serves it; every endpoint is timed over HTTP
with a signed-in session (median and p95 of --requests calls after 3 unmeasured
ones), and the API once more with Basic auth. Then, per database kind, on a
database of its own: `poll --once` against a bare `django.setup()`
(bench/startup.py), and the poller's RSS over --polls polls against the local
fake upstream (bench/poll_loop.py) against a bare Django process's.

Prints a table with every target marked, and writes the figures as JSON to
bench/results/ (git-ignored: they belong to the machine; docs/performance.md
quotes them). Not a test: `make test` and CI never run it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
import startup
from common import (
    ROOT,
    bare_rss_kib,
    bench_env,
    drop_postgres,
    manage,
    rss_kib,
    signed_in,
    start_upstream,
    summary_ms,
    with_database,
)

DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/syntrack_bench"
RANGES = ("1h", "6h", "24h", "7d", "30d")
# (name in the table, path): what the dashboard asks for, each provider view included.
ENDPOINTS = [
    ("current synthetic", "/api/current?provider=synthetic"),
    ("current both", "/api/current?provider=both"),
    # As the table asks (no provider: the first configured one), then both, as the Both tab asks.
    *[(f"history {r}", f"/api/history?range={r}") for r in RANGES],
    *[(f"history both {r}", f"/api/history?provider=both&range={r}") for r in RANGES],
    ("cycles", "/api/cycles?provider=both"),
    ("summary", "/api/summary?provider=both"),
    ("sessions", "/api/sessions"),
    ("insights 7d", "/api/insights?provider=both&range=7d"),
    ("insights 30d", "/api/insights?provider=both&range=30d"),
    ("polls", "/api/polls"),
    ("dashboard page", "/"),
]
BASIC = [("basic: current both", "/api/current?provider=both"), ("basic: history 24h", "/api/history?range=24h")]
WARMUP = 3
# Targets of issue 7 (item 5).
ENDPOINT_P95_MS, HISTORY_P95_MS, BASIC_P95_MS = 100.0, 50.0, 50.0
GROWTH_RATIO = 1.5
RSS_OVER_BARE_KIB, RSS_GROWTH_KIB = 10 * 1024, 1024
SQLITE_YEAR_BYTES = 200 * 1000 * 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_bytes(env: dict[str, str]) -> int:
    if env["DATABASE_URL"]:
        import psycopg

        with psycopg.connect(env["DATABASE_URL"]) as conn:
            return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    db = Path(env["SYNTRACK_DB_PATH"])
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def fresh_database(tmp: Path, postgres_url: str, name: str, upstream) -> dict[str, str]:
    """A migrated, empty database of its own (a file in ``tmp``, or a PostgreSQL database)."""
    url = with_database(postgres_url, f"{urlsplit(postgres_url).path.lstrip('/')}_{name}") if postgres_url else ""
    if url:
        drop_postgres(url, create=True)
    env = bench_env(tmp, url, upstream, SYNTRACK_DB_PATH=str(tmp / f"{name}.db"))
    manage("migrate", "--noinput", "-v0", env=env)
    return env


class Server:
    """gunicorn as `manage.py serve` runs it: 2 workers, here on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.base = f"http://127.0.0.1:{free_port()}"
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "syntrack_site.wsgi", "--workers", "2",
                 "--bind", self.base.removeprefix("http://"), "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{self.base}/api/status", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet, or a worker still booting
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"gunicorn did not start:\n{log.read_text()}")
            time.sleep(0.1)

    def worker_rss_kib(self) -> int:
        """The larger of the workers' RSS (the workers are the master's children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return max(rss_kib(int(pid)) for pid in children)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def timed(session: requests.Session, url: str, calls: int) -> dict:
    seconds = []
    for i in range(WARMUP + calls):
        began = time.perf_counter()
        answer = session.get(url, timeout=60)
        elapsed = time.perf_counter() - began
        if answer.status_code != 200:
            raise SystemExit(f"GET {url}: {answer.status_code} {answer.text[:300]}")
        if i >= WARMUP:
            seconds.append(elapsed)
    return summary_ms(seconds)


def measure_size(kind: str, days: int, tmp: Path, postgres_url: str, calls: int) -> dict:
    env = fresh_database(tmp, postgres_url, f"{days}d", None)
    began = time.perf_counter()
    manage("demo", "--days", str(days), "--interval", "60", "--force", env=env)
    result: dict = {"db": kind, "days": days, "demo_seconds": round(time.perf_counter() - began, 1)}
    result["database_bytes"] = database_bytes(env)
    # The API answers for configured providers only; the server never polls.
    env.update(SYNTHETIC_API_KEY="syn_bench_key_0123456789", ZAI_API_KEY="zai-bench-key-0123456789")
    server = Server(env, tmp / f"gunicorn-{days}d.log")
    try:
        session = signed_in(server.base, "admin", env["SYNTRACK_ADMIN_PASS"])
        result["endpoints"] = {name: timed(session, server.base + path, calls) for name, path in ENDPOINTS}
        basic = requests.Session()
        basic.auth = ("admin", env["SYNTRACK_ADMIN_PASS"])
        result["endpoints"].update({name: timed(basic, server.base + path, calls) for name, path in BASIC})
        result["gunicorn_worker_rss_kib"] = server.worker_rss_kib()
    finally:
        server.stop()
    if postgres_url:
        drop_postgres(env["DATABASE_URL"])
    return result


def measure_poller(kind: str, tmp: Path, postgres_url: str, polls: int, startup_runs: int) -> dict:
    upstream = start_upstream()
    try:
        env = fresh_database(tmp, postgres_url, "poller", upstream)
        result: dict = {"db": kind, "startup": startup.measure(env, startup_runs)}
        result["bare_rss_kib"] = bare_rss_kib(env)
        done = subprocess.run(
            [sys.executable, "bench/poll_loop.py", "--polls", str(polls)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"bench/poll_loop.py exited {done.returncode}:\n{done.stderr}")
        result["poll_loop"] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        upstream.shutdown()
    if postgres_url:
        drop_postgres(env["DATABASE_URL"])
    return result


def targets(sizes: list[dict], pollers: list[dict]) -> list[dict]:
    """Every target of issue 7 that this run measured: what, the figure, met or not."""
    found = []

    def add(db: str, what: str, figure: str, met: bool) -> None:
        found.append({"db": db, "target": what, "figure": figure, "met": met})

    for kind in sorted({s["db"] for s in sizes}):
        by_days = {s["days"]: s for s in sizes if s["db"] == kind}
        if 1 in by_days and 365 in by_days:
            for name in ("current synthetic", "current both", "history 30d"):
                ratio = by_days[365]["endpoints"][name]["median_ms"] / by_days[1]["endpoints"][name]["median_ms"]
                add(kind, f"{name}: 365-day / 1-day median ≤ {GROWTH_RATIO}", f"{ratio:.2f}", ratio <= GROWTH_RATIO)
        for days, size in sorted(by_days.items()):
            for name, figures in size["endpoints"].items():
                limit = (
                    BASIC_P95_MS
                    if name.startswith("basic")
                    else HISTORY_P95_MS
                    if name.startswith("history") and not name.startswith("history both")
                    else ENDPOINT_P95_MS
                )
                p95 = figures["p95_ms"]
                add(kind, f"{days} d: {name} p95 < {limit:.0f} ms", f"{p95:.1f} ms", p95 < limit)
        if kind == "sqlite" and 365 in by_days:
            size = by_days[365]["database_bytes"]
            add(kind, "365 d SQLite ≤ 200 MB", f"{size / 1e6:.0f} MB", size <= SQLITE_YEAR_BYTES)
    for poller in pollers:
        kind = poller["db"]
        start = poller["startup"]
        add(kind, f"poll --once ≤ {start['target_ratio']}× bare setup", f"{start['ratio']:.2f}×", start["met"])
        # [after the first round, after each tenth of the run]: growth is
        # counted from the first tenth, once the caches a first query fills are full.
        rss = poller["poll_loop"]["rss_kib"]
        settled, last = rss[1][1] if len(rss) > 1 else rss[0][1], rss[-1][1]
        over = last - poller["bare_rss_kib"]
        add(kind, "poller RSS ≤ bare + 10 MB", f"+{over / 1024:.1f} MB", over <= RSS_OVER_BARE_KIB)
        growth = last - settled
        polls = poller["poll_loop"]["polls"]
        what = f"poller RSS growth ≤ 1 MB, polls {rss[1][0] if len(rss) > 1 else rss[0][0]}–{polls}"
        add(kind, what, f"{growth / 1024:+.1f} MB", growth <= RSS_GROWTH_KIB)
    return found


def report(sizes: list[dict], pollers: list[dict], found: list[dict]) -> str:
    columns = [(s["db"], s["days"]) for s in sizes]
    header = f"{'endpoint (median / p95 ms)':<28}" + "".join(f"{f'{db} {d}d':>18}" for db, d in columns)
    lines = [header]
    for name in [n for n, _ in ENDPOINTS + BASIC]:
        cells = [s["endpoints"][name] for s in sizes]
        lines.append(f"{name:<28}" + "".join(f"{c['median_ms']:.1f} / {c['p95_ms']:.1f}".rjust(18) for c in cells))
    lines.append(f"{'database size MB':<28}" + "".join(f"{s['database_bytes'] / 1e6:>18.1f}" for s in sizes))
    workers = [s["gunicorn_worker_rss_kib"] / 1024 for s in sizes]
    lines.append(f"{'gunicorn worker RSS MB':<28}" + "".join(f"{mb:>18.1f}" for mb in workers))
    lines.append(f"{'demo build s':<28}" + "".join(f"{s['demo_seconds']:>18.1f}" for s in sizes))
    for poller in pollers:
        start, loop = poller["startup"], poller["poll_loop"]
        marks = ", ".join(f"{kib / 1024:.1f} after {n}" for n, kib in loop["rss_kib"])
        lines.append(
            f"{poller['db']}: bare setup {start['bare_setup']['median_ms']:.0f} ms, poll --once "
            f"{start['poll_once']['median_ms']:.0f} ms (median); RSS MB: bare {poller['bare_rss_kib'] / 1024:.1f}, "
            f"poller {marks} polls ({loop['failed']} failed)"
        )
    lines.append("")
    lines.append(f"{'target':<58} {'db':<10} {'figure':>10}  result")
    for t in found:
        lines.append(f"{t['target']:<58} {t['db']:<10} {t['figure']:>10}  {'met' if t['met'] else 'NOT MET'}")
    missed = sum(not t["met"] for t in found)
    lines.append(f"{len(found) - missed} of {len(found)} targets met")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", default="1,30,365", help="database sizes in days, comma-separated (1,30,365)")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (sqlite,postgres)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="a server and a database name to own")
    parser.add_argument("--requests", type=int, default=40, help="measured calls per endpoint (40)")
    parser.add_argument("--polls", type=int, default=10_000, help="polls of the in-process poll loop (10000)")
    parser.add_argument("--startup-runs", type=int, default=15, help="runs of bench/startup.py per database (15)")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default bench/results/<time>.json)")
    args = parser.parse_args()
    try:
        days = sorted({int(d) for d in args.days.split(",")})
    except ValueError:
        parser.error("--days takes whole numbers of days, e.g. 1,30,365")
    kinds = [k.strip() for k in args.db.split(",")]
    if not days or min(days) < 1 or set(kinds) - {"sqlite", "postgres"}:
        parser.error("--days needs positive numbers; --db is sqlite, postgres or sqlite,postgres")

    sizes, pollers = [], []
    tmp = Path(tempfile.mkdtemp(prefix="syntrack-bench-"))
    try:
        # The dashboard page needs the static files' manifest, as in production.
        manage("collectstatic", "--noinput", "-v0", env=bench_env(tmp))
        for kind in kinds:
            url = args.postgres_url if kind == "postgres" else ""
            for n in days:
                print(f"{kind}, {n} days ...", file=sys.stderr, flush=True)
                sizes.append(measure_size(kind, n, tmp, url, args.requests))
            print(f"{kind}, poller ...", file=sys.stderr, flush=True)
            pollers.append(measure_poller(kind, tmp, url, args.polls, args.startup_runs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    found = targets(sizes, pollers)
    print(report(sizes, pollers, found))
    results = {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "options": vars(args) | {"json": str(args.json) if args.json else None},
        "sizes": sizes,
        "pollers": pollers,
        "targets": found,
    }
    path = args.json or ROOT / "bench" / "results" / f"{results['when'].replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {path}")


if __name__ == "__main__":
    main()
