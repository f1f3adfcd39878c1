"""What the tools that run the real site share (tools/fuzz_api.py, tools/load_test.py, tools/soak.py).

A throw-away database beside DATABASE_URL's, children stopped by their own
pid, a database made ready, the poller and gunicorn started and waited for. Only 127.0.0.1 is bound or called.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bench_env, drop_postgres, manage, signed_in, with_database  # noqa: E402

__all__ = ["Started", "database_url", "free_port", "prepared_site", "signed_in", "start_site", "tear_down"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(suffix: str) -> str:
    """The PostgreSQL database ``<DATABASE_URL's name>_<suffix>`` of a run, or "" for SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return ""
    return with_database(url, f"{urlsplit(url).path.lstrip('/') or 'syntrack'}_{suffix}")


class Started:
    """The children of this run, stopped in reverse order, each by its own pid."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with log.open("w") as out:
            child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def wait_for(base: str, gunicorn: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if gunicorn.poll() is not None:
            raise SystemExit(f"gunicorn exited with {gunicorn.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{base}/api/status", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer within 30 s:\n{log.read_text()}")


def prepared_site(tmp: Path, url: str, upstream, admin: str, password: str, interval: int) -> dict[str, str]:
    """The environment of a run whose database is ready: created anew on PostgreSQL (or a SQLite file
    in ``tmp``), migrated, static files collected (the site's own 404 and 500 pages name them) and
    two days of demo readings in it."""
    if url:
        drop_postgres(url, create=True)
    env = bench_env(
        tmp,
        url,
        upstream,
        SYNTRACK_DB_PATH=str(tmp / "site.db"),
        SYNTRACK_ADMIN_USER=admin,
        SYNTRACK_ADMIN_PASS=password,
        SYNTRACK_POLL_INTERVAL=str(interval),
    )
    manage("migrate", "--noinput", "-v0", env=env)
    manage("collectstatic", "--noinput", "-v0", env=env)
    manage("demo", "--days", "2", env=env)
    return env


def start_site(
    children: Started, env: dict[str, str], tmp: Path, gunicorn_options: list[str]
) -> tuple[str, subprocess.Popen]:
    """The poller, and gunicorn on a free port once it answers: the site's base URL and the poller."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    poller = children.start([sys.executable, "manage.py", "poll", "--skip-checks"], env, tmp / "poller.log")
    gunicorn = children.start(
        [sys.executable, "-m", "gunicorn", *gunicorn_options, "--bind", f"127.0.0.1:{port}"], env, tmp / "gunicorn.log"
    )
    wait_for(base, gunicorn, tmp / "gunicorn.log")
    return base, poller


def tear_down(upstream, url: str, tmp: Path, keep: bool) -> None:
    """The end of every run: the fake upstream stopped, the PostgreSQL database dropped, the files gone (or kept)."""
    upstream.shutdown()
    upstream.server_close()
    if url:
        drop_postgres(url)
    if keep:
        print(f"Kept {tmp}", flush=True)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
