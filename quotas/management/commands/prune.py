"""``manage.py prune``: apply the retention rules now, in full (quotas.retention)."""

from __future__ import annotations

import argparse
import time

from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from quotas import retention
from quotas.locking import LockHeld, PollLock
from quotas.management.base import OneLineErrorsCommand

# Seconds between two progress lines of one kind of row.
PROGRESS_EVERY = 2.0


class Command(OneLineErrorsCommand):
    help = (
        "Remove what the retention settings no longer keep (raw bodies, fine readings, old snapshots and "
        "poll attempts) in small batches, then give the space back. Safe beside a running poller."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only count what would be removed")
        parser.add_argument(
            "--vacuum",
            action="store_true",
            help="SQLite: also rebuild the file once (VACUUM), switching an older database to incremental "
            "auto-vacuum; needs the poller stopped",
        )

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.now()
        pruner = retention.Pruner(now=now)
        self.describe(pruner.horizons)
        if options["dry_run"]:
            for name, count in pruner.counts().items():
                self.stdout.write(f"{name}: {count} would be removed")
            return
        shown: dict[str, float] = {}

        def progress(task: retention.Task) -> None:
            if task.finished or time.monotonic() - shown.get(task.name, 0.0) >= PROGRESS_EVERY:
                shown[task.name] = time.monotonic()
                self.stdout.write(f"{task.name}: {task.done} removed" + ("" if task.finished else " so far..."))

        pruner.run(progress=progress)
        retention.mark_done(now)
        if pruner.vacuumed_pages:
            self.stdout.write(f"SQLite: {pruner.vacuumed_pages} free pages handed back")
        if options["vacuum"]:
            self.vacuum()

    def describe(self, horizons: retention.Horizons) -> None:
        for name, horizon in horizons.named():
            before = f"before {horizon:%Y-%m-%d %H:%M}Z" if horizon is not None else "none (kept forever)"
            self.stdout.write(f"{name} to prune: {before}")

    def vacuum(self) -> None:
        if connection.vendor != "sqlite":
            self.stdout.write("--vacuum: nothing to do on PostgreSQL (autovacuum reclaims the space)")
            return
        # VACUUM holds the write lock for as long as it copies the file: a
        # running poller would time out on it.
        lock = PollLock("manage.py prune --vacuum")
        try:
            lock.acquire()
        except LockHeld as e:
            raise CommandError(f"{e}; stop it before --vacuum", returncode=1) from None
        try:
            before = retention.page_count()
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
                cursor.execute("VACUUM")
            mode = "incremental" if retention.incremental_vacuum_enabled() else "off"
            self.stdout.write(f"SQLite: VACUUM {before} -> {retention.page_count()} pages, auto-vacuum {mode}")
        finally:
            lock.release()
