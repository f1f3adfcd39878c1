"""Read-only API tokens: made, recognised and revoked (accounts.models.ApiToken).

A token is ``stk_`` and 43 URL-safe characters (256 random bits), shown once
when made. A request carries it as ``Authorization: Bearer stk_…``; it opens
every GET under /api/ and /metrics, and nothing that writes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiToken, User

PREFIX = "stk_"
# A token's shape: anything else is refused before the database is asked.
TOKEN = re.compile(r"stk_[A-Za-z0-9_-]{43}")
# How many characters of a token people see again (the prefix and 4 more).
SHOWN = len(PREFIX) + 4
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
# last_used_at is written at most this often per token: a scrape every 15 s must not write each time.
USED_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """A name that cannot be used, with a message fit for the user."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME.fullmatch(name):
        raise TokenError("a token name is 1-64 letters, digits, spaces, dots, dashes or underscores")
    return name


def create(name: str, by: User | None = None) -> tuple[ApiToken, str]:
    """A new token called ``name``, and the token itself (never stored: show it once)."""
    name = check_name(name)
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            row = ApiToken.objects.create(name=name, prefix=token[:SHOWN], digest=digest(token), created_by=by)
    except IntegrityError:
        raise TokenError(f"a token called {name!r} exists already") from None
    return row, token


def revoke(name: str) -> bool:
    """Delete the token called ``name``; whether there was one."""
    deleted, _ = ApiToken.objects.filter(name=name.strip()).delete()
    return bool(deleted)


def bearer(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header ("" for a malformed one), else None."""
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def find(token: str) -> ApiToken | None:
    """The stored token ``token`` is, noting its use; None for an unknown or malformed one."""
    if not TOKEN.fullmatch(token):
        return None
    wanted = digest(token)
    row = ApiToken.objects.filter(digest=wanted).first()
    # The index found the row; compare in constant time all the same.
    if row is None or not hmac.compare_digest(row.digest, wanted):
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= USED_EVERY:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def any_exist() -> bool:
    return ApiToken.objects.exists()
