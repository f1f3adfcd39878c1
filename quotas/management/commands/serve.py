"""``manage.py serve``: the poller and gunicorn together, in the foreground.

This is what ``make run`` ends with. Production runs the two as separate
services (README, "Production"); this command is for one terminal and Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.conf import settings

from quotas import providers
from quotas.management.base import OneLineErrorsCommand

STOP_GRACE = 10.0


class Command(OneLineErrorsCommand):
    help = "Run `manage.py poll` and gunicorn together until Ctrl-C (what `make run` starts)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")

    def handle(self, *args: object, **options: object) -> None:
        self.stopping = False
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        base = settings.BASE_DIR
        bind = f"{settings.SYNTRACK_HOST}:{settings.SYNTRACK_PORT}"
        host = "localhost" if settings.SYNTRACK_HOST in ("0.0.0.0", "::", "") else settings.SYNTRACK_HOST
        self.stdout.write(f"SynTrack: dashboard on http://{host}:{settings.SYNTRACK_PORT}/ (Ctrl-C stops everything)")

        children: dict[str, subprocess.Popen] = {}
        if providers.configured():
            children["poller"] = subprocess.Popen([sys.executable, "manage.py", "poll"], cwd=base)
        else:
            self.stderr.write(
                "No provider key yet: set SYNTHETIC_API_KEY or ZAI_API_KEY in .env and run again. "
                "Serving the dashboard only."
            )
        children["web"] = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "syntrack_site.wsgi",
                "--bind", bind, "--workers", str(options["workers"]),
                "--access-logfile", "-", "--graceful-timeout", "5",
            ],
            cwd=base,
        )  # fmt: skip

        code = 0
        while not self.stopping and children:
            for name, child in list(children.items()):
                status = child.poll()
                if status is None:
                    continue
                del children[name]
                if name == "web":
                    self.stderr.write(f"gunicorn exited with status {status}; stopping")
                    code = status or 1
                    self.stopping = True
                elif status != 0:
                    self.stderr.write(f"the poller exited with status {status}; the dashboard keeps running")
            time.sleep(0.2)
        self.stop(children)
        if code:
            sys.exit(code)

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def stop(self, children: dict[str, subprocess.Popen]) -> None:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for child in children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.stdout.write("SynTrack stopped.")
