"""``manage.py createtoken NAME``: a read-only API token, printed once and alone on stdout.

Nothing else goes to stdout, so ``TOKEN=$(./syntrack createtoken grafana)``
captures exactly the token; only its digest is stored.
"""

from __future__ import annotations

from accounts import tokens
from quotas.management.base import OneLineErrorsCommand, usage_error


class Command(OneLineErrorsCommand):
    help = "Create a read-only API token (GET /api/*, /metrics) and print it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="what the token is for, e.g. grafana (1-64 characters)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            _, token = tokens.create(str(options["name"]))
        except tokens.TokenError as e:
            raise usage_error(str(e)) from None
        self.stdout.write(token)
