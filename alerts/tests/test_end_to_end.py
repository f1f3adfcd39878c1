"""The issue's acceptance run: the fake upstream driven across 80 % and 95 % and back, `poll --once`
as cron runs it (every run a restart), a json:// and an ntfy receiver on this machine."""

from __future__ import annotations

import json

import pytest

from alerts.models import Alert
from alerts.tests.receiver import Receiver
from quotas.tests.helpers import fake_upstream, poller_env, run_manage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_default_password")]


def test_each_crossing_reaches_every_channel_once_and_restarts_send_nothing_more() -> None:
    with Receiver() as hook, Receiver() as ntfy, fake_upstream() as upstream:
        channels = f"{hook.url()} ntfy://127.0.0.1:{ntfy.port}/quota-alerts"
        env = poller_env(upstream, ZAI_API_KEY="", SYNTRACK_NOTIFY_URLS=channels)
        for percent in (50, 85, 85, 96, 97, 10, 40, 86, 96, 96):
            upstream.state.pinned = percent
            done = run_manage("poll", "--once", env=env)
            assert done.returncode == 0, done.stdout + done.stderr

    expected = [
        "Synthetic: Subscription at 85 %",
        "Synthetic: Subscription at 96 %",
        "Synthetic: Subscription at 86 %",
        "Synthetic: Subscription at 96 %",
    ]
    assert [body["title"] for body in hook.json_bodies()] == expected
    ntfy_titles = [json.loads(item["body"]).get("title") for item in ntfy.received]
    assert ntfy_titles == expected
    assert list(Alert.objects.order_by("id").values_list("level", flat=True)) == ["warning", "critical"] * 2
