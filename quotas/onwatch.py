"""``import_onwatch``: the history of a SynTrack v1.7 / onWatch (Go) SQLite database, imported.

The Go program kept no raw bodies, only columns (reference syntrack-v1.7.md §2).
Each of its snapshots is turned back into the payload the provider sent (the
Go program's own column mapping, inverted) and parsed by the real adapter,
so keys, labels, kinds and units are exactly what a poll stores. The rows
then go the way ``demo`` writes its simulated polls: SynTrack's own cycle
tracking (``cycles.OpenCycles``), its sessions and ``rollups.Builder``.

What is not taken from the Go database, and why:

- its reset cycles: exact ``renewsAt`` comparison made a "cycle" of nearly every
  poll, cycles started at the first poll rather than at the reset, the
  revealing reading went into the old cycle and Z.ai values were truncated to
  integers (§3, §10). Every fact they hold comes from the snapshots, which the
  Go program never pruned, so the cycles are rebuilt from those;
- its sessions' ``max_*`` columns (raw counter peaks, not usage) and ``ended_at``
  (orphans were closed at the next start-up): sessions are rebuilt from the
  snapshots each one took, and end at their last one;
- times as text with variable fractions (string order is wrong within a second)
  and Z.ai reset times in the server's local offset: rows are read in id order
  (the order they were written) and every time is parsed into UTC.

What is kept follows the retention, as ``demo`` does: cycles, sessions and
roll-ups for the whole history (roll-ups as far as their own horizons),
snapshots and readings only from the readings' horizon on, plus the last
hour before the latest snapshot (what ``prune`` would leave of a real
history). So an old history holds what a SynTrack install of that age holds.

Idempotent: each provider's import is recorded in the ``onwatch_import``
setting (the last snapshot imported, committed with each batch), and a later
run goes on after it (its last roll-ups reopened), so a second run adds
nothing, an interrupted one resumes and a later copy of the old database adds
what is new. Go snapshots from SynTrack's own first poll of a
provider on are never imported (its own polls cover that time); older ones
cannot be put before its own cycles, so a provider SynTrack already polls
is refused.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType

from django.db import transaction
from django.utils import timezone

from quotas import cycles, polling, retention, rollups
from quotas.demo import MARKER as DEMO_MARKER
from quotas.models import (
    PollAttempt,
    PollSession,
    QuotaReading,
    QuotaRollup,
    ResetCycle,
    Resolution,
    Setting,
    Snapshot,
)
from quotas.providers import ADAPTERS
from quotas.providers.base import PollFailure

# The Setting recording what was imported: {provider: {"until": iso, "path": str, "at": iso}}.
IMPORT_KEY = "onwatch_import"
# Go snapshots per transaction (cut at the next whole hour, so roll-ups are complete at each commit).
BATCH = 2000
HOUR = timedelta(hours=1)

# The v1.7 columns this import reads, per table (reference §2).
REQUIRED = {
    "quota_snapshots": {
        "id", "provider", "captured_at", "sub_limit", "sub_requests", "sub_renews_at", "search_limit",
        "search_requests", "search_renews_at", "tool_limit", "tool_requests", "tool_renews_at",
    },
    "zai_snapshots": {
        "id", "captured_at", "time_unit", "time_number", "time_usage", "time_current_value", "time_remaining",
        "time_percentage", "time_usage_details", "tokens_unit", "tokens_number", "tokens_usage",
        "tokens_current_value", "tokens_remaining", "tokens_percentage", "tokens_next_reset",
    },
    "sessions": {"id", "provider", "started_at", "ended_at", "poll_interval", "snapshot_count"},
    "reset_cycles": {"id", "quota_type", "cycle_start", "cycle_end"},
    "zai_reset_cycles": {"id", "quota_type", "cycle_start", "cycle_end"},
}  # fmt: skip
SNAPSHOT_TABLES = {"synthetic": "quota_snapshots", "zai": "zai_snapshots"}
CYCLE_TABLES = {"synthetic": "reset_cycles", "zai": "zai_reset_cycles"}


class NotOnwatchDatabase(Exception):
    """The path is no readable v1.7 database (exit 2)."""


class ImportRefused(Exception):
    """The target database cannot take this import (exit 1)."""


@dataclass
class Counts:
    provider: str
    snapshots: int = 0  # Go snapshots imported (their readings kept or not)
    kept: int = 0  # of those, written as snapshots with readings (within retention)
    readings: int = 0
    skipped: int = 0  # Go snapshots already imported, covered by SynTrack's own polls, or unreadable
    cycles: int = 0  # reset cycles opened
    go_cycles: int = 0  # the Go cycle rows, rebuilt rather than copied
    sessions: int = 0
    sessions_skipped: int = 0
    rollups: int = 0

    def line(self) -> str:
        return (
            f"{ADAPTERS[self.provider].NAME}: {self.snapshots} snapshots imported ({self.kept} with readings kept, "
            f"{self.readings} readings), {self.skipped} skipped; {self.cycles} reset cycles rebuilt "
            f"(from {self.go_cycles} v1.7 cycle rows); {self.sessions} sessions imported, "
            f"{self.sessions_skipped} skipped; {self.rollups} roll-ups"
        )


def open_database(path: str) -> sqlite3.Connection:
    """``path`` opened read-only, once it is known to have the v1.7 tables; else NotOnwatchDatabase."""
    if not os.path.isfile(path):
        raise NotOnwatchDatabase(f"{path}: no such file")
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        found = {}
        for table in REQUIRED:
            found[table] = {row[1] for row in source.execute(f"PRAGMA table_info({table})")}
    except sqlite3.Error as e:
        raise NotOnwatchDatabase(f"{path}: not a SQLite database ({e})") from None
    for table, columns in REQUIRED.items():
        if not found[table]:
            source.close()
            raise NotOnwatchDatabase(f"{path}: not a SynTrack v1.7 / onWatch database (no table {table})")
        missing = sorted(columns - found[table])
        if missing:
            source.close()
            lacks = ", ".join(missing)
            raise NotOnwatchDatabase(f"{path}: not a SynTrack v1.7 / onWatch database ({table} lacks {lacks})")
    return source


def check_target() -> None:
    """Refuse a database that ``demo`` filled: real history must not mix with simulated polls."""
    if Setting.objects.filter(key=DEMO_MARKER).exists():
        raise ImportRefused(
            "this database holds demo data (made by `manage.py demo`); import into a fresh database "
            "(another SYNTRACK_DB_PATH or DATABASE_URL) so real history does not mix with simulated polls"
        )


def run(path: str, now: datetime | None = None) -> list[Counts]:
    """Import both providers' history from the v1.7 database at ``path``. The caller holds the poller lock."""
    source = open_database(path)
    try:
        check_target()
        horizons = retention.Horizons.at(now or timezone.now())
        return [Importer(source, provider, path, horizons).run() for provider in ADAPTERS]
    finally:
        source.close()


# --- reading the Go database -------------------------------------------------------------------

_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?")


def go_time(text: object) -> datetime | None:
    """A Go RFC3339Nano text (any fraction length, ``Z`` or an offset) as UTC; None for empty or the zero time."""
    if not isinstance(text, str):
        return None
    match = _TIME.match(text.strip())
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}.{fraction}{zone}").astimezone(UTC)
    except ValueError:
        return None
    return None if parsed.year <= 1 else parsed


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def synthetic_payload(row: sqlite3.Row) -> dict:
    """The generation-A payload a ``quota_snapshots`` row was stored from."""

    def block(prefix: str) -> dict:
        return {
            "limit": row[f"{prefix}_limit"],
            "requests": row[f"{prefix}_requests"],
            "renewsAt": _iso(go_time(row[f"{prefix}_renews_at"])),
        }

    return {"subscription": block("sub"), "search": {"hourly": block("search")}, "toolCallDiscounts": block("tool")}


def zai_payload(row: sqlite3.Row) -> dict:
    """The payload a ``zai_snapshots`` row was stored from. A limit the answer lacked left its columns at zero."""
    limits = []
    for kind, prefix in (("TOKENS_LIMIT", "tokens"), ("TIME_LIMIT", "time")):
        fields = ("unit", "number", "usage", "current_value", "remaining", "percentage")
        values = [row[f"{prefix}_{name}"] for name in fields]
        if not any(values):
            continue
        unit, number, usage, current, remaining, percentage = values
        limit = {
            "type": kind, "unit": unit, "number": number, "usage": usage,
            "currentValue": current, "remaining": remaining, "percentage": percentage,
        }  # fmt: skip
        if prefix == "tokens":
            reset = go_time(row["tokens_next_reset"])
            if reset is not None:
                limit["nextResetTime"] = round(reset.timestamp() * 1000)
        else:
            try:
                details = json.loads(row["time_usage_details"] or "null")
            except ValueError:
                details = None
            if isinstance(details, list):
                limit["usageDetails"] = details
        limits.append(limit)
    return {"code": 200, "msg": "Operation successful", "success": True, "data": {"limits": limits}}


PAYLOADS = {"synthetic": synthetic_payload, "zai": zai_payload}


# --- writing SynTrack's rows -------------------------------------------------------------------


class Importer:
    """One provider's import: its Go snapshots in write order, batch by batch."""

    def __init__(self, source: sqlite3.Connection, provider: str, path: str, horizons: retention.Horizons) -> None:
        self.source = source
        self.provider = provider
        self.adapter: ModuleType = ADAPTERS[provider]
        self.path = path
        self.horizons = horizons
        self.counts = Counts(provider)
        record = Setting.objects.filter(key=IMPORT_KEY).values_list("value", flat=True).first() or {}
        self.record = record if isinstance(record, dict) else {}
        done = (self.record.get(provider) or {}).get("until")
        # A later run goes on after the last snapshot imported.
        self.start = datetime.fromisoformat(done) if done else None
        first_poll = PollAttempt.objects.filter(provider=provider).order_by("at").values_list("at", flat=True)
        self.own_from: datetime | None = first_poll.first()
        self.open_cycles = cycles.OpenCycles()
        self.new_rollups: list[QuotaRollup] = []
        self.builder = rollups.Builder(self.new_rollups.extend, before=self._before(), since=self._kept_rollups())
        self.reopened = self._reopen()
        self.sessions = Sessions(source, provider, self.counts)
        self.last_at: datetime | None = None

    def _kept_rollups(self) -> dict[int, datetime | None]:
        horizons = self.horizons
        return {Resolution.FIVE_MINUTES: horizons.five_minute_rollups, Resolution.HOUR: horizons.hourly_rollups}

    def _before(self) -> dict[tuple[str, str], rollups.Reading]:
        """Each quota's last rolled-up reading, so a resumed import carries consumption and gaps on."""
        before = {}
        hourly = QuotaRollup.objects.filter(provider=self.provider, resolution=Resolution.HOUR)
        for key in hourly.values_list("key", flat=True).distinct().order_by():
            latest = hourly.filter(key=key).order_by("-start").first()
            before[(self.provider, key)] = rollups.Reading(
                latest.last_at, latest.label, latest.kind, latest.unit, latest.last_percent, latest.last_used,
                latest.last_cycle_id, latest.last_tools,
            )  # fmt: skip
        return before

    def _reopen(self) -> list[int]:
        """Hand the roll-ups of the last import's last buckets back to the builder, to be folded on.

        They are deleted and written again with the first batch (one transaction), so a later
        copy of the old database continues them instead of opening a second bucket.
        """
        if self.start is None:
            return []
        ids = []
        for resolution in rollups.RESOLUTIONS:
            last = QuotaRollup.objects.filter(
                provider=self.provider, resolution=resolution, start=rollups.bucket_start(self.start, resolution)
            )
            for rollup in last:
                ids.append(rollup.pk)
                rollup.pk = None
                self.builder.open.setdefault((self.provider, rollup.key), {})[resolution] = rollup
        return ids

    def run(self) -> Counts:
        table = SNAPSHOT_TABLES[self.provider]
        cycle_table = CYCLE_TABLES[self.provider]
        self.counts.go_cycles = self.source.execute(f"SELECT COUNT(*) FROM {cycle_table}").fetchone()[0]
        rows = self._rows(table)
        first = next(rows, None)
        if first is None:
            self.sessions.import_rest(self.own_from)
            return self.counts
        if self.own_from is not None:
            raise ImportRefused(
                f"{self.adapter.NAME}: SynTrack has polled it since {self.own_from:%Y-%m-%d %H:%M} UTC, and the "
                "older v1.7 history cannot be put before its own reset cycles; import into a database "
                "before its first poll (README: Coming from onWatch)"
            )
        # Readings are kept from the readings' horizon on, and the hour before the latest snapshot
        # always (quotas.retention).
        horizon = self.horizons.readings
        last_row = self.source.execute(f"SELECT captured_at FROM {table} ORDER BY id DESC LIMIT 1").fetchone()
        latest = go_time(last_row[0])
        self.readings_from = None if horizon is None or latest is None else min(horizon, latest - HOUR)
        cycles_before = self._cycle_count()
        batch: list[tuple[datetime, dict]] = []
        for at, payload in itertools.chain([first], rows):
            if len(batch) >= BATCH and rollups.bucket_start(at, Resolution.HOUR) != rollups.bucket_start(
                batch[-1][0], Resolution.HOUR
            ):
                self._write(batch)
                batch = []
            batch.append((at, payload))
        self._write(batch, last=True)
        self.sessions.import_rest(self.own_from)
        self.counts.cycles = self._cycle_count() - cycles_before
        return self.counts

    def _cycle_count(self) -> int:
        return ResetCycle.objects.filter(provider=self.provider).count()

    def _rows(self, table: str) -> Iterator[tuple[datetime, dict]]:
        """The Go snapshots to import, in the order they were written, with their payloads.

        Streams the table (a cursor); keeps only the time and the small payload of each row.
        """
        cursor = self.source.cursor()
        cursor.row_factory = sqlite3.Row
        previous: datetime | None = None
        for row in cursor.execute(f"SELECT * FROM {table} ORDER BY id"):
            at = go_time(row["captured_at"])
            if (
                at is None
                or (previous is not None and at <= previous)
                or (self.start is not None and at <= self.start)
                or (self.own_from is not None and at >= self.own_from)
            ):
                self.counts.skipped += 1
                continue
            previous = at
            yield at, PAYLOADS[self.provider](row)

    def _write(self, batch: list[tuple[datetime, dict]], last: bool = False) -> None:
        """Track, fold and write one batch of snapshots, and record it as imported: one transaction."""
        if not batch:
            return
        with transaction.atomic():
            snapshots: list[Snapshot] = []
            readings: list[QuotaReading] = []
            for at, payload in batch:
                try:
                    parsed = self.adapter.parse(payload)
                except PollFailure:
                    self.counts.skipped += 1  # nothing usable in the row (a Z.ai row with both limits absent)
                    continue
                session = self.sessions.at(at)
                light = [cycles.LightReading(self.provider, at, quota) for quota in parsed.quotas]
                polling.track_readings(light, session, self.open_cycles)
                if session is not None:
                    session.polls_ok += 1
                    session.last_success_at = at
                self.counts.snapshots += 1
                kept = self.readings_from is None or at >= self.readings_from
                if kept:
                    snapshot = Snapshot(provider=self.provider, captured_at=at, raw=None)
                    polling.apply_outcome(snapshot, parsed, None)
                    snapshots.append(snapshot)
                for quota, reading in zip(parsed.quotas, light, strict=True):
                    cycle_id = reading.cycle.pk if reading.cycle else None
                    if kept:
                        readings.append(
                            QuotaReading(
                                snapshot=snapshot, provider=self.provider, captured_at=at, cycle_id=cycle_id,
                                key=quota.key, label=quota.label, kind=quota.kind, unit=quota.unit, used=quota.used,
                                limit=quota.limit, remaining=quota.remaining, percent=quota.percent,
                                resets_at=quota.resets_at, details=quota.details,
                            )
                        )  # fmt: skip
                    if quota.percent is not None:  # as rollups.record folds them
                        charted = rollups.Reading(
                            at, quota.label, quota.kind, quota.unit, quota.percent, quota.used, cycle_id,
                            rollups.tool_levels(quota.details),
                        )  # fmt: skip
                        self.builder.add(self.provider, quota.key, charted)
                self.last_at = at
            Snapshot.objects.bulk_create(snapshots, batch_size=500)
            for reading in readings:
                reading.snapshot_id = reading.snapshot.pk
            QuotaReading.objects.bulk_create(readings, batch_size=1000)
            self.counts.kept += len(snapshots)
            self.counts.readings += len(readings)
            # The batch ends before a new hour: every roll-up so far is complete.
            self.builder.finish()
            if self.reopened:
                QuotaRollup.objects.filter(pk__in=self.reopened).delete()
                self.reopened = []
            if self.new_rollups:
                rollups.insert(self.new_rollups)
                self.counts.rollups += len(self.new_rollups)
                self.new_rollups.clear()
            self.open_cycles.flush()
            self.sessions.save()
            if self.last_at is not None:
                self._record(self.last_at)

    def _record(self, until: datetime) -> None:
        entry = {"until": until.isoformat(), "path": os.path.abspath(self.path), "at": timezone.now().isoformat()}
        self.record[self.provider] = entry
        Setting.objects.update_or_create(key=IMPORT_KEY, defaults={"value": self.record})


class Sessions:
    """The Go sessions of one provider, as SynTrack's poll sessions, met in time order.

    A snapshot belongs to the latest session started at or before it. Each
    session's counts and per-quota peaks and consumption come from its
    snapshots (``PollSession.record``), and it ends at its last one.
    """

    def __init__(self, source: sqlite3.Connection, provider: str, counts: Counts) -> None:
        self.provider = provider
        self.counts = counts
        found = []
        for started, interval in source.execute(
            "SELECT started_at, poll_interval FROM sessions WHERE provider = ? ORDER BY started_at", (provider,)
        ):
            at = go_time(started)
            if at is not None:
                found.append((at, interval))
        found.sort(key=lambda s: s[0])
        self.go = found
        self.next = 0
        self.current: PollSession | None = None
        self.touched: dict[int, PollSession] = {}

    def at(self, when: datetime) -> PollSession | None:
        while self.next < len(self.go) and self.go[self.next][0] <= when:
            self.current = self._session(*self.go[self.next])
            self.next += 1
        if self.current is not None:
            self.touched[self.current.pk] = self.current
        return self.current

    def _session(self, started: datetime, interval: object) -> PollSession | None:
        existing = PollSession.objects.filter(provider=self.provider, started_at=started).first()
        if existing is not None:
            self.counts.sessions_skipped += 1
            return existing
        seconds = round(interval / 1000) if isinstance(interval, int | float) and interval > 0 else 60
        self.counts.sessions += 1
        # Ends at its last snapshot (set as they come); one without any ends where it began.
        return PollSession.objects.create(
            provider=self.provider, started_at=started, ended_at=started, interval_seconds=max(seconds, 1)
        )

    def save(self) -> None:
        for session in self.touched.values():
            session.ended_at = max(session.last_success_at or session.started_at, session.started_at)
            session.save()
        self.touched = {}

    def import_rest(self, own_from: datetime | None) -> None:
        """The sessions no imported snapshot met (runs whose polls all failed, or all imported before)."""
        with transaction.atomic():
            for started, interval in self.go[self.next :]:
                if own_from is not None and started >= own_from:
                    self.counts.sessions_skipped += 1  # SynTrack's own polls cover that time
                    continue
                self._session(started, interval)
            self.next = len(self.go)
