from __future__ import annotations

import sys

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

from syntrack_site.sqlite import journal_and_vacuum

# Migrations that add the roll-up table (empty) or roll-up columns (empty in the
# rows already there): after either, the roll-ups are rebuilt from the readings.
ROLLUPS_MIGRATIONS = {"0003_quotarollup", "0005_rollup_tool_calls"}


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Quotas"

    def ready(self) -> None:
        # The site's configuration checks: the project package is no app of its own.
        from syntrack_site import checks  # noqa: F401

        post_migrate.connect(fill_rollups_after_upgrade, sender=self, dispatch_uid="quotas.fill_rollups")
        connection_created.connect(journal_and_vacuum, dispatch_uid="syntrack.sqlite_pragmas")


def fill_rollups_after_upgrade(
    sender: AppConfig, using: str = "default", plan: list | None = None, verbosity: int = 1, **kwargs: object
) -> None:
    """Once, when ``migrate`` has just added the roll-up table (or columns) to a database that holds readings.

    The 24h, 7d and 30d charts read roll-ups: without this an upgraded
    install would show them empty until `reparse`. A post-migrate step and not
    a data migration, because it builds them with today's code and models.
    """
    if using != "default" or not plan:
        return
    added = any(
        migration.app_label == "quotas" and migration.name in ROLLUPS_MIGRATIONS and not backwards
        for migration, backwards in plan
    )
    if not added:
        return
    from quotas import rollups
    from quotas.models import Provider, QuotaReading

    if not QuotaReading.objects.exists():
        return
    stdout = kwargs.get("stdout") or sys.stdout
    if verbosity:
        stdout.write("Building roll-ups from the stored readings (once, after this upgrade)...\n")
    # Where retention pruned the readings, the older roll-ups stay as they are.
    written = sum(rollups.rebuild(provider, since=rollups.rebuilt_from(provider)) for provider in Provider.values)
    if verbosity:
        stdout.write(f"Roll-ups built: {written}\n")
