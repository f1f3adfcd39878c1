"""``manage.py status``: is this installation healthy? The poller, each provider's last poll, the database.

Healthy means: every configured provider (every polled one when none is
configured) had its last poll succeed, within ``STALE_INTERVALS`` poll intervals. A
``storage_error`` of the last day (answers SynTrack's database took late) is a warning. Whether a poller
runs is reported, not judged: a last poll that is recent enough says as much.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils import timezone

from alerts.models import Alert, Delivery
from lib.timefmt import isostring
from quotas import pollnow, providers, reports
from quotas.guard import STALE_INTERVALS
from quotas.models import Outcome, PollAttempt, PollSession, QuotaReading, QuotaRollup, ResetCycle, Snapshot

COUNTED = {
    "snapshots": Snapshot,
    "readings": QuotaReading,
    "rollups": QuotaRollup,
    "cycles": ResetCycle,
    "sessions": PollSession,
    "polls": PollAttempt,
    "alerts": Alert,
    "deliveries": Delivery,
}


def report(now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    state = pollnow.poller_state()
    holder = state.holder
    pid = re.search(r"\bpid (\d+)", holder) if holder else None
    keyed = set(providers.configured())
    checked = []
    for provider in providers.NAMES:
        # Without any key (status run from a shell lacking the env), the providers that were polled are judged.
        judged = provider in keyed or not keyed
        checked.append(_provider(provider, provider in keyed, judged, state.interval(provider), now))
    problems = [p["problem"] for p in checked if p["problem"]]
    warnings = [
        f"{p['id']}: SynTrack's database refused writes from {p['last_storage_error']['at']}: "
        f"{p['last_storage_error']['message']}"
        for p in checked
        if p["last_storage_error"]
    ]
    return {
        "healthy": not problems,
        "problems": problems,
        "warnings": warnings,
        "checked_at": isostring(now),
        "poller": {"running": holder is not None, "holder": holder, "pid": int(pid.group(1)) if pid else None},
        "providers": checked,
        "database": database(),
        "rows": {name: model.objects.count() for name, model in COUNTED.items()},
    }


def _provider(provider: str, configured: bool, judged: bool, interval: int, now: datetime) -> dict[str, Any]:
    attempts = PollAttempt.objects.filter(provider=provider).order_by("-at", "-id")
    # A storage error says answers were written late, not that a poll failed: it is a warning
    # beside the polls, and health is judged on the polls. During the outage itself no poll is
    # written, so the provider goes stale and that is the problem reported.
    latest = attempts.exclude(outcome=Outcome.STORAGE_ERROR).values("at", "outcome", "message").first()
    success = attempts.filter(outcome=Outcome.OK).values_list("at", flat=True).first()
    age = (now - latest["at"]).total_seconds() if latest else None
    problem = None
    if not judged:
        pass
    elif latest is None:
        if configured:
            problem = f"{provider}: configured but never polled"
    elif latest["outcome"] != Outcome.OK:
        problem = f"{provider}: the last poll failed: {latest['outcome']}"
    elif age > STALE_INTERVALS * interval:
        problem = f"{provider}: the last poll is {int(age)} s old, over {STALE_INTERVALS} intervals of {interval} s"
    return {
        "id": provider,
        "configured": configured,
        "interval_seconds": interval,
        "last_poll_at": isostring(latest["at"]) if latest else None,
        "last_outcome": latest["outcome"] if latest else None,
        "last_message": latest["message"] if latest else None,
        "age_seconds": int(age) if age is not None else None,
        "last_success_at": isostring(success),
        "last_storage_error": reports.last_storage_error(provider, now),
        "problem": problem,
    }


def database() -> dict[str, Any]:
    """Engine, where (never a password) and size in bytes."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            size = cursor.fetchone()[0]
        host = settings.get("HOST") or "local socket"
        port = f":{settings['PORT']}" if settings.get("PORT") else ""
        user = f"{settings['USER']}@" if settings.get("USER") else ""
        return {"engine": "postgresql", "name": f"{user}{host}{port}/{settings['NAME']}", "size_bytes": size}
    path = Path(str(settings["NAME"]))
    size = sum(_size(Path(f"{path}{suffix}")) for suffix in ("", "-wal"))
    return {"engine": connection.vendor, "name": str(path), "size_bytes": size}


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def human(body: dict[str, Any]) -> str:
    """The report for people, one fact a line."""
    poller = body["poller"]
    lines = [f"status: {'healthy' if body['healthy'] else 'UNHEALTHY'} at {body['checked_at']}"]
    lines.append(f"poller: {'running, ' + poller['holder'] if poller['running'] else 'not running'}")
    for p in body["providers"]:
        if p["last_poll_at"] is None:
            last = "never polled"
        else:
            last = f"last poll {p['last_poll_at']} ({p['age_seconds']} s ago): {p['last_outcome']}"
            if p["last_outcome"] != Outcome.OK and p["last_message"]:
                last += f" ({p['last_message']})"
        configured = "configured" if p["configured"] else "not configured"
        lines.append(f"{p['id']}: {configured}, every {p['interval_seconds']} s, {last}")
    db = body["database"]
    lines.append(f"database: {db['engine']} {db['name']}, {_megabytes(db['size_bytes'])}")
    lines.append("rows: " + ", ".join(f"{name} {count}" for name, count in body["rows"].items()))
    lines.extend(f"problem: {problem}" for problem in body["problems"])
    lines.extend(f"warning: {warning}" for warning in body["warnings"])
    return "\n".join(lines)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
