"""``manage.py notify``: the alert channels, masked; ``--test`` sends each a test message.

Exits 1 when a test failed, 2 when no channel is configured for ``--test``.
"""

from __future__ import annotations

from django.core.management.base import CommandError

from alerts import channels
from alerts.delivery import send
from quotas.management.base import OneLineErrorsCommand, usage_error

TITLE = "SynTrack test"
BODY = "This channel receives SynTrack's quota alerts."


class Command(OneLineErrorsCommand):
    help = "List the alert channels (masked), or send each a test message with --test."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--test", action="store_true", help="send a test message to every channel")

    def handle(self, *args: object, **options: object) -> None:
        configured = channels.configured()
        if not options["test"]:
            if not configured:
                self.stdout.write("no alert channel: set SYNTRACK_NOTIFY_URLS or add one on the settings page")
            for channel in configured:
                self.stdout.write(f"{channel.name}  ({channel.source})")
            return
        if not configured:
            raise usage_error("no alert channel to test: set SYNTRACK_NOTIFY_URLS or add one on the settings page")
        failed = 0
        for channel in configured:
            outcome = send(channel, TITLE, BODY)
            if outcome.sent:
                self.stdout.write(f"{channel.name}: sent")
            else:
                failed += 1
                self.stdout.write(f"{channel.name}: FAILED: {outcome.error}")
        if failed:
            raise CommandError(f"{failed} of {len(configured)} channels failed", returncode=1)
