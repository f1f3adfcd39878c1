"""Login throttling per client address (product.md §9).

Five failed logins from one address within 15 minutes, whatever the
usernames, lock that address out for 15 minutes, right password included.
Form logins, the admin login and HTTP Basic Auth share the counter; a
success resets it. There is deliberately no per-username lock: it would let
anyone lock the owner out.

Failures are counted by a ``user_login_failed`` receiver (every
``authenticate()`` that carries the request), successes by ``user_logged_in``
and by the Basic Auth decorator.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import LoginThrottle
from syntrack_site.middleware import client_address

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
MAX_ADDRESS = LoginThrottle._meta.get_field("address").max_length


def address_of(request: HttpRequest) -> str:
    return client_address(request)[:MAX_ADDRESS]


def retry_after(row: LoginThrottle | None, now: datetime | None = None) -> int | None:
    """Whole seconds until ``row``'s lock ends, or None when it is not locked."""
    if row is None or row.locked_until is None:
        return None
    left = (row.locked_until - (now or timezone.now())).total_seconds()
    return math.ceil(left) if left > 0 else None


def state(address: str) -> LoginThrottle | None:
    """The address's row, if it has one (one query)."""
    return LoginThrottle.objects.filter(address=address).first()


def locked_for(address: str, now: datetime | None = None) -> int | None:
    """Seconds the address stays locked out, or None."""
    return retry_after(state(address), now)


def record_failure(address: str, now: datetime | None = None) -> int | None:
    """Count one failed login; return the seconds of the lock it caused, if any."""
    now = now or timezone.now()
    for _attempt in range(2):
        try:
            with transaction.atomic():
                row = LoginThrottle.objects.select_for_update().filter(address=address).first()
                if row is None:
                    row = LoginThrottle.objects.create(address=address, failures=1, window_started_at=now)
                    _forget_stale(now)
                elif retry_after(row, now) is not None:
                    return retry_after(row, now)  # already locked: the lock is not extended
                elif row.window_started_at + WINDOW <= now or row.locked_until is not None:
                    # The window (or an earlier lock) is over: a fresh count starts.
                    row.failures, row.window_started_at, row.locked_until = 1, now, None
                else:
                    row.failures += 1
                if row.failures >= MAX_FAILURES:
                    row.locked_until = now + LOCKOUT
                row.save()
                return retry_after(row, now)
        except IntegrityError:
            continue  # another request created the row first: count on it
    return None


def record_success(address: str) -> None:
    LoginThrottle.objects.filter(address=address).delete()


def _forget_stale(now: datetime) -> None:
    """Rows whose window and lock are both over count for nothing."""
    LoginThrottle.objects.filter(window_started_at__lt=now - WINDOW - LOCKOUT).delete()


@receiver(user_login_failed, dispatch_uid="accounts.throttle.failed")
def login_failed(sender: object, credentials: dict, request: HttpRequest | None = None, **kwargs: object) -> None:
    if request is not None:
        record_failure(address_of(request))


@receiver(user_logged_in, dispatch_uid="accounts.throttle.succeeded")
def logged_in(sender: object, request: HttpRequest | None = None, user: object = None, **kwargs: object) -> None:
    if request is not None:
        record_success(address_of(request))
