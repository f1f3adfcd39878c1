"""GET /api/alerts: newest first, deliveries with masked channels, bad input a 400."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from accounts.models import User
from alerts.models import Alert, Delivery

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(client: Client) -> Client:
    client.force_login(User.objects.create_user("viewer", password="a-long-passw0rd"))
    return client


def add(title: str, at: datetime, **fields) -> Alert:
    values = {"event": "threshold", "provider": "synthetic", "quota": "subscription", "level": "warning"}
    return Alert.objects.create(title=title, message=f"{title}.", at=at, **{**values, **fields})


def test_it_lists_the_newest_alerts_first_with_their_deliveries(api: Client) -> None:
    add("older", T0)
    newer = add("newer", T0 + timedelta(minutes=5), event="auth_failed", quota="", level="")
    Delivery.objects.create(alert=newer, channel="json://hooks.example…#3fa9c1", status="sent")
    Delivery.objects.create(alert=newer, channel="tgram://…#77d0b2", status="failed", error="error=500")

    body = api.get("/api/alerts").json()

    assert [a["title"] for a in body["alerts"]] == ["newer", "older"]
    first = body["alerts"][0]
    assert first == {
        "id": newer.id,
        "at": "2026-03-02T12:05:00Z",
        "event": "auth_failed",
        "provider": "synthetic",
        "quota": None,
        "level": None,
        "title": "newer",
        "message": "newer.",
        "deliveries": [
            {"channel": "json://hooks.example…#3fa9c1", "status": "sent", "error": None},
            {"channel": "tgram://…#77d0b2", "status": "failed", "error": "error=500"},
        ],
    }
    assert body["alerts"][1]["level"] == "warning" and body["alerts"][1]["deliveries"] == []


def test_limit_keeps_the_newest(api: Client) -> None:
    for i in range(5):
        add(f"alert {i}", T0 + timedelta(minutes=i))
    assert [a["title"] for a in api.get("/api/alerts", {"limit": "2"}).json()["alerts"]] == ["alert 4", "alert 3"]


@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "1.5"])
def test_a_bad_limit_is_a_400_that_says_why(api: Client, limit: str) -> None:
    answer = api.get("/api/alerts", {"limit": limit})
    assert answer.status_code == 400
    assert answer.json() == {"error": "limit: must be a whole number from 1 to 500"}


def test_it_needs_a_signed_in_user(client: Client) -> None:
    answer = client.get("/api/alerts")
    assert answer.status_code == 401
    assert "error" in answer.json()


def test_only_get(api: Client) -> None:
    assert api.post("/api/alerts").status_code == 405
