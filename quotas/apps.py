from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Quotas"

    def ready(self) -> None:
        # The site's configuration checks: the project package is no app of its own.
        from syntrack_site import checks  # noqa: F401
