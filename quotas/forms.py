"""Query parameters of the JSON API, validated with forms (style.md 16).

An absent or empty parameter takes its default; a present one must be valid.
Unknown parameters (cache busters and the like) are ignored.
"""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from quotas import history, insights, providers
from quotas.providers.base import MAX_KEY

BOTH = "both"
PROVIDER_CHOICES = [(pid, name) for pid, name in providers.NAMES.items()] + [(BOTH, "Both")]
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class NoProviderConfigured(Exception):
    """No ``?provider=`` was given and no provider has an API key."""


class ApiForm(forms.Form):
    def clean(self) -> dict:
        """A parameter given more than once (``?provider=zai&provider=x``) is refused: which one was meant?"""
        data = super().clean()
        values = getattr(self.data, "getlist", None)  # a query string; the commands pass a dict
        for name in self.fields:
            if values is not None and len(values(name)) > 1:
                self.add_error(name, "must be given once")
        return data

    def first_error(self) -> str:
        for field, errors in self.errors.items():
            name = "request" if field == "__all__" else field
            return f"{name}: {errors[0]}"
        return "bad request"


class ProviderForm(ApiForm):
    provider = forms.ChoiceField(
        choices=PROVIDER_CHOICES,
        required=False,
        error_messages={"invalid_choice": "must be one of synthetic, zai, both"},
    )

    def chosen_providers(self) -> list[str]:
        """The provider ids to answer for: the given one, both, or the first configured.

        A provider without a key is still a valid explicit choice (its body is
        empty). Raises NoProviderConfigured when none was given and none has a key.
        """
        provider = self.cleaned_data.get("provider") or ""
        if provider == BOTH:
            return list(providers.NAMES)
        if provider:
            return [provider]
        configured = providers.configured()
        if not configured:
            raise NoProviderConfigured
        return configured[:1]

    @property
    def both(self) -> bool:
        return self.cleaned_data.get("provider") == BOTH


def limit_field() -> forms.IntegerField:
    message = f"must be a whole number from 1 to {MAX_LIMIT}"
    return forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        error_messages={"invalid": message, "min_value": message, "max_value": message},
    )


def quota_field() -> forms.CharField:
    """An optional quota key (``subscription``, ``tokens_5h``)."""
    message = "must be a quota key such as subscription or tokens_5h"
    return forms.CharField(
        required=False,
        max_length=MAX_KEY,
        validators=[RegexValidator(r"\A[a-z0-9_]+\Z", message)],
        error_messages={"max_length": message},
    )


class ListForm(ProviderForm):
    """Sessions and polls: their items name their provider, so no ``?provider=`` means every provider."""

    limit = limit_field()

    def clean_limit(self) -> int:
        return self.cleaned_data["limit"] or DEFAULT_LIMIT

    def chosen_providers(self) -> list[str | None]:
        provider = self.cleaned_data.get("provider") or ""
        if provider == BOTH:
            return list(providers.NAMES)
        return [provider or None]


class HistoryForm(ProviderForm):
    range = forms.ChoiceField(
        choices=[(key, key) for key in history.RANGES],
        required=False,
        error_messages={"invalid_choice": f"must be one of {', '.join(history.RANGES)}"},
    )

    def clean_range(self) -> str:
        return self.cleaned_data["range"] or "24h"


class CyclesForm(ProviderForm):
    limit = limit_field()
    quota = quota_field()

    def clean_limit(self) -> int:
        return self.cleaned_data["limit"] or DEFAULT_LIMIT

    def clean_quota(self) -> str | None:
        return self.cleaned_data["quota"] or None


class InsightsForm(ProviderForm):
    range = forms.ChoiceField(
        choices=[(key, key) for key in insights.RANGES],
        required=False,
        error_messages={"invalid_choice": f"must be one of {', '.join(insights.RANGES)}"},
    )

    def clean_range(self) -> str:
        return self.cleaned_data["range"] or "7d"
