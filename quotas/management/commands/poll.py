"""``manage.py poll``: poll every configured provider, in parallel, forever."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import queue
import signal
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple

from django.apps import apps
from django.conf import settings
from django.core.checks import Tags
from django.core.management.base import CommandError
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from alerts import channels, evaluation
from alerts.rules import Rules
from lib import http
from quotas import dbfaults, pollnow, providers, retention
from quotas.backlog import MAX_HELD, RETRY_FIRST, RETRY_MAX, Backlog
from quotas.locking import LockHeld, PollLock
from quotas.management.base import OneLineErrorsCommand, usage_error
from quotas.models import Outcome, PollAttempt, PollRequest, PollSession
from quotas.polling import Received, next_delay, received_at, store
from quotas.providers import Fetched
from quotas.providers.base import INVALID_RESPONSE, NETWORK_ERROR, PollFailure
from syntrack_site.checks import CONFIGURATION

if TYPE_CHECKING:
    from alerts.delivery import Dispatcher

logger = logging.getLogger("syntrack.poll")

MIN_INTERVAL, MAX_INTERVAL = 10, 3600
# How long `--once` waits for its alerts to be delivered: a few alerts' time budgets (alerts.delivery.BUDGET).
DELIVERY_WAIT = 45.0
# How old an alert that no channel got may be for a restarted poller to still send it.
UNSENT_WITHIN = timedelta(hours=1)
# Slices of every wait, so a signal is acted on well within 2 seconds.
WAIT_SLICE = 0.25
# How often the loop asks the database whether the daily prune is due (quotas.retention).
PRUNE_CHECK_EVERY = 3600.0
# A prune step shorter than this is not worth starting before a poll falls due.
MIN_PRUNE_SLICE = 0.05
# How long `--once` keeps retrying a write the database refuses before it gives the answer up.
ONCE_STORE_PATIENCE = 20.0
# lib.http ends every request by its total deadline (connect, headers and body
# together), so a fetch outliving it by this much is stuck elsewhere: it is
# given up, in the loop and in `--once` alike.
FETCH_WATCHDOG = http.TOTAL_TIMEOUT + 5.0


class Result(NamedTuple):
    """A fetch thread's answer: its provider, when the fetch started (monotonic), and what it got."""

    provider: str
    started: float
    # Stamped with when the answer came: what its snapshot, readings and attempt
    # are dated, however long the write then waits (a lock, a slow disk).
    fetched: Received


class StorageRefused(Exception):
    """The database refused a poll's write (quotas.dbfaults): a fault of ours, not the upstream's."""

    def __init__(self, error: BaseException) -> None:
        self.reason = dbfaults.reason(error)
        self.kind = dbfaults.kind(error)
        super().__init__(self.reason)


class Command(OneLineErrorsCommand):
    help = "Poll the quota APIs of every configured provider (Synthetic, Z.ai) and store what they report."
    # `poll --once` runs from cron every minute: only the warnings an operator
    # must see at poll start (the default password, a misspelt variable). The
    # URL, template, admin and model checks import every view and cost more
    # than the poll; `check`, `migrate` and `serve` still run them all.
    requires_system_checks = [Tags.security, CONFIGURATION]
    # Set by a signal; tests may drive run_loop()/run_once() without handle().
    shutdown = False
    stop_signal: str | None = None
    signal_noted = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--interval",
            type=int,
            help=f"seconds between polls, {MIN_INTERVAL}-{MAX_INTERVAL} (default: SYNTRACK_POLL_INTERVAL or 60)",
        )
        parser.add_argument("--once", action="store_true", help="poll each provider once and exit (1 if any failed)")
        parser.add_argument("--provider", choices=sorted(providers.ADAPTERS), help="poll only this provider")
        # Bounded mode for benchmarks and tests: stop after this many polls.
        parser.add_argument("--max-polls", type=int, default=0, help=argparse.SUPPRESS)

    def execute(self, *args: object, **options: object) -> str | None:
        # Brief lock waits from the first connection on (the start-up checks read the
        # database already), and the usual ones again for whoever called (a test, a shell).
        with dbfaults.lock_wait(connection, dbfaults.POLLER_LOCK_WAIT):
            return super().execute(*args, **options)

    def handle(self, *args: object, **options: object) -> None:
        interval = options["interval"] if options["interval"] is not None else settings.SYNTRACK_POLL_INTERVAL
        if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
            raise usage_error(f"--interval must be between {MIN_INTERVAL} and {MAX_INTERVAL} seconds, got {interval}")
        chosen = self.chosen_providers(options["provider"])
        check_database()

        self.shutdown, self.stop_signal, self.signal_noted = False, None, False
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {signum: signal.signal(signum, self.on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            lock = PollLock("manage.py poll")
            try:
                acquired = lock.acquire(stop=lambda: self.shutdown)
            except LockHeld as e:
                raise CommandError(str(e), returncode=1) from None
            try:
                if not acquired:  # stopped while waiting for the lock
                    self.note_signal()
                elif options["once"]:
                    self.run_once(chosen)
                else:
                    self.run_loop(chosen, interval, options["max_polls"])
            finally:
                lock.release()
        finally:
            # call_command() in a test or a shell must not keep our handlers.
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def chosen_providers(self, only: str | None) -> list[str]:
        available = providers.configured()
        if not available:
            raise usage_error("no provider is configured: set SYNTHETIC_API_KEY or ZAI_API_KEY (environment or .env)")
        if only is None:
            return available
        if only not in available:
            raise usage_error(f"--provider {only}: {providers.KEY_SETTINGS[only]} is not set")
        return [only]

    def on_signal(self, signum: int, frame: object) -> None:
        # Only flags: writing to stdout here could re-enter a write the signal
        # interrupted. The waiting loop reports it (note_signal).
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum).name
        self.shutdown = True

    def note_signal(self) -> None:
        if self.stop_signal is not None and not self.signal_noted:
            self.signal_noted = True
            self.stdout.write(f"{self.stop_signal}, finishing...")

    # One poll, in the calling thread. Tests drive the poller through this.
    def poll_once(self, provider: str, session: PollSession | None = None) -> bool:
        return self.record(Received.now(self.fetch(provider)), session).outcome == Outcome.OK

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, in slices that notice a signal."""
        deadline = time.monotonic() + seconds
        while not self.shutdown and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(WAIT_SLICE, left))

    def fetch(self, provider: str) -> Fetched:
        try:
            return providers.fetch(provider)
        except Exception as e:
            # A parser bug must not take the loop, or the other provider, down.
            logger.exception("%s: unexpected error while fetching", provider)
            failure = PollFailure(INVALID_RESPONSE, f"internal error while reading the response: {type(e).__name__}")
            return Fetched(provider, None, failure, None, None)

    def record(self, fetched: Fetched, session: PollSession | None) -> PollAttempt:
        """Store one poll and say so; StorageRefused when the database will not take it (nothing written)."""
        try:
            attempt = store(fetched, session)
        except Exception as e:
            if dbfaults.kind(e) is not None:
                raise StorageRefused(e) from None
            # One payload that cannot be stored (a value too long for its
            # column, a bug in cycle tracking) must not crash-loop the poller
            # and starve the other provider: record it as a failed poll.
            # store() has put the session's counts back as they were.
            logger.exception("%s: could not store the response", fetched.provider)
            failure = PollFailure(INVALID_RESPONSE, f"could not store the response: {type(e).__name__}")
            unstored = Received(fetched.provider, None, failure, None, fetched.latency_ms, received_at(fetched))
            try:
                attempt = store(unstored, session)
            except DatabaseError as again:
                if dbfaults.kind(again) is None:
                    raise
                raise StorageRefused(again) from None
        try:
            # Whatever poll lands next answers a "poll now" request (quotas.pollnow).
            PollRequest.answered(attempt.provider, attempt.at)
        except DatabaseError as e:
            if dbfaults.kind(e) is None:
                raise
            # The poll is stored; a request left unanswered is answered by the next one.
            logger.warning("%s: cannot mark poll-now requests answered: %s", fetched.provider, dbfaults.reason(e))
        self.raise_alerts(attempt)
        name = providers.NAMES[fetched.provider]
        latency = f" in {attempt.latency_ms} ms" if attempt.latency_ms is not None else ""
        if attempt.outcome == Outcome.OK:
            level = logging.WARNING if attempt.drift else logging.INFO
            logger.log(level, "%s: ok%s (%s)", name, latency, attempt.message)
        else:
            logger.warning("%s: %s%s: %s", name, attempt.outcome, latency, attempt.message)
        return attempt

    # `--once` reads the alert rules once for every provider it polls; the loop reads them for each poll.
    round_rules: Rules | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        # Imported at first use: a poll that raises no alert (most of them) never loads delivery or email.
        from alerts.delivery import Dispatcher

        if getattr(self, "_dispatcher", None) is None:
            self._dispatcher = Dispatcher()
        return self._dispatcher

    def raise_alerts(self, attempt: PollAttempt) -> None:
        """The poll's alerts (its transaction has committed), handed to the delivery thread.

        Evaluating never stops polling: an error here is logged and the poll stands.
        """
        try:
            raised = evaluation.evaluate(attempt, rules=self.round_rules)
        except Exception as e:
            if dbfaults.kind(e) is not None:  # a database fault, not a bug: one line
                logger.warning("%s: could not evaluate alerts: %s", attempt.provider, dbfaults.reason(e))
            else:
                logger.exception("%s: could not evaluate alerts", attempt.provider)
            if not connection.in_atomic_block:
                close_old_connections()
            return
        for alert in raised:
            logger.log(logging.WARNING if alert.level == "critical" else logging.INFO, "alert: %s", alert.title)
        if raised and channels.configured():
            self.dispatcher.submit(raised)

    def deliver_unsent(self) -> None:
        """Alerts of the last hour that no channel got (the poller stopped before their delivery), sent now."""
        try:
            unsent = evaluation.unsent(UNSENT_WITHIN)
            if unsent and channels.configured():
                self.stdout.write(f"delivering {len(unsent)} alert(s) raised before the restart")
                self.dispatcher.submit(unsent)
        except DatabaseError as e:
            logger.warning("cannot look for undelivered alerts: %s", dbfaults.reason(e))

    def heartbeat_after(self, ok: set[str], stored: list[PollAttempt], chosen: list[str]) -> set[str]:
        """Beat once every chosen provider has polled successfully since the last beat; what is still owed.

        ``ok``: who had, before ``stored`` (the polls just written) came.
        """
        ok = ok | {attempt.provider for attempt in stored if attempt.outcome == Outcome.OK}
        if ok >= set(chosen):
            if settings.SYNTRACK_HEARTBEAT_URL:
                self.dispatcher.heartbeat()
            return set()
        return ok

    def wait_for_deliveries(self) -> None:
        """Before ``--once`` exits: the alerts it raised, within their time budget (a signal stops the wait)."""
        if getattr(self, "_dispatcher", None) is None:
            return  # nothing was handed over
        deadline = time.monotonic() + DELIVERY_WAIT
        while not self.shutdown and time.monotonic() < deadline:
            if self.dispatcher.drain(WAIT_SLICE):
                return
        if not self.shutdown:
            self.stdout.write(f"alert delivery still running after {DELIVERY_WAIT:g} s: not waiting longer")

    def run_once(self, chosen: list[str]) -> None:
        """Poll each provider once, in parallel; a poll that failed makes it exit 1.

        A signal stops the wait at once: what arrived is kept, requests still
        in flight are abandoned unwritten, and stopping on request is no failure.
        """
        results: queue.Queue[Result] = queue.Queue()
        started = {provider: self.start_fetch(provider, results) for provider in chosen}
        self.round_rules = Rules()
        failed = []
        pending = list(chosen)
        backlog = Backlog()
        stored: list[PollAttempt] = []
        while pending:
            now = time.monotonic()
            stuck = [p for p in pending if self.is_stalled(started[p], now)]
            if stuck:
                item = self.stalled(stuck[0], started[stuck[0]])
            else:
                # Until the answer, a signal, or the first pending fetch outlives the watchdog.
                wait = min(started[p] for p in pending) + FETCH_WATCHDOG - now
                item = self.wait_for_result(results, timeout=wait + WAIT_SLICE / 10)
                if item is None and not self.shutdown:
                    continue
            if item is None:
                self.note_signal()
                names = ", ".join(providers.NAMES[p] for p in pending)
                self.stdout.write(f"stopped before {names} answered: nothing stored")
                break
            if item.provider not in pending:
                continue  # the late answer of a fetch given up on
            pending.remove(item.provider)
            stored += self.write_or_hold(item.fetched, {}, backlog)
        # Answers the database refused: retried for a while, then given up (cron runs the next poll).
        give_up_at = time.monotonic() + ONCE_STORE_PATIENCE
        while backlog.outstanding and not self.shutdown and time.monotonic() < give_up_at:
            self.pause(min(backlog.retry_at, give_up_at) - time.monotonic())
            if not self.shutdown and backlog.due(time.monotonic()):
                stored += self.write_held(backlog, {})
        for attempt in stored:
            if attempt.outcome == Outcome.STORAGE_ERROR:
                continue
            self.stdout.write(f"{providers.NAMES[attempt.provider]}: {attempt.outcome} ({attempt.message})")
            if attempt.outcome != Outcome.OK:
                failed.append(providers.NAMES[attempt.provider])
        for fetched in backlog.items:
            name = providers.NAMES[fetched.provider]
            self.stdout.write(f"{name}: not stored, the database refused the write ({backlog.reason})")
            failed.append(name)
        if not failed and not pending and settings.SYNTRACK_HEARTBEAT_URL:
            self.dispatcher.heartbeat()
        self.wait_for_deliveries()
        # Cron users only ever run --once: they get a slice of the daily prune too.
        if not self.shutdown:
            pruner = self.start_prune()
            if pruner is not None:
                self.prune_step(pruner, retention.STEP_BUDGET)
        if failed:
            raise CommandError(f"poll failed for {', '.join(failed)}", returncode=1)

    def run_loop(self, chosen: list[str], interval: int, max_polls: int = 0) -> None:
        """Poll until a signal arrives.

        1. Close sessions a crashed poller left open, open one per provider.
        2. Fetch each provider in its own thread when it is due; write every
           result from this thread, one transaction per poll.
        3. Schedule the next poll from when this one started, backing off on
           repeated failures.
        4. Every second of waiting, look for "poll now" requests and bring
           the asked providers' next poll forward (quotas.pollnow).
        5. Once a day, prune old rows (quotas.retention) in slices of at most
           STEP_BUDGET seconds, never past the next poll's due time.
        6. On SIGTERM/SIGINT, stop waiting at once (an in-flight request is
           abandoned, not written) and close the sessions.
        """
        sessions = self.open_sessions(chosen, interval)
        if sessions is None:
            self.note_signal()  # stopped while the database refused writes: nothing was opened
            return
        self.deliver_unsent()
        names = ", ".join(providers.NAMES[p] for p in chosen)
        self.stdout.write(f"polling {names} every {interval} s (Ctrl-C to stop)")

        results: queue.Queue[Result] = queue.Queue()
        due = dict.fromkeys(chosen, time.monotonic())
        failures = dict.fromkeys(chosen, 0)
        # The earliest an asked poll of each provider may start.
        not_before = dict.fromkeys(chosen, time.monotonic())
        next_check = time.monotonic()
        check_failed = False
        # provider -> when its fetch started; the start also tells a late
        # answer of an abandoned fetch from the current one.
        in_flight: dict[str, float] = {}
        polls = 0
        # Providers polled successfully since the last heartbeat (SYNTRACK_HEARTBEAT_URL).
        beat_owed: set[str] = set()
        # Answers the database refused, until it takes writes again (quotas.backlog).
        backlog = Backlog()
        next_prune_check = time.monotonic()
        pruner: retention.Pruner | None = None
        try:
            while not self.shutdown:
                now = time.monotonic()
                if now >= next_check:
                    check_failed = self.answer_requests(due, not_before, in_flight, now, check_failed)
                    next_check = now + pollnow.CHECK_EVERY
                if backlog.due(now):
                    beat_owed = self.heartbeat_after(beat_owed, self.write_held(backlog, sessions), chosen)
                    now = time.monotonic()
                for provider in chosen:
                    if provider not in in_flight and due[provider] <= now:
                        in_flight[provider] = self.start_fetch(provider, results)
                # Only once the first round has landed: a start-up is never slowed, and
                # each provider's latest snapshot (which pruning spares) is the fresh one.
                if pruner is None and not backlog and polls >= len(chosen) and now >= next_prune_check:
                    next_prune_check = now + PRUNE_CHECK_EVERY
                    pruner = self.start_prune()
                if pruner is not None:
                    # Never past the next due poll or look for requests, and at most STEP_BUDGET:
                    # an answer arriving meanwhile waits that long at most.
                    next_due = min([due[p] for p in chosen if p not in in_flight] + [next_check])
                    slice_ = min(retention.STEP_BUDGET, next_due - now)
                    if slice_ >= MIN_PRUNE_SLICE:
                        pruner = self.prune_step(pruner, slice_)
                        now = time.monotonic()
                fetched_items = [
                    self.stalled(p, in_flight.pop(p)) for p in list(in_flight) if self.is_stalled(in_flight[p], now)
                ]
                waits = [due[p] - now for p in chosen if p not in in_flight] + [next_check - now]
                if backlog.outstanding:
                    waits.append(backlog.retry_at - now)
                item = None
                if not fetched_items:
                    item = self.wait_for_result(results, timeout=max(min(waits), 0.0))
                    if item is None:
                        continue
                    if in_flight.get(item.provider) != item.started:
                        logger.debug("%s: discarding the late answer of an abandoned fetch", item.provider)
                        continue
                    del in_flight[item.provider]
                    fetched_items = [item]
                for provider, started, fetched in fetched_items:
                    written = self.write_or_hold(fetched, sessions, backlog)
                    # Backoff follows the upstream's answer, whether or not the database took it yet.
                    ok = written[0].outcome == Outcome.OK if written else fetched.parsed is not None
                    failures[provider] = 0 if ok else failures[provider] + 1
                    beat_owed = self.heartbeat_after(beat_owed, written, chosen)
                    retry_after = fetched.failure.retry_after if fetched.failure else None
                    due[provider] = started + next_delay(interval, failures[provider], retry_after)
                    not_before[provider] = pollnow.not_before(started, retry_after)
                    polls += 1
                if max_polls and polls >= max_polls:
                    break
        finally:
            self.note_signal()
            self.finish(sessions, backlog)

    # --- when the database refuses writes (quotas.dbfaults, quotas.backlog) -------------------------

    def open_sessions(self, chosen: list[str], interval: int) -> dict[str, PollSession] | None:
        """Close what a crashed poller left open and open this run's sessions; None if stopped first.

        A database that refuses the write is waited for, with growing pauses,
        rather than given up on: a backup holding the lock must not leave the
        poller dead until someone restarts it.
        """
        pause, said = RETRY_FIRST, None
        while not self.shutdown:
            try:
                with transaction.atomic():
                    closed = PollSession.close_orphans()
                    sessions = {p: PollSession.objects.create(provider=p, interval_seconds=interval) for p in chosen}
            except DatabaseError as e:
                if dbfaults.kind(e) is None:
                    raise
                if dbfaults.reason(e) != said:
                    said = dbfaults.reason(e)
                    logger.warning("the database refuses writes (%s): waiting for it before polling", said)
                reconnect(dbfaults.kind(e))
                self.pause(pause)
                pause = min(pause * 2, RETRY_MAX)
                continue
            if said is not None:
                logger.warning("the database takes writes again")
            if closed:
                self.stdout.write(f"closed {closed} session(s) left open by an earlier run")
            return sessions
        return None

    def write_or_hold(self, fetched: Received, sessions: dict[str, PollSession], backlog: Backlog) -> list[PollAttempt]:
        """Store ``fetched`` (a list of its attempt), or keep it in ``backlog`` (an empty list).

        Behind answers already waiting it waits too: a provider's polls are written in the order they came.
        """
        now = time.monotonic()
        if backlog:
            self.hold(backlog, fetched, backlog.reason, now)
            return []
        if not connection.in_atomic_block:
            close_old_connections()
        try:
            return [self.record(fetched, sessions.get(fetched.provider))]
        except StorageRefused as e:
            self.hold(backlog, fetched, e.reason, now)
            logger.warning(
                "%s: the database refused the write (%s): the answer is kept and written when it can be",
                providers.NAMES[fetched.provider],
                e.reason,
            )
            reconnect(e.kind)
            return []

    @staticmethod
    def hold(backlog: Backlog, fetched: Received, reason: str, now: float) -> None:
        dropped = backlog.hold(fetched, reason, now)
        # Once per outage: from then on every new answer pushes out the oldest.
        if dropped and sum(part.lost for part in backlog.refused.values()) == dropped:
            logger.warning("more than %d answers wait for the database: the oldest are dropped from now on", MAX_HELD)

    def write_held(self, backlog: Backlog, sessions: dict[str, PollSession]) -> list[PollAttempt]:
        """Write what ``backlog`` holds, oldest first, until the database refuses again; what got written."""
        stored = []
        try:
            while backlog:
                if not connection.in_atomic_block:
                    close_old_connections()
                stored.append(self.record(backlog.next(), sessions.get(backlog.next().provider)))
                backlog.written()
            seconds = backlog.outage_seconds(time.monotonic())
            written = sum(part.held - part.lost for part in backlog.refused.values())
            try:
                with transaction.atomic():
                    stored += backlog.settle(time.monotonic(), sessions)
            except DatabaseError as e:  # the outage's own record was refused
                if dbfaults.kind(e) is None:
                    raise
                raise StorageRefused(e) from None
        except StorageRefused as e:
            if backlog.refused_again(e.reason, time.monotonic()):
                logger.warning("the database still refuses writes, now: %s", e.reason)
            reconnect(e.kind)
            return stored
        logger.warning("the database takes writes again after %.0f s: %d answer(s) written late", seconds, written)
        return stored

    def finish(self, sessions: dict[str, PollSession], backlog: Backlog) -> None:
        """At shutdown: write what waits and close the sessions, each given SHUTDOWN_LOCK_WAIT at most.

        What the database still refuses is said in one line; sessions left
        open are closed by the next start, at their last successful poll.
        """
        with dbfaults.lock_wait(connection, dbfaults.SHUTDOWN_LOCK_WAIT):
            if backlog:
                self.write_held(backlog, sessions)
            if backlog:
                logger.warning(
                    "%d answer(s) could not be written before stopping (%s): lost", len(backlog), backlog.reason
                )
            try:
                with transaction.atomic():
                    for session in sessions.values():
                        session.close()
            except DatabaseError as e:
                if dbfaults.kind(e) is None:
                    raise
                logger.warning(
                    "could not close the poll sessions (%s): the next start closes them at their last poll",
                    dbfaults.reason(e),
                )
                return
        self.stdout.write("poll sessions closed")

    @staticmethod
    def start_prune() -> retention.Pruner | None:
        """A prune job when the daily one is due, else None; a database hiccup only postpones it."""
        try:
            if not retention.due():
                return None
            pruner = retention.Pruner()
        except DatabaseError as e:
            logger.warning("cannot prune old data now: %s", dbfaults.reason(e))
            return None
        logger.info("pruning old data (%s)", _horizons_text(pruner.horizons))
        return pruner

    @staticmethod
    def prune_step(pruner: retention.Pruner, budget: float) -> retention.Pruner | None:
        """One slice of ``pruner``'s work; the pruner while unfinished, None once done (or given up)."""
        try:
            if not pruner.step(budget):
                return pruner
            retention.mark_done(pruner.now)
        except DatabaseError as e:
            # Nothing is marked done: the next check starts over where the data now stands.
            logger.warning("pruning stopped: %s", dbfaults.reason(e))
            if not connection.in_atomic_block:
                close_old_connections()
            return None
        removed = ", ".join(f"{task.done} {task.name}" for task in pruner.tasks) or "nothing (kept forever)"
        logger.info("pruned %s", removed)
        return None

    @staticmethod
    def answer_requests(
        due: dict[str, float], not_before: dict[str, float], in_flight: dict[str, float], now: float, failed: bool
    ) -> bool:
        """Bring forward the polls users asked for; return whether the look failed.

        A database hiccup here must not stop the loop (the next poll's write
        decides that): it is logged once per run of failures and retried.
        """
        try:
            moved = pollnow.hasten(due, not_before, in_flight, now)
        except DatabaseError as e:
            if not failed:
                logger.warning("cannot read poll-now requests: %s", dbfaults.reason(e))
            if not connection.in_atomic_block:
                close_old_connections()  # a broken connection is reopened for the next look
            return True
        for provider in moved:
            wait = due[provider] - now
            later = f" in {wait:.0f} s" if wait >= 0.5 else ""
            logger.info("%s: polling%s, as asked", providers.NAMES[provider], later)
        return False

    def start_fetch(self, provider: str, results: queue.Queue) -> float:
        """Fetch ``provider`` in a thread of its own; return when it started."""
        started = time.monotonic()

        def work() -> None:
            results.put(Result(provider, started, Received.now(self.fetch(provider))))

        # Daemon threads: a request in flight at shutdown is simply abandoned.
        threading.Thread(target=work, name=f"fetch-{provider}", daemon=True).start()
        return started

    @staticmethod
    def is_stalled(started: float, now: float) -> bool:
        return now - started > FETCH_WATCHDOG

    @staticmethod
    def stalled(provider: str, started: float) -> Result:
        """A fetch stuck past every timeout counts as a network error, so the
        provider is polled again instead of waiting on it forever."""
        failure = PollFailure(NETWORK_ERROR, f"no complete answer within {FETCH_WATCHDOG:.0f} s")
        return Result(provider, started, Received.now(Fetched(provider, None, failure, None, None)))

    def wait_for_result(self, results: queue.Queue, timeout: float = 0.0) -> Result | None:
        """The next fetch result within ``timeout``, waiting in short slices that notice a signal."""
        deadline = time.monotonic() + timeout
        while not self.shutdown:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                return results.get(timeout=min(WAIT_SLICE, remaining))
            except queue.Empty:
                continue
        return None


def reconnect(kind: str | None) -> None:
    """After a write the database refused as unavailable, drop the connection: the retry opens a fresh one.

    A PostgreSQL server that restarted or failed over leaves a connection that
    is broken, or read-only for good (default_transaction_read_only is read as
    a session starts); an SQLite file opened while it could not be written
    stays read-only to that connection. A lock is no reason: the connection is
    fine, and the lock's holder only has to finish. Never inside a
    transaction (a test's own).
    """
    if kind == dbfaults.UNAVAILABLE and not connection.in_atomic_block:
        connection.close()


def _horizons_text(horizons: retention.Horizons) -> str:
    return ", ".join(
        f"{name} before {horizon:%Y-%m-%d}" if horizon is not None else f"{name} kept"
        for name, horizon in horizons.named()
    )


def check_database() -> None:
    """Refuse to start, in one line, against a database that is unreachable or not migrated."""
    try:
        if not migrations_missing_on_record():
            return
        # Something on disk is not recorded, which a squashed migration can
        # explain: only the migration graph tells for sure.
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as e:
        raise usage_error(f"cannot use the database: {dbfaults.reason(e)}") from None
    if pending:
        raise usage_error(f"the database lacks {len(pending)} migration(s): run `manage.py migrate` first")


def migrations_missing_on_record() -> set[tuple[str, str]]:
    """The migration files of every app that ``django_migrations`` does not list.

    Names only, as MigrationLoader finds them, without importing a migration:
    building the graph costs a `poll --once` from cron more than its poll. An
    empty answer means migrated; any other may still be (squashes).
    """
    on_disk = set()
    for app in apps.get_app_configs():
        module_name, _ = MigrationLoader.migrations_module(app.label)
        if module_name is None:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue  # an app without migrations
        on_disk |= {
            (app.label, name)
            for _, name, is_package in pkgutil.iter_modules(getattr(module, "__path__", []))
            if not is_package and name[0] not in "_~"
        }
    return on_disk - recorded_migrations()


def recorded_migrations() -> set[tuple[str, str]]:
    """What ``django_migrations`` lists; nothing when the table is not there yet (a new database).

    Read directly: MigrationRecorder first looks the table up in the catalog,
    a query dearer on PostgreSQL than the read itself. Any other error (a
    database that cannot be reached) goes to the caller.
    """
    table = MigrationRecorder.Migration._meta.db_table
    try:
        return set(MigrationRecorder.Migration.objects.values_list("app", "name"))
    except DatabaseError as e:
        # PostgreSQL: relation "django_migrations" does not exist; SQLite: no such table: django_migrations.
        if table in str(e):
            return set()
        raise
