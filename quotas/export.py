"""Export of the stored history as CSV or JSON Lines, streamed in constant memory.

``GET /api/export`` and ``manage.py export`` both write ``stream()``'s bytes.
Each kind of row (``WHAT``) has a fixed column list, is ordered by its time
then its id (stable across runs and databases), and is read with
``iterator(chunk_size=CHUNK)``: on PostgreSQL that is a server-side cursor,
on SQLite chunked ``fetchmany()``; no more than a chunk of rows is ever held.
Times are ISO-8601 UTC with ``Z``; empty CSV cells and JSON nulls are unknowns.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Model, QuerySet

from alerts.models import Alert
from lib.timefmt import isostring
from quotas.models import PollAttempt, PollSession, QuotaReading, ResetCycle

# Rows fetched per round trip (and per server-side cursor FETCH).
CHUNK = 2000
# Rows per yielded piece of output: a few hundred KB at most.
ROWS_PER_PIECE = 500
FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "json": ("application/x-ndjson", "jsonl")}


@dataclass(frozen=True)
class Kind:
    model: type[Model]
    time_field: str
    # (column name, model field); datetimes become ISO strings, JSON fields stay objects in JSON Lines.
    columns: tuple[tuple[str, str], ...]
    times: frozenset[str]
    json_columns: frozenset[str] = frozenset()


WHAT: dict[str, Kind] = {
    "readings": Kind(
        QuotaReading,
        "captured_at",
        (
            ("id", "id"),
            ("provider", "provider"),
            ("captured_at", "captured_at"),
            ("quota", "key"),
            ("label", "label"),
            ("kind", "kind"),
            ("unit", "unit"),
            ("used", "used"),
            ("limit", "limit"),
            ("remaining", "remaining"),
            ("percent", "percent"),
            ("resets_at", "resets_at"),
            ("cycle_id", "cycle_id"),
            ("snapshot_id", "snapshot_id"),
            ("details", "details"),
        ),
        frozenset({"captured_at", "resets_at"}),
        frozenset({"details"}),
    ),
    "cycles": Kind(
        ResetCycle,
        "started_at",
        (
            ("id", "id"),
            ("provider", "provider"),
            ("quota", "quota"),
            ("unit", "unit"),
            ("started_at", "started_at"),
            ("ended_at", "ended_at"),
            ("resets_at", "resets_at"),
            ("limit", "limit"),
            ("peak_used", "peak_used"),
            ("consumed", "consumed"),
            ("readings_count", "readings_count"),
        ),
        frozenset({"started_at", "ended_at", "resets_at"}),
    ),
    "sessions": Kind(
        PollSession,
        "started_at",
        (
            ("id", "id"),
            ("provider", "provider"),
            ("started_at", "started_at"),
            ("ended_at", "ended_at"),
            ("interval_seconds", "interval_seconds"),
            ("polls_ok", "polls_ok"),
            ("polls_failed", "polls_failed"),
            ("last_success_at", "last_success_at"),
        ),
        frozenset({"started_at", "ended_at", "last_success_at"}),
    ),
    "polls": Kind(
        PollAttempt,
        "at",
        (
            ("id", "id"),
            ("provider", "provider"),
            ("at", "at"),
            ("outcome", "outcome"),
            ("drift", "drift"),
            ("latency_ms", "latency_ms"),
            ("message", "message"),
            ("session_id", "session_id"),
            ("snapshot_id", "snapshot_id"),
        ),
        frozenset({"at"}),
    ),
    "alerts": Kind(
        Alert,
        "at",
        (
            ("id", "id"),
            ("provider", "provider"),
            ("at", "at"),
            ("event", "event"),
            ("quota", "quota"),
            ("level", "level"),
            ("title", "title"),
            ("message", "message"),
        ),
        frozenset({"at"}),
    ),
}


def filename(what: str, fmt: str, provider: str | None) -> str:
    return f"syntrack-{what}-{provider or 'both'}.{FORMATS[fmt][1]}"


def content_type(fmt: str) -> str:
    return FORMATS[fmt][0]


def queryset(what: str, provider: str | None, since: datetime | None, until: datetime | None) -> QuerySet:
    """The rows to export: ``provider`` (None: every one), ``since`` ≤ time < ``until``."""
    kind = WHAT[what]
    rows = kind.model.objects.all()
    if provider:
        rows = rows.filter(provider=provider)
    if since is not None:
        rows = rows.filter(**{f"{kind.time_field}__gte": since})
    if until is not None:
        rows = rows.filter(**{f"{kind.time_field}__lt": until})
    return rows.order_by(kind.time_field, "id").values_list(*(field for _, field in kind.columns))


def rows(what: str, provider: str | None, since: datetime | None, until: datetime | None) -> Generator[dict[str, Any]]:
    """Each exported row as {column: JSON-ready value}, in the column order."""
    query = queryset(what, provider, since, until)
    if connection.vendor != "postgresql":
        yield from _dicts(WHAT[what], query)
        return
    # Inside a transaction the server-side cursor streams; declared in autocommit it would be
    # WITH HOLD, which PostgreSQL materialises whole when the declaring transaction commits,
    # before the first row. (Not on SQLite: its transactions take the write lock; WAL reads need none.)
    with transaction.atomic():
        yield from _dicts(WHAT[what], query)


def _dicts(kind: Kind, query: QuerySet) -> Iterator[dict[str, Any]]:
    names = [name for name, _ in kind.columns]
    converters = [_iso if name in kind.times else _sorted if name in kind.json_columns else _plain for name in names]
    for values in query.iterator(chunk_size=CHUNK):
        yield {name: convert(value) for name, convert, value in zip(names, converters, values, strict=True)}


def stream(
    what: str, fmt: str, provider: str | None, since: datetime | None, until: datetime | None
) -> Generator[bytes]:
    """The export's bytes, in pieces of at most ROWS_PER_PIECE rows (the CSV header comes first, alone)."""
    kind = WHAT[what]
    writer = _csv_lines(kind) if fmt == "csv" else _json_line
    if fmt == "csv":
        yield _CSV_WRITER.writerow([name for name, _ in kind.columns]).encode()
    piece: list[str] = []
    source = rows(what, provider, since, until)
    try:
        for row in source:
            piece.append(writer(row))
            if len(piece) >= ROWS_PER_PIECE:
                yield "".join(piece).encode()
                piece = []
        if piece:
            yield "".join(piece).encode()
    finally:
        # A client gone mid-way closes this generator: end the cursor's transaction now, not at garbage collection.
        source.close()


class _Echo:
    """A file-like object whose ``write`` hands the line back (the csv module's way to format one row)."""

    def write(self, value: str) -> str:
        return value


_CSV_WRITER = csv.writer(_Echo())


def _csv_lines(kind: Kind) -> Callable[[dict[str, Any]], str]:
    json_columns = kind.json_columns

    def line(row: dict[str, Any]) -> str:
        return _CSV_WRITER.writerow(
            [_json(value) if name in json_columns else _cell(value) for name, value in row.items()]
        )

    return line


def _json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def _iso(value: datetime | None) -> str | None:
    return isostring(value)


def _sorted(value: Any) -> Any:
    """JSON with its keys in order: SQLite keeps them as written, PostgreSQL's jsonb reorders them."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return _plain(value)


def _plain(value: Any) -> Any:
    # NaN and infinities are not JSON; the adapters never store them, but a hand-edited row must not break a stream.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
