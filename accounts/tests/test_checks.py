"""The warning while the admin password is still the default (product.md §9)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.bootstrap import ensure_admin_user
from accounts.checks import admin_password_is_default
from accounts.models import User

pytestmark = pytest.mark.django_db


def test_it_warns_while_the_admin_password_is_changeme(settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = "changeme"
    ensure_admin_user()

    warnings = admin_password_is_default()

    assert [w.id for w in warnings] == ["accounts.W001"]


def test_manage_py_check_shows_the_warning(settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = "changeme"
    ensure_admin_user()
    err = io.StringIO()

    call_command("check", stdout=io.StringIO(), stderr=err)

    assert "accounts.W001" in err.getvalue()


def test_it_is_quiet_once_the_password_was_changed(settings) -> None:
    settings.SYNTRACK_ADMIN_PASS = "changeme"
    ensure_admin_user()
    admin = User.objects.get(username=settings.SYNTRACK_ADMIN_USER)
    admin.set_password("a-much-better-password")
    admin.save()

    assert admin_password_is_default() == []


def test_it_is_quiet_without_the_tables(monkeypatch) -> None:
    from django.db import OperationalError

    def unmigrated() -> list[str]:
        raise OperationalError("no such table: accounts_user")

    monkeypatch.setattr("accounts.checks.default_password_users", unmigrated)

    assert admin_password_is_default() == []


@pytest.mark.parametrize("placeholder", ["fixme-choose-a-password", "password", "admin", ""])
def test_every_placeholder_counts_as_a_default_password(settings, placeholder: str) -> None:
    User.objects.all().delete()
    settings.SYNTRACK_ADMIN_PASS = placeholder or "a-real-passw0rd"
    ensure_admin_user()
    if not placeholder:  # an empty password can only be set by hand
        admin = User.objects.get()
        admin.set_password("")
        admin.save()

    warnings = admin_password_is_default()

    assert [w.id for w in warnings] == ["accounts.W001"]
    assert "'admin'" in warnings[0].msg


def test_it_names_every_user_with_a_default_password_but_not_inactive_ones(settings) -> None:
    ensure_admin_user()  # "changeme" in the test settings
    User.objects.create_user("bob", password="password")
    User.objects.create_user("gone", password="password", is_active=False)
    User.objects.create_user("carol", password="a-real-passw0rd")

    assert [w.msg.split("'")[1] for w in admin_password_is_default()] == ["admin", "bob"]


def test_it_costs_one_query_and_no_password_hash(settings, django_assert_num_queries, monkeypatch) -> None:
    ensure_admin_user()

    def no_hashing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the check hashed a password")

    # Every hashing and verifying path of Django's goes through one of these two.
    monkeypatch.setattr("django.contrib.auth.hashers.identify_hasher", no_hashing)
    monkeypatch.setattr("django.contrib.auth.hashers.get_hasher", no_hashing)
    with django_assert_num_queries(1):
        assert [w.id for w in admin_password_is_default()] == ["accounts.W001"]
