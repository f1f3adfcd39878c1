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

from bench.common import manage, start_upstream  # noqa: E402
from tools import harness  # noqa: E402
from tools.harness import Started  # noqa: E402

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
    url = harness.database_url("fuzz")
    upstream = start_upstream()
    children = Started()
    try:
        print(f"Database: {'PostgreSQL ' + urlsplit(url).path.lstrip('/') if url else tmp / 'site.db'}", flush=True)
        env = harness.prepared_site(tmp, url, upstream, ADMIN, PASSWORD, interval=10)
        manage("createtoken", "fuzz", env=env)
        base, _ = harness.start_site(
            children, env, tmp, ["syntrack_site.wsgi", "--workers", "2", "--log-level", "warning"]
        )
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
