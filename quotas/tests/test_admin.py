"""The Django admin as people read it: numbers, quota labels, the chosen time zone, the icon (issue 6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from accounts.models import User
from conftest import store_quotas
from quotas import preferences
from quotas.admin import quota_name
from quotas.models import QuotaReading, ResetCycle
from quotas.providers.base import Quota
from quotas.readable import readable, readable_percent

# 12:34 UTC is 13:34 in Berlin in winter.
T0 = datetime(2026, 1, 15, 12, 34, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (400000000.0, "tokens", "400,000,000"),
        (1234.5, "requests", "1,234.5"),
        (0.333333, "requests", "0.33"),
        (2.0, "requests", "2"),
        (0.0, "requests", "0"),
        (24.0, "usd", "$24.00"),
        (1234.567, "usd", "$1,234.57"),
        (None, "tokens", None),
    ],
)
def test_readable_numbers(value: float | None, unit: str, expected: str | None) -> None:
    assert readable(value, unit) == expected


def test_readable_percent_has_two_decimals() -> None:
    assert readable_percent(12.5) == "12.50 %"
    assert readable_percent(100) == "100.00 %"
    assert readable_percent(None) is None


def test_the_quota_name_puts_the_label_beside_the_key() -> None:
    assert quota_name("Subscription", "subscription") == "Subscription (subscription)"
    assert quota_name("", "subscription") == "subscription"
    assert quota_name(None, "search") == "search"


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("root", password="a-real-passw0rd"))
    return client


@pytest.fixture
def reading() -> QuotaReading:
    quota = Quota("subscription", "Subscription", "reset", "tokens", used=50_000_000.0, limit=400_000_000.0)
    store_quotas(T0, quota)
    return QuotaReading.objects.get()


@pytest.mark.django_db
def test_the_readings_list_shows_readable_numbers_and_the_label(staff: Client, reading: QuotaReading) -> None:
    page = staff.get("/admin/quotas/quotareading/").content.decode()

    assert "400,000,000" in page and "50,000,000" in page
    assert "400000000.0" not in page
    assert "12.50 %" in page
    assert "Subscription (subscription)" in page


@pytest.mark.django_db
def test_a_reading_page_shows_readable_numbers(staff: Client, reading: QuotaReading) -> None:
    page = staff.get(f"/admin/quotas/quotareading/{reading.pk}/change/").content.decode()

    assert "350,000,000" in page  # remaining
    assert "400000000.0" not in page and "350000000.0" not in page
    assert "Subscription (subscription)" in page


@pytest.mark.django_db
def test_the_cycles_list_labels_the_quota_and_reads_its_numbers(staff: Client, reading: QuotaReading) -> None:
    cycle = ResetCycle.objects.get()

    page = staff.get("/admin/quotas/resetcycle/").content.decode()
    detail = staff.get(f"/admin/quotas/resetcycle/{cycle.pk}/change/").content.decode()

    assert "Subscription (subscription)" in page
    assert "400,000,000" in page
    assert "400000000.0" not in page and "400000000.0" not in detail
    assert "Subscription (subscription)" in detail


@pytest.mark.django_db
def test_admin_times_follow_the_chosen_time_zone(staff: Client, reading: QuotaReading) -> None:
    preferences.update({"timezone": "Europe/Berlin"})

    page = staff.get("/admin/quotas/quotareading/").content.decode()

    assert "1:34 p.m." in page
    assert "12:34 p.m." not in page
    assert "Times in Europe/Berlin." in page


@pytest.mark.django_db
def test_without_a_chosen_zone_admin_times_are_utc_and_say_so(staff: Client, reading: QuotaReading) -> None:
    page = staff.get("/admin/quotas/quotareading/").content.decode()

    assert "12:34 p.m." in page
    assert "Times in UTC." in page


@pytest.mark.django_db
def test_the_zone_is_only_active_during_the_admin_request(staff: Client, reading: QuotaReading) -> None:
    from django.utils import timezone

    preferences.update({"timezone": "Asia/Tokyo"})
    staff.get("/admin/quotas/quotareading/")

    assert timezone.get_current_timezone_name() == "UTC"


@pytest.mark.django_db
def test_the_users_list_shows_who_has_a_default_password(staff: Client) -> None:
    User.objects.create_user("bob", password="changeme")

    response = staff.get("/admin/accounts/user/")

    assert response.status_code == 200
    assert "default password" in response.content.decode().lower()


@pytest.mark.django_db
def test_admin_pages_carry_the_favicon(staff: Client, client: Client) -> None:
    icon = 'rel="icon" href="/static/img/favicon.svg"'

    assert icon in staff.get("/admin/").content.decode()
    assert icon in Client().get("/admin/login/").content.decode()
    assert icon in Client().get("/login/").content.decode()


def test_favicon_ico_redirects_to_the_icon(client: Client) -> None:
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/img/favicon.svg"
