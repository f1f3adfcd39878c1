"""The alerts in the admin: what was sent, the rules; a channel only by its masked name."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from alerts.models import Alert, Channel, Delivery, Latch

pytestmark = pytest.mark.django_db

SECRET = "0123456789:AAF-very-secret-bot-token"


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="a-long-passw0rd"))
    return client


def test_a_channel_shows_masked_on_its_list_and_its_page(staff: Client) -> None:
    channel = Channel.objects.create(url=f"tgram://{SECRET}/12345")
    listing = staff.get("/admin/alerts/channel/").content.decode()
    page = staff.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
    assert "tgram://…#" in listing and "tgram://…#" in page
    assert SECRET not in listing and SECRET not in page


def test_alerts_show_with_their_deliveries_and_latches_can_be_cleared(staff: Client) -> None:
    alert = Alert.objects.create(
        event="threshold", provider="synthetic", quota="subscription", level="warning", title="Sub at 81 %", message="m"
    )
    Delivery.objects.create(alert=alert, channel="ntfy://…#a1b2c3", status="failed", error="error=500")
    latch = Latch.objects.create(provider="synthetic", quota="subscription", event="threshold", level="warning")

    page = staff.get(f"/admin/alerts/alert/{alert.pk}/change/").content.decode()
    assert "Sub at 81 %" in page and "ntfy://…#a1b2c3" in page and "error=500" in page
    assert staff.get("/admin/alerts/alert/add/").status_code == 403
    answer = staff.post(f"/admin/alerts/latch/{latch.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302 and not Latch.objects.exists()
