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
# The fields of each quota in /api/current (product.md §8): the contract.
CURRENT_QUOTA_FIELDS = frozenset(
    {
        "key",
        "label",
        "kind",
        "unit",
        "used",
        "limit",
        "remaining",
        "percent",
        "status",
        "resets_at",
        "seconds_until_reset",
        "rate_per_hour",
        "projected_used",
        "projected_percent",
        "exhausts_at",
        "seconds_until_exhausted",
        "outlook",
        "details",
    }
)


def fixture_bytes(name: str) -> bytes:
    """Raw bytes of an upstream fixture, e.g. ``fixture_bytes("zai/v3_credit_lite.json")``."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes(name))


@pytest.fixture(autouse=True)
def _no_settled_chart_buckets():
    """Each test starts without the settled chart buckets and poll counts a web worker remembers
    (quotas.history, quotas.attempts):
    a rolled-back test's roll-up ids come again in the next test, on SQLite."""
    from quotas import attempts, history

    history._SETTLED.clear()
    attempts._SETTLED.clear()


@pytest.fixture
def providers_configured(settings):
    """Both providers configured, pointing at hosts that only `responses` answers."""
    settings.SYNTHETIC_API_KEY = SYNTHETIC_KEY
    settings.ZAI_API_KEY = ZAI_KEY
    settings.SYNTHETIC_BASE_URL = "https://synthetic.test"
    settings.ZAI_BASE_URL = "https://zai.test/api"
    return settings


API_PASSWORD = "s3cret-passw0rd"


@pytest.fixture
def api_user(db):
    """The dashboard user ``alice`` (password ``API_PASSWORD``), with no Basic Auth verdict remembered."""
    from accounts.auth import basic_cache
    from accounts.models import User

    basic_cache.clear()
    return User.objects.create_user("alice", password=API_PASSWORD)


@pytest.fixture
def api(client, api_user, providers_configured):
    """A client signed in as ``api_user``, both providers configured."""
    client.force_login(api_user)
    return client


@pytest.fixture
def both_ok(upstream, providers_configured):
    """Both providers answer a good payload of the current generation, every time."""
    upstream.get(SYNTHETIC_URL, body=fixture_bytes("synthetic/v3_rolling_windows.json"))
    upstream.get(ZAI_URL, body=fixture_bytes("zai/v2_weekly_and_level.json"))
    return upstream


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


def store_payload(provider: str, payload: dict | bytes, at, session=None, latency_ms: int = 100):
    """Store an upstream answer as the poller would, as if polled at ``at``.

    A payload the adapter rejects is stored as that failure (drift keeps its body).
    """
    import time_machine

    from quotas.polling import store
    from quotas.providers import ADAPTERS, Fetched
    from quotas.providers.base import DRIFT, PollFailure, parse_json_object

    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    try:
        fetched = Fetched(provider, ADAPTERS[provider].parse(parse_json_object(body)), None, body, latency_ms)
    except PollFailure as failure:
        fetched = Fetched(provider, None, failure, body if failure.outcome == DRIFT else None, latency_ms)
    with time_machine.travel(at, tick=False):
        return store(fetched, session)


def store_quotas(at, *quotas, provider: str = "synthetic", session=None, latency_ms: int = 100):
    """Store a successful poll at ``at`` that reported exactly ``quotas``."""
    import time_machine

    from quotas.polling import store
    from quotas.providers import Fetched
    from quotas.providers.base import Parsed

    with time_machine.travel(at, tick=False):
        return store(Fetched(provider, Parsed(quotas=list(quotas)), None, b"{}", latency_ms), session)


def store_failure(at, provider: str = "synthetic", outcome: str = "unauthorized", session=None, body=None):
    """Store a failed poll at ``at``."""
    import time_machine

    from quotas.polling import store
    from quotas.providers import Fetched
    from quotas.providers.base import PollFailure

    messages = {"unauthorized": "HTTP 401: the API key was rejected", "server_error": "HTTP 502: server error"}
    failure = PollFailure(outcome, messages.get(outcome, outcome))
    with time_machine.travel(at, tick=False):
        return store(Fetched(provider, None, failure, body, 80), session)
