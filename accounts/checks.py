"""System checks of the accounts app (shown by `manage.py check`, `migrate`, `poll` and `serve`)."""

from __future__ import annotations

from django.core.checks import Warning, register
from django.db import DatabaseError

from accounts.bootstrap import default_password_users


@register("security")
def admin_password_is_default(app_configs: object = None, **kwargs: object) -> list[Warning]:
    # One query on a table of a few rows and no password hash: this runs at
    # every command start, `poll --once` from cron included.
    try:
        usernames = default_password_users()
    except DatabaseError:
        return []  # not migrated yet: `migrate` creates the user and runs the checks again
    return [
        Warning(
            f"The password of {username!r} is a published default (such as 'changeme'): anyone can guess it.",
            hint=(
                "Change it on the dashboard or with `./syntrack changepassword`, or set a real SYNTRACK_ADMIN_PASS. "
                "Until then `serve` listens on loopback only."
            ),
            id="accounts.W001",
        )
        for username in usernames
    ]
