"""Synthetic (synthetic.new): ``GET {base}/v2/quotas`` with a Bearer key.

One parser reads every payload generation (upstream-apis.md §3.2):
A: subscription / search.hourly / toolCallDiscounts;
B: toolCallDiscounts renamed freeToolCalls;
C: plus the regenerating rollingFiveHourLimit and weeklyTokenLimit windows,
   whose money fields are "$24.00" strings.
"""

from __future__ import annotations

import re
from typing import Any

from quotas.providers.base import (
    DRIFT,
    Parsed,
    PollFailure,
    Quota,
    first,
    iso_time,
    number,
    subtract,
)

ID = "synthetic"
NAME = "Synthetic"
KNOWN_KEYS = {
    "subscription",
    "search",
    "toolCallDiscounts",
    "freeToolCalls",
    "rollingFiveHourLimit",
    "weeklyTokenLimit",
}


def url(base_url: str) -> str:
    return f"{base_url}/v2/quotas"


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def parse(data: dict) -> Parsed:
    """Turn a decoded payload into quotas; raise drift when none is usable."""
    quotas: list[Quota] = []
    unknown: list[str] = []

    def add(quota: Quota | None, where: str) -> None:
        if quota is None:
            unknown.append(f"{where} (unreadable)")
        else:
            quotas.append(quota)

    if "subscription" in data:
        add(_counter(data["subscription"], "subscription", "Subscription", "requests"), "subscription")

    search = data.get("search")
    if isinstance(search, dict):
        for window, block in search.items():
            if window == "hourly":
                add(_counter(block, "search_hourly", "Search (hourly)", "requests"), "search.hourly")
            else:
                unknown.append(f"search.{window}")
                generic = _counter(block, f"search_{_slug(window)}", f"Search ({window})", "requests")
                if generic is not None:
                    quotas.append(generic)
    elif "search" in data:
        unknown.append("search (unreadable)")

    # The tool-call allowance was renamed in March 2026; both names are the same quota.
    tool_calls = first(data, "freeToolCalls", "toolCallDiscounts")
    if tool_calls is not None:
        add(_counter(tool_calls, "free_tool_calls", "Tool calls", "calls"), "freeToolCalls")

    if "rollingFiveHourLimit" in data:
        add(_rolling_requests(data["rollingFiveHourLimit"]), "rollingFiveHourLimit")
    if "weeklyTokenLimit" in data:
        add(_weekly_credits(data["weeklyTokenLimit"]), "weeklyTokenLimit")

    for key, value in data.items():
        if key in KNOWN_KEYS:
            continue
        unknown.append(key)
        # An unknown block shaped like the others still becomes a quota.
        if isinstance(value, dict):
            generic = _counter(value, _slug(key), _label(key), "requests")
            if generic is not None:
                quotas.append(generic)

    if not quotas:
        what = "empty payload {}" if not data else f"no known quota in payload (keys: {', '.join(sorted(data))[:120]})"
        raise PollFailure(DRIFT, what)
    return Parsed(quotas=quotas, unknown=unknown)


def _counter(block: Any, key: str, label: str, unit: str) -> Quota | None:
    """A reset-style counter: ``{limit, requests, renewsAt}``."""
    if not isinstance(block, dict):
        return None
    used = number(first(block, "requests", "used", "usage"))
    limit = number(first(block, "limit", "max"))
    if used is None and limit is None:
        return None
    return Quota(
        key=key,
        label=label,
        kind="reset",
        unit=unit,
        used=used,
        limit=limit,
        remaining=number(block.get("remaining")),
        resets_at=iso_time(first(block, "renewsAt", "renews_at", "resetsAt")),
    )


def _rolling_requests(block: Any) -> Quota | None:
    """The 5-hour mana bar: ``tickPercent`` × ``max`` comes back every tick."""
    if not isinstance(block, dict):
        return None
    limit = number(first(block, "max", "limit"))
    remaining = number(block.get("remaining"))
    if limit is None and remaining is None:
        return None
    used = subtract(limit, remaining) if limit is not None and remaining is not None else None
    next_tick = iso_time(first(block, "nextTickAt", "next_tick_at"))
    # Upstream sends the share restored per tick as a fraction (0.05 = 5 %).
    tick_fraction = number(first(block, "tickPercent", "tick_percent"))
    limited = block.get("limited")
    details: dict[str, Any] = {
        "limited": bool(limited) if isinstance(limited, bool) else (remaining is not None and remaining <= 0),
        "next_tick_at": _iso(next_tick),
        "tick_percent": tick_fraction * 100 if tick_fraction is not None else None,
        "regen_amount": tick_fraction * limit if tick_fraction is not None and limit is not None else None,
    }
    return Quota(
        key="rolling_5h",
        label="Requests (5h rolling)",
        kind="rolling",
        unit="requests",
        used=used,
        limit=limit,
        remaining=remaining,
        resets_at=next_tick,
        details=details,
    )


def _weekly_credits(block: Any) -> Quota | None:
    """The weekly USD credit bar; money arrives as strings like "$24.00"."""
    if not isinstance(block, dict):
        return None
    limit = number(first(block, "maxCredits", "max_credits"))
    remaining = number(first(block, "remainingCredits", "remaining_credits"))
    percent_remaining = number(first(block, "percentRemaining", "percent_remaining"))
    if limit is None and remaining is None and percent_remaining is None:
        return None
    used = subtract(limit, remaining) if limit is not None and remaining is not None else None
    regen = number(first(block, "nextRegenCredits", "next_regen_credits"))
    next_regen = iso_time(first(block, "nextRegenAt", "next_regen_at"))
    details: dict[str, Any] = {
        "limited": remaining is not None and remaining <= 0,
        "next_tick_at": _iso(next_regen),
        "tick_percent": regen / limit * 100 if regen is not None and limit else None,
        "regen_amount": regen,
    }
    if percent_remaining is not None:
        details["percent_remaining"] = percent_remaining
    return Quota(
        key="weekly_credits",
        label="Weekly credits",
        kind="rolling",
        unit="usd",
        used=used,
        limit=limit,
        remaining=remaining,
        percent=subtract(100.0, percent_remaining) if percent_remaining is not None else None,
        resets_at=next_regen,
        details=details,
    )


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _slug(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("-", "_")


def _label(name: str) -> str:
    return _slug(name).replace("_", " ").capitalize()
