"""``GET, PUT /api/settings`` (product.md §8)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import User
from quotas import preferences
from quotas.insights import INSIGHT_KEYS
from quotas.models import Setting

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice", password="s3cret-passw0rd")


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def put(client: Client, body: object) -> object:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.put("/api/settings", data, content_type="application/json")


def stored() -> dict:
    """The global rows and every user's own values (settings are per user)."""
    own = {key: value for display in User.objects.values_list("display", flat=True) for key, value in display.items()}
    return {**dict(Setting.objects.values_list("key", "value")), **own}


def test_it_answers_the_defaults(signed_in: Client) -> None:
    response = signed_in.get("/api/settings")
    assert response.status_code == 200
    assert response.json() == {"timezone": None, "hidden_insights": [], "theme": None}


def test_it_sets_the_timezone_and_answers_the_whole_object(signed_in: Client) -> None:
    response = put(signed_in, {"timezone": "Asia/Kolkata"})
    assert response.status_code == 200
    assert response.json() == {"timezone": "Asia/Kolkata", "hidden_insights": [], "theme": None}
    assert signed_in.get("/api/settings").json()["timezone"] == "Asia/Kolkata"


def test_an_update_is_partial(signed_in: Client) -> None:
    put(signed_in, {"timezone": "Europe/Berlin"})
    response = put(signed_in, {"hidden_insights": [INSIGHT_KEYS[0]]})
    assert response.json() == {"timezone": "Europe/Berlin", "hidden_insights": [INSIGHT_KEYS[0]], "theme": None}
    response = put(signed_in, {})
    assert response.status_code == 200
    assert response.json() == {"timezone": "Europe/Berlin", "hidden_insights": [INSIGHT_KEYS[0]], "theme": None}


@pytest.mark.parametrize("cleared", [None, ""])
def test_null_or_empty_timezone_means_the_browsers(signed_in: Client, cleared: str | None) -> None:
    put(signed_in, {"timezone": "Europe/Berlin"})
    response = put(signed_in, {"timezone": cleared})
    assert response.status_code == 200
    assert response.json()["timezone"] is None


def test_hidden_insights_are_deduplicated_in_a_stable_order(signed_in: Client) -> None:
    keys = list(INSIGHT_KEYS[:2])
    response = put(signed_in, {"hidden_insights": [keys[-1], keys[0], keys[-1]]})
    assert response.status_code == 200
    assert response.json()["hidden_insights"] == keys
    response = put(signed_in, {"hidden_insights": []})
    assert response.json()["hidden_insights"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "America"},
        {"timezone": "../../etc/passwd"},
        {"timezone": "localtime"},
        {"timezone": "Europe/Berlin "},
        {"timezone": "x" * 10_000},
        {"timezone": 5},
        {"timezone": ["UTC"]},
        {"hidden_insights": "cycle_utilization"},
        {"hidden_insights": ["no_such_insight"]},
        {"hidden_insights": [1, 2]},
        {"hidden_insights": {"a": 1}},
        {"theme": "purple"},
        {"theme": True},
        {"timezone": "UTC", "unknown": 1},
        [],
        "UTC",
        None,
        42,
    ],
)
def test_it_rejects_bad_values_and_changes_nothing(signed_in: Client, body: object) -> None:
    put(signed_in, {"timezone": "Europe/Berlin"})
    before = stored()
    response = put(signed_in, body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert stored() == before


@pytest.mark.parametrize("raw", ["{", "not json", b"\xff\xfe", "", '{"timezone": NaN', "[" * 50_000])
def test_it_rejects_malformed_json(signed_in: Client, raw: str | bytes) -> None:
    response = put(signed_in, raw)
    assert response.status_code == 400
    assert "error" in response.json()
    assert stored() == {}


def test_it_rejects_a_huge_body(signed_in: Client) -> None:
    response = put(signed_in, {"timezone": "UTC", "padding": "x" * 100_000})
    assert response.status_code == 400
    assert stored() == {}


def test_an_unknown_key_beside_a_good_one_changes_nothing(signed_in: Client) -> None:
    response = put(signed_in, {"timezone": "UTC", "hidden_insights": ["nope"]})
    assert response.status_code == 400
    assert stored() == {}


@pytest.mark.parametrize("method", ["post", "delete", "patch"])
def test_other_methods_are_405(signed_in: Client, method: str) -> None:
    response = getattr(signed_in, method)("/api/settings")
    assert response.status_code == 405
    assert "error" in response.json()
    assert "PUT" in response["Allow"]


def test_it_needs_authentication(client: Client) -> None:
    assert client.get("/api/settings").status_code == 401
    response = put(client, {"timezone": "UTC"})
    assert response.status_code == 401
    assert stored() == {}


def test_it_shows_defaults_for_values_stored_badly(signed_in: Client) -> None:
    Setting.objects.create(key="timezone", value="Not/AZone")
    Setting.objects.create(key="hidden_insights", value="oops")
    assert signed_in.get("/api/settings").json() == {"timezone": None, "hidden_insights": [], "theme": None}


def test_get_reads_one_query(signed_in: Client, django_assert_num_queries) -> None:
    signed_in.get("/api/settings")
    # 1. session, 2. user, 3. the setting rows
    with django_assert_num_queries(3):
        signed_in.get("/api/settings")


def test_put_writes_only_the_keys_sent(signed_in: Client, django_assert_num_queries) -> None:
    signed_in.get("/api/settings")
    # session, user, SAVEPOINT (the test's transaction makes the atomic block one),
    # the user's row locked and read, UPDATE, RELEASE, then the global defaults read back
    with django_assert_num_queries(7):
        put(signed_in, {"timezone": "UTC"})
    assert User.objects.get(username="alice").display == {"timezone": "UTC"}
    with django_assert_num_queries(7):
        put(signed_in, {"theme": "dark"})
    assert User.objects.get(username="alice").display == {"timezone": "UTC", "theme": "dark"}


def test_hidden_insights_feed_the_insights_module(signed_in: Client) -> None:
    put(signed_in, {"hidden_insights": [INSIGHT_KEYS[0]]})
    user = User.objects.get(username="alice")
    assert preferences.hidden_insights(user) == frozenset({INSIGHT_KEYS[0]})
    assert preferences.hidden_insights() == frozenset()  # the user's own, not everyone's
