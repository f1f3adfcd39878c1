"""``manage.py serve``: the poller and gunicorn together, in the foreground.

This is what ``make run`` ends with. Production runs the two as separate
services (README, "Production"); this command is for one terminal and Ctrl-C.
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.db import DatabaseError

from accounts.bootstrap import default_password_users
from quotas import providers
from quotas.management.base import OneLineErrorsCommand, usage_error

STOP_GRACE = 10.0


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost": addresses no other machine can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a public address


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` once, as gunicorn will, so a taken port is one clear line before anything starts.

    SO_REUSEADDR as gunicorn sets it: a port held only by connections in
    TIME_WAIT from a server that just stopped counts as free.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise usage_error(f"cannot listen on {host}: {e.strerror}; check SYNTRACK_HOST") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise usage_error(
                    f"port {port} on {host} is already in use (another SynTrack?): stop that server "
                    "or set SYNTRACK_PORT to a free port"
                ) from None
            raise usage_error(
                f"cannot listen on {host}:{port}: {e.strerror}; check SYNTRACK_HOST and SYNTRACK_PORT"
            ) from None


def check_safe_to_expose(host: str) -> None:
    """Refuse a non-loopback address while some password is a default one (product.md §3, §9).

    Fails closed: a database that cannot be read might hold such a password.
    """
    if is_loopback(host):
        return
    try:
        weak = default_password_users()
    except DatabaseError as e:
        raise usage_error(
            f"refusing to serve on {host}: cannot read the users ({e.__class__.__name__}); "
            "run `./syntrack migrate` first, or serve on SYNTRACK_HOST=127.0.0.1"
        ) from None
    if weak:
        raise usage_error(
            f"refusing to serve on {host}: the password of {weak[0]!r} is a published default; "
            "set a real one (SYNTRACK_ADMIN_PASS in .env, or `./syntrack changepassword`) "
            "or serve on SYNTRACK_HOST=127.0.0.1"
        )


class Command(OneLineErrorsCommand):
    help = "Run `manage.py poll` and gunicorn together until Ctrl-C (what `make run` starts)."
    # Run by handle() after the refusals, so that a refusal is the only line on stderr.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")

    def handle(self, *args: object, **options: object) -> None:
        host, port = settings.SYNTRACK_HOST, settings.SYNTRACK_PORT
        check_safe_to_expose(host)
        check_port_free(host, port)
        self.check(display_num_errors=False)

        self.stopping = False
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        base = settings.BASE_DIR
        # IPv6 addresses go in brackets, for gunicorn's --bind and in URLs alike.
        address = f"[{host.strip('[]')}]" if ":" in host else host
        bind = f"{address}:{port}"
        shown = "localhost" if host in ("0.0.0.0", "::", "[::]") else address
        self.stdout.write(f"SynTrack: dashboard on http://{shown}:{port}/ (Ctrl-C stops everything)")

        children: dict[str, subprocess.Popen] = {}
        if providers.configured():
            # --skip-checks: serve has just shown their warnings; once is enough.
            children["poller"] = subprocess.Popen([sys.executable, "manage.py", "poll", "--skip-checks"], cwd=base)
        else:
            self.stderr.write(
                "No provider key yet: set SYNTHETIC_API_KEY or ZAI_API_KEY in .env and run again. "
                "Serving the dashboard only."
            )
        # The production settings (deploy/gunicorn.conf.py: timeouts, log lines, JSON logs with
        # SYNTRACK_LOG_FORMAT=json), with the address and workers given here.
        children["web"] = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "syntrack_site.wsgi",
                "--config", str(base / "deploy" / "gunicorn.conf.py"),
                "--bind", bind, "--workers", str(options["workers"]),
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
