"""``manage.py guard``: exit 0 when enough of a provider's quota is left, 1 when not (or stale), 2 on bad usage.

For agents and CI: ``./syntrack guard --provider zai --min-remaining-percent 20 || exit 1``.
"""

from __future__ import annotations

import argparse
import json

from django.core.management.base import CommandError
from django.db import DatabaseError

from quotas import guard
from quotas.api import ApiEncoder
from quotas.management.base import OneLineErrorsCommand, usage_error
from quotas.toolforms import DEFAULT_MIN_REMAINING, GuardForm


class Command(OneLineErrorsCommand):
    # A read-only tool whose output scripts read: no system-check warnings on stderr
    # (`check`, `migrate` and `serve` run them), and no view imports to pay for.
    requires_system_checks: list[str] = []
    help = (
        "Say whether a provider's quotas have enough left, from the last poll: exit 0 if so, 1 if not "
        "or if the last poll failed or is stale, 2 on bad usage. Prints one line (--json: the API's body)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--provider", help="synthetic or zai (required)")
        parser.add_argument("--quota", help="one quota key (default: every quota of the plan must pass)")
        parser.add_argument(
            "--min-remaining-percent",
            help=f"share of the limit that must be left, 0-100 (default {DEFAULT_MIN_REMAINING:g})",
        )
        parser.add_argument("--json", action="store_true", help="print the body of GET /api/guard instead")

    def handle(self, *args: object, **options: object) -> None:
        form = GuardForm(
            {
                "provider": options["provider"] or "",
                "quota": options["quota"] or "",
                "min_remaining_percent": options["min_remaining_percent"] or "",
            }
        )
        if not form.is_valid():
            raise usage_error(f"--{form.first_error().replace('_', '-')}")
        data = form.cleaned_data
        try:
            verdict = guard.check(data["provider"], data["quota"], data["min_remaining_percent"])
        except DatabaseError as e:
            raise CommandError(f"guard: database error: {e}", returncode=1) from None
        if verdict.kind == guard.UNKNOWN_QUOTA:
            raise usage_error(f"--{verdict.body['error']}")
        if options["json"]:
            self.stdout.write(json.dumps(verdict.body, cls=ApiEncoder))
        else:
            self.stdout.write(verdict.line())
        if not verdict.ok:
            raise SystemExit(1)
