"""Issue 10 ("Prove 6"): the security protections that had no test failing without them.

Each section names its item of the issue. The tests already proving an item
elsewhere are listed in the report of the issue, not repeated here; these fill
the gaps: spoofed X-Forwarded-For on Basic Auth and behind a trusted proxy,
CSRF on the settings page's and the admin's forms and on HTTPS writes from a
foreign origin, session and CSRF-token rotation at the admin login, sessions
ended by ``changepassword``, the admin and a Basic-Auth change, encoded and
browser-quirk ``next`` values on every redirect that reads one, the admin
refusing viewers' forms, headers on every kind of answer, DEBUG's default in
the production settings, and secrets absent from every page, answer and log
line while all of them are configured.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import textwrap
from collections.abc import Callable
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth.management.commands import changepassword as django_changepassword
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import DatabaseError
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from accounts import throttle, tokens
from accounts.auth import basic_cache
from accounts.models import ApiToken, LoginThrottle, User
from accounts.tests.test_permissions import TABLE
from alerts import delivery
from alerts.models import Channel, EventSwitch, Threshold
from alerts.tests.receiver import Receiver
from alerts.views import ACTIONS
from conftest import SYNTHETIC_KEY, SYNTHETIC_URL, ZAI_KEY, ZAI_URL
from quotas.polling import store
from quotas.providers import fetch
from quotas.tests.helpers import PROJECT, base_env, run_python

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-passw0rd"
NEW_PASSWORD = "n3w-passw0rd!"
CSRF_SECRET = "c" * 32
ATTACKER = "192.0.2.66"


@pytest.fixture(autouse=True)
def fresh_basic_cache() -> None:
    basic_cache.clear()


@pytest.fixture
def alice() -> User:
    """A viewer (not staff)."""
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def chief() -> User:
    return User.objects.create_superuser("chief", password=PASSWORD)


def signed_in(user: User, **defaults: object) -> Client:
    client = Client(**defaults)
    client.force_login(user)
    return client


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# --- 1. login throttling: per address, X-Forwarded-For believed only from a trusted proxy ----------------------


def form_login(client: Client, password: str, address: str, forwarded: str, username: str = "alice"):
    return client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=forwarded
    )


def basic_login(client: Client, password: str, address: str, forwarded: str):
    return client.get(
        "/api/settings",
        HTTP_AUTHORIZATION=basic("alice", password),
        REMOTE_ADDR=address,
        HTTP_X_FORWARDED_FOR=forwarded,
    )


@pytest.mark.parametrize("proxies", [[], ["10.0.0.0/8"]], ids=["no proxy", "peer not a proxy"])
@pytest.mark.parametrize("login", [form_login, basic_login], ids=["form", "basic"])
def test_a_new_x_forwarded_for_on_each_try_does_not_escape_the_lock(
    client: Client, alice: User, settings, proxies: list[str], login: Callable
) -> None:
    """An attacker writing a fresh X-Forwarded-For on every guess is still one address."""
    settings.SYNTRACK_TRUSTED_PROXIES = proxies
    for i in range(5):
        login(client, "wrong-password", ATTACKER, f"198.51.100.{i}")

    assert list(LoginThrottle.objects.values_list("address", flat=True)) == [ATTACKER]
    assert login(client, PASSWORD, ATTACKER, "198.51.100.200").status_code == 429


@pytest.mark.parametrize("login", [form_login, basic_login], ids=["form", "basic"])
def test_behind_a_trusted_proxy_entries_the_client_wrote_do_not_escape_the_lock(
    client: Client, alice: User, settings, login: Callable
) -> None:
    """The proxy appends the address it saw; what the client put left of it changes nothing."""
    settings.SYNTRACK_TRUSTED_PROXIES = ["10.0.0.1"]
    for i in range(5):
        login(client, "wrong-password", "10.0.0.1", f"203.0.113.{i}, {ATTACKER}")

    assert list(LoginThrottle.objects.values_list("address", flat=True)) == [ATTACKER]
    assert login(client, PASSWORD, "10.0.0.1", f"203.0.113.99, {ATTACKER}").status_code == 429
    # Another client of the same proxy signs in: the lock is the attacker's address only.
    assert login(client, PASSWORD, "10.0.0.1", "198.51.100.8").status_code in (200, 302)


# --- 2. CSRF on every cookie-authenticated write ------------------------------------------------------------------


def settings_page_actions(channel: Channel, token: ApiToken) -> dict[str, dict[str, str]]:
    """Every action of /settings/ (alerts.views.ACTIONS), with a body it accepts."""
    return {
        "add_channel": {"url": "json://hooks.example/new"},
        "toggle_channel": {"channel": str(channel.pk)},
        "remove_channel": {"channel": str(channel.pk)},
        "test_channel": {"channel": "db:0"},  # gone: answered without sending anything
        "save_events": {"threshold": "on"},
        "save_thresholds": {"warning": "50", "critical": "60"},
        "create_token": {"name": "ci"},
        "revoke_token": {"token": str(token.pk)},
    }


def settings_state() -> tuple:
    return (
        list(Channel.objects.order_by("pk").values_list("url", "enabled")),
        list(EventSwitch.objects.values_list("event", "enabled")),
        list(Threshold.objects.values_list("provider", "quota", "warning", "critical")),
        sorted(ApiToken.objects.values_list("name", flat=True)),
    )


def test_every_settings_page_action_needs_the_csrf_token(chief: User, settings) -> None:
    settings.SYNTRACK_NOTIFY_URLS = ""
    channel = Channel.objects.create(url="json://hooks.example/old")
    token, _ = tokens.create("grafana")
    actions = settings_page_actions(channel, token)
    assert set(actions) == set(ACTIONS), "a new action of /settings/ needs a row here"
    client = signed_in(chief, enforce_csrf_checks=True)
    before = settings_state()

    for action, data in actions.items():
        response = client.post("/settings/", {"action": action, **data})
        assert response.status_code == 403, action
        assert settings_state() == before, action

    # The same posts with the token go through: the 403s were the CSRF check.
    client.cookies["csrftoken"] = CSRF_SECRET
    for action, data in actions.items():
        response = client.post("/settings/", {"action": action, **data, "csrfmiddlewaretoken": CSRF_SECRET})
        assert response.status_code in (200, 302), action
    assert settings_state() != before


def admin_forms(chief: User, alice: User, channel: Channel) -> list[tuple[str, dict[str, str]]]:
    return [
        (f"/admin/alerts/channel/{channel.pk}/delete/", {"post": "yes"}),
        (f"/admin/accounts/user/{alice.pk}/change/", {"username": "alice", "is_staff": "on", "is_active": "on"}),
        (f"/admin/accounts/user/{alice.pk}/password/", {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}),
        ("/admin/accounts/user/add/", {"username": "mallory", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}),
        ("/admin/alerts/threshold/add/", {"provider": "zai", "quota": "", "warning": "1", "critical": "2"}),
        ("/admin/password_change/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                                     "new_password2": NEW_PASSWORD}),
        ("/admin/logout/", {}),
    ]  # fmt: skip


def admin_state(chief: User, alice: User) -> tuple:
    chief.refresh_from_db()
    alice.refresh_from_db()
    return (
        Channel.objects.count(),
        alice.is_staff,
        alice.password,
        chief.password,
        User.objects.count(),
        Threshold.objects.count(),
    )


def test_every_admin_form_needs_the_csrf_token(chief: User, alice: User) -> None:
    channel = Channel.objects.create(url="json://hooks.example/old")
    client = signed_in(chief, enforce_csrf_checks=True)
    before = admin_state(chief, alice)

    for path, data in admin_forms(chief, alice, channel):
        assert client.post(path, data).status_code == 403, path
        assert admin_state(chief, alice) == before, path
    assert client.get("/admin/").status_code == 200  # the logout was refused too

    # The same posts with the token go through (the logout last): the 403s were the CSRF check.
    client.cookies["csrftoken"] = CSRF_SECRET
    for path, data in admin_forms(chief, alice, channel):
        assert client.post(path, {**data, "csrfmiddlewaretoken": CSRF_SECRET}).status_code in (200, 302), path
    assert admin_state(chief, alice) != before


def test_the_admin_login_form_needs_the_csrf_token(chief: User) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "chief", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("method", "path", "body", "passed"),
    [
        ("PUT", "/api/settings", {"timezone": "Europe/Berlin"}, 200),
        ("PUT", "/api/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, 204),
        ("POST", "/api/poll", {}, 409),  # no poller here: past the CSRF check all the same
    ],
)
def test_an_https_write_with_the_token_from_a_foreign_origin_is_refused(
    alice: User, providers_configured, method: str, path: str, body: dict, passed: int
) -> None:
    """A token alone is not enough over HTTPS: the Origin must be the site's (Django's check, kept by api_auth)."""
    client = signed_in(alice, enforce_csrf_checks=True)
    client.cookies["csrftoken"] = CSRF_SECRET

    def send(origin: str) -> HttpResponse:
        data = json.dumps(body)
        return client.generic(
            method, path, data, "application/json", secure=True, HTTP_X_CSRFTOKEN=CSRF_SECRET, HTTP_ORIGIN=origin
        )

    refused = send("https://evil.example")
    assert refused.status_code == 403 and refused.json()["error"].startswith("CSRF check failed")
    assert send("https://testserver").status_code == passed


# --- 3. a new session key (and CSRF token) at every sign-in ---------------------------------------------------------


def planted_session(client: Client) -> str:
    planted = SessionStore()
    planted["seen"] = True
    planted.create()
    client.cookies[django_settings.SESSION_COOKIE_NAME] = planted.session_key
    return planted.session_key


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_signing_in_gives_a_new_session_key_and_a_new_csrf_token(chief: User, path: str) -> None:
    client = Client()
    planted = planted_session(client)
    client.cookies["csrftoken"] = CSRF_SECRET

    response = client.post(path, {"username": "chief", "password": PASSWORD})

    assert response.status_code == 302
    key = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert key != planted and not SessionStore().exists(planted)
    assert SessionStore(key).get("_auth_user_id") == str(chief.pk)
    assert client.cookies["csrftoken"].value != CSRF_SECRET  # a token seen before the login is worth nothing


# --- 4. a password change ends the user's other sessions ------------------------------------------------------------


def still_signed_in(client: Client) -> bool:
    return client.get("/api/settings").status_code == 200


def test_changepassword_ends_every_session_of_the_user(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    laptop, phone = signed_in(alice), signed_in(alice)
    assert still_signed_in(laptop) and still_signed_in(phone)
    typed = [NEW_PASSWORD, NEW_PASSWORD]
    monkeypatch.setattr(django_changepassword.Command, "_get_pass", lambda self, prompt="": typed.pop(0))

    call_command("changepassword", "alice", stdout=io.StringIO())

    assert not still_signed_in(laptop) and not still_signed_in(phone)
    assert laptop.get("/")["Location"] == "/login/?next=/"


def test_a_change_through_basic_auth_ends_every_session(alice: User) -> None:
    """No session asked for the change, so none is kept."""
    browser = signed_in(alice)
    body = json.dumps({"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    response = Client().put("/api/password", body, "application/json", HTTP_AUTHORIZATION=basic("alice", PASSWORD))

    assert response.status_code == 204
    assert not still_signed_in(browser)


def test_a_change_in_the_admin_ends_the_users_sessions(alice: User, chief: User) -> None:
    browser = signed_in(alice)
    staff = signed_in(chief)

    response = staff.post(
        f"/admin/accounts/user/{alice.pk}/password/", {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert response.status_code == 302
    assert not still_signed_in(browser)
    assert staff.get("/admin/").status_code == 200  # another user's change leaves the admin's own session


# --- 5. no open redirect through `next` -------------------------------------------------------------------------------

FOREIGN_NEXT = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:\\\\evil.example",
    "/\t/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "https://testserver@evil.example/",
    "https://evil.example\\@testserver/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//evil.example%2F..",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "//%65vil.example",
    "//evil。example",
    "https://ｅｖｉｌ.example",
]


def lands_on(location: str, base: str) -> str:
    """The host a browser goes to for ``location``, read as browsers do: backslashes are slashes, tabs and line
    breaks vanish, leading blanks and control characters are trimmed."""
    cleaned = "".join(c for c in location if c not in "\t\n\r").lstrip("".join(map(chr, range(33))))
    cleaned = cleaned.replace("\\", "/")
    target = urlsplit(urljoin(base, cleaned))
    assert target.scheme in ("http", "https"), location
    return target.hostname or ""


def login_next_in_body(client: Client, target: str) -> HttpResponse:
    return client.post("/login/", {"username": "chief", "password": PASSWORD, "next": target})


def login_next_in_query(client: Client, target: str) -> HttpResponse:
    client.get("/login/", {"next": target})
    return client.post(f"/login/?{_query(target)}", {"username": "chief", "password": PASSWORD})


def login_page_when_signed_in(client: Client, target: str) -> HttpResponse:
    client.force_login(User.objects.get(username="chief"))
    return client.get("/login/", {"next": target})


def admin_login_next(client: Client, target: str) -> HttpResponse:
    return client.post(f"/admin/login/?{_query(target)}", {"username": "chief", "password": PASSWORD, "next": target})


def logout_next(client: Client, target: str) -> HttpResponse:
    client.force_login(User.objects.get(username="chief"))
    return client.post(f"/logout/?{_query(target)}", {"next": target})


def _query(target: str) -> str:
    return urlencode({"next": target})


@pytest.mark.parametrize(
    "redirect", [login_next_in_body, login_next_in_query, login_page_when_signed_in, admin_login_next, logout_next]
)
def test_no_next_leads_off_the_site(chief: User, redirect: Callable) -> None:
    for target in FOREIGN_NEXT:
        client = Client()
        response = redirect(client, target)
        assert response.status_code == 302, target
        location = response["Location"]
        assert lands_on(location, "http://testserver/login/") == "testserver", (target, location)


def test_a_local_next_is_still_followed(chief: User) -> None:
    """The refusals above are of foreign targets only."""
    assert login_next_in_body(Client(), "/settings/?tab=1")["Location"] == "/settings/?tab=1"
    assert admin_login_next(Client(), "/admin/alerts/")["Location"] == "/admin/alerts/"


# --- 6. the admin is closed to viewers ------------------------------------------------------------------------------


def test_a_viewer_cannot_sign_in_to_the_admin(alice: User) -> None:
    client = Client()
    response = client.post("/admin/login/", {"username": "alice", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_no_admin_page_opens_to_a_viewer(alice: User) -> None:
    client = signed_in(alice)
    channel = Channel.objects.create(url="json://hooks.example/x")
    pages = ["/admin/", "/admin/password_change/", "/admin/alerts/", "/admin/jsi18n/"]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        pages += [reverse("admin:{}_{}_changelist".format(*info)), reverse("admin:{}_{}_add".format(*info))]
    pages += [f"/admin/accounts/user/{alice.pk}/change/", f"/admin/alerts/channel/{channel.pk}/delete/"]

    for path in pages:
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path


def test_a_viewer_cannot_post_admin_forms(alice: User, chief: User) -> None:
    channel = Channel.objects.create(url="json://hooks.example/old")
    client = signed_in(alice)
    before = admin_state(chief, alice)
    for path, data in admin_forms(chief, alice, channel)[:-2]:  # the password and logout forms are the user's own
        response = client.post(path, data)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
        assert admin_state(chief, alice) == before, path


def test_an_inactive_staff_user_is_not_let_in(chief: User) -> None:
    client = signed_in(chief)
    chief.is_active = False
    chief.save()
    assert client.get("/admin/").status_code == 302


# --- 7. security headers on every answer, errors included ---------------------------------------------------------


def raise_in(monkeypatch: pytest.MonkeyPatch, target: str, error: Exception) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(target, broken)


def lock_out(address: str) -> None:
    for _ in range(5):
        throttle.record_failure(address)


Case = Callable[[pytest.MonkeyPatch, object], HttpResponse]


def _viewer(**defaults: object) -> Client:
    return signed_in(User.objects.create_user("viewer", password=PASSWORD), **defaults)


def _staff() -> Client:
    return signed_in(User.objects.create_superuser("boss", password=PASSWORD))


def _raw() -> Client:
    """A client that gets Django's answer to an exception, as a browser would, instead of the exception."""
    return Client(raise_request_exception=False)


def _session_cookie() -> dict[str, str]:
    """The cookie of a signed-in viewer, for a `_raw` client."""
    name = django_settings.SESSION_COOKIE_NAME
    return {"HTTP_COOKIE": f"{name}={_viewer().cookies[name].value}"}


def locked_page(monkeypatch: pytest.MonkeyPatch, settings: object) -> HttpResponse:
    lock_out("127.0.0.1")
    return Client().post("/login/", {"username": "a", "password": "b"})


def locked_api(monkeypatch: pytest.MonkeyPatch, settings: object) -> HttpResponse:
    lock_out("127.0.0.1")
    return Client().get("/api/current", HTTP_AUTHORIZATION=basic("a", "b"))


def broken_page(monkeypatch: pytest.MonkeyPatch, settings: object) -> HttpResponse:
    cookie = _session_cookie()
    raise_in(monkeypatch, "quotas.providers.configured", RuntimeError("x"))
    return _raw().get("/", **cookie)


def broken_api(monkeypatch: pytest.MonkeyPatch, settings: object) -> HttpResponse:
    cookie = _session_cookie()
    raise_in(monkeypatch, "quotas.reports.providers", RuntimeError("x"))
    return _raw().get("/api/providers", **cookie)


def metrics_with_token(monkeypatch: pytest.MonkeyPatch, settings: object) -> HttpResponse:
    _, token = tokens.create("prometheus")
    return Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")


def metrics_without_token(monkeypatch: pytest.MonkeyPatch, settings: object) -> HttpResponse:
    tokens.create("prometheus")  # served from now on, to token holders
    return Client().get("/metrics")


def bad_host(monkeypatch: pytest.MonkeyPatch, settings: object) -> HttpResponse:
    settings.ALLOWED_HOSTS = ["testserver"]  # SYNTRACK_ALLOWED_HOSTS set
    return _raw().get("/login/", HTTP_HOST="evil.example")


def session_not_saved(monkeypatch: pytest.MonkeyPatch, settings: object) -> HttpResponse:
    """SessionMiddleware fails to save the session after the view answered (the database went away)."""
    cookie = _session_cookie()
    settings.SESSION_SAVE_EVERY_REQUEST = True
    raise_in(monkeypatch, "django.contrib.sessions.backends.db.SessionStore.save", DatabaseError("x"))
    return _raw().get("/login/", **cookie)


CASES: dict[str, tuple[int, Case]] = {
    "200 page": (200, lambda mp, s: Client().get("/login/")),
    "200 head": (200, lambda mp, s: Client().head("/login/")),
    "302 redirect": (302, lambda mp, s: Client().get("/")),
    "200 static file": (200, lambda mp, s: Client().get("/static/css/base.css")),
    "404 static file": (404, lambda mp, s: Client().get("/static/css/none.css")),
    "404 page": (404, lambda mp, s: Client().get("/no-such-page/")),
    "404 api": (404, lambda mp, s: Client().get("/api/no-such-thing")),
    "404 admin": (404, lambda mp, s: _staff().get("/admin/no-such-page/")),
    "200 admin": (200, lambda mp, s: _staff().get("/admin/")),
    "405 page": (405, lambda mp, s: Client().put("/login/")),
    "405 api": (405, lambda mp, s: Client().delete("/api/status")),
    "400 api": (400, lambda mp, s: _viewer().get("/api/history?provider=nowhere")),
    "401 api": (401, lambda mp, s: Client().get("/api/current")),
    "403 csrf page": (403, lambda mp, s: Client(enforce_csrf_checks=True).post("/login/", {})),
    "403 viewer page": (403, lambda mp, s: _viewer().get("/settings/")),
    "403 api": (403, lambda mp, s: _viewer(enforce_csrf_checks=True).put("/api/settings", "{}", "application/json")),
    "429 page": (429, locked_page),
    "429 api": (429, locked_api),
    "500 page": (500, broken_page),
    "500 api": (500, broken_api),
    "200 metrics": (200, metrics_with_token),
    "401 metrics": (401, metrics_without_token),
    "404 metrics": (404, lambda mp, s: Client().get("/metrics")),
    "400 bad host": (400, bad_host),
    "500 session not saved": (500, session_not_saved),
}


@pytest.fixture
def static_files(settings) -> None:
    # No collectstatic in tests: whitenoise serves the project's static/ through the finders, as under runserver.
    settings.WHITENOISE_USE_FINDERS = True


# "400 bad host" and "500 session not saved" are answered inside the session and common middleware:
# they lacked X-Frame-Options while XFrameOptionsMiddleware came after those.
@pytest.mark.parametrize("case", list(CASES))
def test_every_answer_carries_the_security_headers(
    case: str, static_files: None, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, make = CASES[case]
    if case == "404 metrics":
        assert not ApiToken.objects.exists()

    response = make(monkeypatch, settings)

    assert response.status_code == expected
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp and ("unsafe-inline" not in csp or "/admin/" in response.request["PATH_INFO"])
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    if response["Content-Type"].startswith("text/html"):
        # Only a document can be framed; CSP's frame-ancestors above covers the rest (whitenoise's files).
        assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("case", ["404 page", "404 api", "405 api", "429 page", "500 page", "200 static file"])
def test_error_answers_over_https_carry_hsts(
    case: str, static_files: None, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SECURE_SSL_REDIRECT = False
    monkeypatch.setattr(Client, "_base_environ", _https(Client._base_environ))
    expected, make = CASES[case]

    response = make(monkeypatch, settings)

    assert response.status_code == expected
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def _https(base_environ: Callable) -> Callable:
    def environ(self: Client, **request: object) -> dict:
        return {**base_environ(self, **request), "wsgi.url_scheme": "https", "SERVER_PORT": "443"}

    return environ


# --- 8. DEBUG is off unless asked for, and the error pages say nothing ----------------------------------------------

PRODUCTION_PROBE = textwrap.dedent(
    """
    import django
    django.setup()
    from django.conf import settings
    from django.test import Client
    print("DEBUG", settings.DEBUG)
    # No collectstatic here: the pages name their files through the plain storage (DEBUG is not touched).
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    client = Client(raise_request_exception=False)
    for path, cookie in (("/no-such-page/", ""), ("/", "sessionid=abcdefghijklmnopqrstuvwxyz012345")):
        # An unmigrated database: the session lookup of the second fails, a 500.
        response = client.get(path, HTTP_COOKIE=cookie)
        print("STATUS", response.status_code)
        print(response.content.decode())
    """
)

# What Django's technical 404 and 500 pages show, and the plain pages must not.
DEBUG_PAGE_MARKS = [
    "Traceback", "URLconf", "syntrack_site.urls", "OperationalError", "django_session", "SECRET_KEY", "DEBUG = True",
]  # fmt: skip


@pytest.mark.skipif((PROJECT / ".env").exists(), reason="a .env of the developer's may set SYNTRACK_DEBUG")
def test_production_settings_leave_debug_off_and_the_error_pages_bare(tmp_path) -> None:
    env = base_env(SYNTRACK_DB_PATH=str(tmp_path / "syntrack.db"))
    del env["SYNTRACK_DEBUG"]  # not set at all, not even empty

    result = run_python("-c", PRODUCTION_PROBE, env=env)

    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout
    assert [line for line in result.stdout.splitlines() if line.startswith("STATUS")] == ["STATUS 404", "STATUS 500"]
    for mark in DEBUG_PAGE_MARKS:
        assert mark not in result.stdout, mark


# --- 9. secrets: no page, answer, admin view or log line holds one --------------------------------------------------

CHANNEL_TOKEN = "tk-9f8e7d6c5b4a3f2e1d0c"
ENV_CHANNEL_TOKEN = "AAF-env-bot-token-5e6f7a8b"
CHANNEL_PASSWORD = "pw-channel-0a1b2c3d4e"
EMAIL_PASSWORD = "smtp-pass-7c6b5a4d3e2f"
HEARTBEAT_SECRET = "hb-uuid-1f2e3d4c5b6a7980"


def secrets() -> dict[str, str]:
    """Each secret, and its middle: a mask may keep a key's first and last characters, never more."""
    whole = {
        "SYNTHETIC_API_KEY": SYNTHETIC_KEY,
        "ZAI_API_KEY": ZAI_KEY,
        "channel token": CHANNEL_TOKEN,
        "env channel token": ENV_CHANNEL_TOKEN,
        "channel password": CHANNEL_PASSWORD,
        "EMAIL_URL password": EMAIL_PASSWORD,
        "SYNTRACK_HEARTBEAT_URL": HEARTBEAT_SECRET,
    }
    return {**whole, **{f"{name} (middle)": value[8:-4] for name, value in whole.items()}}


def assert_no_secret(where: str, text: str) -> None:
    found = [name for name, value in secrets().items() if value in text]
    assert found == [], f"{where} shows {found}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def everything_secret(providers_configured, upstream, settings, chief: User) -> Receiver:
    """Every kind of secret configured, and a real channel that refuses what it is sent.

    The providers echo their key back (an error page quoting the Authorization header, a payload of an
    unknown shape holding it): the poll history, the kept raw body and the log all see it.
    """
    upstream.get(SYNTHETIC_URL, status=401, body=f"<h1>401</h1><p>Bearer {SYNTHETIC_KEY} is not a valid key</p>")
    upstream.get(ZAI_URL, json={"unexpected": {"echo": f"Authorization: {ZAI_KEY}"}})
    upstream.add_passthru("http://127.0.0.1")  # the channel and the heartbeat are real local servers
    settings.SYNTRACK_NOTIFY_URLS = f"tgram://{ENV_CHANNEL_TOKEN}/12345"
    settings.EMAIL_URL_SET = True
    settings.EMAIL_HOST_USER = "alerts@example.com"
    settings.EMAIL_HOST_PASSWORD = EMAIL_PASSWORD
    settings.SYNTRACK_ALERT_EMAILS = ["owner@example.com"]
    settings.SYNTRACK_HEARTBEAT_URL = f"http://127.0.0.1:{closed_port()}/ping/{HEARTBEAT_SECRET}"
    with Receiver(statuses=[400] * 10) as hook:
        yield hook


def admin_pages() -> list[str]:
    """Every admin list, and the change, delete and history pages of every row."""
    pages = ["/admin/"]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        for pk in model.objects.values_list("pk", flat=True):
            for view in ("change", "delete", "history"):
                pages.append(reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[pk]))
    return pages


def test_no_secret_reaches_a_page_an_answer_an_admin_view_or_a_log_line(
    everything_secret: Receiver, chief: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    staff = signed_in(chief)
    _, token = tokens.create("grafana")  # serves /metrics
    # The secrets travel every way they can: a channel added and tested through the page, the heartbeat.
    hook = everything_secret
    for provider in ("synthetic", "zai"):
        store(fetch(provider))
    url = hook.url(path=f"/{CHANNEL_TOKEN}", userinfo=f"me:{CHANNEL_PASSWORD}")
    staff.post("/settings/", {"action": "add_channel", "url": url})
    channel = Channel.objects.get()
    tested = staff.post("/settings/", {"action": "test_channel", "channel": f"db:{channel.pk}"}, follow=True)
    assert "failed" in tested.content.decode() and len(hook.received) == 1
    delivery.beat()
    staff.post(f"/admin/alerts/channel/{channel.pk}/delete/", {"post": "yes"})  # the admin's log keeps its name
    Channel.objects.create(url=url)

    answers = {"/settings/ (the test's message)": tested}
    for row in TABLE:
        if row.method == "GET":
            answers[row.path] = staff.get(row.path)
    answers["/metrics (token)"] = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    answers["/api/openapi.json"] = staff.get("/api/openapi.json")
    for path in admin_pages():
        answers[path] = staff.get(path)

    for path, response in answers.items():
        assert response.status_code in (200, 302, 503), (path, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert_no_secret(path, body.decode(errors="replace"))
        assert_no_secret(f"{path} headers", str(response.headers))
    assert_no_secret("the log", caplog.text + "".join(str(r.args) for r in caplog.records))
    assert any("heartbeat failed" in r.getMessage() for r in caplog.records)
    # The crawl saw what the secrets went through: the stored failure and the kept body, each in the admin.
    assert any("/admin/quotas/snapshot/" in path and "/change/" in path for path in answers)
    assert '"echo"' in answers["/api/polls"].content.decode() or any(
        "echo" in r.content.decode() for p, r in answers.items() if "/admin/quotas/snapshot/" in p
    )
