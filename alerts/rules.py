"""The user's alert rules, with their defaults: which events are told, and each quota's threshold levels."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.conf import settings

from alerts.models import Event, EventSwitch, Threshold

# Everything but resets, which happen several times a day and need no action.
DEFAULT_EVENTS = frozenset(Event) - {Event.RESET}
WARNING_PERCENT = 80.0
CRITICAL_PERCENT = 95.0
# A threshold re-arms once usage falls this many points below it (rolling windows refill slowly:
# without it, usage jittering around 80 % would alert on every poll).
HYSTERESIS_POINTS = 5.0


def failing_polls() -> int:
    """Consecutive failed polls that make a provider `failing` (SYNTRACK_ALERT_FAILING_POLLS, default 5)."""
    return settings.SYNTRACK_ALERT_FAILING_POLLS


@dataclass(frozen=True)
class Levels:
    warning: float
    critical: float


class Rules:
    """The rules as stored, read at first use (two queries), then kept by this object."""

    @cached_property
    def events(self) -> frozenset[str]:
        switches = dict(EventSwitch.objects.values_list("event", "enabled"))
        return frozenset(event for event in Event if switches.get(event, event in DEFAULT_EVENTS))

    @cached_property
    def thresholds(self) -> dict[tuple[str, str], tuple[float | None, float | None]]:
        rows = Threshold.objects.values_list("provider", "quota", "warning", "critical")
        return {(provider, quota): (warning, critical) for provider, quota, warning, critical in rows}

    def on(self, event: str) -> bool:
        return event in self.events

    def levels(self, provider: str, quota: str) -> Levels:
        """The quota's own levels, else the global ones, else the defaults; each level on its own."""
        warning, critical = WARNING_PERCENT, CRITICAL_PERCENT
        for scope in (("", ""), (provider, quota)):
            own_warning, own_critical = self.thresholds.get(scope, (None, None))
            warning = own_warning if own_warning is not None else warning
            critical = own_critical if own_critical is not None else critical
        return Levels(warning, critical)
