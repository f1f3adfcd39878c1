"""End-to-end: the dashboard's Poll now against a real poller process.

`manage.py poll --interval 3600` runs against tools/fake_upstream.py and the
database the live server uses (a file on SQLite, the test database on
PostgreSQL: transactional tests commit, so both processes see each row). After
its first polls it would sleep for an hour; the button makes it poll at once and
the page shows that poll when it lands.
"""

from __future__ import annotations

import re

import pytest

from quotas.models import PollAttempt
from quotas.tests import browser as shared
from quotas.tests.browser import expect
from quotas.tests.helpers import fake_upstream, manage, poller_env, processes, wait_until

# The shared fixtures, under the names the tests ask for.
admin_password = shared.admin_password
browser = shared.browser
make_page = shared.make_page

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_poll_now_makes_the_running_poller_poll_and_the_page_shows_it(
    providers_configured, admin_password: str, make_page
) -> None:
    with fake_upstream() as upstream, processes() as start:
        poller = start(manage("poll", "--interval", "3600"), poller_env(upstream))
        poller.wait_for_line("polling Synthetic, Z.ai every 3600 s", stream="stdout")
        wait_until(lambda: PollAttempt.objects.count() == 2, 10, "the first poll of each provider")
        ui = make_page(color_scheme="light")
        page = ui.page
        ui.login()
        page.click('#provider-tabs [data-provider="both"]')
        expect(page.locator("#polls-pager")).to_contain_text("Showing 1–2 of 2")
        expect(page.locator("#status-dot")).to_have_attribute("data-level", "ok")

        button = page.locator("#poll-now-btn")
        button.click()
        expect(button).to_have_text("Polling…")
        expect(button).to_be_disabled()
        # The poller answers within seconds (never sooner than 5 s after its last poll).
        expect(button).to_have_text("Poll now", timeout=20_000)
        assert PollAttempt.objects.count() == 4, poller.output
        # The page refreshed on its own once the poll landed: two more rows in the poll history.
        expect(page.locator("#polls-pager")).to_contain_text("Showing 1–4 of 4")
        expect(page.locator("#poll-message")).to_be_hidden()
        expect(page.locator("#last-updated")).to_have_text(re.compile(r"^Updated "))
        assert "Traceback" not in poller.stderr
    assert ui.errors == []
