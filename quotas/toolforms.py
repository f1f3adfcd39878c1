"""Parameters of export and guard, one form each for the API view and the management command.

The commands feed their flags to the same forms, so both answer a bad value
with the same one-line message (a JSON 400 there, exit 2 here).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from django import forms
from django.utils.dateparse import parse_date, parse_datetime

from quotas import export, providers
from quotas.forms import BOTH, ApiForm, ProviderForm, quota_field

MOMENT_HELP = "must be an ISO-8601 date or date-time, e.g. 2026-02-01 or 2026-02-01T12:00:00Z"
DEFAULT_MIN_REMAINING = 10.0


def moment(value: str) -> datetime | None:
    """A date (midnight UTC) or a date-time (UTC when it names no offset); raises ValidationError."""
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            if day is None:
                raise ValueError
            parsed = datetime.combine(day, time(), UTC)
    except ValueError:
        raise forms.ValidationError(MOMENT_HELP) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    # In UTC: an offset PostgreSQL cannot take (beyond ±15:59) would otherwise reach the query,
    # and a moment that is not within years 1-9999 in UTC fails when the database adapts it.
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise forms.ValidationError("is out of range: years 1 to 9999 in UTC") from None


class ExportForm(ApiForm):
    what = forms.ChoiceField(
        choices=[(key, key) for key in export.WHAT],
        error_messages={
            "required": f"is required: one of {', '.join(export.WHAT)}",
            "invalid_choice": f"must be one of {', '.join(export.WHAT)}",
        },
    )
    format = forms.ChoiceField(
        choices=[(key, key) for key in export.FORMATS],
        required=False,
        error_messages={"invalid_choice": f"must be one of {', '.join(export.FORMATS)}"},
    )
    provider = ProviderForm.base_fields["provider"]
    since = forms.CharField(required=False, max_length=64, error_messages={"max_length": MOMENT_HELP})
    until = forms.CharField(required=False, max_length=64, error_messages={"max_length": MOMENT_HELP})

    def clean_format(self) -> str:
        return self.cleaned_data["format"] or "csv"

    def clean_provider(self) -> str | None:
        """None for every provider."""
        provider = self.cleaned_data["provider"]
        return None if provider in ("", BOTH) else provider

    def clean_since(self) -> datetime | None:
        return moment(self.cleaned_data["since"])

    def clean_until(self) -> datetime | None:
        return moment(self.cleaned_data["until"])

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since >= until:
            raise forms.ValidationError("since must be before until")
        return data


class GuardForm(ApiForm):
    provider = forms.ChoiceField(
        choices=list(providers.NAMES.items()),
        error_messages={
            "required": "is required: synthetic or zai",
            "invalid_choice": "must be one of synthetic, zai",
        },
    )
    quota = quota_field()
    min_remaining_percent = forms.FloatField(
        required=False,
        min_value=0,
        max_value=100,
        error_messages={
            "invalid": "must be a number from 0 to 100",
            "min_value": "must be a number from 0 to 100",
            "max_value": "must be a number from 0 to 100",
        },
    )

    def clean_quota(self) -> str | None:
        return self.cleaned_data["quota"] or None

    def clean_min_remaining_percent(self) -> float:
        value = self.cleaned_data["min_remaining_percent"]
        # FloatField already refuses NaN and infinities.
        return DEFAULT_MIN_REMAINING if value is None else value
