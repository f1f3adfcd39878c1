"""The poller as a real process with a channel that hangs: polling and SIGTERM never wait for it."""

from __future__ import annotations

import signal
import time

import pytest

from alerts.models import Alert, Threshold
from alerts.tests.receiver import Receiver
from quotas.models import PollAttempt
from quotas.tests.helpers import fake_upstream, manage, poller_env, processes, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_default_password")]


def test_sigterm_during_a_hanging_delivery_still_stops_the_poller_within_2_seconds() -> None:
    # Levels so low that the fake upstream's first answer crosses them.
    Threshold.objects.create(warning=0.001, critical=0.002)
    with Receiver(hang=60) as hook, fake_upstream() as upstream, processes() as start:
        env = poller_env(upstream, SYNTRACK_NOTIFY_URLS=hook.url())
        poller = start(manage("poll", "--interval", "10"), env)
        wait_until(lambda: len(hook.received) >= 1, 15, "a delivery hanging at the receiver")
        # polling goes on while the channel hangs
        wait_until(lambda: PollAttempt.objects.count() >= 2, 10, "both providers polled")

        began = time.monotonic()
        poller.send(signal.SIGTERM)
        code = poller.wait(timeout=10)
        took = time.monotonic() - began

        assert code == 0, poller.output
        assert took < 2.0
        assert "Traceback" not in poller.stderr
    assert Alert.objects.filter(event="threshold", level="critical").exists()
