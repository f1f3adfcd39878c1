"""SynTrack's users: Django's, plus where the current password came from and whether it is a default."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models

from accounts.passwords import is_placeholder


class UserManager(DjangoUserManager):
    def _create_user_object(self, username: str, email: str | None, password: str | None, **extra_fields: object):
        # create_user() and createsuperuser hash here, without set_password():
        # the flag must follow the password all the same.
        user = super()._create_user_object(username, email, password, **extra_fields)
        user.password_is_default = is_placeholder(password)
        return user


class User(AbstractUser):
    """A dashboard user: staff users are admins, the others viewers (accounts.roles)."""

    # True while the password is the one the admin bootstrap set: from
    # SYNTRACK_ADMIN_PASS, or generated because that was empty. Any change
    # made inside the product (dashboard, API, `manage.py changepassword`)
    # goes through set_password() and clears it: from then on the database
    # wins and .env is never applied again.
    password_from_env = models.BooleanField(default=False, editable=False)
    # Whether the password is a published or guessable one (accounts.passwords),
    # decided when it is set: the warning, the banner and `serve` read this flag
    # instead of hashing candidates at every command start.
    password_is_default = models.BooleanField(default=False, editable=False)
    # The display settings this user changed (quotas.preferences: timezone,
    # hidden_insights, theme). A key absent follows the global `Setting`
    # rows, which held everyone's choice before settings were per user: an
    # older install's users keep it until they choose their own.
    display = models.JSONField(default=dict, blank=True, editable=False)

    objects = UserManager()

    def set_password(self, raw_password: str | None) -> None:
        super().set_password(raw_password)
        self.password_from_env = False
        self.password_is_default = is_placeholder(raw_password)


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


class ApiToken(models.Model):
    """A read-only API token (``stk_…``): GET on /api/* and /metrics, for scripts and Prometheus.

    Only a SHA-256 digest of the token is stored: tokens are 256 random bits,
    so a fast hash is enough and a lookup is one indexed query. ``prefix``
    (the first characters) lets people tell their tokens apart.
    """

    name = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
