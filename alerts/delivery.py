"""Sending alerts off the poll's critical path: a worker thread, a time budget, retries, a circuit breaker.

The poll loop hands each poll's alerts to a ``Dispatcher`` once the poll's
transaction has committed and goes on polling; the dispatcher's one thread
sends them in order, to every channel (alerts.channels), and records a
``Delivery`` per alert and channel. For each:

1. A channel that failed ``BREAKER_FAILURES`` times in a row rests for
   ``BREAKER_PAUSE`` (recorded as failed, not tried): a dead channel does not
   cost every alert its time budget.
2. Tries until it is sent or ``BUDGET`` seconds have passed, each try's
   timeouts cut to the budget left; only a timeout, a network error, a 429 or
   a 5xx is tried again (after 1, 2, 4 … s), anything else is final.
3. Errors are scrubbed of every part of the channel's URL.

The thread is a daemon: a hanging channel never holds up the poller's exit.
Apprise is imported on the first send, so a poller without channels never pays for it.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from alerts import channels as channels_module
from alerts.channels import Channel, scrub
from alerts.models import Alert, Delivery, Event

logger = logging.getLogger("syntrack.alerts")

BUDGET = 15.0
BREAKER_FAILURES = 3
BREAKER_PAUSE = timedelta(minutes=5)
# Apprise's own timeouts per try (connect, read), cut to the budget left.
TRY_TIMEOUT = 5.0
FIRST_RETRY_WAIT = 1.0
MAX_ERROR = 500
RETRYABLE_STATUS = re.compile(r"error=(429|5\d\d)\b")
RETRYABLE_WORDS = ("connection error", "timed out", "timeout", "temporarily")


@dataclass
class Outcome:
    sent: bool
    error: str = ""
    retry: bool = False


class Breaker:
    """Per channel: failures in a row, and until when it rests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures: dict[str, int] = {}
        self.resting_until: dict[str, float] = {}

    def resting(self, key: str) -> bool:
        return self.clock() < self.resting_until.get(key, 0.0)

    def record(self, key: str, sent: bool) -> None:
        if sent:
            self.failures.pop(key, None)
            self.resting_until.pop(key, None)
            return
        self.failures[key] = self.failures.get(key, 0) + 1
        if self.failures[key] >= BREAKER_FAILURES:
            self.resting_until[key] = self.clock() + BREAKER_PAUSE.total_seconds()
            self.failures[key] = 0


def send(channel: Channel, title: str, body: str, level: str = "", budget: float = BUDGET) -> Outcome:
    """Send one message to one channel within ``budget`` seconds, retrying what may pass on a second try."""
    deadline = time.monotonic() + budget
    wait = FIRST_RETRY_WAIT
    while True:
        left = deadline - time.monotonic()
        outcome = _try(channel, title, body, level, min(TRY_TIMEOUT, max(left, 0.1)))
        if outcome.sent or not outcome.retry:
            return outcome
        if time.monotonic() + wait >= deadline:
            outcome.error = f"{outcome.error} (gave up after {budget:g} s)"
            return outcome
        time.sleep(wait)
        wait *= 2


def _try(channel: Channel, title: str, body: str, level: str, timeout: float) -> Outcome:
    if channel.kind == channels_module.EMAIL:
        return _email(title, body)
    return _apprise(channel.url, title, body, level, timeout)


def _email(title: str, body: str) -> Outcome:
    from django.core.mail import send_mail  # the email package is some ms to import: only when mailing

    try:
        send_mail(title, body, None, settings.SYNTRACK_ALERT_EMAILS, fail_silently=False)
    except (OSError, TimeoutError) as e:  # smtplib's errors are OSErrors
        return Outcome(False, _clip(f"email failed: {type(e).__name__}: {e}"), retry=True)
    except Exception as e:
        return Outcome(False, _clip(f"email failed: {type(e).__name__}"))
    return Outcome(True)


def _apprise(url: str, title: str, body: str, level: str, timeout: float) -> Outcome:
    import apprise

    service = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if service is None:
        return Outcome(False, "Apprise does not know this URL (see the Apprise documentation for its form)")
    service.socket_connect_timeout = service.socket_read_timeout = timeout
    notify_type = {"critical": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}.get(
        level, apprise.NotifyType.INFO
    )
    with apprise.LogCapture(level=logging.WARNING) as captured:
        try:
            sent = bool(service.notify(body=body, title=title, notify_type=notify_type))
        except Exception as e:  # a plugin bug must not take the delivery thread down
            logger.debug("apprise raised %s", type(e).__name__)
            sent = False
        said = captured.getvalue()
    if sent:
        return Outcome(True)
    lines = [line.split(" - ", 2)[-1] for line in said.splitlines() if line.strip()]
    error = scrub(" ".join(lines), [url]) or "the channel did not accept the message"
    lowered = error.lower()
    retry = bool(RETRYABLE_STATUS.search(error)) or any(word in lowered for word in RETRYABLE_WORDS)
    return Outcome(False, _clip(error), retry)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


class Dispatcher:
    """The poller's delivery thread and its queue of alerts."""

    def __init__(self, budget: float = BUDGET) -> None:
        self.budget = budget
        self.breaker = Breaker()
        self.jobs: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def submit(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            self._put(("alert", alert.pk))

    def heartbeat(self) -> None:
        """GET SYNTRACK_HEARTBEAT_URL in the thread (callers check it is set: they skip loading this module)."""
        self._put(("heartbeat", None))

    def _put(self, job: tuple[str, int | None]) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="syntrack-alerts", daemon=True)
                self.thread.start()
        self.jobs.put(job)

    def drain(self, timeout: float) -> bool:
        """Wait until every job handed over is done, at most ``timeout`` seconds; whether all were."""
        deadline = time.monotonic() + timeout
        while self.jobs.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _run(self) -> None:
        while True:
            kind, pk = self.jobs.get()
            try:
                close_old_connections()
                if kind == "heartbeat":
                    beat()
                else:
                    alert = Alert.objects.filter(pk=pk).first()
                    if alert is not None:
                        deliver(alert, self.breaker, self.budget)
            except Exception:
                logger.exception("alert delivery failed")
            finally:
                # This thread's own connection: closed between jobs, so an idle
                # thread holds none (PostgreSQL counts them; tests drop databases).
                connection.close()
                self.jobs.task_done()


def deliver(alert: Alert, breaker: Breaker | None = None, budget: float = BUDGET) -> list[Delivery]:
    """Send ``alert`` to every configured channel and record each delivery."""
    breaker = breaker or Breaker()
    deliveries = []
    for channel in channels_module.configured():
        if breaker.resting(channel.key):
            outcome = Outcome(False, f"paused after {BREAKER_FAILURES} failures in a row")
        else:
            outcome = send(channel, alert.title, alert.message, alert.level or _level(alert), budget)
            breaker.record(channel.key, outcome.sent)
        status = Delivery.Status.SENT if outcome.sent else Delivery.Status.FAILED
        deliveries.append(
            Delivery(alert=alert, channel=channel.name, status=status, error=outcome.error, at=timezone.now())
        )
        if not outcome.sent:
            logger.warning("alert %r to %s failed: %s", alert.title, channel.name, outcome.error)
        else:
            logger.info("alert %r sent to %s", alert.title, channel.name)
    return Delivery.objects.bulk_create(deliveries)


def _level(alert: Alert) -> str:
    if alert.event in (Event.EXHAUSTED, Event.AUTH_FAILED, Event.FAILING):
        return "critical"
    if alert.event in (Event.RUNS_OUT, Event.DRIFT):
        return "warning"
    return ""


def beat() -> None:
    """GET the heartbeat URL (an external monitor's "still alive"); a failure is logged, never raised."""
    from lib import http

    url = settings.SYNTRACK_HEARTBEAT_URL
    try:
        response = http.get(url, {}, secrets=channels_module.secrets_of(url), total_timeout=10.0, max_bytes=4096)
    except http.HttpError as e:
        logger.warning("heartbeat failed: %s", scrub(str(e), [url]))
        return
    if not 200 <= response.status < 300:
        logger.warning("heartbeat answered HTTP %s", response.status)


__all__ = ["Breaker", "Dispatcher", "beat", "deliver", "send"]
