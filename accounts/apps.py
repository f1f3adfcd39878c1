from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(bootstrap_after_migrate, sender=self)


def bootstrap_after_migrate(sender, using="default", verbosity=1, **kwargs) -> None:
    from accounts.bootstrap import ensure_admin_user

    if using != "default":
        return
    result = ensure_admin_user()
    if verbosity and result != "unchanged":
        from django.conf import settings

        print(f"Admin user {settings.SYNTRACK_ADMIN_USER!r}: {result}")  # noqa: T201
