"""``manage.py import_onwatch PATH``: import a SynTrack v1.7 / onWatch database's history (quotas.onwatch)."""

from __future__ import annotations

import argparse

from django.core.management.base import CommandError

from quotas import onwatch
from quotas.locking import LockHeld, PollLock
from quotas.management.base import OneLineErrorsCommand, usage_error


class Command(OneLineErrorsCommand):
    help = (
        "Import the snapshots and sessions of a SynTrack v1.7 / onWatch (Go) SQLite database, opened read-only; "
        "reset cycles and roll-ups are rebuilt by SynTrack's own tracking. Running it again imports nothing twice."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", help="the old program's database file (copy it while the old program is stopped)")

    def handle(self, *args: object, **options: object) -> None:
        path = options["path"]
        try:
            source = onwatch.open_database(path)
        except onwatch.NotOnwatchDatabase as e:
            raise usage_error(str(e)) from None
        source.close()
        # The poller's lock: the import tracks cycles and writes what a running poller would be writing.
        lock = PollLock("manage.py import_onwatch")
        try:
            lock.acquire()
        except LockHeld as e:
            raise CommandError(str(e), returncode=1) from None
        try:
            results = onwatch.run(path)
        except onwatch.NotOnwatchDatabase as e:
            raise usage_error(str(e)) from None
        except onwatch.ImportRefused as e:
            raise CommandError(str(e), returncode=1) from None
        finally:
            lock.release()
        for counts in results:
            self.stdout.write(counts.line())
