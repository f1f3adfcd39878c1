"""Provider-neutral shapes shared by every adapter (product.md §5)."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

# Outcomes of one poll attempt; the API exposes exactly these strings.
OK = "ok"
DRIFT = "drift"
UNAUTHORIZED = "unauthorized"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
NETWORK_ERROR = "network_error"
INVALID_RESPONSE = "invalid_response"

# Column sizes of what a quota is stored in (quotas.models uses these).
MAX_KEY = 64
MAX_LABEL = 100
MAX_UNIT = 16
MAX_PLAN = 64
MAX_MESSAGE = 500

# Sane ranges of what a window may report; beyond them the window is drift, not data
# (issue 10: one "percentage": 1e308 took the charts down, a negative limit faked a reset).
# - Amounts (used, limit, remaining, in requests, calls, tokens, credits or USD): finite, never
#   negative (Z.ai's `remaining` "goes to 0 and never negative", Synthetic reports `remaining: 0`
#   when limited), and below 1e15: the largest real budget is Z.ai's weekly 4e8 tokens, so this
#   is millions of times any plan, yet sums of a year of readings stay far from float overflow.
# - Shares (percent used, Synthetic's percentRemaining): within [0, 1000]. Usage may pass the
#   limit (Z.ai: 200,112,618 of 200,000,000 is 100.06 %), but not tenfold.
MAX_AMOUNT = 1e15
MAX_PERCENT = 1000.0


class PollFailure(Exception):
    """A poll that yielded no usable quota, with its outcome kind."""

    def __init__(self, outcome: str, message: str, *, retry_after: float | None = None, body: bytes | None = None):
        super().__init__()
        self.outcome = outcome
        self.message = message
        self.retry_after = retry_after
        # Kept for drift: the raw body goes into the snapshot for `reparse`.
        self.body = body

    @property
    def message(self) -> str:
        return self.args[0] if self.args else ""

    @message.setter
    def message(self, value: str) -> None:
        # One text for .message, str() and repr(): redacting one redacts all.
        self.args = (clean_text(value, MAX_MESSAGE, ellipsis=False),)


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
        # Whatever an adapter computed, a stored quota holds finite numbers
        # and text that fits its columns.
        self.key = slug(self.key) or "unknown"
        self.label = clean_text(self.label, MAX_LABEL) or self.key
        self.unit = clean_text(self.unit, MAX_UNIT)
        self.used = finite(self.used)
        self.limit = finite(self.limit)
        self.remaining = finite(self.remaining)
        self.percent = finite(self.percent)
        # remaining = max(limit - used, 0) when both are known, else the
        # upstream's own remaining; percent from used/limit when possible.
        if self.used is not None and self.limit is not None:
            self.remaining = finite(max(subtract(self.limit, self.used), 0.0))
            if self.limit > 0:
                self.percent = percent_of(self.used, self.limit)
            elif self.percent is None:
                self.percent = 0.0


@dataclass
class Parsed:
    """What one successful payload said."""

    quotas: list[Quota]
    plan: str | None = None
    # Unknown keys or limit types: the poll counts, but is flagged as drift.
    unknown: list[str] = field(default_factory=list)


class OutOfRange(ValueError):
    """A window reported an impossible number: the window is drift (see MAX_AMOUNT, MAX_PERCENT)."""

    def __init__(self, field: str, value: Any) -> None:
        super().__init__(field, value)
        self.field = field
        self.value = value

    def note(self, where: str) -> str:
        """The drift note: which window, which field, what it said (cut short)."""
        shown = self.value if isinstance(self.value, str) else repr(self.value)
        return f"{where} ({self.field} out of range: {clean_text(shown, 40)})"


def parse_json_object(body: bytes) -> dict:
    """Decode a body that must be a JSON object, or fail as invalid_response."""
    if not body.strip():
        raise PollFailure(INVALID_RESPONSE, "empty response body")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PollFailure(INVALID_RESPONSE, f"response is not JSON: {_excerpt(body)}") from None
    except RecursionError:  # nested deeper than the interpreter recurses
        raise PollFailure(INVALID_RESPONSE, f"response JSON is nested too deeply: {_excerpt(body)}") from None
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
        try:
            result = float(value)
        except OverflowError:  # a JSON integer with hundreds of digits
            return None
    elif isinstance(value, str):
        text = _CURRENCY.sub("", value)
        if not text or len(text) > 100:
            return None
        try:
            result = float(Decimal(text))
        except (InvalidOperation, ValueError, OverflowError):
            return None
    else:
        return None
    return finite(result)


_CURRENCY = re.compile(r"(?i)usd|us(?=\$)|\$|,|\s")


def amount(value: Any, field: str) -> float | None:
    """``number(value)`` of a used/limit/remaining figure: None when absent or not a number;
    OutOfRange when it is a number outside [0, MAX_AMOUNT] (NaN and ∞ included)."""
    return _bounded(value, field, MAX_AMOUNT)


def share(value: Any, field: str) -> float | None:
    """``number(value)`` of a percentage: None when absent; OutOfRange outside [0, MAX_PERCENT]."""
    return _bounded(value, field, MAX_PERCENT)


def _bounded(value: Any, field: str, high: float) -> float | None:
    result = number(value)
    if result is None:
        if _non_finite(value):
            raise OutOfRange(field, value)
        return None
    if not 0.0 <= result <= high:
        raise OutOfRange(field, value)
    return result


def _non_finite(value: Any) -> bool:
    """Whether ``value`` is a number that ``number()`` dropped for being NaN, ∞ or too large."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True  # number() keeps every finite one
    if isinstance(value, str):
        text = _CURRENCY.sub("", value)
        if not text or len(text) > 100:
            return False
        try:
            return not math.isfinite(float(Decimal(text)))
        except (InvalidOperation, ValueError, OverflowError):
            return False
    return False


def check_quota(quota: Quota) -> Quota:
    """``quota`` when every number it will store lies in its sane range, else OutOfRange.

    The adapters check what upstream sent with ``amount``/``share``; this checks
    what the Quota derived from it (a percent of a tiny limit, say).
    """
    for name in ("used", "limit", "remaining"):
        value = getattr(quota, name)
        if value is not None and not 0.0 <= value <= MAX_AMOUNT:
            raise OutOfRange(name, value)
    if quota.percent is not None and not 0.0 <= quota.percent <= MAX_PERCENT:
        raise OutOfRange("percent", quota.percent)
    return quota


def finite(value: float | None) -> float | None:
    """``value`` as a float when it is a finite number, else None (no NaN or ∞ is ever stored)."""
    if type(value) is float:  # the common case, first
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def subtract(a: float, b: float) -> float:
    """``a - b`` in decimal, so 1350 - 154.3 is 1195.7 and not 1195.7000000000000455."""
    return float(_decimal(a) - _decimal(b))


def multiply(a: float, b: float) -> float:
    """``a × b`` in decimal, so 0.05 × 100 is 5.0 and 0.05 × 500 is 25.0."""
    return float(_decimal(a) * _decimal(b))


def percent_of(part: float, whole: float) -> float | None:
    """``part / whole × 100`` in decimal (251 of 1250 is 20.08, not 20.080000000000002)."""
    if not whole:
        return None
    return finite(float(_decimal(part) * 100 / _decimal(whole)))


_WHITESPACE = re.compile(r"\s+")


def clean_text(value: Any, max_length: int, *, ellipsis: bool = True) -> str:
    """Upstream text made safe to store and show: no control characters, one line, bounded."""
    text = value if isinstance(value, str) else str(value)
    # The same few labels come back at every poll (and a million times in `demo`): remember them.
    if len(text) <= 200:
        return _clean_text(text, max_length, ellipsis)
    return _clean_text.__wrapped__(text, max_length, ellipsis)


@lru_cache(maxsize=1024)
def _clean_text(text: str, max_length: int, ellipsis: bool) -> str:
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in text)
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) <= max_length:
        return text
    return text[: max_length - 1] + "…" if ellipsis else text[:max_length]


def slug(name: Any, max_length: int = MAX_KEY) -> str:
    """A stable key from upstream text: ``FOO_LIMIT`` → ``foo_limit``, ``dailyCap`` → ``daily_cap``."""
    text = name if isinstance(name, str) else str(name)
    if len(text) <= 200:
        return _slug(text, max_length)
    return _slug.__wrapped__(text, max_length)


@lru_cache(maxsize=1024)
def _slug(text: str, max_length: int) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return text[:max_length].rstrip("_")


def iso_time(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string, else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    # Go's zero time (0001-01-01T00:00:00Z) means "not set", never a real instant.
    if parsed.year <= 1:
        return None
    return parsed


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
