"""quotas.history: the chart's series, downsampled in the database, and its gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftest import store_failure, store_quotas
from quotas import history as history_module
from quotas import rollups
from quotas.history import MAX_POINTS, RANGES, history
from quotas.models import PollSession, QuotaReading, QuotaRollup, Snapshot
from quotas.providers.base import DRIFT, Quota

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# Where 24h, 7d and 30d charts can read: the roll-ups (what the API does) and the readings (the same answer).
SOURCES = ["rollups", "readings"]

pytestmark = pytest.mark.django_db


def subscription(used: float, limit: float = 1000) -> Quota:
    return Quota(key="subscription", label="Subscription", kind="reset", unit="requests", used=used, limit=limit)


def tokens_5h(percent: float) -> Quota:
    # Z.ai windows that carry only a percentage
    return Quota(key="tokens_5h", label="Tokens (5h)", kind="reset", unit="tokens", percent=percent)


def poll(at: datetime, *quotas: Quota, provider: str = "synthetic", session: PollSession | None = None) -> None:
    store_quotas(at, *quotas, provider=provider, session=session)


def failed_poll(at: datetime, outcome: str = "server_error", body: bytes | None = None) -> None:
    store_failure(at, outcome=outcome, body=body)


def bulk_readings(start: datetime, step: timedelta, values: list[float], limit: float = 1000) -> None:
    """One snapshot with a `subscription` reading per value, `step` apart (fast: no cycle tracking), rolled up."""
    snapshots = Snapshot.objects.bulk_create(
        [Snapshot(provider="synthetic", captured_at=start + i * step) for i in range(len(values))]
    )
    QuotaReading.objects.bulk_create(
        QuotaReading(
            snapshot=snapshot,
            provider="synthetic",
            captured_at=snapshot.captured_at,
            key="subscription",
            label="Subscription",
            kind="reset",
            unit="requests",
            used=used,
            limit=limit,
            percent=used * 100 / limit,
        )
        for snapshot, used in zip(snapshots, values, strict=True)
    )
    rollups.rebuild("synthetic")


def test_the_ranges_are_the_five_of_the_api() -> None:
    ranges = RANGES
    assert ranges == {
        "1h": timedelta(hours=1),
        "6h": timedelta(hours=6),
        "24h": timedelta(hours=24),
        "7d": timedelta(days=7),
        "30d": timedelta(days=30),
    }


def test_it_lists_every_quota_as_percent_of_its_limit_with_its_usage() -> None:
    poll(T0, subscription(154.3), tokens_5h(12.0))
    poll(T0 + MINUTE, subscription(200), tokens_5h(12.5))
    poll(T0 + 2 * MINUTE, subscription(250.5), tokens_5h(13.0))

    answer = history("synthetic", "1h", now=T0 + 3 * MINUTE)

    assert answer["provider"] == "synthetic"
    assert answer["range"] == "1h"
    assert answer["series"] == [
        {
            "key": "subscription",
            "label": "Subscription",
            "points": [
                ["2026-03-02T12:00:00Z", 15.43, 154.3],
                ["2026-03-02T12:01:00Z", 20.0, 200.0],
                ["2026-03-02T12:02:00Z", 25.05, 250.5],
            ],
        },
        {
            "key": "tokens_5h",
            "label": "Tokens (5h)",
            "points": [
                ["2026-03-02T12:00:00Z", 12.0, None],
                ["2026-03-02T12:01:00Z", 12.5, None],
                ["2026-03-02T12:02:00Z", 13.0, None],
            ],
        },
    ]
    assert answer["gaps"] == []


def test_it_keeps_only_the_range_and_the_provider() -> None:
    poll(T0 - 61 * MINUTE, subscription(100))  # before the 1h range
    poll(T0 - 30 * MINUTE, subscription(110))
    poll(T0 - 30 * MINUTE, Quota(key="tokens_5h", label="Tokens (5h)", kind="reset", unit="tokens", percent=3.0),
         provider="zai")  # fmt: skip
    poll(T0 + MINUTE, subscription(120))  # after `now`

    answer = history("synthetic", "1h", now=T0)

    assert answer["series"] == [
        {"key": "subscription", "label": "Subscription", "points": [["2026-03-02T11:30:00Z", 11.0, 110.0]]}
    ]


def test_an_empty_range_has_empty_lists() -> None:
    assert history("zai", "24h", now=T0) == {
        "provider": "zai",
        "range": "24h",
        "start": "2026-03-01T12:00:00Z",
        "end": "2026-03-02T12:00:00Z",
        # 24h/165 ≈ 524 s, rounded up to whole 5-minute roll-ups
        "bucket_seconds": 600,
        "series": [],
        "gaps": [],
    }


@pytest.mark.parametrize("source", SOURCES)
def test_a_bucket_gives_its_lowest_its_highest_and_its_last_reading_in_time_order(source: str) -> None:
    # All in the newest 30d bucket (15709 s wide): a climb, the peak, a reset, a new climb.
    start = T0 - timedelta(hours=4)
    bulk_readings(start, MINUTE, [100, 500, 990, 995, 990, 3, 40, 60, 80, 70])

    answer = history("synthetic", "30d", now=T0, source=source)

    assert answer["series"][0]["points"] == [
        ["2026-03-02T08:03:00Z", 99.5, 995.0],  # the peak
        ["2026-03-02T08:05:00Z", 0.3, 3.0],  # the reset
        ["2026-03-02T08:09:00Z", 7.0, 70.0],  # the last reading
    ]


@pytest.mark.parametrize("source", SOURCES)
def test_a_flat_bucket_gives_its_first_and_last_reading(source: str) -> None:
    bulk_readings(T0 - timedelta(hours=2), MINUTE, [0.0] * 30)

    points = history("synthetic", "30d", now=T0, source=source)["series"][0]["points"]

    assert points == [["2026-03-02T10:00:00Z", 0.0, 0.0], ["2026-03-02T10:29:00Z", 0.0, 0.0]]


@pytest.mark.parametrize("source", SOURCES)
def test_it_keeps_at_most_500_points_with_every_peak_and_reset_whatever_the_number_of_readings(source: str) -> None:
    # 24 hours of 10-second polls (8640 readings) of a counter that resets every hour
    step = timedelta(seconds=10)
    values = [float((i % 360) * 2) for i in range(8640)]
    bulk_readings(T0 - timedelta(hours=24), step, values)

    points = history("synthetic", "24h", now=T0 + step, source=source)["series"][0]["points"]

    assert MAX_POINTS == 500
    # 144 ten-minute buckets, each with its lowest and its last (the highest here)
    assert 250 < len(points) <= MAX_POINTS
    peaks = [p for p in points if p[2] == 718.0]
    resets = [p for p in points if p[2] == 0.0]
    # every hour's peak and reset survive (the first reset, 10 s before the range, is out of it)
    assert len(peaks) == 24 and len(resets) == 23
    assert resets[0] == ["2026-03-01T13:00:00Z", 0.0, 0.0]
    assert points[-1] == ["2026-03-02T11:59:50Z", 71.8, 718.0]
    assert [p[0] for p in points] == sorted(p[0] for p in points)


@pytest.mark.parametrize("source", SOURCES)
def test_thirty_days_also_stay_under_500_points_per_series(source: str) -> None:
    values = [float(i % 50) for i in range(3000)]  # 30 days of 15-minute polls, 5000 readings
    bulk_readings(T0 - timedelta(days=30) + MINUTE, timedelta(minutes=14, seconds=24), values)

    series = history("synthetic", "30d", now=T0, source=source)["series"]

    assert len(series) == 1
    assert len(series[0]["points"]) <= MAX_POINTS
    assert max(p[1] for p in series[0]["points"]) == 4.9
    assert min(p[1] for p in series[0]["points"]) == 0.0


def test_it_runs_four_queries_whatever_the_number_of_readings(django_assert_num_queries) -> None:
    for i in range(20):
        poll(T0 + i * MINUTE, subscription(10 * i), tokens_5h(i))
    # 1. the readings per quota (they fit the budget)  2. every reading
    # 3. the poll sessions around the range              4. the stretches between successful snapshots
    with django_assert_num_queries(4):
        answer = history("synthetic", "1h", now=T0 + 20 * MINUTE)
    assert [len(s["points"]) for s in answer["series"]] == [20, 20]


def test_a_6h_chart_of_a_60_s_poller_shows_every_reading() -> None:
    values = [float(i % 97) for i in range(360)]
    bulk_readings(T0 - 6 * HOUR + 2 * MINUTE, MINUTE, values)

    points = history("synthetic", "6h", now=T0 + MINUTE)["series"][0]["points"]

    assert [p[2] for p in points] == values


def test_a_6h_chart_of_a_10_s_poller_keeps_its_peaks_and_resets_within_the_budget() -> None:
    # 2160 readings of a counter that resets every 20 minutes: ranked per bucket, not every reading.
    step = timedelta(seconds=10)
    values = [float((i % 120) * 5) for i in range(2160)]
    bulk_readings(T0 - 6 * HOUR + step, step, values)

    points = history("synthetic", "6h", now=T0 + step)["series"][0]["points"]

    assert 150 < len(points) <= MAX_POINTS
    assert len([p for p in points if p[2] == 595.0]) == 18  # every peak
    assert len([p for p in points if p[2] == 0.0]) == 17  # every reset after the first reading
    assert [p[0] for p in points] == sorted(p[0] for p in points)


# --- settled chart buckets, remembered per process -------------------------------------------


def uncached(provider: str, range_key: str, now: datetime, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The answer with nothing settled: every bucket ranked afresh."""
    with monkeypatch.context() as patch:
        patch.setattr(history_module, "SETTLE_SECONDS", 10**9)
        return history(provider, range_key, now=now)


def test_remembered_settled_buckets_answer_as_a_fresh_ranking_while_polls_come_in(monkeypatch) -> None:
    # Three days of 10-minute polls: a subscription resetting every 5 hours, a Z.ai-style percent window.
    at = T0 - timedelta(days=3)
    for i in range(3 * 24 * 6):
        poll(at + i * 10 * MINUTE, subscription(40 * (i % 30) + (i * 7) % 11), tokens_5h(float((i * 13) % 97)))
    now = T0
    for step in range(14):
        # a poll lands, the worker answers (remembering what settled), then the same without memory
        poll(now, subscription(40 * (step % 5) + 3), tokens_5h(float(step)))
        now += 7 * MINUTE
        for range_key in ("24h", "7d", "30d"):
            remembered = history("synthetic", range_key, now=now)
            assert history("synthetic", range_key, now=now) == remembered
            assert remembered == uncached("synthetic", range_key, now, monkeypatch), (range_key, step)
    assert history_module._SETTLED.entries  # the answers above did come from memory


def test_a_series_over_budget_thins_the_remembered_and_fresh_points_as_a_fresh_ranking(monkeypatch) -> None:
    # A day of 1-minute polls of a quota that resets every 3 minutes: a reset in every 5-minute roll-up.
    at = T0 - timedelta(days=1)
    for i in range(24 * 60):
        poll(at + i * MINUTE, subscription(300 * (i % 3) + 1))
    now = T0
    for step in range(6):
        poll(now, subscription(300 * (step % 3) + 2))
        now += 2 * MINUTE
        remembered = history("synthetic", "24h", now=now)
        assert len(remembered["series"][0]["points"]) == MAX_POINTS
        assert history("synthetic", "24h", now=now) == remembered == uncached("synthetic", "24h", now, monkeypatch)


def test_the_settled_buckets_cost_one_query_once_remembered(django_assert_num_queries) -> None:
    for i in range(48):
        poll(T0 - 47 * HOUR + i * HOUR, subscription(10 * i))
    history("synthetic", "7d", now=T0 + MINUTE)
    # the settled roll-ups' version; the newest buckets' points and resets; sessions, silences, newest roll-up
    with django_assert_num_queries(6):
        history("synthetic", "7d", now=T0 + MINUTE)


def test_a_reparse_that_changes_settled_readings_shows_at_once() -> None:
    for i in range(30):
        poll(T0 - 30 * HOUR + i * HOUR, subscription(10 * i))
    before = history("synthetic", "7d", now=T0)["series"][0]["points"]
    assert before[0][2] == 0.0

    QuotaReading.objects.filter(captured_at=T0 - 30 * HOUR).update(used=55.0, percent=5.5)
    rollups.rebuild("synthetic")  # as reparse does

    after = history("synthetic", "7d", now=T0)["series"][0]["points"]
    assert after[0][2] == 55.0 and after[1:] == before[1:]


def test_pruned_roll_ups_leave_the_remembered_buckets() -> None:
    for i in range(30):
        poll(T0 - 30 * HOUR + i * HOUR, subscription(10 * i))
    assert len(history("synthetic", "7d", now=T0)["series"][0]["points"]) == 30

    QuotaRollup.objects.filter(start__lt=T0 - 20 * HOUR).delete()

    assert len(history("synthetic", "7d", now=T0)["series"][0]["points"]) == 20


def test_a_stretch_longer_than_2_5_intervals_is_a_gap(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 60
    for minute in (0, 1, 2, 10, 11, 13, 14):  # 12:02→12:10 is a gap; 12:11→12:13 (2 intervals) is not
        poll(T0 + minute * MINUTE, subscription(minute))

    answer = history("synthetic", "1h", now=T0 + 15 * MINUTE)

    assert answer["gaps"] == [["2026-03-02T12:02:00Z", "2026-03-02T12:10:00Z"]]
    # No point lies inside a gap: the chart breaks its line there.
    times = [p[0] for p in answer["series"][0]["points"]]
    assert "2026-03-02T12:02:00Z" in times and "2026-03-02T12:10:00Z" in times
    assert not [t for t in times if "2026-03-02T12:02:00Z" < t < "2026-03-02T12:10:00Z"]


def test_failed_and_drifted_polls_do_not_close_a_gap(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 60
    poll(T0, subscription(1))
    failed_poll(T0 + MINUTE)
    failed_poll(T0 + 2 * MINUTE, DRIFT, b'{"something": "new"}')  # an unusable snapshot
    poll(T0 + 4 * MINUTE, subscription(2))

    assert Snapshot.objects.filter(usable=False).count() == 1
    assert history("synthetic", "1h", now=T0 + 5 * MINUTE)["gaps"] == [["2026-03-02T12:00:00Z", "2026-03-02T12:04:00Z"]]


def test_the_interval_of_the_session_that_was_polling_decides(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 300  # would hide both stretches below
    fast = PollSession.objects.create(provider="synthetic", interval_seconds=10, started_at=T0, ended_at=T0 + MINUTE)
    poll(T0, subscription(1), session=fast)
    poll(T0 + timedelta(seconds=30), subscription(2), session=fast)  # 30 s > 2.5 × 10 s: a gap
    poll(T0 + timedelta(seconds=50), subscription(3), session=fast)
    # after the session: the configured 300 s apply; 10 minutes is a gap, 12 minutes later not
    poll(T0 + timedelta(seconds=650), subscription(4))
    poll(T0 + timedelta(seconds=1370), subscription(5))

    answer = history("synthetic", "1h", now=T0 + timedelta(seconds=1400))

    assert answer["gaps"] == [
        ["2026-03-02T12:00:00Z", "2026-03-02T12:00:30Z"],
        ["2026-03-02T12:00:50Z", "2026-03-02T12:10:50Z"],
    ]


def test_a_gap_running_into_the_range_starts_at_the_range_and_one_up_to_now_shows_that_polling_stopped(
    settings,
) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 60
    poll(T0 - 2 * timedelta(hours=1), subscription(1))  # before the 1h range
    poll(T0 - 20 * MINUTE, subscription(2))
    poll(T0 - 19 * MINUTE, subscription(3))  # then polling stopped

    assert history("synthetic", "1h", now=T0)["gaps"] == [
        ["2026-03-02T11:00:00Z", "2026-03-02T11:40:00Z"],
        ["2026-03-02T11:41:00Z", "2026-03-02T12:00:00Z"],
    ]
    # Within 2.5 intervals of the last poll nothing is missing yet.
    assert history("synthetic", "1h", now=T0 - 17 * MINUTE)["gaps"] == [
        ["2026-03-02T10:43:00Z", "2026-03-02T11:40:00Z"]
    ]


def test_polling_that_started_inside_the_range_is_no_gap(settings) -> None:
    settings.SYNTRACK_POLL_INTERVAL = 60
    poll(T0 - 10 * MINUTE, subscription(1))
    poll(T0 - 9 * MINUTE, subscription(2))

    assert history("synthetic", "6h", now=T0 - 8 * MINUTE)["gaps"] == []


def test_it_refuses_an_unknown_range_or_provider() -> None:
    with pytest.raises(ValueError, match="unknown range"):
        history("synthetic", "2d", now=T0)
    with pytest.raises(ValueError, match="unknown provider"):
        history("openai", "1h", now=T0)
