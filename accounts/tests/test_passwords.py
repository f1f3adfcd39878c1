"""Default passwords: detection, the flag kept when a password is set, and the one-off fill (issue 6)."""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps
from django.contrib.auth.hashers import make_password
from django.contrib.auth.management.commands import changepassword as django_changepassword
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.test import Client

from accounts.bootstrap import ensure_admin_user
from accounts.models import User
from accounts.passwords import PLACEHOLDERS, generate_password, is_placeholder

fill = importlib.import_module("accounts.migrations.0004_fill_password_is_default").fill_password_is_default


@pytest.mark.parametrize(
    "password",
    ["", "changeme", "fixme-choose-a-password", "password", "admin", "fixme", "ChangeMe", "  changeme  ", "PASSWORD"],
)
def test_known_placeholders_are_default_passwords(password: str) -> None:
    assert is_placeholder(password)


@pytest.mark.parametrize("password", ["changeme!", "correct horse battery", "s3cret-passw0rd", "admin-2026-x"])
def test_real_passwords_are_not_default_ones(password: str) -> None:
    assert not is_placeholder(password)


def test_an_unusable_password_is_not_a_default_one() -> None:
    assert not is_placeholder(None)


def test_a_generated_password_is_long_random_and_no_placeholder() -> None:
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) >= 20 and not is_placeholder(p) for p in passwords)


def test_the_old_defaults_are_in_the_list() -> None:
    assert {"changeme", "fixme-choose-a-password", ""} <= PLACEHOLDERS


def test_the_validator_refuses_a_placeholder_chosen_in_the_product() -> None:
    with pytest.raises(ValidationError) as info:
        validate_password("changeme")
    assert "well-known default" in " ".join(info.value.messages)
    validate_password("a-real-passw0rd")


# The flag, maintained by User.set_password.


@pytest.mark.django_db
def test_set_password_records_whether_the_password_is_a_default() -> None:
    user = User.objects.create_user("bob", password="password")
    assert User.objects.get(pk=user.pk).password_is_default

    user.set_password("a-real-passw0rd")
    user.save()
    assert not User.objects.get(pk=user.pk).password_is_default

    user.set_unusable_password()
    user.save()
    assert not User.objects.get(pk=user.pk).password_is_default


@pytest.mark.django_db
def test_a_rehash_at_login_keeps_the_flag(settings) -> None:
    user = User.objects.create_user("bob", password="changeme")
    settings.PASSWORD_HASHERS = [
        "accounts.tests.test_bootstrap.RenamedMD5PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]

    assert user.check_password("changeme")  # re-hashes and saves the password field only

    user.refresh_from_db()
    assert user.password.startswith("md5_renamed$")
    assert user.password_is_default


@pytest.mark.django_db
def test_put_api_password_clears_the_flag() -> None:
    ensure_admin_user()  # "changeme" in the test settings
    admin = User.objects.get(username="admin")
    assert admin.password_is_default
    client = Client()
    client.force_login(admin)

    body = {"current_password": "changeme", "new_password": "a-real-passw0rd"}
    assert client.put("/api/password", body, content_type="application/json").status_code == 204

    admin.refresh_from_db()
    assert not admin.password_is_default
    assert not admin.password_from_env


@pytest.mark.django_db
def test_put_api_password_refuses_a_placeholder_as_the_new_password() -> None:
    user = User.objects.create_user("bob", password="a-real-passw0rd")
    client = Client()
    client.force_login(user)

    body = {"current_password": "a-real-passw0rd", "new_password": "fixme-choose-a-password"}
    response = client.put("/api/password", body, content_type="application/json")

    assert response.status_code == 400
    assert "well-known default" in response.json()["error"]
    user.refresh_from_db()
    assert user.check_password("a-real-passw0rd")


# `manage.py changepassword`: SynTrack's, defaulting to SYNTRACK_ADMIN_USER.


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch):
    """What the user types at changepassword's prompts."""
    answers: list[str] = []
    monkeypatch.setattr(django_changepassword.Command, "_get_pass", lambda self, prompt="": answers.pop(0))
    return answers


def test_changepassword_is_syntracks_own() -> None:
    assert get_commands()["changepassword"] == "accounts"


@pytest.mark.django_db
def test_changepassword_without_a_name_changes_the_admin(typed: list[str], settings) -> None:
    ensure_admin_user()
    typed.extend(["a-real-passw0rd", "a-real-passw0rd"])
    out = io.StringIO()

    call_command("changepassword", stdout=out)

    assert "Changing password for user 'admin'" in out.getvalue()
    admin = User.objects.get(username="admin")
    assert admin.check_password("a-real-passw0rd")
    assert not admin.password_is_default
    assert not admin.password_from_env  # a change in the product: .env no longer applies
    settings.SYNTRACK_ADMIN_PASS = "another-env-password"
    assert ensure_admin_user().action == "unchanged"


@pytest.mark.django_db
def test_changepassword_follows_syntrack_admin_user(typed: list[str], settings) -> None:
    settings.SYNTRACK_ADMIN_USER = "ops"
    settings.SYNTRACK_ADMIN_PASS = "ops-password-123"
    ensure_admin_user()
    typed.extend(["a-real-passw0rd", "a-real-passw0rd"])

    call_command("changepassword", stdout=io.StringIO())

    assert User.objects.get(username="ops").check_password("a-real-passw0rd")


@pytest.mark.django_db
def test_changepassword_still_takes_a_name(typed: list[str]) -> None:
    User.objects.create_user("bob", password="changeme")
    typed.extend(["a-real-passw0rd", "a-real-passw0rd"])

    call_command("changepassword", "bob", stdout=io.StringIO())

    bob = User.objects.get(username="bob")
    assert bob.check_password("a-real-passw0rd")
    assert not bob.password_is_default


@pytest.mark.django_db
def test_changepassword_refuses_a_placeholder(typed: list[str]) -> None:
    ensure_admin_user()
    typed.extend(["password"] * 6)
    err = io.StringIO()

    with pytest.raises(CommandError, match="after 3 attempts"):
        call_command("changepassword", stdout=io.StringIO(), stderr=err)

    assert "well-known default" in err.getvalue()


# The data migration that set the flag once for existing users.


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "expected"),
    [("changeme", True), ("fixme-choose-a-password", True), ("admin", True), ("a-real-passw0rd", False)],
)
def test_the_fill_migration_flags_users_with_a_default_password(password: str, expected: bool) -> None:
    user = User.objects.create_user("bob")
    # As before the flag existed: the hash only.
    User.objects.filter(pk=user.pk).update(password=make_password(password), password_is_default=False)

    fill(apps, None)

    assert User.objects.get(pk=user.pk).password_is_default is expected


@pytest.mark.django_db
def test_the_fill_migration_skips_unusable_passwords() -> None:
    user = User.objects.create_user("bob")  # no password: unusable

    fill(apps, None)

    assert not User.objects.get(pk=user.pk).password_is_default
