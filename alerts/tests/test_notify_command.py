"""``manage.py notify [--test]``."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.tests.receiver import Receiver

pytestmark = pytest.mark.django_db

SECRET = "tok-9f8e7d6c5b4a"


def notify(*args: str) -> str:
    out = io.StringIO()
    call_command("notify", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_test_sends_to_every_channel_and_names_them_masked(settings) -> None:
    with Receiver() as first, Receiver() as second:
        settings.SYNTRACK_NOTIFY_URLS = f"{first.url(path='/' + SECRET)}, {second.url()}"
        out = notify("--test")
    assert [body["title"] for body in first.json_bodies() + second.json_bodies()] == ["SynTrack test"] * 2
    assert out.count(": sent") == 2 and SECRET not in out


def test_a_failed_channel_makes_it_exit_1(settings) -> None:
    with Receiver() as good, Receiver(statuses=[404]) as bad:
        settings.SYNTRACK_NOTIFY_URLS = f"{good.url()} {bad.url(path='/' + SECRET)}"
        with pytest.raises(CommandError) as info:
            notify("--test")
    assert info.value.returncode == 1
    assert str(info.value) == "1 of 2 channels failed"


def test_without_channels_test_is_a_usage_error_and_the_list_says_how_to_add_one(settings) -> None:
    settings.SYNTRACK_NOTIFY_URLS = ""
    with pytest.raises(CommandError) as info:
        notify("--test")
    assert info.value.returncode == 2
    assert "SYNTRACK_NOTIFY_URLS" in notify()


def test_the_list_shows_masked_names_and_where_each_comes_from(settings) -> None:
    settings.SYNTRACK_NOTIFY_URLS = f"ntfy://{SECRET}"
    assert notify().strip().endswith("(environment)")
    assert SECRET not in notify()
