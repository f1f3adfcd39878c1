"""SYNTRACK_BASE_PATH: the site served under a sub-path by a proxy that strips it (deploy/nginx/syntrack.conf).

The proxy forwards /syntrack/login/ as /login/; every URL SynTrack writes (redirects, links,
static files, cookies, the API paths of the dashboard's scripts) must carry the prefix again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from django.urls import set_script_prefix

from accounts.models import User
from quotas.tests.helpers import PROJECT, poller_env, run_manage
from syntrack_site.config import Config, ConfigError

PASSWORD = "s3cret-passw0rd"
DASHBOARD_JS = PROJECT / "static" / "js" / "dashboard"


@pytest.fixture
def under_prefix(settings) -> Iterator[None]:
    """The settings settings.py derives from SYNTRACK_BASE_PATH=/syntrack (test_settings_follow_the_variable)."""
    settings.SYNTRACK_BASE_PATH = "/syntrack"
    settings.FORCE_SCRIPT_NAME = "/syntrack"
    settings.STATIC_URL = "/syntrack/static/"
    settings.SESSION_COOKIE_PATH = settings.CSRF_COOKIE_PATH = "/syntrack"
    # A WSGI server's handler sets the prefix per request; the test client's does not.
    set_script_prefix("/syntrack/")
    yield
    set_script_prefix("/")


@pytest.fixture
def signed_in(client: Client, under_prefix: None) -> Client:
    User.objects.create_user("alice", password=PASSWORD, is_staff=True)
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/syntrack/"
    return client


@pytest.mark.django_db
def test_the_login_redirect_carries_the_prefix(client: Client, under_prefix: None) -> None:
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/syntrack/login/?next=/syntrack/"


@pytest.mark.django_db
def test_the_login_page_posts_and_loads_static_files_under_the_prefix(client: Client, under_prefix: None) -> None:
    html = client.get("/login/?next=/syntrack/").content.decode()

    assert 'action="/syntrack/login/?next=/syntrack/"' in html
    assert re.search(r'src="/syntrack/static/js/theme[^"]*\.js"', html)
    assert 'src="/static/' not in html and 'href="/static/' not in html


@pytest.mark.django_db
def test_the_dashboard_gives_its_scripts_the_prefixed_root(signed_in: Client) -> None:
    response = signed_in.get("/")
    html = response.content.decode()
    config = json.loads(re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', html)[1])

    assert config["root"] == "/syntrack/" and config["login_url"] == "/syntrack/login/"
    assert re.search(r'src="/syntrack/static/js/dashboard/main[^"]*\.js"', html)
    assert 'href="/syntrack/settings/"' in html and 'action="/syntrack/logout/"' in html
    assert not re.search(r'(href|action|src)="/(?!syntrack/)', html)


@pytest.mark.django_db
def test_cookies_are_scoped_to_the_prefix(signed_in: Client) -> None:
    assert signed_in.cookies["sessionid"]["path"] == "/syntrack"
    signed_in.get("/settings/")
    assert signed_in.cookies["csrftoken"]["path"] == "/syntrack"


@pytest.mark.django_db
def test_the_api_answers_under_the_prefix(signed_in: Client) -> None:
    assert signed_in.get("/api/providers").status_code == 200
    missing = signed_in.get("/api/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    logout = signed_in.post("/logout/")
    assert logout["Location"] == "/syntrack/login/"


def test_every_api_path_in_the_scripts_goes_through_the_prefixing_wrapper() -> None:
    """core.js `api()` puts ROOT in front; a bare fetch("/api/…") would miss the prefix."""
    for script in DASHBOARD_JS.glob("*.js"):
        source = script.read_text()
        for match in re.finditer(r'"/api/', source):
            before = source[max(0, match.start() - 8) : match.start()]
            context = source[match.start() - 30 : match.end() + 20]
            assert before.endswith(("api(", "api(q(", "q(")), f"{script.name}: {context}"
        if script.name != "core.js":
            assert "fetch(" not in source, f"{script.name} fetches without core.js api()"
        assert not re.search(r'location\.(assign|replace|href)\s*\(?\s*=?\s*"/', source), script.name
    assert "fetch(ROOT + path" in (DASHBOARD_JS / "core.js").read_text()


@pytest.mark.parametrize(
    ("value", "expected"), [("", ""), ("/", ""), ("/syntrack", "/syntrack"), ("/a/b-c_d", "/a/b-c_d")]
)
def test_good_base_paths(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("SYNTRACK_BASE_PATH", value)
    assert Config().base_path("SYNTRACK_BASE_PATH") == expected


@pytest.mark.parametrize("value", ["syntrack", "/syntrack/", "/a/../b", "/a//b", "/./a", "/a b", "/a?x=1", "/a#b"])
def test_bad_base_paths_are_one_line_errors(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SYNTRACK_BASE_PATH", value)
    with pytest.raises(ConfigError, match=r"^SYNTRACK_BASE_PATH must be a path such as /syntrack") as error:
        Config().base_path("SYNTRACK_BASE_PATH")
    assert "\n" not in str(error.value)


def test_settings_follow_the_variable(tmp_path: Path) -> None:
    env = {**poller_env(), "SYNTRACK_BASE_PATH": "/syntrack", "SYNTRACK_DB_PATH": str(tmp_path / "x.db")}
    names = ["FORCE_SCRIPT_NAME", "STATIC_URL", "SESSION_COOKIE_PATH", "CSRF_COOKIE_PATH", "SYNTRACK_BASE_PATH"]
    code = f"from django.conf import settings as s; import json; print(json.dumps([getattr(s, n) for n in {names!r}]))"
    result = run_manage("shell", "-c", code, env=env)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == ["/syntrack", "/syntrack/static/", "/syntrack", "/syntrack", "/syntrack"]


def test_a_bad_base_path_stops_manage_py_with_one_line(tmp_path: Path) -> None:
    env = {**poller_env(), "SYNTRACK_BASE_PATH": "/syntrack/", "SYNTRACK_DB_PATH": str(tmp_path / "x.db")}
    result = run_manage("check", env=env)

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "SYNTRACK_BASE_PATH must be a path" in result.stderr
