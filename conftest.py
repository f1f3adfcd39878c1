"""Fixtures shared by every app's tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import responses as responses_lib

FIXTURES = Path(__file__).resolve().parent / "quotas" / "tests" / "fixtures" / "upstream"
SYNTHETIC_URL = "https://synthetic.test/v2/quotas"
ZAI_URL = "https://zai.test/api/monitor/usage/quota/limit"
SYNTHETIC_KEY = "syn_test_key_abcdef123456"
ZAI_KEY = "zai-test-key-0123456789abcdef"


def fixture_bytes(name: str) -> bytes:
    """Raw bytes of an upstream fixture, e.g. ``fixture_bytes("zai/v3_credit_lite.json")``."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes(name))


@pytest.fixture
def providers_configured(settings):
    """Both providers configured, pointing at hosts that only `responses` answers."""
    settings.SYNTHETIC_API_KEY = SYNTHETIC_KEY
    settings.ZAI_API_KEY = ZAI_KEY
    settings.SYNTHETIC_BASE_URL = "https://synthetic.test"
    settings.ZAI_BASE_URL = "https://zai.test/api"
    return settings


@pytest.fixture
def upstream():
    """`responses` mocking lib.http; unmatched requests fail the test."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def pytest_sessionstart(session: pytest.Session) -> None:
    # CI's PostgreSQL run must really use PostgreSQL, not fall back silently.
    if os.environ.get("SYNTRACK_REQUIRE_POSTGRES") == "1":
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            pytest.exit(f"SYNTRACK_REQUIRE_POSTGRES=1 but the database engine is {engine}", returncode=3)
