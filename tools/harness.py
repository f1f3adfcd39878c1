"""What the tools that run the real site share (tools/fuzz_api.py, tools/load_test.py, tools/soak.py).

A throw-away database beside DATABASE_URL's, children stopped by their own
pid, waiting for gunicorn, a signed-in session. Only 127.0.0.1 is bound or called.
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

from bench.common import drop_postgres, with_database  # noqa: E402


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
