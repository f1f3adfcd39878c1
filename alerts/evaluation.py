"""Which alerts a stored poll raises: the state machine behind "exactly once, with hysteresis".

``evaluate()`` runs after each poll is stored. It reads the user's rules, the
provider's latches (alerts.models.Latch) and the poll, and returns the new
alerts, written with their latches in one transaction:

1. Provider events, from the poll attempt: ``auth_failed`` (the key was
   rejected), ``drift`` (the payload changed shape), ``failing`` (the last
   ``SYNTRACK_ALERT_FAILING_POLLS`` polls all failed). Each is sent once and latched; the
   next good poll clears it and sends one ``recovered``.
2. Quota events, from the poll's snapshot and the numbers the dashboard shows
   (quotas.numbers): a new reset cycle re-arms everything of the quota (and
   is itself the ``reset`` event); then ``threshold`` per level, ``runs_out``
   (the outlook ``runs_out_before_reset``, which only a rate with enough
   evidence can give) and ``exhausted``. A quota without cycles (a rolling
   window) re-arms an event once its usage falls ``HYSTERESIS_POINTS`` below
   where it fired; within a cycle usage only climbs, so nothing re-arms
   before the next cycle.

A crossing straight past both levels sends only the critical alert (the
warning is latched silently). A disabled event is neither sent nor latched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from alerts.models import Alert, Event, Latch, Level
from alerts.rules import HYSTERESIS_POINTS, Rules, failing_polls
from quotas import numbers
from quotas.models import Outcome, PollAttempt, Setting
from quotas.providers import NAMES

PROVIDER_EVENTS = (Event.AUTH_FAILED, Event.DRIFT, Event.FAILING)


def evaluate(attempt: PollAttempt, now: datetime | None = None, rules: Rules | None = None) -> list[Alert]:
    """The alerts ``attempt`` (a stored poll) raises, saved with their latches.

    ``rules``: the rules as already read (``poll --once`` reads them once for
    every provider); read afresh when None. The latches are read without a
    lock: only the poller writes them (one poller per database), and a latch
    deleted meanwhile in the admin only re-arms its alert.
    """
    now = now or timezone.now()
    state = _State(attempt.provider, now, rules or Rules())
    state.load()
    state.provider_events(attempt)
    if attempt.outcome == Outcome.OK and attempt.snapshot_id is not None:
        for reading, quota in numbers.snapshot_quotas(attempt.snapshot, now):
            if not quota["hidden"] and quota["percent"] is not None:
                state.quota_events(_Quota.of(reading.cycle_id, quota))
    if state.changes():
        with transaction.atomic():
            state.save()
    return state.alerts


def unsent(within: timedelta) -> list[Alert]:
    """Alerts of the last ``within`` that were never delivered anywhere, oldest first."""
    since = timezone.now() - within
    return list(Alert.objects.filter(at__gte=since, deliveries__isnull=True).order_by("at", "id"))


@dataclass(frozen=True)
class _Quota:
    key: str
    label: str
    percent: float
    cycle_id: int | None
    outlook: str
    exhausts_at: datetime | None
    resets_at: datetime | None
    used: float | None
    limit: float | None
    unit: str

    @classmethod
    def of(cls, cycle_id: int | None, quota: dict[str, Any]) -> _Quota:
        return cls(
            quota["key"],
            quota["label"],
            float(quota["percent"]),
            cycle_id,
            quota["outlook"],
            _parse(quota["exhausts_at"]),
            _parse(quota["resets_at"]),
            quota["used"],
            quota["limit"],
            quota["unit"],
        )


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class _State:
    def __init__(self, provider: str, now: datetime, rules: Rules) -> None:
        self.provider, self.now, self.rules = provider, now, rules
        self.name = NAMES[provider]
        self.alerts: list[Alert] = []
        self.latches: dict[tuple[str, str, str], Latch] = {}
        self.dropped: list[Latch] = []
        self.changed: list[Latch] = []
        self.zone: ZoneInfo | None = None

    def load(self) -> None:
        for latch in Latch.objects.filter(provider=self.provider):
            self.latches[(latch.quota, latch.event, latch.level)] = latch

    # --- provider events ------------------------------------------------------------------------

    def provider_events(self, attempt: PollAttempt) -> None:
        failed = attempt.outcome != Outcome.OK
        if attempt.outcome == Outcome.UNAUTHORIZED:
            self.fire_once(Event.AUTH_FAILED, f"{self.name}: API key rejected", self._said(attempt))
        drifted = attempt.outcome == Outcome.DRIFT or attempt.drift
        if drifted:
            title = f"{self.name}: the answer changed shape"
            self.fire_once(Event.DRIFT, title, f"{self._said(attempt)} SynTrack keeps the raw answer for `reparse`.")
        if failed and self._failing():
            title = f"{self.name}: {failing_polls()} polls failed in a row"
            self.fire_once(Event.FAILING, title, f"The last one: {self._said(attempt)}")
        if not failed:
            cleared = [event for event in PROVIDER_EVENTS if not (event == Event.DRIFT and drifted)]
            for event in cleared:
                latch = self.latches.pop(("", event, ""), None)
                if latch is not None:
                    self.dropped.append(latch)
                    self.fire(Event.RECOVERED, f"{self.name}: {_RECOVERED[event]}", _RECOVERED_MESSAGE[event])

    def _failing(self) -> bool:
        count = failing_polls()
        last = PollAttempt.objects.filter(provider=self.provider).order_by("-at", "-id")[:count]
        outcomes = list(last.values_list("outcome", flat=True))
        return len(outcomes) == count and all(outcome != Outcome.OK for outcome in outcomes)

    @staticmethod
    def _said(attempt: PollAttempt) -> str:
        return f"{attempt.message.rstrip('.')}." if attempt.message else f"Outcome: {attempt.outcome}."

    def fire_once(self, event: str, title: str, message: str) -> None:
        if ("", event, "") in self.latches or not self.rules.on(event):
            return
        self.latch("", event, "", None, None)
        self.fire(event, title, message)

    # --- quota events ---------------------------------------------------------------------------

    def quota_events(self, quota: _Quota) -> None:
        self.new_cycle(quota)
        self.rearm_by_usage(quota)
        levels = self.rules.levels(self.provider, quota.key)
        unsent = [
            (level, bound)
            for level, bound in ((Level.WARNING, levels.warning), (Level.CRITICAL, levels.critical))
            if quota.percent >= bound and (quota.key, Event.THRESHOLD, level) not in self.latches
        ]
        if unsent and self.rules.on(Event.THRESHOLD):
            for level, _ in unsent:
                self.latch(quota.key, Event.THRESHOLD, level, quota.cycle_id, quota.percent)
            level, bound = max(unsent, key=lambda item: item[1])
            self.fire(
                Event.THRESHOLD, self._threshold_title(quota), self._threshold_message(quota, bound), quota, level
            )
        if quota.outlook == numbers.OUTLOOK_RUNS_OUT and quota.exhausts_at is not None:
            title = f"{self.name}: {quota.label} runs out before its reset"
            self.quota_once(quota, Event.RUNS_OUT, title, self._runs_out)
        if quota.outlook == numbers.OUTLOOK_EXHAUSTED:
            self.quota_once(quota, Event.EXHAUSTED, f"{self.name}: {quota.label} is used up", self._exhausted)

    def new_cycle(self, quota: _Quota) -> None:
        """A new cycle re-arms the quota's latches; it is the ``reset`` event (whose latch keeps the cycle seen)."""
        if quota.cycle_id is None:
            return
        for (key, event, level), latch in list(self.latches.items()):
            if key == quota.key and event != Event.RESET and latch.cycle_id not in (None, quota.cycle_id):
                self.dropped.append(self.latches.pop((key, event, level)))
        seen = self.latches.get((quota.key, Event.RESET, ""))
        if seen is None:
            self.latch(quota.key, Event.RESET, "", quota.cycle_id, None)
        elif seen.cycle_id != quota.cycle_id:
            seen.cycle_id, seen.at = quota.cycle_id, self.now
            self.changed.append(seen)
            if self.rules.on(Event.RESET):
                title = f"{self.name}: {quota.label} reset"
                self.fire(Event.RESET, title, f"{quota.label} starts a new cycle at {quota.percent:g} %.", quota)

    def rearm_by_usage(self, quota: _Quota) -> None:
        """Without cycles, an event re-arms once usage falls HYSTERESIS_POINTS below where it fired
        (a threshold: below its level)."""
        if quota.cycle_id is not None:
            return
        levels = self.rules.levels(self.provider, quota.key)
        bounds = {Level.WARNING: levels.warning, Level.CRITICAL: levels.critical}
        for (key, event, level), latch in list(self.latches.items()):
            if key != quota.key or event == Event.RESET:
                continue
            fired_at = bounds.get(level) if event == Event.THRESHOLD else latch.percent
            if fired_at is not None and quota.percent < fired_at - HYSTERESIS_POINTS:
                self.dropped.append(self.latches.pop((key, event, level)))

    def quota_once(self, quota: _Quota, event: str, title: str, message: Callable[[_Quota], str]) -> None:
        """``event`` for ``quota`` unless it is latched or off; ``message`` is written only when it fires."""
        if (quota.key, event, "") in self.latches or not self.rules.on(event):
            return
        self.latch(quota.key, event, "", quota.cycle_id, quota.percent)
        self.fire(event, title, message(quota), quota)

    def _threshold_title(self, quota: _Quota) -> str:
        return f"{self.name}: {quota.label} at {quota.percent:g} %"

    def _threshold_message(self, quota: _Quota, bound: float) -> str:
        amount = f" ({quota.used:g} of {quota.limit:g} {quota.unit})" if quota.used is not None and quota.limit else ""
        reset = f" It resets at {self.clock(quota.resets_at)}." if quota.resets_at else ""
        return f"{quota.label} has used {quota.percent:g} % of its limit{amount}, past {bound:g} %.{reset}"

    def _runs_out(self, quota: _Quota) -> str:
        assert quota.exhausts_at is not None
        reset = f"; it resets at {self.clock(quota.resets_at)}" if quota.resets_at else ""
        return f"At this pace {quota.label} runs out at {self.clock(quota.exhausts_at)}{reset}."

    def _exhausted(self, quota: _Quota) -> str:
        reset = f" It resets at {self.clock(quota.resets_at)}." if quota.resets_at else ""
        return f"{quota.label} has nothing left ({quota.percent:g} % used).{reset}"

    def clock(self, at: datetime | None) -> str:
        """A time as people read it: in the dashboard's zone (UTC when it follows the browser's),
        with the day when it is not today."""
        if at is None:
            return ""
        if self.zone is None:
            self.zone = _zone()
        zone = self.zone
        local, today = at.astimezone(zone), self.now.astimezone(zone)
        shown = local.strftime("%H:%M") if local.date() == today.date() else local.strftime("%a %d %b %H:%M")
        return f"{shown} {local.tzname()}"

    # --- bookkeeping ----------------------------------------------------------------------------

    def latch(self, quota: str, event: str, level: str, cycle_id: int | None, percent: float | None) -> None:
        latch = Latch(
            provider=self.provider,
            quota=quota,
            event=event,
            level=level,
            cycle_id=cycle_id,
            percent=percent,
            at=self.now,
        )
        self.latches[(quota, event, level)] = latch

    def fire(self, event: str, title: str, message: str, quota: _Quota | None = None, level: str = "") -> None:
        self.alerts.append(
            Alert(
                at=self.now,
                event=event,
                provider=self.provider,
                quota=quota.key if quota else "",
                level=level,
                title=title,
                message=message,
            )
        )

    def changes(self) -> bool:
        return bool(self.alerts or self.dropped or self.changed) or any(
            latch.pk is None for latch in self.latches.values()
        )

    def save(self) -> None:
        dropped = [latch.pk for latch in self.dropped if latch.pk is not None]
        if dropped:
            Latch.objects.filter(pk__in=dropped).delete()
        for latch in self.changed:
            if latch.pk is not None:
                Latch.objects.filter(pk=latch.pk).update(cycle_id=latch.cycle_id, at=latch.at)
        Latch.objects.bulk_create([latch for latch in self.latches.values() if latch.pk is None])
        self.alerts = Alert.objects.bulk_create(self.alerts)


_RECOVERED = {
    Event.AUTH_FAILED: "API key accepted again",
    Event.DRIFT: "the answer reads normally again",
    Event.FAILING: "polling recovered",
}
_RECOVERED_MESSAGE = {
    Event.AUTH_FAILED: "The provider accepted the API key; polling goes on.",
    Event.DRIFT: "The last poll was read in full again.",
    Event.FAILING: "A poll succeeded after a run of failures.",
}


def _zone() -> ZoneInfo:
    name = Setting.objects.filter(key="timezone").values_list("value", flat=True).first()
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("UTC")
    except (ValueError, OSError):
        return ZoneInfo("UTC")


__all__ = ["evaluate", "unsent"]
