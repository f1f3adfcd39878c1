"""Shared by the browser tests: seeding, the Chromium fixture and a recording page.

Needs Debian's chromium at /usr/bin/chromium and the `playwright` package; a test
module importing this is skipped with a reason when either is missing.
"""

from __future__ import annotations

import json
import math
import os
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


YOUNG_MINUTES = 20


def young_synthetic_body(at: datetime, now: datetime) -> bytes:
    """A Synthetic payload on a database ``YOUNG_MINUTES`` old: the subscription is under half
    used but burns 25 requests a minute (out in ~30 min, reset in 3 h 15 min), hourly search
    hit its limit."""
    body = fixture_json("synthetic/v3_rolling_windows.json")
    minutes = YOUNG_MINUTES - (now - at).total_seconds() / 60
    body["subscription"] = {
        "limit": 1350,
        "requests": 100 + minutes * 25,
        "renewsAt": _iso(now + timedelta(hours=3, minutes=15)),
    }
    body["search"]["hourly"] = {
        "limit": 250,
        "requests": min(250, 200 + round(minutes * 5)),
        "renewsAt": _iso(now + timedelta(minutes=40)),
    }
    body["weeklyTokenLimit"]["nextRegenAt"] = _iso(at + timedelta(minutes=20))
    body["rollingFiveHourLimit"]["nextTickAt"] = _iso(at + timedelta(minutes=3))
    return json.dumps(body).encode()


def seed_young(now: datetime) -> datetime:
    """``YOUNG_MINUTES`` of polls every 2 minutes for both providers; returns the first poll's time."""
    first = now - timedelta(minutes=YOUNG_MINUTES)
    times = [first + timedelta(minutes=2 * k) for k in range(YOUNG_MINUTES // 2 + 1)]
    for provider, make_body in {"synthetic": young_synthetic_body, "zai": zai_body}.items():
        session = PollSession.objects.create(provider=provider, started_at=first, interval_seconds=120)
        for at in times:
            body = make_body(at, now)
            parsed = ADAPTERS[provider].parse(parse_json_object(body))
            with time_machine.travel(at, tick=False):
                store(Fetched(provider, parsed, None, body, 200), session)
    return first


def fail_last_poll(provider: str, failure: PollFailure | None = None) -> None:
    failure = failure or PollFailure("unauthorized", "HTTP 401: the API key was refused")
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


@pytest.fixture
def young(providers_configured, admin_password: str) -> datetime:
    """A database 20 minutes old (see seed_young); returns the first poll's time."""
    return seed_young(timezone.now().replace(microsecond=0))


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
