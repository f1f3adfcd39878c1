"""Export: ``GET /api/export`` and ``manage.py export`` (issue 9 §4).

A small database built row by row (fixed ids) must come out byte for byte as
written below, from the API and the command alike; a larger one, made by
``manage.py demo``, must export in bounded memory.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from accounts import tokens
from alerts.models import Alert
from quotas import export
from quotas.models import PollAttempt, PollSession, QuotaReading, ResetCycle, Snapshot
from quotas.tests.helpers import PROJECT, base_env, database_env, run_manage

pytestmark = pytest.mark.django_db


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def rows() -> None:
    """Two providers, four readings (two at the same instant), cycles, a session, polls, an alert."""
    syn1 = Snapshot.objects.create(id=1, provider="synthetic", captured_at=t("2026-03-01T10:00:00.400000Z"))
    zai = Snapshot.objects.create(id=2, provider="zai", captured_at=t("2026-03-01T10:00:30Z"))
    syn2 = Snapshot.objects.create(id=3, provider="synthetic", captured_at=t("2026-03-02T10:00:00Z"))
    ResetCycle.objects.create(
        id=21,
        provider="synthetic",
        quota="subscription",
        unit="requests",
        started_at=t("2026-03-01T05:00:00Z"),
        ended_at=t("2026-03-01T15:00:00Z"),
        resets_at=t("2026-03-01T15:00:00Z"),
        limit=135.0,
        peak_used=12.0,
        consumed=12.0,
        readings_count=1,
    )
    ResetCycle.objects.create(
        id=22,
        provider="synthetic",
        quota="subscription",
        unit="requests",
        started_at=t("2026-03-02T05:00:00Z"),
        resets_at=t("2026-03-02T15:00:00Z"),
        limit=135.0,
        peak_used=30.0,
        consumed=30.0,
        readings_count=1,
    )
    common = {"kind": "reset", "unit": "requests", "label": "Subscription", "key": "subscription"}
    # Created out of order: the export orders by time, then id.
    QuotaReading.objects.create(
        id=14, snapshot=syn2, provider="synthetic", captured_at=syn2.captured_at, cycle_id=22, **common,
        used=30.0, limit=135.0, remaining=105.0, percent=22.22, resets_at=t("2026-03-02T15:00:00Z"),
    )  # fmt: skip
    QuotaReading.objects.create(
        id=12, snapshot=syn1, provider="synthetic", captured_at=syn1.captured_at, key="rolling_5h",
        label="Rolling, 5 h", kind="rolling", unit="requests", percent=40.5,
        details={"tick_percent": 5.0, "next_tick_at": "2026-03-01T10:15:00Z"},
    )  # fmt: skip
    QuotaReading.objects.create(
        id=11, snapshot=syn1, provider="synthetic", captured_at=syn1.captured_at, cycle_id=21, **common,
        used=12.0, limit=135.0, remaining=123.0, percent=8.75, resets_at=t("2026-03-01T15:00:00Z"),
    )  # fmt: skip
    QuotaReading.objects.create(
        id=13, snapshot=zai, provider="zai", captured_at=zai.captured_at, key="tokens_5h", label="Tokens — 5 h",
        kind="reset", unit="tokens", used=1500000.0, limit=40000000.0, remaining=38500000.0, percent=3.75,
    )  # fmt: skip
    session = PollSession.objects.create(
        id=31,
        provider="synthetic",
        started_at=t("2026-03-01T09:59:00Z"),
        interval_seconds=60,
        polls_ok=2,
        polls_failed=1,
        last_success_at=t("2026-03-02T10:00:00Z"),
    )
    PollSession.objects.create(
        id=32, provider="zai", started_at=t("2026-03-01T09:59:30Z"), ended_at=t("2026-03-01T10:01:00Z"),
        interval_seconds=60, polls_ok=1,
    )  # fmt: skip
    PollAttempt.objects.create(
        id=41, provider="synthetic", at=syn1.captured_at, outcome="ok", latency_ms=120, session=session, snapshot=syn1
    )
    PollAttempt.objects.create(id=42, provider="zai", at=zai.captured_at, outcome="ok", snapshot=zai)
    PollAttempt.objects.create(
        id=43, provider="synthetic", at=t("2026-03-01T11:00:00Z"), outcome="server_error",
        latency_ms=5003, message='HTTP 502: "bad gateway", retry', session=session,
    )  # fmt: skip
    Alert.objects.create(
        id=51, at=t("2026-03-01T12:00:00Z"), event="threshold", provider="synthetic", quota="subscription",
        level="warning", title="Synthetic subscription at 80%", message="Line one\nline two",
    )  # fmt: skip
    Alert.objects.create(
        id=52, at=t("2026-03-01T13:00:00Z"), event="failing", provider="zai",
        title="Z.ai polls failing", message="3 polls failed",
    )  # fmt: skip


CSV = {
    "readings": (
        "id,provider,captured_at,quota,label,kind,unit,used,limit,remaining,percent,resets_at,cycle_id,snapshot_id,details\r\n"
        "11,synthetic,2026-03-01T10:00:00Z,subscription,Subscription,reset,requests,12.0,135.0,123.0,8.75,"
        "2026-03-01T15:00:00Z,21,1,{}\r\n"
        '12,synthetic,2026-03-01T10:00:00Z,rolling_5h,"Rolling, 5 h",rolling,requests,,,,40.5,,,1,'
        '"{""next_tick_at"":""2026-03-01T10:15:00Z"",""tick_percent"":5.0}"\r\n'
        "13,zai,2026-03-01T10:00:30Z,tokens_5h,Tokens — 5 h,reset,tokens,1500000.0,40000000.0,38500000.0,3.75,"
        ",,2,{}\r\n"
        "14,synthetic,2026-03-02T10:00:00Z,subscription,Subscription,reset,requests,30.0,135.0,105.0,22.22,"
        "2026-03-02T15:00:00Z,22,3,{}\r\n"
    ),
    "cycles": (
        "id,provider,quota,unit,started_at,ended_at,resets_at,limit,peak_used,consumed,readings_count\r\n"
        "21,synthetic,subscription,requests,2026-03-01T05:00:00Z,2026-03-01T15:00:00Z,2026-03-01T15:00:00Z,"
        "135.0,12.0,12.0,1\r\n"
        "22,synthetic,subscription,requests,2026-03-02T05:00:00Z,,2026-03-02T15:00:00Z,135.0,30.0,30.0,1\r\n"
    ),
    "sessions": (
        "id,provider,started_at,ended_at,interval_seconds,polls_ok,polls_failed,last_success_at\r\n"
        "31,synthetic,2026-03-01T09:59:00Z,,60,2,1,2026-03-02T10:00:00Z\r\n"
        "32,zai,2026-03-01T09:59:30Z,2026-03-01T10:01:00Z,60,1,0,\r\n"
    ),
    "polls": (
        "id,provider,at,outcome,drift,latency_ms,message,session_id,snapshot_id\r\n"
        "41,synthetic,2026-03-01T10:00:00Z,ok,false,120,,31,1\r\n"
        "42,zai,2026-03-01T10:00:30Z,ok,false,,,,2\r\n"
        '43,synthetic,2026-03-01T11:00:00Z,server_error,false,5003,"HTTP 502: ""bad gateway"", retry",31,\r\n'
    ),
    "alerts": (
        "id,provider,at,event,quota,level,title,message\r\n"
        '51,synthetic,2026-03-01T12:00:00Z,threshold,subscription,warning,Synthetic subscription at 80%,"Line one\n'
        'line two"\r\n'
        "52,zai,2026-03-01T13:00:00Z,failing,,,Z.ai polls failing,3 polls failed\r\n"
    ),
}

JSONL = {
    "readings": (
        '{"id":11,"provider":"synthetic","captured_at":"2026-03-01T10:00:00Z","quota":"subscription",'
        '"label":"Subscription","kind":"reset","unit":"requests","used":12.0,"limit":135.0,"remaining":123.0,'
        '"percent":8.75,"resets_at":"2026-03-01T15:00:00Z","cycle_id":21,"snapshot_id":1,"details":{}}\n'
        '{"id":12,"provider":"synthetic","captured_at":"2026-03-01T10:00:00Z","quota":"rolling_5h",'
        '"label":"Rolling, 5 h","kind":"rolling","unit":"requests","used":null,"limit":null,"remaining":null,'
        '"percent":40.5,"resets_at":null,"cycle_id":null,"snapshot_id":1,'
        '"details":{"next_tick_at":"2026-03-01T10:15:00Z","tick_percent":5.0}}\n'
        '{"id":13,"provider":"zai","captured_at":"2026-03-01T10:00:30Z","quota":"tokens_5h",'
        '"label":"Tokens — 5 h","kind":"reset","unit":"tokens","used":1500000.0,"limit":40000000.0,'
        '"remaining":38500000.0,"percent":3.75,"resets_at":null,"cycle_id":null,"snapshot_id":2,"details":{}}\n'
        '{"id":14,"provider":"synthetic","captured_at":"2026-03-02T10:00:00Z","quota":"subscription",'
        '"label":"Subscription","kind":"reset","unit":"requests","used":30.0,"limit":135.0,"remaining":105.0,'
        '"percent":22.22,"resets_at":"2026-03-02T15:00:00Z","cycle_id":22,"snapshot_id":3,"details":{}}\n'
    ),
    "cycles": (
        '{"id":21,"provider":"synthetic","quota":"subscription","unit":"requests","started_at":"2026-03-01T05:00:00Z",'
        '"ended_at":"2026-03-01T15:00:00Z","resets_at":"2026-03-01T15:00:00Z","limit":135.0,"peak_used":12.0,'
        '"consumed":12.0,"readings_count":1}\n'
        '{"id":22,"provider":"synthetic","quota":"subscription","unit":"requests","started_at":"2026-03-02T05:00:00Z",'
        '"ended_at":null,"resets_at":"2026-03-02T15:00:00Z","limit":135.0,"peak_used":30.0,'
        '"consumed":30.0,"readings_count":1}\n'
    ),
    "sessions": (
        '{"id":31,"provider":"synthetic","started_at":"2026-03-01T09:59:00Z","ended_at":null,"interval_seconds":60,'
        '"polls_ok":2,"polls_failed":1,"last_success_at":"2026-03-02T10:00:00Z"}\n'
        '{"id":32,"provider":"zai","started_at":"2026-03-01T09:59:30Z","ended_at":"2026-03-01T10:01:00Z",'
        '"interval_seconds":60,"polls_ok":1,"polls_failed":0,"last_success_at":null}\n'
    ),
    "polls": (
        '{"id":41,"provider":"synthetic","at":"2026-03-01T10:00:00Z","outcome":"ok","drift":false,"latency_ms":120,'
        '"message":"","session_id":31,"snapshot_id":1}\n'
        '{"id":42,"provider":"zai","at":"2026-03-01T10:00:30Z","outcome":"ok","drift":false,"latency_ms":null,'
        '"message":"","session_id":null,"snapshot_id":2}\n'
        '{"id":43,"provider":"synthetic","at":"2026-03-01T11:00:00Z","outcome":"server_error","drift":false,'
        '"latency_ms":5003,"message":"HTTP 502: \\"bad gateway\\", retry","session_id":31,"snapshot_id":null}\n'
    ),
    "alerts": (
        '{"id":51,"provider":"synthetic","at":"2026-03-01T12:00:00Z","event":"threshold","quota":"subscription",'
        '"level":"warning","title":"Synthetic subscription at 80%","message":"Line one\\nline two"}\n'
        '{"id":52,"provider":"zai","at":"2026-03-01T13:00:00Z","event":"failing","quota":"","level":"",'
        '"title":"Z.ai polls failing","message":"3 polls failed"}\n'
    ),
}


def streamed(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("what", list(CSV))
def test_the_api_exports_each_kind_as_csv_byte_for_byte(api: Client, rows: None, what: str) -> None:
    response = api.get(f"/api/export?what={what}")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="syntrack-{what}-both.csv"'
    assert streamed(response) == CSV[what].encode()


@pytest.mark.parametrize("what", list(JSONL))
def test_the_api_exports_each_kind_as_json_lines_byte_for_byte(api: Client, rows: None, what: str) -> None:
    response = api.get(f"/api/export?what={what}&format=json&provider=both")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"] == f'attachment; filename="syntrack-{what}-both.jsonl"'
    body = streamed(response)
    assert body == JSONL[what].encode()
    assert all(isinstance(json.loads(line), dict) for line in body.splitlines())


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_command_writes_the_same_bytes_to_a_file_and_to_stdout(rows: None, tmp_path: Path, fmt: str) -> None:
    expected = (CSV if fmt == "csv" else JSONL)["readings"]
    target = tmp_path / "out"
    call_command("export", "--what", "readings", "--format", fmt, "--output", str(target))
    out = io.StringIO()
    call_command("export", "--what=readings", f"--format={fmt}", stdout=out)

    assert target.read_bytes() == expected.encode()
    assert out.getvalue() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial file left behind


def lines(body: bytes) -> list[str]:
    """The first column (ids) of each CSV data row."""
    return [line.split(b",", 1)[0].decode() for line in body.splitlines()[1:]]


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("provider=zai", ["13"]),
        ("provider=synthetic", ["11", "12", "14"]),
        ("since=2026-03-02", ["14"]),
        # since is inclusive, until exclusive; a named offset is honoured, none means UTC
        ("since=2026-03-01T11:00:00%2B01:00&until=2026-03-01T10:00:30", ["11", "12"]),
        ("until=2026-03-01T10:00:31Z&provider=zai", ["13"]),
        ("since=2026-03-03", []),
    ],
)
def test_filters_choose_the_rows(api: Client, rows: None, query: str, ids: list[str]) -> None:
    response = api.get(f"/api/export?what=readings&{query}")

    assert response.status_code == 200
    assert lines(streamed(response)) == ids


def test_the_file_name_names_one_provider(api: Client, rows: None) -> None:
    response = api.get("/api/export?what=polls&provider=zai&format=json")

    assert response["Content-Disposition"] == 'attachment; filename="syntrack-polls-zai.jsonl"'
    assert [json.loads(line)["id"] for line in streamed(response).splitlines()] == [42]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "what: is required: one of readings, cycles, sessions, polls, alerts"),
        ("what=snapshots", "what: must be one of readings, cycles, sessions, polls, alerts"),
        ("what=readings&format=xml", "format: must be one of csv, json"),
        ("what=readings&provider=openai", "provider: must be one of synthetic, zai, both"),
        ("what=readings&since=yesterday", "since: must be an ISO-8601 date or date-time"),
        ("what=readings&until=2026-02-30", "until: must be an ISO-8601 date or date-time"),
        ("what=readings&since=2026-03-02&until=2026-03-01", "request: since must be before until"),
        ("what=readings&since=2026-03-02&until=2026-03-02", "request: since must be before until"),
        (f"what=readings&since={'9' * 100}", "since: must be an ISO-8601 date or date-time"),
    ],
)
def test_bad_parameters_are_a_json_400(api: Client, query: str, message: str) -> None:
    response = api.get(f"/api/export?{query}")

    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_it_needs_authentication_and_takes_a_read_only_token(client: Client, rows: None) -> None:
    assert client.get("/api/export?what=readings").status_code == 401
    token = tokens.create("backup")[1]

    response = client.get("/api/export?what=readings", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200
    assert streamed(response) == CSV["readings"].encode()
    assert client.post("/api/export?what=readings", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_a_download_given_up_half_way_leaves_no_transaction_or_cursor_open(client: Client, api_user) -> None:
    client.force_login(api_user)
    at = t("2026-03-01T00:00:00Z")
    PollAttempt.objects.bulk_create(
        PollAttempt(provider="zai", at=at + timedelta(seconds=i), outcome="ok") for i in range(3 * export.CHUNK)
    )
    response = client.get("/api/export?what=polls")
    pieces = iter(response.streaming_content)

    assert next(pieces).startswith(b"id,provider,at,")
    assert next(pieces).count(b"\r\n") == export.ROWS_PER_PIECE
    # PostgreSQL streams from a cursor inside a transaction; SQLite (WAL) reads need none.
    assert connection.in_atomic_block is (connection.vendor == "postgresql")
    response.close()

    # On PostgreSQL the rows came from a cursor inside a transaction, now over.
    assert not connection.in_atomic_block
    assert PollAttempt.objects.count() == 3 * export.CHUNK


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--what: is required"),
        (["--what", "readings", "--format", "xml"], "--format: must be one of csv, json"),
        (["--what", "readings", "--since", "2026-03-02", "--until", "2026-03-01"], "--since must be before until"),
    ],
)
def test_command_usage_errors_exit_2(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("export", *args)

    assert caught.value.returncode == 2
    assert message in str(caught.value)


def test_an_unwritable_output_is_one_line_and_exit_1(rows: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("export", "--what", "polls", "--output", str(tmp_path / "missing" / "out.csv"))

    assert caught.value.returncode == 1
    assert "No such file or directory" in str(caught.value)


def test_a_bad_flag_from_the_command_line_exits_2_in_one_line() -> None:
    result = run_manage("export", "--what", "everything", env=base_env(**database_env()))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "CommandError: --what: must be one of readings, cycles, sessions, polls, alerts"
    ]


# A child's peak RSS after exporting: the export runs through the real command, in a fresh process.
PEAK = """
import resource, sys
import django
django.setup()
from django.core.management import call_command
call_command("export", *sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_kib(env: dict[str, str], *args: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PEAK, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


@pytest.mark.django_db(transaction=True)
def test_a_larger_database_exports_in_bounded_memory(tmp_path: Path) -> None:
    """Three demo days: exporting the last 6 hours of readings and all of them peak within a few MB."""
    env = base_env(**database_env())
    demo = run_manage("demo", "--days", "3", env=env, timeout=120)
    assert demo.returncode == 0, demo.stderr
    last = QuotaReading.objects.order_by("-captured_at").values_list("captured_at", flat=True).first()
    since = (last - timedelta(hours=6)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"

    small_rss = peak_rss_kib(env, "--what", "readings", "--since", since, "--output", str(small))
    large_rss = peak_rss_kib(env, "--what", "readings", "--output", str(large))

    readings = QuotaReading.objects.count()
    with large.open("rb") as exported:
        assert sum(1 for _ in exported) == readings + 1
    assert large.stat().st_size > 5 * small.stat().st_size
    growth_kib = large_rss - small_rss
    assert growth_kib < 12 * 1024, f"{growth_kib} KiB more to export {readings} rows ({connection.vendor})"
