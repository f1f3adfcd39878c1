"""``manage.py demo``: fill the database with realistic history of both providers (quotas.demo)."""

from __future__ import annotations

import argparse

from django.core.management.base import CommandError

from quotas import demo
from quotas.locking import LockHeld, PollLock
from quotas.management.base import OneLineErrorsCommand


def bounded(name: str, low: int, high: int, unit: str = ""):
    """An argparse type: a whole number in [low, high], else a one-line usage error (exit 2) before anything runs."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}{unit}, got {text!r}")
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


class Command(OneLineErrorsCommand):
    help = (
        "Replace the polled data with simulated history of both providers (every window kind, resets, "
        "sessions, failed polls, gaps), stored through the poller's own parsing and cycle tracking. "
        "Refuses a database that holds real polls unless --force."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--days",
            type=bounded("--days", demo.MIN_DAYS, demo.MAX_DAYS),
            default=30,
            help=f"days of history, {demo.MIN_DAYS}-{demo.MAX_DAYS} (default 30)",
        )
        parser.add_argument(
            "--interval",
            type=bounded("--interval", demo.MIN_INTERVAL, demo.MAX_INTERVAL, " seconds"),
            default=60,
            help=f"seconds between simulated polls, {demo.MIN_INTERVAL}-{demo.MAX_INTERVAL} (default 60)",
        )
        parser.add_argument(
            "--force", action="store_true", help="replace the polls already in the database, real ones included"
        )

    def handle(self, *args: object, **options: object) -> str:
        days, interval = options["days"], options["interval"]
        # The poller's lock: demo rewrites what a running poller would be writing to.
        lock = PollLock("manage.py demo")
        try:
            lock.acquire()
        except LockHeld as e:
            raise CommandError(str(e), returncode=1) from None
        try:
            counts = demo.fill(days, interval, force=options["force"])
        except (demo.DemoRefused, demo.DemoError) as e:
            raise CommandError(str(e), returncode=1) from None
        finally:
            lock.release()
        return (
            f"demo: {days} days every {interval} s, {counts.polls} polls ({counts.failed} failed) in "
            f"{counts.seconds:.1f} s; kept as the configured retention leaves them: {counts.snapshots} snapshots, "
            f"{counts.readings} readings, {counts.attempts} poll attempts, {counts.rollups} roll-ups, "
            f"{counts.cycles} reset cycles, {counts.sessions} sessions"
        )
