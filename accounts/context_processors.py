"""Template context of the accounts app."""

from __future__ import annotations

import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.http import HttpRequest

from accounts.bootstrap import uses_default_password

# Admin password hash → whether it is "changeme". Checking costs a full password
# hash, which no page view should pay twice for the same stored hash.
_verdicts: dict[str, bool] = {}
_lock = threading.Lock()


def default_password_warning(request: HttpRequest) -> dict[str, bool]:
    """``default_password_warning``: the admin password is still "changeme" (product.md §9).

    Only signed-in users are told.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"default_password_warning": False}
    try:
        stored = (
            get_user_model()
            ._default_manager.filter(username=settings.SYNTRACK_ADMIN_USER)
            .values_list("password", flat=True)
            .first()
        )
        if stored is None:
            return {"default_password_warning": False}
        with _lock:
            verdict = _verdicts.get(stored)
        if verdict is None:
            verdict = uses_default_password()
            with _lock:
                if len(_verdicts) > 16:
                    _verdicts.clear()
                _verdicts[stored] = verdict
    except DatabaseError:
        return {"default_password_warning": False}
    return {"default_password_warning": verdict}
