"""Times as the JSON API shows them: ISO-8601 UTC, whole seconds, ``Z``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def isostring(moment: datetime | None) -> str | None:
    """``2026-02-06T16:16:18Z`` for an aware datetime, None for None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime(FORMAT)


def epoch_isostring(second: int) -> str:
    """``isostring`` of a whole Unix second, without making a datetime (charts format thousands)."""
    return time.strftime(FORMAT, time.gmtime(second))
