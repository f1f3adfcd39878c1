"""Make sure the first dashboard user exists (product.md §2, "The first user")."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import transaction

DEFAULT_PASSWORD = "changeme"


def ensure_admin_user() -> str:
    """Create or update the SYNTRACK_ADMIN_USER account; return what was done.

    The .env password applies while the account still has a password that
    came from .env; once it was changed in the product it is left alone.
    """
    User = get_user_model()
    username = settings.SYNTRACK_ADMIN_USER
    password = settings.SYNTRACK_ADMIN_PASS
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            user = User(username=username, is_staff=True, is_superuser=True)
            user.set_password(password)
            user.password_from_env = True
            user.save()
            return "created"
        changed = []
        if not (user.is_staff and user.is_superuser and user.is_active):
            user.is_staff = user.is_superuser = user.is_active = True
            changed.append("is_staff")
        # hashers.check_password, not user.check_password: the latter may
        # re-hash through set_password() and so mark the password as changed.
        if user.password_from_env and not check_password(password, user.password):
            user.set_password(password)
            user.password_from_env = True
            changed.append("password")
        if changed:
            user.save()
            return "updated"
        return "unchanged"


def uses_default_password() -> bool:
    """Whether the admin user still logs in with "changeme"."""
    User = get_user_model()
    user = User.objects.filter(username=settings.SYNTRACK_ADMIN_USER).only("password").first()
    return user is not None and check_password(DEFAULT_PASSWORD, user.password)
