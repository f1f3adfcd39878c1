"""tools/soak.py and tools/load_test.py (issue 10) work, and their checkers see what they must.

The full runs (10,000 polls, a 60-s load) are `make reliability`; here short
runs prove the tools run end to end, and the soak's checker is fed databases
with a known defect.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from itertools import cycle
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from quotas.invariants import cycle_violations
from quotas.management.commands.poll import Command
from quotas.models import PollAttempt, QuotaReading, ResetCycle, Snapshot
from quotas.tests.helpers import fake_upstream
from tools.fake_upstream import FAULTS
from tools.soak import expected_from, violations

ROOT = Path(__file__).resolve().parents[2]


def run_tool(args: list[str], tmp_path: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, *args, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    figures = json.loads(out.read_text()) if out.exists() else {}
    return done, figures


@pytest.mark.slow
def test_a_short_soak_runs_clean(tmp_path) -> None:
    done, figures = run_tool(["tools/soak.py", "--polls", "300", "--seed", "3"], tmp_path, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    assert figures["violations"] == []
    providers = figures["providers"]
    assert sum(p["stored"]["attempts"] for p in providers.values()) == 300
    for p in providers.values():
        assert p["stored"]["usable_snapshots"] == p["expected"]["usable_snapshots"] > 0
        # 30 % of the answers are faults: several kinds of them in 150 polls.
        assert len(p["stored"]["outcomes"]) >= 4
    assert len(figures["rss"]["samples"]) == 10


@pytest.mark.slow
def test_a_short_load_runs_clean(tmp_path) -> None:
    done, figures = run_tool(["tools/load_test.py", "--seconds", "5", "--clients", "4"], tmp_path, timeout=180)

    assert done.returncode == 0, done.stdout + done.stderr
    assert figures["problems"] == []
    everything = figures["endpoints"]["all"]
    assert everything["count"] > 20
    assert set(everything["statuses"]) <= {"200", "202", "429"}
    assert figures["poller"]["synthetic"]["attempts"] >= 1 and figures["poller"]["zai"]["attempts"] >= 1


@pytest.fixture
def polled(db):
    """One poll of each provider per fault mode, through the poller's own poll_once(); what was served."""
    modes = list(FAULTS)
    with fake_upstream() as server:
        schedule = cycle(mode for mode in modes for _ in range(2))  # each mode once per provider
        server.state.fault = lambda provider: next(schedule)
        base = f"http://127.0.0.1:{server.server_port}"
        keys = {"SYNTHETIC_API_KEY": "syn_test_key_0123456789", "ZAI_API_KEY": "zai-test-key-0123456789"}
        with override_settings(SYNTHETIC_BASE_URL=base, ZAI_BASE_URL=f"{base}/api", **keys):
            command = Command()
            for _ in modes:
                command.poll_once("synthetic")
                command.poll_once("zai")
        return list(server.state.served)


def test_the_checker_accepts_what_the_poller_stored(polled) -> None:
    figures, found = violations(expected_from(polled))

    assert found == []
    assert figures["synthetic"]["stored"]["usable_snapshots"] == 2  # "ok" and "extra"
    assert figures["zai"]["stored"]["outcomes"] == {
        "drift": 1, "invalid_response": 3, "network_error": 1, "ok": 2, "rate_limited": 1, "server_error": 3,
        "unauthorized": 1,
    }  # fmt: skip


def test_the_checker_finds_one_snapshot_too_many(polled) -> None:
    Snapshot.objects.create(provider="zai", usable=True)

    _, found = violations(expected_from(polled))

    assert "zai: 3 usable snapshots, expected 2" in found
    assert any("snapshots no poll attempt refers to" in line for line in found)


def test_the_checker_finds_an_outcome_that_is_not_the_injected_fault(polled) -> None:
    attempt = PollAttempt.objects.filter(provider="synthetic", outcome="server_error").order_by("id").first()
    PollAttempt.objects.filter(pk=attempt.pk).update(outcome="network_error")

    _, found = violations(expected_from(polled))

    assert any(line.startswith("synthetic: poll ") and "stored 'network_error'" in line for line in found)


def test_the_checker_finds_a_poll_that_was_not_stored(polled) -> None:
    _, found = violations(expected_from([*polled, ("zai", "503")]))

    assert "zai: 12 poll attempts stored, 13 polls answered" in found


def test_cycle_violations_finds_overlaps_and_miscounts(polled) -> None:
    assert cycle_violations() == []
    cycle_ = ResetCycle.objects.filter(ended_at__isnull=True).order_by("id").first()
    start = cycle_.started_at - timedelta(hours=1)
    ResetCycle.objects.create(provider=cycle_.provider, quota=cycle_.quota, started_at=start, ended_at=timezone.now())
    QuotaReading.objects.filter(cycle=cycle_).update(captured_at=start - timedelta(minutes=5))

    found = cycle_violations()

    assert any("overlaps" in line for line in found)
    assert any("lies outside its cycle" in line for line in found)


def test_the_load_test_sees_a_poller_that_stopped_and_lock_trouble_in_a_log() -> None:
    from datetime import UTC, datetime

    from tools.load_test import LOCK_TROUBLE, LOG_TROUBLE, poller_gaps

    since = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    attempts = [["synthetic", (since + timedelta(seconds=s)).isoformat(), "ok"] for s in (9, 19, 29)]
    attempts.append(["zai", (since + timedelta(seconds=10)).isoformat(), "ok"])

    seen = poller_gaps(attempts, since, since + timedelta(seconds=60))

    assert seen["synthetic"] == {"attempts": 3, "longest_gap_s": 31.0, "outcomes": {"ok": 3}}
    assert seen["zai"]["longest_gap_s"] == 50.0
    assert LOG_TROUBLE.search("django.db.utils.OperationalError: database is locked")
    assert LOG_TROUBLE.search("[CRITICAL] WORKER TIMEOUT (pid:123)")
    assert LOCK_TROUBLE.search('{"error": "Database is locked"}')
    assert not LOG_TROUBLE.search('127.0.0.1 - "GET /api/current HTTP/1.1" 200 5123 12ms')
