"""Viewers (``createviewer``), tokens on the settings page, per-user display settings (issue 9, items 2 and 3)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.http import HttpResponse
from django.test import Client

from accounts import roles, tokens
from accounts.models import ApiToken, User
from quotas import preferences
from quotas.models import Setting

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("chief", password="a-long-passw0rd"))
    return client


def test_createviewer_makes_a_non_staff_user_and_shows_the_generated_password_once() -> None:
    out = io.StringIO()
    call_command("createviewer", "bob", stdout=out)

    user = User.objects.get(username="bob")
    assert not user.is_staff and not user.is_superuser and user.is_active
    assert roles.is_admin(user) is False
    password = out.getvalue().splitlines()[1]
    assert len(password) >= 20 and user.check_password(password)
    assert password not in user.password  # only its hash is stored


def test_createviewer_reads_the_password_from_stdin() -> None:
    out = io.StringIO()
    call_command("createviewer", "carol", "--password-stdin", stdin=io.StringIO("a-long-passw0rd\n"), stdout=out)

    assert User.objects.get(username="carol").check_password("a-long-passw0rd")
    assert "a-long-passw0rd" not in out.getvalue()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["admin"], "", "a user called 'admin' exists already"),
        (["ADMIN"], "", "a user called 'ADMIN' exists already"),
        (["bad name!"], "", "username: "),
        (["dave", "--password-stdin"], "", "--password-stdin: no password on stdin"),
        (["dave", "--password-stdin"], "changeme\n", "well-known default"),
    ],
)
def test_createviewer_refuses_bad_usage_with_exit_2(args: list[str], stdin: str, message: str) -> None:
    User.objects.get_or_create(username="admin", defaults={"is_staff": True})
    with pytest.raises(CommandError) as raised:
        call_command("createviewer", *args, stdin=io.StringIO(stdin), stdout=io.StringIO())
    assert raised.value.returncode == 2
    assert message.lower() in str(raised.value).lower()
    assert not User.objects.filter(username="dave").exists()


def test_createviewer_from_the_command_line_is_one_line_and_exit_2(settings) -> None:
    name = settings.SYNTRACK_ADMIN_USER
    User.objects.get_or_create(username=name, defaults={"is_staff": True})
    result = subprocess.run(
        [sys.executable, "manage.py", "createviewer", "a/b c"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_settings_page_creates_a_token_shows_it_once_and_revokes_it(admin: Client) -> None:
    response = admin.post("/settings/", {"action": "create_token", "name": "grafana"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    row = ApiToken.objects.get(name="grafana")
    token = page.split('id="new-token-value">')[1].split("<")[0]
    assert tokens.find(token) == row and row.created_by.username == "chief"
    listed = admin.get("/settings/").content.decode()
    assert token not in listed and f"{row.prefix}…" in listed and "never used" not in listed  # find() used it

    response = admin.post("/settings/", {"action": "revoke_token", "token": str(row.pk)})
    assert response.status_code == 302
    assert not ApiToken.objects.exists()
    assert "Revoked the token grafana." in admin.get("/settings/").content.decode()


@pytest.mark.parametrize(
    ("name", "error"),
    [("", "Give the token a name"), ("bad/name", "A token name is 1-64"), ("grafana", "exists already")],
)
def test_a_bad_token_name_is_refused_with_a_message(admin: Client, name: str, error: str) -> None:
    tokens.create("grafana")
    response = admin.post("/settings/", {"action": "create_token", "name": name})

    assert response.status_code == 400
    assert error in response.content.decode()
    assert ApiToken.objects.count() == 1


def test_revoking_a_token_that_is_gone_says_so(admin: Client) -> None:
    response = admin.post("/settings/", {"action": "revoke_token", "token": "999"}, follow=True)
    assert "That token is no longer on the list." in response.content.decode()


def test_a_viewer_changes_their_own_password_and_display_settings(client: Client) -> None:
    viewer = User.objects.create_user("bob", password="a-long-passw0rd")
    client.force_login(viewer)

    response = client.put(
        "/api/password",
        json.dumps({"current_password": "a-long-passw0rd", "new_password": "another-passw0rd"}),
        content_type="application/json",
    )
    assert response.status_code == 204
    response = client.put("/api/settings", json.dumps({"theme": "light"}), content_type="application/json")
    assert response.json()["theme"] == "light"
    viewer.refresh_from_db()
    assert viewer.check_password("another-passw0rd") and viewer.display == {"theme": "light"}


def test_the_global_values_are_the_defaults_until_a_user_chooses() -> None:
    Setting.objects.create(key="hidden_insights", value=["weekly_pace"])
    user = User.objects.create_user("bob")

    assert preferences.read(user)["hidden_insights"] == ["weekly_pace"]
    preferences.update({"hidden_insights": []}, user)
    assert preferences.read(user)["hidden_insights"] == []
    assert preferences.read()["hidden_insights"] == ["weekly_pace"]  # the global row is left alone


def test_the_theme_is_per_user_only() -> None:
    with pytest.raises(preferences.InvalidPreference):
        preferences.update({"theme": "dark"})


def test_the_admin_shows_times_in_the_staff_users_own_zone(admin: Client) -> None:
    Setting.objects.create(key="timezone", value="Asia/Tokyo")
    assert "Times in Asia/Tokyo." in admin.get("/admin/accounts/user/").content.decode()

    admin.put("/api/settings", json.dumps({"timezone": "Europe/Berlin"}), content_type="application/json")
    assert "Times in Europe/Berlin." in admin.get("/admin/accounts/user/").content.decode()


def test_a_user_added_in_the_django_admin_is_a_viewer(admin: Client) -> None:
    response = admin.post(
        "/admin/accounts/user/add/",
        {
            "username": "erin",
            "password1": "erin-long-passw0rd",
            "password2": "erin-long-passw0rd",
            "usable_password": "true",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    erin = User.objects.get(username="erin")
    assert not roles.is_admin(erin) and erin.check_password("erin-long-passw0rd")


def test_admin_only_answers_json_under_the_api(rf) -> None:
    view = roles.admin_only(lambda request: HttpResponse("done"))
    request = rf.post("/api/anything")
    request.user = User.objects.create_user("bob")

    response = view(request)

    assert response.status_code == 403
    assert json.loads(response.content) == {"error": roles.ADMIN_ONLY}
    request.user = User.objects.create_user("chief", is_staff=True)
    assert view(request).content == b"done"
