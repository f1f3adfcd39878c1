"""Failures under /api/ answer one JSON line, never a traceback or Django's HTML page (issue 10, fix 5).

- A JSON body nested 10,000 levels deep is a 400, and nothing is logged beyond Django's one-line warning.
- An exception in an API view (or /metrics) is a JSON 500 with the security headers, DEBUG or not;
  pages keep the HTML 500.
- A database whose write lock another connection holds makes a write a JSON 503 with Retry-After,
  and /api/status says the database is not writable; the lock is taken for real, by a second
  connection (BEGIN EXCLUSIVE on the SQLite file, LOCK TABLE … IN EXCLUSIVE MODE on PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import IntegrityError, OperationalError, connection
from django.test import Client, RequestFactory

from quotas import dbhealth
from quotas.models import PollAttempt
from syntrack_site import errors

DEPTH = 10_000
JSON_BODY_ENDPOINTS = [("put", "/api/settings"), ("put", "/api/password"), ("post", "/api/poll")]
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")


@pytest.fixture
def admin_client(client: Client, providers_configured) -> Client:
    user = get_user_model().objects.create_superuser("boss", password="a-long-password")
    client.force_login(user)
    # Answer a 500 as a browser gets it, instead of re-raising the view's exception in the test.
    client.raise_request_exception = False
    return client


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    # The redacting filter (syntrack_site.logformat) moves a traceback from exc_info to exc_text.
    assert not [record for record in caplog.records if record.exc_info or record.exc_text], caplog.text
    assert "Traceback" not in caplog.text
    assert "RecursionError" not in caplog.text


# --- bodies nested too deeply -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), JSON_BODY_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"[" * DEPTH + b"]" * DEPTH, b'{"a":' * DEPTH + b"1" + b"}" * DEPTH, b'{"provider": ' + b"[" * DEPTH],
    ids=["arrays", "objects", "unclosed"],
)
def test_a_body_nested_10000_levels_deep_is_a_400_without_a_traceback(
    admin_client: Client, caplog: pytest.LogCaptureFixture, method: str, path: str, body: bytes
) -> None:
    caplog.set_level(logging.DEBUG)

    response = getattr(admin_client, method)(path, body, content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "the body must be valid JSON"}
    no_traceback(caplog)


# --- unexpected exceptions ------------------------------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request: pytest.FixtureRequest, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


def broken(*args: object, **kwargs: object) -> None:
    raise RuntimeError("secret detail that must not leak")


@pytest.mark.django_db
def test_an_exception_in_an_api_view_is_a_json_500_with_the_security_headers(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, debug: bool
) -> None:
    monkeypatch.setattr("quotas.reports.providers", broken)

    response = admin_client.get("/api/providers")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "internal error"}
    for header in SECURITY_HEADERS:
        assert header in response, header
    # The details go to the log, once, with the traceback: a bug to fix, not an outage.
    errors_logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors_logged) == 1
    assert "secret detail" in (errors_logged[0].exc_text or "")


@pytest.mark.django_db
def test_an_exception_in_a_write_is_a_json_500(admin_client: Client, monkeypatch: pytest.MonkeyPatch, debug) -> None:
    monkeypatch.setattr("quotas.preferences.update", broken)

    response = admin_client.put("/api/settings", b'{"theme": "dark"}', content_type="application/json")

    assert (response.status_code, response.json()) == (500, {"error": "internal error"})


@pytest.mark.django_db
def test_an_exception_in_metrics_is_a_json_500(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, settings, debug: bool
) -> None:
    settings.SYNTRACK_METRICS_PUBLIC = True
    monkeypatch.setattr("quotas.metrics.generate_latest", broken)

    response = admin_client.get("/metrics")

    assert (response.status_code, response.json()) == (500, {"error": "internal error"})
    assert "Content-Security-Policy" in response


@pytest.mark.django_db
def test_a_page_keeps_the_html_500(admin_client: Client, monkeypatch: pytest.MonkeyPatch, settings) -> None:
    settings.DEBUG = False
    monkeypatch.setattr("quotas.providers.configured", broken)

    response = admin_client.get("/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"secret detail" not in response.content


def wrapped(driver_error: Exception) -> OperationalError:
    """What Django raises for a driver's error: its own class, the driver's as the cause."""
    error = OperationalError(str(driver_error))
    error.__cause__ = driver_error
    return error


@pytest.mark.parametrize(
    ("raised", "status", "message"),
    [
        (wrapped(sqlite3.OperationalError("database is locked")), 503, "database busy, try again"),
        (
            wrapped(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")),
            503,
            "database busy, try again",
        ),
        (wrapped(psycopg.errors.DeadlockDetected("deadlock detected")), 503, "database busy, try again"),
        (wrapped(psycopg.errors.ReadOnlySqlTransaction("read-only transaction")), 503, "database unavailable"),
        (wrapped(psycopg.OperationalError("could not connect to server")), 503, "database unavailable"),
        (IntegrityError("UNIQUE constraint failed"), 500, "internal error"),
        (RuntimeError("boom"), 500, "internal error"),
    ],
)
def test_handler500_answers_what_a_middleware_raised_alike(raised: Exception, status: int, message: str) -> None:
    request = RequestFactory().get("/api/current")
    try:
        raise raised
    except Exception:
        assert sys.exc_info()[1] is raised  # Django calls handler500 inside its `except`
        response = errors.server_error(request)

    assert (response.status_code, json.loads(response.content)) == (status, {"error": message})
    assert ("Retry-After" in response) == (status == 503)


# --- a database locked by another connection -------------------------------------------------------------------


@contextmanager
def write_lock_held_elsewhere() -> Iterator[None]:
    """Another connection holds what every write needs, until the block ends."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(settings["NAME"], isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            other.close()  # rolls back
        return
    tables = ", ".join(
        connection.ops.quote_name(name) for name in (get_user_model()._meta.db_table, PollAttempt._meta.db_table)
    )
    other = psycopg.connect(
        dbname=settings["NAME"],
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
    )
    try:
        # EXCLUSIVE: reads go on (ACCESS SHARE), every INSERT, UPDATE, SELECT … FOR UPDATE waits.
        other.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
        yield
    finally:
        other.close()  # rolls back


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This connection's writes give up after 0.3 s instead of 20 s (the lock is the test, not the wait)."""
    monkeypatch.setattr(dbhealth, "WRITE_PROBE_SECONDS", 0.3)
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        raw = connection.connection
        (previous,) = raw.execute("PRAGMA busy_timeout").fetchone()
        raw.execute("PRAGMA busy_timeout = 300")
        yield
        raw.execute(f"PRAGMA busy_timeout = {previous}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 300")
        yield
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


@pytest.mark.django_db(transaction=True)
def test_a_write_while_the_database_is_locked_is_a_json_503_and_status_says_not_writable(
    admin_client: Client, short_waits: None, caplog: pytest.LogCaptureFixture, debug: bool
) -> None:
    # With DEBUG on Django shows its own error page instead of calling handler500: the middleware answers.
    body = b'{"theme": "dark"}'
    assert admin_client.get("/api/status").json() == {"status": "ok"}

    with write_lock_held_elsewhere():
        write = admin_client.put("/api/settings", body, content_type="application/json")
        status = admin_client.get("/api/status")
        read = admin_client.get("/api/settings")

    assert write.status_code == 503
    assert write["Content-Type"] == "application/json"
    assert write.json() == {"error": "database busy, try again"}
    assert int(write["Retry-After"]) > 0
    for header in SECURITY_HEADERS:
        assert header in write, header
    assert status.status_code == 503
    assert status.json() == {
        "status": "degraded",
        "database": "ok",
        "writable": False,
        "error": "database busy: writes are blocked",
    }
    assert int(status["Retry-After"]) > 0
    assert (read.status_code, read.json()["theme"]) == (200, None)  # reads go on, and nothing was written
    no_traceback(caplog)
    assert "database busy" in caplog.text  # one warning line says what happened

    # The lock gone, everything works again.
    assert admin_client.get("/api/status").json() == {"status": "ok"}
    again = admin_client.put("/api/settings", body, content_type="application/json")
    assert (again.status_code, again.json()["theme"]) == (200, "dark")


@pytest.mark.django_db(transaction=True)
def test_status_probes_writes_without_writing_or_holding_the_lock(client: Client) -> None:
    before = PollAttempt.objects.count()

    assert client.get("/api/status").status_code == 200

    assert PollAttempt.objects.count() == before
    # The probe let go of the write lock: another connection gets it at once.
    with write_lock_held_elsewhere():
        pass
    if connection.vendor == "sqlite":
        assert not connection.connection.in_transaction
        (timeout,) = connection.connection.execute("PRAGMA busy_timeout").fetchone()
        assert timeout == connection.settings_dict["OPTIONS"]["timeout"] * 1000  # restored


def test_the_sqlite_probe_tells_free_locked_and_read_only_apart(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """quotas.dbhealth on plain SQLite files: BEGIN IMMEDIATE alone succeeds on a read-only connection."""
    monkeypatch.setattr(dbhealth, "WRITE_PROBE_SECONDS", 0.2)
    path = tmp_path / "probe.sqlite3"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute(f"CREATE TABLE {connection.ops.quote_name(PollAttempt._meta.db_table)} (id INTEGER PRIMARY KEY)")
    setup.execute(f"INSERT INTO {connection.ops.quote_name(PollAttempt._meta.db_table)} VALUES (1)")
    writer = sqlite3.connect(path, isolation_level=None)
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    assert dbhealth._sqlite(writer) is None
    assert dbhealth._sqlite(read_only) == dbhealth.READ_ONLY
    setup.execute("BEGIN EXCLUSIVE")
    assert dbhealth._sqlite(writer) == dbhealth.BUSY
    setup.execute("ROLLBACK")
    assert dbhealth._sqlite(writer) is None

    assert setup.execute(
        f"SELECT count(*) FROM {connection.ops.quote_name(PollAttempt._meta.db_table)}"
    ).fetchone() == (1,)
    assert not writer.in_transaction and not read_only.in_transaction
    for raw in (setup, writer, read_only):
        raw.close()


@contextmanager
def read_only_session() -> Iterator[None]:
    """This connection refuses writes, as a standby or a read-only file would."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("SET default_transaction_read_only = on")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA query_only = OFF")
            else:
                cursor.execute("RESET default_transaction_read_only")


@pytest.mark.django_db(transaction=True)
def test_a_read_only_database_makes_status_degraded_and_a_write_a_json_503(admin_client: Client) -> None:
    with read_only_session():
        status = admin_client.get("/api/status")
        write = admin_client.put("/api/settings", b'{"theme": "dark"}', content_type="application/json")
        read = admin_client.get("/api/settings")

    assert status.status_code == 503
    assert status.json() == {
        "status": "degraded",
        "database": "ok",
        "writable": False,
        "error": "database is read-only",
    }
    assert (write.status_code, write.json()) == (503, {"error": "database unavailable"})
    assert "Retry-After" in write
    assert read.status_code == 200
    assert admin_client.get("/api/status").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raised", "status", "message"),
    [(PermissionDenied("secret"), 403, "forbidden"), (SuspiciousOperation("secret"), 400, "bad request")],
)
def test_a_4xx_exception_in_an_api_view_is_json_too(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, settings, raised: Exception, status: int, message: str
) -> None:
    settings.DEBUG = False

    def refuse() -> None:
        raise raised

    monkeypatch.setattr("quotas.reports.providers", refuse)

    response = admin_client.get("/api/providers")

    assert (response.status_code, response.json()) == (status, {"error": message})
    assert "Content-Security-Policy" in response
