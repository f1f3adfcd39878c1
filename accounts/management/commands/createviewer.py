"""``manage.py createviewer NAME``: a viewer (a non-staff user), with a generated password shown once.

``--password-stdin`` reads the password from the first line of stdin
instead (``echo "$PW" | ./syntrack createviewer bob --password-stdin``), so
it never appears in the process list or the shell's history.
"""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.passwords import generate_password
from quotas.management.base import OneLineErrorsCommand, usage_error


class Command(OneLineErrorsCommand):
    help = "Create a viewer: a user who sees the dashboard and the API but changes no settings."
    stealth_options = ("stdin",)  # call_command(..., stdin=io.StringIO(...)) in tests

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="the viewer's username")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin instead of generating one"
        )

    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        name = str(options["name"]).strip()
        user = User(username=name)
        try:
            user.clean_fields(exclude=[f.name for f in User._meta.fields if f.name != "username"])
        except ValidationError as e:
            raise usage_error(f"username: {' '.join(e.message_dict['username'])}") from None
        if User._default_manager.filter(username__iexact=name).exists():
            raise usage_error(f"a user called {name!r} exists already")
        password = (
            self._password_from(options.get("stdin") or sys.stdin) if options["password_stdin"] else generate_password()
        )
        try:
            validate_password(password, user)
        except ValidationError as e:
            raise usage_error(" ".join(e.messages)) from None
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise usage_error(f"a user called {name!r} exists already") from None
        if options["password_stdin"]:
            self.stdout.write(f"Created the viewer {name}.")
        else:
            self.stdout.write(
                f"Created the viewer {name}. Their password, shown this once and stored only as a hash:\n"
                f"{password}\nThey can change it on the dashboard."
            )

    def _password_from(self, stdin) -> str:
        line = stdin.readline().rstrip("\r\n")
        if not line:
            raise usage_error("--password-stdin: no password on stdin")
        return line
