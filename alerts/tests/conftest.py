"""Fixtures of the alerts tests."""

from __future__ import annotations

import pytest

from accounts.models import User


@pytest.fixture
def no_default_password() -> None:
    """No accounts.W001 from the processes a test starts: their output holds only their own lines.

    The test settings' admin has "changeme", and the post-migrate step brings it
    back after every flush of a transactional test.
    """
    for user in User.objects.filter(password_is_default=True):
        user.set_password("a-real-passw0rd")
        user.save()
