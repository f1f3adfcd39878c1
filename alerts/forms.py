"""The settings page's forms: a channel to add, which events are told, threshold levels."""

from __future__ import annotations

import re

from django import forms
from django.db import transaction

from alerts.models import Channel, Event, EventSwitch, Threshold
from alerts.rules import CRITICAL_PERCENT, DEFAULT_EVENTS, WARNING_PERCENT

EVENT_HELP = {
    Event.THRESHOLD: "usage crosses the warning or the critical level",
    Event.RUNS_OUT: "at the current pace a quota runs out before its reset or refill",
    Event.EXHAUSTED: "a quota has nothing left, or the provider says it is limited",
    Event.RESET: "a quota starts a new cycle",
    Event.AUTH_FAILED: "the provider rejected the API key",
    Event.DRIFT: "the provider's answer changed shape",
    Event.FAILING: "a provider's polls failed several times in a row (SYNTRACK_ALERT_FAILING_POLLS, 5)",
    Event.RECOVERED: "one of the last three is over",
}
MAX_URL = 2000


class ChannelForm(forms.Form):
    url = forms.CharField(
        label="Apprise URL",
        max_length=MAX_URL,
        strip=True,
        error_messages={"required": "enter an Apprise URL", "max_length": f"at most {MAX_URL} characters"},
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}://\S+", url):
            raise forms.ValidationError("an Apprise URL looks like ntfy://topic or json://host/path")
        import apprise  # here, not at import: the settings page is the only web view that needs it

        if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
            scheme = url.split("://", 1)[0].lower()
            raise forms.ValidationError(
                f"Apprise cannot use this {scheme}:// URL: check its form in Apprise's documentation"
            )
        if Channel.objects.filter(url=url).exists():
            raise forms.ValidationError("this channel is already on the list")
        return url


class EventsForm(forms.Form):
    """One check box per event."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        stored = dict(EventSwitch.objects.values_list("event", "enabled"))
        for event in Event:
            self.fields[event.value] = forms.BooleanField(
                required=False,
                label=event.value,
                help_text=EVENT_HELP[event],
                initial=stored.get(event.value, event in DEFAULT_EVENTS),
            )

    def save(self) -> None:
        with transaction.atomic():
            for event in Event:
                EventSwitch.objects.update_or_create(event=event.value, defaults={"enabled": self.cleaned_data[event]})


def level_field(label: str) -> forms.FloatField:
    message = "a percentage from 1 to 100"
    return forms.FloatField(
        label=label,
        required=False,
        min_value=1,
        max_value=100,
        error_messages={"invalid": message, "min_value": message, "max_value": message},
    )


class ThresholdsForm(forms.Form):
    """The global levels, then optional levels for each quota SynTrack has seen (``quotas``: (provider, key, label))."""

    def __init__(self, quotas: list[tuple[str, str, str]], *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.quotas = quotas
        stored = {
            (provider, quota): (warning, critical)
            for provider, quota, warning, critical in Threshold.objects.values_list(
                "provider", "quota", "warning", "critical"
            )
        }
        warning, critical = stored.get(("", ""), (None, None))
        self.fields["warning"] = level_field("Warning at")
        self.fields["critical"] = level_field("Critical at")
        self.fields["warning"].initial = warning if warning is not None else WARNING_PERCENT
        self.fields["critical"].initial = critical if critical is not None else CRITICAL_PERCENT
        self.rows = []
        for provider, key, label in quotas:
            own_warning, own_critical = stored.get((provider, key), (None, None))
            names = (f"{provider}:{key}:warning", f"{provider}:{key}:critical")
            self.fields[names[0]] = level_field(f"{label} warning")
            self.fields[names[1]] = level_field(f"{label} critical")
            self.fields[names[0]].initial, self.fields[names[1]].initial = own_warning, own_critical
            self.rows.append((provider, key, label, names))

    def clean(self) -> dict:
        data = super().clean()
        warning, critical = data.get("warning"), data.get("critical")
        if warning is None or critical is None:
            if not self.errors:
                raise forms.ValidationError("the warning and the critical level are both needed")
            return data
        if warning >= critical:
            self.add_error("critical", "must be above the warning level")
        for _, _, label, (warning_name, critical_name) in self.rows:
            own_warning = data.get(warning_name)
            own_critical = data.get(critical_name)
            if (own_warning if own_warning is not None else warning) >= (
                own_critical if own_critical is not None else critical
            ):
                self.add_error(critical_name, f"{label}: the critical level must be above the warning level")
        return data

    def save(self) -> None:
        data = self.cleaned_data
        with transaction.atomic():
            Threshold.objects.update_or_create(
                provider="", quota="", defaults={"warning": data["warning"], "critical": data["critical"]}
            )
            for provider, key, _, (warning_name, critical_name) in self.rows:
                own = {"warning": data.get(warning_name), "critical": data.get(critical_name)}
                if own["warning"] is None and own["critical"] is None:
                    Threshold.objects.filter(provider=provider, quota=key).delete()
                else:
                    Threshold.objects.update_or_create(provider=provider, quota=key, defaults=own)
