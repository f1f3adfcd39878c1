"""Synthetic (synthetic.new): ``GET {base}/v2/quotas`` with a Bearer key.

One parser reads every payload generation (upstream-apis.md §3.2):
A: subscription / search.hourly / toolCallDiscounts;
B: toolCallDiscounts renamed freeToolCalls;
C: plus the regenerating rollingFiveHourLimit and weeklyTokenLimit windows,
   whose money fields are "$24.00" strings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib.timefmt import isostring
from quotas.providers.base import (
    DRIFT,
    INVALID_RESPONSE,
    OutOfRange,
    Parsed,
    PollFailure,
    Quota,
    amount,
    check_quota,
    clean_text,
    finite,
    first,
    iso_time,
    multiply,
    percent_of,
    share,
    slug,
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
    return f"{base_url.rstrip('/')}/v2/quotas"


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def parse(data: Any) -> Parsed:
    """Turn a decoded payload into quotas; raise drift when no known quota is usable.

    Unknown blocks shaped like counters become generic quotas next to the
    known ones, and are listed in ``Parsed.unknown`` either way. A payload with
    nothing but unknown blocks is drift: it must not replace the last good
    readings.
    """
    if not isinstance(data, dict):
        raise PollFailure(INVALID_RESPONSE, f"payload is not a JSON object but {type(data).__name__}")
    known: list[Quota] = []
    generic: list[Quota] = []
    unknown: list[str] = []

    def add(build: Callable[..., Quota | None], where: str, *args: Any) -> None:
        try:
            quota = build(*args)
        except OutOfRange as impossible:
            # Out of its sane range: this window is drift, the others still count.
            unknown.append(impossible.note(where))
            return
        if quota is None:
            unknown.append(f"{where} (unreadable)")
        else:
            known.append(quota)

    def add_generic(block: Any, key: str, label: str, where: str) -> None:
        try:
            quota = _counter(block, key, label, "requests")
        except OutOfRange as impossible:
            unknown.append(impossible.note(where))
            return
        if quota is not None:
            generic.append(quota)

    if "subscription" in data:
        add(_counter, "subscription", data["subscription"], "subscription", "Subscription", "requests")

    search = data.get("search")
    if isinstance(search, dict):
        for window, block in search.items():
            if window == "hourly":
                add(_counter, "search.hourly", block, "search_hourly", "Search (hourly)", "requests")
            else:
                unknown.append(f"search.{window}")
                add_generic(block, f"search_{slug(window)}", f"Search ({window})", f"search.{window}")
    elif "search" in data:
        unknown.append("search (unreadable)")

    # The tool-call allowance was renamed in March 2026; both names are the same quota.
    tool_calls = [name for name in ("freeToolCalls", "toolCallDiscounts") if data.get(name) is not None]
    if tool_calls:
        readable = [name for name in tool_calls if isinstance(data[name], dict)]
        name = (readable or tool_calls)[0]
        add(_counter, name, data[name], "free_tool_calls", "Tool calls", "calls")

    if "rollingFiveHourLimit" in data:
        add(_rolling_requests, "rollingFiveHourLimit", data["rollingFiveHourLimit"])
    if "weeklyTokenLimit" in data:
        add(_weekly_credits, "weeklyTokenLimit", data["weeklyTokenLimit"])

    for key, value in data.items():
        if key in KNOWN_KEYS:
            continue
        unknown.append(key)
        # An unknown block shaped like the others still becomes a quota.
        if isinstance(value, dict):
            add_generic(value, slug(key), _label(key), key)

    if not known:
        if not data:
            raise PollFailure(DRIFT, "empty payload {}: no data")
        keys = ", ".join(sorted(data))
        raise PollFailure(DRIFT, f"no known quota in payload (keys: {keys[:120]})" + _impossible(unknown))
    quotas: list[Quota] = []
    seen: set[str] = set()
    for quota in known + generic:
        # A generic block never shadows a known quota, nor another generic one.
        if quota.key not in seen:
            seen.add(quota.key)
            quotas.append(quota)
    return Parsed(quotas=quotas, unknown=[clean_text(u, 200) for u in unknown])


def _counter(block: Any, key: str, label: str, unit: str) -> Quota | None:
    """A reset-style counter: ``{limit, requests, renewsAt}``."""
    if not isinstance(block, dict):
        return None
    used = amount(first(block, "requests", "used", "usage"), "requests")
    limit = amount(first(block, "limit", "max"), "limit")
    if used is None and limit is None:
        return None
    return check_quota(
        Quota(
            key=key,
            label=label,
            kind="reset",
            unit=unit,
            used=used,
            limit=limit,
            remaining=amount(block.get("remaining"), "remaining"),
            resets_at=iso_time(first(block, "renewsAt", "renews_at", "resetsAt")),
        )
    )


def _rolling_requests(block: Any) -> Quota | None:
    """The 5-hour mana bar: ``tickPercent`` × ``max`` comes back every tick."""
    if not isinstance(block, dict):
        return None
    limit = amount(first(block, "max", "limit"), "max")
    remaining = amount(block.get("remaining"), "remaining")
    if limit is None and remaining is None:
        return None
    used = max(subtract(limit, remaining), 0.0) if limit is not None and remaining is not None else None
    next_tick = iso_time(first(block, "nextTickAt", "next_tick_at"))
    # Upstream sends the share restored per tick as a fraction (0.05 = 5 %).
    tick_fraction = share(first(block, "tickPercent", "tick_percent"), "tickPercent")
    limited = block.get("limited")
    details: dict[str, Any] = {
        "limited": bool(limited) if isinstance(limited, bool) else (remaining is not None and remaining <= 0),
        "next_tick_at": isostring(next_tick),
        "tick_percent": finite(multiply(tick_fraction, 100)) if tick_fraction is not None else None,
        "regen_amount": finite(multiply(tick_fraction, limit))
        if tick_fraction is not None and limit is not None
        else None,
    }
    return check_quota(
        Quota(
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
    )


def _weekly_credits(block: Any) -> Quota | None:
    """The weekly USD credit bar; money arrives as strings like "$24.00"."""
    if not isinstance(block, dict):
        return None
    limit = amount(first(block, "maxCredits", "max_credits"), "maxCredits")
    remaining = amount(first(block, "remainingCredits", "remaining_credits"), "remainingCredits")
    percent_remaining = share(first(block, "percentRemaining", "percent_remaining"), "percentRemaining")
    if limit is None and remaining is None and percent_remaining is None:
        return None
    used = max(subtract(limit, remaining), 0.0) if limit is not None and remaining is not None else None
    regen = amount(first(block, "nextRegenCredits", "next_regen_credits"), "nextRegenCredits")
    next_regen = iso_time(first(block, "nextRegenAt", "next_regen_at"))
    details: dict[str, Any] = {
        "limited": remaining is not None and remaining <= 0,
        "next_tick_at": isostring(next_regen),
        "tick_percent": percent_of(regen, limit) if regen is not None and limit else None,
        "regen_amount": regen,
    }
    if percent_remaining is not None:
        details["percent_remaining"] = percent_remaining
    return check_quota(
        Quota(
            key="weekly_credits",
            label="Weekly credits",
            kind="rolling",
            unit="usd",
            used=used,
            limit=limit,
            remaining=remaining,
            percent=max(subtract(100.0, percent_remaining), 0.0) if percent_remaining is not None else None,
            resets_at=next_regen,
            details=details,
        )
    )


def _impossible(notes: list[str]) -> str:
    """The out-of-range notes, for the message of a poll they left without a quota."""
    found = [note for note in notes if "out of range" in note]
    return f"; {'; '.join(found)}" if found else ""


def _label(name: str) -> str:
    return slug(name).replace("_", " ").capitalize() or "Unknown"
