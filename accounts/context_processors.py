"""Template context of the accounts app."""

from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest

from accounts.bootstrap import default_password_users


def default_password_warning(request: HttpRequest) -> dict[str, bool]:
    """``default_password_warning``: some active user's password is a default one (product.md §9).

    Only signed-in users are told. A flag read (User.password_is_default), so
    a page view costs one small query and never a password hash.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"default_password_warning": False}
    try:
        return {"default_password_warning": bool(default_password_users())}
    except DatabaseError:
        return {"default_password_warning": False}
