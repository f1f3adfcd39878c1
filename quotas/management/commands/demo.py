"""``manage.py demo``: fill the database with realistic history of both providers (quotas.demo)."""

from __future__ import annotations

import argparse

from django.core.management.base import CommandError

from quotas import demo
from quotas.locking import LockHeld, PollLock
from quotas.management.base import OneLineErrorsCommand, usage_error


class Command(OneLineErrorsCommand):
    help = (
        "Replace the polled data with simulated history of both providers (every window kind, resets, "
        "sessions, failed polls, gaps), stored through the poller's own parsing and cycle tracking. "
        "Refuses a database that holds real polls unless --force."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--days", type=int, default=30, help=f"days of history, {demo.MIN_DAYS}-{demo.MAX_DAYS} (default 30)"
        )
        parser.add_argument(
            "--interval",
            type=int,
            default=60,
            help=f"seconds between simulated polls, {demo.MIN_INTERVAL}-{demo.MAX_INTERVAL} (default 60)",
        )
        parser.add_argument(
            "--force", action="store_true", help="replace the polls already in the database, real ones included"
        )

    def handle(self, *args: object, **options: object) -> str:
        days, interval = options["days"], options["interval"]
        if not demo.MIN_DAYS <= days <= demo.MAX_DAYS:
            raise usage_error(f"--days must be between {demo.MIN_DAYS} and {demo.MAX_DAYS}, got {days}")
        if not demo.MIN_INTERVAL <= interval <= demo.MAX_INTERVAL:
            raise usage_error(
                f"--interval must be between {demo.MIN_INTERVAL} and {demo.MAX_INTERVAL} seconds, got {interval}"
            )
        # The poller's lock: demo rewrites what a running poller would be writing to.
        lock = PollLock("manage.py demo")
        try:
            lock.acquire()
        except LockHeld as e:
            raise CommandError(str(e), returncode=1) from None
        try:
            counts = demo.fill(days, interval, force=options["force"])
        except demo.DemoRefused as e:
            raise CommandError(str(e), returncode=1) from None
        finally:
            lock.release()
        return (
            f"demo: {days} days every {interval} s: {counts.snapshots} snapshots, {counts.readings} readings, "
            f"{counts.cycles} reset cycles, {counts.sessions} sessions, {counts.attempts} poll attempts "
            f"({counts.failed} failed) in {counts.seconds:.1f} s"
        )
