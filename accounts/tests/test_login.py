"""``/login/`` (GET, POST) and ``/logout/`` (POST only), product.md §9."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-passw0rd"


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice", password=PASSWORD)


def test_the_login_page_renders(client: Client) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert "accounts/login.html" in [t.name for t in response.templates]
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()
    assert "csrftoken" in response.cookies


def test_it_signs_in_and_goes_to_the_dashboard(client: Client, user: User) -> None:
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(user.pk)


def test_it_follows_a_local_next(client: Client, user: User) -> None:
    response = client.post("/login/?next=/admin/", {"username": "alice", "password": PASSWORD, "next": "/admin/"})
    assert response["Location"] == "/admin/"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_it_ignores_a_foreign_next(client: Client, user: User, target: str) -> None:
    response = client.post("/login/", {"username": "alice", "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_wrong_password_shows_the_form_again(client: Client, user: User) -> None:
    response = client.post("/login/", {"username": "alice", "password": "wrong-password"})
    assert response.status_code == 200
    assert "accounts/login.html" in [t.name for t in response.templates]
    assert response.context["form"].non_field_errors()
    assert "_auth_user_id" not in client.session


def test_an_unknown_user_looks_like_a_wrong_password(client: Client, user: User) -> None:
    wrong_password = client.post("/login/", {"username": "alice", "password": "wrong-password"})
    unknown_user = client.post("/login/", {"username": "mallory", "password": "wrong-password"})
    assert wrong_password.context["form"].non_field_errors() == unknown_user.context["form"].non_field_errors()


def test_the_login_form_needs_the_csrf_token(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_the_login_form_works_with_its_csrf_token(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    token = client.cookies["csrftoken"].value
    response = client.post("/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_a_signed_in_user_is_sent_on_from_the_login_page(client: Client, user: User) -> None:
    client.force_login(user)
    response = client.get("/login/")
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize("method", ["put", "delete"])
def test_login_takes_only_get_and_post(client: Client, method: str) -> None:
    assert getattr(client, method)("/login/").status_code == 405


def test_the_dashboard_needs_a_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_the_dashboard_opens_after_login(client: Client, user: User) -> None:
    client.post("/login/", {"username": "alice", "password": PASSWORD})
    response = client.get("/")
    assert response.status_code == 200
    assert "quotas/dashboard.html" in [t.name for t in response.templates]
    assert "default_password_warning" in response.context


def test_logout_takes_post_only(client: Client, user: User) -> None:
    client.force_login(user)
    assert client.get("/logout/").status_code == 405
    assert "_auth_user_id" in client.session


def test_logout_ends_the_session(client: Client, user: User) -> None:
    client.force_login(user)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert client.get("/api/settings").status_code == 401


def test_logout_needs_the_csrf_token(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/logout/").status_code == 403
    assert "_auth_user_id" in client.session


def test_logout_ends_only_this_session(user: User) -> None:
    one, two = Client(), Client()
    one.force_login(user)
    two.force_login(user)
    one.post("/logout/")
    assert two.get("/api/settings").status_code == 200


def test_signing_in_gives_a_new_session_key(client: Client, user: User) -> None:
    """No session fixation: a key planted before the login is not the one that gets signed in."""
    planted = SessionStore()
    planted["seen"] = True
    planted.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key

    response = client.post("/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    signed_in = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert signed_in != planted.session_key
    assert not SessionStore().exists(planted.session_key)
    assert client.session["_auth_user_id"] == str(user.pk)
