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
from typing import Any, NamedTuple

from django.db.models import Case, Count, F, FloatField, Q, QuerySet, Subquery, Sum, Value, When, Window
from django.db.models.functions import Coalesce, Greatest, Lag
from django.utils import timezone

from quotas import attempts, rollups
from quotas.models import (
    Kind,
    PollSession,
    QuotaReading,
    QuotaRollup,
    ResetCycle,
    Resolution,
    Snapshot,
)
from quotas.providers import NAMES
from quotas.providers.base import MAX_AMOUNT

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
    cycles: list[_Cycle]
    # Tool calls by start of the period, read once for the stat and the cards.
    tool_calls_since: dict[datetime, ToolCalls] = field(default_factory=dict)
    # What consumed() found, by (quota, start): each is asked for by several cards.
    consumed_since: dict[tuple[str, datetime], float] = field(default_factory=dict)
    # What tracked_since() found, by quota.
    first_seen: dict[str, datetime | None] = field(default_factory=dict)

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
        """The quota's first reading, or its first roll-up's where retention pruned the readings."""
        if key not in self.first_seen:
            self.first_seen[key] = self._first_seen(key)
        return self.first_seen[key]

    def _first_seen(self, key: str) -> datetime | None:
        firsts = [
            QuotaReading.objects.filter(provider=self.provider, key=key)
            .order_by("captured_at")
            .values_list("captured_at", flat=True)
            .first(),
            QuotaRollup.objects.filter(provider=self.provider, key=key, resolution=Resolution.HOUR)
            .order_by("start")
            .values_list("first_at", flat=True)
            .first(),
        ]
        return min((at for at in firsts if at is not None), default=None)

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
    only the readings of the range's first hour and of its last, partial
    hour are read (``_Split``). So the cost is the same for a day as for a
    month, and a range reaching past the readings' retention is counted from
    the roll-ups in whole hours. A quota whose readings carry no percent is
    not rolled up: its steps are read from the readings. A few queries.
    """
    split = _Split.of(provider, key, start, end)
    return _count(split)[0] if split is not None else 0.0


def _count(split: _Split, tools: bool = False) -> tuple[float, dict[str, float]]:
    """What the split's quota went up by, and with ``tools`` what each tool's counter did.

    The head and tail (an hour of readings each at most) are read and
    counted here as the roll-ups count their hours (``rollups.added``), so
    the three parts add up by one rule. A quota that is not rolled up is
    summed by the database: its range may hold days of readings.
    """
    counted: dict[str, float] = {}
    if split.hours is None:
        if tools:
            _add(counted, _tool_steps(split.whole_range()))
        return _finite(_steps(split.whole_range())), counted
    total = split.hours_consumed
    if split.head_from is not None:
        total += _walk(split.head(), counted if tools else None)
    if tools:
        for calls in split.hours.exclude(tool_calls=None).values_list("tool_calls", flat=True):
            _add(counted, calls if isinstance(calls, dict) else {})
    total += _walk(split.tail(), counted if tools else None, counted_from=split.whole_to)
    return _finite(total), counted


def _walk(
    readings: QuerySet[QuotaReading], tools: dict[str, float] | None, counted_from: datetime | None = None
) -> float:
    """Σ of the steps between consecutive ``readings`` from ``counted_from`` on (one query).

    Only readings with a percent count, as only they are rolled up. With
    ``tools``, each tool's steps are added to it as well.
    """
    fields = ["captured_at", "unit", "percent", "used", "cycle_id"] + (["details"] if tools is not None else [])
    total = 0.0
    previous = None
    for row in readings.filter(percent__isnull=False).order_by("captured_at", "id").values_list(*fields):
        at, unit, percent, used, cycle_id = row[:5]
        levels = rollups.tool_levels(row[5]) if tools is not None else None
        reading = rollups.Reading(at, "", "", unit, percent, used, cycle_id, levels)
        if counted_from is None or at >= counted_from:
            total += rollups.added(reading, previous)
            if tools is not None:
                _add(tools, rollups.tools_added(reading, previous))
        previous = reading
    return total


HOUR = timedelta(hours=1)


@dataclass
class _Split:
    """A range cut for counting: a head of readings, whole hours of roll-ups, a tail of readings.

    The head runs from the range's first reading to the end of its hour; the
    whole hours follow, to the hour holding ``end``; the tail is that last,
    partial hour, read from the reading before it (its first step starts
    there). Where retention pruned the readings under the range's start, the
    first roll-up whose readings are all in the range opens the whole hours and there is no head.
    ``hours`` is None for a quota that is not rolled up (or a range too short
    to hold a whole hour): then the readings are as quick and exact.
    """

    readings: QuerySet[QuotaReading]
    start: datetime
    end: datetime
    head_from: datetime | None  # the first reading of the range, when the head is read
    whole_from: datetime
    whole_to: datetime
    hours: QuerySet[QuotaRollup] | None
    hours_consumed: float = 0.0

    @classmethod
    def of(cls, provider: str, key: str, start: datetime, end: datetime) -> _Split | None:
        """None when the range holds neither a reading nor a roll-up."""
        readings = QuotaReading.objects.filter(provider=provider, key=key)
        first = (
            readings.filter(captured_at__gte=start, captured_at__lte=end)
            .order_by("captured_at", "id")
            .values_list("captured_at", "percent")
            .first()
        )
        whole_to = _hour(end)
        hourly = QuotaRollup.objects.filter(provider=provider, key=key, resolution=Resolution.HOUR)
        rolled = None
        if first is None or _hour(first[0]) > _hour(start):
            # The readings start after the start's hour (tracking began later, or retention
            # pruned them): the first roll-up all of whose readings are in the range.
            rolled = (
                hourly.filter(start__gte=_hour(start), first_at__gte=start, start__lt=whole_to)
                .order_by("start")
                .values_list("start", flat=True)
                .first()
            )
        if rolled is not None and (first is None or rolled < _hour(first[0])):
            # The readings under the start are gone: whole hours from the first roll-up.
            head_from, whole_from = None, rolled
        elif first is None:
            return None
        elif first[1] is None:  # no percent: never rolled up
            return cls(readings, start, end, first[0], whole_to, whole_to, None)
        else:
            # The first reading stays in the head, so the step into the first
            # rolled-up hour is one between two readings of the range.
            head_from, whole_from = first[0], _hour(first[0]) + HOUR
        hours = hourly.filter(start__gte=whole_from, start__lt=whole_to)
        # Roll-ups an older build filled from impossible readings (issue 10) count nothing: summed,
        # they overflow PostgreSQL. NaN fails both bounds.
        sane = Q(consumed__gte=0, consumed__lte=MAX_AMOUNT)
        summed = hours.aggregate(total=Sum("consumed", filter=sane), count=Count("id"))
        if head_from is not None and not summed["count"]:
            # Short, or no roll-ups in the whole hours (not built yet): the readings alone.
            return cls(readings, start, end, head_from, whole_to, whole_to, None)
        return cls(readings, start, end, head_from, whole_from, whole_to, hours, summed["total"] or 0.0)

    def whole_range(self) -> QuerySet[QuotaReading]:
        return self.readings.filter(captured_at__gte=self.start, captured_at__lte=self.end)

    def head(self) -> QuerySet[QuotaReading]:
        return self.readings.filter(captured_at__gte=self.start, captured_at__lt=self.whole_from)

    def tail(self) -> QuerySet[QuotaReading]:
        """From the reading before the last partial hour to ``end`` (count it from ``whole_to``)."""
        before = self.readings.filter(captured_at__lt=self.whole_to).order_by("-captured_at", "-id")
        return self.readings.filter(
            captured_at__gte=Subquery(before.values("captured_at")[:1]), captured_at__lte=self.end
        )


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
    # Readings an older build stored with impossible levels (1e308, negatives, ∞, NaN: issue 10) are
    # skipped: their differences overflow PostgreSQL. NaN fails both bounds; no level at all stays.
    in_range = Q(level__isnull=True) | Q(level__gte=0, level__lte=MAX_AMOUNT)
    steps = (
        readings.annotate(level=level)
        .filter(in_range)
        .annotate(
            prev_level=Window(Lag(level), order_by=order),
            prev_unit=Window(Lag("unit"), order_by=order),
            prev_cycle=Window(Lag("cycle_id"), order_by=order),
        )
        .annotate(
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
    )
    total = steps.aggregate(total=Sum("step"))["total"]
    return float(total) if total is not None else 0.0


@dataclass
class ToolCalls:
    """Z.ai's tool calls over a period: the counter's total and each tool's, counted alike."""

    total: float
    # (tool, calls), most used first; only tools that were used
    by_tool: list[tuple[str, float]]


TOOLS_KEY = "time_monthly"


def tool_calls_between(provider: str, start: datetime, end: datetime) -> ToolCalls:
    """The ``time_monthly`` counter and each tool of its breakdown, counted as ``consumed_between`` counts.

    The counter's total is ``consumed_between``. Each tool's count is the sum
    of its own counter's steps, counted as the quota's are (a new cycle counts
    the tool's whole level), over the same split: the head and tail readings'
    breakdowns, and the hourly roll-ups' ``tool_calls`` in between (the
    upstream's per-tool numbers need not add up to its counter; the shares are
    of the tools' own total).
    """
    split = _Split.of(provider, TOOLS_KEY, start, end)
    if split is None:
        return ToolCalls(0.0, [])
    total, counted = _count(split, tools=True)
    by_tool = sorted(((name, calls) for name, calls in counted.items() if calls > 0), key=lambda item: -item[1])
    return ToolCalls(total, by_tool)


def _tool_steps(readings: QuerySet[QuotaReading]) -> dict[str, float]:
    """Each tool's steps between consecutive ``readings``: a range of a quota that is not rolled up."""
    counted: dict[str, float] = {}
    previous = None
    rows = readings.order_by("captured_at", "id").values_list("captured_at", "unit", "cycle_id", "details")
    for at, unit, cycle_id, details in rows:
        reading = rollups.Reading(at, "", "", unit, 0.0, None, cycle_id, rollups.tool_levels(details))
        _add(counted, rollups.tools_added(reading, previous))
        previous = reading
    return counted


def _add(counted: dict[str, float], calls: dict[str, object]) -> None:
    for name, value in calls.items():
        if isinstance(value, int | float) and math.isfinite(value):
            counted[str(name)] = counted.get(str(name), 0.0) + float(value)


class _Cycle(NamedTuple):
    """What the cycle cards read of a complete cycle."""

    consumed: float
    limit: float | None


def _complete_cycles(provider: str, key: str, since: datetime, now: datetime) -> list[_Cycle]:
    """Closed cycles of a quota that ended in [since, now], oldest first (one query).

    The quota's first cycle is left out: it began when tracking did, mid-window,
    so its consumption is only part of a window's.
    """
    of_quota = ResetCycle.objects.filter(provider=provider, quota=key)
    first = of_quota.order_by("started_at", "id").values("id")[:1]
    rows = (
        of_quota.filter(ended_at__gte=since, ended_at__lte=now)
        .exclude(id=Subquery(first))
        .order_by("started_at", "id")
        .values_list("consumed", "limit")
    )
    return [_Cycle(consumed, limit) for consumed, limit in rows]


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
    polls = attempts.tally(data.provider, start, data.now)
    stats.append({"label": f"Polls ({range_key})", "value": _number(polls.total)})
    stats.append({"label": "Poll success", "value": f"{polls.ok / polls.total * 100:.1f}%" if polls.total else "—"})
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
