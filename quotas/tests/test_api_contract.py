"""The JSON API contract (product.md §8): every endpoint, every field, every bad parameter."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.auth import basic_cache
from accounts.models import User
from conftest import CURRENT_QUOTA_FIELDS, fixture_json, store_failure, store_payload
from quotas.models import PollAttempt, PollSession, QuotaReading
from quotas.providers import ADAPTERS

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 8, 25, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PASSWORD = "s3cret-passw0rd"
ISO = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")

GET_ENDPOINTS = [
    "/api/providers",
    "/api/current",
    "/api/history",
    "/api/cycles",
    "/api/summary",
    "/api/sessions",
    "/api/insights",
    "/api/polls",
]
PER_PROVIDER = ["/api/current", "/api/history", "/api/cycles", "/api/summary", "/api/insights"]
LISTS = ["/api/sessions", "/api/polls"]

CYCLE_FIELDS = {"id", "quota", "started_at", "ended_at", "active", "limit", "peak_used", "consumed", "resets_at"}
SUMMARY_FIELDS = {
    "key",
    "completed_cycles",
    "avg_consumed_per_cycle",
    "max_consumed_per_cycle",
    "avg_peak_percent",
    "total_consumed",
    "tracking_since",
}
SESSION_FIELDS = {
    "id",
    "provider",
    "started_at",
    "ended_at",
    "active",
    "interval_seconds",
    "polls_ok",
    "polls_failed",
    "quotas",
}
INSIGHT_FIELDS = {"key", "title", "value", "sublabel", "description", "severity"}
POLL_FIELDS = {"id", "provider", "at", "outcome", "drift", "latency_ms", "message"}
OUTCOMES = {"ok", "drift", "unauthorized", "rate_limited", "server_error", "network_error", "invalid_response"}


# --- data -------------------------------------------------------------------


def poll(provider: str, payload: dict[str, Any], at: datetime, session: PollSession | None = None) -> PollAttempt:
    return store_payload(provider, payload, at, session, latency_ms=120)


def fail(provider: str, at: datetime, session: PollSession | None = None) -> PollAttempt:
    return store_failure(at, provider, session=session)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def zai(tokens_used: float, resets_at: datetime) -> dict[str, Any]:
    payload = fixture_json("zai/v2_weekly_and_level.json")
    tokens_5h = payload["data"]["limits"][0]
    tokens_5h.update(currentValue=tokens_used, nextResetTime=ms(resets_at))
    del tokens_5h["remaining"], tokens_5h["percentage"]
    return payload


def synthetic(requests: float) -> dict[str, Any]:
    payload = fixture_json("synthetic/v3_rolling_windows.json")
    payload["subscription"]["requests"] = requests
    return payload


def add_polls(start: datetime, count: int, step: timedelta = timedelta(minutes=1)) -> None:
    """``count`` polls of each provider from ``start``, in two sessions, with one reset of Z.ai's 5-hour tokens."""
    sessions = {
        pid: PollSession.objects.create(provider=pid, started_at=start, interval_seconds=60) for pid in ADAPTERS
    }
    half = count // 2
    for i in range(count):
        at = start + i * step
        poll("synthetic", synthetic(10 + i), at, sessions["synthetic"])
        if i < half:
            poll("zai", zai(40_000_000 + i * 1_000_000, start + half * step), at, sessions["zai"])
        else:
            poll("zai", zai(1_000_000 * (i - half + 1), start + 5 * HOUR), at, sessions["zai"])
    fail("zai", start + count * step, sessions["zai"])
    sessions["synthetic"].close(start + count * step)


@pytest.fixture(autouse=True)
def frozen() -> time_machine.Coordinates:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def fresh_basic_cache() -> None:
    basic_cache.clear()


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def api(client: Client, user: User, providers_configured) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def data() -> None:
    add_polls(NOW - 3 * HOUR, 6, step=20 * timedelta(minutes=1))


def get(client: Client, path: str, **params: Any) -> Any:
    response = client.get(path, params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def times_in(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every (key, value) whose key looks like a time field, at any depth."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += times_in(v, k)
    elif isinstance(value, list):
        for v in value:
            found += times_in(v, key)
    elif key.endswith("_at") or key in ("at", "tracking_since"):
        found.append((key, value))
    return found


def assert_iso_times(body: Any) -> None:
    for key, value in times_in(body):
        assert value is None or ISO.match(value), f"{key}={value!r} is not ISO-8601 UTC with whole seconds"


# --- authentication and methods ----------------------------------------------


@pytest.mark.parametrize("path", [*GET_ENDPOINTS, "/api/settings"])
def test_it_answers_401_without_credentials(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize("path", [*GET_ENDPOINTS, "/api/settings"])
def test_it_answers_401_to_wrong_basic_credentials(client: Client, user: User, path: str) -> None:
    token = base64.b64encode(b"alice:not-the-password").decode()
    response = client.get(path, HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_basic_auth_opens_every_endpoint(
    client: Client, user: User, providers_configured, data: None, path: str
) -> None:
    token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert client.get(path, HTTP_AUTHORIZATION=f"Basic {token}").status_code == 200


@pytest.mark.parametrize("path", [*GET_ENDPOINTS, "/api/status"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_read_only_endpoints_answer_405_to_writes(api: Client, path: str, method: str) -> None:
    response = getattr(api, method)(path)
    assert response.status_code == 405
    assert set(response.json()) == {"error"}
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_head_is_allowed(api: Client, path: str) -> None:
    assert api.head(path).status_code == 200


# --- /api/status ----------------------------------------------------------------


def test_status_needs_no_login_and_costs_one_query(client: Client, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        response = client.get("/api/status")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_status_answers_503_when_the_database_fails(client: Client, monkeypatch) -> None:
    def broken_cursor() -> None:
        raise DatabaseError("database is gone")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/api/status")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


# --- /api/providers ---------------------------------------------------------------


def test_providers_lists_both_with_their_state(api: Client, data: None) -> None:
    body = get(api, "/api/providers")
    assert [p["id"] for p in body["providers"]] == ["synthetic", "zai"]
    for entry in body["providers"]:
        assert {"id", "name", "configured", "last_poll_at", "last_status"} <= set(entry)
    synthetic_entry, zai_entry = body["providers"]
    assert synthetic_entry["name"] == "Synthetic"
    assert zai_entry["name"] == "Z.ai"
    assert synthetic_entry["configured"] is True
    assert synthetic_entry["last_status"] == "ok"
    assert zai_entry["last_status"] == "unauthorized"
    assert zai_entry["last_poll_at"] == "2026-08-24T23:00:00Z"
    assert_iso_times(body)


def test_providers_tells_which_are_configured(client: Client, user: User, settings) -> None:
    settings.ZAI_API_KEY = "zai-key-0123456789"
    client.force_login(user)
    body = get(client, "/api/providers")
    assert {p["id"]: p["configured"] for p in body["providers"]} == {"synthetic": False, "zai": True}
    assert {p["id"]: p["last_poll_at"] for p in body["providers"]} == {"synthetic": None, "zai": None}


# --- /api/current -----------------------------------------------------------------


def test_current_has_every_field(api: Client, data: None) -> None:
    body = get(api, "/api/current", provider="zai")
    assert {"provider", "captured_at", "plan", "drift", "last_poll", "quotas"} <= set(body)
    assert body["provider"] == "zai"
    assert body["captured_at"] == "2026-08-24T22:40:00Z"
    assert body["plan"] == "pro"
    assert body["drift"] is False
    assert {"at", "outcome", "message"} <= set(body["last_poll"])
    assert body["last_poll"]["outcome"] == "unauthorized"
    assert [q["key"] for q in body["quotas"]] == ["tokens_5h", "tokens_weekly", "time_monthly"]
    for quota in body["quotas"]:
        assert set(quota) >= CURRENT_QUOTA_FIELDS
        assert quota["kind"] in ("reset", "rolling")
        assert quota["status"] in ("healthy", "warning", "danger", "critical", "unknown")
        assert isinstance(quota["details"], dict)
    tokens = body["quotas"][0]
    assert (tokens["used"], tokens["limit"], tokens["remaining"]) == (3_000_000, 80_000_000, 77_000_000)
    assert tokens["percent"] == 3.75
    assert tokens["status"] == "healthy"
    assert tokens["resets_at"] == "2026-08-25T02:00:00Z"
    assert tokens["seconds_until_reset"] == 2 * 3600
    tools = body["quotas"][2]["details"]["tools"]
    assert {"name": "search-prime", "used": 40} in [{"name": t["name"], "used": t["used"]} for t in tools]
    assert_iso_times(body)


def test_current_of_synthetic_has_rolling_windows(api: Client, data: None) -> None:
    body = get(api, "/api/current", provider="synthetic")
    keys = {q["key"]: q for q in body["quotas"]}
    assert {"subscription", "search_hourly", "rolling_5h", "weekly_credits"} <= set(keys)
    assert keys["rolling_5h"]["kind"] == "rolling"
    assert keys["subscription"]["used"] == 15
    assert keys["subscription"]["kind"] == "reset"
    assert_iso_times(body)


def test_current_defaults_to_the_first_configured_provider(api: Client, data: None) -> None:
    assert get(api, "/api/current")["provider"] == "synthetic"


def test_the_default_follows_the_configuration(client: Client, user: User, settings, data: None) -> None:
    settings.ZAI_API_KEY = "zai-key-0123456789"
    client.force_login(user)
    assert get(client, "/api/current")["provider"] == "zai"
    assert get(client, "/api/history")["provider"] == "zai"


def test_without_any_provider_configured_an_explicit_choice_is_needed(client: Client, user: User) -> None:
    client.force_login(user)
    for path in PER_PROVIDER:
        response = client.get(path)
        assert response.status_code == 400
        assert "provider" in response.json()["error"]
    assert get(client, "/api/current", provider="zai")["quotas"] == []


def test_an_unconfigured_provider_is_a_valid_choice_with_an_empty_body(client: Client, user: User, settings) -> None:
    settings.SYNTHETIC_API_KEY = "syn_key_0123456789"
    client.force_login(user)
    body = get(client, "/api/current", provider="zai")
    assert body == {
        "provider": "zai",
        "captured_at": None,
        "plan": None,
        "drift": False,
        "last_poll": None,
        "quotas": [],
    }


def test_current_before_the_first_poll(api: Client) -> None:
    body = get(api, "/api/current", provider="synthetic")
    assert body["captured_at"] is None
    assert body["quotas"] == []


@pytest.mark.parametrize("path", PER_PROVIDER)
def test_both_answers_each_provider_with_its_single_body(api: Client, data: None, path: str) -> None:
    both = get(api, path, provider="both")
    assert set(both) == {"synthetic", "zai"}
    for provider in ("synthetic", "zai"):
        assert both[provider] == get(api, path, provider=provider)


@pytest.mark.parametrize("path", LISTS)
def test_both_answers_each_provider_for_lists_too(api: Client, data: None, path: str) -> None:
    both = get(api, path, provider="both")
    assert set(both) == {"synthetic", "zai"}
    for provider in ("synthetic", "zai"):
        assert both[provider] == get(api, path, provider=provider)


def test_both_works_with_one_provider_configured(client: Client, user: User, settings, data: None) -> None:
    settings.SYNTHETIC_API_KEY = "syn_key_0123456789"
    client.force_login(user)
    both = get(client, "/api/current", provider="both")
    assert set(both) == {"synthetic", "zai"}
    assert both["zai"]["provider"] == "zai"


# --- /api/history -------------------------------------------------------------------


def test_history_has_every_field(api: Client, data: None) -> None:
    body = get(api, "/api/history", provider="zai", range="6h")
    assert {"provider", "range", "series", "gaps"} <= set(body)
    assert (body["provider"], body["range"]) == ("zai", "6h")
    keys = [s["key"] for s in body["series"]]
    assert "tokens_5h" in keys
    for series in body["series"]:
        assert {"key", "label", "points"} <= set(series)
        for point in series["points"]:
            time, percent, used = point
            assert ISO.match(time)
            assert isinstance(percent, (int, float))
            assert used is None or isinstance(used, (int, float))
    tokens = next(s for s in body["series"] if s["key"] == "tokens_5h")
    assert len(tokens["points"]) == 6
    for gap in body["gaps"]:
        assert len(gap) == 2
        assert all(moment is None or ISO.match(moment) for moment in gap)


@pytest.mark.parametrize("range_key", ["1h", "6h", "24h", "7d", "30d"])
def test_history_takes_every_range(api: Client, data: None, range_key: str) -> None:
    assert get(api, "/api/history", range=range_key)["range"] == range_key


def test_history_defaults_to_24_hours(api: Client) -> None:
    assert get(api, "/api/history")["range"] == "24h"


def test_history_of_the_last_hour_leaves_older_points_out(api: Client, data: None) -> None:
    body = get(api, "/api/history", provider="zai", range="1h")
    assert all(not s["points"] for s in body["series"])


# --- /api/cycles -------------------------------------------------------------------------


def test_cycles_have_every_field_newest_first(api: Client, data: None) -> None:
    body = get(api, "/api/cycles", provider="zai", quota="tokens_5h")
    assert body["provider"] == "zai"
    cycles = body["cycles"]
    assert len(cycles) == 2
    for cycle in cycles:
        assert set(cycle) >= CYCLE_FIELDS
        assert cycle["quota"] == "tokens_5h"
    newest, oldest = cycles
    assert newest["active"] is True and newest["ended_at"] is None
    assert oldest["active"] is False and oldest["ended_at"] == "2026-08-24T22:00:00Z"
    assert newest["started_at"] >= oldest["started_at"]
    assert oldest["peak_used"] == 42_000_000
    assert newest["limit"] == 80_000_000
    assert_iso_times(body)


def test_cycles_honour_the_limit(api: Client, data: None) -> None:
    assert len(get(api, "/api/cycles", provider="zai", quota="tokens_5h", limit=1)["cycles"]) == 1
    assert len(get(api, "/api/cycles", provider="zai", quota="tokens_5h", limit=500)["cycles"]) == 2


def test_cycles_of_a_reported_quota_without_cycles_are_empty(api: Client, data: None) -> None:
    # Synthetic's rolling windows have no reset cycles
    assert get(api, "/api/cycles", provider="synthetic", quota="rolling_5h")["cycles"] == []


def test_cycles_of_a_quota_never_reported_are_a_400(api: Client, data: None) -> None:
    assert api.get("/api/cycles", {"provider": "zai", "quota": "no_such_quota"}).status_code == 400


# --- /api/summary --------------------------------------------------------------------


def test_summary_lists_every_reported_quota(api: Client, data: None) -> None:
    body = get(api, "/api/summary", provider="zai")
    assert body["provider"] == "zai"
    keys = [q["key"] for q in body["quotas"]]
    assert {"tokens_5h", "tokens_weekly", "time_monthly"} <= set(keys)
    for quota in body["quotas"]:
        assert set(quota) >= SUMMARY_FIELDS
    tokens = next(q for q in body["quotas"] if q["key"] == "tokens_5h")
    assert tokens["completed_cycles"] == 1
    assert_iso_times(body)


def test_summary_before_any_data(api: Client) -> None:
    body = get(api, "/api/summary", provider="synthetic")
    assert body["provider"] == "synthetic"
    assert body["quotas"] == []


# --- /api/sessions -----------------------------------------------------------------------


def test_sessions_have_every_field(api: Client, data: None) -> None:
    body = get(api, "/api/sessions")
    sessions = body["sessions"]
    assert {s["provider"] for s in sessions} == {"synthetic", "zai"}
    for session in sessions:
        assert set(session) >= SESSION_FIELDS
        assert session["interval_seconds"] == 60
        for stats in session["quotas"].values():
            assert {"peak_used", "consumed"} <= set(stats)
    by_provider = {s["provider"]: s for s in sessions}
    assert by_provider["synthetic"]["active"] is False
    assert by_provider["synthetic"]["polls_ok"] == 6
    assert by_provider["zai"]["active"] is True
    assert by_provider["zai"]["ended_at"] is None
    assert (by_provider["zai"]["polls_ok"], by_provider["zai"]["polls_failed"]) == (6, 1)
    assert_iso_times(body)


def test_sessions_of_one_provider(api: Client, data: None) -> None:
    sessions = get(api, "/api/sessions", provider="zai")["sessions"]
    assert [s["provider"] for s in sessions] == ["zai"]


def test_sessions_honour_the_limit_newest_first(api: Client, data: None) -> None:
    add_polls(NOW - HOUR, 2)
    sessions = get(api, "/api/sessions", limit=3)["sessions"]
    assert len(sessions) == 3
    starts = [s["started_at"] for s in sessions]
    assert starts == sorted(starts, reverse=True)


# --- /api/insights ---------------------------------------------------------------------


def test_insights_have_every_field(api: Client, data: None) -> None:
    body = get(api, "/api/insights", provider="zai")
    assert body["provider"] == "zai"
    for stat in body["stats"]:
        assert {"label", "value"} <= set(stat)
    assert body["insights"], "never empty once data exists"
    for card in body["insights"]:
        assert set(card) >= INSIGHT_FIELDS


@pytest.mark.parametrize("range_key", ["1d", "7d", "30d"])
def test_insights_take_every_range(api: Client, data: None, range_key: str) -> None:
    assert get(api, "/api/insights", provider="zai", range=range_key)["provider"] == "zai"


def test_insights_leave_out_hidden_cards(api: Client, data: None) -> None:
    shown = [card["key"] for card in get(api, "/api/insights", provider="zai")["insights"]]
    response = api.put("/api/settings", {"hidden_insights": [shown[0]]}, content_type="application/json")
    assert response.status_code == 200
    keys = [card["key"] for card in get(api, "/api/insights", provider="zai")["insights"]]
    assert shown[0] not in keys


# --- /api/polls -----------------------------------------------------------------------------


def test_polls_have_every_field_newest_first(api: Client, data: None) -> None:
    body = get(api, "/api/polls")
    polls = body["polls"]
    assert len(polls) == 13
    for attempt in polls:
        assert set(attempt) >= POLL_FIELDS
        assert attempt["outcome"] in OUTCOMES
        assert isinstance(attempt["drift"], bool)
    assert polls[0]["outcome"] == "unauthorized"
    assert polls[0]["provider"] == "zai"
    assert polls[0]["latency_ms"] == 80
    ats = [p["at"] for p in polls]
    assert ats == sorted(ats, reverse=True)
    assert_iso_times(body)


def test_polls_of_one_provider_with_a_limit(api: Client, data: None) -> None:
    polls = get(api, "/api/polls", provider="synthetic", limit=2)["polls"]
    assert [p["provider"] for p in polls] == ["synthetic", "synthetic"]


def test_polls_default_to_fifty(api: Client) -> None:
    add_polls(NOW - 2 * HOUR, 30)
    assert len(get(api, "/api/polls")["polls"]) == 50


# --- bad parameters --------------------------------------------------------------------------

BAD_QUERIES = [
    *[(path, {"provider": bad}) for path in GET_ENDPOINTS[1:] for bad in ("openai", "SYNTHETIC", "both,zai", "\x00")],
    *[("/api/history", {"range": bad}) for bad in ("2h", "1d", "all", "24H", "-1h")],
    *[("/api/insights", {"range": bad}) for bad in ("24h", "1h", "90d", "x")],
    *[
        (path, {"limit": bad})
        for path in ("/api/cycles", "/api/sessions", "/api/polls")
        for bad in ("0", "501", "abc", "-1", "1.5", "1e3", "99999999999999999999")
    ],
    *[("/api/cycles", {"quota": bad}) for bad in ("Tokens 5h", "../x", "a" * 65, "tokens-5h", "<script>")],
]


@pytest.mark.parametrize(("path", "query"), BAD_QUERIES)
def test_a_bad_parameter_is_400_with_an_error(api: Client, path: str, query: dict[str, str]) -> None:
    response = api.get(path, query)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str) and body["error"]


def test_the_error_names_the_parameter(api: Client) -> None:
    assert get_error(api, "/api/cycles", limit="0").startswith("limit:")
    assert get_error(api, "/api/history", range="2h").startswith("range:")
    assert get_error(api, "/api/current", provider="openai").startswith("provider:")


def get_error(client: Client, path: str, **params: str) -> str:
    return client.get(path, params).json()["error"]


def test_unknown_and_empty_parameters_are_ignored(api: Client) -> None:
    assert api.get("/api/current", {"_": "1700000000"}).status_code == 200
    assert api.get("/api/polls", {"limit": "", "provider": ""}).status_code == 200
    assert api.get("/api/history", {"range": ""}).json()["range"] == "24h"


# --- query counts ---------------------------------------------------------------------------
# Each count is fixed whatever the amount of history: compare a few polls with many.
# The first two queries of every request are the session and the user.

QUERY_COUNTS = [
    # latest, latest successful and latest storage-error attempt per provider, open sessions,
    # pending poll requests (PostgreSQL: the poll lock in pg_locks)
    ("/api/providers", {}, 2 + 2 * 3 + 2 + (connection.vendor == "postgresql")),
    # latest attempt, latest usable snapshot, its readings with their cycles, the quotas' recent
    # readings (one ranked query whatever the number of quotas)
    ("/api/current", {"provider": "zai"}, 2 + 4),
    ("/api/current", {"provider": "both"}, 2 + 4 + 4),
    # from the roll-ups: the settled buckets' version (their points the worker already has; the
    # first call also ranks them: 2 more), the newest buckets' points and resets, overlapping
    # sessions, the silences, the newest roll-up (trailing gap)
    ("/api/history", {"provider": "zai", "range": "24h"}, 2 + 6),
    ("/api/history", {"provider": "zai", "range": "30d"}, 2 + 6),
    # from the readings: each bucket's points, the resets, sessions, stretches between snapshots
    ("/api/history", {"provider": "zai", "range": "6h"}, 2 + 4),
    # whether the quota was reported (an index seek), the cycles
    ("/api/cycles", {"provider": "zai", "quota": "tokens_5h"}, 2 + 2),
    ("/api/cycles", {"provider": "both", "limit": "500"}, 2 + 2),
    # the quotas, their cycle statistics, the newest readings, each quota's first roll-up (3 here)
    ("/api/summary", {"provider": "zai"}, 2 + 3 + 3),
    # the sessions
    ("/api/sessions", {}, 2 + 1),
    # the attempts
    ("/api/polls", {}, 2 + 1),
    ("/api/polls", {"provider": "both"}, 2 + 2),
    # the hidden insights setting, then quotas.insights' own reads (24 with this data: each
    # consumption figure seeks its first reading (and, as tracking began within the range, its
    # first roll-up), then sums roll-ups and reads the edge hours' readings; the cycles in one)
    ("/api/insights", {"provider": "zai"}, 2 + 1 + 24),
    # the setting rows
    ("/api/settings", {}, 2 + 1),
]


@pytest.mark.parametrize(("path", "query", "expected"), QUERY_COUNTS)
def test_query_counts_are_pinned(api: Client, data: None, django_assert_num_queries, path, query, expected) -> None:
    api.get(path, query)  # warm up anything cached per process
    with django_assert_num_queries(expected):
        assert api.get(path, query).status_code == 200


@pytest.mark.parametrize(("path", "query", "expected"), QUERY_COUNTS)
def test_query_counts_do_not_grow_with_history(api: Client, path: str, query: dict, expected: int) -> None:
    add_polls(NOW - 30 * HOUR, 40, step=timedelta(minutes=30))
    api.get(path, query)
    with CaptureQueriesContext(connection) as before:
        assert api.get(path, query).status_code == 200
    add_polls(NOW - 80 * HOUR, 80, step=timedelta(minutes=30))  # three times the history
    api.get(path, query)  # what a worker caches of settled chart buckets changed with it
    with CaptureQueriesContext(connection) as after:
        assert api.get(path, query).status_code == 200
    assert len(after) == len(before)


def test_readings_exist_for_the_query_count_tests(data: None) -> None:
    assert QuotaReading.objects.count() > 20
