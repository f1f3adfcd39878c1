"""Security headers, cookie flags and the client address behind proxies (product.md §9)."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from accounts.models import User
from syntrack_site.middleware import client_address

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-passw0rd"


@pytest.fixture(autouse=True)
def plain_static_files(settings) -> None:
    # No collectstatic in tests: the manifest storage would fail on {% static %}.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice", password=PASSWORD)


def csp_directives(header: str) -> dict[str, str]:
    directives = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    return directives


@pytest.mark.parametrize("path", ["/login/", "/api/status", "/api/current"])
def test_it_sets_security_headers_everywhere(client: Client, path: str) -> None:
    response = client.get(path)
    csp = csp_directives(response["Content-Security-Policy"])
    assert csp["default-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_it_allows_inline_styles_only_for_the_admin(client: Client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    csp = csp_directives(response["Content-Security-Policy"])
    assert csp["default-src"] == "'self'"
    assert csp["style-src"] == "'self' 'unsafe-inline'"
    assert "script-src" not in csp  # scripts stay at 'self'


def test_it_sends_no_hsts_and_no_secure_cookies_over_http(client: Client, user: User) -> None:
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert "Strict-Transport-Security" not in response
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]


def test_it_sends_hsts_and_secure_cookies_over_https(client: Client, user: User) -> None:
    response = client.post("/login/", {"username": "alice", "password": PASSWORD}, secure=True)
    assert response.status_code == 302
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response.cookies["sessionid"]["secure"] is True
    assert response.cookies["sessionid"]["httponly"] is True
    assert response.cookies["csrftoken"]["secure"] is True


def test_it_believes_x_forwarded_proto_from_a_trusted_proxy(client: Client, user: User, settings) -> None:
    settings.SYNTRACK_TRUSTED_PROXIES = ["10.0.0.0/8"]
    response = client.post(
        "/login/",
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.1.2.3",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        # Django's CSRF check compares the Referer/Origin of HTTPS requests.
        HTTP_REFERER="https://testserver/login/",
    )
    assert response.status_code == 302
    assert "Strict-Transport-Security" in response
    assert response.cookies["sessionid"]["secure"] is True


def test_it_ignores_x_forwarded_proto_from_anyone_else(client: Client, user: User, settings) -> None:
    settings.SYNTRACK_TRUSTED_PROXIES = ["10.0.0.0/8"]
    response = client.post(
        "/login/",
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert response.status_code == 302
    assert "Strict-Transport-Security" not in response
    assert not response.cookies["sessionid"]["secure"]


def test_it_keeps_the_csrf_cookie_readable_by_scripts(client: Client) -> None:
    response = client.get("/login/")
    assert response.cookies["csrftoken"]["samesite"] == "Lax"
    assert not response.cookies["csrftoken"]["httponly"]


def test_debug_is_off(settings) -> None:
    assert settings.DEBUG is False


def address(settings, proxies: list[str], remote: str, forwarded: str | None = None) -> str:
    settings.SYNTRACK_TRUSTED_PROXIES = proxies
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **extra))


def test_client_address_is_remote_addr_by_default(settings) -> None:
    assert address(settings, [], "192.0.2.10", "198.51.100.1") == "192.0.2.10"


def test_client_address_ignores_x_forwarded_for_from_an_untrusted_peer(settings) -> None:
    assert address(settings, ["10.0.0.1"], "192.0.2.10", "198.51.100.1") == "192.0.2.10"


def test_client_address_takes_the_forwarded_client_of_a_trusted_proxy(settings) -> None:
    assert address(settings, ["10.0.0.1"], "10.0.0.1", "198.51.100.1") == "198.51.100.1"


def test_client_address_skips_trusted_proxies_from_the_right(settings) -> None:
    # The client forged the first entry; the second proxy saw 198.51.100.1 connect.
    forwarded = "1.2.3.4, 198.51.100.1, 10.0.0.2"
    assert address(settings, ["10.0.0.0/24"], "10.0.0.1", forwarded) == "198.51.100.1"


def test_client_address_handles_ipv6_and_ports(settings) -> None:
    assert address(settings, ["::1"], "::1", "2001:db8::5") == "2001:db8::5"
    assert address(settings, ["::1"], "::1", "[2001:db8::6]:4431") == "2001:db8::6"
    assert address(settings, ["127.0.0.1"], "127.0.0.1", "198.51.100.3:5555") == "198.51.100.3"


def test_client_address_falls_back_when_the_chain_is_garbage(settings) -> None:
    assert address(settings, ["10.0.0.1"], "10.0.0.1", "not-an-address") == "10.0.0.1"
    assert address(settings, ["10.0.0.1"], "10.0.0.1", "") == "10.0.0.1"
    assert address(settings, ["10.0.0.1"], "10.0.0.1") == "10.0.0.1"


def test_client_address_ignores_malformed_proxy_entries(settings) -> None:
    assert address(settings, ["garbage", "10.0.0.1"], "10.0.0.1", "198.51.100.1") == "198.51.100.1"
