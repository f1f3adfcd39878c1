"""End-to-end, in headless Chromium: a database 20 minutes old.

Its cards say when a quota runs out before its reset (or is out) instead of
"Healthy"; its chart opens on the range that fits the data and starts where the
data starts; the header's dot and "Updated" time follow the last successful poll
of the providers shown; Poll now without a poller says so; and the page fits a
phone. Seeding and fixtures are shared through quotas/tests/browser.py (skipped
there with a reason when Chromium or playwright is missing).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from quotas.models import Outcome, PollAttempt
from quotas.tests import browser as shared
from quotas.tests.browser import YOUNG_MINUTES, chart_shot, expect, fail_last_poll

# The shared fixtures, under the names the tests ask for.
admin_password = shared.admin_password
browser = shared.browser
make_page = shared.make_page
young = shared.young

pytestmark = [pytest.mark.django_db(transaction=True)]

SUBSCRIPTION = '[data-quota="synthetic:subscription"]'
SEARCH = '[data-quota="synthetic:search_hourly"]'

# Per chart shown: the x axis as Chart.js laid it out, each line's fill, and what the tooltip
# says for a reading of 3.14159 % (1234567.891 requests) on the Subscription line.
CHART_AXES = """() => Object.fromEntries(Array.from(document.querySelectorAll("#charts canvas")).map((canvas) => {
  const chart = window.Chart.getChart(canvas);
  const index = chart.data.datasets.findIndex((ds) => ds.label === "Subscription");
  const tip = chart.options.plugins.tooltip.callbacks.label;
  return [canvas.closest("[data-chart]").dataset.chart, {
    min: chart.scales.x.min,
    max: chart.scales.x.max,
    fills: chart.data.datasets.map((ds) => ds.fill),
    tooltip: index < 0 ? null : tip({
      raw: { used: 1234567.891 }, parsed: { y: 3.14159 }, dataset: { label: "Subscription" }, datasetIndex: index,
    }),
  }];
}))"""


def clock(at: datetime, zone: str = "Europe/Berlin") -> str:
    """A time as the cards write it, en-US: "2:55 AM" today, "Dec 3, 12:02 AM" on another day."""
    local = at.astimezone(ZoneInfo(zone))
    text = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
    # The browser runs on the real clock: near midnight a run-out lands on the next day and gets its date.
    if local.date() != datetime.now(ZoneInfo(zone)).date():
        text = f"{local:%b} {local.day}, {text}"
    return text


def normalized(text: str) -> str:
    return re.sub(r"\s", " ", text)  # Chromium's ICU puts a narrow no-break space before AM/PM


def current_quota(ui, key: str) -> dict:
    response = ui.page.request.get(ui.base + "/api/current?provider=synthetic")
    return next(q for q in response.json()["quotas"] if q["key"] == key)


def mark_stale(route) -> None:
    """/api/providers as the server answers it, with Synthetic's last success called stale."""
    body = route.fetch().json()
    for provider in body["providers"]:
        if provider["id"] == "synthetic":
            provider["stale"] = True
    route.fulfill(json=body)


def test_a_young_database_gets_honest_badges_and_a_chart_that_fills_its_width(young, make_page) -> None:
    ui = make_page(color_scheme="light")
    page = ui.page
    ui.login()

    # The subscription runs out in ~30 min, its reset is over 3 h away: the badge says so, not "Healthy".
    subscription = page.locator(SUBSCRIPTION)
    quota = current_quota(ui, "subscription")
    assert quota["outlook"] == "runs_out_before_reset" and quota["status"] == "healthy"
    runs_out = datetime.fromisoformat(quota["exhausts_at"])
    badge = subscription.locator(".badge")
    expect(badge).to_have_count(1)
    assert normalized(badge.inner_text()) == f"Runs out {clock(runs_out)} · 3 h before reset"
    expect(subscription).to_have_class(re.compile(r"\bs-runs-out\b"))
    expect(subscription.locator("dd.warn .live")).to_have_text(re.compile(r"^in [23]\dm \d+s$"))
    assert "Healthy" not in subscription.inner_text()
    # Hourly search is at its limit.
    assert current_quota(ui, "search_hourly")["outlook"] == "exhausted"
    expect(page.locator(f"{SEARCH} .badge")).to_have_text("Exhausted")
    expect(page.locator(SEARCH)).to_have_class(re.compile(r"\bs-exhausted\b"))

    # 20 minutes of data: the 1h range, its axis from the first poll to now, every line filled.
    expect(page.locator('#chart-range [data-range="1h"]')).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(400)  # the chart's short entry animation
    axis = page.evaluate(CHART_AXES)["synthetic"]
    assert abs(axis["min"] - young.timestamp() * 1000) < 1000
    assert YOUNG_MINUTES * 60e3 <= axis["max"] - axis["min"] < (YOUNG_MINUTES + 2) * 60e3
    assert set(axis["fills"]) == {"origin"} and len(axis["fills"]) == 4
    assert axis["tooltip"] == " Subscription: 3.14% (1,234,567.9)"

    # Fresh polls of both providers: a green dot and the last poll's time.
    expect(page.locator("#status-dot")).to_have_attribute("data-level", "ok")
    expect(page.locator("#last-updated")).to_have_text(re.compile(r"^Updated \d{1,2}:\d{2}:\d{2}\s[AP]M$"))
    ui.shot("young-synthetic-light")
    chart_shot(page, "chart-young-light")

    # No poller runs: Poll now says so, politely, and the button comes back.
    page.click("#poll-now-btn")
    message = page.locator("#poll-message")
    expect(message).to_be_visible()
    expect(message).to_have_attribute("role", "status")
    expect(message).to_contain_text("No poller is running: start it with `manage.py poll`")
    expect(page.locator("#poll-now-btn")).to_have_text("Poll now")
    expect(page.locator("#poll-now-btn")).to_be_enabled()
    ui.errors = [e for e in ui.errors if "status of 409" not in e]

    # A range the user picks persists and wins over the automatic one; the axis still starts at the data.
    page.click('#chart-range [data-range="6h"]')
    page.click("header [data-theme-toggle]")
    page.reload()
    ui.loaded()
    expect(page.locator('#chart-range [data-range="6h"]')).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(400)
    assert abs(page.evaluate(CHART_AXES)["synthetic"]["min"] - young.timestamp() * 1000) < 1000
    page.click('#provider-tabs [data-provider="both"]')
    expect(page.locator("#charts canvas")).to_have_count(2)
    page.wait_for_timeout(400)
    axes = page.evaluate(CHART_AXES)
    assert set(axes["zai"]["fills"]) == {"origin"}
    ui.shot("young-both-dark")
    # Between phone and desktop the header takes a second row rather than pushing the page wider.
    for width in (800, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert ui.errors == []


def test_the_header_shows_a_failed_poll_and_the_page_fits_a_phone(young, make_page) -> None:
    fail_last_poll("zai")
    ui = make_page(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True)
    page = ui.page
    ui.login()
    dot = page.locator("#status-dot")
    updated = page.locator("#last-updated")

    # Synthetic polls fine; Z.ai's last poll failed: red, said in words too.
    page.click('#provider-tabs [data-provider="synthetic"]')
    expect(dot).to_have_attribute("data-level", "ok")
    page.click('#provider-tabs [data-provider="zai"]')
    expect(dot).to_have_attribute("data-level", "failed")
    expect(dot).to_have_class(re.compile(r"\bfailed\b"))
    expect(updated).to_have_text(re.compile(r"^Poll failed · updated \d{1,2}:\d{2}\s[AP]M$"))
    expect(updated).to_have_attribute("title", re.compile(r"the last one failed \(Unauthorized\)"))
    page.click('#provider-tabs [data-provider="both"]')
    expect(updated).to_have_text(re.compile(r"^Z\.ai poll failed · updated "))
    page.click('#provider-tabs [data-provider="synthetic"]')
    expect(dot).to_have_attribute("data-level", "ok")
    # The server calls Synthetic stale (no success within two intervals): amber, and said so.
    page.route("**/api/providers", mark_stale)
    page.click("#refresh-btn")
    expect(dot).to_have_attribute("data-level", "stale")
    expect(updated).to_have_text(re.compile(r"^Updated \d{1,2}:\d{2}\s[AP]M · stale$"))
    expect(updated).to_have_attribute("title", re.compile(r"older than two poll intervals"))
    page.unroute("**/api/providers")
    page.click("#refresh-btn")
    expect(dot).to_have_attribute("data-level", "ok")

    # The "Updated" time is on screen, the page never scrolls sideways, tiles go two a row.
    expect(updated).to_be_visible()
    box = updated.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    tiles = page.locator("#insights .stat-tile")
    expect(tiles.nth(2)).to_be_visible()
    first, second, third = (tiles.nth(i).bounding_box() for i in range(3))
    assert first["y"] == second["y"] and second["x"] > first["x"] + first["width"]
    assert third["y"] > first["y"] and third["x"] == first["x"]
    # A wide table scrolls inside its card instead.
    polls = page.locator("#polls-table").locator("xpath=..")
    assert polls.evaluate("(wrap) => wrap.scrollWidth > wrap.clientWidth")
    expect(page.locator("section:has(#polls-table) .scroll-hint")).to_contain_text("scroll the table sideways")
    ui.shot("young-phone-dark")
    ui.shot("young-phone-dark-top", full_page=False)
    polls.screenshot(path=str(shared.SHOTS / "young-phone-table-dark.png"))
    page.click("header [data-theme-toggle]")
    page.evaluate("window.scrollTo(0, 0)")
    ui.shot("young-phone-light-top", full_page=False)
    assert ui.errors == []


def test_a_storage_error_is_a_warning_about_our_database_not_a_failed_poll(young, make_page) -> None:
    # What the poller records once the database takes writes again (quotas/backlog.py): dated when
    # the first write was refused, so the answers written late are newer and the last poll is ok.
    latest = PollAttempt.objects.filter(provider="synthetic").latest("at")
    assert latest.outcome == Outcome.OK
    PollAttempt.objects.create(
        provider="synthetic",
        at=latest.at - timedelta(seconds=70),
        outcome=Outcome.STORAGE_ERROR,
        message="the database refused writes for 66 s (database is locked): 7 answer(s) kept and written late",
    )
    ui = make_page(color_scheme="light")
    page = ui.page
    ui.login()
    page.click('#provider-tabs [data-provider="synthetic"]')

    banner = page.locator('#banners [data-banner="synthetic"]')
    expect(banner).to_have_class(re.compile(r"\bbanner-warning\b"))
    expect(banner).to_contain_text("Synthetic: SynTrack's own database refused writes for a while")
    expect(banner).to_contain_text("The database refused writes for 66 s (database is locked)")
    expect(banner).not_to_contain_text("the last poll failed")
    # The data on screen is fresh: the answers were written, late. No "Poll failed" in the header.
    expect(page.locator("#status-dot")).to_have_attribute("data-level", "ok")
    expect(page.locator("#last-updated")).to_have_text(re.compile(r"^Updated "))
    ui.shot("storage-error-banner-light", full_page=False)
    assert ui.errors == []
