"""`quotas.providers.fetch`: requests, and the failure taxonomy of product.md §4, through `responses`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from conftest import SYNTHETIC_KEY, SYNTHETIC_URL, ZAI_KEY, ZAI_URL, fixture_bytes
from lib import http
from lib.redact import mask
from quotas import providers
from quotas.providers import MAX_RETRY_AFTER, Fetched, retry_after_seconds
from quotas.providers.base import (
    DRIFT,
    INVALID_RESPONSE,
    NETWORK_ERROR,
    RATE_LIMITED,
    SERVER_ERROR,
    UNAUTHORIZED,
)

URLS = {"synthetic": SYNTHETIC_URL, "zai": ZAI_URL}
KEYS = {"synthetic": SYNTHETIC_KEY, "zai": ZAI_KEY}
GOOD = {"synthetic": "synthetic/v3_rolling_windows.json", "zai": "zai/v2_weekly_and_level.json"}
BOTH = pytest.mark.parametrize("provider", ["synthetic", "zai"])

pytestmark = pytest.mark.usefixtures("providers_configured")


def assert_failed(fetched: Fetched, outcome: str) -> None:
    """A failure of the given kind, with no parsed quotas and no API key anywhere in it."""
    assert isinstance(fetched, Fetched)
    assert fetched.parsed is None
    assert fetched.failure is not None, "expected a failure"
    assert fetched.failure.outcome == outcome, fetched.failure.message
    for key in (SYNTHETIC_KEY, ZAI_KEY):
        assert key not in fetched.failure.message
        assert key not in str(fetched.failure)
        assert key not in repr(fetched.failure)


# --- the requests themselves ---------------------------------------------------------------------


def test_it_fetches_synthetic_with_a_bearer_key(upstream) -> None:
    upstream.get(SYNTHETIC_URL, body=fixture_bytes(GOOD["synthetic"]))

    fetched = providers.fetch("synthetic")

    assert fetched.failure is None
    assert fetched.provider == "synthetic"
    assert [q.key for q in fetched.parsed.quotas] == [
        "subscription",
        "search_hourly",
        "free_tool_calls",
        "rolling_5h",
        "weekly_credits",
    ]
    assert fetched.body == fixture_bytes(GOOD["synthetic"])
    assert isinstance(fetched.latency_ms, int) and fetched.latency_ms >= 0
    request = upstream.calls[0].request
    assert request.method == "GET"
    assert request.url == SYNTHETIC_URL
    assert request.headers["Authorization"] == f"Bearer {SYNTHETIC_KEY}"
    assert request.headers["User-Agent"].startswith("syntrack/")
    assert request.headers["Accept"] == "application/json"
    assert request.body is None


def test_it_fetches_zai_with_the_raw_key_and_no_bearer(upstream) -> None:
    upstream.get(ZAI_URL, body=fixture_bytes(GOOD["zai"]))

    fetched = providers.fetch("zai")

    assert fetched.failure is None
    assert fetched.parsed.plan == "pro"
    assert [q.key for q in fetched.parsed.quotas] == ["tokens_5h", "tokens_weekly", "time_monthly"]
    request = upstream.calls[0].request
    assert request.url == ZAI_URL
    assert request.headers["Authorization"] == ZAI_KEY
    assert "Bearer" not in request.headers["Authorization"]
    assert request.headers["User-Agent"].startswith("syntrack/")
    assert request.headers["Accept"] == "application/json"


@BOTH
def test_the_url_is_built_from_the_configured_base_url(provider: str, settings, upstream) -> None:
    setting = providers.URL_SETTINGS[provider]
    settings.__setattr__(setting, {"synthetic": "https://mirror.test/syn/", "zai": "https://open.test/api/"}[provider])
    expected = {
        "synthetic": "https://mirror.test/syn/v2/quotas",
        "zai": "https://open.test/api/monitor/usage/quota/limit",
    }[provider]
    upstream.get(expected, body=fixture_bytes(GOOD[provider]))

    fetched = providers.fetch(provider)

    assert fetched.failure is None
    assert upstream.calls[0].request.url == expected


@BOTH
def test_surrounding_whitespace_of_a_key_is_not_sent(provider: str, settings, upstream) -> None:
    settings.__setattr__(providers.KEY_SETTINGS[provider], f"  {KEYS[provider]}\n")
    upstream.get(URLS[provider], body=fixture_bytes(GOOD[provider]))

    providers.fetch(provider)

    assert upstream.calls[0].request.headers["Authorization"].endswith(KEYS[provider])


@BOTH
def test_every_fetch_is_one_request_and_nothing_is_retried(provider: str, upstream) -> None:
    upstream.get(URLS[provider], status=503, body=b"")

    assert_failed(providers.fetch(provider), SERVER_ERROR)
    assert len(upstream.calls) == 1


@BOTH
def test_every_fetch_has_a_connect_and_a_total_timeout_within_30_seconds(provider: str, upstream) -> None:
    upstream.get(URLS[provider], body=fixture_bytes(GOOD[provider]))

    providers.fetch(provider)

    connect, read = upstream.calls[0].request.req_kwargs["timeout"]
    assert 0 < connect <= 30 and 0 < read <= 30
    assert upstream.calls[0].request.req_kwargs["stream"] is True


def test_configured_lists_providers_with_a_key_in_a_fixed_order(settings) -> None:
    assert providers.configured() == ["synthetic", "zai"]
    settings.SYNTHETIC_API_KEY = "   "
    assert providers.configured() == ["zai"]
    settings.ZAI_API_KEY = ""
    assert providers.configured() == []
    assert providers.NAMES == {"synthetic": "Synthetic", "zai": "Z.ai"}


# --- unauthorized --------------------------------------------------------------------------------


def test_synthetic_401_is_unauthorized(upstream) -> None:
    upstream.get(SYNTHETIC_URL, status=401, body=fixture_bytes("synthetic/unauthorized.json"))

    fetched = providers.fetch("synthetic")

    assert_failed(fetched, UNAUTHORIZED)
    assert "401" in fetched.failure.message
    assert fetched.body is None
    assert fetched.latency_ms is not None


@BOTH
def test_403_is_unauthorized(provider: str, upstream) -> None:
    upstream.get(URLS[provider], status=403, json={"error": "forbidden"})

    assert_failed(providers.fetch(provider), UNAUTHORIZED)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("error_unauthorized_in_200", "token expired or incorrect"),
        ("error_no_coding_plan", "this key has no GLM Coding Plan"),
    ],
)
def test_zai_errors_inside_http_200_are_unauthorized(name: str, words: str, upstream) -> None:
    upstream.get(ZAI_URL, status=200, body=fixture_bytes(f"zai/{name}.json"))

    fetched = providers.fetch("zai")

    assert_failed(fetched, UNAUTHORIZED)
    assert words in fetched.failure.message
    assert fetched.body is None


def test_zai_http_401_with_its_error_body_is_unauthorized(upstream) -> None:
    upstream.get(ZAI_URL, status=401, body=fixture_bytes("zai/error_unauthorized_in_200.json"))

    assert_failed(providers.fetch("zai"), UNAUTHORIZED)


# --- rate limited --------------------------------------------------------------------------------


@BOTH
def test_429_with_retry_after_in_seconds_is_rate_limited(provider: str, upstream) -> None:
    upstream.get(URLS[provider], status=429, body=b"slow down", headers={"Retry-After": "120"})

    fetched = providers.fetch(provider)

    assert_failed(fetched, RATE_LIMITED)
    assert fetched.failure.retry_after == 120.0
    assert "retry after 120 s" in fetched.failure.message


@BOTH
def test_429_with_retry_after_as_an_http_date_is_rate_limited(provider: str, upstream) -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    upstream.get(URLS[provider], status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})

    fetched = providers.fetch(provider)

    assert_failed(fetched, RATE_LIMITED)
    assert 85 <= fetched.failure.retry_after <= 90


@BOTH
def test_a_huge_retry_after_is_capped(provider: str, upstream) -> None:
    upstream.get(URLS[provider], status=429, headers={"Retry-After": "604800"})

    fetched = providers.fetch(provider)

    assert_failed(fetched, RATE_LIMITED)
    assert fetched.failure.retry_after == MAX_RETRY_AFTER == 3600.0


@BOTH
def test_429_without_a_usable_retry_after_is_still_rate_limited(provider: str, upstream) -> None:
    upstream.get(URLS[provider], status=429)
    upstream.get(URLS[provider], status=429, headers={"Retry-After": "whenever"})

    for _ in range(2):
        fetched = providers.fetch(provider)
        assert_failed(fetched, RATE_LIMITED)
        assert fetched.failure.retry_after is None


def test_zai_rate_limit_inside_http_200_is_rate_limited(upstream) -> None:
    upstream.get(ZAI_URL, json={"code": 1302, "msg": "rate limit reached", "success": False})

    assert_failed(providers.fetch("zai"), RATE_LIMITED)


NOW = datetime(2026, 8, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-30", 0.0),
        ("99999999", MAX_RETRY_AFTER),
        ("inf", MAX_RETRY_AFTER),
        ("nan", None),
        ("Tue, 25 Aug 2026 12:01:30 GMT", 90.0),
        ("Tue, 25 Aug 2026 11:00:00 GMT", 0.0),  # in the past
        ("Tue, 25 Aug 2026 12:01:30", 90.0),  # no zone: taken as UTC
        ("Wed, 26 Aug 2026 12:00:00 GMT", MAX_RETRY_AFTER),
        ("tomorrow", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


# --- server error --------------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_a_server_error(provider: str, status: int, upstream) -> None:
    upstream.get(URLS[provider], status=status, body=b"<html>Bad gateway</html>")

    fetched = providers.fetch(provider)

    assert_failed(fetched, SERVER_ERROR)
    assert str(status) in fetched.failure.message
    assert fetched.body is None


def test_zai_server_error_inside_http_200_is_a_server_error(upstream) -> None:
    upstream.get(ZAI_URL, body=fixture_bytes("zai/error_server_in_200.json"))

    fetched = providers.fetch("zai")

    assert_failed(fetched, SERVER_ERROR)
    assert "Internal server error" in fetched.failure.message


# --- network error -------------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(
    "error",
    [
        requests.ConnectionError("Connection refused"),
        requests.Timeout("timed out"),
        requests.ConnectTimeout("connect timed out"),
        requests.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("connection broken mid-body"),
        requests.exceptions.SSLError("certificate verify failed"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_failures_are_network_errors(provider: str, error: Exception, upstream) -> None:
    upstream.get(URLS[provider], body=error)

    fetched = providers.fetch(provider)

    assert_failed(fetched, NETWORK_ERROR)
    assert fetched.body is None
    assert fetched.latency_ms is None


# --- invalid response ----------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(
    "body",
    [b"<html>maintenance</html>", b"", b"   \n", b"[1, 2]", b'"ok"', b"null", b"{broken", b"\xff\xfe\x00"],
    ids=["html", "empty", "blank", "array", "string", "null", "broken", "binary"],
)
def test_bodies_that_are_not_a_json_object_are_invalid_responses(provider: str, body: bytes, upstream) -> None:
    upstream.get(URLS[provider], status=200, body=body)

    fetched = providers.fetch(provider)

    assert_failed(fetched, INVALID_RESPONSE)
    assert fetched.body is None


@BOTH
def test_a_body_larger_than_the_cap_is_an_invalid_response(provider: str, upstream) -> None:
    padding = " " * http.MAX_BODY_BYTES
    upstream.get(URLS[provider], body=fixture_bytes(GOOD[provider])[:-1] + padding.encode() + b"}")

    fetched = providers.fetch(provider)

    assert_failed(fetched, INVALID_RESPONSE)
    assert "larger than" in fetched.failure.message


@BOTH
def test_a_body_just_under_the_cap_is_read(provider: str, upstream) -> None:
    body = fixture_bytes(GOOD[provider])
    body = body + b" " * (http.MAX_BODY_BYTES - len(body))
    upstream.get(URLS[provider], body=body)

    fetched = providers.fetch(provider)

    assert fetched.failure is None
    assert len(fetched.body) == http.MAX_BODY_BYTES


@BOTH
@pytest.mark.parametrize("status", [404, 400, 418, 301, 302, 204])
def test_unexpected_statuses_are_invalid_responses(provider: str, status: int, upstream) -> None:
    headers = {"Location": "https://elsewhere.test/"} if 300 <= status < 400 else {}
    upstream.get(URLS[provider], status=status, body=b"", headers=headers)

    fetched = providers.fetch(provider)

    assert_failed(fetched, INVALID_RESPONSE)
    assert str(status) in fetched.failure.message
    assert len(upstream.calls) == 1  # redirects are not followed


# --- schema drift --------------------------------------------------------------------------------


def test_an_empty_synthetic_object_is_drift_and_its_body_is_kept(upstream) -> None:
    upstream.get(SYNTHETIC_URL, body=fixture_bytes("synthetic/empty_object.json"))

    fetched = providers.fetch("synthetic")

    assert_failed(fetched, DRIFT)
    assert fetched.body == fixture_bytes("synthetic/empty_object.json")  # for `reparse`
    assert fetched.latency_ms is not None


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        ("synthetic", {"dailyCap": {"limit": 10, "requests": 1}, "motd": "hello"}),
        ("zai", {"code": 200, "success": True, "data": {"windows": []}}),
        ("zai", {"code": 200, "success": True, "data": {"limits": []}}),
    ],
)
def test_a_payload_with_only_unknown_keys_is_drift_and_its_body_is_kept(provider: str, payload: dict, upstream) -> None:
    body = json.dumps(payload).encode()
    upstream.get(URLS[provider], body=body)

    fetched = providers.fetch(provider)

    assert_failed(fetched, DRIFT)
    assert fetched.body == body


def test_known_quotas_with_unknown_keys_parse_and_list_the_unknown_ones(upstream) -> None:
    payload = json.loads(fixture_bytes("synthetic/v2_free_tool_calls.json"))
    payload["sparkles"] = {"limit": 5, "requests": 1}
    upstream.get(SYNTHETIC_URL, json=payload)

    fetched = providers.fetch("synthetic")

    assert fetched.failure is None
    assert fetched.parsed.unknown == ["sparkles"]
    assert {"subscription", "search_hourly", "free_tool_calls"} <= {q.key for q in fetched.parsed.quotas}


def test_unknown_zai_limit_types_parse_and_are_listed(upstream) -> None:
    payload = json.loads(fixture_bytes("zai/v3_credit_lite.json"))
    payload["data"]["limits"].insert(0, {"type": "FOO_LIMIT", "unit": 4, "number": 7, "percentage": 3})
    upstream.get(ZAI_URL, json=payload)

    fetched = providers.fetch("zai")

    assert fetched.failure is None
    assert [q.key for q in fetched.parsed.quotas] == ["foo_limit_4_7", "credits_5h", "credits_weekly"]
    assert fetched.parsed.unknown == ["limit foo_limit_4_7 (type=FOO_LIMIT)"]


# --- API keys never leak -------------------------------------------------------------------------


@BOTH
def test_a_connection_error_quoting_the_key_comes_out_masked(provider: str, upstream) -> None:
    key = KEYS[provider]
    upstream.get(URLS[provider], body=requests.ConnectionError(f"proxy rejected Authorization: Bearer {key}"))

    fetched = providers.fetch(provider)

    assert_failed(fetched, NETWORK_ERROR)
    assert mask(key) in fetched.failure.message


@BOTH
def test_a_body_echoing_the_key_never_reaches_the_message(provider: str, upstream) -> None:
    key = KEYS[provider]
    upstream.get(URLS[provider], body=f"<html>bad key {key}</html>".encode())

    fetched = providers.fetch(provider)

    assert_failed(fetched, INVALID_RESPONSE)
    assert mask(key) in fetched.failure.message


@BOTH
def test_a_body_echoing_the_key_where_the_excerpt_cuts_it_leaks_no_part_of_it(provider: str, upstream) -> None:
    # The message quotes the first 80 characters of the body: the key straddles that cut.
    key = KEYS[provider]
    page = f"<html><body><h1>401</h1><p>Rejected credentials: Bearer {key}</p></body></html>"
    assert page.index(key) < 80 < page.index(key) + len(key)
    upstream.get(URLS[provider], body=page.encode())

    fetched = providers.fetch(provider)

    assert_failed(fetched, INVALID_RESPONSE)
    assert not any(key[i : i + 8] in fetched.failure.message for i in range(len(key) - 7)), fetched.failure.message


@BOTH
def test_a_drift_body_quoting_the_key_is_kept_with_the_key_masked(provider: str, upstream) -> None:
    key = KEYS[provider]
    upstream.get(URLS[provider], json={"credits": {"note": f"for {key}"}, "data": {"quotaList": [key]}})

    fetched = providers.fetch(provider)

    assert_failed(fetched, DRIFT)
    assert key.encode() not in fetched.body
    assert mask(key).encode() in fetched.body


def test_a_zai_error_message_echoing_the_key_is_masked(upstream) -> None:
    upstream.get(ZAI_URL, json={"code": 401, "msg": f"token {ZAI_KEY} expired", "success": False})

    fetched = providers.fetch("zai")

    assert_failed(fetched, UNAUTHORIZED)
    assert mask(ZAI_KEY) in fetched.failure.message


def test_a_synthetic_drift_message_naming_the_key_is_masked(upstream) -> None:
    upstream.get(SYNTHETIC_URL, json={SYNTHETIC_KEY: {"note": "unknown key"}})

    assert_failed(providers.fetch("synthetic"), DRIFT)


@BOTH
def test_a_key_that_cannot_be_sent_is_a_masked_network_error(provider: str, settings, upstream) -> None:
    # requests refuses header values with a line break and quotes the value in its error.
    broken = "abcd1234\nefgh5678ijkl"
    settings.__setattr__(providers.KEY_SETTINGS[provider], broken)

    fetched = providers.fetch(provider)

    assert fetched.failure.outcome == NETWORK_ERROR
    assert "efgh5678" not in fetched.failure.message
    assert "efgh5678" not in str(fetched.failure)
    assert len(upstream.calls) == 0
