"""Helpers for tests that run SynTrack in real subprocesses (poller, lock holder, manage.py check).

Every subprocess gets a hermetic environment: each SynTrack variable is set
explicitly (empty when unused), so neither the developer's environment nor a
``.env`` file in the project can change what a test sees.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from syntrack_site.config import VARIABLES as SYNTRACK_VARIABLES
from tools.fake_upstream import FakeUpstream, serve

PROJECT = Path(__file__).resolve().parents[2]
SECRET_KEY = "process-test-secret-key-0123456789-abcdefghijklmnop"
SYNTHETIC_KEY = "syn_process_key_0123456789abcdef"
ZAI_KEY = "zai-process-key-0123456789abcdef"


def base_env(**overrides: str) -> dict[str, str]:
    """A clean environment for ``manage.py`` with production settings.

    Empty values still win over ``.env`` (the process environment always
    does), and SynTrack treats them as "not set".
    """
    env = {k: v for k, v in os.environ.items() if k not in SYNTRACK_VARIABLES and not k.startswith("DJANGO_")}
    env.update(dict.fromkeys(SYNTRACK_VARIABLES, ""))
    env.update(
        DJANGO_SETTINGS_MODULE="syntrack_site.settings",
        PYTHONUNBUFFERED="1",
        SECRET_KEY=SECRET_KEY,
        SYNTRACK_LOG_LEVEL="info",
    )
    env.update(overrides)
    return env


def database_env() -> dict[str, str]:
    """Variables that point a subprocess at the database this test process uses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"SYNTRACK_DB_PATH": str(db["NAME"]), "DATABASE_URL": ""}
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return {"DATABASE_URL": f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"}


def poller_env(upstream: FakeUpstream | None = None, **overrides: str) -> dict[str, str]:
    """A hermetic environment with both providers configured against ``upstream``."""
    env = base_env(**database_env())
    if upstream is not None:
        url = f"http://127.0.0.1:{upstream.server_port}"
        env.update(
            SYNTHETIC_API_KEY=SYNTHETIC_KEY,
            SYNTHETIC_BASE_URL=url,
            ZAI_API_KEY=ZAI_KEY,
            ZAI_BASE_URL=f"{url}/api",
        )
    env.update(overrides)
    return env


def run_manage(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return run_python("manage.py", *args, env=env, timeout=timeout)


def run_python(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """This Python in the project directory, e.g. ``run_python("-c", "import syntrack_site.wsgi", env=…)``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def fake_upstream(port: int = 0, **options: object) -> Iterator[FakeUpstream]:
    """``tools.fake_upstream`` on ``port`` (0: a free one), served from a thread for the block's duration."""
    server = serve(port, **options)
    thread = threading.Thread(target=server.serve_forever, name=f"fake-upstream-{port}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def providers_at_fake_upstream(settings) -> Iterator[FakeUpstream]:
    """Both providers configured, with the process tests' keys, against a fake upstream in this process."""
    with fake_upstream() as server:
        url = f"http://127.0.0.1:{server.server_port}"
        settings.SYNTHETIC_API_KEY, settings.SYNTHETIC_BASE_URL = SYNTHETIC_KEY, url
        settings.ZAI_API_KEY, settings.ZAI_BASE_URL = ZAI_KEY, f"{url}/api"
        yield server


class Process:
    """A subprocess whose stdout and stderr are collected line by line in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=PROJECT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A group of its own, so kill() reaches its children too (serve's gunicorn): an orphan
            # would hold the pipes open and the readers with them.
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._events: queue.Queue[None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, self.stdout_lines), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, self.stderr_lines), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.rstrip("\n"))
            self._events.put(None)

    @property
    def stdout(self) -> str:
        return "\n".join(self.stdout_lines)

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def output(self) -> str:
        return f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    def wait_for_line(self, text: str, timeout: float = 15, stream: str = "any") -> str:
        """The first line holding ``text``; fails if the process exits or time runs out first."""
        deadline = time.monotonic() + timeout
        while True:
            sources = {"stdout": [self.stdout_lines], "stderr": [self.stderr_lines]}.get(
                stream, [self.stdout_lines, self.stderr_lines]
            )
            for lines in sources:
                for line in list(lines):
                    if text in line:
                        return line
            if self.popen.poll() is not None:
                self.finish_reading()
                if any(text in line for lines in sources for line in lines):
                    continue
                raise AssertionError(f"exited with {self.popen.returncode} before printing {text!r}\n{self.output}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} within {timeout} s\n{self.output}")
            with suppress(queue.Empty):
                self._events.get(timeout=min(remaining, 0.1))

    def send(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout=timeout)
        self.finish_reading()
        return code

    def finish_reading(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)

    def kill(self) -> None:
        """SIGKILL it and whatever it started, and reap; a no-op for what has already exited."""
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self.finish_reading()
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def processes() -> Iterator[Callable[..., Process]]:
    """Start subprocesses with ``start(args, env)``; every one is killed at the end, whatever happens."""
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str]) -> Process:
        process = Process(args, env)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def wait_until(predicate: Callable[[], bool], timeout: float, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message}: not reached within {timeout} s")
        time.sleep(0.05)
