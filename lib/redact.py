"""Keep API keys out of every message SynTrack writes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote


def mask(key: str) -> str:
    """A recognisable but useless form of a key: ``syn_ab…xyz``.

    Keys shorter than 16 characters show nothing at all, since a prefix and a
    suffix would give away too large a share of them.
    """
    if len(key) < 16:
        return "***"
    head = 6 if key.startswith("syn_") else 4
    return f"{key[:head]}…{key[-3:]}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` by its mask.

    Also the forms a secret takes when an error message quotes it: ``repr``
    and JSON escaping, and URL encoding. Longer secrets go first, so a secret
    that contains another is masked whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        masked = mask(secret)
        for form in _forms(secret):
            text = text.replace(form, masked)
    return text


def _forms(secret: str) -> list[str]:
    forms = [secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], quote(secret, safe="")]
    # Longest first, so a form is never half-replaced by a shorter one.
    return sorted({f for f in forms if f}, key=len, reverse=True)
