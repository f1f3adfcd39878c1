"""The poller raises and delivers alerts: `poll --once` against `responses`, a real local receiver for the channel."""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from alerts.models import Alert, Delivery
from alerts.tests.receiver import Receiver
from conftest import SYNTHETIC_URL, fixture_json

pytestmark = pytest.mark.django_db(transaction=True)


def synthetic_body(requests_used: int) -> bytes:
    body = fixture_json("synthetic/v3_rolling_windows.json")
    body["subscription"]["requests"] = requests_used  # of 500
    body["subscription"]["renewsAt"] = (timezone.now() + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    return json.dumps(body).encode()


@pytest.fixture
def synthetic_only(upstream, providers_configured):
    providers_configured.ZAI_API_KEY = ""
    providers_configured.SYNTRACK_ALERT_EMAILS = []
    upstream.add_passthru("http://127.0.0.1")  # the receiver is a real server
    return upstream


def poll_once() -> str:
    out = io.StringIO()
    call_command("poll", "--once", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_poll_once_sends_a_threshold_crossing_once_and_waits_for_its_delivery(synthetic_only, settings) -> None:
    with Receiver() as hook:
        settings.SYNTRACK_NOTIFY_URLS = hook.url()
        synthetic_only.get(SYNTHETIC_URL, body=synthetic_body(0))
        for used in (300, 420, 430, 300):
            synthetic_only.replace("GET", SYNTHETIC_URL, body=synthetic_body(used))
            poll_once()
            if used == 420:
                # delivered before --once returned
                assert [body["title"] for body in hook.json_bodies()] == ["Synthetic: Subscription at 84 %"]

    assert [body["title"] for body in hook.json_bodies()] == ["Synthetic: Subscription at 84 %"]
    assert Alert.objects.count() == 1
    assert list(Delivery.objects.values_list("status", flat=True)) == ["sent"]


def test_a_rejected_key_alerts_once_and_the_next_good_poll_recovers(synthetic_only, settings) -> None:
    with Receiver() as hook:
        settings.SYNTRACK_NOTIFY_URLS = hook.url()
        synthetic_only.get(SYNTHETIC_URL, status=401, body=b'{"error": "unauthorized"}')
        for _ in range(2):
            with pytest.raises(CommandError):
                poll_once()
        synthetic_only.replace("GET", SYNTHETIC_URL, body=synthetic_body(10))
        poll_once()

    titles = [body["title"] for body in hook.json_bodies()]
    assert titles == ["Synthetic: API key rejected", "Synthetic: API key accepted again"]


def test_a_heartbeat_follows_a_successful_round(synthetic_only, settings) -> None:
    with Receiver() as monitor:
        settings.SYNTRACK_HEARTBEAT_URL = f"http://127.0.0.1:{monitor.port}/ping/abc"
        synthetic_only.get(SYNTHETIC_URL, body=synthetic_body(10))
        poll_once()
        synthetic_only.replace("GET", SYNTHETIC_URL, status=502, body=b"{}")
        with pytest.raises(CommandError):
            poll_once()
    assert [request["path"] for request in monitor.received] == ["/ping/abc"]


def test_poll_once_waits_for_a_few_alerts_worth_of_delivery_budget() -> None:
    from alerts.delivery import BUDGET
    from quotas.management.commands.poll import DELIVERY_WAIT

    assert DELIVERY_WAIT == 3 * BUDGET


def test_a_restarted_poller_sends_the_alerts_of_the_last_hour_that_no_channel_got(synthetic_only, settings) -> None:
    from alerts.models import Alert

    fields = {"event": "threshold", "provider": "synthetic", "quota": "subscription", "level": "warning"}
    Alert.objects.create(title="raised, then the poller stopped", message="m", **fields)
    old = Alert.objects.create(title="too old to matter now", message="m", **fields)
    Alert.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(hours=2))
    with Receiver() as hook:
        settings.SYNTRACK_NOTIFY_URLS = hook.url()
        synthetic_only.get(SYNTHETIC_URL, body=synthetic_body(10))
        out = io.StringIO()
        call_command("poll", "--max-polls", "1", "--interval", "10", stdout=out, stderr=io.StringIO())
        deadline = time.monotonic() + 10
        while not hook.received and time.monotonic() < deadline:
            time.sleep(0.05)  # the delivery thread sends it

    assert "delivering 1 alert(s) raised before the restart" in out.getvalue()
    assert [body["title"] for body in hook.json_bodies()] == ["raised, then the poller stopped"]


def test_an_unreachable_heartbeat_is_logged_and_polling_goes_on(synthetic_only, settings, caplog) -> None:
    import socket

    with socket.socket() as spare:  # a port nothing listens on
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    settings.SYNTRACK_HEARTBEAT_URL = f"http://127.0.0.1:{port}/ping/secret-check-uuid"
    synthetic_only.get(SYNTHETIC_URL, body=synthetic_body(10))

    with caplog.at_level(logging.WARNING, logger="syntrack.alerts"):
        poll_once()

    assert "heartbeat failed: connection failed" in caplog.text
    assert "secret-check-uuid" not in caplog.text
