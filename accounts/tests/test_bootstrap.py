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
from accounts.bootstrap import ensure_admin_user, uses_default_password
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
    assert ensure_admin_user() == "created"
    return User.objects.get(username="admin")


def test_it_creates_the_admin_from_settings_when_missing(no_users: None) -> None:
    assert ensure_admin_user() == "created"

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

    assert ensure_admin_user() == "unchanged"

    admin.refresh_from_db()
    assert admin.password == password


def test_a_changed_admin_pass_applies_while_the_password_came_from_env(admin: User, settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = "a-new-env-password"

    assert ensure_admin_user() == "updated"

    admin.refresh_from_db()
    assert admin.check_password("a-new-env-password")
    assert not admin.check_password("changeme")
    assert admin.password_from_env
    # ... and again, as long as nobody changed it in the product.
    settings.SYNTRACK_ADMIN_PASS = "a-third-env-password"
    assert ensure_admin_user() == "updated"


def test_a_password_changed_in_the_product_is_never_overwritten_by_env(admin: User, settings) -> None:
    admin.set_password("chosen-in-the-dashboard")
    admin.save()
    settings.SYNTRACK_ADMIN_PASS = "a-new-env-password"

    assert ensure_admin_user() == "unchanged"

    admin.refresh_from_db()
    assert admin.check_password("chosen-in-the-dashboard")
    assert not admin.password_from_env


def test_manage_py_changepassword_counts_as_a_change_in_the_product(
    admin: User, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": "typed-at-the-prompt")
    call_command("changepassword", "admin", stdout=io.StringIO())
    settings.SYNTRACK_ADMIN_PASS = "a-new-env-password"

    assert ensure_admin_user() == "unchanged"

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
    assert ensure_admin_user() == "updated"


def test_it_makes_the_admin_staff_and_superuser_again(admin: User) -> None:
    User.objects.filter(pk=admin.pk).update(is_staff=False, is_superuser=False)

    assert ensure_admin_user() == "updated"

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
    assert uses_default_password()

    admin.set_password("something-better")
    admin.save()

    assert not uses_default_password()


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
