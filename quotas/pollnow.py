"""Poll now: a user asks, through the database, that the running poller poll at once.

The web process records a request (``PollRequest``) only while a poller holds
the poll lock, so a request is never left waiting for nobody. The poll loop
looks for pending requests every ``CHECK_EVERY`` seconds while it waits and
brings the asked providers' next poll forward (``hasten``); whatever poll of
that provider lands next answers the request (``PollRequest.answered``).

An asked poll skips the loop's own backoff (the user wants to know now
whether the provider recovered) but never starts within ``ASKED_MIN_GAP``
seconds of the provider's previous poll, nor before a ``Retry-After`` the
provider asked for: a button pressed again and again must not hammer, or
prolong a rate limit of, the upstream API.

Request and poll times come from the web and poller processes' clocks, which
are assumed to agree (one host, or NTP): a poll answers the requests made
before it landed.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from quotas import locking, providers
from quotas.models import PollRequest, PollSession

# How often the poll loop looks for requests: a 2-row table read by primary key order.
CHECK_EVERY = 1.0
ASKED_MIN_GAP = 5.0
NO_POLLER = "no poller is running: start it with `manage.py poll` (make run starts it)"


class NotPolling(Exception):
    """No running poller will answer the request (409); nothing was recorded."""

    def __init__(self, message: str, poller_running: bool) -> None:
        super().__init__(message)
        self.poller_running = poller_running


class BadRequest(ValueError):
    """The request names a provider that cannot be polled here (400)."""


@dataclass(frozen=True)
class PollerState:
    """Whether a poller runs, and what its open sessions say about it."""

    # The lock holder's description (role, pid, host, start), None when no poller runs.
    holder: str | None
    # provider -> interval of the running loop poller's session; empty for `--once`.
    intervals: dict[str, int] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.holder is not None

    def polls(self, provider: str) -> bool:
        """The running poller polls ``provider``: a loop poller opens a session for each
        provider it polls; ``--once`` opens none and polls every configured one."""
        if not self.running:
            return False
        return provider in self.intervals if self.intervals else provider in providers.configured()

    def interval(self, provider: str) -> int:
        """The running poller's interval for ``provider``, else the configured one."""
        return self.intervals.get(provider, settings.SYNTRACK_POLL_INTERVAL)


def poller_state() -> PollerState:
    """One query for the open sessions (and on PostgreSQL one for the lock)."""
    holder = locking.poller_holder()
    # Always read, so the query count does not depend on the poller; sessions
    # left open by a crashed poller mean nothing while no poller runs.
    sessions = PollSession.objects.filter(ended_at__isnull=True).order_by("started_at", "id")
    intervals = dict(sessions.values_list("provider", "interval_seconds"))
    return PollerState(holder, intervals if holder is not None else {})


def ask(only: str | None = None, now: datetime | None = None) -> dict:
    """Ask the running poller to poll ``only`` (None: every configured provider) now.

    Returns the 202 body: ``requested_at`` is the earliest pending request
    among the providers (a request already pending absorbs this one), and the
    poll that answers it lands after that moment. Raises ``BadRequest`` for a
    provider without a key, ``NotPolling`` when no running poller would poll
    it; nothing is recorded then.
    """
    configured = providers.configured()
    if only is None:
        if not configured:
            raise BadRequest("no provider is configured (SYNTHETIC_API_KEY, ZAI_API_KEY)")
        wanted = configured
    elif only in configured:
        wanted = [only]
    else:
        raise BadRequest(f"{providers.NAMES[only]} is not configured: set {providers.KEY_SETTINGS[only]}")
    state = poller_state()
    if not state.running:
        raise NotPolling(NO_POLLER, poller_running=False)
    polled = [provider for provider in wanted if state.polls(provider)]
    if not polled:
        names = ", ".join(providers.NAMES[p] for p in wanted)
        raise NotPolling(f"the running poller does not poll {names} (started with --provider)", poller_running=True)
    requested = [PollRequest.ask(provider, now) for provider in polled]
    return {"requested_at": min(requested), "poller_running": True, "providers": polled}


def hasten(due: dict[str, float], not_before: dict[str, float], busy: Container[str], now: float) -> list[str]:
    """Move the next poll of each provider with a pending request to ``now``, or
    to its ``not_before`` when that is later; return the providers that moved.

    ``due``, ``not_before`` and ``now`` are on the poller's clock
    (``time.monotonic()``). A provider in ``busy`` (a fetch in flight) is left
    alone: that poll answers the request. One query.
    """
    moved = []
    for provider in PollRequest.pending():
        if provider not in due or provider in busy:
            continue
        at = max(now, not_before[provider])
        if at < due[provider]:
            due[provider] = at
            moved.append(provider)
    return moved


def not_before(started: float, retry_after: float | None) -> float:
    """The earliest an asked poll may start, after a poll that started at ``started``."""
    return started + max(ASKED_MIN_GAP, retry_after or 0.0)
