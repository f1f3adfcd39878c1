"""Odd query parameters and bodies never produce a 500 (product.md §8, §9)."""

from __future__ import annotations

import itertools
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import fixture_json, store_payload

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/providers",
    "/api/current",
    "/api/history",
    "/api/cycles",
    "/api/summary",
    "/api/sessions",
    "/api/insights",
    "/api/polls",
    "/api/settings",
]
PARAMS = ["provider", "range", "limit", "quota"]
ODD = ["", " ", "both", "BOTH", "-1", "0", "1e9", "5.5", "NaN", "%00", "\x00", "ÿ" * 300, "a" * 5000, "1h;DROP"]


@pytest.fixture
def client(providers_configured) -> Client:
    from datetime import UTC, datetime

    store_payload(
        "synthetic", fixture_json("synthetic/v3_rolling_windows.json"), datetime(2026, 8, 25, 1, 0, tzinfo=UTC)
    )
    store_payload("zai", fixture_json("zai/v2_weekly_and_level.json"), datetime(2026, 8, 25, 1, 0, tzinfo=UTC))
    user = get_user_model().objects.create_user("viewer", password="a-long-password")
    c = Client()
    c.force_login(user)
    return c


def test_no_odd_query_parameter_gets_a_server_error(client: Client) -> None:
    for endpoint, param, value in itertools.product(ENDPOINTS, PARAMS, ODD):
        response = client.get(endpoint, {param: value})
        assert response.status_code < 500, (endpoint, param, value, response.content[:200])
        assert response["Content-Type"].startswith("application/json"), (endpoint, param, value)
        if response.status_code >= 400:
            assert "error" in response.json()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b"{",
        b'{"timezone": 5}',
        b'{"hidden_insights": "plan"}',
        b'{"x": 1}',
        b"\xff\xfe",
        json.dumps({"timezone": "Mars/Olympus"}).encode(),
        json.dumps({"hidden_insights": [["plan"]]}).encode(),
    ],
)
def test_no_odd_settings_body_gets_a_server_error_or_changes_anything(client: Client, body: bytes) -> None:
    before = client.get("/api/settings").json()

    response = client.put("/api/settings", body, content_type="application/json", HTTP_X_CSRFTOKEN="x")

    assert 400 <= response.status_code < 500
    assert client.get("/api/settings").json() == before


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b"{",
        b'{"current_password": 1, "new_password": 2}',
        b'{"new_password": "long-enough-1"}',
        b"\xff\xfe",
    ],
)
def test_no_odd_password_body_gets_a_server_error(client: Client, body: bytes) -> None:
    response = client.put("/api/password", body, content_type="application/json")

    assert 400 <= response.status_code < 500
    assert get_user_model().objects.get(username="viewer").check_password("a-long-password")
