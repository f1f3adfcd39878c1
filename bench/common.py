"""What the benchmarks and tools/ share: a hermetic environment, the fake upstream, timings, RSS, a session."""

from __future__ import annotations

import math
import os
import secrets
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syntrack_site.config import VARIABLES as SYNTRACK_VARIABLES  # noqa: E402
from tools.fake_upstream import FakeUpstream, serve  # noqa: E402

SECRET_KEY = "bench-secret-key-0123456789-0123456789-abcdef"


def bench_env(tmp: Path, database_url: str = "", upstream: FakeUpstream | None = None, **extra: str) -> dict[str, str]:
    """An environment for ``manage.py`` that neither ``.env`` nor the caller's variables can change.

    Every SynTrack variable is set (empty means "not set"); the database is
    ``tmp/bench.db`` unless ``database_url`` names another. Bytecode is cached
    under ``tmp/pycache``, as an installed copy caches it: without that, every
    process would compile the project's modules again (this machine exports
    PYTHONDONTWRITEBYTECODE) and start-up figures would measure the compiler.
    """
    env = {k: v for k, v in os.environ.items() if k not in SYNTRACK_VARIABLES and not k.startswith("DJANGO_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(dict.fromkeys(SYNTRACK_VARIABLES, ""))
    env.update(
        DJANGO_SETTINGS_MODULE="syntrack_site.settings",
        PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
        SECRET_KEY=SECRET_KEY,
        SYNTRACK_DB_PATH=str(tmp / "bench.db"),
        DATABASE_URL=database_url,
        # A real password: the default-password warning is not what is measured.
        SYNTRACK_ADMIN_PASS=secrets.token_urlsafe(16),
        SYNTRACK_LOG_LEVEL="warning",
    )
    if upstream is not None:
        base = f"http://127.0.0.1:{upstream.server_port}"
        env.update(
            SYNTHETIC_API_KEY="syn_bench_key_0123456789",
            SYNTHETIC_BASE_URL=base,
            ZAI_API_KEY="zai-bench-key-0123456789",
            ZAI_BASE_URL=f"{base}/api",
        )
    env.update(extra)
    return env


def start_upstream() -> FakeUpstream:
    """The fake upstream on a free loopback port, answering at once, in a daemon thread."""
    server = serve(0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``manage.py args``; a failure stops the benchmark with the command's own output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
        "min_ms": round(min(seconds) * 1000, 1),
        "runs": len(seconds),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def bare_rss_kib(env: dict[str, str]) -> int:
    """The RSS of a process that only ran ``django.setup()`` and opened the database: the floor."""
    floor = subprocess.Popen(
        [sys.executable, "-c", "import django, time; django.setup(); from django.db import connection; "
         "connection.ensure_connection(); print('ready', flush=True); time.sleep(60)"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        if floor.stdout.readline().strip() != "ready":
            raise SystemExit(f"the bare Django process exited with {floor.wait()}")
        return rss_kib(floor.pid)
    finally:
        floor.kill()
        floor.wait()
        floor.stdout.close()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_postgres(url: str, create: bool = False) -> None:
    """Drop the database ``url`` names, and create it afresh if asked: every size starts from nothing."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    try:
        with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as e:
        # Not the URL: it may hold a password.
        where = f"{urlsplit(url).hostname}:{urlsplit(url).port or 5432}"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SystemExit(f"PostgreSQL at {where}: {reason}") from None


def signed_in(base: str, username: str, password: str) -> requests.Session:
    """A session signed in through the login form: its cookies, and the CSRF token in X-CSRFToken for writes."""
    session = requests.Session()
    session.get(f"{base}/login/", timeout=30)
    answer = session.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base}/login/"},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise SystemExit(f"could not sign in: {answer.status_code}")
    # The login rotates the token: the one to send with writes is the cookie's new value.
    session.headers.update({"X-CSRFToken": session.cookies["csrftoken"], "Referer": f"{base}/"})
    return session
