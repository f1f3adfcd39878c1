"""``manage.py bootstrap_admin``: create or update the first user from .env."""

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.bootstrap import ensure_admin_user, generated_password_notice


class Command(BaseCommand):
    help = (
        "Make sure SYNTRACK_ADMIN_USER exists (staff, superuser) with SYNTRACK_ADMIN_PASS until changed in the "
        "product; with SYNTRACK_ADMIN_PASS empty, a new user gets a generated password, printed once."
    )

    def handle(self, *args, **options) -> str:
        result = ensure_admin_user()
        if result.generated:
            self.stdout.write(generated_password_notice(settings.SYNTRACK_ADMIN_USER, result.generated), ending="")
        return f"Admin user {settings.SYNTRACK_ADMIN_USER!r}: {result.action}"
