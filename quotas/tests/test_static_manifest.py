"""The pages render with production's static storage after `collectstatic`.

Tests otherwise use plain StaticFilesStorage; a template naming a file that
collectstatic does not produce would only fail in production, with a 500.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

# What syntrack_site/settings.py names (test_settings swaps in plain storage).
MANIFEST = {"BACKEND": "syntrack_site.storage.StaticFilesStorage"}


@pytest.fixture
def collected(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": MANIFEST}
    call_command("collectstatic", "--noinput", verbosity=0, stdout=io.StringIO())
    return settings.STATIC_ROOT


def test_the_login_page_renders_with_hashed_static_names(collected) -> None:
    response = Client().get("/login/")

    assert response.status_code == 200
    assert b"/static/css/" in response.content
    assert (collected / "staticfiles.json").is_file()


def test_the_dashboard_renders_with_hashed_static_names(collected, providers_configured) -> None:
    user = get_user_model().objects.create_user("viewer", password="a-long-password")
    client = Client()
    client.force_login(user)

    response = client.get("/")

    assert response.status_code == 200
    assert b"chart.umd.min." in response.content


def test_the_dashboard_modules_import_each_other_by_hashed_name(collected, providers_configured) -> None:
    manifest = json.loads((collected / "staticfiles.json").read_text())["paths"]
    main = (collected / manifest["js/dashboard/main.js"]).read_text()
    user = get_user_model().objects.create_user("viewer", password="a-long-password")
    client = Client()
    client.force_login(user)

    page = client.get("/").content.decode()

    assert f'<script type="module" src="/static/{manifest["js/dashboard/main.js"]}">' in page
    imported = re.findall(r'from "\./([^"]+)"', main)
    assert "core.js" not in imported
    assert f"{manifest['js/dashboard/core.js'].rsplit('/', 1)[1]}" in imported
    # Every import, in every module, names a file that collectstatic wrote.
    for name, hashed in manifest.items():
        if name.startswith("js/dashboard/"):
            for target in re.findall(r'from "\./([^"]+)"', (collected / hashed).read_text()):
                assert (collected / hashed).with_name(target).is_file(), (name, target)
                assert re.search(r"\.[0-9a-f]{12}\.js$", target), (name, target)
