"""A BaseCommand whose usage errors are one line and exit 2 (product.md §2)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError


class OneLineErrorsCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str) -> None:
            if parser.called_from_command_line:
                sys.stderr.write(f"{subcommand}: {message} (see --help)\n")
                sys.exit(2)
            raise CommandError(f"Error: {message}", returncode=2)

        parser.error = error
        return parser


def usage_error(message: str) -> CommandError:
    """Bad usage or configuration: exit code 2."""
    return CommandError(message, returncode=2)
