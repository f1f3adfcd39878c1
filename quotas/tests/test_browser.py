"""End-to-end: the dashboard and login page in a real (headless) Chromium.

Needs Debian's chromium at /usr/bin/chromium and the `playwright` package;
skipped with a reason when either is missing. Screenshots go to
test-artifacts/screenshots/ (git-ignored). The shared seeding and fixtures
live in quotas/tests/browser.py.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest

from quotas.providers.base import NETWORK_ERROR, PollFailure
from quotas.tests import browser as shared
from quotas.tests.browser import (
    NEW_PASSWORD,
    PASSWORD,
    PROJECT,
    SHOTS,
    chart_series,
    chart_shot,
    colours,
    expect,
    fail_last_poll,
)

# The shared fixtures, under the names the tests ask for.
admin_password = shared.admin_password
browser = shared.browser
make_page = shared.make_page
seeded = shared.seeded

pytestmark = [pytest.mark.django_db(transaction=True)]


# ---------------------------------------------------------------- scenarios


def test_a_user_signs_in_explores_both_providers_and_changes_the_password(seeded, make_page) -> None:
    ui = make_page(color_scheme="light")
    page = ui.page

    ui.goto("/")
    expect(page.locator("h1")).to_have_text("SynTrack")
    ui.shot("login-light", full_page=False)
    page.fill("#id_username", "admin")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator(".alert-error")).to_contain_text("correct username and password")
    ui.login()

    # Synthetic first: its cards, the zero-limit tool-call quota hidden.
    expect(page.locator('#provider-tabs [data-provider="synthetic"]')).to_have_attribute("aria-selected", "true")
    expect(page.locator('[data-quota="synthetic:subscription"]')).to_be_visible()
    expect(page.locator('[data-quota="synthetic:rolling_5h"]')).to_be_visible()
    expect(page.locator('[data-quota="synthetic:free_tool_calls"]')).to_have_count(0)
    subscription = page.locator('[data-quota="synthetic:subscription"]')
    expect(subscription.locator(".badge")).to_have_text("Healthy")
    expect(subscription.locator(".countdown .live")).to_have_text(re.compile(r"^\d+h \d+m$"))
    expect(subscription.locator(".reset-at")).to_contain_text("Resets")
    expect(page.locator("#charts canvas")).to_have_count(1)
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    expect(page.locator('#chart-range [data-range="24h"]')).to_have_attribute("aria-pressed", "true")
    page.click('#chart-range [data-range="6h"]')
    page.wait_for_timeout(400)  # the chart's short entry animation
    ui.shot("dashboard-synthetic-light")
    chart_shot(page, "chart-synthetic-light")
    synthetic_light = chart_series(page)["synthetic"]
    lines = {s["label"]: s for s in synthetic_light}
    assert set(lines) == {"Subscription", "Search (hourly)", "Requests (5h rolling)", "Weekly credits"}
    assert len(set(colours(synthetic_light).values())) == 4  # a colour per quota
    # Resets are marked where the percent dropped: the subscription once, hourly search every hour.
    assert lines["Subscription"]["resets"] == 1
    assert lines["Search (hourly)"]["resets"] >= 4
    assert lines["Weekly credits"]["resets"] == 0
    assert lines["Subscription"]["tooltip"].strip() == "▲ reset (from 26.2%)"
    # The poll gap still breaks every line.
    assert all(s["gaps"] >= 1 and s["spanGaps"] is False for s in synthetic_light)

    page.click('#provider-tabs [data-provider="zai"]')
    expect(page.locator('[data-quota="zai:time_monthly"] .tools')).to_contain_text("search-prime")
    expect(page.locator('[data-quota^="synthetic:"]')).to_have_count(0)
    expect(page.locator("#plan-chip")).to_contain_text("pro")
    ui.shot("dashboard-zai-light")

    page.click('#provider-tabs [data-provider="both"]')
    expect(page.locator('[data-quota="zai:tokens_5h"]')).to_be_visible()
    expect(page.locator('[data-quota="synthetic:subscription"]')).to_be_visible()
    expect(page.locator("#charts canvas")).to_have_count(2)
    ui.shot("dashboard-both-light")
    both_light = chart_series(page)
    # A quota keeps its colour from tab to tab.
    assert colours(both_light["synthetic"]) == colours(synthetic_light)
    assert not set(colours(both_light["zai"]).values()) & set(colours(synthetic_light).values())

    # The tab and the theme survive a reload.
    page.click("header [data-theme-toggle]")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.reload()
    ui.loaded()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator('#provider-tabs [data-provider="both"]')).to_have_attribute("aria-selected", "true")
    expect(page.locator('[data-quota="zai:tokens_5h"]')).to_be_visible()
    ui.shot("dashboard-both-dark")
    both_dark = chart_series(page)
    assert colours(both_dark["synthetic"]).keys() == colours(synthetic_light).keys()
    assert colours(both_dark["synthetic"]) != colours(synthetic_light)  # the dark theme's shades

    page.click('#provider-tabs [data-provider="synthetic"]')
    with page.expect_response(lambda r: "/api/history" in r.url and "range=7d" in r.url) as history:
        page.click('#chart-range [data-range="7d"]')
    assert history.value.ok
    expect(page.locator('#chart-range [data-range="7d"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#charts canvas")).to_have_count(1)
    page.click('#chart-range [data-range="6h"]')
    expect(page.locator('#chart-range [data-range="6h"]')).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(400)  # the chart's short entry animation
    ui.shot("dashboard-synthetic-dark")
    chart_shot(page, "chart-synthetic-dark")
    assert colours(chart_series(page)["synthetic"]) == colours(both_dark["synthetic"])
    page.click('#provider-tabs [data-provider="zai"]')
    expect(page.locator('[data-quota="zai:tokens_5h"]')).to_be_visible()
    page.wait_for_timeout(400)
    ui.shot("dashboard-zai-dark")
    assert colours(chart_series(page)["zai"]) == colours(both_dark["zai"])

    # Password change: a wrong current password is an error in the dialog, not a redirect.
    dialog = page.locator("#password-dialog")
    page.click("header [data-open-password]")
    expect(dialog).to_be_visible()
    page.fill("#current-password", "wrong-password")
    page.fill("#new-password", NEW_PASSWORD)
    page.fill("#confirm-password", NEW_PASSWORD)
    page.click("#password-submit")
    expect(page.locator("#password-error")).to_have_text("The current password is incorrect.")
    expect(page).to_have_url(ui.base + "/")
    ui.shot("password-dialog-error-dark", full_page=False)
    # Chromium logs every 4xx fetch; this one was the point of the step.
    ui.errors = [e for e in ui.errors if "status of 403" not in e]
    page.fill("#current-password", PASSWORD)
    page.fill("#new-password", NEW_PASSWORD)
    page.fill("#confirm-password", NEW_PASSWORD)
    page.click("#password-submit")
    expect(page.locator("#password-success")).to_contain_text("Password changed")
    expect(dialog).to_be_hidden(timeout=5000)

    page.click("header form[action='/logout/'] button")
    expect(page).to_have_url(ui.base + "/login/")
    ui.login(NEW_PASSWORD)

    # Synthetic again (the saved tab): its cycles, sessions and poll history.
    expect(page.locator("#cycles-table tbody tr").first).to_be_visible()
    expect(page.locator("#sessions-table tbody tr")).to_have_count(2)
    expect(page.locator("#polls-table tbody tr")).to_have_count(10)
    expect(page.locator("#polls-pager")).to_contain_text("Showing 1–10 of 47")
    page.click('#polls-pager [aria-label="Page 2"]')
    expect(page.locator("#polls-pager")).to_contain_text("Showing 11–20 of 47")
    expect(page.locator("#polls-table tbody")).to_contain_text("Network error")
    ui.shot("dashboard-tables-light")
    assert ui.errors == []


def test_a_failed_poll_shows_a_banner_and_the_page_fits_a_phone(seeded, make_page) -> None:
    fail_last_poll("zai")
    fail_last_poll("synthetic", PollFailure(NETWORK_ERROR, "connection failed: Connection refused"))
    ui = make_page(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True)
    page = ui.page

    ui.goto("/")
    ui.shot("login-phone-dark", full_page=False)
    ui.login()

    banner = page.locator('#banners [data-banner="zai"]')
    expect(banner).to_contain_text("Z.ai: the last poll failed (Unauthorized)")
    expect(banner).to_contain_text("Check the API key")
    # The message is written as a sentence, as in the storage-error banner.
    synthetic = page.locator('#banners [data-banner="synthetic"]')
    expect(synthetic).to_contain_text("Synthetic: the last poll failed (Network error)")
    expect(synthetic).to_contain_text("Connection failed: Connection refused.")
    expect(page.locator('[data-quota="synthetic:subscription"]')).to_be_visible()
    expect(page.locator("#provider-tabs")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ui.shot("dashboard-phone-dark")
    ui.shot("dashboard-phone-dark-top", full_page=False)

    page.click('#provider-tabs [data-provider="zai"]')
    expect(page.locator('[data-quota="zai:time_monthly"]')).to_be_visible()
    expect(page.locator("#polls-table tbody tr").first).to_contain_text("Unauthorized")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ui.shot("dashboard-phone-zai-dark")
    assert ui.errors == []


def test_the_theme_follows_the_system_until_the_user_picks_one(admin_password: str, make_page) -> None:
    ui = make_page(color_scheme="dark")
    page = ui.page
    ui.goto("/login/")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.click("[data-theme-toggle]")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert page.evaluate("localStorage.getItem('syntrack.theme')") == "light"
    assert ui.errors == []


@pytest.fixture(scope="module", autouse=True)
def publish_screenshots() -> Iterator[None]:
    """After the run, copy the two showcase screenshots into docs/screenshots/ when asked to."""
    yield
    if os.environ.get("SYNTRACK_UPDATE_DOC_SCREENSHOTS") != "1":
        return
    docs = PROJECT / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    for source, target in [("dashboard-both-dark", "dashboard-dark"), ("dashboard-synthetic-light", "dashboard-light")]:
        if (SHOTS / f"{source}.png").exists():
            shutil.copyfile(SHOTS / f"{source}.png", docs / f"{target}.png")
