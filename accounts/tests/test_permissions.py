"""Who may do what, over every URL: role × endpoint × method → status (issue 9, items 2 and 3).

The roles: nobody signed in, a read-only API token, a viewer (an active
non-staff user) and the admin (a staff user). A URL pattern without a row
here fails ``test_every_url_has_a_row``, so a new endpoint must say who may
use it.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts import tokens
from accounts.models import User
from alerts.models import Channel, EventSwitch, Threshold
from quotas.models import Setting

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-passw0rd"
ROLES = ("anonymous", "token", "viewer", "admin")


class Row(NamedTuple):
    method: str
    path: str
    # Expected status per role, in ROLES order.
    anonymous: int
    token: int
    viewer: int
    admin: int
    body: dict | None = None  # JSON for /api/, a form elsewhere


JSON = "application/json"
NEW_PASSWORD = {"current_password": PASSWORD, "new_password": "another-long-passw0rd"}

# 302 for a page means "go and sign in" (anonymous, and a token, which only the
# API and /metrics accept) or "signed in already" (/login/); 403 from
# /settings/ is the "only an admin" page, from /api/ a JSON error.
TABLE = [
    Row("GET", "/", 302, 302, 200, 200),
    Row("GET", "/favicon.ico", 302, 302, 302, 302),
    Row("GET", "/login/", 200, 200, 302, 302),
    Row("POST", "/logout/", 302, 302, 302, 302),
    # The Django admin is staff-only: a viewer is sent to its sign-in page.
    Row("GET", "/admin/login/", 200, 200, 200, 302),
    Row("GET", "/admin/", 302, 302, 302, 200),
    Row("GET", "/admin/accounts/user/", 302, 302, 302, 200),
    Row("GET", "/admin/accounts/apitoken/", 302, 302, 302, 200),
    Row("GET", "/admin/alerts/channel/", 302, 302, 302, 200),
    # The settings page (alerts, tokens) is the admin's.
    Row("GET", "/settings/", 302, 302, 403, 200),
    Row("POST", "/settings/", 302, 302, 403, 302, {"action": "save_events"}),
    Row("POST", "/settings/", 302, 302, 403, 200, {"action": "create_token", "name": "ci"}),
    Row("POST", "/settings/", 302, 302, 403, 302, {"action": "add_channel", "url": "json://hooks.example/x"}),
    # The read API: everyone but the anonymous; /api/status is public on purpose (health checks).
    Row("GET", "/api/status", 200, 200, 200, 200),
    Row("GET", "/api/providers", 401, 200, 200, 200),
    Row("GET", "/api/current?provider=zai", 401, 200, 200, 200),
    Row("GET", "/api/history?provider=zai", 401, 200, 200, 200),
    Row("GET", "/api/cycles?provider=zai", 401, 200, 200, 200),
    Row("GET", "/api/summary?provider=zai", 401, 200, 200, 200),
    Row("GET", "/api/sessions", 401, 200, 200, 200),
    Row("GET", "/api/insights?provider=zai", 401, 200, 200, 200),
    Row("GET", "/api/polls", 401, 200, 200, 200),
    Row("GET", "/api/alerts", 401, 200, 200, 200),
    Row("GET", "/api/settings", 401, 200, 200, 200),
    Row("GET", "/api/export?what=readings", 401, 200, 200, 200),
    # No data yet: the guard answers "stale" (503), past authentication all the same.
    Row("GET", "/api/guard?provider=zai", 401, 503, 503, 503),
    Row("GET", "/api/openapi.json", 401, 200, 200, 200),
    Row("GET", "/metrics", 401, 200, 200, 200),
    # Writes: a token never; a viewer only what is theirs.
    Row("PUT", "/api/settings", 401, 403, 200, 200, {"timezone": "Europe/Berlin"}),
    Row("PUT", "/api/password", 401, 403, 204, 204, NEW_PASSWORD),
    # 409: no poller runs here, so the request got past the permission check.
    Row("POST", "/api/poll", 401, 403, 409, 409, {}),
]


@pytest.fixture
def clients(client: Client, providers_configured) -> dict[str, Client]:
    _, token = tokens.create("grafana")  # also turns /metrics on
    viewer = User.objects.create_user("viewer", password=PASSWORD)
    admin = User.objects.create_user("chief", password=PASSWORD, is_staff=True, is_superuser=True)
    signed_in = {}
    for role, user in (("viewer", viewer), ("admin", admin)):
        signed_in[role] = Client()
        signed_in[role].force_login(user)
    return {
        "anonymous": client,
        "token": Client(HTTP_AUTHORIZATION=f"Bearer {token}"),
        **signed_in,
    }


def send(client: Client, row: Row):
    if row.body is None:
        return client.generic(row.method, row.path)
    if row.path.startswith("/api/"):
        return client.generic(row.method, row.path, json.dumps(row.body), content_type=JSON)
    return client.post(row.path, row.body)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", TABLE, ids=[f"{r.method} {r.path} {r.body or ''}" for r in TABLE])
def test_who_may_do_what(clients: dict[str, Client], role: str, row: Row) -> None:
    response = send(clients[role], row)

    expected = getattr(row, role)
    assert response.status_code == expected, (role, row, response.content[:300])
    if row.path.startswith("/api/") and expected in (401, 403):
        assert set(response.json()) == {"error"}


def test_a_refused_viewer_changes_nothing(clients: dict[str, Client]) -> None:
    viewer = clients["viewer"]
    viewer.post("/settings/", {"action": "save_events"})  # would switch every event off
    viewer.post("/settings/", {"action": "create_token", "name": "mine"})
    viewer.post("/settings/", {"action": "save_thresholds", "warning": "10", "critical": "20"})
    viewer.post("/settings/", {"action": "add_channel", "url": "json://hooks.example/x"})

    assert not EventSwitch.objects.exists() and not Threshold.objects.exists() and not Channel.objects.exists()
    assert sorted(tokens.ApiToken.objects.values_list("name", flat=True)) == ["grafana"]


def test_a_viewer_is_told_why_in_words(clients: dict[str, Client]) -> None:
    page = clients["viewer"].get("/settings/").content.decode()
    assert "Only an admin can do this" in page and "signed in as viewer, a viewer." in page

    body = clients["viewer"].get("/").content.decode()
    assert 'id="alerts-settings-link"' not in body  # no way in that would end at a 403
    assert 'id="alerts-settings-link"' in clients["admin"].get("/").content.decode()


def test_display_settings_are_each_users_own(clients: dict[str, Client]) -> None:
    Setting.objects.create(key="timezone", value="Asia/Tokyo")  # chosen before settings were per user
    viewer, admin, token = clients["viewer"], clients["admin"], clients["token"]

    viewer.put("/api/settings", json.dumps({"timezone": "Europe/Berlin", "theme": "dark"}), content_type=JSON)

    assert viewer.get("/api/settings").json()["timezone"] == "Europe/Berlin"
    assert admin.get("/api/settings").json() == {"timezone": "Asia/Tokyo", "hidden_insights": [], "theme": None}
    assert token.get("/api/settings").json()["timezone"] == "Asia/Tokyo"  # no user: the global defaults
    assert 'data-user-theme="dark"' in viewer.get("/").content.decode()
    assert 'data-user-theme=""' in admin.get("/").content.decode()


def _routes(patterns: list) -> list[str]:
    # An included site (the admin) is one entry: its root stands for it.
    return ["/" + str(p.pattern) for p in patterns if isinstance(p, (URLPattern, URLResolver))]


def test_every_url_has_a_row() -> None:
    covered = {row.path.split("?")[0] for row in TABLE}
    missing = [route for route in _routes(get_resolver().url_patterns) if route not in covered]
    assert missing == [], f"add rows for {missing} to TABLE"
