"""``manage.py reparse``: rebuild readings and reset cycles from the stored raw bodies."""

from __future__ import annotations

import argparse

from django.core.management.base import CommandError

from quotas import providers
from quotas.locking import LockHeld, PollLock
from quotas.management.base import OneLineErrorsCommand, usage_error
from quotas.reparsing import ReparseCounts, ReparseError, reparse


class Command(OneLineErrorsCommand):
    help = (
        "Rebuild quota readings and reset cycles from the raw upstream bodies kept with each snapshot, "
        "so a parser fix recovers history. Snapshots whose body was pruned keep their readings."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--provider", choices=sorted(providers.ADAPTERS), help="only this provider (default: every provider)"
        )

    def handle(self, *args: object, **options: object) -> None:
        only = options["provider"]
        if only is not None and only not in providers.ADAPTERS:
            raise usage_error(f"--provider must be one of {', '.join(sorted(providers.ADAPTERS))}, got {only!r}")
        chosen = [only] if only is not None else list(providers.ADAPTERS)

        # The poller's lock: a reparse must never race a running poller.
        lock = PollLock("manage.py reparse")
        try:
            lock.acquire()
        except LockHeld as e:
            raise CommandError(str(e), returncode=1) from None
        total = ReparseCounts()
        try:
            for provider in chosen:
                total += reparse(provider)
        except ReparseError as e:
            raise CommandError(f"{e}; nothing was changed for this provider", returncode=1) from None
        finally:
            lock.release()

        names = ", ".join(providers.NAMES[p] for p in chosen)
        unusable = f" ({total.unusable} still without a usable quota)" if total.unusable else ""
        self.stdout.write(
            f"{names}: {total.reparsed} snapshots reparsed{unusable}, {total.kept} kept (raw body pruned), "
            f"{total.readings} readings, {total.cycles} reset cycles"
        )
