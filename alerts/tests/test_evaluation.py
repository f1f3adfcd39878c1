"""alerts.evaluation: exactly once, with hysteresis, under controlled time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.evaluation import evaluate
from alerts.models import Alert, Event, EventSwitch, Latch, Threshold
from conftest import store_failure, store_quotas
from quotas.providers.base import Quota

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def subscription(used: float, resets_at: datetime = T0 + timedelta(hours=5)) -> Quota:
    return Quota(
        key="subscription", label="Subscription", kind="reset", unit="requests", used=used, limit=1000,
        resets_at=resets_at,
    )  # fmt: skip


def rolling(percent: float) -> Quota:
    return Quota(key="rolling_5h", label="5-hour window", kind="rolling", unit="requests", used=percent * 5, limit=500)


class Poller:
    """Stores polls a minute apart and evaluates each, as the poller does; keeps every alert raised."""

    def __init__(self, provider: str = "synthetic") -> None:
        self.provider, self.at, self.raised = provider, T0, []

    def ok(self, *quotas: Quota) -> list[tuple[str, str]]:
        return self._evaluate(store_quotas(self.at, *quotas, provider=self.provider))

    def failed(self, outcome: str = "server_error") -> list[tuple[str, str]]:
        return self._evaluate(store_failure(self.at, provider=self.provider, outcome=outcome))

    def _evaluate(self, attempt) -> list[tuple[str, str]]:
        alerts = evaluate(attempt, now=self.at)
        self.at += MINUTE
        self.raised.extend(alerts)
        return [(alert.event, alert.level) for alert in alerts]


def test_climbing_past_each_level_alerts_once_per_level() -> None:
    poller = Poller()
    said = [poller.ok(subscription(used)) for used in (500, 700, 810, 850, 900, 960, 990, 1000)]

    # (this pace also runs out before the reset: told once, on its own)
    told = [[alert for alert in step if alert[0] != "runs_out"] for step in said]
    assert told == [[], [], [("threshold", "warning")], [], [], [("threshold", "critical")], [], [("exhausted", "")]]
    warning = poller.raised[0]
    assert warning.title == "Synthetic: Subscription at 81 %"
    assert warning.message == (
        "Subscription has used 81 % of its limit (810 of 1000 requests), past 80 %. It resets at 17:00 UTC."
    )
    assert Alert.objects.filter(event__in=["threshold", "exhausted"]).count() == 3
    assert Alert.objects.filter(event="runs_out").count() == 1


def test_a_jump_past_both_levels_sends_only_the_critical_one() -> None:
    poller = Poller()
    assert poller.ok(subscription(100)) == []
    assert poller.ok(subscription(970)) == [("threshold", "critical")]
    assert poller.ok(subscription(980)) == []
    assert set(Latch.objects.filter(event="threshold").values_list("level", flat=True)) == {"warning", "critical"}


def test_nothing_is_sent_twice_when_the_poller_restarts() -> None:
    # All state is in the database: evaluating again, as a restarted poller does, sends nothing new.
    poller = Poller()
    poller.ok(subscription(850))
    again = Poller()
    again.at = poller.at
    assert again.ok(subscription(860)) == []
    assert again.ok(subscription(860)) == []
    assert Alert.objects.count() == 1


def test_a_rolling_window_jittering_around_a_level_alerts_once_until_it_falls_5_points_below() -> None:
    poller = Poller()
    said = [poller.ok(rolling(percent)) for percent in (70, 81, 79, 81.5, 78, 80.5, 76, 81, 74, 82)]

    assert said == [[], [("threshold", "warning")], [], [], [], [], [], [], [], [("threshold", "warning")]]


def test_a_new_cycle_re_arms_the_quota() -> None:
    poller = Poller()
    assert poller.ok(subscription(850)) == [("threshold", "warning")]
    # the window resets: usage drops and the reset time moves on
    later = T0 + timedelta(hours=10)
    assert poller.ok(subscription(20, resets_at=later)) == []
    assert poller.ok(subscription(600, resets_at=later)) == []
    assert poller.ok(subscription(820, resets_at=later)) == [("threshold", "warning")]


def test_the_reset_event_is_off_by_default_and_sent_once_per_new_cycle_when_on() -> None:
    EventSwitch.objects.create(event=Event.RESET, enabled=True)
    poller = Poller()
    assert poller.ok(subscription(300)) == []  # the first cycle seen is no reset
    later = T0 + timedelta(hours=10)
    assert poller.ok(subscription(5, resets_at=later)) == [("reset", "")]
    assert poller.ok(subscription(9, resets_at=later)) == []
    assert poller.raised[0].title == "Synthetic: Subscription reset"

    EventSwitch.objects.filter(event=Event.RESET).update(enabled=False)
    assert poller.ok(subscription(1, resets_at=later + timedelta(hours=5))) == []


def test_a_disabled_event_is_neither_sent_nor_latched() -> None:
    EventSwitch.objects.create(event=Event.THRESHOLD, enabled=False)
    poller = Poller()
    assert poller.ok(subscription(900)) == []
    assert not Latch.objects.filter(event="threshold").exists()


def test_levels_per_quota_override_the_global_ones_which_override_the_defaults() -> None:
    Threshold.objects.create(warning=60, critical=90)
    Threshold.objects.create(provider="synthetic", quota="subscription", warning=40)
    poller = Poller()
    said = [poller.ok(subscription(used)) for used in (300, 450, 850, 920)]
    assert said == [[], [("threshold", "warning")], [], [("threshold", "critical")]]


def test_an_unauthorized_answer_alerts_once_and_the_next_good_poll_once_more() -> None:
    poller = Poller()
    assert poller.failed("unauthorized") == [("auth_failed", "")]
    assert poller.failed("unauthorized") == []
    assert poller.ok(subscription(10)) == [("recovered", "")]
    assert poller.ok(subscription(11)) == []
    assert [alert.title for alert in poller.raised] == [
        "Synthetic: API key rejected",
        "Synthetic: API key accepted again",
    ]
    assert poller.raised[0].message == "HTTP 401: the API key was rejected."


def test_failing_comes_after_5_failed_polls_in_a_row() -> None:
    poller = Poller("zai")
    said = [poller.failed() for _ in range(7)]
    assert said == [[], [], [], [], [("failing", "")], [], []]
    assert poller.raised[0].title == "Z.ai: 5 polls failed in a row"
    assert poller.ok(Quota(key="tokens_5h", label="Tokens (5h)", kind="reset", unit="tokens", percent=3.0)) == [
        ("recovered", "")
    ]


def test_the_number_of_failures_is_configurable(settings) -> None:
    settings.SYNTRACK_ALERT_FAILING_POLLS = 2
    poller = Poller()
    assert [poller.failed() for _ in range(3)] == [[], [("failing", "")], []]
    assert poller.raised[0].title == "Synthetic: 2 polls failed in a row"


def test_a_good_poll_between_failures_starts_the_count_again() -> None:
    poller = Poller()
    said = [poller.failed() for _ in range(4)] + [poller.ok(subscription(1))] + [poller.failed() for _ in range(4)]
    assert all(step == [] for step in said)


def test_running_out_before_the_reset_is_told_with_both_times() -> None:
    poller = Poller()
    resets_at = T0 + timedelta(hours=3)
    # 100 requests every minute against 1000: gone long before the reset
    said = [poller.ok(subscription(100 + 60 * i, resets_at=resets_at)) for i in range(6)]

    runs_out = [alert for alert in poller.raised if alert.event == Event.RUNS_OUT]
    assert len(runs_out) == 1 and ("runs_out", "") in said[-1] + said[-2] + said[-3] + said[-4]
    assert runs_out[0].title == "Synthetic: Subscription runs out before its reset"
    assert runs_out[0].message.startswith("At this pace Subscription runs out at 12:")
    assert runs_out[0].message.endswith("; it resets at 15:00 UTC.")


def test_times_follow_the_dashboards_time_zone() -> None:
    from quotas.models import Setting

    Setting.objects.create(key="timezone", value="Europe/Berlin")
    poller = Poller()
    poller.ok(subscription(850))
    assert poller.raised[0].message.endswith("It resets at 18:00 CET.")


def test_a_drifted_payload_alerts_once_and_the_next_full_read_recovers_once() -> None:
    poller = Poller()
    assert poller.failed("drift") == [("drift", "")]
    assert poller.failed("drift") == []
    assert poller.ok(subscription(10)) == [("recovered", "")]
    assert poller.raised[-1].title == "Synthetic: the answer reads normally again"
