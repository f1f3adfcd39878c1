"""End-to-end, in headless Chromium: the alert settings page and the dashboard's recent alerts.

Shares the Chromium fixture and seeding of quotas/tests/browser.py (skipped
there with a reason when Chromium or playwright is missing).
"""

from __future__ import annotations

import pytest

from alerts.models import Alert, Channel, Delivery, EventSwitch, Threshold
from alerts.tests.receiver import Receiver
from quotas.tests import browser as shared
from quotas.tests.browser import expect

admin_password = shared.admin_password
browser = shared.browser
make_page = shared.make_page
seeded = shared.seeded

pytestmark = [pytest.mark.django_db(transaction=True)]

SECRET = "topic-7c1e9a2b4d"


def no_horizontal_scroll(ui) -> bool:
    return ui.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_channels_are_added_tested_disabled_and_removed_never_showing_a_secret(seeded, make_page, settings) -> None:
    settings.SYNTRACK_NOTIFY_URLS = ""
    ui = make_page()
    ui.login()
    ui.page.click("#alerts-settings-link")
    expect(ui.page).to_have_url(ui.base + "/settings/")
    expect(ui.page.locator("#no-channels")).to_be_visible()

    with Receiver() as hook:
        ui.page.fill("#id_url", hook.url(path=f"/{SECRET}"))
        ui.page.click("#add-channel-form button[type=submit]")
        channel = ui.page.locator(".channel").first
        expect(channel).to_contain_text("json://127.0.0.1…#")
        assert SECRET not in ui.page.content()

        channel.locator("[data-test-channel]").click()
        expect(ui.page.locator(".alert-success")).to_contain_text("Test sent to json://127.0.0.1…#")
        assert [body["title"] for body in hook.json_bodies()] == ["SynTrack test"]

    ui.page.locator(".channel [data-toggle-channel]").click()
    expect(ui.page.locator(".channel")).to_contain_text("disabled")
    assert Channel.objects.get().enabled is False
    ui.page.locator(".channel [data-remove-channel]").click()
    expect(ui.page.locator("#no-channels")).to_be_visible()
    assert not Channel.objects.exists()

    # a URL Apprise cannot use is refused in place
    ui.page.fill("#id_url", "nosuchservice://abc")
    ui.page.click("#add-channel-form button[type=submit]")
    expect(ui.page.locator("#url-error")).to_contain_text("Apprise cannot use this nosuchservice:// URL")
    assert not ui.errors or all("status of 400" in e for e in ui.errors), ui.errors


def test_events_and_levels_are_saved_from_the_page(seeded, make_page) -> None:
    ui = make_page()
    ui.login()
    ui.goto("/settings/")
    ui.page.check("#id_reset")
    ui.page.uncheck("#id_drift")
    ui.page.click("#events-form button[type=submit]")
    expect(ui.page.locator(".alert-success")).to_contain_text("Events saved.")
    switches = dict(EventSwitch.objects.values_list("event", "enabled"))
    assert switches["reset"] is True and switches["drift"] is False and switches["threshold"] is True

    ui.page.fill("input[name=warning]", "70")
    ui.page.fill("input[name='synthetic:subscription:critical']", "99")
    ui.page.click("#levels-form button[type=submit]")
    expect(ui.page.locator(".alert-success")).to_contain_text("Levels saved.")
    assert Threshold.objects.get(provider="", quota="").warning == 70
    assert Threshold.objects.get(provider="synthetic", quota="subscription").critical == 99
    assert ui.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_settings_page_fits_a_phone_in_both_themes(seeded, make_page, settings, theme: str) -> None:
    settings.SYNTRACK_NOTIFY_URLS = f"ntfy://{SECRET} json://hooks.example/{SECRET}"
    ui = make_page(viewport={"width": 390, "height": 844}, color_scheme=theme)
    ui.login()
    ui.goto("/settings/")
    expect(ui.page.locator(".channel")).to_have_count(2)
    assert SECRET not in ui.page.content()
    assert no_horizontal_scroll(ui)
    ui.shot(f"alerts-settings-phone-{theme}")
    assert ui.errors == []


def test_the_dashboard_lists_recent_alerts_with_their_deliveries(seeded, make_page) -> None:
    alert = Alert.objects.create(
        event="threshold", provider="synthetic", quota="subscription", level="critical",
        title="Synthetic: Subscription at 96 %", message="Subscription has used 96 % of its limit, past 95 %.",
    )  # fmt: skip
    Delivery.objects.create(alert=alert, channel="ntfy://…#a1b2c3", status="sent")
    Delivery.objects.create(alert=alert, channel="json://hooks.example…#d4e5f6", status="failed", error="error=500")
    ui = make_page()
    ui.login()
    item = ui.page.locator("#alert-list .alert-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Synthetic: Subscription at 96 %")
    expect(item).to_contain_text("threshold · critical")
    expect(item.locator(".alert-deliveries .badge")).to_have_count(2)
    ui.page.locator("#alerts-panel").scroll_into_view_if_needed()
    ui.shot("dashboard-recent-alerts", full_page=False)
    assert ui.errors == []
