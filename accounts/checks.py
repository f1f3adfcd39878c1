"""System checks of the accounts app (shown by `manage.py check` and at `poll` start)."""

from __future__ import annotations

from django.core.checks import Warning, register
from django.db import DatabaseError

from accounts.bootstrap import uses_default_password


@register("security")
def admin_password_is_default(app_configs: object = None, **kwargs: object) -> list[Warning]:
    try:
        default = uses_default_password()
    except DatabaseError:
        return []  # not migrated yet: `migrate` creates the user and runs the checks again
    if not default:
        return []
    return [
        Warning(
            "The admin password is still 'changeme'.",
            hint="Change it on the dashboard or with `manage.py changepassword`, or set SYNTRACK_ADMIN_PASS.",
            id="accounts.W001",
        )
    ]
