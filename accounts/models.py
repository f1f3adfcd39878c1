"""SynTrack's users: Django's, plus where the current password came from."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    # True while the password is the one SYNTRACK_ADMIN_PASS set. Any change
    # made inside the product (dashboard, API, `manage.py changepassword`)
    # goes through set_password() and clears it: from then on the database
    # wins and .env is never applied again.
    password_from_env = models.BooleanField(default=False, editable=False)

    def set_password(self, raw_password: str | None) -> None:
        super().set_password(raw_password)
        self.password_from_env = False


class LoginThrottle(models.Model):
    """Failed logins from one client address (product.md §9).

    Five failures within the window lock the address out for the lock time,
    whatever usernames were tried; a success deletes the row.
    """

    address = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.address}: {self.failures} failures"
