from __future__ import annotations

import sys

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks and the failed-login receiver of the throttle.
        from accounts import checks, throttle  # noqa: F401

        post_migrate.connect(bootstrap_after_migrate, sender=self, dispatch_uid="accounts.bootstrap_admin")


def bootstrap_after_migrate(sender: AppConfig, using: str = "default", verbosity: int = 1, **kwargs: object) -> None:
    """After every ``migrate``: make sure the first dashboard user exists (product.md §2)."""
    from django.conf import settings

    from accounts.bootstrap import ensure_admin_user, generated_password_notice

    if using != "default":
        return
    result = ensure_admin_user()
    stdout = kwargs.get("stdout") or sys.stdout
    if result.generated:
        # Whatever the verbosity: this is the only time the password exists in clear.
        stdout.write(generated_password_notice(settings.SYNTRACK_ADMIN_USER, result.generated))
    elif verbosity and result.action != "unchanged":
        stdout.write(f"Admin user {settings.SYNTRACK_ADMIN_USER!r}: {result.action}\n")
