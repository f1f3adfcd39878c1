"""How numbers leave SynTrack: one rule per kind, applied where the API bodies are built.

- Shares (``percent``, ``projected_percent``, averages of shares): 2 decimals.
- Money (unit ``usd``): cents, whether reported or derived.
- Counts the upstream reported (requests, calls, tokens, credits): exactly as
  reported, so 154.3 requests stay 154.3 (product.md §5).
- Derived amounts (sums of steps, averages, rates per hour, projections):
  2 decimals; enough for half requests, and float fuzz such as
  0.30000000000000004 never reaches a client.
- Durations in seconds: whole seconds.

Non-finite values become None: JSON has no NaN.
"""

from __future__ import annotations

import math

DECIMALS = 2
MONEY = "usd"
SHARE = "percent"


def _finite(value: float | None) -> float | None:
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return None
    return value


def percent(value: float | None) -> float | None:
    value = _finite(value)
    return round(value, DECIMALS) if value is not None else None


def reported(value: float | None, unit: str) -> float | None:
    """An amount as the upstream reported it: money to cents, shares to 2 decimals, counts untouched."""
    value = _finite(value)
    if value is None:
        return None
    return round(value, DECIMALS) if unit in (MONEY, SHARE) else value


def derived(value: float | None) -> float | None:
    """An amount SynTrack computed (rate, projection, sum, average), in any unit."""
    value = _finite(value)
    return round(value, DECIMALS) if value is not None else None


def seconds(value: float | None) -> int | None:
    value = _finite(value)
    return round(value) if value is not None else None
