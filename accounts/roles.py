"""Who may do what: admins (staff users) change settings, alerts, tokens and users; viewers only read.

A viewer is any other active user (made with ``manage.py createviewer`` or in
the Django admin without "staff status"). Viewers see the dashboard and the
whole read API, and change only what is theirs: their password and their
display settings (``/api/settings``). The Django admin is staff-only by
Django's own rule.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.auth import error

View = Callable[..., HttpResponse]

ADMIN_ONLY = "only an admin can change this; viewers change only their own password and display settings"


def is_admin(user: object) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


def forbidden(request: HttpRequest) -> HttpResponse:
    """403: JSON under /api/, the site's own page elsewhere."""
    if request.path_info.startswith("/api/"):
        return error(ADMIN_ONLY, 403)
    return render(request, "403.html", status=403)


def admin_only(view: View) -> View:
    """Let staff users through; anyone else signed in gets a 403 (put it after the sign-in check)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not is_admin(request.user):
            return forbidden(request)
        return view(request, *args, **kwargs)

    return wrapped
