"""Keep API keys out of every message SynTrack writes."""

from __future__ import annotations

from collections.abc import Iterable


def mask(key: str) -> str:
    """A recognisable but useless form of a key: ``syn_ab…xyz``.

    Keys shorter than 12 characters show nothing at all, since a prefix and a
    suffix would give away too large a share of them.
    """
    if len(key) < 12:
        return "***"
    head = 6 if key.startswith("syn_") else 4
    return f"{key[:head]}…{key[-3:]}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` by its mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask(secret))
    return text
