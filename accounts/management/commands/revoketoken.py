"""``manage.py revoketoken NAME``: the token stops working at once; exit 1 when there is none of that name."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts import tokens
from quotas.management.base import OneLineErrorsCommand


class Command(OneLineErrorsCommand):
    help = "Revoke the read-only API token called NAME."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="the token's name")

    def handle(self, *args: object, **options: object) -> None:
        name = str(options["name"])
        if not tokens.revoke(name):
            raise CommandError(f"no API token called {name!r}", returncode=1)
        self.stdout.write(f"revoked {name!r}")
