"""``manage.py bootstrap_admin``: create or update the first user from .env."""

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.bootstrap import ensure_admin_user


class Command(BaseCommand):
    help = (
        "Make sure SYNTRACK_ADMIN_USER exists (staff, superuser) with SYNTRACK_ADMIN_PASS until changed in the product."
    )

    def handle(self, *args, **options) -> str:
        result = ensure_admin_user()
        return f"Admin user {settings.SYNTRACK_ADMIN_USER!r}: {result}"
