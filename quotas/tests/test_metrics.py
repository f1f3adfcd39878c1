"""GET /metrics (quotas.metrics): the Prometheus exposition of /api/current, who may scrape it, the failure counter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from prometheus_client.parser import text_string_to_metric_families

from accounts import tokens
from conftest import fixture_json, store_failure, store_payload
from quotas import demo, failures, metrics, retention
from quotas.models import PollAttempt

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
M = 1_000_000
# /api/current's field behind each quota metric, and how it becomes the metric's value.
QUOTA_METRICS = {
    "syntrack_quota_used": ("used", lambda v: v),
    "syntrack_quota_limit": ("limit", lambda v: v),
    "syntrack_quota_used_ratio": ("percent", lambda v: round(v / 100, 10)),
    "syntrack_quota_reset_timestamp_seconds": ("resets_at", lambda v: datetime.fromisoformat(v).timestamp()),
    "syntrack_quota_exhausts_timestamp_seconds": ("exhausts_at", lambda v: datetime.fromisoformat(v).timestamp()),
}

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(providers_configured) -> str:
    return tokens.create("prometheus")[1]


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, by (sample name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client, token: str | None = None, at: datetime = T0 + 5 * MINUTE) -> dict[tuple[str, frozenset], float]:
    with time_machine.travel(at, tick=False):
        response = client.get("/metrics", **(bearer(token) if token else {}))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def zai(tokens_used: float, resets_at: datetime) -> dict[str, Any]:
    """The v2 Z.ai payload: 5-hour tokens as given, no tool call this month (0 %)."""
    payload = fixture_json("zai/v2_weekly_and_level.json")
    tokens_5h = payload["data"]["limits"][0]
    tokens_5h.update(currentValue=tokens_used, nextResetTime=int(resets_at.timestamp() * 1000))
    del tokens_5h["remaining"], tokens_5h["percentage"]
    time_monthly = payload["data"]["limits"][2]
    time_monthly.update(currentValue=0, remaining=time_monthly["usage"], percentage=0, usageDetails=[])
    return payload


def store_both() -> None:
    """Z.ai running out of 5-hour tokens before the reset, a 0 % quota; Synthetic's free tool calls."""
    resets = T0 + timedelta(hours=3)
    for minutes, used in ((-60, 40 * M), (-30, 55 * M), (0, 70 * M)):
        store_payload("zai", zai(used, resets), T0 + minutes * MINUTE)
    store_payload("synthetic", fixture_json("synthetic/v2_free_tool_calls.json"), T0)


def test_every_quota_number_equals_api_current(client, token) -> None:
    store_both()
    got = scrape(client, token)
    with time_machine.travel(T0 + 5 * MINUTE, tick=False):
        current = client.get("/api/current?provider=both", **bearer(token)).json()

    checked = 0
    for provider, body in current.items():
        assert body["quotas"], provider
        for quota in body["quotas"]:
            labels = frozenset(
                {"provider": provider, "quota": quota["key"], "unit": quota["unit"], "kind": quota["kind"]}.items()
            )
            for name, (field, convert) in QUOTA_METRICS.items():
                value = quota[field]
                assert got.get((name, labels)) == (None if value is None else convert(value)), (name, labels)
                checked += value is not None
    quota_samples = [key for key in got if key[0] in QUOTA_METRICS]
    assert len(quota_samples) == checked
    # What the data makes sure of: a projection (exhausts_at), and a quota at 0 % that still has its series.
    tokens_5h = frozenset({"provider": "zai", "quota": "tokens_5h", "unit": "tokens", "kind": "reset"}.items())
    runs_out = datetime(2026, 3, 2, 12, 20, tzinfo=UTC)
    assert got["syntrack_quota_exhausts_timestamp_seconds", tokens_5h] == runs_out.timestamp()
    monthly = frozenset({"provider": "zai", "quota": "time_monthly", "unit": "calls", "kind": "reset"}.items())
    assert got["syntrack_quota_used_ratio", monthly] == 0.0
    assert got["syntrack_quota_used", monthly] == 0.0


def test_it_exports_poll_freshness_failures_and_the_version(client, token) -> None:
    store_both()
    store_failure(T0 + MINUTE, provider="synthetic", outcome="server_error")
    store_failure(T0 + 2 * MINUTE, provider="synthetic", outcome="server_error")
    store_failure(T0 + 3 * MINUTE, provider="zai", outcome="unauthorized")

    got = scrape(client, token)

    assert got["syntrack_poll_last_success_timestamp_seconds", frozenset({"provider": "zai"}.items())] == T0.timestamp()
    assert got["syntrack_poll_last_success_timestamp_seconds", frozenset({"provider": "synthetic"}.items())] == (
        T0.timestamp()
    )
    fails = {
        dict(labels)["provider"] + "/" + dict(labels)["outcome"]: v
        for (name, labels), v in got.items()
        if name == "syntrack_poll_failures_total"
    }
    # Every failure outcome of each provider has a series, at 0 until it happens.
    assert len(fails) == 2 * len(failures.FAILED)
    assert {k: v for k, v in fails.items() if v} == {"synthetic/server_error": 2.0, "zai/unauthorized": 1.0}
    assert got["syntrack_build_info", frozenset({"version": metrics.version()}.items())] == 1.0
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", metrics.version())  # read from pyproject.toml


def test_the_failure_counter_never_goes_down_when_old_attempts_are_pruned(client, token, settings) -> None:
    settings.SYNTRACK_RAW_RETENTION_DAYS = 30
    settings.SYNTRACK_READING_RETENTION_DAYS = 8
    now = T0 + 40 * DAY
    for days in (39, 38, 37):  # past the 31-day horizon
        store_failure(T0 + days * MINUTE, provider="zai", outcome="server_error")
    store_payload("zai", zai(1 * M, now + DAY), T0 + 39 * DAY)  # spared: the latest successful attempt
    store_failure(now - DAY, provider="zai", outcome="server_error")
    label = ("syntrack_poll_failures_total", frozenset({"provider": "zai", "outcome": "server_error"}.items()))

    before = scrape(client, token, at=now)[label]
    with time_machine.travel(now, tick=False):
        retention.Pruner().run()
    after = scrape(client, token, at=now)[label]
    store_failure(now + MINUTE, provider="zai", outcome="server_error")
    later = scrape(client, token, at=now + 2 * MINUTE)[label]

    assert PollAttempt.objects.filter(provider="zai", outcome="server_error").count() == 2  # three went
    assert (before, after, later) == (4.0, 4.0, 5.0)
    assert failures.totals()["zai", "server_error"] == 5


def test_a_second_prune_adds_to_the_tally(settings) -> None:
    settings.SYNTRACK_READING_RETENTION_DAYS = 8
    store_failure(T0, provider="synthetic", outcome="network_error")
    store_failure(T0 + MINUTE, provider="synthetic", outcome="network_error")
    with time_machine.travel(T0 + 40 * DAY, tick=False):
        retention.Pruner().run()  # the latest attempt stays
    store_failure(T0 + 41 * DAY, provider="synthetic", outcome="network_error")
    with time_machine.travel(T0 + 80 * DAY, tick=False):
        retention.Pruner().run()

    assert PollAttempt.objects.count() == 1
    assert failures.totals() == {("synthetic", "network_error"): 3}


def test_a_demo_wipe_forgets_the_pruned_failures_with_the_polls(settings) -> None:
    settings.SYNTRACK_READING_RETENTION_DAYS = 8
    store_failure(T0, provider="synthetic", outcome="network_error")
    store_failure(T0 + MINUTE, provider="synthetic", outcome="network_error")
    with time_machine.travel(T0 + 40 * DAY, tick=False):
        retention.Pruner().run()
    assert failures.totals() == {("synthetic", "network_error"): 2}

    demo.wipe()

    assert failures.totals() == {}


def test_it_is_not_served_without_a_token_unless_public(client, providers_configured) -> None:
    response = client.get("/metrics")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")  # the site's page, as for any unknown path
    assert client.post("/metrics").status_code == 404


def test_public_metrics_need_no_authentication(client, providers_configured, settings) -> None:
    settings.SYNTRACK_METRICS_PUBLIC = True
    store_both()

    got = scrape(client)

    assert (
        "syntrack_quota_limit",
        frozenset({"provider": "synthetic", "quota": "free_tool_calls", "unit": "calls", "kind": "reset"}.items()),
    ) in got


def test_with_a_token_it_needs_one(client, token) -> None:
    missing = client.get("/metrics")
    wrong = client.get("/metrics", **bearer("stk_" + "x" * 43))

    assert missing.status_code == 401
    assert "Bearer" in missing.json()["error"]
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "unknown or revoked API token"}
    assert scrape(client, token)[("syntrack_build_info", frozenset({"version": metrics.version()}.items()))] == 1.0


def test_a_signed_in_user_may_scrape(api, token) -> None:
    assert api.get("/metrics").status_code == 200


def test_only_get_and_head_are_allowed(client, token) -> None:
    response = client.post("/metrics", **bearer(token))

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json() == {"error": "method POST not allowed"}
    assert client.head("/metrics", **bearer(token)).status_code == 200


def test_a_provider_without_key_or_polls_is_left_out(client, settings) -> None:
    settings.ZAI_API_KEY = "zai-key"
    settings.SYNTHETIC_API_KEY = ""
    settings.SYNTRACK_METRICS_PUBLIC = True

    got = scrape(client)

    providers = {dict(labels).get("provider") for name, labels in got if name != "syntrack_build_info"}
    assert providers == {"zai"}
