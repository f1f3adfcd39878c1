"""/settings/: channels (add, test, disable, remove), events and threshold levels; secrets never shown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from accounts.models import User
from alerts.models import Channel, EventSwitch, Threshold
from alerts.tests.receiver import Receiver
from conftest import store_quotas
from quotas.providers.base import Quota

pytestmark = pytest.mark.django_db

SECRET = "tk-0a1b2c3d4e5f6a7b"


@pytest.fixture
def ui(client: Client, settings) -> Client:
    settings.SYNTRACK_NOTIFY_URLS = ""
    # The settings page is for admins (staff users) only: accounts.roles.
    client.force_login(User.objects.create_user("owner", password="a-long-passw0rd", is_staff=True))
    return client


def post(client: Client, **data: str):
    return client.post("/settings/", data)


def test_it_needs_a_signed_in_user(client: Client) -> None:
    answer = client.get("/settings/")
    assert answer.status_code == 302 and answer["Location"] == "/login/?next=/settings/"


def test_an_added_channel_is_listed_masked_and_its_url_never_comes_back(ui: Client) -> None:
    answer = post(ui, action="add_channel", url=f"ntfy://{SECRET}")
    assert answer.status_code == 302
    [channel] = Channel.objects.all()
    assert channel.url == f"ntfy://{SECRET}"

    page = ui.get("/settings/").content.decode()
    assert "Added ntfy://…#" in page
    assert "ntfy://…#" in page and SECRET not in page


def test_environment_channels_are_listed_masked_with_where_they_come_from(ui: Client, settings) -> None:
    settings.SYNTRACK_NOTIFY_URLS = f"json://hooks.example/{SECRET}"
    page = ui.get("/settings/").content.decode()
    assert "json://hooks.example…#" in page and "SYNTRACK_NOTIFY_URLS" in page
    assert SECRET not in page


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("", "enter an Apprise URL"),
        ("just text", "an Apprise URL looks like ntfy://topic or json://host/path"),
        ("nosuchservice://abc", "Apprise cannot use this nosuchservice:// URL"),
    ],
)
def test_a_bad_url_is_refused_with_a_message_and_nothing_stored(ui: Client, url: str, error: str) -> None:
    answer = post(ui, action="add_channel", url=url)
    assert answer.status_code == 400
    assert error in answer.content.decode()
    assert not Channel.objects.exists()


def test_the_same_url_twice_is_refused(ui: Client) -> None:
    post(ui, action="add_channel", url="ntfy://my-topic")
    answer = post(ui, action="add_channel", url="ntfy://my-topic")
    assert answer.status_code == 400 and "already on the list" in answer.content.decode()


def test_a_channel_can_be_disabled_enabled_and_removed(ui: Client) -> None:
    channel = Channel.objects.create(url="ntfy://my-topic")
    post(ui, action="toggle_channel", channel=str(channel.pk))
    channel.refresh_from_db()
    assert not channel.enabled
    assert "disabled" in ui.get("/settings/").content.decode()
    post(ui, action="toggle_channel", channel=str(channel.pk))
    channel.refresh_from_db()
    assert channel.enabled
    post(ui, action="remove_channel", channel=str(channel.pk))
    assert not Channel.objects.exists()
    assert "Removed ntfy://…#" in ui.get("/settings/").content.decode()
    post(ui, action="remove_channel", channel="x")
    assert "That channel is no longer on the list." in ui.get("/settings/").content.decode()


def test_send_test_reaches_the_channel_and_says_so(ui: Client) -> None:
    with Receiver() as hook, Receiver(statuses=[500] * 20) as broken:
        good = Channel.objects.create(url=hook.url(path=f"/{SECRET}"))
        post(ui, action="test_channel", channel=f"db:{good.pk}")
        page = ui.get("/settings/").content.decode()
        assert "Test sent to json://127.0.0.1…#" in page
        assert [body["title"] for body in hook.json_bodies()] == ["SynTrack test"]

        bad = Channel.objects.create(url=broken.url(path=f"/{SECRET}"))
        post(ui, action="test_channel", channel=f"db:{bad.pk}")
        page = ui.get("/settings/").content.decode()
    assert "failed: Failed to send JSON POST notification" in page
    assert SECRET not in page


def test_events_are_switched_on_and_off(ui: Client) -> None:
    page = ui.get("/settings/").content.decode()
    assert 'name="threshold" id="id_threshold" checked' in page
    assert 'name="reset" id="id_reset">' in page  # off by default

    post(ui, action="save_events", reset="on", runs_out="on")
    assert dict(EventSwitch.objects.values_list("event", "enabled")) == {
        "threshold": False, "runs_out": True, "exhausted": False, "reset": True,
        "auth_failed": False, "drift": False, "failing": False, "recovered": False,
    }  # fmt: skip


def test_levels_for_all_and_for_one_quota_are_saved_and_emptied(ui: Client) -> None:
    store_quotas(
        datetime(2026, 3, 2, tzinfo=UTC),
        Quota(key="subscription", label="Subscription", kind="reset", unit="requests", used=1, limit=10),
    )
    page = ui.get("/settings/").content.decode()
    assert "Synthetic · Subscription" in page

    post(ui, action="save_thresholds", warning="70", critical="90", **{"synthetic:subscription:warning": "50"})
    assert set(Threshold.objects.values_list("provider", "quota", "warning", "critical")) == {
        ("", "", 70.0, 90.0),
        ("synthetic", "subscription", 50.0, None),
    }
    post(ui, action="save_thresholds", warning="70", critical="90")
    assert not Threshold.objects.filter(provider="synthetic").exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"warning": "95", "critical": "90"}, "must be above the warning level"),
        ({"warning": "0", "critical": "90"}, "a percentage from 1 to 100"),
        ({"warning": "abc", "critical": "90"}, "a percentage from 1 to 100"),
        ({"warning": "", "critical": "90"}, "the warning and the critical level are both needed"),
    ],
)
def test_bad_levels_are_refused_with_a_message(ui: Client, data: dict, error: str) -> None:
    answer = post(ui, action="save_thresholds", **data)
    assert answer.status_code == 400
    assert error in answer.content.decode()
    assert not Threshold.objects.exists()


def test_an_unknown_action_changes_nothing(ui: Client) -> None:
    answer = post(ui, action="drop_tables")
    assert answer.status_code == 302
    assert "Unknown action." in ui.get("/settings/").content.decode()
