"""``manage.py demo``: realistic history for both providers, without keys.

Each simulated poll builds the payload the provider would send today (as in
the fixtures), runs it through the real adapter's ``parse()``, and stores it
the way the poller does: snapshot, readings, cycle tracking, attempt, session.
So cycles, sessions, insights and charts come from the product's own code.

What is simulated: a user who works weekdays 9–18 (UTC), lighter evenings and
weekends, idle nights, and now and then a crunch day that hits the limits;
the poller restarted a few times and down for hours now and then; upstream
outages (server errors, network errors, rate limiting with Retry-After, backed
off as the poller does); one drifted payload and one with an unknown key per
provider.

What is kept: what the poller would have left after ``--days`` of polling
under the configured retention (quotas.retention). Every poll of the whole
span goes through cycle tracking, sessions and the roll-ups, but readings,
snapshots, raw bodies, attempts and roll-ups older than their horizon are
never written: a year of demo holds what a year-old install holds, and
writing only that is what makes a year take minutes. A test checks that the
result equals a full demo pruned by ``quotas.retention``.

Speed: a sole writer under the poller lock, so the open cycles stay in memory
(``cycles.OpenCycles``, as ``reparse`` does), roll-ups are folded in memory
as the polls go (``rollups.Builder``, as ``reparse`` rebuilds them), and rows
are written with ``bulk_create`` once per batch of polls, one transaction per batch.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.queues
import queue
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType

from django.core.management.color import no_style
from django.db import connection, connections, models, transaction
from django.db.models import Max
from django.utils import timezone

from lib import http
from quotas import cycles, failures, polling, retention, rollups
from quotas.models import (
    Outcome,
    PollAttempt,
    PollRequest,
    PollSession,
    QuotaReading,
    QuotaRollup,
    ResetCycle,
    Resolution,
    Setting,
    Snapshot,
)
from quotas.providers import ADAPTERS, interpret
from quotas.providers.base import NETWORK_ERROR, SERVER_ERROR, PollFailure

# The Setting that marks a database filled by ``demo`` (value: what and until when).
MARKER = "demo"
MIN_INTERVAL, MAX_INTERVAL = 10, 3600
MIN_DAYS, MAX_DAYS = 1, 3650
# The drifted and unknown-key polls fall in the last days, so a long demo keeps them.
ODD_POLLS_WITHIN = 3 * 24 * 3600.0
# Polls per transaction (both providers count).
BATCH = 5000
HOUR = 3600.0
MARGIN = timedelta(seconds=1)
DAY = 24 * HOUR


class DemoRefused(Exception):
    """The database holds real polls and --force was not given."""


class DemoError(Exception):
    """A simulation process failed."""


@dataclass
class DemoCounts:
    polls: int = 0  # simulated, kept or not
    snapshots: int = 0
    readings: int = 0
    attempts: int = 0
    failed: int = 0
    sessions: int = 0
    cycles: int = 0
    rollups: int = 0
    seconds: float = 0.0

    def __iadd__(self, other: DemoCounts) -> DemoCounts:
        for name in ("polls", "snapshots", "readings", "attempts", "failed", "sessions", "rollups"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def real_polls_present() -> bool:
    """Whether the database holds polls that ``demo`` did not make.

    A demo database is marked with the ``demo`` setting; polls stored after
    its last simulated poll (a poller run on top of it) are real ones.
    """
    marker = Setting.objects.filter(key=MARKER).values_list("value", flat=True).first()
    attempts, snapshots = PollAttempt.objects.all(), Snapshot.objects.all()
    if isinstance(marker, dict) and marker.get("until"):
        until = datetime.fromisoformat(marker["until"])
        attempts, snapshots = attempts.filter(at__gt=until), snapshots.filter(captured_at__gt=until)
    return attempts.exists() or snapshots.exists()


def fill(
    days: int,
    interval: int,
    *,
    force: bool = False,
    end: datetime | None = None,
    seed: int = 7,
    parallel: bool = True,
    progress: Callable[[str], None] | None = None,
    horizons: retention.Horizons | None = None,
) -> DemoCounts:
    """Replace the polled data with ``days`` of simulated polls every ``interval`` s, ending at ``end``.

    1. Refuse (DemoRefused) when real polls are present, unless ``force``.
    2. Wipe snapshots, readings, cycles, sessions and attempts; mark the database.
    3. Simulate the poller's runs, both providers, batch by batch; every
       session ends at its last successful poll, as a stopped poller leaves it.
       Rows older than ``horizons`` (the configured retention's, at ``end``)
       are not written; the roll-ups are folded as the polls go.

    ``parallel``: simulate the two providers in two processes (not inside a
    transaction, so never within a test's). The caller holds the poller lock.
    """
    started = time.monotonic()
    end = (end or timezone.now()).replace(microsecond=0)
    start = end - timedelta(days=days)
    if not force and real_polls_present():
        raise DemoRefused("this database holds real polls; demo would replace them (use --force to do so anyway)")
    with transaction.atomic():
        wipe()
        Setting.objects.update_or_create(
            key=MARKER,
            # Polls land up to half a second after they start: the last one lands before "until".
            defaults={"value": {"until": (end + MARGIN).isoformat(), "days": days, "interval": interval}},
        )
    plan = Plan.make(start.timestamp(), end.timestamp(), random.Random(seed))
    horizons = horizons or retention.Horizons.at(end)
    jobs = [Job(provider, start.timestamp(), end.timestamp(), interval, seed, horizons) for provider in ADAPTERS]
    # Each provider gets its own range of ids, so the two can be written side by side.
    bound = int(days * DAY / interval) + 10 * len(plan.runs) + 100
    bases = {model: _next_id(model) for model in (Snapshot, QuotaReading, PollAttempt)}
    for i, job in enumerate(jobs):
        job.first_ids = {model: base + i * bound * ROWS_PER_POLL[model] for model, base in bases.items()}
    if parallel and not connection.in_atomic_block and connection.vendor in ("sqlite", "postgresql"):
        results = _run_in_processes(jobs, plan, progress)
    else:
        results = [job.run(plan, progress) for job in jobs]
    if connection.vendor == "postgresql":
        # Ids were given explicitly: move the sequences past them.
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Snapshot, QuotaReading, PollAttempt]):
                cursor.execute(sql)
            # Planner statistics and the visibility map for the tables just filled, as autovacuum
            # would leave them some minutes later: without statistics the first reads of a fresh
            # demo plan badly (summary's index walk: 57 ms instead of 9 on a month), and without
            # the VACUUM autovacuum's insert-triggered run comes later, in the middle of whatever
            # the demo is for (it took a core from `make bench`'s timings). VACUUM cannot run in
            # a transaction (the tests' demos): those get the statistics alone.
            tables = [model._meta.db_table for model in (Snapshot, QuotaReading, PollAttempt, QuotaRollup, ResetCycle)]
            names = ", ".join(connection.ops.quote_name(t) for t in tables)
            cursor.execute(f"ANALYZE {names}" if connection.in_atomic_block else f"VACUUM (ANALYZE) {names}")
    counts = DemoCounts()
    for result in results:
        counts += result
    counts.cycles = ResetCycle.objects.count()
    counts.seconds = time.monotonic() - started
    return counts


# Rows each poll may write at most, per table (Synthetic's five readings, and room for an unknown block).
ROWS_PER_POLL = {Snapshot: 1, QuotaReading: 8, PollAttempt: 1}


def _next_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1


@dataclass
class Job:
    """One provider's share of the demo: its own world, polls and id ranges."""

    provider: str
    start: float
    end: float
    interval: int
    seed: int
    horizons: retention.Horizons
    first_ids: dict = field(default_factory=dict)

    def run(self, plan: Plan, progress: Callable[[str], None] | None) -> DemoCounts:
        world_class = SyntheticWorld if self.provider == "synthetic" else ZaiWorld
        world = world_class(self.start, random.Random(f"{self.seed}-{self.provider}"))
        writer = Writer(self.horizons, self.first_ids)
        rng = random.Random(f"{self.seed}-{self.provider}-polls")
        Simulator(self.provider, world, plan, self.interval, writer, rng).run(progress)
        return writer.finish()


def _run_in_processes(jobs: list[Job], plan: Plan, progress: Callable[[str], None] | None) -> list[DemoCounts]:
    """Run each job in a forked process (one core each); the database serialises their short write batches."""
    context = multiprocessing.get_context("fork")
    results: multiprocessing.queues.Queue = context.Queue()
    connections.close_all()  # a forked child must open its own connection

    def child(job: Job) -> None:
        try:
            results.put((job.provider, job.run(plan, progress), None))
        except BaseException as e:  # reported by the parent
            results.put((job.provider, None, f"{type(e).__name__}: {e}"))
        finally:
            connections.close_all()

    processes = [context.Process(target=child, args=(job,), daemon=True) for job in jobs]
    for process in processes:
        process.start()
    answers = []
    while len(answers) < len(processes):
        try:
            answers.append(results.get(timeout=1))
        except queue.Empty:
            # A child killed outside Python (out of memory) never answers.
            if any(process.exitcode not in (None, 0) for process in processes):
                raise DemoError("a simulation process died; the database holds part of the demo") from None
    for process in processes:
        process.join()
    errors = [f"{provider}: {error}" for provider, _, error in answers if error]
    if errors:
        raise DemoError("; ".join(errors))
    return [counts for _, counts, _ in answers]


def wipe() -> None:
    """Delete every polled row, and the tally of failed polls pruned from them (the metrics' failures
    total counts those: after a wipe it starts again). Plain DELETEs: the ORM's cascade would load
    millions of rows first."""
    for model in (QuotaRollup, QuotaReading, PollAttempt, Snapshot, ResetCycle, PollSession, PollRequest):
        # _raw_delete: one DELETE statement; the order above keeps foreign keys satisfied.
        model.objects.all()._raw_delete(model.objects.db)
    Setting.objects.filter(key=failures.PRUNED_KEY).delete()


# --- when the poller runs, and what goes wrong upstream ---------------------------------------


@dataclass
class Incident:
    start: float
    end: float
    outcome: str
    retry_after: float | None = None


@dataclass
class Plan:
    """The poller's runs (each a session) and, per provider, the upstream's bad moments."""

    runs: list[tuple[float, float]]
    incidents: dict[str, list[Incident]]
    drift_at: dict[str, float]
    unknown_key_at: dict[str, float]

    @classmethod
    def make(cls, start: float, end: float, rng: random.Random) -> Plan:
        span = end - start
        days = span / DAY
        # Downtime: a few restarts of minutes, and outages of hours (at least one of each).
        downs: list[tuple[float, float]] = []
        for _ in range(max(2, round(days / 4))):
            at = rng.uniform(start + 0.05 * span, end - 0.05 * span)
            downs.append((at, at + rng.uniform(60, 600)))
        for _ in range(max(1, round(days / 8))):
            at = rng.uniform(start + 0.05 * span, end - 0.15 * span)
            downs.append((at, at + min(rng.uniform(2, 9) * HOUR, 0.1 * span)))
        runs, cursor = [], start
        for down_start, down_end in sorted(downs):
            if down_start > cursor:
                runs.append((cursor, down_start))
            cursor = max(cursor, down_end)
        runs.append((cursor, end))

        incidents: dict[str, list[Incident]] = {}
        drift_at, unknown_key_at = {}, {}
        for provider in ADAPTERS:
            found: list[Incident] = []
            for outcome, per_day, minutes, retry_after in (
                (SERVER_ERROR, 0.4, (2, 25), None),
                (NETWORK_ERROR, 0.5, (1, 4), None),
                ("rate_limited", 0.15, (5, 15), 300.0),
            ):
                for _ in range(max(1, round(days * per_day))):
                    at = _while_up(runs, rng)
                    found.append(Incident(at, at + rng.uniform(*minutes) * 60, outcome, retry_after))
            incidents[provider] = sorted(found, key=lambda i: i.start)
            recent = [(max(a, end - ODD_POLLS_WITHIN), b) for a, b in runs if b > end - ODD_POLLS_WITHIN]
            drift_at[provider] = _while_up(recent, rng)
            unknown_key_at[provider] = _while_up(recent, rng)
        return cls(runs, incidents, drift_at, unknown_key_at)


def _while_up(runs: list[tuple[float, float]], rng: random.Random) -> float:
    """A random instant while the poller runs (in the first 95 % of the uptime, so it is seen)."""
    offset = rng.uniform(0, 0.95 * sum(end - start for start, end in runs))
    for start, end in runs:
        if offset < end - start:
            return start + offset
        offset -= end - start
    return runs[-1][0]  # pragma: no cover


# --- the user's rhythm ------------------------------------------------------------------------

# Share of a busy hour's work, by UTC hour of day.
HOURLY = [0, 0, 0, 0, 0, 0, 0.02, 0.15, 0.5, 1, 1, 1, 0.55, 0.9, 1, 1, 1, 0.8, 0.45, 0.3, 0.35, 0.25, 0.1, 0.03]


class Rhythm:
    """How busy the user is at an instant: hour of day × day (weekends light, some crunch days) × 15-min bursts."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.days: dict[int, float] = {}
        self.slot = -1
        self.slot_value = 0.0

    def day_factor(self, day: int) -> float:
        if day not in self.days:
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; 5, 6 = Saturday, Sunday
            factor = self.rng.lognormvariate(0, 0.3)
            if weekday >= 5:
                factor *= 0.25 if self.rng.random() < 0.7 else 0.0
            elif self.rng.random() < 0.1:
                factor *= 2.6  # a crunch day: the limits are hit
            self.days[day] = factor
        return self.days[day]

    def at(self, ts: float) -> float:
        slot = int(ts // 900)
        if slot != self.slot:
            self.slot = slot
            day = int(ts // DAY)
            hour = int(ts % DAY // HOUR)
            busy = HOURLY[hour] * self.day_factor(day)
            # Work comes in bursts: some quarters of an hour are quiet.
            self.slot_value = busy * self.rng.uniform(0.4, 1.6) if self.rng.random() < 0.8 else 0.0
        return self.slot_value


def _count(expected: float, rng: random.Random) -> int:
    """A whole number of events with mean ``expected`` (stochastic rounding)."""
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def _iso_ms(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _next_on_grid(ts: float, anchor: float, period: float) -> float:
    """The first instant after ``ts`` on the grid ``anchor + k × period``."""
    return anchor + (int((ts - anchor) // period) + 1) * period


# --- Synthetic --------------------------------------------------------------------------------


class SyntheticWorld:
    """Synthetic's quotas today (shape C): a 5-h subscription window, hourly search, daily tool
    calls, the rolling 5-h window (5 % back every 15 min, ``limited`` when empty) and weekly credits
    ($ strings, 2 % back every 202 min)."""

    SUB_LIMIT, SEARCH_LIMIT, TOOLS_LIMIT = 500, 250, 500
    ROLLING_MAX, TICK = 500, 0.05
    CREDITS_MAX = 2400  # cents
    REGEN = 48  # cents, 2 % of the maximum
    REGEN_EVERY = 202 * 60
    # At a busy hour: requests, searches and tool calls per hour; credits (cents) per request.
    REQUESTS_PER_HOUR, SEARCHES_PER_HOUR, TOOLS_PER_HOUR, CENTS_PER_REQUEST = 95.0, 14.0, 32.0, 0.45

    def __init__(self, start: float, rng: random.Random) -> None:
        self.rng = rng
        self.rhythm = Rhythm(rng)
        self.sub_anchor = start - rng.uniform(0, 5 * HOUR)
        self.tools_anchor = start - rng.uniform(0, DAY)
        self.tick_anchor = start - rng.uniform(0, 900)
        self.regen_anchor = start - rng.uniform(0, self.REGEN_EVERY)
        self.sub_renews = _next_on_grid(start, self.sub_anchor, 5 * HOUR)
        self.tools_renews = _next_on_grid(start, self.tools_anchor, DAY)
        self.search_hour = int(start // HOUR)
        self.next_tick = _next_on_grid(start, self.tick_anchor, 900)
        self.next_regen = _next_on_grid(start, self.regen_anchor, self.REGEN_EVERY)
        self.sub = self.search = self.tools = 0.0
        self.rolling = self.ROLLING_MAX
        self.credits = int(self.CREDITS_MAX * rng.uniform(0.5, 1))
        self.now = start

    def advance(self, to: float) -> None:
        """Let the user work until ``to``: ticks, regenerations and resets happen on the way."""
        while self.now < to:
            step_end = min(to, self.now + 300.0, self.next_tick, self.next_regen, self.sub_renews, self.tools_renews)
            self._work(step_end - self.now, self.rhythm.at(self.now))
            self.now = step_end
            if self.now >= self.next_tick:
                self.rolling = min(self.ROLLING_MAX, self.rolling + round(self.TICK * self.ROLLING_MAX))
                self.next_tick += 900
            if self.now >= self.next_regen:
                self.credits = min(self.CREDITS_MAX, self.credits + self.REGEN)
                self.next_regen += self.REGEN_EVERY
            if self.now >= self.sub_renews:
                self.sub = 0.0
                self.sub_renews += 5 * HOUR
            if self.now >= self.tools_renews:
                self.tools = 0.0
                self.tools_renews += DAY
            hour = int(self.now // HOUR)
            if hour != self.search_hour:
                self.search, self.search_hour = 0.0, hour

    def _work(self, seconds: float, busy: float) -> None:
        if busy <= 0 or seconds <= 0:
            return
        hours = seconds / HOUR
        wanted = _count(self.REQUESTS_PER_HOUR * busy * hours, self.rng)
        # Whatever the user wants, a limited window or spent credits stop the requests.
        cents = self.CENTS_PER_REQUEST * self.rng.uniform(0.5, 1.5)
        done = min(wanted, self.rolling, int(self.credits / cents), int(self.SUB_LIMIT - self.sub))
        if done > 0:
            self.rolling -= done
            self.credits -= round(done * cents)
            flash = _count(done * 0.2, self.rng)  # flash models count half
            self.sub += done - 0.5 * flash
        self.search = min(self.SEARCH_LIMIT, self.search + _count(self.SEARCHES_PER_HOUR * busy * hours, self.rng))
        self.tools = min(self.TOOLS_LIMIT, self.tools + _count(self.TOOLS_PER_HOUR * busy * hours, self.rng))

    def payload(self, at: float) -> dict:
        credits_left = max(self.credits, 0)
        return {
            "subscription": {"limit": self.SUB_LIMIT, "requests": self.sub, "renewsAt": _iso_ms(self.sub_renews)},
            # Search reports "now + 1 h" at every poll: it drifts with the poll clock.
            "search": {"hourly": {"limit": self.SEARCH_LIMIT, "requests": self.search, "renewsAt": _iso_ms(at + HOUR)}},
            "freeToolCalls": {
                "limit": self.TOOLS_LIMIT,
                "requests": self.tools,
                "renewsAt": _iso_ms(self.tools_renews),
            },
            "weeklyTokenLimit": {
                "nextRegenAt": _iso_ms(self.next_regen),
                "percentRemaining": round(credits_left * 100 / self.CREDITS_MAX, 2),
                "maxCredits": f"${self.CREDITS_MAX / 100:.2f}",
                "remainingCredits": f"${credits_left / 100:.2f}",
                "nextRegenCredits": f"${self.REGEN / 100:.2f}",
            },
            "rollingFiveHourLimit": {
                "nextTickAt": _iso_ms(self.next_tick),
                "tickPercent": self.TICK,
                "remaining": self.rolling,
                "max": self.ROLLING_MAX,
                "limited": self.rolling <= 0,
            },
        }

    def unknown_key_payload(self, at: float) -> dict:
        # A block this version does not know yet: stored with the known ones, flagged as drift.
        return {**self.payload(at), "dailyImageLimit": {"limit": 50, "requests": 3, "renewsAt": _iso_ms(at + DAY)}}

    @staticmethod
    def drift_payload() -> dict:
        return {}  # "no data": never zero usage


# --- Z.ai -------------------------------------------------------------------------------------


class ZaiWorld:
    """Z.ai's GLM Coding Plan (pro): 5-hour and weekly token windows, the monthly tool-call
    allowance with its per-tool breakdown, and the plan level."""

    LEVEL = "pro"
    TOKENS_5H, TOKENS_WEEK, CALLS_MONTH = 80_000_000, 400_000_000, 1000
    TOKENS_PER_HOUR, CALLS_PER_HOUR = 9_500_000.0, 2.2
    TOOLS = (("search-prime", 0.55), ("web-reader", 0.3), ("zread", 0.15))

    def __init__(self, start: float, rng: random.Random) -> None:
        self.rng = rng
        self.rhythm = Rhythm(rng)
        self.reset_5h = _next_on_grid(start, start - rng.uniform(0, 5 * HOUR), 5 * HOUR)
        self.reset_week = _next_on_grid(start, start - rng.uniform(0, 7 * DAY), 7 * DAY)
        self.reset_month = self._month_after(start, rng.randint(1, 28))
        self.used_5h = 0.0
        self.used_week = self.TOKENS_WEEK * rng.uniform(0.1, 0.4)
        self.tools = {name: int(rng.uniform(20, 120) * share) for name, share in self.TOOLS}
        self.now = start

    @staticmethod
    def _month_after(ts: float, day: int | None = None) -> float:
        """The next monthly reset after ``ts``, on ``day`` of the month at 00:00 UTC plus a fixed offset."""
        moment = datetime.fromtimestamp(ts, UTC)
        day = day or moment.day
        candidate = moment.replace(day=day, hour=3, minute=12, second=6, microsecond=0)
        if candidate.timestamp() <= ts:
            year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
            candidate = candidate.replace(year=year, month=month)
        return candidate.timestamp()

    def advance(self, to: float) -> None:
        while self.now < to:
            step_end = min(to, self.now + 300.0, self.reset_5h, self.reset_week, self.reset_month)
            self._work(step_end - self.now, self.rhythm.at(self.now))
            self.now = step_end
            if self.now >= self.reset_5h:
                self.used_5h = 0.0
                self.reset_5h += 5 * HOUR
            if self.now >= self.reset_week:
                self.used_week = 0.0
                self.reset_week += 7 * DAY
            if self.now >= self.reset_month:
                self.tools = dict.fromkeys(self.tools, 0)
                self.reset_month = self._month_after(self.now)

    def _work(self, seconds: float, busy: float) -> None:
        if busy <= 0 or seconds <= 0:
            return
        hours = seconds / HOUR
        # A window at its limit blocks further use; the last request may overshoot (currentValue > usage).
        if self.used_5h < self.TOKENS_5H and self.used_week < self.TOKENS_WEEK:
            tokens = self.TOKENS_PER_HOUR * busy * hours * self.rng.uniform(0.6, 1.4)
            self.used_5h += tokens
            self.used_week += tokens
        calls = _count(self.CALLS_PER_HOUR * busy * hours, self.rng)
        if calls and sum(self.tools.values()) < self.CALLS_MONTH:
            name = self.rng.choices([t for t, _ in self.TOOLS], [s for _, s in self.TOOLS])[0]
            self.tools[name] += calls

    def _limit(self, unit: int, number: int, cap: float, used: float, reset: float, kind: str = "TOKENS_LIMIT") -> dict:
        used = int(used)
        return {
            "type": kind,
            "unit": unit,
            "number": number,
            "usage": cap,
            "currentValue": used,
            "remaining": max(int(cap) - used, 0),
            "percentage": min(int(used * 100 / cap), 100),
            # Z.ai's reset times jitter by milliseconds from one poll to the next.
            "nextResetTime": int(reset * 1000) + self.rng.randint(-400, 400),
        }

    def payload(self, at: float) -> dict:
        calls = sum(self.tools.values())
        monthly = self._limit(5, 1, self.CALLS_MONTH, calls, self.reset_month, "TIME_LIMIT")
        monthly["usageDetails"] = [{"modelCode": name, "usage": used} for name, used in self.tools.items()]
        limits = [
            self._limit(3, 5, self.TOKENS_5H, self.used_5h, self.reset_5h),
            self._limit(6, 1, self.TOKENS_WEEK, self.used_week, self.reset_week),
            monthly,
        ]
        return {
            "code": 200,
            "msg": "Operation successful",
            "success": True,
            "data": {"limits": limits, "level": self.LEVEL},
        }

    def unknown_key_payload(self, at: float) -> dict:
        return {**self.payload(at), "traceId": "demo-7f3a"}

    @staticmethod
    def drift_payload() -> dict:
        return {"code": 200, "msg": "Operation successful", "success": True, "data": {"quota": []}}


# --- polls as the poller makes them ------------------------------------------------------------


class SnapshotOutcome:
    """What ``polling.apply_outcome`` sets on a snapshot, without a model instance."""

    __slots__ = tuple(polling.OUTCOME_FIELDS)


class Table:
    """Rows of one model, written with one ``bulk_create`` per batch.

    Ids are assigned here, so readings and attempts can point at their
    snapshot before it is written.
    """

    def __init__(self, model: type[models.Model], names: list[str], first_id: int) -> None:
        self.model = model
        self.attnames = [model._meta.get_field(name).attname for name in names]
        self.rows: list[models.Model] = []
        self.next_id = first_id
        self.written = 0

    def add(self, *values: object) -> int:
        pk = self.next_id
        self.next_id += 1
        self.rows.append(self.model(pk, **dict(zip(self.attnames, values, strict=True))))
        return pk

    def write(self) -> None:
        if self.rows:
            self.model.objects.bulk_create(self.rows, batch_size=1000)
            self.written += len(self.rows)
            self.rows = []


class Writer:
    """The rows of a batch of polls, written together in one short transaction.

    The simulation itself runs outside any transaction (cycles are opened and
    closed as it goes, each in its own), so a second writer waits only for a
    batch's INSERTs, never for a batch's simulation.
    """

    def __init__(self, horizons: retention.Horizons, first_ids: dict) -> None:
        # Polls from these instants on keep their raw body, readings and attempt.
        self.raw_from, self.readings_from = _since(horizons.raw), _since(horizons.readings)
        self.attempts_from = _since(horizons.attempts)
        self.snapshots = Table(
            Snapshot, ["provider", "captured_at", "plan", "raw", "drift", "drift_notes", "usable"], first_ids[Snapshot]
        )
        self.readings = Table(
            QuotaReading,
            [
                *("snapshot", "provider", "captured_at", "cycle", "key", "label", "kind", "unit"),
                *("used", "limit", "remaining", "percent", "resets_at", "details"),
            ],
            first_ids[QuotaReading],
        )
        self.attempts = Table(
            PollAttempt,
            ["provider", "at", "outcome", "drift", "latency_ms", "message", "session", "snapshot"],
            first_ids[PollAttempt],
        )
        self.sessions: dict[int, PollSession] = {}
        self.open_cycles = cycles.OpenCycles()
        self.rollups: list[QuotaRollup] = []
        kept = {Resolution.FIVE_MINUTES: horizons.five_minute_rollups, Resolution.HOUR: horizons.hourly_rollups}
        self.builder = rollups.Builder(self.rollups.extend, since=kept)
        self.counts = DemoCounts()
        self.flushed_at = 0

    def pending(self) -> int:
        """Polls simulated since the last flush."""
        return self.counts.polls - self.flushed_at

    def flush(self) -> None:
        """Write the batch and commit it."""
        self.flushed_at = self.counts.polls
        with transaction.atomic():
            for table in (self.snapshots, self.readings, self.attempts):
                table.write()
            if self.rollups:
                rollups.insert(self.rollups)
                self.counts.rollups += len(self.rollups)
                self.rollups.clear()
            self.open_cycles.flush()
            for session in self.sessions.values():
                session.save()
        self.sessions = {}

    def finish(self) -> DemoCounts:
        self.builder.finish()
        self.flush()
        self.counts.snapshots = self.snapshots.written
        self.counts.readings = self.readings.written
        self.counts.attempts = self.attempts.written
        return self.counts


class Simulator:
    """One provider's polls over the plan's runs, stored as ``polling.store`` stores them."""

    def __init__(
        self, provider: str, world: SyntheticWorld | ZaiWorld, plan: Plan, interval: int, writer: Writer, rng
    ) -> None:
        self.provider = provider
        self.adapter: ModuleType = ADAPTERS[provider]
        self.world = world
        self.plan = plan
        self.interval = interval
        self.writer = writer
        self.rng = rng
        self.incidents = list(plan.incidents[provider])
        # The first polls at or after these instants carry a drifted payload, and one with an unknown key.
        self.drift_at: float | None = plan.drift_at[provider]
        self.unknown_key_at: float | None = plan.unknown_key_at[provider]

    def run(self, progress: Callable[[str], None] | None) -> None:
        for run_start, run_end in self.plan.runs:
            # The loop polls both providers in parallel; Z.ai's answer lands a little later.
            self.poll_run(run_start + (0.0 if self.provider == "synthetic" else 0.2), run_end)
            if progress:
                progress(f"{self.provider}: up to {datetime.fromtimestamp(run_end, UTC):%Y-%m-%d %H:%M}")

    def poll_run(self, start: float, end: float) -> None:
        writer = self.writer
        session = PollSession.objects.create(
            provider=self.provider, started_at=_dt(start), interval_seconds=self.interval
        )
        writer.counts.sessions += 1
        failures, at = 0, start
        while at < end:
            writer.sessions[session.pk] = session
            latency = self.rng.uniform(0.08, 0.45)
            landed = at + latency
            incident = self._incident(at)
            retry_after = None
            self.world.advance(landed)
            if incident is not None:
                failure = self._failure(incident)
                retry_after = failure.retry_after
                self._failed(session, landed, failure, latency)
                failures += 1
            elif self.drift_at is not None and at >= self.drift_at:
                self.drift_at = None
                self._drifted(session, landed, self.world.drift_payload(), latency)
                failures += 1
            else:
                data = self.world.payload(landed)
                if self.unknown_key_at is not None and at >= self.unknown_key_at:
                    self.unknown_key_at = None
                    data = self.world.unknown_key_payload(landed)
                self._ok(session, landed, data, latency)
                failures = 0
            if writer.pending() >= BATCH:
                writer.flush()
            at += polling.next_delay(self.interval, failures, retry_after)
        session.ended_at = max(session.last_success_at or session.started_at, session.started_at)
        writer.sessions[session.pk] = session

    def _incident(self, at: float) -> Incident | None:
        # Incidents are sorted; the ones that are over are dropped as time moves on.
        while self.incidents and self.incidents[0].end <= at:
            self.incidents.pop(0)
        if self.incidents and self.incidents[0].start <= at:
            return self.incidents[0]
        return None

    def _failure(self, incident: Incident) -> PollFailure:
        """The failure the real fetch would report: HTTP answers go through ``interpret``."""
        if incident.outcome == NETWORK_ERROR:
            return PollFailure(NETWORK_ERROR, "connection failed: Connection refused")
        if incident.outcome == SERVER_ERROR:
            if self.provider == "zai":  # Z.ai says it inside HTTP 200
                body = {"code": 500, "msg": "Internal server error", "success": False, "data": None}
                response = http.Response(200, json.dumps(body).encode())
            else:
                response = http.Response(503, b"<html>Service Unavailable</html>")
        else:
            response = http.Response(429, b'{"error": "rate limited"}', {"retry-after": f"{incident.retry_after:.0f}"})
        try:
            interpret(self.adapter, response)
        except PollFailure as failure:
            return failure
        raise AssertionError(f"{incident.outcome} payload parsed")  # pragma: no cover

    def _ok(self, session: PollSession, at: float, data: dict, latency: float) -> None:
        writer = self.writer
        parsed = self.adapter.parse(data)
        captured = _dt(at)
        snapshot = SnapshotOutcome()
        polling.apply_outcome(snapshot, parsed, None)
        kept, raw = at >= writer.readings_from, self._raw(at, data)
        snapshot_id = None
        if kept or raw is not None:
            snapshot_id = writer.snapshots.add(
                self.provider, captured, snapshot.plan, raw, snapshot.drift, snapshot.drift_notes, snapshot.usable,
            )  # fmt: skip
        readings = [cycles.LightReading(self.provider, captured, quota) for quota in parsed.quotas]
        polling.track_readings(readings, session, writer.open_cycles)
        for quota, reading in zip(parsed.quotas, readings, strict=True):
            cycle_id = reading.cycle.pk if reading.cycle else None
            if kept:
                writer.readings.add(
                    snapshot_id, self.provider, captured, cycle_id, quota.key, quota.label, quota.kind,
                    quota.unit, quota.used, quota.limit, quota.remaining, quota.percent, quota.resets_at,
                    quota.details,
                )  # fmt: skip
            if quota.percent is not None:  # as rollups.record folds them
                charted = rollups.Reading(
                    captured, quota.label, quota.kind, quota.unit, quota.percent, quota.used, cycle_id,
                    rollups.tool_levels(quota.details),
                )  # fmt: skip
                writer.builder.add(self.provider, quota.key, charted)
        outcome, drift, message = polling.ok_outcome(parsed, readings)
        self._attempt(session, at, outcome, drift, message, latency, snapshot_id)

    def _drifted(self, session: PollSession, at: float, data: dict, latency: float) -> None:
        try:
            self.adapter.parse(data)
        except PollFailure as failure:
            writer = self.writer
            snapshot = SnapshotOutcome()
            polling.apply_outcome(snapshot, None, failure)
            snapshot_id, raw = None, self._raw(at, data)
            if at >= writer.readings_from or raw is not None:  # as retention would have left it
                snapshot_id = writer.snapshots.add(
                    self.provider, _dt(at), snapshot.plan, raw, snapshot.drift, snapshot.drift_notes, snapshot.usable,
                )  # fmt: skip
            self._attempt(session, at, failure.outcome, True, failure.message, latency, snapshot_id)
            return
        raise AssertionError("the drift payload parsed")  # pragma: no cover

    def _failed(self, session: PollSession, at: float, failure: PollFailure, latency: float) -> None:
        network = failure.outcome == NETWORK_ERROR
        self._attempt(session, at, failure.outcome, False, failure.message, None if network else latency)

    def _attempt(
        self, session: PollSession, at: float, outcome: str, drift: bool, message: str, latency: float | None,
        snapshot_id: int | None = None,
    ) -> None:  # fmt: skip
        writer = self.writer
        writer.counts.polls += 1
        if at >= writer.attempts_from:
            writer.attempts.add(
                self.provider, _dt(at), outcome, drift,
                round(latency * 1000) if latency is not None else None, message[:500], session.pk, snapshot_id,
            )  # fmt: skip
        if outcome == Outcome.OK:
            session.polls_ok += 1
            session.last_success_at = _dt(at)
        else:
            session.polls_failed += 1
            writer.counts.failed += 1

    def _raw(self, at: float, data: dict) -> bytes | None:
        return Snapshot.compress(_body(data)) if at >= self.writer.raw_from else None


def _since(horizon: datetime | None) -> float:
    """A retention horizon as a timestamp; rows from it on are kept (None: everything is)."""
    return horizon.timestamp() if horizon is not None else float("-inf")


def _body(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
