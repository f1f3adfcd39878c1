"""Insights: what the stored polls, readings and cycles say about a provider (product.md §6).

``insights()`` builds the per-provider body of ``GET /api/insights``. Every
card is computed from this provider's own data; every division is guarded,
so no NaN or infinity ever reaches the JSON.

Consumption is what the counters went up by (``ResetCycle.consumed`` and
the same sum of positive steps over readings), never "newest minus oldest"
across a reset. Cycles are real reset cycles, so no v1.7 "billing period"
regrouping of mini-cycles is needed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, FloatField, Q, QuerySet, Subquery, Sum, Value, When, Window
from django.db.models.functions import Coalesce, Greatest, Lag
from django.utils import timezone

from quotas.models import (
    Kind,
    Outcome,
    PollAttempt,
    PollSession,
    QuotaReading,
    QuotaRollup,
    ResetCycle,
    Resolution,
    Snapshot,
)
from quotas.providers import NAMES

RANGES = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# Shown instead of an empty list when every card is hidden; not itself hideable.
ALL_HIDDEN_KEY = "insights_hidden"
INSIGHT_KEYS: tuple[str, ...] = (
    "getting_started",
    "plan",
    "cycle_utilization",
    "billing_period",
    "weekly_pace",
    "cycle_variance",
    "cycle_trend",
    "tokens_per_call",
    "tool_breakdown",
)
SEVERITIES = ("positive", "info", "warning", "negative")

# The quota the headline numbers are about, in order of preference. Synthetic's
# current payloads keep `subscription` at 0 and meter the rolling windows, so
# the first of these that moved in the last 30 days wins (see _main_quota).
MAIN_QUOTAS = {
    "synthetic": ("subscription", "rolling_5h", "free_tool_calls", "weekly_credits", "search_hourly"),
    "zai": ("tokens_5h", "credits_5h", "tokens_weekly", "credits_weekly", "time_monthly"),
}
# Length of the reset windows whose length the key tells (for allowances over a period).
WINDOW_LENGTHS = {
    "tokens_5h": timedelta(hours=5),
    "credits_5h": timedelta(hours=5),
    "tokens_weekly": timedelta(days=7),
    "credits_weekly": timedelta(days=7),
    "search_hourly": timedelta(hours=1),
}
BILLING_PERIOD = timedelta(days=30)
WEEK = timedelta(days=7)
# Complete cycles needed before each cycle card says anything.
MIN_CYCLES_UTILIZATION = 2
MIN_CYCLES_VARIANCE = 3
MIN_CYCLES_TREND = 4
# Data the weekly pace needs before it extrapolates to a month.
MIN_PACE_SPAN = timedelta(days=1)


def insights(
    provider: str, range_key: str, hidden: set[str] | frozenset[str] = frozenset(), now: datetime | None = None
) -> dict[str, Any]:
    """``{"provider", "stats": [{"label", "value"}], "insights": [{"key", "title", "value", "sublabel",
    "description", "severity"}]}`` for ``range_key`` in RANGES (ValueError otherwise).

    The range applies to the stats and to the tool cards (tokens per tool
    call, top tool), which name it in their titles ("Top tool (7d)"); the
    usage and cycle cards measure fixed periods (the 30-day billing period,
    the last 7 days for the pace, the cycles of the last 30 days) and name
    those instead. Cards whose key is in ``hidden`` are left out.
    """
    if range_key not in RANGES:
        raise ValueError(f"unknown range {range_key!r}; expected one of {', '.join(RANGES)}")
    now = now or timezone.now()
    data = _Data.load(provider, now)
    cards: list[dict[str, Any]] = []
    for build in (
        _plan,
        _cycle_utilization,
        _billing_period,
        _weekly_pace,
        _cycle_variance,
        _cycle_trend,
    ):
        card = build(data)
        if card is not None:
            cards.append(card)
    for ranged in (_tokens_per_call, _tool_breakdown):
        card = ranged(data, range_key)
        if card is not None:
            cards.append(card)
    computed = {card["key"] for card in cards}
    # Before the usage cards have enough data, say what is coming and when.
    if not computed & {"cycle_utilization", "billing_period", "weekly_pace"}:
        cards.insert(0, _getting_started(data))
    visible = [card for card in cards if card["key"] not in hidden]
    if not visible:
        # §8: never empty once data exists, even with every card hidden.
        visible = [_all_hidden(len(cards))]
    return {"provider": provider, "stats": _stats(data, range_key), "insights": visible}


@dataclass
class _Quota:
    key: str
    label: str
    kind: str
    unit: str
    limit: float | None


@dataclass
class _Data:
    """What the cards are computed from, read once."""

    provider: str
    now: datetime
    snapshot: Snapshot | None
    readings: dict[str, QuotaReading]
    main: _Quota | None
    # The reset quota the cycle cards are about, and its complete cycles of the
    # last 30 days, oldest first.
    cycle_quota: _Quota | None
    cycles: list[ResetCycle]
    # Tool calls by start of the period, read once for the stat and the cards.
    tool_calls_since: dict[datetime, ToolCalls] = field(default_factory=dict)
    # What consumed() found, by (quota, start): each is asked for by several cards.
    consumed_since: dict[tuple[str, datetime], float] = field(default_factory=dict)

    @classmethod
    def load(cls, provider: str, now: datetime) -> _Data:
        snapshot = (
            Snapshot.objects.filter(provider=provider, usable=True, captured_at__lte=now)
            .order_by("-captured_at", "-id")
            .first()
        )
        readings = {r.key: r for r in snapshot.readings.order_by("id")} if snapshot is not None else {}
        data = cls(provider, now, snapshot, readings, None, None, [])
        data.main = data._main_quota(reset_only=False)
        data.cycle_quota = data._main_quota(reset_only=True)
        if data.cycle_quota is not None:
            data.cycles = _complete_cycles(provider, data.cycle_quota.key, now - BILLING_PERIOD, now)
        return data

    def _main_quota(self, *, reset_only: bool) -> _Quota | None:
        """The first preferred quota the plan includes that moved in the last 30 days, else the first included.

        For the cycle cards (``reset_only``) a quota that never moved is no
        basis: it would read as "0 % used, downgrade" while the real use is
        metered elsewhere (Synthetic's rolling windows).
        """
        candidates = [
            _Quota(r.key, r.label, r.kind, r.unit, r.scale)
            for key in MAIN_QUOTAS.get(self.provider, ())
            if (r := self.readings.get(key)) is not None
            and not (r.limit == 0 and not r.used)
            and (not reset_only or r.kind == Kind.RESET)
        ]
        for quota in candidates:
            if self.consumed(quota.key, self.now - BILLING_PERIOD) > 0:
                return quota
        return candidates[0] if candidates and not reset_only else None

    def consumed(self, key: str, since: datetime) -> float:
        # The main quota's 30 days serve the choice of quota, the 30-day card and the 30d stat.
        if (key, since) not in self.consumed_since:
            self.consumed_since[(key, since)] = consumed_between(self.provider, key, since, self.now)
        return self.consumed_since[(key, since)]

    def tool_calls(self, start: datetime) -> ToolCalls:
        if start not in self.tool_calls_since:
            self.tool_calls_since[start] = tool_calls_between(self.provider, start, self.now)
        return self.tool_calls_since[start]

    def tracked_since(self, key: str) -> datetime | None:
        return (
            QuotaReading.objects.filter(provider=self.provider, key=key)
            .order_by("captured_at")
            .values_list("captured_at", flat=True)
            .first()
        )

    def main_usage(self, period: timedelta) -> tuple[_Quota, datetime, float] | None:
        """The main quota, where its tracked part of the last ``period`` starts, and its use since.

        None without a main quota or with less than MIN_PACE_SPAN of data.
        """
        quota = self.main
        if quota is None:
            return None
        since = self.tracked_since(quota.key)
        if since is None:
            return None
        start = max(since, self.now - period)
        if self.now - start < MIN_PACE_SPAN:
            return None
        return quota, start, self.consumed(quota.key, start)


def consumed_between(provider: str, key: str, start: datetime, end: datetime) -> float:
    """What a quota's counter went up by between ``start`` and ``end``.

    Σ over consecutive readings of max(level − previous level, 0), where a
    reading that opened a new cycle (a reset) counts its whole level, as
    ResetCycle.consumed does; steps between different units count nothing.
    Rolling windows have no cycles: only their positive steps count. The
    first reading of the range is only a baseline.

    The whole hours of the range come from the hourly roll-ups, whose
    ``consumed`` counts each reading's step the same way (quotas.rollups);
    only the readings of the hour holding the range's first reading and of
    its last, partial hour are read. So the cost is the same for a day as for
    a month. A quota whose readings carry no percent is not rolled up: its
    steps are read from the readings. Two or three queries for a short range, four for a long one.
    """
    readings = QuotaReading.objects.filter(provider=provider, key=key)
    first = (
        readings.filter(captured_at__gte=start, captured_at__lte=end)
        .order_by("captured_at", "id")
        .values_list("captured_at", "percent")
        .first()
    )
    if first is None:
        return 0.0
    first_at, percent = first
    # The first reading stays in the head, so the step into the first rolled-up
    # hour is one between two readings of the range.
    whole_from, whole_to = _hour(first_at) + HOUR, _hour(end)
    hours = None
    if percent is not None and whole_from < whole_to:
        hours = QuotaRollup.objects.filter(
            provider=provider, key=key, resolution=Resolution.HOUR, start__gte=whole_from, start__lt=whole_to
        ).aggregate(total=Sum("consumed"), count=Count("id"))
    if hours is None or not hours["count"]:
        # Short, or no roll-ups in the whole hours: then no readings either (or
        # roll-ups not built yet), and the readings are as quick and exact.
        return _finite(_steps(readings.filter(captured_at__gte=start, captured_at__lte=end)))
    head = _steps(readings.filter(captured_at__gte=start, captured_at__lt=whole_from))
    # The tail's first step starts at the reading before it (in a rolled-up hour).
    before = readings.filter(captured_at__lt=whole_to).order_by("-captured_at", "-id").values("captured_at")[:1]
    tail = _steps(readings.filter(captured_at__gte=Subquery(before), captured_at__lte=end), counted_from=whole_to)
    return _finite(head + hours["total"] + tail)


HOUR = timedelta(hours=1)


def _hour(at: datetime) -> datetime:
    """The start of the hourly roll-up holding ``at`` (UTC hours, as the roll-ups align them)."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _finite(total: float) -> float:
    return total if math.isfinite(total) else 0.0


def _steps(readings: QuerySet[QuotaReading], counted_from: datetime | None = None) -> float:
    """Σ of the steps between consecutive ``readings`` (one query), of the readings from ``counted_from`` on."""
    level = Coalesce("used", "percent")
    order = [F("captured_at").asc(), F("id").asc()]
    skipped = [When(captured_at__lt=counted_from, then=Value(0.0))] if counted_from is not None else []
    steps = readings.annotate(
        level=level,
        prev_level=Window(Lag(level), order_by=order),
        prev_unit=Window(Lag("unit"), order_by=order),
        prev_cycle=Window(Lag("cycle_id"), order_by=order),
    ).annotate(
        step=Case(
            *skipped,
            When(Q(prev_unit__isnull=True) | ~Q(unit=F("prev_unit")), then=Value(0.0)),
            When(
                Q(cycle_id__isnull=False, prev_cycle__isnull=False) & ~Q(cycle_id=F("prev_cycle")),
                then=F("level"),
            ),
            default=Greatest(F("level") - F("prev_level"), Value(0.0)),
            output_field=FloatField(),
        )
    )
    total = steps.aggregate(total=Sum("step"))["total"]
    return float(total) if total is not None else 0.0


@dataclass
class ToolCalls:
    """Z.ai's tool calls over a period: the counter's total and each tool's, counted alike."""

    total: float
    # (tool, calls), most used first; only tools that were used
    by_tool: list[tuple[str, float]]


def tool_calls_between(provider: str, start: datetime, end: datetime) -> ToolCalls:
    """The ``time_monthly`` counter and each tool of its breakdown, counted as ``consumed_between`` counts.

    The counter's total is ``consumed_between``. Each tool's count is what its
    own counter went up by in the range: within each cycle of the counter, its
    level at the cycle's last reading of the range, less its level at the
    range's first reading for the cycle that reading belongs to (the first
    reading is only a baseline) or nothing for a cycle that began within the
    range (a reset counts the new level). The tools' counters only grow
    within a cycle, so this is the sum of their positive steps without reading
    every step: a handful of readings found by index seeks, whatever the
    range. (The upstream's per-tool numbers need not add up to its counter;
    the shares are of the tools' own total.) Two queries.
    """
    total = consumed_between(provider, "time_monthly", start, end)
    readings = QuotaReading.objects.filter(provider=provider, key="time_monthly")
    in_range = readings.filter(captured_at__gte=start, captured_at__lte=end)
    # The last reading of every cycle that ended within the range: ResetCycle keeps its time.
    closed = ResetCycle.objects.filter(
        provider=provider, quota="time_monthly", last_reading_at__gte=start, last_reading_at__lte=end
    ).exclude(ended_at=None)
    ends = (
        in_range.filter(
            Q(captured_at=Subquery(in_range.order_by("captured_at", "id").values("captured_at")[:1]))
            | Q(captured_at=Subquery(in_range.order_by("-captured_at", "-id").values("captured_at")[:1]))
            | Q(captured_at__in=Subquery(closed.values("last_reading_at")))
        )
        .order_by("captured_at", "id")
        .values_list("cycle_id", "details")
    )
    first: tuple[int | None, dict[str, float]] | None = None
    last_of_cycle: dict[int | None, dict[str, float]] = {}
    for cycle_id, details in ends:
        levels = _tool_levels(details)
        if first is None:
            first = (cycle_id, levels)
        last_of_cycle[cycle_id] = levels
    counted: dict[str, float] = {}
    for cycle_id, levels in last_of_cycle.items():
        baseline = first[1] if first is not None and cycle_id == first[0] else {}
        for name, level in levels.items():
            counted[name] = counted.get(name, 0.0) + max(level - baseline.get(name, 0.0), 0.0)
    by_tool = sorted(((name, calls) for name, calls in counted.items() if calls > 0), key=lambda item: -item[1])
    return ToolCalls(total, by_tool)


def _tool_levels(details: Any) -> dict[str, float]:
    tools = details.get("tools") if isinstance(details, dict) else None
    if not isinstance(tools, list):
        return {}
    return {
        str(t.get("name")): float(t["used"])
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("used"), int | float) and math.isfinite(t["used"])
    }


def _complete_cycles(provider: str, key: str, since: datetime, now: datetime) -> list[ResetCycle]:
    """Closed cycles of a quota that ended in [since, now], oldest first.

    The quota's first cycle is left out: it began when tracking did, mid-window,
    so its consumption is only part of a window's.
    """
    first_id = (
        ResetCycle.objects.filter(provider=provider, quota=key)
        .order_by("started_at", "id")
        .values_list("id", flat=True)
        .first()
    )
    return list(
        ResetCycle.objects.filter(provider=provider, quota=key, ended_at__gte=since, ended_at__lte=now)
        .exclude(id=first_id)
        .order_by("started_at", "id")
    )


# --- cards ---------------------------------------------------------------------------------------


def _card(key: str, title: str, value: str, sublabel: str, description: str, severity: str) -> dict[str, Any]:
    assert key in INSIGHT_KEYS and severity in SEVERITIES
    return {
        "key": key,
        "title": title,
        "value": value,
        "sublabel": sublabel,
        "description": description,
        "severity": severity,
    }


def _all_hidden(count: int) -> dict[str, Any]:
    """Stands in when the user hid every card; it cannot be hidden itself."""
    return {
        "key": ALL_HIDDEN_KEY,
        "title": "Insights hidden",
        "value": f"{count} hidden",
        "sublabel": "hidden in settings",
        "description": "Every insight is hidden. Show them again with “show all” in the insights panel, "
        'or with PUT /api/settings {"hidden_insights": []}.',
        "severity": "info",
    }


def _getting_started(data: _Data) -> dict[str, Any]:
    provider_name = NAMES.get(data.provider, data.provider)
    if data.snapshot is None:
        return _card(
            "getting_started",
            "Getting started",
            "No data yet",
            "waiting for the first poll",
            f"Keep SynTrack polling {provider_name}: usage insights appear once a day of data "
            f"and {MIN_CYCLES_UTILIZATION} complete reset cycles are in.",
            "info",
        )
    quota = data.cycle_quota or data.main
    cycles = len(data.cycles)
    what = f"{quota.label}" if quota is not None else provider_name
    return _card(
        "getting_started",
        "Getting started",
        f"{min(cycles, MIN_CYCLES_UTILIZATION)} of {MIN_CYCLES_UTILIZATION} cycles",
        "collecting data",
        f"SynTrack is collecting {what} usage. Insights on pace, cycles and plan fit appear after "
        f"a day of polling and {MIN_CYCLES_UTILIZATION} complete reset cycles.",
        "info",
    )


def _plan(data: _Data) -> dict[str, Any] | None:
    """The plan the provider reports (Z.ai ``data.level``), with the limits it comes with."""
    if data.snapshot is None or not data.snapshot.plan:
        return None
    plan = data.snapshot.plan
    limits = [
        f"{r.label}: {_amount(r.limit, r.unit)}"
        for r in data.readings.values()
        if r.limit and r.unit != "percent" and r.kind == Kind.RESET
    ]
    description = f"{NAMES.get(data.provider, data.provider)} reports the {plan.capitalize()} plan."
    if limits:
        description += " Limits: " + "; ".join(limits) + "."
    return _card("plan", "Plan", plan.capitalize(), "plan level", description, "info")


def _cycle_utilization(data: _Data) -> dict[str, Any] | None:
    """Average share of the limit used per complete cycle, and what it says about the plan.

    utilisation = mean over cycles of consumed / limit × 100 (cycles with a limit).
    """
    quota = data.cycle_quota
    shares = [c.consumed / c.limit * 100 for c in data.cycles if c.limit]
    if quota is None or len(shares) < MIN_CYCLES_UTILIZATION:
        return None
    average = statistics.fmean(shares)
    plan = f" than {data.snapshot.plan.capitalize()}" if data.snapshot is not None and data.snapshot.plan else ""
    if average < 25:
        severity, verdict = "warning", f"Significantly under-used: a cheaper plan{plan} would do."
    elif average < 50:
        severity, verdict = "info", f"Comfortable headroom: a smaller plan{plan} may be enough."
    elif average < 80:
        severity, verdict = "positive", "The plan fits your usage well."
    elif average < 95:
        severity, verdict = "warning", "Often close to the limit: keep an eye on it."
    else:
        severity, verdict = "negative", "Always near the limit: consider upgrading."
    return _card(
        "cycle_utilization",
        "Average cycle utilisation",
        f"{average:.0f}%",
        f"of the {quota.label} limit per cycle",
        f"Over the last {len(shares)} complete cycles you used {average:.1f}% of the {quota.label} limit "
        f"on average. {verdict}",
        severity,
    )


def _billing_period(data: _Data) -> dict[str, Any] | None:
    """Consumption of the main quota over the last 30 days.

    used = Σ positive steps of its readings (resets count the new level);
    where the window length is known: allowance = limit × tracked time / window
    length, share = used / allowance × 100.
    """
    usage = data.main_usage(BILLING_PERIOD)
    if usage is None:
        return None
    quota, start, used = usage
    span = data.now - start
    whole_period = start <= data.now - BILLING_PERIOD  # tracked for all of the 30 days
    days = span.total_seconds() / 86400
    period = "the last 30 days" if whole_period else f"the {_days(days)} tracked so far"
    description = f"{_amount(used, quota.unit)} of {quota.label} used in {period}."
    severity = "info"
    window = WINDOW_LENGTHS.get(quota.key)
    if window is not None and quota.limit and quota.unit != "percent" and span >= window:
        allowance = quota.limit * (span / window)
        share = used / allowance * 100
        description += f" That is {share:.1f}% of the {_amount(allowance, quota.unit)} the plan allowed."
    return _card(
        "billing_period",
        "30-day usage",
        _amount(used, quota.unit),
        "last 30 days" if whole_period else f"last {_days(days)}",
        description,
        severity,
    )


def _weekly_pace(data: _Data) -> dict[str, Any] | None:
    """Usage over the last 7 days and the month it points to.

    per day = used in the week / days of data in the week; monthly = per day × 30.
    Warning when the monthly projection exceeds 80 % of the allowance (limit ×
    30 days / window length, where the length is known).
    """
    usage = data.main_usage(WEEK)
    if usage is None:
        return None
    quota, start, used = usage
    span = data.now - start
    per_day = used / (span.total_seconds() / 86400)
    monthly = per_day * 30
    severity = "info"
    description = (
        f"{_amount(used, quota.unit)} of {quota.label} in the last {_days(span.total_seconds() / 86400)} "
        f"(~{_amount(per_day, quota.unit)} a day). At this pace: ~{_amount(monthly, quota.unit)} in 30 days."
    )
    window = WINDOW_LENGTHS.get(quota.key)
    if window is not None and quota.limit and quota.unit != "percent":
        allowance = quota.limit * (BILLING_PERIOD / window)
        share = monthly / allowance * 100
        description += f" That is {share:.1f}% of what the plan allows in 30 days."
        if share > 80:
            severity = "warning"
    return _card("weekly_pace", "Weekly pace", _amount(used, quota.unit), "last 7 days", description, severity)


def _cycle_variance(data: _Data) -> dict[str, Any] | None:
    """How much consumption varies from cycle to cycle.

    cv = population standard deviation / mean × 100 of consumed per cycle;
    > 50 high variance (warning), > 20 some spread (info), else consistent.
    """
    quota = data.cycle_quota
    values = [c.consumed for c in data.cycles]
    if quota is None or len(values) < MIN_CYCLES_VARIANCE:
        return None
    mean = statistics.fmean(values)
    if mean <= 0:
        return None
    cv = statistics.pstdev(values) / mean * 100
    peak = max(values)
    peak_share = f" ({peak / quota.limit * 100:.0f}% of the limit)" if quota.limit else ""
    spread = (
        f"Cycles ranged from {_amount(min(values), quota.unit)} to {_amount(peak, quota.unit)}{peak_share}, "
        f"{_amount(mean, quota.unit)} on average over {len(values)} cycles."
    )
    if cv > 50:
        title, severity, verdict = "High variance", "warning", "Usage varies a lot: leave headroom for busy cycles."
    elif cv > 20:
        title, severity, verdict = "Usage spread", "info", "Moderately consistent."
    else:
        title, severity, verdict = "Consistent usage", "positive", "Predictable consumption."
    return _card(
        "cycle_variance",
        title,
        f"±{cv:.0f}%",
        "variation between cycles",
        f"{spread} {verdict}",
        severity,
    )


def _cycle_trend(data: _Data) -> dict[str, Any] | None:
    """Recent cycles against earlier ones.

    The complete cycles, oldest first, split in halves (the middle one of an
    odd count is left out): change = (recent mean − earlier mean) / earlier
    mean × 100; > 15 rising (warning), < −15 falling (positive), else stable.
    """
    quota = data.cycle_quota
    values = [c.consumed for c in data.cycles]
    if quota is None or len(values) < MIN_CYCLES_TREND:
        return None
    half = len(values) // 2
    earlier, recent = statistics.fmean(values[:half]), statistics.fmean(values[-half:])
    if earlier <= 0:
        return None
    change = (recent - earlier) / earlier * 100
    compared = (
        f"The last {half} cycles averaged {_amount(recent, quota.unit)} of {quota.label}, "
        f"against {_amount(earlier, quota.unit)} in the {half} before."
    )
    if change > 15:
        return _card(
            "cycle_trend",
            "Trend",
            f"+{change:.0f}%",
            "recent vs earlier cycles",
            f"{compared} Usage is rising.",
            "warning",
        )
    if change < -15:
        return _card(
            "cycle_trend",
            "Trend",
            f"{change:.0f}%",
            "recent vs earlier cycles",
            f"{compared} Usage is falling.",
            "positive",
        )
    return _card("cycle_trend", "Trend", "Stable", "recent vs earlier cycles", f"{compared} Steady usage.", "positive")


def _tokens_per_call(data: _Data, range_key: str) -> dict[str, Any] | None:
    """Z.ai: model tokens used per tool call over the requested range.

    ratio = tokens consumed (tokens_5h) / tool calls consumed (time_monthly),
    both as Σ positive steps over the range, the calls counted as the
    "Tool calls" stat counts them. The two are separate allowances, so this
    is a ratio of two counters (how token-heavy the work around each web
    search or page read is), not the price of a call.
    """
    tokens, calls = data.readings.get("tokens_5h"), data.readings.get("time_monthly")
    if tokens is None or calls is None or tokens.unit != "tokens" or calls.unit != "calls":
        return None
    start = data.now - RANGES[range_key]
    used_tokens, used_calls = data.consumed("tokens_5h", start), data.tool_calls(start).total
    if used_tokens <= 0 or used_calls <= 0:
        return None
    ratio = used_tokens / used_calls
    return _card(
        "tokens_per_call",
        f"Tokens per tool call ({range_key})",
        _compact(ratio),
        "model tokens per tool call",
        f"{_amount(used_tokens, 'tokens')} used alongside {_amount(used_calls, 'calls')} in the last "
        f"{_range_words(range_key)}: ~{_compact(ratio)} tokens per tool call. Tokens and tool calls are separate "
        "allowances; this compares the two counters, it is not what one call costs.",
        "info",
    )


def _tool_breakdown(data: _Data, range_key: str) -> dict[str, Any] | None:
    """Z.ai: the tool calls of the requested range by tool, and the top tool.

    Each tool's calls are its positive steps over the range (tool_calls_between,
    the counting of the "Tool calls" stat); share = its calls / all tools' calls × 100.
    """
    if "time_monthly" not in data.readings:
        return None
    counts = data.tool_calls(data.now - RANGES[range_key]).by_tool
    total = sum(used for _, used in counts)
    if not counts or total <= 0:
        return None
    top_name, top_used = counts[0]
    parts = ", ".join(f"{name} {_number(used)} ({used / total * 100:.0f}%)" for name, used in counts)
    return _card(
        "tool_breakdown",
        f"Top tool ({range_key})",
        top_name,
        f"{top_used / total * 100:.0f}% of {_number(total)} calls",
        f"Tool calls in the last {_range_words(range_key)} by tool: {parts}.",
        "info",
    )


# --- stats -----------------------------------------------------------------------------------------


def _stats(data: _Data, range_key: str) -> list[dict[str, str]]:
    """Headline numbers of the range, for this provider only."""
    start = data.now - RANGES[range_key]
    stats: list[dict[str, str]] = []
    if data.main is not None:
        used = data.consumed(data.main.key, start)
        stats.append({"label": f"{data.main.label} used ({range_key})", "value": _amount(used, data.main.unit)})
    if (
        data.provider == "zai"
        and "time_monthly" in data.readings
        and (data.main is None or data.main.key != "time_monthly")
    ):
        calls = data.tool_calls(start).total
        stats.append({"label": f"Tool calls ({range_key})", "value": _number(calls)})
    attempts = PollAttempt.objects.filter(provider=data.provider, at__gte=start, at__lte=data.now)
    total = attempts.count()
    ok = attempts.filter(outcome=Outcome.OK).count()
    stats.append({"label": f"Polls ({range_key})", "value": _number(total)})
    stats.append({"label": "Poll success", "value": f"{ok / total * 100:.1f}%" if total else "—"})
    sessions = PollSession.objects.filter(provider=data.provider, started_at__lte=data.now).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=start)
    )
    stats.append({"label": f"Sessions ({range_key})", "value": _number(sessions.count())})
    return stats


# --- formatting --------------------------------------------------------------------------------------


def _compact(value: float) -> str:
    """12_300_000 → "12.3M", 7400 → "7.4K", 739 → "739", 12.5 → "12.5"."""
    for bound, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= bound:
            return f"{value / bound:.1f}".removesuffix(".0") + suffix
    return _number(value)


def _number(value: float) -> str:
    """Whole numbers without decimals, others with up to two."""
    if not math.isfinite(value):
        return "—"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _amount(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "usd":
        return f"${value:,.2f}"
    if unit == "percent":
        return f"{value:.1f}".removesuffix(".0") + "% of the limit"
    return f"{_compact(value)} {unit}"


def _range_words(range_key: str) -> str:
    """ "7d" → "7 days", "1d" → "day"."""
    days = RANGES[range_key].days
    return "day" if days == 1 else f"{days} days"


def _days(days: float) -> str:
    if days < 1:
        hours = days * 24
        return f"{hours:.0f} hour" + ("" if round(hours) == 1 else "s")
    return f"{days:.0f} day" + ("" if round(days) == 1 else "s")
