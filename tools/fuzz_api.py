"""`make fuzz`: schemathesis against the real gunicorn, driven by SynTrack's own /api/openapi.json.

1. A throw-away database: a SQLite file in a temporary folder, or, when
   DATABASE_URL names PostgreSQL, a database of its own beside it
   (``<name>_fuzz``, dropped afterwards).
2. ``manage.py migrate`` (the admin), ``manage.py demo --days 2`` (the
   history), ``manage.py createtoken`` (a read-only token: /metrics on).
3. The fake upstream (tools/fake_upstream.py) stands in for both providers;
   ``manage.py poll`` polls it, so "poll now" and the guard meet a running
   poller; gunicorn serves the site on a free loopback port.
4. schemathesis runs every operation of the document with the admin's Basic
   credentials (so the writes are exercised) and every check, configured in
   tools/fuzz_api.toml.

Exits non-zero when schemathesis found anything: a server error, a response
the document does not describe, a valid request refused or an invalid one
accepted. Only 127.0.0.1 is ever bound or called.

    .venv/bin/python tools/fuzz_api.py [--max-examples N] [--seed S] [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_env, drop_postgres, manage, start_upstream  # noqa: E402
from tools import harness  # noqa: E402
from tools.harness import Started, free_port, wait_for  # noqa: E402

CONFIG = Path(__file__).with_suffix(".toml")
ADMIN, PASSWORD = "admin", "fuzz-admin-passw0rd"
DEFAULT_EXAMPLES = 100
DEFAULT_SEED = 9212
# A made-up current password to PUT /api/password, a made-up token or Basic credentials count as
# failed logins (accounts.throttle); five in a row lock 127.0.0.1 out, and every later answer
# would be a documented 429: a run that tests nothing. The admin's own Basic sign-in in between
# resets the count, so the run is not locked out; this says so if that ever changes.
LOCKED = (
    "from accounts.models import LoginThrottle; print(LoginThrottle.objects.filter(locked_until__isnull=False).count())"
)


def database_url() -> str:
    """The PostgreSQL database of this run, or "" for SQLite."""
    return harness.database_url("fuzz")


def schemathesis(schema: Path, base: str, options: argparse.Namespace) -> int:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(CONFIG),
        "run", str(schema),
        "--url", base,
        "--auth", f"{ADMIN}:{PASSWORD}",
        "--checks", "all",
        "--max-examples", str(options.max_examples),
        "--seed", str(options.seed),
        "--workers", "1",
    ]  # fmt: skip
    print("$", " ".join(command).replace(PASSWORD, "***"), flush=True)
    # In the temporary folder: schemathesis keeps a cache in its working directory.
    return subprocess.run(command, cwd=schema.parent, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=DEFAULT_EXAMPLES, help="test cases per operation")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="schemathesis's random seed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    options = parser.parse_args()

    started_at = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="syntrack-fuzz-"))
    url = database_url()
    upstream = start_upstream()
    children = Started()
    try:
        if url:
            drop_postgres(url, create=True)
        env = bench_env(
            tmp,
            url,
            upstream,
            SYNTRACK_DB_PATH=str(tmp / "fuzz.db"),
            SYNTRACK_ADMIN_USER=ADMIN,
            SYNTRACK_ADMIN_PASS=PASSWORD,
            SYNTRACK_POLL_INTERVAL="10",
        )
        print(f"Database: {'PostgreSQL ' + urlsplit(url).path.lstrip('/') if url else tmp / 'fuzz.db'}", flush=True)
        manage("migrate", "--noinput", "-v0", env=env)
        # The site's own 404 and 500 pages (paths outside /api/) name static files.
        manage("collectstatic", "--noinput", "-v0", env=env)
        manage("demo", "--days", "2", env=env)
        manage("createtoken", "fuzz", env=env)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        children.start([sys.executable, "manage.py", "poll", "--skip-checks"], env, tmp / "poller.log")
        gunicorn = children.start(
            [sys.executable, "-m", "gunicorn", "syntrack_site.wsgi", "--workers", "2",
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
            env, tmp / "gunicorn.log",
        )  # fmt: skip
        wait_for(base, gunicorn, tmp / "gunicorn.log")
        document = requests.get(f"{base}/api/openapi.json", auth=(ADMIN, PASSWORD), timeout=30)
        document.raise_for_status()
        schema = tmp / "openapi.json"
        schema.write_bytes(document.content)

        code = schemathesis(schema, base, options)
        locked = int(manage("shell", "-v0", "-c", LOCKED, env=env).stdout.split()[-1])
        if locked:
            print("the login throttle locked the run out: its answers after that were 429s", flush=True)
        # An exception the responses did not show (a 500 page, a failed poll) is a finding too.
        errors = 0
        for log in ("gunicorn.log", "poller.log"):
            tracebacks = (tmp / log).read_text().count("Traceback (most recent call last)")
            if tracebacks:
                print(f"{log}: {tracebacks} tracebacks, see {tmp / log}", flush=True)
                errors += tracebacks
                options.keep = True
        failed = bool(code or locked or errors)
        print(f"make fuzz: {'FAILED' if failed else 'clean'} in {time.monotonic() - started_at:.0f} s", flush=True)
        return 1 if failed else 0
    finally:
        children.stop()
        harness.tear_down(upstream, url, tmp, options.keep)


if __name__ == "__main__":
    sys.exit(main())
