"""``manage.py changepassword [username]``: Django's, for SYNTRACK_ADMIN_USER when no name is given.

Django's own falls back to the operating-system login name, which is never
the dashboard user. The change goes through ``User.set_password``, so it
counts as a change in the product (.env no longer applies) and the
default-password flag follows the new password.
"""

from django.conf import settings
from django.contrib.auth.management.commands import changepassword


class Command(changepassword.Command):
    help = "Change a user's password (default: SYNTRACK_ADMIN_USER)."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        for action in parser._actions:
            if action.dest == "username":
                action.help = "Username to change the password for; by default SYNTRACK_ADMIN_USER."

    def handle(self, *args, **options) -> str:
        options["username"] = options.get("username") or settings.SYNTRACK_ADMIN_USER
        return super().handle(*args, **options)
