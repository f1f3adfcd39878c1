"""The user's settings (``/api/settings``), one ``Setting`` row per key.

- ``timezone``: an IANA zone name, or null for the browser's own zone.
- ``hidden_insights``: insight keys (``quotas.insights.INSIGHT_KEYS``) not to show.

An update is partial and all-or-nothing: every key sent is validated before
anything is written, and an unknown key or a bad value changes nothing.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache
from typing import Any

from django.db import transaction
from django.utils import timezone

from quotas.models import Setting

DEFAULTS: dict[str, Any] = {"timezone": None, "hidden_insights": []}


class InvalidPreference(ValueError):
    """An update names an unknown key or carries a bad value; the message says which."""


@cache
def _zone_names() -> frozenset[str]:
    # "localtime" is this server's zone, which means nothing to a browser.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"})


def _insight_keys() -> tuple[str, ...]:
    from quotas.insights import INSIGHT_KEYS

    return tuple(INSIGHT_KEYS)


def clean_timezone(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidPreference("timezone must be an IANA zone name such as Europe/Berlin, or null")
    if value not in _zone_names():
        shown = value if len(value) <= 64 else value[:64] + "…"
        raise InvalidPreference(f"timezone: unknown time zone {shown!r}")
    return value


def clean_hidden_insights(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidPreference("hidden_insights must be a list of insight keys")
    known = _insight_keys()
    unknown = [item for item in value if item not in known]
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= 64 else unknown[0][:64] + "…"
        raise InvalidPreference(f"hidden_insights: unknown insight {shown!r}; known: {', '.join(known)}")
    # Known order, no duplicates.
    return [key for key in known if key in value]


CLEANERS: dict[str, Callable[[object], Any]] = {
    "timezone": clean_timezone,
    "hidden_insights": clean_hidden_insights,
}


def read() -> dict[str, Any]:
    """The whole settings object, defaults filled in (one query)."""
    stored = dict(Setting.objects.filter(key__in=DEFAULTS).values_list("key", "value"))
    result = {}
    for key, default in DEFAULTS.items():
        try:
            result[key] = CLEANERS[key](stored.get(key, default))
        except InvalidPreference:
            # Stored by an older version, or by hand in the admin: show the default.
            result[key] = default
    return result


def hidden_insights() -> frozenset[str]:
    return frozenset(read()["hidden_insights"])


def update(changes: object) -> dict[str, Any]:
    """Validate and store ``changes`` (a dict of some keys); return the whole settings object."""
    if not isinstance(changes, dict):
        raise InvalidPreference('the body must be a JSON object such as {"timezone": "Europe/Berlin"}')
    unknown = sorted(str(key) for key in changes if key not in CLEANERS)
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= 64 else unknown[0][:64] + "…"
        raise InvalidPreference(f"unknown setting {shown!r}; known: {', '.join(CLEANERS)}")
    cleaned = {key: CLEANERS[key](value) for key, value in changes.items()}
    now = timezone.now()
    with transaction.atomic():
        for key, value in cleaned.items():
            if not Setting.objects.filter(key=key).update(value=value, updated_at=now):
                Setting.objects.create(key=key, value=value)
    return read()
