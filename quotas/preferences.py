"""Each user's display settings (``/api/settings``), in ``User.display``.

- ``timezone``: an IANA zone name, or null for the browser's own zone.
- ``hidden_insights``: insight keys (``quotas.insights.INSIGHT_KEYS``) not to show.
- ``theme``: "light", "dark", or null to follow the system.

The global ``Setting`` rows (one per key) are the defaults a user starts
from: before settings were per user they held everyone's choice, so an
older install keeps it. Without a user (a read-only token) the defaults are
what is read. The theme was a browser-only choice, so it has no global row.

An update is partial and all-or-nothing: every key sent is validated before
anything is written, and an unknown key or a bad value changes nothing.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from quotas.models import Setting

DEFAULTS: dict[str, Any] = {"timezone": None, "hidden_insights": [], "theme": None}
# The keys with a global default row.
GLOBAL = ("timezone", "hidden_insights")
THEMES = ("light", "dark")


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


def clean_theme(value: object) -> str | None:
    if value is None or value == "":
        return None
    if value not in THEMES:
        raise InvalidPreference('theme must be "light", "dark", or null to follow the system')
    return value


CLEANERS: dict[str, Callable[[object], Any]] = {
    "timezone": clean_timezone,
    "hidden_insights": clean_hidden_insights,
    "theme": clean_theme,
}


def _own(user: object) -> dict | None:
    """The user's own stored values, or None without a signed-in user (a token)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    own = getattr(user, "display", None)
    return own if isinstance(own, dict) else {}


def read(user: object = None) -> dict[str, Any]:
    """The whole settings object of ``user`` (the global defaults without one), defaults filled in.

    One query (the global rows); the user's own values come with the user.
    """
    stored = dict(Setting.objects.filter(key__in=GLOBAL).values_list("key", "value"))
    stored.update(_own(user) or {})
    result = {}
    for key, default in DEFAULTS.items():
        try:
            result[key] = CLEANERS[key](stored.get(key, default))
        except InvalidPreference:
            # Stored by an older version, or by hand in the admin: show the default.
            result[key] = default
    return result


def hidden_insights(user: object = None) -> frozenset[str]:
    return frozenset(read(user)["hidden_insights"])


def update(changes: object, user: object = None) -> dict[str, Any]:
    """Validate and store ``changes`` (a dict of some keys) as ``user``'s, or as the global defaults
    without one; return the whole settings object."""
    if not isinstance(changes, dict):
        raise InvalidPreference('the body must be a JSON object such as {"timezone": "Europe/Berlin"}')
    unknown = sorted(str(key) for key in changes if key not in CLEANERS)
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= 64 else unknown[0][:64] + "…"
        raise InvalidPreference(f"unknown setting {shown!r}; known: {', '.join(CLEANERS)}")
    cleaned = {key: CLEANERS[key](value) for key, value in changes.items()}
    if _own(user) is not None:
        return _update_own(user, cleaned)
    if "theme" in cleaned:
        raise InvalidPreference("theme is chosen per user: sign in to change it")
    now = timezone.now()
    with transaction.atomic():
        for key, value in cleaned.items():
            if not Setting.objects.filter(key=key).update(value=value, updated_at=now):
                Setting.objects.create(key=key, value=value)
    return read()


def _update_own(user: Any, cleaned: dict[str, Any]) -> dict[str, Any]:
    # Re-read under a row lock: two changes at once (a zone and a hidden card
    # from two tabs) must both land, not the later overwrite the earlier.
    users = get_user_model()._default_manager
    with transaction.atomic():
        own = users.select_for_update().filter(pk=user.pk).values_list("display", flat=True).first()
        own = {**(own if isinstance(own, dict) else {}), **cleaned}
        users.filter(pk=user.pk).update(display=own)
    user.display = own
    return read(user)
