"""Errors under /api/ answer JSON, never an HTML page; the rest of the site keeps its HTML pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import fixture_json, store_payload

pytestmark = pytest.mark.django_db

AT = datetime(2026, 8, 25, 1, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def production(settings) -> None:
    # Error pages are what a user sees with DEBUG off (the default); DEBUG shows Django's own.
    settings.DEBUG = False


@pytest.fixture
def api(client: Client, providers_configured) -> Client:
    client.force_login(get_user_model().objects.create_user("viewer", password="a-long-password"))
    # Answer the 500 as a browser would get it instead of re-raising in the test.
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize("path", ["/api/nope", "/api/current/", "/api/", "/api", "/api/cycles/extra"])
def test_an_unknown_api_path_is_a_json_404(api: Client, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "not found"}


def test_an_unknown_api_path_is_json_even_without_a_login(client: Client) -> None:
    response = client.post("/api/nope")

    assert (response.status_code, response.json()) == (404, {"error": "not found"})


def test_an_unknown_page_elsewhere_is_the_sites_html_404(api: Client) -> None:
    response = api.get("/nope")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Page not found" in response.content


def test_an_error_inside_an_api_view_is_a_json_500(api: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(provider: str) -> dict:
        raise RuntimeError("secret detail that must not leak")

    monkeypatch.setattr("quotas.numbers.current", broken)

    response = api.get("/api/current", {"provider": "zai"})

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "internal error"}


def test_an_error_on_a_page_is_the_sites_html_500(api: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> list[str]:
        raise RuntimeError("boom")

    monkeypatch.setattr("quotas.providers.configured", broken)

    response = api.get("/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"Something went wrong" in response.content
    assert b"boom" not in response.content


def test_a_wrong_method_stays_a_json_405(api: Client) -> None:
    response = api.delete("/api/current")

    assert response.status_code == 405
    assert set(response.json()) == {"error"}


def test_an_unknown_quota_key_is_a_400_naming_the_reported_keys(api: Client) -> None:
    store_payload("zai", fixture_json("zai/v2_weekly_and_level.json"), AT)

    response = api.get("/api/cycles", {"provider": "zai", "quota": "nope"})

    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("quota: unknown key 'nope'")
    assert message.endswith("time_monthly, tokens_5h, tokens_weekly")
    # a reported key is fine, and so is no key at all
    assert api.get("/api/cycles", {"provider": "zai", "quota": "tokens_5h"}).status_code == 200
    assert api.get("/api/cycles", {"provider": "zai"}).status_code == 200


def test_before_any_poll_every_quota_key_is_unknown(api: Client) -> None:
    response = api.get("/api/cycles", {"provider": "synthetic", "quota": "subscription"})

    assert response.status_code == 400
    assert response.json()["error"].endswith("reported: none yet")


def test_with_both_providers_a_key_of_either_is_known(api: Client) -> None:
    store_payload("zai", fixture_json("zai/v2_weekly_and_level.json"), AT)
    store_payload("synthetic", fixture_json("synthetic/v3_rolling_windows.json"), AT)

    body = api.get("/api/cycles", {"provider": "both", "quota": "subscription"}).json()

    assert body["zai"]["cycles"] == []
    assert [c["quota"] for c in body["synthetic"]["cycles"]] == ["subscription"]
    assert api.get("/api/cycles", {"provider": "both", "quota": "nope"}).status_code == 400
