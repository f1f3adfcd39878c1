"""Property tests of the JSON API (issue 10, "prove it survives"): generated input never gets a 5xx.

Every GET endpoint of the OpenAPI document (quotas.openapi.operations) gets
generated query strings: its real parameters and junk keys, in any order,
repeated, with any text as values (unicode, NUL, huge and negative numbers,
NaN, empty), and raw query strings of arbitrary bytes. The JSON-body
endpoints get generated JSON values (nested deep too), bodies nested far
deeper than any parser recursion, and arbitrary bytes. The client is an
admin with a session, on a database with polls of both providers.

Every answer must be below 500 (but the guard's documented 503 "the numbers
are stale"), one of the statuses the OpenAPI document lists for the
endpoint, and every 4xx a JSON ``{"error": …}`` (but the guard's verdicts,
which are documented bodies of their own).
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime
from urllib.parse import quote_from_bytes

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import fixture_json, store_payload
from quotas import openapi

pytestmark = pytest.mark.django_db

AT = datetime(2026, 8, 25, 1, 0, tzinfo=UTC)
PASSWORD = "a-long-password"
EXAMPLES = 100
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OPERATIONS = {(op.method, op.path): op for op in openapi.operations()}
GET_ENDPOINTS = sorted(path for method, path in OPERATIONS if method == "get")
BODY_ENDPOINTS = [("put", "/api/settings"), ("put", "/api/password"), ("post", "/api/poll")]
# The keys each body endpoint reads, so generated bodies reach the validation of each.
BODY_KEYS = {
    "/api/settings": ["timezone", "hidden_insights", "theme"],
    "/api/password": ["current_password", "new_password"],
    "/api/poll": ["provider"],
}


def parameters(path: str) -> list[str]:
    form = OPERATIONS["get", path].form
    return list(form.base_fields) if form is not None else []


# --- strategies ---------------------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["NaN", "nan", "-nan", "inf", "-Infinity", "1e309", "-0", "0x10", "1_000", "٣", "1e-400"]),
)
KNOWN_WORDS = st.sampled_from(
    ["", " ", "both", "BOTH", "synthetic", "zai", "1h", "24h", "30d", "7d", "1d", "csv", "json", "polls",
     "readings", "cycles", "requests", "tokens", "2026-08-25", "2026-08-25T01:00:00Z", "9999-12-31T23:59:59Z",
     "0001-01-01", "2026-02-30", "true", "null", "[]", "%00", "\x00", "ÿ" * 300, "a" * 5000]
)  # fmt: skip
VALUES = st.one_of(st.text(), st.text(alphabet=string.printable, max_size=30), NUMBERS, KNOWN_WORDS)


def query(path: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    keys = st.one_of(st.sampled_from(parameters(path) or ["provider"]), st.text(max_size=20))
    return st.lists(st.tuples(keys, VALUES), max_size=6)


RAW_QUERY = st.binary(max_size=200).map(lambda raw: quote_from_bytes(raw, safe=b"=&;+%"))

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    KNOWN_WORDS,
)


def json_values(keys: list[str]) -> st.SearchStrategy[object]:
    return st.recursive(
        JSON_SCALARS,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=10)), children, max_size=4),
        ),
        max_leaves=20,
    )


def deep(depth: int, opener: bytes, closer: bytes, inner: bytes = b"") -> bytes:
    return opener * depth + inner + closer * depth


DEEP_BODIES = st.tuples(
    st.integers(min_value=1, max_value=30_000),
    st.sampled_from([(b"[", b"]", b""), (b'{"a":', b"}", b"1"), (b'{"provider":[', b"]}", b""), (b"[", b"", b"")]),
).map(lambda args: deep(args[0], *args[1]))


def body(path: str) -> st.SearchStrategy[bytes]:
    keys = BODY_KEYS[path]
    objects = st.dictionaries(st.sampled_from(keys), json_values(keys), max_size=len(keys))
    encoded = st.one_of(json_values(keys), objects).map(lambda value: json.dumps(value).encode())
    return st.one_of(encoded, DEEP_BODIES, st.binary(max_size=300))


# --- the client and its answers ---------------------------------------------------------------------------


@pytest.fixture
def admin(client: Client, providers_configured) -> Client:
    providers_configured.SYNTRACK_METRICS_PUBLIC = True  # /metrics served, not the site's 404 that hides it
    store_payload("synthetic", fixture_json("synthetic/v3_rolling_windows.json"), AT)
    store_payload("zai", fixture_json("zai/v2_weekly_and_level.json"), AT)
    store_payload("zai", b"{not json", AT.replace(minute=1))
    client.force_login(get_user_model().objects.create_superuser("boss", password=PASSWORD))
    # A 500 must show up as the answer a client gets, not as the view's exception re-raised.
    client.raise_request_exception = False
    return client


def check(response: HttpResponse, method: str, path: str, sent: object) -> None:
    status = response.status_code
    documented = OPERATIONS[method, path].responses
    where = (method, path, sent, status, b"" if response.streaming else response.content[:300])
    assert status in documented, where
    if path == "/api/guard" and status in (400, 429, 503) and "ok" in response.json():
        assert response.json()["ok"] is False, where  # a verdict: unknown quota, too little left, stale
        return
    assert status < 500, where
    if response.streaming:
        b"".join(response.streaming_content)  # a failure half-way would raise here
        return
    if status >= 400:
        assert response["Content-Type"] == "application/json", where
        assert isinstance(response.json().get("error"), str), where


@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_no_generated_query_gets_a_server_error(admin: Client, path: str) -> None:
    @PROPERTY_SETTINGS
    @given(pairs=query(path))
    def run(pairs: list[tuple[str, str]]) -> None:
        check(admin.get(path, pairs), "get", path, pairs)

    run()


@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_no_raw_query_string_gets_a_server_error(admin: Client, path: str) -> None:
    @settings(PROPERTY_SETTINGS, max_examples=EXAMPLES // 2)
    @given(raw=RAW_QUERY)
    def run(raw: str) -> None:
        check(admin.generic("GET", f"{path}?{raw}"), "get", path, raw)

    run()


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
def test_no_generated_body_gets_a_server_error(admin: Client, method: str, path: str) -> None:
    @settings(PROPERTY_SETTINGS, max_examples=EXAMPLES * 2)
    @given(sent=body(path), content_type=st.sampled_from(["application/json", "text/plain", ""]))
    def run(sent: bytes, content_type: str) -> None:
        response = getattr(admin, method)(path, sent, content_type=content_type)
        check(response, method, path, sent[:200])

    run()
    # Nothing generated was the password.
    assert get_user_model().objects.get(username="boss").check_password(PASSWORD)
