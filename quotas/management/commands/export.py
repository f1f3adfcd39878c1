"""``manage.py export``: the bytes of ``GET /api/export``, to a file or standard output."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from django.core.management.base import CommandError
from django.db import DatabaseError

from quotas import export
from quotas.management.base import OneLineErrorsCommand, usage_error
from quotas.toolforms import ExportForm


class Command(OneLineErrorsCommand):
    # A read-only tool whose output scripts read: no system-check warnings on stderr
    # (`check`, `migrate` and `serve` run them), and no view imports to pay for.
    requires_system_checks: list[str] = []
    help = (
        "Export readings, cycles, sessions, polls or alerts as CSV (header row first) or JSON Lines, "
        "ordered by time, in constant memory. Times are ISO-8601 UTC."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--what", help=f"what to export: {', '.join(export.WHAT)} (required)")
        parser.add_argument("--format", help=f"{' or '.join(export.FORMATS)} (JSON Lines); default csv")
        parser.add_argument("--provider", help="synthetic, zai or both (default both)")
        parser.add_argument("--since", help="from this ISO-8601 date or date-time (UTC unless it names an offset)")
        parser.add_argument("--until", help="up to, not including, this date or date-time")
        parser.add_argument("--output", help="file to write (default standard output); written whole or not at all")

    def handle(self, *args: object, **options: object) -> None:
        form = ExportForm({name: options[name] or "" for name in ("what", "format", "provider", "since", "until")})
        if not form.is_valid():
            raise usage_error(f"--{form.first_error().replace('request: ', '').replace('_', '-')}")
        data = form.cleaned_data
        pieces = export.stream(data["what"], data["format"], data["provider"], data["since"], data["until"])
        output = options["output"]
        try:
            if output:
                _write_file(Path(output), pieces)
            else:
                _write_stdout(self, pieces)
        except DatabaseError as e:
            raise CommandError(f"export failed: database error: {e}", returncode=1) from None
        except OSError as e:
            where = output or "standard output"
            raise CommandError(f"export failed: {where}: {e.strerror or e}", returncode=1) from None


def _write_stdout(command: Command, pieces) -> None:
    binary = getattr(command.stdout._out, "buffer", None)
    try:
        for piece in pieces:
            if binary is not None:
                binary.write(piece)
            else:  # a text stream (call_command with stdout=StringIO)
                command.stdout._out.write(piece.decode())
        if binary is not None:
            binary.flush()
    except BrokenPipeError:
        # `export … | head`: the reader has what it wanted.
        sys.stderr.close()


def _write_file(path: Path, pieces) -> None:
    """A regular file is written beside itself and renamed at the end; a device or pipe directly."""
    if path.exists() and not path.is_file():
        with path.open("wb") as out:
            _copy(pieces, out)
        return
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            _copy(pieces, out)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _copy(pieces, out: BinaryIO) -> None:
    for piece in pieces:
        out.write(piece)
