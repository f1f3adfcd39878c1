"""Checks that an adapter's parse() survives odd but valid JSON.

Shared by the Synthetic and Z.ai parser tests: whatever a payload holds,
parse() returns storable quotas or raises a clean PollFailure, nothing else.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from quotas.providers.base import MAX_KEY, MAX_LABEL, MAX_MESSAGE, MAX_PLAN, MAX_UNIT, Parsed, PollFailure, Quota

OUTCOMES = {"drift", "unauthorized", "rate_limited", "server_error", "network_error", "invalid_response"}


def assert_storable(result: Parsed) -> None:
    """What the adapter hands over fits the columns and JSON fields it is stored in, on any database."""
    keys = [q.key for q in result.quotas]
    assert len(keys) == len(set(keys)), keys
    assert result.quotas, "a Parsed always carries at least one quota"
    for q in result.quotas:
        assert isinstance(q, Quota)
        assert re.fullmatch(r"[a-z0-9_]+", q.key) and len(q.key) <= MAX_KEY, q.key
        assert isinstance(q.label, str) and 0 < len(q.label) <= MAX_LABEL, q.label
        assert isinstance(q.unit, str) and 0 < len(q.unit) <= MAX_UNIT, q.unit
        assert q.kind in ("reset", "rolling")
        for name in ("used", "limit", "remaining", "percent"):
            value = getattr(q, name)
            assert value is None or (type(value) is float and math.isfinite(value)), (name, value)
        if q.remaining is not None and q.used is not None and q.limit is not None:
            assert q.remaining >= 0
        if q.resets_at is not None:
            assert q.resets_at.utcoffset().total_seconds() == 0
        text = json.dumps(q.details, allow_nan=False)  # ValueError on NaN/inf
        assert "\\u0000" not in text and "\x00" not in q.label + q.unit
    assert result.plan is None or (isinstance(result.plan, str) and 0 < len(result.plan) <= MAX_PLAN)
    for note in result.unknown:
        assert isinstance(note, str) and len(note) <= 200 and "\x00" not in note


def assert_failure_is_clean(failure: PollFailure) -> None:
    assert failure.outcome in OUTCOMES
    assert isinstance(failure.message, str) and 0 < len(failure.message) <= MAX_MESSAGE
    assert "\x00" not in failure.message
    assert str(failure) == failure.message


ODD_VALUES: list[Any] = [
    None,
    "",
    "abc",
    "12",
    "$1e400",
    "\x00",
    "\ud800",
    [],
    [[1, [2]], {"limit": 3}],
    {},
    {"limit": None},
    True,
    -1,
    0,
    1e308,
    -1e308,
    10**400,
    float("nan"),
    float("inf"),
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "x" * 5000,
]


def json_paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every position in a JSON document, its root included."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += json_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += json_paths(value, (*path, index))
    return found


def replaced(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    result = copy.deepcopy(document)
    node = result
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return result


def parse_safely(parse: Callable[[Any], Parsed], data: Any) -> Parsed | PollFailure:
    """``parse`` must either return storable quotas or raise a clean PollFailure."""
    try:
        result = parse(data)
    except PollFailure as failure:
        assert_failure_is_clean(failure)
        return failure
    assert_storable(result)
    return result


def single_replacements(document: Any) -> Iterator[tuple[tuple, Any, Any]]:
    """Every position of ``document`` replaced, one at a time, by every odd value."""
    for path in json_paths(document):
        for value in ODD_VALUES:
            yield path, value, replaced(document, path, value)


def assert_survives_every_replacement(parse: Callable[[Any], Parsed], document: Any, name: str) -> None:
    for path, value, mutated in single_replacements(document):
        try:
            parse_safely(parse, mutated)
        except Exception as e:  # pragma: no cover - the message names the case
            raise AssertionError(f"{name}: {path} = {value!r:.60} raised {e!r}") from e


def assert_survives_random_mutations(
    parse: Callable[[Any], Parsed], documents: list[Any], seed: int, rounds: int = 2000
) -> None:
    """Up to four positions at a time replaced, from a fixed seed so failures repeat."""
    rng = random.Random(seed)
    for _ in range(rounds):
        document = rng.choice(documents)
        for _ in range(rng.randint(1, 4)):
            document = replaced(document, rng.choice(json_paths(document)), rng.choice(ODD_VALUES))
        try:
            parse_safely(parse, document)
        except Exception as e:  # pragma: no cover - the message names the case
            raise AssertionError(f"{document!r:.300} raised {e!r}") from e


def store_parsed(provider: str, parsed: Parsed) -> int:
    """Store parsed quotas as readings of a new snapshot; return how many rows the database holds."""
    from quotas.models import QuotaReading, Snapshot

    snapshot = Snapshot.objects.create(provider=provider, plan=parsed.plan or "", drift_notes=parsed.unknown)
    QuotaReading.objects.bulk_create(
        QuotaReading(snapshot=snapshot, provider=provider, captured_at=snapshot.captured_at, **asdict(q))
        for q in parsed.quotas
    )
    return QuotaReading.objects.filter(snapshot=snapshot).count()
