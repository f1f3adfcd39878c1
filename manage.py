#!/usr/bin/env python
"""Django's command-line utility for SynTrack."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syntrack_site.settings")
    from django.core.management import execute_from_command_line

    from syntrack_site.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as e:
        # A bad setting is the user's to fix: one line, no traceback.
        sys.stderr.write(f"syntrack: configuration error: {e}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
