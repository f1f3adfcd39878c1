"""``manage.py import_onwatch``: the history of a SynTrack v1.7 / onWatch database, imported."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.forms.models import model_to_dict

from conftest import fixture_json, store_payload
from quotas import demo, onwatch, rollups
from quotas.locking import PollLock
from quotas.models import PollSession, QuotaReading, QuotaRollup, ResetCycle, Resolution, Setting, Snapshot
from quotas.providers import synthetic
from quotas.reparsing import reparse
from quotas.tests.onwatch_db import DOWN_FROM, SUB_FIRST_RESET, TOKENS_FIRST_RESET, build, go_text

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOURS = 6
# Shortly after the old program stopped: every reading is within retention.
NOW = T0 + timedelta(hours=HOURS, minutes=5)

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_db(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "onwatch.db"
    return path, build(path, T0, HOURS)


def run_import(path: Path | str, now: datetime = NOW) -> str:
    out = StringIO()
    with time_machine.travel(now, tick=False):
        call_command("import_onwatch", str(path), stdout=out)
    return out.getvalue()


def cycles(provider: str) -> list[tuple]:
    return list(
        ResetCycle.objects.filter(provider=provider)
        .order_by("quota", "started_at")
        .values_list("quota", "started_at", "ended_at", "resets_at", "peak_used", "consumed", "readings_count")
    )


def counts() -> dict[str, int]:
    models = (Snapshot, QuotaReading, ResetCycle, PollSession, QuotaRollup)
    return {model.__name__: model.objects.count() for model in models}


def rollup_rows(provider: str) -> list[dict]:
    rows = QuotaRollup.objects.filter(provider=provider).order_by("key", "resolution", "start")
    return [{k: v for k, v in model_to_dict(r).items() if k not in ("id", "last_cycle_id")} for r in rows]


def test_it_imports_every_snapshot_with_the_readings_a_poll_stores(old_db: tuple[Path, dict]) -> None:
    path, info = old_db
    out = run_import(path)

    polls = len(info["times"])
    assert out.splitlines()[0].startswith(f"Synthetic: {polls} snapshots imported ({polls} with readings kept, ")
    assert out.splitlines()[1].startswith(f"Z.ai: {polls} snapshots imported ({polls} with readings kept, ")
    assert len(out.splitlines()) == 2
    assert Snapshot.objects.filter(provider="synthetic").count() == polls
    assert Snapshot.objects.filter(provider="zai", raw__isnull=True).count() == polls
    # The same keys, labels, kinds and units as a poll of a generation-A / v1.7-era payload.
    polled = {
        (q.key, q.label, q.kind, q.unit)
        for q in synthetic.parse(fixture_json("synthetic/v1_tool_call_discounts.json")).quotas
    }
    imported = set(QuotaReading.objects.filter(provider="synthetic").values_list("key", "label", "kind", "unit"))
    assert imported == polled
    zai_keys = set(QuotaReading.objects.filter(provider="zai").values_list("key", "label", "unit"))
    assert zai_keys == {("tokens_5h", "Tokens (5h)", "tokens"), ("time_monthly", "Tool calls (monthly)", "calls")}
    second = QuotaReading.objects.get(provider="synthetic", key="subscription", captured_at=info["times"][1])
    assert (second.used, second.limit, second.remaining) == (235.3, 1350.0, 1114.7)
    assert second.resets_at == T0 + SUB_FIRST_RESET


def test_zai_reset_times_written_in_the_servers_offset_become_utc(old_db: tuple[Path, dict]) -> None:
    path, info = old_db
    run_import(path)

    first = QuotaReading.objects.filter(provider="zai", key="tokens_5h").earliest("captured_at")
    assert first.resets_at == T0 + TOKENS_FIRST_RESET
    assert first.captured_at == info["times"][0] + timedelta(milliseconds=200)
    tools = QuotaReading.objects.filter(provider="zai", key="time_monthly").latest("captured_at").details["tools"]
    assert [t["name"] for t in tools] == ["search-prime", "web-reader"]


def test_cycles_are_rebuilt_at_the_true_resets_not_copied(old_db: tuple[Path, dict]) -> None:
    path, info = old_db
    with sqlite3.connect(path) as db:
        go_rows = db.execute("SELECT COUNT(*) FROM reset_cycles").fetchone()[0]
    out = run_import(path)

    assert go_rows > 300  # v1.7's mini-cycles: one per poll for search
    assert f"(from {go_rows} v1.7 cycle rows)" in out
    sub = ResetCycle.objects.filter(provider="synthetic", quota="subscription").order_by("started_at")
    assert [(c.started_at, c.ended_at) for c in sub] == [
        (info["times"][0], T0 + SUB_FIRST_RESET),
        (T0 + SUB_FIRST_RESET, None),
    ]
    # Search's renewsAt drifts by a poll on every poll: no reset. Tool calls never reset here.
    assert ResetCycle.objects.filter(provider="synthetic", quota="search_hourly").count() == 1
    assert ResetCycle.objects.filter(provider="synthetic", quota="free_tool_calls").count() == 1
    tokens = ResetCycle.objects.filter(provider="zai", quota="tokens_5h").order_by("started_at")
    assert [c.started_at for c in tokens] == [info["times"][0] + timedelta(milliseconds=200), T0 + TOKENS_FIRST_RESET]
    assert tokens[0].ended_at == T0 + TOKENS_FIRST_RESET
    # The reading that revealed the reset belongs to the new cycle and counts there.
    revealing = QuotaReading.objects.filter(provider="zai", key="tokens_5h", captured_at__gt=T0 + TOKENS_FIRST_RESET)
    first_after = revealing.earliest("captured_at")
    assert first_after.cycle_id == tokens[1].pk
    assert tokens[1].readings_count == revealing.count()
    assert QuotaReading.objects.filter(cycle__isnull=True, kind="reset").count() == 0


def test_cycles_and_roll_ups_agree_with_a_reparse_and_rebuild_of_the_same_readings(old_db: tuple[Path, dict]) -> None:
    path, _ = old_db
    run_import(path)
    imported = {p: (cycles(p), rollup_rows(p)) for p in ("synthetic", "zai")}

    for provider in ("synthetic", "zai"):
        reparse(provider)  # raw bodies absent: the readings are kept and re-tracked, roll-ups rebuilt
        assert cycles(provider) == imported[provider][0]
        rollups.rebuild(provider)
        assert rollup_rows(provider) == imported[provider][1]
    assert QuotaRollup.objects.filter(resolution=Resolution.FIVE_MINUTES).exists()


def test_sessions_come_from_the_snapshots_each_run_took(old_db: tuple[Path, dict]) -> None:
    path, info = old_db
    run_import(path)

    times = info["times"]
    crashed_last = max(at for at in times if at < T0 + DOWN_FROM)
    for provider, lag in (("synthetic", timedelta(0)), ("zai", timedelta(milliseconds=200))):
        sessions = list(PollSession.objects.filter(provider=provider).order_by("started_at"))
        assert [s.started_at for s in sessions] == [started for started, _ in info["sessions"]]
        # v1.7 closed the crashed run at the restart; SynTrack ends it at its last poll.
        assert [s.ended_at for s in sessions] == [crashed_last + lag, times[-1] + lag]
        assert sum(s.polls_ok for s in sessions) == len(times)
        assert all(s.polls_failed == 0 and s.interval_seconds == 60 for s in sessions)
    session = PollSession.objects.filter(provider="synthetic").earliest("started_at")
    # Consumption, not v1.7's raw counter maximum: the subscription's rise, the reset's new usage included.
    sub = session.quotas["subscription"]
    assert sub["consumed"] > 0 and sub["peak_used"] < 400


def test_a_second_import_adds_nothing(old_db: tuple[Path, dict]) -> None:
    path, info = old_db
    run_import(path)
    before = counts()
    cycles_before = cycles("synthetic") + cycles("zai")

    out = run_import(path)

    assert counts() == before
    assert cycles("synthetic") + cycles("zai") == cycles_before
    polls = len(info["times"])
    assert out.splitlines()[0] == (
        f"Synthetic: 0 snapshots imported (0 with readings kept, 0 readings), {polls} skipped; "
        "0 reset cycles rebuilt (from 343 v1.7 cycle rows); 0 sessions imported, 2 skipped; 0 roll-ups"
    )


def test_a_later_copy_of_the_database_adds_only_what_is_new(tmp_path: Path) -> None:
    full = tmp_path / "full.db"
    info = build(full, T0, HOURS)
    part = tmp_path / "part.db"
    with sqlite3.connect(full) as source, sqlite3.connect(part) as target:
        source.backup(target)
        cut = go_text(T0 + timedelta(hours=4))
        for table in ("quota_snapshots", "zai_snapshots"):
            target.execute(f"DELETE FROM {table} WHERE captured_at >= ?", (cut,))
    run_import(part, now=T0 + timedelta(hours=4))
    first_part = Snapshot.objects.filter(provider="synthetic").count()
    out = run_import(full)
    resumed = (cycles("synthetic"), cycles("zai"), rollup_rows("synthetic"), rollup_rows("zai"))
    resumed_counts = counts()

    demo.wipe()  # every polled row; then the same copy imported in one go
    Setting.objects.filter(key=onwatch.IMPORT_KEY).delete()
    run_import(full)

    # v1.7's text order put 13:00:00.88Z before the cut at 13:00:00Z: the copy ends a poll into the hour.
    assert first_part == 221
    assert out.startswith(f"Synthetic: {len(info['times']) - first_part} snapshots imported")
    assert len(info["times"]) == Snapshot.objects.filter(provider="synthetic").count()
    assert counts() == resumed_counts
    assert (cycles("synthetic"), cycles("zai"), rollup_rows("synthetic"), rollup_rows("zai")) == resumed


def test_an_old_history_keeps_what_retention_would_have_left(old_db: tuple[Path, dict]) -> None:
    path, info = old_db
    run_import(path, now=T0 + timedelta(days=20))

    last = info["times"][-1]
    readings = QuotaReading.objects.filter(provider="synthetic")
    # The latest snapshot and the hour before it (/api/current), as prune leaves them.
    assert readings.earliest("captured_at").captured_at >= last - timedelta(hours=1)
    assert Snapshot.objects.filter(provider="synthetic").count() == sum(
        1 for at in info["times"] if at >= last - timedelta(hours=1)
    )
    # Cycles and sessions forever, hourly roll-ups for 400 days, 5-minute ones for 8.
    assert ResetCycle.objects.filter(provider="synthetic", quota="subscription").count() == 2
    assert PollSession.objects.count() == 4
    assert QuotaRollup.objects.filter(resolution=Resolution.HOUR, provider="synthetic", key="subscription").count() == 6
    assert not QuotaRollup.objects.filter(resolution=Resolution.FIVE_MINUTES).exists()


def test_the_history_api_answers_for_the_imported_range(old_db: tuple[Path, dict], api) -> None:
    path, _ = old_db
    run_import(path)

    with time_machine.travel(NOW, tick=False):
        cycles_body = api.get("/api/cycles", {"provider": "synthetic", "quota": "subscription"}).json()
        history = api.get("/api/history", {"provider": "zai", "range": "6h"})
        day = api.get("/api/history", {"provider": "synthetic", "range": "24h"})
    assert len(cycles_body["cycles"]) == 2
    assert history.status_code == 200 and day.status_code == 200
    assert "tokens_5h" in str(history.json())
    assert "subscription" in str(day.json())


def test_a_demo_database_is_refused(old_db: tuple[Path, dict]) -> None:
    path, _ = old_db
    Setting.objects.create(key="demo", value={"until": NOW.isoformat()})

    with pytest.raises(CommandError) as caught:
        run_import(path)

    assert caught.value.returncode == 1
    assert "holds demo data" in str(caught.value)
    assert Snapshot.objects.count() == 0


def test_a_provider_syntrack_already_polls_is_refused(old_db: tuple[Path, dict]) -> None:
    path, _ = old_db
    store_payload("zai", fixture_json("zai/v1_tokens_and_time.json"), NOW - timedelta(hours=3))

    with pytest.raises(CommandError) as caught:
        run_import(path)

    assert caught.value.returncode == 1
    assert str(caught.value).startswith("Z.ai: SynTrack has polled it since 2026-03-02 12:05 UTC")


def bad_files(tmp_path: Path) -> list[tuple[Path, str]]:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n" * 100)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE quota_snapshots (id INTEGER PRIMARY KEY, captured_at TEXT)")
    partial = tmp_path / "partial.db"
    with sqlite3.connect(partial) as db:
        db.executescript(onwatch_schema().replace("time_usage_details TEXT NOT NULL DEFAULT ''", "extra TEXT"))
    return [
        (tmp_path / "missing.db", "no such file"),
        (tmp_path, "no such file"),
        (text, "not a SQLite database"),
        (other, "not a SynTrack v1.7 / onWatch database (quota_snapshots lacks provider, search_limit,"),
        (partial, "not a SynTrack v1.7 / onWatch database (zai_snapshots lacks time_usage_details)"),
    ]


def onwatch_schema() -> str:
    from quotas.tests.onwatch_db import SCHEMA

    return SCHEMA.read_text()


def test_a_path_that_is_no_v1_7_database_exits_2_with_one_line(tmp_path: Path) -> None:
    for path, message in bad_files(tmp_path):
        with pytest.raises(CommandError) as caught:
            run_import(path)
        assert caught.value.returncode == 2
        assert str(caught.value).startswith(f"{path}: {message}")
        assert "\n" not in str(caught.value)
    assert counts() == dict.fromkeys(counts(), 0)


def test_the_old_database_is_opened_read_only(old_db: tuple[Path, dict]) -> None:
    path, _ = old_db
    source = onwatch.open_database(str(path))
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        source.execute("DELETE FROM sessions")
    source.close()


def test_go_times_of_every_shape_parse_to_utc() -> None:
    assert onwatch.go_time("2026-02-06T16:16:18.386Z") == datetime(2026, 2, 6, 16, 16, 18, 386000, tzinfo=UTC)
    assert onwatch.go_time("2026-02-06T16:16:18.123456789Z") == datetime(2026, 2, 6, 16, 16, 18, 123456, tzinfo=UTC)
    assert onwatch.go_time("2026-02-06T22:49:45.482+05:30") == datetime(2026, 2, 6, 17, 19, 45, 482000, tzinfo=UTC)
    assert onwatch.go_time("2026-02-06 16:16:18+00:00") == datetime(2026, 2, 6, 16, 16, 18, tzinfo=UTC)
    assert onwatch.go_time("0001-01-01T00:00:00Z") is None
    assert onwatch.go_time("") is None and onwatch.go_time(None) is None


def test_it_refuses_while_a_poller_holds_the_database(old_db: tuple[Path, dict]) -> None:
    path, _ = old_db

    with PollLock("manage.py poll"), pytest.raises(CommandError) as caught:
        run_import(path)

    assert caught.value.returncode == 1
    assert "another poller is running against this database: manage.py poll (pid" in str(caught.value)
    assert counts() == dict.fromkeys(counts(), 0)


def test_a_zai_row_without_either_limit_is_skipped(old_db: tuple[Path, dict]) -> None:
    path, info = old_db
    with sqlite3.connect(path) as db:
        # v1.7 left the columns of a limit the answer lacked at zero: here both were missing.
        db.execute(
            "INSERT INTO zai_snapshots (captured_at, time_limit, time_unit, time_number, time_usage, "
            "time_current_value, time_remaining, time_percentage, tokens_limit, tokens_unit, tokens_number, "
            "tokens_usage, tokens_current_value, tokens_remaining, tokens_percentage) "
            "VALUES (?, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)",
            (go_text(info["end"] + timedelta(seconds=1)),),
        )

    out = run_import(path, now=NOW)

    polls = len(info["times"])
    assert out.splitlines()[1].startswith(f"Z.ai: {polls} snapshots imported ({polls} with readings kept, ")
    assert f"{2 * polls} readings), 1 skipped;" in out.splitlines()[1]
