"""``manage.py poll``: poll every configured provider, in parallel, forever."""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import CommandError
from django.db import close_old_connections, connection

from quotas import providers
from quotas.locking import LockHeld, PollLock
from quotas.management.base import OneLineErrorsCommand, usage_error
from quotas.models import Outcome, PollAttempt, PollSession
from quotas.polling import next_delay, prune_raw_bodies, store
from quotas.providers import Fetched
from quotas.providers.base import INVALID_RESPONSE, PollFailure

logger = logging.getLogger("syntrack.poll")

MIN_INTERVAL, MAX_INTERVAL = 10, 3600
# Slices of every wait, so a signal is acted on well within 2 seconds.
WAIT_SLICE = 0.25
PRUNE_EVERY = 3600.0


class Command(OneLineErrorsCommand):
    help = "Poll the quota APIs of every configured provider (Synthetic, Z.ai) and store what they report."

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

    def handle(self, *args: object, **options: object) -> None:
        interval = options["interval"] if options["interval"] is not None else settings.SYNTRACK_POLL_INTERVAL
        if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
            raise usage_error(f"--interval must be between {MIN_INTERVAL} and {MAX_INTERVAL} seconds, got {interval}")
        chosen = self.chosen_providers(options["provider"])

        self.shutdown = False
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)

        lock = PollLock("manage.py poll")
        try:
            lock.acquire()
        except LockHeld as e:
            raise CommandError(str(e), returncode=1) from None
        try:
            if options["once"]:
                self.run_once(chosen)
            else:
                self.run_loop(chosen, interval, options["max_polls"])
        finally:
            lock.release()

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
        if not self.shutdown:
            self.stdout.write(f"{signal.Signals(signum).name}, finishing...")
        self.shutdown = True

    # One poll, in the calling thread. Tests drive the poller through this.
    def poll_once(self, provider: str, session: PollSession | None = None) -> bool:
        return self.record(self.fetch(provider), session).outcome == Outcome.OK

    def fetch(self, provider: str) -> Fetched:
        try:
            return providers.fetch(provider)
        except Exception as e:
            # A parser bug must not take the loop, or the other provider, down.
            logger.exception("%s: unexpected error while fetching", provider)
            failure = PollFailure(INVALID_RESPONSE, f"internal error while reading the response: {type(e).__name__}")
            return Fetched(provider, None, failure, None, None)

    def record(self, fetched: Fetched, session: PollSession | None) -> PollAttempt:
        attempt = store(fetched, session)
        name = providers.NAMES[fetched.provider]
        latency = f" in {attempt.latency_ms} ms" if attempt.latency_ms is not None else ""
        if attempt.outcome == Outcome.OK:
            level = logging.WARNING if attempt.drift else logging.INFO
            logger.log(level, "%s: ok%s (%s)", name, latency, attempt.message)
        else:
            logger.warning("%s: %s%s: %s", name, attempt.outcome, latency, attempt.message)
        return attempt

    def run_once(self, chosen: list[str]) -> None:
        results: queue.Queue[tuple[str, float, Fetched]] = queue.Queue()
        for provider in chosen:
            self.start_fetch(provider, results)
        failed = []
        for _ in chosen:
            item = self.wait_for_result(results, until_shutdown=True)
            if item is None:
                raise CommandError("interrupted before every provider answered", returncode=1)
            attempt = self.record(item[2], None)
            self.stdout.write(f"{providers.NAMES[attempt.provider]}: {attempt.outcome} ({attempt.message})")
            if attempt.outcome != Outcome.OK:
                failed.append(providers.NAMES[attempt.provider])
        if failed:
            raise CommandError(f"poll failed for {', '.join(failed)}", returncode=1)

    def run_loop(self, chosen: list[str], interval: int, max_polls: int = 0) -> None:
        """Poll until a signal arrives.

        1. Close sessions a crashed poller left open, open one per provider.
        2. Fetch each provider in its own thread when it is due; write every
           result from this thread, one transaction per poll.
        3. Schedule the next poll from when this one started, backing off on
           repeated failures.
        4. On SIGTERM/SIGINT, stop waiting at once (an in-flight request is
           abandoned, not written) and close the sessions.
        """
        closed = PollSession.close_orphans()
        if closed:
            self.stdout.write(f"closed {closed} session(s) left open by an earlier run")
        sessions = {p: PollSession.objects.create(provider=p, interval_seconds=interval) for p in chosen}
        names = ", ".join(providers.NAMES[p] for p in chosen)
        self.stdout.write(f"polling {names} every {interval} s (Ctrl-C to stop)")

        results: queue.Queue[tuple[str, float, Fetched]] = queue.Queue()
        due = dict.fromkeys(chosen, time.monotonic())
        failures = dict.fromkeys(chosen, 0)
        in_flight: set[str] = set()
        polls = 0
        next_prune = time.monotonic()
        try:
            while not self.shutdown:
                now = time.monotonic()
                for provider in chosen:
                    if provider not in in_flight and due[provider] <= now:
                        in_flight.add(provider)
                        self.start_fetch(provider, results)
                waits = [due[p] - now for p in chosen if p not in in_flight]
                item = self.wait_for_result(results, timeout=max(min(waits, default=WAIT_SLICE), 0.0))
                if item is None:
                    continue
                provider, started, fetched = item
                in_flight.discard(provider)
                if not connection.in_atomic_block:
                    close_old_connections()
                attempt = self.record(fetched, sessions[provider])
                failures[provider] = 0 if attempt.outcome == Outcome.OK else failures[provider] + 1
                retry_after = fetched.failure.retry_after if fetched.failure else None
                due[provider] = started + next_delay(interval, failures[provider], retry_after)
                polls += 1
                if max_polls and polls >= max_polls:
                    break
                if time.monotonic() >= next_prune:
                    pruned = prune_raw_bodies(settings.SYNTRACK_RAW_RETENTION_DAYS)
                    if pruned:
                        logger.info(
                            "dropped %d raw bodies older than %d days", pruned, settings.SYNTRACK_RAW_RETENTION_DAYS
                        )
                    next_prune = time.monotonic() + PRUNE_EVERY
        finally:
            for session in sessions.values():
                session.close()
            self.stdout.write("poll sessions closed")

    def start_fetch(self, provider: str, results: queue.Queue) -> None:
        def work() -> None:
            started = time.monotonic()
            results.put((provider, started, self.fetch(provider)))

        # Daemon threads: a request in flight at shutdown is simply abandoned.
        threading.Thread(target=work, name=f"fetch-{provider}", daemon=True).start()

    def wait_for_result(
        self, results: queue.Queue, timeout: float = 0.0, until_shutdown: bool = False
    ) -> tuple[str, float, Fetched] | None:
        """The next fetch result, waiting in short slices that notice a signal."""
        deadline = time.monotonic() + timeout
        while not self.shutdown:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not until_shutdown:
                return None
            try:
                return results.get(timeout=min(WAIT_SLICE, remaining) if not until_shutdown else WAIT_SLICE)
            except queue.Empty:
                continue
        return None
