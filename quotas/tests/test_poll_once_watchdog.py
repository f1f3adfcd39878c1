"""``poll --once`` gives up on a fetch stuck past FETCH_WATCHDOG, as the loop does.

lib.http ends every request by its total deadline; the watchdog is the
backstop for a fetch stuck anywhere else. The upstream is ``tools.fake_upstream``
on 127.0.0.1; the stuck fetch is Z.ai's, held back before it starts.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator

import pytest
from django.core.management.base import CommandError

from lib import http
from quotas.management.commands import poll as poll_module
from quotas.management.commands.poll import Command
from quotas.models import Outcome, PollAttempt
from quotas.tests.helpers import providers_at_fake_upstream

pytestmark = pytest.mark.django_db


@pytest.fixture
def upstream(settings) -> Iterator[None]:
    with providers_at_fake_upstream(settings):
        yield


def test_the_watchdog_outlasts_the_http_deadline() -> None:
    assert poll_module.FETCH_WATCHDOG > http.TOTAL_TIMEOUT


def test_once_records_a_fetch_stuck_past_the_watchdog_as_a_network_error(upstream, monkeypatch) -> None:
    monkeypatch.setattr(poll_module, "FETCH_WATCHDOG", 1.0)
    release = threading.Event()
    real_fetch = Command.fetch

    def fetch(self, provider: str):
        if provider == "zai":
            release.wait(10)  # answers only once the test lets it go
        return real_fetch(self, provider)

    monkeypatch.setattr(Command, "fetch", fetch)
    cmd = Command(stdout=io.StringIO(), stderr=io.StringIO())
    # Without the watchdog the wait would last until a signal: stand in for one after 5 s,
    # so the test fails (no CommandError) instead of hanging.
    stop = threading.Timer(5.0, lambda: setattr(cmd, "shutdown", True))
    stop.start()
    started = time.monotonic()
    try:
        with pytest.raises(CommandError, match=r"poll failed for Z\.ai"):
            cmd.run_once(["synthetic", "zai"])
        took = time.monotonic() - started
    finally:
        stop.cancel()
        release.set()

    assert 1.0 <= took < 1.0 + 1.0
    outcomes = dict(PollAttempt.objects.values_list("provider", "outcome"))
    assert outcomes == {"synthetic": Outcome.OK, "zai": Outcome.NETWORK_ERROR}
    assert PollAttempt.objects.get(provider="zai").message == "no complete answer within 1 s"
    assert "Z.ai: network_error (no complete answer within" in cmd.stdout.getvalue()
