"""``manage.py reparse``: readings and reset cycles rebuilt from the stored raw bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import store_payload
from quotas import reparsing, retention
from quotas.locking import PollLock
from quotas.models import PollAttempt, QuotaReading, ResetCycle, Snapshot
from quotas.providers import zai
from quotas.providers.base import DRIFT, Parsed

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
MONTH_END = T0 + timedelta(days=20)

pytestmark = pytest.mark.django_db


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def zai_body(tokens: int, tokens_reset: datetime, calls: int, level: str = "pro", limits_key: str = "limits") -> bytes:
    limits = [
        {
            "type": "TOKENS_LIMIT",
            "unit": 3,
            "number": 5,
            "usage": 1_000_000,
            "currentValue": tokens,
            "nextResetTime": ms(tokens_reset),
        },
        {
            "type": "TIME_LIMIT",
            "unit": 5,
            "number": 1,
            "usage": 1000,
            "currentValue": calls,
            "nextResetTime": ms(MONTH_END),
        },
    ]
    body = {"code": 200, "msg": "Operation successful", "success": True, "data": {limits_key: limits, "level": level}}
    return json.dumps(body).encode()


def synthetic_body(requests: float, renews: datetime) -> bytes:
    return json.dumps(
        {"subscription": {"limit": 1350, "requests": requests, "renewsAt": renews.isoformat().replace("+00:00", "Z")}}
    ).encode()


R1 = T0 + 2 * HOUR
R2 = R1 + 5 * HOUR
# (minutes after T0, tokens used, tokens reset time, tool calls used): a reset while
# the poller was down (R1 passes between 60 and 180), then a drop (a reset upstream
# reports before its own reset time).
ZAI_HISTORY = [
    (0, 100_000, R1, 3),
    (1, 150_000, R1, 3),
    (60, 500_000, R1, 4),
    (180, 600_000, R2, 4),
    (181, 650_000, R2, 6),
    (182, 10_000, R2 + HOUR, 6),
    (183, 40_000, R2 + HOUR, 9),
]


def poll(provider: str, body: bytes, at: datetime) -> PollAttempt:
    """One poll answered with ``body``, stored as the poller stores it."""
    return store_payload(provider, body, at, latency_ms=90)


def poll_zai_history(history: list[tuple] = ZAI_HISTORY) -> None:
    for minutes, tokens, reset, calls in history:
        poll("zai", zai_body(tokens, reset, calls), T0 + minutes * MINUTE)


def state(provider: str = "zai") -> tuple[list[tuple], list[tuple]]:
    """Readings and cycles by value (no ids), readings naming their cycle by quota and start."""
    cycle_names = {c.pk: (c.quota, c.started_at) for c in ResetCycle.objects.filter(provider=provider)}
    readings = [
        (
            r.captured_at,
            r.key,
            r.label,
            r.kind,
            r.unit,
            r.used,
            r.limit,
            r.remaining,
            r.percent,
            r.resets_at,
            r.details,
            cycle_names.get(r.cycle_id),
        )
        for r in QuotaReading.objects.filter(provider=provider).order_by("captured_at", "key")
    ]
    cycles = list(
        ResetCycle.objects.filter(provider=provider)
        .order_by("quota", "started_at")
        .values_list(
            "quota",
            "unit",
            "started_at",
            "ended_at",
            "resets_at",
            "limit",
            "peak_used",
            "consumed",
            "readings_count",
            "last_used",
            "last_reading_at",
            "reported_resets_at",
        )
    )
    return readings, cycles


def snapshots(provider: str = "zai") -> list[tuple]:
    return list(
        Snapshot.objects.filter(provider=provider)
        .order_by("captured_at")
        .values_list("captured_at", "plan", "drift", "drift_notes", "usable")
    )


def reparse(*args: str) -> str:
    out = StringIO()
    call_command("reparse", *args, stdout=out)
    return out.getvalue()


def test_the_polled_history_has_the_expected_cycles() -> None:
    poll_zai_history()

    _, cycles = state()
    assert [(c[0], c[2], c[3], c[7], c[8]) for c in cycles] == [
        ("time_monthly", T0, None, 6.0, 7),
        ("tokens_5h", T0, R1, 400_000.0, 3),
        ("tokens_5h", R1, T0 + 182 * MINUTE, 650_000.0, 2),
        ("tokens_5h", T0 + 182 * MINUTE, None, 40_000.0, 2),
    ]


def test_reparse_rebuilds_exactly_what_polling_produced() -> None:
    poll_zai_history()
    produced = state()
    produced_snapshots = snapshots()

    # Lose and damage history: some readings gone, others wrong, no cycles.
    QuotaReading.objects.filter(captured_at__lte=T0 + MINUTE).delete()
    QuotaReading.objects.filter(key="tokens_5h").update(used=0, percent=None, label="garbage")
    ResetCycle.objects.all().delete()
    Snapshot.objects.update(plan="", drift=True, drift_notes=["stale"])
    assert state() != produced

    output = reparse()

    assert state() == produced
    assert snapshots() == produced_snapshots
    assert output == ("Synthetic, Z.ai: 7 snapshots reparsed, 0 kept (raw body pruned), 14 readings, 4 reset cycles\n")


def test_a_parser_fix_recovers_history(monkeypatch: pytest.MonkeyPatch) -> None:
    poll_zai_history()
    correct = state()
    Snapshot.objects.all().delete()
    ResetCycle.objects.all().delete()

    real_parse = zai.parse

    def buggy_parse(data: dict) -> Parsed:
        """Reads `currentValue` of tokens as the capacity, and loses the tool calls."""
        parsed = real_parse(data)
        for quota in parsed.quotas:
            if quota.key == "tokens_5h":
                quota.used, quota.remaining, quota.percent = 0.0, quota.limit, 0.0
        parsed.quotas = [q for q in parsed.quotas if q.key != "time_monthly"]
        return parsed

    monkeypatch.setattr(zai, "parse", buggy_parse)
    poll_zai_history()
    assert QuotaReading.objects.filter(key="time_monthly").count() == 0
    monkeypatch.setattr(zai, "parse", real_parse)

    reparse("--provider", "zai")

    assert state() == correct


def test_drift_snapshots_become_usable_once_the_parser_learns_their_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    poll("zai", zai_body(1000, R1, 3), T0)
    # Upstream renames `limits`: nothing known is left, so the polls are drift.
    poll("zai", zai_body(1200, R1, 4, level="max", limits_key="quotaLimits"), T0 + MINUTE)
    poll("zai", zai_body(1300, R1, 5, level="max", limits_key="quotaLimits"), T0 + 2 * MINUTE)
    poll("zai", json.dumps({"code": 200, "success": True, "data": {"nothing": 1}}).encode(), T0 + 3 * MINUTE)
    drifted = Snapshot.objects.filter(usable=False)
    assert drifted.count() == 3
    assert QuotaReading.objects.filter(snapshot__in=drifted).count() == 0
    assert ResetCycle.objects.get(quota="tokens_5h").readings_count == 1

    real_parse = zai.parse

    def learned_parse(data: dict) -> Parsed:
        payload = data.get("data")
        if isinstance(payload, dict) and "quotaLimits" in payload:
            payload = dict(payload)
            payload["limits"] = payload.pop("quotaLimits")
            data = {**data, "data": payload}
        return real_parse(data)

    monkeypatch.setattr(zai, "parse", learned_parse)
    output = reparse("--provider", "zai")

    assert snapshots() == [
        (T0, "pro", False, [], True),
        (T0 + MINUTE, "max", False, [], True),
        (T0 + 2 * MINUTE, "max", False, [], True),
        (T0 + 3 * MINUTE, "", True, ["payload has no limits list"], False),
    ]
    assert Snapshot.objects.get(captured_at=T0 + 3 * MINUTE).readings.count() == 0
    tokens = ResetCycle.objects.get(quota="tokens_5h")
    assert (tokens.readings_count, tokens.consumed, tokens.peak_used) == (3, 300.0, 1300.0)
    used = QuotaReading.objects.filter(key="tokens_5h").order_by("captured_at").values_list("used", flat=True)
    assert list(used) == [1000.0, 1200.0, 1300.0]
    assert output == (
        "Z.ai: 4 snapshots reparsed (1 still without a usable quota), 0 kept (raw body pruned), "
        "6 readings, 2 reset cycles\n"
    )
    # The poll history keeps what happened at the time.
    assert PollAttempt.objects.filter(outcome=DRIFT).count() == 3


def test_snapshots_whose_raw_body_was_pruned_keep_their_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    for i, tokens in enumerate([1000, 1100, 1200, 1300]):
        poll("zai", zai_body(tokens, R1, 3 + i), T0 + i * MINUTE)
    with time_machine.travel(T0 + timedelta(days=30, seconds=90), tick=False):
        pruner = retention.Pruner()
        pruner.run()
    assert [(task.name, task.done) for task in pruner.tasks][:2] == [("raw bodies", 2), ("readings", 0)]
    kept_before = list(
        QuotaReading.objects.filter(captured_at__lt=T0 + 2 * MINUTE)
        .order_by("id")
        .values_list("id", "captured_at", "key", "used", "limit", "percent", "resets_at")
    )
    old_cycle_ids = set(ResetCycle.objects.values_list("id", flat=True))

    real_parse = zai.parse

    def fixed_parse(data: dict) -> Parsed:
        """A fix that finds twice the usage."""
        parsed = real_parse(data)
        for quota in parsed.quotas:
            quota.used = quota.used * 2
        return parsed

    monkeypatch.setattr(zai, "parse", fixed_parse)
    output = reparse("--provider", "zai")

    kept_after = list(
        QuotaReading.objects.filter(captured_at__lt=T0 + 2 * MINUTE)
        .order_by("id")
        .values_list("id", "captured_at", "key", "used", "limit", "percent", "resets_at")
    )
    assert kept_after == kept_before
    tokens = list(QuotaReading.objects.filter(key="tokens_5h").order_by("captured_at").values_list("used", flat=True))
    assert tokens == [1000.0, 1100.0, 2400.0, 2600.0]
    # The kept readings went through cycle tracking again, in order, with the new ones.
    (cycle,) = ResetCycle.objects.filter(quota="tokens_5h")
    assert cycle.id not in old_cycle_ids
    assert (cycle.started_at, cycle.readings_count, cycle.consumed, cycle.peak_used) == (T0, 4, 1600.0, 2600.0)
    assert set(QuotaReading.objects.filter(key="tokens_5h").values_list("cycle_id", flat=True)) == {cycle.id}
    assert output == "Z.ai: 2 snapshots reparsed, 2 kept (raw body pruned), 8 readings, 2 reset cycles\n"


@pytest.mark.parametrize("pruned", [0, 3])
def test_reparsing_in_small_chunks_gives_the_same_history(pruned: int) -> None:
    poll_zai_history()
    produced = state()
    oldest = Snapshot.objects.order_by("captured_at").values_list("pk", flat=True)[:pruned]
    Snapshot.objects.filter(pk__in=list(oldest)).update(raw=None)
    ResetCycle.objects.all().delete()

    counts = reparsing.reparse("zai", chunk_size=2)

    assert state() == produced
    assert (counts.reparsed, counts.kept, counts.unusable, counts.readings, counts.cycles) == (
        7 - pruned,
        pruned,
        0,
        14,
        4,
    )


def test_the_poller_carries_on_from_a_reparsed_history() -> None:
    poll_zai_history()
    produced = state()
    Snapshot.objects.all().delete()
    ResetCycle.objects.all().delete()

    poll_zai_history(ZAI_HISTORY[:-1])
    ResetCycle.objects.all().delete()
    reparse("--provider", "zai")
    poll_zai_history(ZAI_HISTORY[-1:])

    assert state() == produced


def test_reparse_of_one_provider_leaves_the_other_alone() -> None:
    poll_zai_history()
    renews = T0 + 5 * HOUR
    for i, used in enumerate([10, 20.5, 0]):
        poll("synthetic", synthetic_body(used, renews if i < 2 else renews + 5 * HOUR), T0 + i * MINUTE)
    zai_cycles = list(ResetCycle.objects.filter(provider="zai").order_by("id").values())
    synthetic_state = state("synthetic")

    output = reparse("--provider", "synthetic")

    assert list(ResetCycle.objects.filter(provider="zai").order_by("id").values()) == zai_cycles
    assert state("synthetic") == synthetic_state
    assert output == "Synthetic: 3 snapshots reparsed, 0 kept (raw body pruned), 3 readings, 2 reset cycles\n"


def test_reparse_with_nothing_stored_reports_zeros() -> None:
    assert reparse() == "Synthetic, Z.ai: 0 snapshots reparsed, 0 kept (raw body pruned), 0 readings, 0 reset cycles\n"


def test_reparse_refuses_while_a_poller_holds_the_lock() -> None:
    poll_zai_history()
    before = state()

    with PollLock("manage.py poll"), pytest.raises(CommandError) as caught:
        reparse()

    assert caught.value.returncode == 1
    assert "another poller is running against this database: manage.py poll (pid" in str(caught.value)
    assert state() == before


def test_reparse_can_run_again_once_the_lock_is_free() -> None:
    with PollLock("manage.py poll"):
        pass

    assert reparse("--provider", "zai").startswith("Z.ai: 0 snapshots reparsed")


@pytest.mark.parametrize(
    "call",
    [
        lambda: call_command("reparse", "--provider", "openai", stdout=StringIO()),
        lambda: call_command("reparse", provider="openai", stdout=StringIO()),
        lambda: call_command("reparse", "--bogus", stdout=StringIO()),
    ],
)
def test_bad_usage_exits_with_code_2(call: Callable[[], None]) -> None:
    with pytest.raises(CommandError) as caught:
        call()

    assert caught.value.returncode == 2
    assert "\n" not in str(caught.value)


def test_a_parser_crash_changes_nothing_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    poll_zai_history()
    before = state()

    def crashing_parse(data: dict) -> Parsed:
        raise KeyError("limits")

    monkeypatch.setattr(zai, "parse", crashing_parse)
    with pytest.raises(CommandError) as caught:
        reparse("--provider", "zai")

    assert caught.value.returncode == 1
    first = Snapshot.objects.earliest("captured_at")
    assert str(caught.value) == (
        f"Z.ai: cannot read the snapshot of 2026-03-02T12:00:00Z (id {first.pk}): KeyError: 'limits'; "
        "nothing was changed for this provider"
    )
    assert state() == before
