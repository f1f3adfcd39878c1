"""End-to-end, in headless Chromium: the dashboard's settings and edge paths.

The timezone dialog, hiding insights, a session that ends while the page is
open, and the password dialog's own checks. Seeding and fixtures are shared
with test_browser.py through quotas/tests/browser.py (skipped there with a
reason when Chromium or playwright is missing).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.sessions.models import Session

from quotas.tests import browser as shared
from quotas.tests.browser import PASSWORD, expect

# The shared fixtures, under the names the tests ask for.
admin_password = shared.admin_password
browser = shared.browser
make_page = shared.make_page
seeded = shared.seeded

pytestmark = [pytest.mark.django_db(transaction=True)]

SUBSCRIPTION = '[data-quota="synthetic:subscription"]'


def api_json(ui, path: str) -> dict:
    """GET an API path with the page's own session cookie."""
    response = ui.page.request.get(ui.base + path)
    assert response.status == 200, (path, response.status)
    return response.json()


def reset_text(at: datetime, zone: str) -> str:
    """What a card's "Resets …" line says for ``at`` in ``zone`` (en-US, as fmtSmart formats it)."""
    local = at.astimezone(ZoneInfo(zone))
    now = datetime.now(ZoneInfo(zone))
    time = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
    if local.date() == now.date():
        return f"Resets today {time}"
    return f"Resets {local.strftime('%b')} {local.day}, {time}"


def normalized(text: str) -> str:
    # Chromium's ICU puts a narrow no-break space before AM/PM.
    return re.sub(r"\s", " ", text)


def without_http_errors(errors: list[str], status: int) -> list[str]:
    """Chromium logs every 4xx fetch to the console; drop the ones a test provoked on purpose."""
    return [e for e in errors if f"status of {status}" not in e]


def test_the_chosen_timezone_applies_to_every_time_and_persists(seeded, make_page) -> None:
    ui = make_page()  # the browser itself is in Europe/Berlin
    page = ui.page
    ui.login()
    page.click('#provider-tabs [data-provider="synthetic"]')
    card = page.locator(SUBSCRIPTION)
    expect(card).to_be_visible()
    quotas = api_json(ui, "/api/current?provider=synthetic")["quotas"]
    resets_at = datetime.fromisoformat(next(q["resets_at"] for q in quotas if q["key"] == "subscription"))
    assert resets_at - seeded == timedelta(hours=3)
    berlin = reset_text(resets_at, "Europe/Berlin")
    tokyo = reset_text(resets_at, "Asia/Tokyo")
    assert berlin != tokyo
    expect(page.locator("#page-sub")).to_have_text("Synthetic quotas: usage, resets and trends, in Europe/Berlin time.")
    assert normalized(card.locator(".reset-at").inner_text()) == berlin
    expect(card.locator(".reset-at")).to_have_attribute("title", re.compile(r"\(Europe/Berlin\)$"))

    page.click("#tz-btn")
    dialog = page.locator("#tz-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#tz-select")).to_have_value("")  # "this browser's zone"
    page.select_option("#tz-select", "Asia/Tokyo")
    with page.expect_request(lambda r: r.url.endswith("/api/settings") and r.method == "PUT") as put:
        page.click("#tz-form button[type=submit]")
    assert put.value.post_data_json == {"timezone": "Asia/Tokyo"}
    expect(dialog).to_be_hidden()

    expect(page.locator("#page-sub")).to_have_text("Synthetic quotas: usage, resets and trends, in Asia/Tokyo time.")
    expect(page.locator("#tz-label")).to_have_text(re.compile(r"^Tokyo\b"))
    expect(card.locator(".reset-at")).to_have_attribute("title", re.compile(r"\(Asia/Tokyo\)$"))
    assert normalized(card.locator(".reset-at").inner_text()) == tokyo
    assert api_json(ui, "/api/settings")["timezone"] == "Asia/Tokyo"

    page.reload()
    ui.loaded()
    expect(page.locator("#page-sub")).to_have_text("Synthetic quotas: usage, resets and trends, in Asia/Tokyo time.")
    assert normalized(card.locator(".reset-at").inner_text()) == tokyo
    page.click("#tz-btn")
    expect(page.locator("#tz-select")).to_have_value("Asia/Tokyo")

    # Back to the browser's own zone: stored as null.
    page.select_option("#tz-select", "")
    page.click("#tz-form button[type=submit]")
    expect(page.locator("#page-sub")).to_have_text("Synthetic quotas: usage, resets and trends, in Europe/Berlin time.")
    expect(card.locator(".reset-at")).to_have_attribute("title", re.compile(r"\(Europe/Berlin\)$"))
    assert normalized(card.locator(".reset-at").inner_text()) == berlin
    assert api_json(ui, "/api/settings")["timezone"] is None
    assert ui.errors == []


def test_a_hidden_insight_stays_hidden_until_show_all(seeded, make_page) -> None:
    ui = make_page()
    page = ui.page
    ui.login()
    page.click('#provider-tabs [data-provider="zai"]')  # Z.ai's 8 hours already give several cards
    cards = page.locator("#insights article.insight")
    expect(page.locator('#insights [data-insight="tool_breakdown"]')).to_be_visible()
    shown = cards.evaluate_all("(nodes) => nodes.map((n) => n.dataset.insight)")
    assert shown == ["getting_started", "plan", "tokens_per_call", "tool_breakdown"]
    show_all = page.locator("#show-hidden-insights")
    expect(show_all).to_be_hidden()

    card = page.locator('#insights [data-insight="plan"]')
    with page.expect_request(lambda r: r.url.endswith("/api/settings") and r.method == "PUT") as put:
        card.locator(".insight-hide").click()
    assert put.value.post_data_json == {"hidden_insights": ["plan"]}
    expect(card).to_have_count(0)
    expect(cards).to_have_count(3)
    expect(show_all).to_be_visible()
    expect(show_all).to_have_text("1 hidden · show all")
    assert api_json(ui, "/api/settings")["hidden_insights"] == ["plan"]

    page.reload()
    ui.loaded()
    expect(page.locator('#insights [data-insight="tool_breakdown"]')).to_be_visible()
    expect(card).to_have_count(0)
    expect(cards).to_have_count(3)
    expect(show_all).to_have_text("1 hidden · show all")

    # A second one. Hidden is hidden everywhere: Synthetic's only card gives way to a stand-in
    # that has no hide button of its own.
    page.locator('#insights [data-insight="getting_started"] .insight-hide').click()
    expect(page.locator('#insights [data-insight="getting_started"]')).to_have_count(0)
    expect(show_all).to_have_text("2 hidden · show all")
    assert api_json(ui, "/api/settings")["hidden_insights"] == ["getting_started", "plan"]
    page.click('#provider-tabs [data-provider="synthetic"]')
    stand_in = page.locator('#insights [data-insight="insights_hidden"]')
    expect(stand_in).to_contain_text("Insights hidden")
    expect(cards).to_have_count(1)
    expect(stand_in.locator(".insight-hide")).to_have_count(0)
    expect(show_all).to_have_text("2 hidden · show all")

    show_all.click()
    expect(page.locator('#insights [data-insight="getting_started"]')).to_be_visible()
    expect(stand_in).to_have_count(0)
    expect(show_all).to_be_hidden()
    assert api_json(ui, "/api/settings")["hidden_insights"] == []
    page.click('#provider-tabs [data-provider="zai"]')
    expect(card).to_be_visible()
    page.reload()
    ui.loaded()
    expect(page.locator('#insights [data-insight="tool_breakdown"]')).to_be_visible()
    expect(cards).to_have_count(4)
    expect(show_all).to_be_hidden()
    assert ui.errors == []


@pytest.mark.parametrize("ended_by", ["server", "cookies"])
def test_a_session_that_ends_while_the_page_is_open_leads_to_the_sign_in_page(seeded, make_page, ended_by) -> None:
    ui = make_page()
    page = ui.page
    ui.login()
    expect(page.locator(SUBSCRIPTION)).to_be_visible()
    assert Session.objects.count() == 1

    if ended_by == "server":
        Session.objects.all().delete()
    else:
        ui.context.clear_cookies()
    with page.expect_response(lambda r: "/api/current" in r.url) as current:
        page.click("#refresh-btn")
    assert current.value.status == 401
    expect(page).to_have_url(re.compile(re.escape(ui.base) + r"/login/\?next=(/|%2F)$"))
    expect(page.locator("#id_username")).to_be_visible()

    # Signing in again goes back to the dashboard.
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(ui.base + "/")
    ui.loaded()
    expect(page.locator(SUBSCRIPTION)).to_be_visible()
    assert without_http_errors(ui.errors, 401) == []


def test_the_password_dialog_checks_the_new_password_before_sending_it(seeded, make_page) -> None:
    ui = make_page()
    page = ui.page
    ui.login()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.method) if "/api/password" in r.url else None)

    dialog = page.locator("#password-dialog")
    error = page.locator("#password-error")
    page.click("header [data-open-password]")
    expect(dialog).to_be_visible()
    expect(error).to_be_hidden()

    def submit(current: str, new: str, confirm: str) -> None:
        page.fill("#current-password", current)
        page.fill("#new-password", new)
        page.fill("#confirm-password", confirm)
        page.click("#password-submit")

    submit(PASSWORD, "a-much-better-password", "a-much-better-passwort")
    expect(error).to_have_text("The new passwords do not match.")
    expect(dialog).to_be_visible()

    submit(PASSWORD, "short7!", "short7!")
    expect(error).to_have_text("The new password needs at least 8 characters.")

    submit("", "a-much-better-password", "a-much-better-password")
    expect(error).to_have_text("Enter your current password.")
    expect(page.locator("#password-success")).to_be_hidden()
    expect(dialog).to_be_visible()
    expect(page.locator("#password-submit")).to_be_enabled()
    assert sent == []

    # The listener does see a request that passes the checks (answered 403 here).
    submit("wrong-password", "a-much-better-password", "a-much-better-password")
    expect(error).to_have_text("The current password is incorrect.")
    assert sent == ["PUT"]
    assert without_http_errors(ui.errors, 403) == []


def test_a_timezone_or_tab_chosen_during_a_refresh_still_reaches_the_cards(seeded, make_page) -> None:
    """A refresh asked for while one runs is not dropped (it used to be, leaving stale cards)."""
    ui = make_page()
    page = ui.page
    ui.login()
    page.click('#provider-tabs [data-provider="synthetic"]')
    reset_at = page.locator(f"{SUBSCRIPTION} .reset-at")
    expect(reset_at).to_have_attribute("title", re.compile(r"\(Europe/Berlin\)$"))

    # Hold the next history request: the refresh has drawn the cards and is still running.
    held: list = []
    page.route("**/api/history*", lambda route: held.append(route) if len(held) < hold else route.continue_())

    def refresh_held() -> None:
        # The refresh asked for during the held one runs after it (eight requests): on a busy
        # CI machine with PostgreSQL that has taken over the default five seconds.
        expect(page.locator("body")).to_have_attribute("data-refreshing", "false", timeout=30_000)
        page.click("#refresh-btn")
        expect(page.locator("body")).to_have_attribute("data-refreshing", "true")
        expect(page.locator("#refresh-btn")).to_have_class(re.compile(r"\bspinning\b"))
        # The history request follows the current one; "refreshing" is set before it is sent.
        for _ in range(300):
            if len(held) == hold:
                return
            page.wait_for_timeout(50)
        raise AssertionError(f"the refresh's history request was not held ({len(held)} of {hold})")

    hold = 1
    refresh_held()
    page.click("#tz-btn")
    page.select_option("#tz-select", "Asia/Tokyo")
    page.click("#tz-form button[type=submit]")
    expect(page.locator("#page-sub")).to_contain_text("in Asia/Tokyo time.")
    assert len(held) == 1
    held[0].continue_()
    expect(reset_at).to_have_attribute("title", re.compile(r"\(Asia/Tokyo\)$"))

    hold = 2
    refresh_held()
    page.click('#provider-tabs [data-provider="zai"]')
    assert len(held) == 2
    held[1].continue_()
    expect(page.locator('[data-quota="zai:tokens_5h"]')).to_be_visible()
    expect(page.locator('[data-quota^="synthetic:"]')).to_have_count(0)
    expect(page.locator("#refresh-btn")).not_to_have_class(re.compile(r"\bspinning\b"))
    assert ui.errors == []
