"""Upstream faults against the real poller process: one table (issue 10, "Prove 1").

Each run is a real ``manage.py poll --interval 10`` subprocess with a database
of its own, polling a ``tools.fake_upstream`` served from a thread of this
process over real sockets on 127.0.0.1. One provider of the run answers a
scripted sequence of faults and good answers; the other always answers well,
the control. The nine runs go side by side (about 75 s, the slowest of them)
in a module fixture; each test then reads what its run stored.

For every fault of the table (RUNS), test_fault checks, with the poller that
met it:
- the poll history: the attempt's outcome and a telling message;
- nothing bad is stored: no snapshot for a failed poll, except the unusable
  one drift keeps with its raw body; no reading of a window with an
  impossible number (NaN, ∞, 1e308, negative); every stored number finite;
- the backoff, from the times the requests reached the fake upstream: the
  next poll waits ``quotas.polling.next_delay`` (one failure keeps the
  interval, two in a row double it, a 429's Retry-After is honoured), or as
  long as the fault held the request if that is longer;
- the control provider kept its 10-s cadence, every poll ok, meanwhile;
- the poller kept running, and the next good answer was stored whole.
Per run: the poller was alive until SIGTERM and exited 0, wrote no traceback,
and no API key (nor 12 characters of one) reached its output or its database.

The pollers always use SQLite files in a temporary folder, also when the
suite runs on PostgreSQL (DATABASE_URL set): one poller per database is the
rule, so parallel runs need databases of their own, and these files are
cheap. This test never touches the suite's own database.

``-v`` prints the table (fault, outcome, message, wait before the next poll).
The runs are one module fixture: under pytest-xdist, one worker takes every
test of this file (``--dist loadgroup``, as ``make test`` runs), or each
worker would start all nine pollers again.
"""

from __future__ import annotations

import itertools
import json
import math
import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from lib import http
from lib.redact import mask
from quotas.polling import next_delay
from quotas.providers.base import MAX_AMOUNT, MAX_PERCENT
from quotas.tests.fault_runs import (
    KEYS,
    Stored,
    attempt_count,
    copy_database,
    free_port,
    migrated_template,
    poller_env,
    read_stored,
)
from quotas.tests.helpers import SYNTHETIC_KEY, Process, fake_upstream, manage, processes
from tools.fake_upstream import (
    FAULTS,
    NUMBER_FAULTS,
    RETRY_AFTER,
    SCRIPTED_FAULTS,
    Script,
    State,
    faulty_answer,
    scripted_faults,
)

# One worker runs every test of this module (make test: --dist loadgroup): the nine runs are one module fixture.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("upstream_faults")]

INTERVAL = 10
READY = f"polling Synthetic, Z.ai every {INTERVAL} s"
NAMES = {"synthetic": "Synthetic", "zai": "Z.ai"}
OTHER = {"synthetic": "zai", "zai": "synthetic"}
# The windows of a good answer of the fake (Synthetic's v3 shape, Z.ai's v2).
GOOD_KEYS = {
    "synthetic": {"subscription", "search_hourly", "free_tool_calls", "rolling_5h", "weekly_credits"},
    "zai": {"tokens_5h", "tokens_weekly", "time_monthly"},
}
# How much later than planned a request may reach the fake upstream: a loaded
# 2-core machine running nine pollers; and how much earlier (clock reads).
LATE, EARLY = 3.0, 0.3
# The longest a run may take: its script ends by 70 s, plus start-up.
RUN_DEADLINE = 110.0


@dataclass(frozen=True)
class Run:
    """One poller: ``provider`` answers ``script`` (then good answers), the other provider always well."""

    name: str
    provider: str
    script: tuple[str, ...]

    @property
    def refused(self) -> int:
        """Leading "refused" steps: nothing listens on the provider's port until they are over."""
        return next((i for i, mode in enumerate(self.script) if mode != "refused"), len(self.script))


# Every script ends with a good answer; each step lands 10 s after the last, or
# later when backing off (the times on the right are the planned ones, in s).
RUNS = [
    Run("A", "synthetic", ("500", "502", "ok", "503", "401", "ok")),  # 0 10 30 40 50 70
    Run("B", "zai", ("zai_1001", "zai_401", "ok", "zai_500", "zai_1113", "ok")),  # 0 10 30 40 50 70
    Run("C", "synthetic", ("invalid_json", "html_key", "ok", "truncated", "reset", "ok")),  # 0 10 30 40 50 70
    Run("D", "zai", ("big_body", "gzip_bomb", "ok", "drift", "ok", "zai_1302", "ok")),  # 0 10 30 40 50 60 70
    Run("E", "synthetic", ("hang", "hang", "ok", "429", "ok")),  # 0 10 30 40 70
    Run("F", "zai", ("trickle_headers", "500", "ok", "trickle_body", "ok")),  # 0 20 40 50 70
    Run("G", "synthetic", ("refused", "refused", "ok", "nan", "infinity", "ok")),  # 0 10 30 40 50 60
    Run("H", "zai", ("nan", "infinity", "ok", "huge", "negative", "ok")),  # 0 10 30 40 50 70
    Run("I", "synthetic", ("huge", "negative", "nan_text", "big_body_unsized", "ok", "drift", "ok")),  # 0 .. 60
]


@dataclass(frozen=True)
class Expect:
    outcome: str
    message: str  # what the attempt's message must hold
    holds: float = 0.0  # how long the fault keeps a request open (s)
    retry_after: float | None = None
    dropped: str | None = None  # the window an impossible number leaves out of an ok poll


TOO_LARGE = f"response body larger than {http.MAX_BODY_BYTES // 1024} KiB"
EXPECT = {
    "500": Expect("server_error", "HTTP 500: server error"),
    "502": Expect("server_error", "HTTP 502: server error"),
    "503": Expect("server_error", "HTTP 503: server error"),
    "401": Expect("unauthorized", "HTTP 401: the API key was rejected"),
    "429": Expect("rate_limited", f"HTTP 429: rate limited, retry after {RETRY_AFTER} s", retry_after=30.0),
    "hang": Expect(
        "network_error",
        f"timed out after {http.READ_TIMEOUT:.0f}.",
        holds=http.READ_TIMEOUT,
    ),
    "trickle_headers": Expect(
        "network_error",
        f"no complete response within {http.TOTAL_TIMEOUT:g} s: connected, but the status line and headers had not",
        holds=http.TOTAL_TIMEOUT,
    ),
    "trickle_body": Expect(
        "network_error",
        f"no complete response within {http.TOTAL_TIMEOUT:g} s: the headers came, but not all the body",
        holds=http.TOTAL_TIMEOUT,
    ),
    "refused": Expect("network_error", "Connection refused"),
    "reset": Expect("network_error", "Connection reset by peer"),
    "truncated": Expect("network_error", "IncompleteRead"),
    "invalid_json": Expect("invalid_response", 'response is not JSON: {"subscription": {"limit": 1350'),
    # The page quotes the Authorization header it got: the message shows the key masked, nothing more of it.
    "html_key": Expect("invalid_response", f"<p>Rejected credentials: Bearer {mask(SYNTHETIC_KEY)}</p>"),
    "big_body": Expect("invalid_response", TOO_LARGE),
    "big_body_unsized": Expect("invalid_response", TOO_LARGE),
    "gzip_bomb": Expect("invalid_response", TOO_LARGE),
    "zai_1001": Expect("unauthorized", "key rejected (code=1001, msg=Authorization Token missing or invalid)"),
    "zai_401": Expect("unauthorized", "key rejected (code=401, msg=token expired or incorrect)"),
    "zai_1113": Expect("unauthorized", "this key has no GLM Coding Plan (code=1113, msg=当前用户不存在coding plan)"),
    "zai_1302": Expect("rate_limited", "rate limited (code=1302, msg=Rate limit reached for requests)"),
    "zai_500": Expect("server_error", "API returned an error (code=500, msg=Internal server error)"),
}
ZAI_WINDOW = "limit tokens_5h"
PROVIDER_EXPECT = {
    ("synthetic", "drift"): Expect("drift", "no known quota in payload (keys: credits)"),
    ("zai", "drift"): Expect("drift", "payload has no limits list"),
    # One Synthetic window holds the impossible number: the poll is ok, that window left out and flagged.
    ("synthetic", "nan"): Expect("ok", "unknown: subscription (requests out of range: nan)", dropped="subscription"),
    ("synthetic", "infinity"): Expect(
        "ok", "unknown: rollingFiveHourLimit (remaining out of range: inf)", dropped="rolling_5h"
    ),
    ("synthetic", "nan_text"): Expect(
        "ok", "unknown: weeklyTokenLimit (remainingCredits out of range: NaN)", dropped="weekly_credits"
    ),
    ("synthetic", "huge"): Expect(
        "ok", "unknown: freeToolCalls (limit out of range: 1e+308)", dropped="free_tool_calls"
    ),
    ("synthetic", "negative"): Expect(
        "ok", "unknown: search.hourly (requests out of range: -5)", dropped="search_hourly"
    ),
    # Every Z.ai window holds it: nothing usable, drift.
    **{
        ("zai", mode): Expect(
            "drift",
            f"no usable quota in payload (3 limits unreadable); {ZAI_WINDOW} (currentValue out of range: {shown})",
        )
        for mode, shown in (("nan", "nan"), ("infinity", "inf"), ("huge", "1e+308"), ("negative", "-5"))
    },
}
# The impossible number as the raw body of a drift snapshot spells it.
RAW_NUMBER = {"nan": b"NaN", "infinity": b"Infinity", "huge": b"1e+308", "negative": b"-5"}


def expect(provider: str, mode: str) -> Expect:
    return PROVIDER_EXPECT.get((provider, mode)) or EXPECT[mode]


@dataclass
class Result:
    """What one run left: its database, the requests the fake upstream got, the poller's output."""

    run: Run
    stored: Stored
    requests: dict[str, list[tuple[str, float]]]  # provider -> (mode, wall-clock time), in order
    alive: bool  # still running when it was told to stop
    code: int | None
    stdout: str
    stderr: str
    seconds: float

    def timeline(self, provider: str) -> list[tuple[str, float]]:
        """(mode, time) of each poll of ``provider``; a refused one at the time its attempt was stored."""
        refused = self.run.refused if provider == self.run.provider else 0
        attempts = self.stored.attempts[provider]
        return [("refused", a.at) for a in attempts[:refused]] + self.requests[provider]


@dataclass
class Live:
    run: Run
    db: Path
    script: Script
    poller: Process
    late_port: int | None = None
    late_started: bool = False


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Result]:
    folder = tmp_path_factory.mktemp("upstream-faults")
    template = migrated_template(folder)
    began = time.monotonic()
    with ExitStack() as stack:
        start = stack.enter_context(processes())
        live = [start_run(run, folder, template, start, stack) for run in RUNS]
        for one in live:
            one.poller.wait_for_line(READY, timeout=30, stream="stdout")
        deadline = time.monotonic() + RUN_DEADLINE
        while time.monotonic() < deadline:
            for one in live:
                open_late_port(one, stack)
            if all(attempt_count(one.db, one.run.provider) >= len(one.run.script) for one in live):
                break
            time.sleep(0.25)
        alive = {one.run.name: one.poller.popen.poll() is None for one in live}
        for one in live:
            if alive[one.run.name]:
                one.poller.send(signal.SIGTERM)
        codes = {one.run.name: one.poller.wait(timeout=15) for one in live}
        seconds = time.monotonic() - began
        found = {
            one.run.name: Result(
                one.run,
                read_stored(one.db),
                {p: one.script.requests(p) for p in NAMES},
                alive[one.run.name],
                codes[one.run.name],
                one.poller.stdout,
                one.poller.stderr,
                seconds,
            )
            for one in live
        }
    show(request, f"{len(RUNS)} pollers in {seconds:.1f} s\n{table(found)}")
    return found


def show(request: pytest.FixtureRequest, text: str) -> None:
    """``text`` on the terminal, with -v (the table of what each fault gave)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or request.config.get_verbosity() < 1:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in text.splitlines():
            reporter.write_line(line)


def start_run(run: Run, folder: Path, template: Path, start, stack: ExitStack) -> Live:
    db = folder / f"run-{run.name}.db"
    copy_database(template, db)
    script = scripted_faults({run.provider: [mode for mode in run.script if mode != "refused"]})
    upstream = stack.enter_context(fake_upstream())
    upstream.state.fault = script
    urls = dict.fromkeys(NAMES, f"http://127.0.0.1:{upstream.server_port}")
    late_port = None
    if run.refused:
        # Nothing listens there until the refused polls are stored (open_late_port).
        late_port = free_port()
        urls[run.provider] = f"http://127.0.0.1:{late_port}"
    poller = start(manage("poll", "--interval", str(INTERVAL)), poller_env(db, urls))
    return Live(run, db, script, poller, late_port)


def open_late_port(one: Live, stack: ExitStack) -> None:
    if one.late_port is None or one.late_started:
        return
    if attempt_count(one.db, one.run.provider) >= one.run.refused:
        server = stack.enter_context(fake_upstream(port=one.late_port))
        server.state.fault = one.script
        one.late_started = True


def table(found: dict[str, Result]) -> str:
    """The fault table: fault, provider, outcome, message, and the wait before the next poll (planned)."""
    lines = ["run | provider | fault | outcome | message | next poll after (planned)"]
    for result in found.values():
        run = result.run
        attempts = result.stored.attempts[run.provider]
        timeline = result.timeline(run.provider)
        for index, mode in enumerate(run.script):
            if mode == "ok" or index + 1 >= min(len(attempts), len(timeline)):
                continue
            attempt = attempts[index]
            gap = timeline[index + 1][1] - timeline[index][1]
            lines.append(
                f"{run.name} | {run.provider} | {mode} | {attempt.outcome}{' (drift flag)' if attempt.drift else ''}"
                f" | {attempt.message} | {gap:.1f} s ({planned_gap(run, attempts, index):.0f} s)"
            )
    return "\n".join(lines)


def failures_after(attempts, index: int) -> int:
    """Failures in a row once attempt ``index`` is in: what the poller backs off by."""
    count = 0
    for attempt in attempts[: index + 1]:
        count = 0 if attempt.outcome == "ok" else count + 1
    return count


def planned_gap(run: Run, attempts, index: int) -> float:
    want = expect(run.provider, run.script[index])
    return max(next_delay(INTERVAL, failures_after(attempts, index), want.retry_after), want.holds)


FAULT_STEPS = [(run, index) for run in RUNS for index, mode in enumerate(run.script) if mode != "ok"]


@pytest.mark.parametrize(
    ("run", "index"), FAULT_STEPS, ids=[f"{run.provider}-{run.script[i]}-{run.name}{i}" for run, i in FAULT_STEPS]
)
def test_fault(results: dict[str, Result], run: Run, index: int) -> None:
    result = results[run.name]
    mode = run.script[index]
    want = expect(run.provider, mode)
    attempts = result.stored.attempts[run.provider]
    timeline = result.timeline(run.provider)
    assert len(attempts) >= len(run.script), f"the run ended before its script did\n{table(results)}"
    assert [m for m, _ in timeline[: len(run.script)]] == list(run.script), "the fake served what was scripted"

    # The poll history says what happened.
    attempt = attempts[index]
    assert attempt.outcome == want.outcome, attempt.message
    assert want.message in attempt.message
    assert attempt.drift == (want.outcome == "drift" or want.dropped is not None)

    # Nothing bad is stored.
    assert_stored_as_defined(result, attempt, mode, want)

    # Backoff: the next request came when next_delay says (or when the fault let go of this one).
    gap = timeline[index + 1][1] - timeline[index][1]
    planned = planned_gap(run, attempts, index)
    assert planned - EARLY <= gap <= planned + LATE, f"next poll {gap:.1f} s later, planned {planned:.0f} s"

    # The poller kept running: the next good answer is stored whole.
    following = run.script.index("ok", index + 1)
    good = attempts[following]
    assert good.outcome == "ok" and not good.drift, good.message
    assert {r["key"] for r in result.stored.snapshots[good.snapshot_id].readings} == GOOD_KEYS[run.provider]

    # The other provider kept its cadence, every poll ok, from this fault to that good poll.
    other = OTHER[run.provider]
    meanwhile = [
        (at, a.outcome)
        for (_, at), a in zip(result.timeline(other), result.stored.attempts[other], strict=False)
        if timeline[index][1] - INTERVAL <= at <= timeline[following][1] + INTERVAL
    ]
    span = timeline[following][1] - timeline[index][1]
    assert len(meanwhile) >= span // INTERVAL, meanwhile
    assert all(outcome == "ok" for _, outcome in meanwhile), meanwhile
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(meanwhile)]
    assert all(INTERVAL - EARLY <= g <= INTERVAL + LATE for g in gaps), gaps


def assert_stored_as_defined(result: Result, attempt, mode: str, want: Expect) -> None:
    snapshots = result.stored.snapshots
    if want.outcome == "ok":
        # Impossible numbers: the other windows are stored, that one is not.
        readings = snapshots[attempt.snapshot_id].readings
        assert {r["key"] for r in readings} == GOOD_KEYS[attempt.provider] - {want.dropped}
        return
    if want.outcome != "drift":
        assert attempt.snapshot_id is None, "a failed poll stored a snapshot"
        return
    # Drift keeps the raw body in an unusable snapshot, with no readings.
    snapshot = snapshots[attempt.snapshot_id]
    assert not snapshot.usable and snapshot.readings == []
    if mode == "drift":
        assert snapshot.raw == faulty_answer(State("v3", "v2", 30), attempt.provider, "drift")[2]
    else:
        assert RAW_NUMBER[mode] in snapshot.raw
        assert len(json.loads(snapshot.raw)["data"]["limits"]) == 3


@pytest.mark.parametrize("run", RUNS, ids=[run.name for run in RUNS])
def test_the_poller_ran_through_the_faults_and_stopped_cleanly(results: dict[str, Result], run: Run) -> None:
    result = results[run.name]
    assert result.alive, result.stdout + result.stderr
    assert result.code == 0, result.stdout + result.stderr
    assert "poll sessions closed" in result.stdout
    for output in (result.stdout, result.stderr):
        assert "Traceback" not in output
    # The control answered well all along, every INTERVAL s.
    control = OTHER[run.provider]
    attempts = result.stored.attempts[control]
    assert len(attempts) >= 6 and all(a.outcome == "ok" and not a.drift for a in attempts)
    times = [at for _, at in result.timeline(control)][: len(attempts)]
    assert all(INTERVAL - EARLY <= b - a <= INTERVAL + LATE for a, b in itertools.pairwise(times))


@pytest.mark.parametrize("run", RUNS, ids=[run.name for run in RUNS])
def test_every_failed_poll_is_logged_with_its_outcome_and_message(results: dict[str, Result], run: Run) -> None:
    result = results[run.name]
    lines = result.stderr.splitlines()
    for attempt in result.stored.attempts[run.provider]:
        if attempt.outcome != "ok":
            said = f"{NAMES[attempt.provider]}: {attempt.outcome}"
            assert any(said in line and attempt.message in line for line in lines), (said, result.stderr)


@pytest.mark.parametrize("run", RUNS, ids=[run.name for run in RUNS])
def test_nothing_out_of_range_and_no_key_is_stored_or_printed(results: dict[str, Result], run: Run) -> None:
    result = results[run.name]
    stored = result.stored
    attempts = [a for per_provider in stored.attempts.values() for a in per_provider]
    # Every snapshot belongs to a poll that keeps one: ok (usable) or drift (unusable).
    kept = {a.snapshot_id: a for a in attempts if a.snapshot_id is not None}
    assert set(kept) == set(stored.snapshots)
    for snapshot_id, attempt in kept.items():
        assert stored.snapshots[snapshot_id].usable == (attempt.outcome == "ok")
        assert attempt.outcome in ("ok", "drift")
    for snapshot in stored.snapshots.values():
        for reading in snapshot.readings:
            for name, high in (("used", MAX_AMOUNT), ("limit", MAX_AMOUNT), ("remaining", MAX_AMOUNT),
                               ("percent", MAX_PERCENT)):  # fmt: skip
                value = reading[name]
                assert value is None or (math.isfinite(value) and 0 <= value <= high), reading
    outputs = [result.stdout, result.stderr] + [a.message for a in attempts]
    outputs += [f"{s.raw!r} {s.drift_notes}" for s in stored.snapshots.values()]
    for key in KEYS.values():
        pieces = {key[i : i + 12] for i in range(len(key) - 11)}
        for text in outputs:
            assert not any(piece in text for piece in pieces), f"a piece of {key} in: {text[:300]}"


def test_the_table_expects_the_outcome_the_fake_upstream_documents_for_each_fault() -> None:
    for run in RUNS:
        for mode in set(run.script) - {"ok", "refused"} - set(NUMBER_FAULTS):
            documented = SCRIPTED_FAULTS.get(mode) or FAULTS[mode]
            assert expect(run.provider, mode).outcome == documented, (run.provider, mode)
