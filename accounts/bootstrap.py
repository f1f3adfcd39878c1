"""Make sure the first dashboard user exists (product.md §2, "The first user")."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import transaction

from accounts.passwords import generate_password


@dataclass(frozen=True)
class Bootstrap:
    """What ``ensure_admin_user`` did; ``generated`` is the password it made up, to be shown once."""

    action: str  # "created", "updated" or "unchanged"
    generated: str | None = None


def ensure_admin_user() -> Bootstrap:
    """Create or update the SYNTRACK_ADMIN_USER account.

    A missing account is created with SYNTRACK_ADMIN_PASS, or, when that is
    empty, with a generated password that only the caller ever sees (the
    database keeps its hash). A non-empty SYNTRACK_ADMIN_PASS applies while
    the account still has a password the bootstrap set; once it was changed
    in the product it is left alone. An empty one never touches an existing
    password: that would lock the owner out at every start.
    """
    User = get_user_model()
    username = settings.SYNTRACK_ADMIN_USER
    password = settings.SYNTRACK_ADMIN_PASS
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is None:
            generated = None if password else generate_password()
            user = User(username=username, is_staff=True, is_superuser=True)
            user.set_password(password or generated)
            user.password_from_env = True
            user.save()
            return Bootstrap("created", generated)
        changed = []
        if not (user.is_staff and user.is_superuser and user.is_active):
            user.is_staff = user.is_superuser = user.is_active = True
            changed.append("is_staff")
        # hashers.check_password, not user.check_password: the latter may
        # re-hash through set_password() and so mark the password as changed.
        if password and user.password_from_env and not check_password(password, user.password):
            user.set_password(password)
            user.password_from_env = True
            changed.append("password")
        if changed:
            user.save()
            return Bootstrap("updated")
        return Bootstrap("unchanged")


def generated_password_notice(username: str, password: str) -> str:
    """The framed console block that shows a generated admin password, the one time it exists in clear."""
    lines = [
        "SynTrack created the dashboard user with a generated password.",
        "It is shown this once and stored only as a hash:",
        "",
        f"  user:     {username}",
        f"  password: {password}",
        "",
        "Sign in and change it on the dashboard (or set SYNTRACK_ADMIN_PASS in .env).",
    ]
    width = max(len(line) for line in lines)
    frame = "+" + "-" * (width + 2) + "+"
    return "\n".join([frame, *(f"| {line.ljust(width)} |" for line in lines), frame]) + "\n"


def default_password_users() -> list[str]:
    """Active users whose password is a default one: one query, no hashing (see User.password_is_default)."""
    User = get_user_model()
    return list(
        User._default_manager.filter(is_active=True, password_is_default=True)
        .order_by("username")
        .values_list("username", flat=True)
    )
