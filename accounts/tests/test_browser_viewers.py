"""End-to-end, in headless Chromium: tokens on the settings page, a viewer's view, the per-user theme.

Shares the Chromium fixture and seeding of quotas/tests/browser.py (skipped
there with a reason when Chromium or playwright is missing). Screenshots go
to test-artifacts/screenshots/viewer-*.png.
"""

from __future__ import annotations

import pytest

from accounts.models import ApiToken, User
from quotas.tests import browser as shared
from quotas.tests.browser import expect

admin_password = shared.admin_password
browser = shared.browser
make_page = shared.make_page
seeded = shared.seeded

pytestmark = [pytest.mark.django_db(transaction=True)]

VIEWER_PASSWORD = "viewer-long-passw0rd"


def sign_in(ui, username: str, password: str) -> None:
    ui.goto("/login/")
    ui.page.fill("#id_username", username)
    ui.page.fill("#id_password", password)
    ui.page.click("button[type=submit]")
    expect(ui.page).to_have_url(ui.base + "/")
    ui.loaded()


def no_horizontal_scroll(ui) -> bool:
    return ui.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_an_admin_creates_sees_once_and_revokes_a_token(seeded, make_page) -> None:
    ui = make_page(color_scheme="light")
    ui.login()
    ui.page.click("#alerts-settings-link")
    expect(ui.page.locator("#no-tokens")).to_be_visible()

    ui.page.fill("#id_token_name", "grafana")
    ui.page.click("#create-token-form button[type=submit]")
    value = ui.page.locator("#new-token-value")
    expect(value).to_contain_text("stk_")
    token = value.inner_text().strip()
    row = ApiToken.objects.get()
    expect(ui.page.locator("#token-list [data-token='grafana']")).to_contain_text(f"{row.prefix}…")
    ui.page.locator("#tokens").scroll_into_view_if_needed()
    ui.shot("viewer-admin-token-light", full_page=False)

    ui.goto("/settings/")
    assert token not in ui.page.content()  # shown once only
    expect(ui.page.locator("#new-token-value")).to_have_count(0)

    # The theme is the user's own: saved on the server, not only in this browser.
    ui.page.click("[data-theme-toggle]")
    expect(ui.page.locator("html[data-theme='dark']")).to_have_count(1)
    for _ in range(50):
        if User.objects.get(username="admin").display.get("theme") == "dark":
            break
        ui.page.wait_for_timeout(100)
    assert User.objects.get(username="admin").display == {"theme": "dark"}
    ui.page.locator("#tokens").scroll_into_view_if_needed()
    ui.shot("viewer-admin-token-dark", full_page=False)

    phone = make_page(color_scheme="light", viewport={"width": 390, "height": 844})
    phone.login()  # a fresh browser: the theme comes from the account
    expect(phone.page.locator("html[data-theme='dark']")).to_have_count(1)
    phone.goto("/settings/")
    assert no_horizontal_scroll(phone)
    phone.page.locator("#tokens").scroll_into_view_if_needed()
    phone.shot("viewer-admin-token-phone", full_page=False)

    ui.page.locator("#token-list [data-revoke-token]").click()
    expect(ui.page.locator(".alert-success")).to_contain_text("Revoked the token grafana.")
    expect(ui.page.locator("#no-tokens")).to_be_visible()
    assert not ApiToken.objects.exists()
    assert not ui.errors and not phone.errors, ui.errors + phone.errors


def test_a_viewer_sees_the_dashboard_but_not_the_settings(seeded, make_page) -> None:
    User.objects.create_user("viewer", password=VIEWER_PASSWORD)
    ui = make_page(color_scheme="dark")
    sign_in(ui, "viewer", VIEWER_PASSWORD)
    expect(ui.page.locator("#alerts-settings-link")).to_have_count(0)
    expect(ui.page.locator(".card").first).to_be_visible()
    ui.shot("viewer-dashboard", full_page=False)

    ui.goto("/settings/")
    expect(ui.page.locator("#error-title")).to_have_text("Only an admin can do this")
    ui.shot("viewer-settings-refused", full_page=False)
    assert not [e for e in ui.errors if "403" not in e], ui.errors
