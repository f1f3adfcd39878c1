"""The dashboard page (templates/quotas/dashboard.html) and the login template."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.template.loader import render_to_string
from django.test import Client, RequestFactory

from quotas import preferences

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_bodies: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_bodies.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


@pytest.fixture
def signed_in(client: Client, django_user_model) -> Client:
    # The post-migrate bootstrap has already created "admin" (with "changeme").
    user, _ = django_user_model.objects.get_or_create(username="admin")
    user.set_password(PASSWORD)
    user.save()
    client.login(username="admin", password=PASSWORD)
    return client


def page_config(html: str) -> dict:
    start = html.index('<script id="dashboard-config" type="application/json">')
    body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(body)


def test_it_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_it_renders_cards_tabs_and_config_for_both_providers(providers_configured, signed_in: Client) -> None:
    response = signed_in.get("/")

    assert response.status_code == 200
    assert [t.name for t in response.templates][:3] == ["quotas/dashboard.html", "signed_in.html", "base.html"]
    html = response.content.decode()
    config = page_config(html)
    assert config["providers"] == [{"id": "synthetic", "name": "Synthetic"}, {"id": "zai", "name": "Z.ai"}]
    assert config["both"] is True
    assert config["settings"] == {"timezone": None, "hidden_insights": [], "theme": None}
    tabs = parse(html).find("button", role="tab")
    assert [t["data-provider"] for t in tabs] == ["synthetic", "zai", "both"]
    assert "syn_test_key" not in html and "zai-test-key" not in html


def test_it_shows_no_tabs_for_a_single_provider(settings, signed_in: Client) -> None:
    settings.ZAI_API_KEY = "zai-only-key-0123456789"

    html = signed_in.get("/").content.decode()

    assert page_config(html)["providers"] == [{"id": "zai", "name": "Z.ai"}]
    assert parse(html).find("button", role="tab") == []


def test_it_explains_what_to_do_when_no_provider_is_configured(signed_in: Client) -> None:
    html = signed_in.get("/").content.decode()

    assert "No provider configured" in html
    assert "SYNTHETIC_API_KEY" in html
    assert "Not polling" in html and "Loading…" not in html  # no script will ever replace it


def test_it_hands_the_saved_timezone_to_the_page(providers_configured, signed_in: Client) -> None:
    preferences.update({"timezone": "Asia/Kolkata"})

    config = page_config(signed_in.get("/").content.decode())

    assert config["settings"]["timezone"] == "Asia/Kolkata"


def test_it_has_no_inline_scripts_handlers_or_styles(providers_configured, signed_in: Client) -> None:
    tags = parse(signed_in.get("/").content.decode())

    scripts = tags.find("script")
    assert len(scripts) >= 3
    for attrs in scripts:
        # json_script data is not executable, so a strict CSP allows it.
        assert attrs.get("src") or attrs.get("type") == "application/json", attrs
    executable = [a for a in scripts if a.get("src")]
    assert all(a["src"].startswith("/static/") for a in executable)
    assert tags.script_bodies and all(body.lstrip().startswith("{") for body in tags.script_bodies)
    for tag, attrs in tags.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
    links = tags.find("link", rel="stylesheet")
    assert links and all(str(a["href"]).startswith("/static/") for a in links)


def test_it_loads_the_theme_before_paint_and_vendored_chart_js(providers_configured, signed_in: Client) -> None:
    html = signed_in.get("/").content.decode()

    head = html.split("</head>", 1)[0]
    assert '<script src="/static/js/theme.js"></script>' in head
    assert "/static/js/vendor/chart.umd.min.js" in html
    assert "https://" not in html.split("<body", 1)[1].split('id="dashboard-config"', 1)[0].replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_it_loads_one_entry_module_that_imports_every_dashboard_script(providers_configured, signed_in: Client) -> None:
    scripts = [a for a in parse(signed_in.get("/").content.decode()).find("script") if a.get("src")]
    srcs = [str(a["src"]) for a in scripts]
    modules = [a for a in scripts if a.get("type") == "module"]

    assert [str(a["src"]) for a in modules] == ["/static/js/dashboard/main.js"]
    # Chart.js is a deferred classic script before it: deferred scripts and modules run in order.
    chart = srcs.index("/static/js/vendor/chart.umd.min.js")
    assert chart < srcs.index("/static/js/dashboard/main.js") and "defer" in scripts[chart]
    # Every file under js/dashboard/ is reached from main.js through imports, none through a global.
    folder = settings.BASE_DIR / "static" / "js" / "dashboard"
    reached, todo = set(), ["main.js"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            text = (folder / name).read_text()
            assert "window.SynTrack" not in text, name
            todo += re.findall(r'^import [^;]* from "\./([\w-]+\.js)";$', text, flags=re.M)
    assert reached == {p.name for p in folder.glob("*.js")}


def test_it_has_a_logout_form_and_a_password_dialog(providers_configured, signed_in: Client) -> None:
    tags = parse(signed_in.get("/").content.decode())

    logout = tags.find("form", action="/logout/")
    assert logout and logout[0]["method"] == "post"
    assert tags.find("input", name="csrfmiddlewaretoken")
    assert tags.find("dialog", id="password-dialog")
    assert {a["id"] for a in tags.find("input", type="password")} == {
        "current-password",
        "new-password",
        "confirm-password",
    }


def test_the_default_password_banner_follows_the_context_flag(rf: RequestFactory, admin_user) -> None:
    request = rf.get("/")
    request.user = admin_user
    context = {"config": {"providers": []}, "providers": []}

    shown = render_to_string("quotas/dashboard.html", {**context, "default_password_warning": True}, request)
    hidden = render_to_string("quotas/dashboard.html", {**context, "default_password_warning": False}, request)

    assert 'id="default-password-banner"' in shown
    assert "changeme" in shown
    assert 'id="default-password-banner"' not in hidden


def test_the_login_form_posts_to_the_current_url_with_csrf_and_next(rf: RequestFactory) -> None:
    request = rf.get("/login/?next=/")

    tags = parse(render_to_string("accounts/login.html", {"form": AuthenticationForm(request), "next": "/"}, request))

    form = tags.find("form", method="post")
    assert form and form[0]["action"] == "/login/?next=/"
    assert tags.find("input", name="csrfmiddlewaretoken")
    assert tags.find("input", type="hidden", name="next", value="/")
    assert tags.find("input", name="username") and tags.find("input", name="password", type="password")
    assert all(a.get("src") for a in tags.find("script"))


def test_the_login_page_shows_the_form_error(rf: RequestFactory) -> None:
    request = rf.post("/login/", {"username": "admin", "password": "wrong"})
    form = AuthenticationForm(request, data={"username": "admin", "password": "wrong"})
    assert not form.is_valid()

    html = render_to_string("accounts/login.html", {"form": form, "next": "/"}, request)

    assert 'role="alert"' in html
    assert "Please enter a correct username and password" in html
    assert 'value="admin"' in html
