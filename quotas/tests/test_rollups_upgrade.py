"""An upgraded install gets its roll-ups built once by `migrate` (quotas.apps.fill_rollups_after_upgrade)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from conftest import store_quotas
from quotas.models import QuotaReading, QuotaRollup
from quotas.providers.base import Quota

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_migrating_past_the_rollup_migration_builds_rollups_from_the_readings() -> None:
    for minute in range(0, 180, 10):
        quota = Quota(
            key="subscription", label="Subscription", kind="reset", unit="requests",
            used=float(minute), limit=1350.0, percent=None, resets_at=T0 + timedelta(hours=5),
        )  # fmt: skip
        store_quotas(T0 + timedelta(minutes=minute), quota)
    # As before the upgrade: the readings are there, the roll-up table is not.
    call_command("migrate", "quotas", "0002", verbosity=0)
    assert QuotaReading.objects.count() == 18

    call_command("migrate", "quotas", verbosity=0)

    hours = QuotaRollup.objects.filter(resolution=3600).order_by("start")
    assert [r.start for r in hours] == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert QuotaRollup.objects.exclude(resolution=3600).count() == 18


def test_a_migrate_with_nothing_to_apply_leaves_the_rollups_alone() -> None:
    quota = Quota(
        key="subscription", label="Subscription", kind="reset", unit="requests",
        used=5.0, limit=1350.0, percent=None, resets_at=T0 + timedelta(hours=5),
    )  # fmt: skip
    store_quotas(T0, quota)
    QuotaRollup.objects.all().delete()

    call_command("migrate", verbosity=0)

    assert not QuotaRollup.objects.exists()
