"""Databases of SynTrack v1.7 / onWatch (Go), built with its schema (fixtures/onwatch/schema-v1.7.sql).

``build()`` writes what the Go program would have written over a span of polls
every minute: Synthetic and Z.ai snapshots with its column mapping and its
time texts (RFC3339Nano with trimmed fractions; Z.ai reset times in the
server's local offset), its exact-``renewsAt`` mini-cycles, and two sessions
per provider: a run that crashed (closed at the restart, as v1.7 did) and
one stopped cleanly. The quota events are fixed, so tests know them:

- Synthetic subscription (limit 1350, 5-hour windows) resets at ``T0 + 2 h``
  (plus 0.386 s), then every 5 hours; search's renewsAt is "poll + 1 h" on
  every poll (drift, no reset); tool calls renew a day after T0.
- Z.ai tokens (5-hour window) reset at ``T0 + 3 h`` (plus 0.482 s), then every
  5 hours; the monthly tool-call allowance has no reset time (v1.7).
- The poller is down from ``T0 + DOWN_FROM`` for ``DOWN_FOR``.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

SCHEMA = Path(__file__).resolve().parent / "fixtures" / "onwatch" / "schema-v1.7.sql"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SUB_FIRST_RESET = timedelta(hours=2, milliseconds=386)
TOKENS_FIRST_RESET = timedelta(hours=3, milliseconds=482)
WINDOW = timedelta(hours=5)
DOWN_FROM = timedelta(hours=3, minutes=30)
DOWN_FOR = timedelta(minutes=20)
IST = timezone(timedelta(hours=5, minutes=30))


def go_text(at: datetime, zone: timezone = UTC) -> str:
    """``at`` as Go's RFC3339Nano writes it: trailing zeros of the fraction dropped, ``Z`` for UTC."""
    local = at.astimezone(zone)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond:06d}".rstrip("0")
    offset = local.strftime("%z")
    return text + ("Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}")


def poll_times(start: datetime, hours: float) -> list[datetime]:
    """A poll every minute (landing a few ms late), except while the poller is down."""
    times, i = [], 0
    while (at := start + i * MINUTE) < start + timedelta(hours=hours):
        if not (start + DOWN_FROM <= at < start + DOWN_FROM + DOWN_FOR):
            times.append(at + timedelta(milliseconds=(i * 37) % 1000))
        i += 1
    return times


def next_reset(at: datetime, first: datetime) -> datetime:
    """The first reset instant after ``at`` in a 5-hour schedule starting at ``first``."""
    while first <= at:
        first += WINDOW
    return first


def build(path: Path | str, start: datetime, hours: float) -> dict:
    """Write a v1.7 database at ``path``; returns what it holds (poll times, session spans)."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA.read_text())
    times = poll_times(start, hours)
    sub_first, tokens_first = start + SUB_FIRST_RESET, start + TOKENS_FIRST_RESET
    tool_renews = start + timedelta(days=1, seconds=0.39)
    go_cycles: dict[str, str] = {}
    for at in times:
        sub_reset = next_reset(at, sub_first)
        sub_used = round(((at - (sub_reset - WINDOW)).total_seconds() / 60) * 1.3, 1)
        search_used = float(int((at - start).total_seconds() // 2400))
        tool_used = float(int((at - start).total_seconds() // 30))
        db.execute(
            "INSERT INTO quota_snapshots (captured_at, sub_limit, sub_requests, sub_renews_at, search_limit, "
            "search_requests, search_renews_at, tool_limit, tool_requests, tool_renews_at) "
            "VALUES (?, 1350, ?, ?, 250, ?, ?, 16200, ?, ?)",
            (
                go_text(at), sub_used, go_text(sub_reset), search_used, go_text(at + HOUR), tool_used,
                go_text(tool_renews),
            ),
        )  # fmt: skip
        # v1.7's exact comparison: a "cycle" per distinct renewsAt (search: one per poll).
        for quota, renews in (("subscription", sub_reset), ("search", at + HOUR), ("toolcall", tool_renews)):
            if go_cycles.get(quota) != go_text(renews):
                db.execute(
                    "UPDATE reset_cycles SET cycle_end = ? WHERE quota_type = ? AND cycle_end IS NULL",
                    (go_text(at), quota),
                )
                db.execute(
                    "INSERT INTO reset_cycles (quota_type, cycle_start, renews_at) VALUES (?, ?, ?)",
                    (quota, go_text(at), go_text(renews)),
                )
                go_cycles[quota] = go_text(renews)

        tokens_reset = next_reset(at, tokens_first)
        tokens_used = int((at - (tokens_reset - WINDOW)).total_seconds() / 3600 * 20_000_000)
        calls = int((at - start).total_seconds() // 600)
        details = [
            {"modelCode": "search-prime", "usage": calls // 2},
            {"modelCode": "web-reader", "usage": calls - calls // 2},
        ]
        db.execute(
            "INSERT INTO zai_snapshots (captured_at, time_limit, time_unit, time_number, time_usage, "
            "time_current_value, time_remaining, time_percentage, time_usage_details, tokens_limit, tokens_unit, "
            "tokens_number, tokens_usage, tokens_current_value, tokens_remaining, tokens_percentage, "
            "tokens_next_reset) VALUES (?, 5, 5, 1, 1000, ?, ?, ?, ?, 15, 3, 5, 200000000, ?, ?, ?, ?)",
            (
                go_text(at + timedelta(milliseconds=200)), calls, 1000 - calls, calls * 100 // 1000,
                json.dumps(details), tokens_used, max(200_000_000 - tokens_used, 0),
                min(tokens_used * 100 // 200_000_000, 100), go_text(tokens_reset, IST),
            ),
        )  # fmt: skip

    restart = start + DOWN_FROM + DOWN_FOR
    end = start + timedelta(hours=hours)
    spans = [(start - timedelta(seconds=0.5), restart), (restart - timedelta(seconds=0.5), end + timedelta(seconds=3))]
    for provider in ("synthetic", "zai"):
        for started, ended in spans:
            count = sum(1 for at in times if started <= at < ended)
            db.execute(
                "INSERT INTO sessions (id, provider, started_at, ended_at, poll_interval, max_sub_requests, "
                "snapshot_count) VALUES (?, ?, ?, ?, 60000, 155.0, ?)",
                (str(uuid.uuid4()), provider, go_text(started), go_text(ended), count),
            )
    db.commit()
    db.close()
    return {"times": times, "sessions": spans, "end": end}
