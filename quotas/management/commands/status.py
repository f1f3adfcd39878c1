"""``manage.py status``: the poller, each provider's last poll, the database; exit 0 healthy, 1 not, 2 bad usage."""

from __future__ import annotations

import argparse
import json

from django.core.management.base import CommandError
from django.db import DatabaseError

from quotas import status
from quotas.management.base import OneLineErrorsCommand


class Command(OneLineErrorsCommand):
    # A read-only tool whose output scripts read: no system-check warnings on stderr
    # (`check`, `migrate` and `serve` run them), and no view imports to pay for.
    requires_system_checks: list[str] = []
    help = (
        "Report whether a poller holds the lock (and its pid), each provider's last poll with its outcome and "
        "age, the database and its size, and row counts. Exit 0 when healthy, 1 when a provider's last poll "
        "failed or is older than three poll intervals."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")

    def handle(self, *args: object, **options: object) -> None:
        try:
            body = status.report()
        except DatabaseError as e:
            raise CommandError(f"status: database unavailable: {e}", returncode=1) from None
        self.stdout.write(json.dumps(body, indent=2) if options["json"] else status.human(body))
        if not body["healthy"]:
            raise SystemExit(1)
