"""Provider-neutral shapes shared by every adapter (product.md §5)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# Outcomes of one poll attempt; the API exposes exactly these strings.
OK = "ok"
DRIFT = "drift"
UNAUTHORIZED = "unauthorized"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
NETWORK_ERROR = "network_error"
INVALID_RESPONSE = "invalid_response"


class PollFailure(Exception):
    """A poll that yielded no usable quota, with its outcome kind."""

    def __init__(self, outcome: str, message: str, *, retry_after: float | None = None, body: bytes | None = None):
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.retry_after = retry_after
        # Kept for drift: the raw body goes into the snapshot for `reparse`.
        self.body = body


@dataclass
class Quota:
    """One window a provider reported, before it is stored."""

    key: str
    label: str
    kind: str  # "reset" or "rolling"
    unit: str
    used: float | None = None
    limit: float | None = None
    remaining: float | None = None
    percent: float | None = None
    resets_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # remaining = max(limit - used, 0) when both are known, else the
        # upstream's own remaining; percent from used/limit when possible.
        if self.used is not None and self.limit is not None:
            self.remaining = max(subtract(self.limit, self.used), 0.0)
            if self.limit > 0:
                self.percent = self.used / self.limit * 100
            elif self.percent is None:
                self.percent = 0.0


@dataclass
class Parsed:
    """What one successful payload said."""

    quotas: list[Quota]
    plan: str | None = None
    # Unknown keys or limit types: the poll counts, but is flagged as drift.
    unknown: list[str] = field(default_factory=list)


def parse_json_object(body: bytes) -> dict:
    """Decode a body that must be a JSON object, or fail as invalid_response."""
    if not body.strip():
        raise PollFailure(INVALID_RESPONSE, "empty response body")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PollFailure(INVALID_RESPONSE, f"response is not JSON: {_excerpt(body)}") from None
    if not isinstance(data, dict):
        raise PollFailure(INVALID_RESPONSE, f"response is JSON but not an object: {_excerpt(body)}")
    return data


def _excerpt(body: bytes) -> str:
    text = body[:80].decode("utf-8", "replace")
    return re.sub(r"\s+", " ", text).strip() + ("…" if len(body) > 80 else "")


def number(value: Any) -> float | None:
    """A finite float from a JSON number or a numeric/currency string, else None.

    Decimal parsing keeps "$11.20" at 11.2 rather than 11.199999….
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("$", "").replace("US", "").strip()
        try:
            result = float(Decimal(text))
        except (InvalidOperation, ValueError):
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def subtract(a: float, b: float) -> float:
    """``a - b`` in decimal, so 1350 - 154.3 is 1195.7 and not 1195.7000000000000455."""
    return float(Decimal(repr(a)) - Decimal(repr(b)))


def iso_time(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string, else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def epoch_ms(value: Any) -> datetime | None:
    """An aware UTC datetime from epoch milliseconds (Z.ai), else None."""
    ms = number(value)
    if ms is None or ms <= 0:
        return None
    # Some clients report seconds; anything before 2001 in ms is really seconds.
    if ms < 1e12:
        ms *= 1000
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def first(mapping: dict, *names: str) -> Any:
    """The first present value among camelCase/snake_case aliases."""
    for name in names:
        if name in mapping and mapping[name] is not None:
            return mapping[name]
    return None
