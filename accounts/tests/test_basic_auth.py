"""HTTP Basic Auth and the session cookie on the JSON API (product.md §8, §10)."""

from __future__ import annotations

import base64
from unittest import mock

import pytest
from django.contrib.auth.backends import ModelBackend
from django.test import Client

from accounts import auth
from accounts.auth import BasicCache, basic_cache, basic_credentials
from accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-passw0rd"
# A CSRF secret as Django keeps it in the csrftoken cookie (32 letters or digits).
CSRF_SECRET = "a" * 32


@pytest.fixture(autouse=True)
def fresh_basic_cache() -> None:
    basic_cache.clear()


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice", password=PASSWORD)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def verifications():
    """Counts full password verifications (ModelBackend.authenticate calls)."""
    with mock.patch.object(ModelBackend, "authenticate", autospec=True, side_effect=ModelBackend.authenticate) as spy:
        yield spy


def test_it_rejects_a_request_without_credentials(client: Client) -> None:
    response = client.get("/api/settings")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "authentication required"}
    assert "WWW-Authenticate" not in response


def test_it_accepts_the_right_credentials(client: Client, user: User) -> None:
    response = client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD))
    assert response.status_code == 200
    assert "timezone" in response.json()


@pytest.mark.parametrize(
    "header",
    [
        basic("alice", "wrong-password"),
        basic("nobody", PASSWORD),
        basic("", ""),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"alice:\xff\xfe").decode(),
        "Basic",
    ],
)
def test_it_rejects_wrong_or_malformed_credentials(client: Client, user: User, header: str) -> None:
    response = client.get("/api/settings", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert "WWW-Authenticate" not in response


def test_it_ignores_other_schemes(client: Client, user: User) -> None:
    response = client.get("/api/settings", HTTP_AUTHORIZATION="Bearer abc")
    assert response.status_code == 401


def test_it_accepts_a_password_with_colons(client: Client) -> None:
    User.objects.create_user("bob", password="a:b:c:d-long")
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("bob", "a:b:c:d-long")).status_code == 200


def test_the_scheme_is_case_insensitive(client: Client, user: User) -> None:
    header = basic("alice", PASSWORD).replace("Basic", "basic")
    assert client.get("/api/settings", HTTP_AUTHORIZATION=header).status_code == 200


def test_it_rejects_an_inactive_user(client: Client, user: User) -> None:
    user.is_active = False
    user.save()
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 401


def test_it_verifies_the_password_once_and_remembers_it(client: Client, user: User, verifications) -> None:
    for _ in range(5):
        assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 200
    assert verifications.call_count == 1


def test_a_remembered_request_costs_three_queries(client: Client, user: User, django_assert_num_queries) -> None:
    client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD))
    # 1. the address's throttle row, 2. the user (is the hash unchanged?), 3. the settings
    with django_assert_num_queries(3):
        assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 200


def test_a_wrong_password_is_never_served_from_memory(client: Client, user: User, verifications) -> None:
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 200
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD + "x")).status_code == 401
    assert verifications.call_count == 2


def test_it_forgets_the_credentials_when_the_password_changes(client: Client, user: User, verifications) -> None:
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 200
    # Changed elsewhere (another worker, `manage.py changepassword`): only the hash tells.
    user.set_password("a-new-passw0rd")
    user.save()
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 401
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", "a-new-passw0rd")).status_code == 200


def test_it_forgets_the_credentials_when_the_user_is_deactivated(client: Client, user: User) -> None:
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 401


def test_it_verifies_again_after_a_while(client: Client, user: User, verifications, monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD))
    now[0] += auth.BASIC_CACHE_SECONDS - 1
    client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD))
    assert verifications.call_count == 1
    now[0] += 2
    client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD))
    assert verifications.call_count == 2


def test_the_memory_holds_no_password(client: Client, user: User, settings) -> None:
    client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD))
    (key,) = basic_cache._entries
    assert PASSWORD not in key
    assert key == BasicCache.key("alice", PASSWORD)
    settings.SECRET_KEY = "another-secret-key-0123456789-0123456789"
    assert BasicCache.key("alice", PASSWORD) != key


def test_the_memory_is_bounded() -> None:
    cache = BasicCache(size=3)
    for i in range(5):
        cache.put(f"k{i}", i, "hash")
    assert list(cache._entries) == ["k2", "k3", "k4"]


def test_a_session_works_without_basic_auth(client: Client, user: User) -> None:
    client.force_login(user)
    assert client.get("/api/settings").status_code == 200


def test_basic_auth_wins_over_a_session(client: Client, user: User) -> None:
    client.force_login(user)
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", "wrong-password")).status_code == 401


def test_session_writes_need_the_csrf_token(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.put("/api/settings", {"timezone": "UTC"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]

    client.cookies["csrftoken"] = CSRF_SECRET
    response = client.put(
        "/api/settings", {"timezone": "UTC"}, content_type="application/json", HTTP_X_CSRFTOKEN=CSRF_SECRET
    )
    assert response.status_code == 200
    response = client.put(
        "/api/settings", {"timezone": "UTC"}, content_type="application/json", HTTP_X_CSRFTOKEN="b" * 32
    )
    assert response.status_code == 403


def test_basic_writes_need_no_csrf_token(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.put(
        "/api/settings",
        {"timezone": "UTC"},
        content_type="application/json",
        HTTP_AUTHORIZATION=basic("alice", PASSWORD),
    )
    assert response.status_code == 200


def test_basic_credentials_parsing() -> None:
    from django.test import RequestFactory

    factory = RequestFactory()
    assert basic_credentials(factory.get("/")) is None
    assert basic_credentials(factory.get("/", HTTP_AUTHORIZATION="Token x")) is None
    assert basic_credentials(factory.get("/", HTTP_AUTHORIZATION=basic("a", "b:c"))) == ("a", "b:c")
    assert basic_credentials(factory.get("/", HTTP_AUTHORIZATION="Basic @@@")) == ("", "")
