"""The first dashboard user, made from SYNTRACK_ADMIN_USER / SYNTRACK_ADMIN_PASS (product.md §2)."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.management.commands import changepassword
from django.core.management import call_command
from django.db.models.signals import post_migrate

from accounts.apps import bootstrap_after_migrate
from accounts.bootstrap import Bootstrap, default_password_users, ensure_admin_user
from accounts.models import User

pytestmark = pytest.mark.django_db


class RenamedMD5PasswordHasher(MD5PasswordHasher):
    """A "newer" hasher, so that logging in re-hashes an MD5 password."""

    algorithm = "md5_renamed"


@pytest.fixture
def no_users() -> None:
    # Creating the test database ran migrate, whose post-migrate step made the admin.
    User.objects.all().delete()


@pytest.fixture
def admin(no_users: None) -> User:
    assert ensure_admin_user().action == "created"
    return User.objects.get(username="admin")


def test_it_creates_the_admin_from_settings_when_missing(no_users: None) -> None:
    assert ensure_admin_user().action == "created"

    user = User.objects.get()
    assert user.username == "admin"
    assert user.is_staff and user.is_superuser and user.is_active
    assert user.check_password("changeme")
    assert user.password_from_env


def test_it_uses_the_configured_user_name_and_password(no_users: None, settings) -> None:
    settings.SYNTRACK_ADMIN_USER = "ops"
    settings.SYNTRACK_ADMIN_PASS = "ops-password-123"

    ensure_admin_user()

    assert User.objects.get(username="ops").check_password("ops-password-123")


def test_it_leaves_an_up_to_date_admin_alone(admin: User) -> None:
    password = admin.password

    assert ensure_admin_user().action == "unchanged"

    admin.refresh_from_db()
    assert admin.password == password


def test_a_changed_admin_pass_applies_while_the_password_came_from_env(admin: User, settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = "a-new-env-password"

    assert ensure_admin_user().action == "updated"

    admin.refresh_from_db()
    assert admin.check_password("a-new-env-password")
    assert not admin.check_password("changeme")
    assert admin.password_from_env
    # ... and again, as long as nobody changed it in the product.
    settings.SYNTRACK_ADMIN_PASS = "a-third-env-password"
    assert ensure_admin_user().action == "updated"


def test_a_password_changed_in_the_product_is_never_overwritten_by_env(admin: User, settings) -> None:
    admin.set_password("chosen-in-the-dashboard")
    admin.save()
    settings.SYNTRACK_ADMIN_PASS = "a-new-env-password"

    assert ensure_admin_user().action == "unchanged"

    admin.refresh_from_db()
    assert admin.check_password("chosen-in-the-dashboard")
    assert not admin.password_from_env


def test_manage_py_changepassword_counts_as_a_change_in_the_product(
    admin: User, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": "typed-at-the-prompt")
    call_command("changepassword", "admin", stdout=io.StringIO())
    settings.SYNTRACK_ADMIN_PASS = "a-new-env-password"

    assert ensure_admin_user().action == "unchanged"

    admin.refresh_from_db()
    assert admin.check_password("typed-at-the-prompt")


def test_a_rehash_at_login_is_not_a_change_of_password(admin: User, settings) -> None:
    settings.PASSWORD_HASHERS = [
        f"{__name__}.RenamedMD5PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]

    assert admin.check_password("changeme")  # upgrades the stored hash

    admin.refresh_from_db()
    assert admin.password.startswith("md5_renamed$")
    assert admin.password_from_env
    settings.SYNTRACK_ADMIN_PASS = "a-new-env-password"
    assert ensure_admin_user().action == "updated"


def test_it_makes_the_admin_staff_and_superuser_again(admin: User) -> None:
    User.objects.filter(pk=admin.pk).update(is_staff=False, is_superuser=False)

    assert ensure_admin_user().action == "updated"

    admin.refresh_from_db()
    assert admin.is_staff and admin.is_superuser
    assert admin.check_password("changeme")


def test_it_leaves_other_users_alone(admin: User) -> None:
    other = User.objects.create_user("someone", password="their-own-password")

    ensure_admin_user()

    other.refresh_from_db()
    assert not other.is_staff
    assert other.check_password("their-own-password")


def test_it_tells_whether_the_default_password_is_still_in_use(admin: User) -> None:
    assert default_password_users() == ["admin"]

    admin.set_password("something-better")
    admin.save()

    assert default_password_users() == []


def test_the_bootstrap_admin_command_reports_what_it_did(no_users: None) -> None:
    out = io.StringIO()

    call_command("bootstrap_admin", stdout=out)

    assert out.getvalue().strip() == "Admin user 'admin': created"
    assert User.objects.filter(username="admin", is_superuser=True).exists()


def test_it_is_connected_to_post_migrate_of_the_accounts_app() -> None:
    sync_receivers, _ = post_migrate._live_receivers(apps.get_app_config("accounts"))
    assert bootstrap_after_migrate in sync_receivers
    assert bootstrap_after_migrate not in post_migrate._live_receivers(apps.get_app_config("quotas"))[0]


@pytest.mark.django_db(transaction=True)
def test_migrate_creates_the_admin(no_users: None) -> None:
    out = io.StringIO()

    call_command("migrate", verbosity=1, interactive=False, stdout=out)

    user = User.objects.get(username="admin")
    assert user.is_superuser and user.check_password("changeme")
    assert "Admin user 'admin': created" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_migrate_applies_a_changed_env_password_but_not_over_a_product_change(no_users: None, settings) -> None:
    call_command("migrate", verbosity=0, interactive=False)
    settings.SYNTRACK_ADMIN_PASS = "changed-in-env-1"
    call_command("migrate", verbosity=0, interactive=False)
    assert User.objects.get(username="admin").check_password("changed-in-env-1")

    user = User.objects.get(username="admin")
    user.set_password("changed-in-product")
    user.save()
    settings.SYNTRACK_ADMIN_PASS = "changed-in-env-2"
    call_command("migrate", verbosity=0, interactive=False)

    assert User.objects.get(username="admin").check_password("changed-in-product")


# An empty SYNTRACK_ADMIN_PASS: a generated password, shown once (issue 6).


def test_an_empty_admin_pass_creates_the_admin_with_a_strong_generated_password(no_users: None, settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = ""

    result = ensure_admin_user()

    assert result.action == "created"
    assert len(result.generated) >= 20
    user = User.objects.get(username="admin")
    assert user.check_password(result.generated)
    assert result.generated not in user.password  # only the hash is kept
    assert not user.password_is_default
    assert default_password_users() == []


def test_each_generated_password_is_different(no_users: None, settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = ""
    first = ensure_admin_user().generated
    User.objects.all().delete()

    assert ensure_admin_user().generated != first


def test_later_starts_with_an_empty_admin_pass_keep_the_generated_password(no_users: None, settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = ""
    generated = ensure_admin_user().generated
    stored = User.objects.get(username="admin").password
    assert generated is not None

    again = ensure_admin_user()

    assert again.action == "unchanged"
    assert again.generated is None
    assert User.objects.get(username="admin").password == stored


def test_an_empty_admin_pass_never_resets_a_password(admin: User, settings) -> None:
    admin.set_password("chosen-in-the-dashboard")
    admin.save()
    settings.SYNTRACK_ADMIN_PASS = ""

    assert ensure_admin_user() == Bootstrap("unchanged")

    admin.refresh_from_db()
    assert admin.check_password("chosen-in-the-dashboard")


def test_an_admin_pass_set_later_replaces_a_generated_password(no_users: None, settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = ""
    ensure_admin_user()
    settings.SYNTRACK_ADMIN_PASS = "set-in-env-later"

    assert ensure_admin_user() == Bootstrap("updated")

    assert User.objects.get(username="admin").check_password("set-in-env-later")


def test_migrate_prints_the_generated_password_once_in_a_frame(no_users: None, settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = ""
    first, second = io.StringIO(), io.StringIO()

    bootstrap_after_migrate(apps.get_app_config("accounts"), verbosity=0, stdout=first)
    bootstrap_after_migrate(apps.get_app_config("accounts"), verbosity=1, stdout=second)

    lines = first.getvalue().splitlines()
    (password_line,) = [line for line in lines if "password:" in line]
    password = password_line.split("password:")[1].strip(" |")
    assert User.objects.get(username="admin").check_password(password)
    assert lines[0].startswith("+-") and lines[-1] == lines[0]
    assert all(line.startswith("| ") and line.endswith(" |") and len(line) == len(lines[0]) for line in lines[1:-1])
    assert any("user:     admin" in line for line in lines)
    assert any("change it on the dashboard" in line.lower() for line in lines)
    assert second.getvalue() == ""  # the next start prints nothing: the password is gone


def test_the_bootstrap_admin_command_prints_a_generated_password(no_users: None, settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = ""
    out = io.StringIO()

    call_command("bootstrap_admin", stdout=out)

    (password_line,) = [line for line in out.getvalue().splitlines() if "password:" in line]
    password = password_line.split("password:")[1].strip(" |")
    assert User.objects.get(username="admin").check_password(password)
    assert out.getvalue().rstrip().endswith("Admin user 'admin': created")


@pytest.mark.parametrize("placeholder", ["changeme", "fixme-choose-a-password", "password", "admin"])
def test_a_placeholder_admin_pass_is_set_but_flagged(no_users: None, settings, placeholder: str) -> None:
    settings.SYNTRACK_ADMIN_PASS = placeholder

    ensure_admin_user()

    user = User.objects.get(username="admin")
    assert user.check_password(placeholder)
    assert user.password_is_default
    settings.SYNTRACK_ADMIN_PASS = "a-real-env-password"
    ensure_admin_user()
    assert not User.objects.get(username="admin").password_is_default
