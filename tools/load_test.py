"""Load test (issue 10): the real poller every 10 s while 4 gunicorn workers serve a bounded mixed load.

1. A throw-away database: a SQLite file in a temporary folder, or, when
   DATABASE_URL names PostgreSQL, a database of its own beside it
   (``<name>_load``, dropped afterwards); migrated, with two days of
   ``manage.py demo`` history.
2. The fake upstream (tools/fake_upstream.py) stands in for both providers;
   ``manage.py poll`` polls it every 10 s (SYNTRACK_POLL_INTERVAL=10); gunicorn
   serves the site with deploy/gunicorn.conf.py and 4 workers on a free
   loopback port.
3. For ``--seconds`` (60), ``--clients`` (8) threads, each signed in through
   the login form with its own session cookie, send a seeded random mix of
   dashboard reads (/api/current, /api/history over several ranges,
   /api/insights, /api/cycles, /api/summary, /api/polls, the dashboard page),
   settings writes (PUT /api/settings, with the CSRF token) and now and then a
   "poll now" (POST /api/poll), pausing ``--think`` seconds between requests.
4. It fails (exit 1) on any 5xx, any other unexpected status, any connection
   error or timeout, any "database is locked" (or deadlock) in an answer or in
   the gunicorn or poller logs, any traceback or worker timeout in those logs,
   and when the poller did not keep polling (every provider's attempts at most
   ``--max-gap`` seconds apart over the run).

Prints per-endpoint count, median, p95 and max latency and the totals;
``--json PATH`` writes them.

    .venv/bin/python tools/load_test.py [--seconds 60] [--clients 8] [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import manage, percentile, start_upstream  # noqa: E402
from tools import harness  # noqa: E402
from tools.harness import Started, signed_in  # noqa: E402

ADMIN, PASSWORD = "admin", "load-admin-passw0rd"
INTERVAL = 10
DEFAULT_SEED = 1010
# (name, method, path or None for a body-chosen write, weight, statuses that are right)
MIX = [
    ("current both", "GET", "/api/current?provider=both", 16, {200}),
    ("current synthetic", "GET", "/api/current?provider=synthetic", 6, {200}),
    ("history 24h", "GET", "/api/history?range=24h", 10, {200}),
    ("history 7d", "GET", "/api/history?range=7d&provider=both", 5, {200}),
    ("history 30d", "GET", "/api/history?range=30d&provider=zai", 4, {200}),
    ("insights 7d", "GET", "/api/insights?provider=both&range=7d", 5, {200}),
    ("cycles", "GET", "/api/cycles?provider=synthetic&quota=subscription&limit=50", 5, {200}),
    ("summary", "GET", "/api/summary?provider=both", 5, {200}),
    ("polls", "GET", "/api/polls?limit=50", 6, {200}),
    ("dashboard page", "GET", "/", 5, {200}),
    ("settings write", "PUT", "/api/settings", 8, {200}),
    # 202: the running poller will poll; 429 is the documented answer to asking too often.
    ("poll now", "POST", "/api/poll", 1, {202, 429}),
]
HIDEABLE = ["cycle_utilization", "weekly_pace", "cycle_trend"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", None]
# What must never appear in an answer or a log line (SQLite's and PostgreSQL's lock trouble).
LOCK_TROUBLE = re.compile(r"database is locked|database table is locked|deadlock detected", re.IGNORECASE)
LOG_TROUBLE = re.compile(r"Traceback \(most recent call last\)|WORKER TIMEOUT|database is locked|deadlock detected")
ATTEMPTS = """
import json
from datetime import datetime
from quotas.models import PollAttempt
since = datetime.fromisoformat({since!r})
rows = PollAttempt.objects.filter(at__gte=since).order_by("at").values_list("provider", "at", "outcome")
print(json.dumps([[p, at.isoformat(), outcome] for p, at, outcome in rows]))
"""


@dataclass
class Tally:
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    problems: list[str] = field(default_factory=list)
    lock = threading.Lock()

    def add(self, name: str, status: int, elapsed: float, problem: str = "") -> None:
        with self.lock:
            self.seconds[name].append(elapsed)
            self.statuses[name][status] += 1
            if problem:
                self.problems.append(problem)


def client(base: str, number: int, seed: int, until: float, think: float, tally: Tally) -> None:
    rng = random.Random(seed * 100 + number)
    session = signed_in(base, ADMIN, PASSWORD)
    names = [entry for entry in MIX]
    weights = [entry[3] for entry in MIX]
    while time.monotonic() < until:
        name, method, path, _, good = rng.choices(names, weights)[0]
        body = None
        if method == "PUT":
            body = (
                {"timezone": rng.choice(ZONES)}
                if rng.random() < 0.6
                else {"hidden_insights": rng.sample(HIDEABLE, rng.randint(0, 2))}
            )
        elif method == "POST":
            body = {"provider": rng.choice(["synthetic", "zai", "both"])}
        began = time.perf_counter()
        try:
            answer = session.request(method, f"{base}{path}", json=body, timeout=60)
        except requests.RequestException as e:
            tally.add(name, 0, time.perf_counter() - began, f"{method} {path}: {type(e).__name__}: {e}")
            continue
        elapsed = time.perf_counter() - began
        problem = ""
        if answer.status_code not in good:
            problem = f"{method} {path} {json.dumps(body) if body else ''}: {answer.status_code} {answer.text[:200]}"
        elif LOCK_TROUBLE.search(answer.text):
            problem = f"{method} {path}: {LOCK_TROUBLE.search(answer.text).group(0)} in the answer"
        tally.add(name, answer.status_code, elapsed, problem)
        if think:
            time.sleep(rng.uniform(0, 2 * think))


def latency_table(tally: Tally, wall: float) -> dict:
    table: dict[str, dict] = {}
    everything: list[float] = []
    for name, *_ in MIX:
        seconds = tally.seconds.get(name, [])
        everything += seconds
        table[name] = figures(seconds, tally.statuses.get(name, {}))
    statuses: dict[int, int] = defaultdict(int)
    for counts in tally.statuses.values():
        for status, n in counts.items():
            statuses[status] += n
    table["all"] = figures(everything, statuses)
    table["all"]["requests_per_second"] = round(len(everything) / wall, 1)
    return table


def figures(seconds: list[float], statuses: dict[int, int]) -> dict:
    if not seconds:
        return {"count": 0, "statuses": {}}
    return {
        "count": len(seconds),
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def poller_gaps(attempts: list[list[str]], since: datetime, until: datetime) -> dict[str, dict]:
    """Per provider: attempts stored during the load, and the longest silence (start and end of the run included)."""
    found: dict[str, dict] = {}
    for provider in ("synthetic", "zai"):
        times = [datetime.fromisoformat(at) for p, at, _ in attempts if p == provider]
        edges = [since, *times, until]
        longest = max((b - a).total_seconds() for a, b in pairwise(edges))
        outcomes: dict[str, int] = defaultdict(int)
        for p, _, outcome in attempts:
            if p == provider:
                outcomes[outcome] += 1
        found[provider] = {"attempts": len(times), "longest_gap_s": round(longest, 1), "outcomes": dict(outcomes)}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load lasts")
    parser.add_argument("--clients", type=int, default=8, help="client threads, each with its own session")
    parser.add_argument("--think", type=float, default=0.05, help="mean pause between a client's requests (s)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--max-gap", type=float, default=2 * INTERVAL + 5, help="longest silence of the poller (s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    options = parser.parse_args()

    started_at = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="syntrack-load-"))
    url = harness.database_url("load")
    upstream = start_upstream()
    children = Started()
    failed = True
    try:
        db = f"PostgreSQL {urlsplit(url).path.lstrip('/')}" if url else "SQLite"
        print(f"Load: {options.seconds:g} s, {options.clients} clients, {options.workers} workers, {db}", flush=True)
        env = harness.prepared_site(tmp, url, upstream, ADMIN, PASSWORD, INTERVAL)
        base, poller = harness.start_site(
            children, env, tmp, ["--config", "deploy/gunicorn.conf.py", "--workers", str(options.workers)]
        )

        tally = Tally()
        since = datetime.now(UTC)
        began = time.monotonic()
        until = began + options.seconds
        threads = [
            threading.Thread(target=client, args=(base, n, options.seed, until, options.think, tally), daemon=True)
            for n in range(options.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(options.seconds + 120)
        wall = time.monotonic() - began
        ended = datetime.now(UTC)
        if any(thread.is_alive() for thread in threads):
            tally.problems.append("a client was still waiting for an answer 2 minutes after the end")
        if poller.poll() is not None:
            tally.problems.append(f"the poller exited with {poller.returncode} during the load")

        attempts = json.loads(
            manage("shell", "-v0", "-c", ATTEMPTS.format(since=since.isoformat()), env=env).stdout.strip()
        )
        polling = poller_gaps(attempts, since, ended)
        for provider, seen in polling.items():
            if seen["longest_gap_s"] > options.max_gap:
                tally.problems.append(
                    f"poller: {provider} went {seen['longest_gap_s']} s without an attempt (limit {options.max_gap:g})"
                )
            if set(seen["outcomes"]) - {"ok"}:
                tally.problems.append(f"poller: {provider} attempts {seen['outcomes']}, all should be ok")
        children.stop()
        for log in ("gunicorn.log", "poller.log"):
            text = (tmp / log).read_text(errors="replace")
            hits = [line for line in text.splitlines() if LOG_TROUBLE.search(line)]
            if hits:
                tally.problems.append(f"{log}: {len(hits)} lines of trouble, first: {hits[0][:200]}")
                print(text[-4000:], flush=True)
                options.keep = True

        table = latency_table(tally, wall)
        result = {
            "db": "postgresql" if url else "sqlite",
            "seconds": options.seconds,
            "clients": options.clients,
            "workers": options.workers,
            "think_s": options.think,
            "endpoints": table,
            "poller": polling,
            "problems": tally.problems,
            "run_seconds": round(time.monotonic() - started_at, 1),
        }
        report(result)
        if options.json:
            options.json.write_text(json.dumps(result, indent=2) + "\n")
        failed = bool(tally.problems)
        return 1 if failed else 0
    finally:
        children.stop()
        harness.tear_down(upstream, url, tmp, options.keep)


def report(result: dict) -> None:
    print(f"{'endpoint':<20}{'count':>7}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}  statuses")
    for name, row in result["endpoints"].items():
        if not row["count"]:
            print(f"{name:<20}{0:>7}")
            continue
        statuses = " ".join(f"{k}×{v}" for k, v in row["statuses"].items())
        print(f"{name:<20}{row['count']:>7}{row['median_ms']:>11}{row['p95_ms']:>9}{row['max_ms']:>9}  {statuses}")
    print(f"{result['endpoints']['all']['requests_per_second']} requests/s")
    for provider, seen in result["poller"].items():
        gap = seen["longest_gap_s"]
        print(f"poller {provider}: {seen['attempts']} attempts {seen['outcomes']}, longest gap {gap} s")
    shown = result["problems"][:30]
    for line in shown:
        print(f"PROBLEM {line}")
    if len(result["problems"]) > len(shown):
        print(f"… {len(result['problems']) - len(shown)} more problems")
    verdict = "FAILED" if result["problems"] else "clean"
    print(f"load test ({result['db']}): {verdict} in {result['run_seconds']} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
