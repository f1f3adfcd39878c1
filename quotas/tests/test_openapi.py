"""``GET /api/openapi.json`` (quotas.openapi): a valid OpenAPI 3.1 document, built from the forms,
that every live answer of every endpoint conforms to (issue 9, item 7).

Two days of demo history are simulated once for the module (committed, then
wiped at its end); each test reads them at a frozen moment just after the
last simulated poll.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
import time_machine
from django import forms as django_forms
from django.db import OperationalError
from django.test import Client
from django.urls import get_resolver
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from accounts import throttle, tokens
from accounts.auth import basic_cache
from accounts.models import User
from alerts.api import AlertsForm
from alerts.models import Alert, Delivery
from quotas import api_schemas, demo, forms, guard, history, insights, metrics, openapi, toolforms
from quotas.locking import PollLock
from quotas.models import Setting

END = datetime(2026, 3, 11, 17, 30, tzinfo=UTC)
NOW = END + timedelta(minutes=1)
PASSWORD = "an-openapi-passw0rd"
DOCUMENT_URI = "urn:syntrack:openapi"
JSON = "application/json"


@pytest.fixture(scope="module")
def two_days(django_db_setup, django_db_blocker) -> Iterator[None]:
    with django_db_blocker.unblock():
        demo.fill(2, 60, end=END, parallel=False)
    yield
    with django_db_blocker.unblock():
        demo.wipe()
        Setting.objects.filter(key=demo.MARKER).delete()


@pytest.fixture
def frozen() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def clients(two_days, db, frozen, providers_configured) -> dict[str, Client]:
    """admin (Basic), viewer (a session, CSRF checked), token, and nobody."""
    basic_cache.clear()
    User.objects.create_user("chief", password=PASSWORD, is_staff=True, is_superuser=True)
    viewer = User.objects.create_user("viewer", password=PASSWORD)
    _, token = tokens.create("openapi")
    alert = Alert.objects.create(
        at=END - timedelta(hours=1), event="threshold", provider="zai", quota="tokens_5h", level="warning",
        title="Z.ai 5-hour tokens at 82%", message="Usage crossed the warning level.",
    )  # fmt: skip
    Delivery.objects.create(alert=alert, channel="ntfy://…", status="sent")
    Delivery.objects.create(alert=alert, channel="json://…", status="failed", error="HTTP 500")
    Alert.objects.create(at=END - timedelta(hours=2), event="drift", provider="synthetic", title="Drift", message="m")
    session = Client(enforce_csrf_checks=True)
    session.force_login(viewer)
    session.get("/")  # the csrftoken cookie
    basic = base64.b64encode(f"chief:{PASSWORD}".encode()).decode()
    return {
        "admin": Client(HTTP_AUTHORIZATION=f"Basic {basic}"),
        "viewer": session,
        "token": Client(HTTP_AUTHORIZATION=f"Bearer {token}"),
        "nobody": Client(),
    }


# --- the document ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build()


def validator_for(document: dict[str, Any], path: str, method: str, status: int, media: str) -> Draft202012Validator:
    """The response schema of ``path`` / ``method`` / ``status``, its $refs resolved within the document."""
    registry = Registry().with_resource(DOCUMENT_URI, Resource.from_contents(document, DRAFT202012))
    pointer = "/".join(
        part.replace("~", "~0").replace("/", "~1")
        for part in ("paths", path, method, "responses", str(status), "content", media, "schema")
    )
    schema = {"$ref": f"{DOCUMENT_URI}#/{pointer}"}
    return Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors_of(document: dict[str, Any], path: str, method: str, status: int, body: Any, media: str = JSON) -> list:
    return [e.message for e in validator_for(document, path, method, status, media).iter_errors(body)]


def test_it_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    OpenAPIV31SpecValidator(document).validate()

    assert document["openapi"] == "3.1.0"
    for schema in api_schemas.SCHEMAS.values():
        Draft202012Validator.check_schema(schema)


def api_routes() -> list[str]:
    return ["/" + str(p.pattern) for p in get_resolver().url_patterns if str(p.pattern).startswith("api/")]


def test_every_api_url_is_in_it_with_the_methods_its_view_allows(document: dict[str, Any], admin_client) -> None:
    assert set(api_routes()) <= set(document["paths"])
    for path, operations in document["paths"].items():
        # The views' 405 names what they allow (GET allows HEAD too); /metrics is a 404 until a token exists.
        allowed = ", ".join(metrics.ALLOWED) if path == "/metrics" else admin_client.generic("PATCH", path)["Allow"]
        assert {m.strip().lower() for m in allowed.split(",")} - {"head"} == set(operations), path


def test_query_parameters_are_the_forms_fields(document: dict[str, Any]) -> None:
    def parameters(path: str) -> dict[str, dict]:
        return {p["name"]: p for p in document["paths"][path]["get"].get("parameters", [])}

    assert set(parameters("/api/current")) == {"provider"}
    assert parameters("/api/current")["provider"]["schema"]["enum"] == ["synthetic", "zai", "both"]
    assert parameters("/api/history")["range"]["schema"]["enum"] == list(history.RANGES)
    assert parameters("/api/insights")["range"]["schema"]["enum"] == list(insights.RANGES)
    assert set(parameters("/api/cycles")) == set(forms.CyclesForm.base_fields) == {"provider", "limit", "quota"}
    limit = parameters("/api/polls")["limit"]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": forms.MAX_LIMIT}
    assert limit["required"] is False and limit["allowEmptyValue"] is True
    assert parameters("/api/cycles")["quota"]["schema"] == {
        "type": "string",
        "maxLength": 64,
        "pattern": "^[a-z0-9_]+$",
    }
    assert set(parameters("/api/alerts")) == set(AlertsForm.base_fields)
    guard = parameters("/api/guard")
    assert guard["provider"]["required"] is True and guard["provider"]["schema"]["enum"] == ["synthetic", "zai"]
    assert guard["min_remaining_percent"]["schema"] == {"type": "number", "minimum": 0, "maximum": 100}
    export = parameters("/api/export")
    assert export["what"]["required"] is True
    assert export["format"]["schema"]["enum"] == list(toolforms.export.FORMATS)
    assert export["since"]["description"] == toolforms.MOMENT_HELP[:1].upper() + toolforms.MOMENT_HELP[1:] + "."


def test_a_field_added_to_a_form_shows_up() -> None:
    class Wider(forms.HistoryForm):
        colour = django_forms.ChoiceField(choices=[("red", "Red"), ("blue", "Blue")])
        depth = django_forms.IntegerField(required=False, min_value=2, max_value=9)

    by_name = {p["name"]: p for p in openapi.parameters(Wider)}

    assert by_name["colour"]["schema"] == {"type": "string", "enum": ["red", "blue"]}
    assert by_name["colour"]["required"] is True and "allowEmptyValue" not in by_name["colour"]
    assert by_name["depth"]["schema"] == {"type": "integer", "minimum": 2, "maximum": 9}
    assert by_name["range"]["schema"]["enum"] == list(history.RANGES)


def test_request_bodies_follow_the_code_that_checks_them(document: dict[str, Any]) -> None:
    settings_body = document["paths"]["/api/settings"]["put"]["requestBody"]["content"][JSON]["schema"]
    assert settings_body["additionalProperties"] is False
    assert "Europe/Berlin" in settings_body["properties"]["timezone"]["enum"]
    assert settings_body["properties"]["hidden_insights"]["items"]["enum"] == list(insights.INSIGHT_KEYS)
    password = document["paths"]["/api/password"]["put"]["requestBody"]["content"][JSON]["schema"]
    new = Draft202012Validator(password["properties"]["new_password"])
    assert password["properties"]["new_password"]["minLength"] == 8
    assert not new.is_valid("short") and not new.is_valid(" ChangeMe ") and new.is_valid("a-good-long-one")


def test_it_is_built_once_per_process_and_served_with_the_api_s_authentication(clients) -> None:
    assert openapi.document() is openapi.document()

    served = clients["token"].get("/api/openapi.json")

    assert served.status_code == 200 and served.json() == json.loads(json.dumps(openapi.document()))
    assert clients["nobody"].get("/api/openapi.json").status_code == 401


# --- live answers ------------------------------------------------------------------------------------


class Case(NamedTuple):
    role: str
    method: str
    path: str
    statuses: tuple[int, ...]
    query: str = ""
    body: Any = None


CASES = [
    Case("nobody", "get", "/api/status", (200,)),
    Case("admin", "get", "/api/providers", (200,)),
    Case("token", "get", "/api/providers", (200,)),
    Case("nobody", "get", "/api/providers", (401,)),
    *[
        Case("admin", "get", "/api/current", (200,), q)
        for q in ("", "provider=synthetic", "provider=zai", "provider=both")
    ],
    Case("admin", "get", "/api/current", (400,), "provider=openai"),
    *[Case("admin", "get", "/api/history", (200,), f"provider=zai&range={r}") for r in history.RANGES],
    *[Case("viewer", "get", "/api/history", (200,), f"provider=synthetic&range={r}") for r in ("1h", "7d")],
    Case("admin", "get", "/api/history", (200,), "provider=both&range=24h"),
    Case("admin", "get", "/api/history", (400,), "range=2d"),
    *[
        Case("admin", "get", "/api/cycles", (200,), q)
        for q in ("", "provider=both", "provider=zai&quota=tokens_5h&limit=2")
    ],
    Case("admin", "get", "/api/cycles", (400,), "provider=zai&quota=nope"),
    Case("admin", "get", "/api/cycles", (400,), "limit=0"),
    *[Case("admin", "get", "/api/summary", (200,), q) for q in ("provider=synthetic", "provider=zai", "provider=both")],
    *[Case("token", "get", "/api/sessions", (200,), q) for q in ("", "provider=zai&limit=3", "provider=both")],
    Case("admin", "get", "/api/sessions", (400,), "limit=501"),
    *[Case("admin", "get", "/api/insights", (200,), f"provider=zai&range={r}") for r in insights.RANGES],
    Case("viewer", "get", "/api/insights", (200,), "provider=both&range=30d"),
    Case("admin", "get", "/api/insights", (400,), "range=1y"),
    *[Case("admin", "get", "/api/polls", (200,), q) for q in ("", "provider=synthetic&limit=5", "provider=both")],
    Case("admin", "get", "/api/polls", (400,), "limit=x"),
    Case("admin", "get", "/api/alerts", (200,)),
    Case("token", "get", "/api/alerts", (200,), "limit=1"),
    Case("admin", "get", "/api/alerts", (400,), "limit=-1"),
    Case("viewer", "get", "/api/settings", (200,)),
    Case("token", "get", "/api/settings", (200,)),
    Case("admin", "put", "/api/settings", (200,), body={"timezone": "Europe/Berlin", "hidden_insights": ["plan"]}),
    Case("viewer", "put", "/api/settings", (200,), body={"theme": "dark", "timezone": None, "hidden_insights": None}),
    Case("admin", "put", "/api/settings", (400,), body={"timezone": "Mars/Olympus"}),
    Case("admin", "put", "/api/settings", (400,), body=["timezone"]),
    Case("token", "put", "/api/settings", (403,), body={"theme": "dark"}),
    Case("nobody", "put", "/api/settings", (401,), body={"theme": "dark"}),
    Case("admin", "get", "/api/guard", (200, 429), "provider=zai"),
    Case("admin", "get", "/api/guard", (429,), "provider=synthetic&min_remaining_percent=100"),
    Case("token", "get", "/api/guard", (200, 429), "provider=synthetic&quota=subscription&min_remaining_percent=0"),
    Case("admin", "get", "/api/guard", (400,), "provider=zai&quota=nope"),
    Case("admin", "get", "/api/guard", (400,), ""),
    Case("admin", "get", "/api/guard", (400,), "provider=zai&min_remaining_percent=101"),
    Case("admin", "post", "/api/poll", (409,), body={}),
    Case("admin", "post", "/api/poll", (409,), "provider=zai"),
    Case("admin", "post", "/api/poll", (400,), body={"provider": "nope"}),
    Case("admin", "post", "/api/poll", (400,), "provider=zai", body={"provider": "synthetic"}),
    Case("token", "post", "/api/poll", (403,), body={}),
    Case("admin", "put", "/api/password", (400,), body={"current_password": PASSWORD, "new_password": "short"}),
    Case("admin", "put", "/api/password", (400,), body={"current_password": PASSWORD}),
    Case("admin", "put", "/api/password", (403,), body={"current_password": "wrong-one", "new_password": "x" * 12}),
    Case("admin", "put", "/api/password", (204,), body={"current_password": PASSWORD, "new_password": "y" * 12}),
    Case("token", "get", "/api/openapi.json", (200,)),
    Case("token", "get", "/metrics", (200,)),
    Case("nobody", "get", "/metrics", (401,)),
]


def send(client: Client, case: Case):
    """The request; a signed-in browser's write carries the CSRF token, as the dashboard's do."""
    path = f"{case.path}?{case.query}" if case.query else case.path
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value} if "csrftoken" in client.cookies else {}
    if case.body is None:
        return client.generic(case.method.upper(), path, **csrf)
    return client.generic(case.method.upper(), path, json.dumps(case.body), content_type=JSON, **csrf)


def media_of(response) -> str:
    return response["Content-Type"]


def check(document: dict[str, Any], case: Case, response) -> None:
    """The answer has a status the document lists for the operation, and the body its schema."""
    declared = document["paths"][case.path][case.method]["responses"]
    assert str(response.status_code) in declared, (case, response.status_code)
    described = declared[str(response.status_code)]
    if "content" not in described:
        assert response.content == b"", case
        return
    media = media_of(response)
    assert media in described["content"] or media.split(";")[0] in described["content"], (case, media)
    key = media if media in described["content"] else media.split(";")[0]
    if key == JSON:
        body = response.json()
    else:
        body = b"".join(response.streaming_content if response.streaming else [response.content]).decode()
    assert errors_of(document, case.path, case.method, response.status_code, body, key) == [], (case, body)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.role} {c.method} {c.path}?{c.query} {c.body or ''}" for c in CASES])
def test_live_answers_conform(document: dict[str, Any], clients: dict[str, Client], case: Case) -> None:
    response = send(clients[case.role], case)

    assert response.status_code in case.statuses, (case, response.content[:300])
    check(document, case, response)


def test_every_operation_is_exercised(document: dict[str, Any]) -> None:
    exercised = {(c.path, c.method) for c in CASES} | {("/api/export", "get")}
    declared = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert declared == exercised


def test_export_answers_conform(document: dict[str, Any], clients: dict[str, Client]) -> None:
    for query, media in (
        ("what=readings", "text/csv; charset=utf-8"),
        ("what=cycles&format=json&provider=zai", "application/x-ndjson"),
        ("what=polls&format=csv&since=2026-03-11&until=2026-03-11T12:00:00Z", "text/csv; charset=utf-8"),
        ("what=alerts&format=json", "application/x-ndjson"),
    ):
        case = Case("token", "get", "/api/export", (200,), query)
        response = send(clients["token"], case)
        assert response.status_code == 200 and response["Content-Type"] == media, query
        assert response["Content-Disposition"].startswith("attachment; filename=")
        check(document, case, response)
    for query in ("", "what=everything", "what=readings&since=2026-03-11&until=2026-03-10", "what=readings&since=soon"):
        case = Case("admin", "get", "/api/export", (400,), query)
        response = send(clients["admin"], case)
        assert response.status_code == 400, query
        check(document, case, response)


def test_stale_numbers_and_a_running_poller_conform(
    document: dict[str, Any], clients: dict[str, Client], frozen: time_machine.Coordinates
) -> None:
    with PollLock("manage.py poll", wait=0):
        case = Case("viewer", "post", "/api/poll", (202,), body={"provider": "zai"})
        response = send(clients["viewer"], case)
    assert response.status_code == 202, response.content
    check(document, case, response)
    providers = send(clients["admin"], Case("admin", "get", "/api/providers", (200,)))
    assert any(p["poll_requested_at"] for p in providers.json()["providers"])
    check(document, Case("admin", "get", "/api/providers", (200,)), providers)

    frozen.move_to(NOW + timedelta(hours=1))
    case = Case("admin", "get", "/api/guard", (503,), "provider=zai")
    response = send(clients["admin"], case)
    assert response.status_code == 503
    check(document, case, response)


def test_a_busy_database_gets_the_documented_503_on_the_guard_too(
    document: dict[str, Any], clients: dict[str, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard's own 503 (stale numbers) has a body of its own; a locked database answers the
    # API's error body, and the document must allow both.
    locked = OperationalError("database is locked")
    locked.__cause__ = sqlite3.OperationalError("database is locked")

    def busy(*args: object, **kwargs: object) -> None:
        raise locked

    monkeypatch.setattr(guard, "check", busy)
    case = Case("token", "get", "/api/guard", (503,), "provider=zai")
    response = send(clients["token"], case)
    assert response.status_code == 503 and response.json() == {"error": "database busy, try again"}
    check(document, case, response)


def test_a_locked_out_address_gets_the_documented_429(document: dict[str, Any], clients: dict[str, Client]) -> None:
    for _ in range(throttle.MAX_FAILURES):
        throttle.record_failure("127.0.0.1")
    for case in (
        Case("admin", "get", "/api/current", (429,)),
        Case("token", "get", "/api/guard", (429,), "provider=zai"),
    ):
        response = send(clients[case.role], case)
        assert response.status_code == 429 and int(response["Retry-After"]) > 0
        check(document, case, response)


def test_a_session_write_without_the_csrf_header_gets_the_documented_403(
    document: dict[str, Any], clients: dict[str, Client]
) -> None:
    case = Case("viewer", "put", "/api/settings", (403,), body={"theme": "dark"})
    response = clients["viewer"].put(case.path, json.dumps(case.body), content_type=JSON)  # no X-CSRFToken
    assert response.status_code == 403
    check(document, case, response)
    token = clients["viewer"].cookies["csrftoken"].value
    response = clients["viewer"].put(case.path, json.dumps(case.body), content_type=JSON, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


def test_a_key_added_or_dropped_by_a_view_fails_validation(
    document: dict[str, Any], clients: dict[str, Client]
) -> None:
    current = clients["admin"].get("/api/current?provider=zai").json()
    assert errors_of(document, "/api/current", "get", 200, current) == []

    added = {**current, "quotas": [{**current["quotas"][0], "new_key": 1}, *current["quotas"][1:]]}
    dropped = {key: value for key, value in current.items() if key != "plan"}
    renamed = {**current, "quotas": [{**{k: v for k, v in current["quotas"][0].items() if k != "outlook"}}]}
    for body in (added, dropped, renamed, {**current, "extra": True}):
        assert errors_of(document, "/api/current", "get", 200, body) != []

    both = clients["admin"].get("/api/current?provider=both").json()
    assert errors_of(document, "/api/current", "get", 200, both) == []
    assert errors_of(document, "/api/current", "get", 200, {"synthetic": both["synthetic"]}) != []

    polls = clients["admin"].get("/api/polls").json()
    assert errors_of(document, "/api/polls", "get", 200, {"polls": [{**polls["polls"][0], "outcome": "fine"}]}) != []
    assert errors_of(document, "/api/polls", "get", 200, {"polls": [{**polls["polls"][0], "at": "yesterday"}]}) != []


def test_status_answers_another_method_with_the_json_405(document: dict[str, Any]) -> None:
    """Regression (make fuzz): a POST to /api/status got Django's HTML CSRF page, not the JSON 405."""
    response = Client(enforce_csrf_checks=True).post("/api/status")

    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert response.json() == {"error": "method POST not allowed"}


@pytest.mark.parametrize(
    "query",
    [
        # PostgreSQL takes offsets up to ±15:59 only: this one reached the query and came back as a 503.
        "what=polls&until=0506-08-17T11:20:15.174156%2B21:31",
        "what=polls&since=2026-03-11T12:00:00-23:59",
    ],
)
def test_an_export_moment_with_any_offset_is_taken_in_utc(
    document: dict[str, Any], clients: dict[str, Client], query: str
) -> None:
    """Regression (make fuzz on PostgreSQL)."""
    case = Case("admin", "get", "/api/export", (200,), query)
    response = send(clients["admin"], case)

    assert response.status_code == 200
    check(document, case, response)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-05:00"])
def test_an_export_moment_outside_the_years_utc_can_hold_is_a_400(clients: dict[str, Client], moment: str) -> None:
    """Regression (make fuzz): on SQLite these were a 500 (OverflowError adapting them to UTC)."""
    response = clients["admin"].get(f"/api/export?what=readings&since={moment}")

    assert response.status_code == 400
    assert response.json() == {"error": "since: is out of range: years 1 to 9999 in UTC"}


@pytest.mark.parametrize(
    "query", ["provider=zai&provider=synthetic", "provider=zai&provider=", "range=7d&range=1d&provider=zai"]
)
def test_a_parameter_given_twice_is_a_400(document: dict[str, Any], clients: dict[str, Client], query: str) -> None:
    """Regression (make fuzz): the last value silently won, so ?provider=x&provider= answered 200."""
    case = Case("admin", "get", "/api/insights", (400,), query)
    response = send(clients["admin"], case)

    assert response.status_code == 400 and response.json()["error"].endswith(": must be given once")
    check(document, case, response)
