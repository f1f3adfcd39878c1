"""Prometheus ``/metrics``: what ``/api/current`` shows, read from the database at scrape time.

A custom collector on its own registry (never prometheus_client's global one,
whose process and GC metrics would describe a single gunicorn worker):

- ``syntrack_quota_used``, ``syntrack_quota_limit``, ``syntrack_quota_used_ratio``
  (``percent`` / 100), ``syntrack_quota_reset_timestamp_seconds`` and
  ``syntrack_quota_exhausts_timestamp_seconds``, labelled ``provider``, ``quota``
  (the key), ``unit`` and ``kind``, are ``quotas.numbers.current()``'s numbers,
  so they equal ``/api/current``'s exactly. A series whose number is null there
  is left out (a share-only window has no ``used``; ``exhausts_at`` exists only
  while a quota is projected to run out); a quota at 0 % has its series all the same.
  Quotas the dashboard hides (limit 0, nothing used: not in the plan) are
  exported too: they are in ``/api/current``, and a plan change shows at once.
- ``syntrack_poll_last_success_timestamp_seconds{provider}``: the latest
  successful attempt, which retention always keeps.
- ``syntrack_poll_failures_total{provider,outcome}``: every failed poll ever,
  stored or pruned (quotas.failures explains how it never goes down), with a
  series at 0 for every failure outcome.
- ``syntrack_build_info{version}``: the version in pyproject.toml.

Exported providers: the configured ones, and any other with polls stored.
``/metrics`` is not served at all (the site's 404) unless a read-only token
exists or ``SYNTRACK_METRICS_PUBLIC`` is true; when public it needs no
authentication, otherwise the API's (token, Basic or session).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import datetime
from functools import cache, wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from accounts import tokens
from accounts.auth import api_auth, error, unauthorized
from quotas import failures, numbers, providers
from quotas.models import Outcome, PollAttempt

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
QUOTA_LABELS = ("provider", "quota", "unit", "kind")
ALLOWED = ("GET", "HEAD")
RATIO_DIGITS = 10


@cache
def version() -> str:
    try:
        with PYPROJECT.open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _timestamp(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


class QuotaCollector:
    """Reads the database on every ``collect()``, that is on every scrape."""

    def collect(self) -> Iterator[Metric]:
        gauges = {
            "used": GaugeMetricFamily("syntrack_quota_used", "Used, in the quota's unit.", labels=QUOTA_LABELS),
            "limit": GaugeMetricFamily("syntrack_quota_limit", "The limit, in the quota's unit.", labels=QUOTA_LABELS),
            "ratio": GaugeMetricFamily(
                "syntrack_quota_used_ratio", "Share of the limit used, 0-1.", labels=QUOTA_LABELS
            ),
            "reset": GaugeMetricFamily(
                "syntrack_quota_reset_timestamp_seconds", "When the quota resets (Unix time).", labels=QUOTA_LABELS
            ),
            "exhausts": GaugeMetricFamily(
                "syntrack_quota_exhausts_timestamp_seconds",
                "When the quota runs out at the current pace (Unix time); only while it is projected to.",
                labels=QUOTA_LABELS,
            ),
        }
        last_success = GaugeMetricFamily(
            "syntrack_poll_last_success_timestamp_seconds",
            "When the latest successful poll was made (Unix time).",
            labels=("provider",),
        )
        failed = CounterMetricFamily(
            "syntrack_poll_failures", "Failed polls, by outcome.", labels=("provider", "outcome")
        )
        counts = failures.totals()
        for provider in _exported():
            body = numbers.current(provider)
            for quota in body["quotas"]:
                self._add_quota(gauges, provider, quota)
            at = (
                PollAttempt.objects.filter(provider=provider, outcome=Outcome.OK)
                .order_by("-at")
                .values_list("at", flat=True)
                .first()
            )
            if at is not None:
                last_success.add_metric([provider], at.timestamp())
            for outcome in failures.FAILED:
                failed.add_metric([provider, outcome], counts.get((provider, outcome), 0))
        yield from gauges.values()
        yield last_success
        yield failed
        yield InfoMetricFamily("syntrack_build", "SynTrack's version.", value={"version": version()})

    @staticmethod
    def _add_quota(gauges: dict[str, GaugeMetricFamily], provider: str, quota: dict[str, Any]) -> None:
        labels = [provider, quota["key"], quota["unit"], quota["kind"]]
        percent = quota["percent"]
        values = {
            "used": quota["used"],
            "limit": quota["limit"],
            # Rounded past the percent's own digits: 1.8 / 100 is 0.018, not 0.018000000000000002.
            "ratio": round(percent / 100, RATIO_DIGITS) if percent is not None else None,
            "reset": _timestamp(quota["resets_at"]),
            "exhausts": _timestamp(quota["exhausts_at"]),
        }
        for name, value in values.items():
            if value is not None:
                gauges[name].add_metric(labels, value)


def _exported() -> list[str]:
    configured = set(providers.configured())
    polled = set(PollAttempt.objects.order_by().values_list("provider", flat=True).distinct())
    return [provider for provider in providers.NAMES if provider in configured or provider in polled]


registry = CollectorRegistry()
registry.register(QuotaCollector())


def served() -> bool:
    return settings.SYNTRACK_METRICS_PUBLIC or tokens.any_exist()


def _scrape(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _explained(view: Any) -> Any:
    """A bare 401 says what a scraper should send."""

    @wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        response = view(request)
        if response.status_code == 401 and "HTTP_AUTHORIZATION" not in request.META:
            return unauthorized("authentication required: send a read-only token as Authorization: Bearer stk_…")
        return response

    return wrapped


_authenticated = _explained(api_auth(_scrape))


# Exempt: a POST gets the 405 below, not a CSRF page (nothing here writes).
@csrf_exempt
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the text exposition format."""
    if not served():
        raise Http404("metrics are not enabled")
    if request.method not in ALLOWED:
        return error(f"method {request.method} not allowed", 405, Allow=", ".join(ALLOWED))
    if settings.SYNTRACK_METRICS_PUBLIC:
        return _scrape(request)
    return _authenticated(request)
