"""End-to-end: the dashboard and login page in a real (headless) Chromium.

Needs Debian's chromium at /usr/bin/chromium and the `playwright` package;
skipped with a reason when either is missing. Screenshots go to
test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone

from conftest import fixture_json
from quotas.models import PollSession
from quotas.polling import store
from quotas.providers import ADAPTERS, Fetched
from quotas.providers.base import NETWORK_ERROR, PollFailure, parse_json_object

# Playwright's sync API runs an event loop in this thread; the ORM calls made
# here (seeding, the live server's own thread aside) are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
PROJECT = Path(__file__).resolve().parents[2]
SHOTS = PROJECT / "test-artifacts" / "screenshots"
PASSWORD = "browser-test-password"
NEW_PASSWORD = "a-much-better-password"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

expect = sync_api.expect
pytestmark = [pytest.mark.django_db(transaction=True)]


# ---------------------------------------------------------------- seeding


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def synthetic_body(at: datetime, now: datetime) -> bytes:
    """The current Synthetic payload at ``at``: a subscription reset 2 h ago, hourly search resets."""
    body = fixture_json("synthetic/v3_rolling_windows.json")
    hours_ago = (now - at).total_seconds() / 3600
    reset = now - timedelta(hours=2)
    if at < reset:
        body["subscription"] = {
            "limit": 1350,
            "requests": round(120 + (8 - hours_ago) * 40, 1),
            "renewsAt": _iso(reset),
        }
    else:
        used = 5 + (2 - hours_ago) * 98.05
        body["subscription"] = {"limit": 1350, "requests": round(used, 1), "renewsAt": _iso(now + timedelta(hours=3))}
    next_hour = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    body["search"]["hourly"] = {"limit": 250, "requests": 2 + at.minute // 4, "renewsAt": _iso(next_hour)}
    credits = 16 - (8 - hours_ago) * 0.6
    body["weeklyTokenLimit"].update(
        remainingCredits=f"${credits:.2f}",
        percentRemaining=round(credits / 24 * 100, 2),
        nextRegenAt=_iso(at + timedelta(minutes=20)),
    )
    body["rollingFiveHourLimit"].update(
        remaining=int(480 - (8 - hours_ago) * 14.5 - 20 * math.sin(hours_ago)),
        nextTickAt=_iso(at + timedelta(minutes=3)),
    )
    return json.dumps(body).encode()


def zai_body(at: datetime, now: datetime) -> bytes:
    body = fixture_json("zai/v2_weekly_and_level.json")
    hours_ago = (now - at).total_seconds() / 3600
    tokens, weekly, monthly = body["data"]["limits"]
    used_5h = 2_000_000 + (8 - hours_ago) * 950_000
    tokens.update(currentValue=used_5h, remaining=80_000_000 - used_5h, nextResetTime=_ms(now + timedelta(hours=2)))
    tokens["percentage"] = round(used_5h / 80_000_000 * 100)
    used_week = 200_000_000 + (8 - hours_ago) * 4_500_000
    weekly.update(currentValue=used_week, remaining=400_000_000 - used_week, nextResetTime=_ms(now + timedelta(days=4)))
    weekly["percentage"] = round(used_week / 400_000_000 * 100)
    calls = int(40 + (8 - hours_ago) * 3.6)
    monthly.update(
        currentValue=calls,
        remaining=1000 - calls,
        percentage=round(calls / 10),
        nextResetTime=_ms(now + timedelta(days=12)),
    )
    monthly["usageDetails"] = [
        {"modelCode": "search-prime", "usage": calls * 6 // 10},
        {"modelCode": "web-reader", "usage": calls * 3 // 10},
        {"modelCode": "zread", "usage": calls - calls * 6 // 10 - calls * 3 // 10},
    ]
    return json.dumps(body).encode()


BODIES = {"synthetic": synthetic_body, "zai": zai_body}


def seed(now: datetime) -> None:
    """Eight hours of polls for both providers: two sessions, a gap with a failed poll, resets."""
    gap = (now - timedelta(hours=3, minutes=40), now - timedelta(hours=3))
    times = [now - timedelta(minutes=10 * k) for k in range(48, -1, -1)]
    times = [t for t in times if not gap[0] < t < gap[1]]
    for provider, make_body in BODIES.items():
        earlier = PollSession.objects.create(provider=provider, started_at=times[0], interval_seconds=600)
        later = None
        for at in times:
            if at >= gap[1] and later is None:
                earlier.close(gap[0])
                later = PollSession.objects.create(provider=provider, started_at=at, interval_seconds=600)
            body = make_body(at, now)
            parsed = ADAPTERS[provider].parse(parse_json_object(body))
            with time_machine.travel(at, tick=False):
                store(Fetched(provider, parsed, None, body, 180 + at.minute * 3), later or earlier)
        failure = PollFailure(NETWORK_ERROR, "Connection timed out after 30 s")
        with time_machine.travel(gap[0] + timedelta(minutes=15), tick=False):
            store(Fetched(provider, None, failure, None, None), earlier)


def fail_last_poll(provider: str) -> None:
    failure = PollFailure("unauthorized", "HTTP 401: the API key was refused")
    store(Fetched(provider, None, failure, None, 95))


CHART_SERIES = """() => Object.fromEntries(Array.from(document.querySelectorAll("#charts canvas")).map((canvas) => {
  const chart = window.Chart.getChart(canvas);
  return [canvas.closest("[data-chart]").dataset.chart, chart.data.datasets.map((ds) => ({
    label: ds.label,
    color: ds.borderColor,
    spanGaps: ds.spanGaps,
    gaps: ds.data.filter((p) => p.y === null).length,
    resets: ds.data.filter((p) => p.reset).length,
    tooltip: chart.options.plugins.tooltip.callbacks.afterLabel({ raw: { reset: true, from: 26.2 } }),
  }))];
}))"""


def chart_series(page) -> dict[str, list[dict]]:
    """Per provider shown, each chart line: label, colour, gap and reset counts."""
    return page.evaluate(CHART_SERIES)


def chart_shot(page, name: str) -> None:
    """The usage chart alone; then back to the top, so full-page shots keep the header in place."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#charts").screenshot(path=str(SHOTS / f"{name}.png"))
    page.evaluate("window.scrollTo(0, 0)")


def colours(series: list[dict]) -> dict[str, str]:
    return {s["label"]: s["color"] for s in series}


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def admin_password(db: None) -> str:
    user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"is_staff": True})
    user.set_password(PASSWORD)
    user.save()
    return PASSWORD


@pytest.fixture
def seeded(providers_configured, admin_password: str) -> datetime:
    now = timezone.now().replace(microsecond=0)
    seed(now)
    return now


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class Page:
    """A browser page that records console errors (CSP violations among them)."""

    def __init__(self, browser, base_url: str, **context_options: object) -> None:
        options = {"viewport": {"width": 1280, "height": 900}, "timezone_id": "Europe/Berlin", "locale": "en-US"}
        options.update(context_options)
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self.base = base_url
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.set_default_timeout(10_000)

    def _console(self, message) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.errors.append(f"console {message.type}: {message.text}")

    def goto(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        # The strict policy is on, so any inline script or style would show up in self.errors.
        assert "default-src 'self'" in response.headers.get("content-security-policy", "")

    def login(self, password: str = PASSWORD) -> None:
        self.goto("/")
        expect(self.page).to_have_url(self.base + "/login/?next=/")
        self.page.fill("#id_username", "admin")
        self.page.fill("#id_password", password)
        self.page.click("button[type=submit]")
        expect(self.page).to_have_url(self.base + "/")
        self.loaded()

    def loaded(self) -> None:
        expect(self.page.locator("body[data-loaded='true']")).to_have_count(1)

    def shot(self, name: str, full_page: bool = True) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def make_page(browser, live_server) -> Iterator:
    pages: list[Page] = []

    def make(**options: object) -> Page:
        page = Page(browser, live_server.url, **options)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()


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
    ui = make_page(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True)
    page = ui.page

    ui.goto("/")
    ui.shot("login-phone-dark", full_page=False)
    ui.login()

    banner = page.locator('#banners [data-banner="zai"]')
    expect(banner).to_contain_text("Z.ai: the last poll failed (Unauthorized)")
    expect(banner).to_contain_text("Check the API key")
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
