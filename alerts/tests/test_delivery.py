"""alerts.delivery and alerts.channels: real sockets to a local receiver, Apprise unmocked."""

from __future__ import annotations

import logging
import time

import pytest
from django.core import mail

from alerts.channels import mask, scrub, split_urls
from alerts.delivery import BREAKER_FAILURES, Breaker, Dispatcher, deliver, send
from alerts.models import Alert, Channel, Delivery
from alerts.tests.receiver import Receiver

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-hook-token-0123456789"
PASSWORD = "hunter2-mail-password"


def an_alert(**fields) -> Alert:
    values = {
        "event": "threshold",
        "provider": "synthetic",
        "quota": "subscription",
        "level": "warning",
        "title": "Synthetic: Subscription at 81 %",
        "message": "Subscription has used 81 % of its limit, past 80 %.",
    }
    return Alert.objects.create(**{**values, **fields})


@pytest.fixture
def no_channels(settings):
    settings.SYNTRACK_NOTIFY_URLS = ""
    settings.SYNTRACK_ALERT_EMAILS = []
    settings.EMAIL_URL_SET = False
    return settings


def test_a_json_url_receives_the_alert_and_the_delivery_is_recorded_under_a_masked_name(no_channels) -> None:
    with Receiver() as hook:
        url = hook.url(path=f"/{SECRET}", userinfo=f"me:{PASSWORD}")
        no_channels.SYNTRACK_NOTIFY_URLS = url
        alert = an_alert()

        [delivery] = deliver(alert)

    [body] = hook.json_bodies()
    assert body["title"] == "Synthetic: Subscription at 81 %"
    assert body["message"] == "Subscription has used 81 % of its limit, past 80 %."
    assert body["type"] == "warning"
    assert (delivery.status, delivery.error) == ("sent", "")
    assert delivery.channel.startswith("json://127.0.0.1…#")
    assert SECRET not in delivery.channel and PASSWORD not in delivery.channel


def test_an_ntfy_url_on_a_local_server_receives_it_too(no_channels) -> None:
    with Receiver() as server:
        no_channels.SYNTRACK_NOTIFY_URLS = f"ntfy://127.0.0.1:{server.port}/syntrack-alerts"
        [delivery] = deliver(an_alert())

    assert delivery.status == "sent"
    [request] = server.received
    assert "Subscription has used 81 %" in request["body"]
    assert "syntrack-alerts" in request["path"] + request["body"]
    assert delivery.channel.startswith("ntfy://…#")  # the topic is the secret of an ntfy channel


def test_a_server_error_is_tried_again_within_the_budget() -> None:
    with Receiver(statuses=[503, 500]) as hook:
        outcome = send(channel_for(hook.url()), "title", "body", budget=10)
    assert outcome.sent
    assert len(hook.received) == 3


def test_a_client_error_is_final_and_its_text_names_no_secret() -> None:
    with Receiver(statuses=[400]) as hook:
        url = hook.url(path=f"/{SECRET}", userinfo=f"me:{PASSWORD}")
        outcome = send(channel_for(url), "title", "body", budget=10)
    assert not outcome.sent and not outcome.retry
    assert "error=400" in outcome.error
    assert SECRET not in outcome.error and PASSWORD not in outcome.error
    assert len(hook.received) == 1


def test_a_hanging_channel_fails_within_its_time_budget() -> None:
    with Receiver(hang=5) as hook:
        began = time.monotonic()
        outcome = send(channel_for(hook.url()), "title", "body", budget=2)
        took = time.monotonic() - began
    assert not outcome.sent
    assert took < 4


def test_three_failures_in_a_row_rest_a_channel_for_five_minutes(no_channels) -> None:
    now = [0.0]
    breaker = Breaker(clock=lambda: now[0])
    with Receiver(statuses=[400] * 10) as hook:
        no_channels.SYNTRACK_NOTIFY_URLS = hook.url()
        for _ in range(BREAKER_FAILURES):
            [delivery] = deliver(an_alert(), breaker)
            assert delivery.status == "failed"
        [rested] = deliver(an_alert(), breaker)
        tried = len(hook.received)
        now[0] += 301
        [after] = deliver(an_alert(), breaker)
    assert tried == BREAKER_FAILURES
    assert rested.error == f"paused after {BREAKER_FAILURES} failures in a row"
    assert after.error != rested.error and len(hook.received) == BREAKER_FAILURES + 1


def test_email_goes_through_djangos_email_backend(no_channels) -> None:
    no_channels.SYNTRACK_ALERT_EMAILS = ["me@example.com", "team@example.com"]
    no_channels.EMAIL_URL_SET = True
    no_channels.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    [delivery] = deliver(an_alert())

    assert delivery.status == "sent" and delivery.channel == "email to me@example.com, team@example.com"
    [message] = mail.outbox
    assert message.subject == "Synthetic: Subscription at 81 %"
    assert message.to == ["me@example.com", "team@example.com"]


def test_channels_of_the_settings_page_count_unless_disabled(no_channels) -> None:
    with Receiver() as hook:
        Channel.objects.create(url=hook.url("json", "/on"))
        Channel.objects.create(url=hook.url("json", "/off"), enabled=False)
        deliveries = deliver(an_alert())
    assert [d.status for d in deliveries] == ["sent"]
    assert [item["path"] for item in hook.received] == ["/on"]


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_delivers_in_its_own_thread(no_channels) -> None:
    with Receiver() as hook:
        no_channels.SYNTRACK_NOTIFY_URLS = hook.url()
        dispatcher = Dispatcher()
        dispatcher.submit([an_alert(), an_alert(title="second")])
        assert dispatcher.drain(10)
    assert [body["title"] for body in hook.json_bodies()] == ["Synthetic: Subscription at 81 %", "second"]
    assert Delivery.objects.filter(status="sent").count() == 2


def test_secrets_never_reach_the_log(no_channels, caplog) -> None:
    with Receiver(statuses=[401]) as hook, caplog.at_level(logging.DEBUG):
        no_channels.SYNTRACK_NOTIFY_URLS = hook.url(path=f"/{SECRET}", userinfo=f"me:{PASSWORD}")
        deliver(an_alert())
    assert "failed" in caplog.text
    assert SECRET not in caplog.text and PASSWORD not in caplog.text


def test_masks_tell_channels_apart_and_keep_their_secrets() -> None:
    first, second = "tgram://123456:ABCdefGHI/987", "tgram://123456:ABCdefGHJ/987"
    assert mask(first) != mask(second)
    assert mask(first).startswith("tgram://…#") and "ABC" not in mask(first)
    assert mask("not a url").startswith("invalid URL #")
    assert scrub(f"failed to reach {first} with token ABCdefGHI", [first]) == "failed to reach *** with token ***"


def test_urls_are_split_on_spaces_commas_and_new_lines() -> None:
    assert split_urls(" ntfy://a, json://h/p\nslack://x/y/z  ") == ["ntfy://a", "json://h/p", "slack://x/y/z"]


def channel_for(url: str):
    from alerts.channels import Channel as Destination

    return Destination("test", "apprise", url, mask(url), "environment")
