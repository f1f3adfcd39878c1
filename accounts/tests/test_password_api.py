"""``PUT /api/password`` (product.md §8) and the default-password warning (§9)."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client, RequestFactory

from accounts.auth import basic_cache
from accounts.bootstrap import ensure_admin_user
from accounts.context_processors import default_password_warning
from accounts.models import LoginThrottle, User

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-passw0rd"
# SYNTRACK_ADMIN_PASS in the test settings: a default password, on purpose.
ADMIN_PASSWORD = "changeme"
NEW_PASSWORD = "n3w-passw0rd!"
CSRF_SECRET = "a" * 32


@pytest.fixture(autouse=True)
def fresh_basic_cache() -> None:
    basic_cache.clear()


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def change(client: Client, body: object, **extra: str):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.put("/api/password", data, content_type="application/json", **extra)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_it_changes_the_password(signed_in: Client, user: User) -> None:
    response = change(signed_in, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204
    assert response.content == b""
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(PASSWORD)


def test_it_keeps_this_session_and_ends_the_others(signed_in: Client, user: User) -> None:
    other = Client()
    other.force_login(user)
    assert other.get("/api/settings").status_code == 200
    assert change(signed_in, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}).status_code == 204
    assert signed_in.get("/api/settings").status_code == 200
    assert other.get("/api/settings").status_code == 401


def test_it_marks_the_password_as_changed_in_the_product(client: Client) -> None:
    ensure_admin_user()
    admin = User.objects.get(username="admin")
    assert admin.password_from_env
    client.force_login(admin)
    response = change(client, {"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204
    admin.refresh_from_db()
    assert not admin.password_from_env
    assert ensure_admin_user().action == "unchanged"  # .env is never applied again
    admin.refresh_from_db()
    assert admin.check_password(NEW_PASSWORD)


def test_a_wrong_current_password_is_403_and_changes_nothing(signed_in: Client, user: User) -> None:
    response = change(signed_in, {"current_password": "not-it-at-all", "new_password": NEW_PASSWORD})
    assert response.status_code == 403  # never 401: the dashboard must show the error
    assert response.json() == {"error": "the current password is incorrect"}
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert signed_in.get("/api/settings").status_code == 200


def test_wrong_current_passwords_count_as_failed_logins(signed_in: Client) -> None:
    for _ in range(5):
        assert change(signed_in, {"current_password": "guess", "new_password": NEW_PASSWORD}).status_code == 403
    assert LoginThrottle.objects.get().locked_until is not None
    response = change(signed_in, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 429
    assert "Retry-After" in response


@pytest.mark.parametrize("new", ["short", "1234567", ""])
def test_a_too_short_new_password_is_400(signed_in: Client, user: User, new: str) -> None:
    response = change(signed_in, {"current_password": PASSWORD, "new_password": new})
    assert response.status_code == 400
    assert "error" in response.json()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_eight_characters_are_enough(signed_in: Client) -> None:
    assert change(signed_in, {"current_password": PASSWORD, "new_password": "8chars!!"}).status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        "{",
        "",
        b"\xff",
        "[]",
        '"x"',
        "null",
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": 1, "new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": ["x" * 10]},
    ],
)
def test_a_malformed_body_is_400(signed_in: Client, user: User, body: object) -> None:
    response = change(signed_in, body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_other_methods_are_405(signed_in: Client, method: str) -> None:
    response = getattr(signed_in, method)("/api/password")
    assert response.status_code == 405
    assert response["Allow"] == "PUT"
    assert "error" in response.json()


def test_it_needs_authentication(client: Client, user: User) -> None:
    response = change(client, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_session_needs_the_csrf_token(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert change(client, body).status_code == 403
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    client.cookies["csrftoken"] = CSRF_SECRET
    assert change(client, body, HTTP_X_CSRFTOKEN=CSRF_SECRET).status_code == 204


def test_basic_auth_needs_no_csrf_token_and_the_old_credentials_stop_working(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 200
    assert change(client, body, HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 204
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", PASSWORD)).status_code == 401
    assert client.get("/api/settings", HTTP_AUTHORIZATION=basic("alice", NEW_PASSWORD)).status_code == 200


def context_for(user: User | None) -> dict:
    request = RequestFactory().get("/")
    if user is not None:
        request.user = user
    else:
        from django.contrib.auth.models import AnonymousUser

        request.user = AnonymousUser()
    return default_password_warning(request)


def test_the_warning_shows_while_the_admin_password_is_a_default(client: Client) -> None:
    ensure_admin_user()
    admin = User.objects.get(username="admin")
    assert context_for(admin) == {"default_password_warning": True}
    assert context_for(None) == {"default_password_warning": False}  # strangers are not told
    client.force_login(admin)
    assert change(client, {"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD}).status_code == 204
    assert context_for(admin) == {"default_password_warning": False}


def test_the_warning_is_off_for_a_changed_password(user: User) -> None:
    ensure_admin_user()
    admin = User.objects.get(username="admin")
    admin.set_password("something-else")
    admin.save()
    assert context_for(user) == {"default_password_warning": False}


def test_the_warning_is_off_without_an_admin_user(user: User) -> None:
    User.objects.filter(username="admin").delete()
    assert context_for(user) == {"default_password_warning": False}


def test_the_warning_is_registered_for_templates(settings) -> None:
    processors = settings.TEMPLATES[0]["OPTIONS"]["context_processors"]
    assert "accounts.context_processors.default_password_warning" in processors
