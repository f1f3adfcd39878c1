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
