"""Forms of the accounts app."""

from __future__ import annotations

from django import forms

from accounts import tokens


class TokenForm(forms.Form):
    """A new API token's name (the settings page)."""

    name = forms.CharField(max_length=64, error_messages={"required": "Give the token a name, e.g. grafana."})

    def clean_name(self) -> str:
        try:
            return tokens.check_name(self.cleaned_data["name"])
        except tokens.TokenError as e:
            message = str(e)
            raise forms.ValidationError(message[:1].upper() + message[1:]) from None
