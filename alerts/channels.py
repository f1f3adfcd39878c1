"""Where alerts go: Apprise URLs (``SYNTRACK_NOTIFY_URLS`` and the settings page) and email.

A channel's URL usually carries a secret (a bot token, a webhook key, a
password), so nothing SynTrack shows or logs ever holds it: channels are known
by ``mask(url)`` (the scheme, the server for plain web hooks, and a short
fingerprint that tells two channels apart), and ``scrub()`` takes every part
of the URL out of error texts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings

from alerts.models import Channel as StoredChannel

# Apprise schemes whose host is a server of the user's rather than part of a secret
# (ntfy://topic, discord://id/token and most others put secrets there).
SERVER_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})
EMAIL = "email"
# Pieces of a URL shorter than this are left in error texts (ports, "api", "v1").
SHORTEST_SECRET = 4


@dataclass(frozen=True)
class Channel:
    """One destination: ``key`` identifies it (circuit breaker, the settings page), ``name`` is what people see."""

    key: str
    kind: str  # "apprise" or "email"
    url: str  # the Apprise URL; empty for email
    name: str
    source: str  # "environment", "settings" or "email"
    pk: int | None = None
    enabled: bool = True


def mask(url: str) -> str:
    """A channel's name: ``json://hooks.example…#3fa9c1``, ``tgram://…#77d0b2``; never a secret."""
    scheme, sep, _ = url.strip().partition("://")
    fingerprint = hashlib.sha256(url.strip().encode()).hexdigest()[:6]
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}", scheme):
        return f"invalid URL #{fingerprint}"
    scheme = scheme.lower()
    host = ""
    if scheme in SERVER_SCHEMES:
        try:
            host = urlsplit(url.strip()).hostname or ""
        except ValueError:
            host = ""
    return f"{scheme}://{host}…#{fingerprint}"


def secrets_of(url: str) -> list[str]:
    """Every piece of ``url`` that might be secret, for ``scrub``: the whole URL, then its parts."""
    url = url.strip()
    _, _, rest = url.partition("://")
    pieces = {url, rest}
    for piece in re.split(r"[/:@?&=#,;+]", rest):
        pieces.update({piece, unquote(piece)})
    return sorted((p for p in pieces if len(p) >= SHORTEST_SECRET), key=len, reverse=True)


def scrub(text: str, urls: list[str]) -> str:
    """``text`` without any part of any of ``urls`` (longest first, so nothing is half-replaced)."""
    for secret in sorted({s for url in urls for s in secrets_of(url)}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def split_urls(value: str) -> list[str]:
    """``SYNTRACK_NOTIFY_URLS``: Apprise URLs separated by spaces, commas or new lines."""
    return [url for url in re.split(r"[\s,]+", value or "") if url]


def configured() -> list[Channel]:
    """Every channel alerts go to: the environment's, the enabled ones of the settings page, email."""
    return [channel for channel in configured_with_disabled() if channel.enabled]


def configured_with_disabled() -> list[Channel]:
    """As ``configured``, with the settings page's disabled channels too (the page lists them)."""
    channels = [
        Channel(f"env:{mask(url)}", "apprise", url, mask(url), "environment")
        for url in dict.fromkeys(split_urls(settings.SYNTRACK_NOTIFY_URLS))
    ]
    for stored in StoredChannel.objects.order_by("id"):
        name = mask(stored.url)
        channels.append(Channel(f"db:{stored.pk}", "apprise", stored.url, name, "settings", stored.pk, stored.enabled))
    if settings.SYNTRACK_ALERT_EMAILS and settings.EMAIL_URL_SET:
        shown = ", ".join(settings.SYNTRACK_ALERT_EMAILS)
        channels.append(Channel(EMAIL, EMAIL, "", f"email to {shown}", EMAIL))
    return channels


__all__ = ["Channel", "configured", "configured_with_disabled", "mask", "scrub", "secrets_of", "split_urls"]
