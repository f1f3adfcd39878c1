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

    def unmigrated() -> bool:
        raise OperationalError("no such table: accounts_user")

    monkeypatch.setattr("accounts.checks.uses_default_password", unmigrated)

    assert admin_password_is_default() == []
