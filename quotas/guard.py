"""The guard: may an agent or a CI job spend a provider's quota now?

``check()`` answers from ``numbers.current()``, the dashboard's own numbers,
so the guard and the cards never disagree. Verdicts:

- ``ok``: every checked quota has at least ``min_remaining_percent`` of its limit left (HTTP 200, exit 0);
- ``low``: one has not; ``retry_at`` is the latest of the failing quotas' way back (the reset of a
  reset window, the refill tick that frees enough of a rolling one), null when one of them has
  none (HTTP 429 with Retry-After when known, exit 1);
- ``stale``: no poll yet, the last poll failed, or the last successful one is older than
  ``STALE_INTERVALS`` poll intervals: the numbers cannot be vouched for, so never "ok"
  (HTTP 503, exit 1). Not 429: nothing says the quota is short, and a client must be able
  to tell "wait until retry_at" from "SynTrack is not polling".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from lib.timefmt import isostring
from quotas import numbers, pollnow
from quotas.models import Kind, Outcome, PollAttempt

STALE_INTERVALS = 3
OK, LOW, STALE, UNKNOWN_QUOTA = "ok", "low", "stale", "unknown_quota"


@dataclass
class Verdict:
    kind: str
    body: dict[str, Any]
    retry_at: datetime | None = None
    quotas: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.kind == OK

    def line(self) -> str:
        """One line for the command."""
        if self.ok:
            shares = ", ".join(f"{q['key']} {q['remaining_percent']:g}% left" for q in self.body["quotas"])
            return f"ok: {self.body['provider']}: {shares}"
        retry = f" (retry at {self.body['retry_at']})" if self.body.get("retry_at") else ""
        return f"not ok: {self.body['reason']}{retry}"


def check(provider: str, quota: str | None, min_remaining: float, now: datetime | None = None) -> Verdict:
    """The verdict for ``provider`` (one ``quota``, else every quota its plan includes)."""
    now = now or timezone.now()
    base: dict[str, Any] = {"provider": provider, "min_remaining_percent": min_remaining, "checked_at": isostring(now)}
    stale = _staleness(provider, now)
    if stale is not None:
        return Verdict(STALE, {"ok": False, "reason": stale, "retry_at": None, "stale": True, **base})

    current = numbers.current(provider, now)
    chosen = [q for q in current["quotas"] if (q["key"] == quota if quota else not q["hidden"])]
    if quota and not chosen:
        known = ", ".join(q["key"] for q in current["quotas"]) or "none"
        return Verdict(UNKNOWN_QUOTA, {"error": f"quota: {provider} reports no quota {quota} (known: {known})"})
    checked = [_checked(q, min_remaining, now) for q in chosen]
    base["captured_at"] = current["captured_at"]
    failing = [c for c in checked if not c["ok"]]
    if not failing:
        return Verdict(OK, {"ok": True, **base, "quotas": checked})
    backs = [_parse(c["retry_at"]) for c in failing]
    retry_at = None if any(b is None for b in backs) else max(backs)
    reason = "; ".join(f"{c['key']}: {_share(c['remaining_percent'])} left, below {min_remaining:g}%" for c in failing)
    body = {"ok": False, "reason": reason, "retry_at": isostring(retry_at), "stale": False, **base, "quotas": checked}
    return Verdict(LOW, body, retry_at)


def interval_seconds(provider: str) -> int:
    """The running poller's interval for ``provider``, else SYNTRACK_POLL_INTERVAL."""
    return pollnow.poller_state().interval(provider)


def _staleness(provider: str, now: datetime) -> str | None:
    """Why the numbers cannot be trusted, or None. Two queries (plus the poller's state)."""
    attempts = PollAttempt.objects.filter(provider=provider).order_by("-at", "-id")
    # A storage error is no poll: its answers were written late, each with its own attempt.
    latest = attempts.exclude(outcome=Outcome.STORAGE_ERROR).values("at", "outcome", "message").first()
    if latest is None:
        return f"stale: {provider} has not been polled yet"
    if latest["outcome"] != Outcome.OK:
        message = f" ({latest['message']})" if latest["message"] else ""
        return f"stale: the last poll of {provider} at {isostring(latest['at'])} failed: {latest['outcome']}{message}"
    limit = STALE_INTERVALS * interval_seconds(provider)
    age = (now - latest["at"]).total_seconds()
    if age > limit:
        return f"stale: the last poll of {provider} was {_age(age)} ago, more than {STALE_INTERVALS} poll intervals"
    return None


def _checked(quota: dict[str, Any], min_remaining: float, now: datetime) -> dict[str, Any]:
    remaining = remaining_percent(quota)
    ok = remaining is not None and remaining >= min_remaining
    retry_at = None if ok or remaining is None else _back_at(quota, remaining, min_remaining, now)
    return {
        "key": quota["key"],
        "label": quota["label"],
        "kind": quota["kind"],
        "remaining_percent": None if remaining is None else round(remaining, 2),
        "ok": ok,
        "resets_at": quota["resets_at"],
        "retry_at": isostring(retry_at),
    }


def remaining_percent(quota: dict[str, Any]) -> float | None:
    """Share of the limit left, as the card shows it; 0 when exhausted (or ``limited`` upstream)."""
    if quota["exhausted"]:
        return 0.0
    if quota["remaining"] is not None and quota["limit"]:
        return max(quota["remaining"] / quota["limit"] * 100, 0.0)
    if quota["percent"] is not None:
        return max(100 - quota["percent"], 0.0)
    return None


def _back_at(quota: dict[str, Any], remaining: float, wanted: float, now: datetime) -> datetime | None:
    """When ``wanted`` percent is free again if nothing more is used: the reset, or the refill tick."""
    if quota["kind"] == Kind.ROLLING:
        details = quota["details"]
        upcoming = _parse(details.get("upcoming_tick_at"))
        interval = details.get("tick_interval_seconds")
        tick_percent = _tick_percent(details, quota)
        if upcoming is None or not interval or not tick_percent:
            return None
        ticks = max(math.ceil((wanted - remaining) / tick_percent - numbers.EPSILON), 1)
        # From the next tick after now, as details["available_again"] counts once a tick has passed:
        # errs late, never early.
        return upcoming + (ticks - 1) * timedelta(seconds=interval)
    resets_at = _parse(quota["resets_at"])
    return resets_at if resets_at is not None and resets_at > now else None


def _tick_percent(details: dict[str, Any], quota: dict[str, Any]) -> float | None:
    value = details.get("tick_percent")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    amount = details.get("regen_amount")
    if isinstance(amount, int | float) and not isinstance(amount, bool) and amount > 0 and quota["limit"]:
        return amount / quota["limit"] * 100
    return None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _share(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}%"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    if seconds < 172800:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"
