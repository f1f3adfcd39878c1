"""``POST /api/poll``: ask the running poller to poll now (quotas.pollnow)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from accounts.models import User
from conftest import API_PASSWORD
from quotas.locking import PollLock
from quotas.models import PollRequest, PollSession

pytestmark = pytest.mark.django_db

CSRF_SECRET = "a" * 32
T0 = datetime(2026, 5, 4, 9, 30, 15, 400000, tzinfo=UTC)
NO_POLLER = "no poller is running: start it with `manage.py poll` (make run starts it)"


@pytest.fixture
def poller() -> Iterator[PollLock]:
    """A poller holds the poll lock (this process stands in for it)."""
    with PollLock("manage.py poll", wait=0) as lock:
        yield lock


def post(client: Client, query: str = "", body: object = None, **extra: str):
    data = body if body is None or isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/api/poll{query}", data or "", content_type="application/json", **extra)


def pending() -> dict[str, datetime]:
    return PollRequest.pending()


def test_it_records_a_request_for_every_configured_provider_and_answers_202(api: Client, poller: PollLock) -> None:
    with time_machine.travel(T0, tick=False):
        response = post(api)

    assert response.status_code == 202, response.content
    assert response.json() == {
        "requested_at": "2026-05-04T09:30:15Z",
        "poller_running": True,
        "providers": ["synthetic", "zai"],
    }
    assert pending() == {"synthetic": T0, "zai": T0}


@pytest.mark.parametrize("how", ["query", "body"])
def test_it_asks_for_one_provider_from_the_query_or_the_body(api: Client, poller: PollLock, how: str) -> None:
    response = post(api, "?provider=zai") if how == "query" else post(api, body={"provider": "zai"})

    assert response.status_code == 202, response.content
    assert response.json()["providers"] == ["zai"]
    assert list(pending()) == ["zai"]


@pytest.mark.parametrize("content_type", ["multipart/form-data", "application/x-www-form-urlencoded"])
def test_a_form_body_works_too(api: Client, poller: PollLock, content_type: str) -> None:
    data = {"provider": "synthetic"} if content_type.startswith("multipart") else "provider=synthetic"
    kwargs = {} if content_type.startswith("multipart") else {"content_type": content_type}
    response = api.post("/api/poll", data, **kwargs)
    assert response.status_code == 202, response.content
    assert response.json()["providers"] == ["synthetic"]
    # An empty form (what a bare test-client or HTML-form POST sends) asks for every provider.
    assert api.post("/api/poll").json()["providers"] == ["synthetic", "zai"]


def test_both_means_every_configured_provider(api: Client, poller: PollLock, settings) -> None:
    settings.SYNTHETIC_API_KEY = ""
    response = post(api, "?provider=both")
    assert response.status_code == 202
    assert response.json()["providers"] == ["zai"]


def test_requests_while_one_is_pending_coalesce(api: Client, poller: PollLock) -> None:
    with time_machine.travel(T0, tick=False):
        post(api, "?provider=synthetic")
    with time_machine.travel(T0 + timedelta(seconds=3), tick=False):
        response = post(api)

    # Synthetic's pending request absorbed the second; Z.ai's is new.
    assert response.status_code == 202
    assert response.json()["requested_at"] == "2026-05-04T09:30:15Z"
    assert pending() == {"synthetic": T0, "zai": T0 + timedelta(seconds=3)}
    for _ in range(5):
        assert post(api).status_code == 202
    assert PollRequest.objects.count() == 2


def test_a_request_after_the_answer_is_a_new_one(api: Client, poller: PollLock) -> None:
    with time_machine.travel(T0, tick=False):
        post(api, "?provider=zai")
    PollRequest.answered("zai", T0 + timedelta(seconds=2))
    assert pending() == {}

    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        response = post(api, "?provider=zai")

    assert response.json()["requested_at"] == "2026-05-04T09:31:15Z"
    assert pending() == {"zai": T0 + timedelta(minutes=1)}
    assert PollRequest.objects.count() == 1


def test_without_a_poller_it_answers_409_and_records_nothing(api: Client) -> None:
    response = post(api)

    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": NO_POLLER, "poller_running": False}
    assert not PollRequest.objects.exists()


def test_a_poller_of_another_provider_is_no_help(api: Client, poller: PollLock) -> None:
    # A loop poller started with --provider synthetic opened only Synthetic's session.
    PollSession.objects.create(provider="synthetic", interval_seconds=60)

    response = post(api, "?provider=zai")

    assert response.status_code == 409
    assert response.json() == {
        "error": "the running poller does not poll Z.ai (started with --provider)",
        "poller_running": True,
    }
    assert not PollRequest.objects.exists()
    # Asking for every provider asks the one it polls.
    assert post(api).json()["providers"] == ["synthetic"]


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("?provider=openai", None, "provider: must be one of synthetic, zai, both"),
        ("", {"provider": "openai"}, "provider: must be one of synthetic, zai, both"),
        ("", {"provider": ["zai"]}, "provider: must be one of synthetic, zai, both"),
        ("", "{not json", "the body must be valid JSON"),
        ("", ["zai"], 'the body must be a JSON object such as {"provider": "zai"}'),
        ("", "[]", 'the body must be a JSON object such as {"provider": "zai"}'),
        ("", {"provider": "zai", "force": True}, "unknown key 'force': the body takes only provider"),
        ("?provider=synthetic", {"provider": "zai"}, "provider given twice, with different values"),
    ],
)
def test_bad_parameters_are_a_400_that_records_nothing(
    api: Client, poller: PollLock, query: str, body: object, message: str
) -> None:
    response = post(api, query, body)
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert not PollRequest.objects.exists()


def test_a_provider_without_a_key_is_a_400(api: Client, poller: PollLock, settings) -> None:
    settings.ZAI_API_KEY = ""
    response = post(api, "?provider=zai")
    assert response.status_code == 400
    assert response.json() == {"error": "Z.ai is not configured: set ZAI_API_KEY"}


def test_no_configured_provider_is_a_400(client: Client, api_user: User, poller: PollLock) -> None:
    client.force_login(api_user)
    response = post(client)
    assert response.status_code == 400
    assert response.json() == {"error": "no provider is configured (SYNTHETIC_API_KEY, ZAI_API_KEY)"}


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_are_a_json_405(api: Client, method: str) -> None:
    response = getattr(api, method)("/api/poll")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"error": f"method {method.upper()} not allowed"}


def test_it_needs_authentication(client: Client, api_user: User, providers_configured, poller: PollLock) -> None:
    response = post(client)
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required"}
    assert not PollRequest.objects.exists()


def test_a_session_needs_the_csrf_token(api_user: User, providers_configured, poller: PollLock) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(api_user)

    refused = post(client)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("CSRF check failed")
    assert not PollRequest.objects.exists()

    client.cookies["csrftoken"] = CSRF_SECRET
    assert post(client, HTTP_X_CSRFTOKEN=CSRF_SECRET).status_code == 202


def test_basic_auth_needs_no_csrf_token(api_user: User, providers_configured, poller: PollLock) -> None:
    credentials = base64.b64encode(f"alice:{API_PASSWORD}".encode()).decode()
    client = Client(enforce_csrf_checks=True)
    response = post(client, HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 202
    assert response.json()["providers"] == ["synthetic", "zai"]


def test_the_providers_endpoint_shows_the_pending_request_and_the_running_poller(api: Client, poller: PollLock) -> None:
    with time_machine.travel(T0, tick=False):
        post(api, "?provider=zai")

    entries = api.get("/api/providers").json()["providers"]

    assert [(p["id"], p["poller_running"], p["poll_requested_at"]) for p in entries] == [
        ("synthetic", True, None),
        ("zai", True, "2026-05-04T09:30:15Z"),
    ]
