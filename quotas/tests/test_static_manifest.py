"""The pages render with production's static storage after `collectstatic`.

Tests otherwise use plain StaticFilesStorage; a template naming a file that
collectstatic does not produce would only fail in production, with a 500.
"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

MANIFEST = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}


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
