"""Default passwords: the published, guessable ones no live account may keep (product.md §9).

A password is judged when it is set (``User.set_password``), while the raw
text is at hand, so no later check has to hash anything.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError

# Compared after strip() and lower(). "changeme" was the built-in default,
# "fixme-choose-a-password" the value .env.example shipped; the rest are what
# people type when a tool asks for a password they mean to change later.
PLACEHOLDERS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "fixme",
        "fixme-choose-a-password",
        "password",
        "passw0rd",
        "admin",
        "administrator",
        "secret",
        "default",
        "syntrack",
        "12345678",
    }
)


def is_placeholder(raw_password: str | None) -> bool:
    """Whether ``raw_password`` is a default one. None (an unusable password) is not: nobody can sign in with it."""
    return raw_password is not None and raw_password.strip().lower() in PLACEHOLDERS


def generate_password() -> str:
    """A strong password for an admin created without SYNTRACK_ADMIN_PASS (144 random bits)."""
    return secrets.token_urlsafe(18)


class PlaceholderPasswordValidator:
    """Refuses a default password wherever a user picks one (dashboard, admin, changepassword)."""

    def validate(self, password: str, user: object = None) -> None:
        if is_placeholder(password):
            raise ValidationError("This password is a well-known default; choose another.", code="password_default")

    def get_help_text(self) -> str:
        return "Your password can't be a well-known default such as “changeme”."
