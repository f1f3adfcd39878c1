"""The JSON API (product.md §8): thin views over quotas.numbers/history/reports/insights.

Every view validates its query with a form (quotas.forms), answers
``{"error": …}`` with a 4xx on bad input, and for ``?provider=both`` answers
``{"synthetic": {…}, "zai": {…}}`` with the single-provider bodies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from accounts.auth import api_auth, error
from lib.timefmt import isostring
from quotas import dbhealth, forms, numbers, pollnow, preferences, reports
from quotas.history import history as build_history
from quotas.insights import insights as build_insights

MAX_BODY = 64 * 1024
# A 503's Retry-After: the database busy (syntrack_site.api_errors) or not taking writes.
RETRY_AFTER_SECONDS = 5

View = Callable[..., HttpResponse]


class ApiEncoder(DjangoJSONEncoder):
    """Datetimes as ``2026-02-06T16:16:18Z`` (UTC, whole seconds)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            return isostring(o)
        return super().default(o)


def answer(data: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, encoder=ApiEncoder)


def methods(*allowed: str) -> Callable[[View], View]:
    """JSON 405 with an Allow header for any other method (GET also allows HEAD)."""
    names = set(allowed) | ({"HEAD"} if "GET" in allowed else set())

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if request.method not in names:
                return error(f"method {request.method} not allowed", 405, Allow=", ".join(sorted(names)))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def json_body(request: HttpRequest) -> Any:
    """The request's JSON body; raises ValueError with a message fit for the client."""
    try:
        body = request.body
    except RequestDataTooBig:
        body = None
    if body is None or len(body) > MAX_BODY:
        raise ValueError("request body too large")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("the body must be valid JSON") from None


def _validated(form: forms.ProviderForm) -> list | JsonResponse:
    """The providers to answer for, or the 400 to send."""
    if not form.is_valid():
        return error(form.first_error(), 400)
    try:
        return form.chosen_providers()
    except forms.NoProviderConfigured:
        return error("no provider is configured (SYNTHETIC_API_KEY, ZAI_API_KEY): pass ?provider=synthetic or zai", 400)


def per_provider(form: forms.ProviderForm, body: Callable[[Any], dict]) -> JsonResponse:
    chosen = _validated(form)
    if isinstance(chosen, JsonResponse):
        return chosen
    if form.both:
        return answer({provider: body(provider) for provider in chosen})
    return answer(body(chosen[0]))


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Any unknown path under /api/ (handler404 sends it here)."""
    return error("not found", 404)


# Exempt: it writes nothing, and another method must get the JSON 405, not the CSRF failure page.
@csrf_exempt
@methods("GET")
def status(request: HttpRequest) -> JsonResponse:
    """Unauthenticated health check for monitoring: the database answers, and takes a write promptly.

    503 ``"status": "error"`` when it does not answer; 503 ``"status": "degraded"``
    when it answers reads but a write would wait or fail (quotas.dbhealth).
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        body = {"status": "error", "database": "unavailable", "writable": False, "error": "database unavailable"}
        return _retry_later(answer(body, status=503))
    problem = dbhealth.write_problem()
    if problem is not None:
        body = {"status": "degraded", "database": "ok", "writable": False, "error": problem}
        return _retry_later(answer(body, status=503))
    return answer({"status": "ok"})


def _retry_later(response: JsonResponse) -> JsonResponse:
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@methods("GET")
@api_auth
def providers(request: HttpRequest) -> JsonResponse:
    return answer(reports.providers())


@methods("GET")
@api_auth
def current(request: HttpRequest) -> JsonResponse:
    return per_provider(forms.ProviderForm(request.GET), numbers.current)


@methods("GET")
@api_auth
def history(request: HttpRequest) -> JsonResponse:
    form = forms.HistoryForm(request.GET)
    return per_provider(form, lambda provider: build_history(provider, form.cleaned_data["range"]))


@methods("GET")
@api_auth
def cycles(request: HttpRequest) -> JsonResponse:
    form = forms.CyclesForm(request.GET)
    chosen = _validated(form)
    if isinstance(chosen, JsonResponse):
        return chosen
    quota = form.cleaned_data["quota"]
    # A typo must not look like "no cycles yet": name the keys that exist.
    if quota is not None and not reports.quota_known(chosen, quota):
        reported = ", ".join(sorted(reports.quota_keys(chosen))) or "none yet"
        return error(f"quota: unknown key {quota!r}; the provider has reported: {reported}", 400)
    return per_provider(form, lambda provider: reports.cycles(provider, quota, form.cleaned_data["limit"]))


@methods("GET")
@api_auth
def summary(request: HttpRequest) -> JsonResponse:
    return per_provider(forms.ProviderForm(request.GET), reports.summary)


@methods("GET")
@api_auth
def insights(request: HttpRequest) -> JsonResponse:
    form = forms.InsightsForm(request.GET)
    chosen = _validated(form)
    if isinstance(chosen, JsonResponse):
        return chosen
    hidden = preferences.hidden_insights(request.user)
    bodies = {provider: build_insights(provider, form.cleaned_data["range"], hidden=hidden) for provider in chosen}
    return answer(bodies if form.both else bodies[chosen[0]])


def _listing(request: HttpRequest, lister: Callable[[str | None, int], dict]) -> JsonResponse:
    """Sessions and polls: no ``?provider=`` lists every provider's (items name their provider)."""
    form = forms.ListForm(request.GET)
    return per_provider(form, lambda provider: lister(provider, form.cleaned_data["limit"]))


@methods("GET")
@api_auth
def sessions(request: HttpRequest) -> JsonResponse:
    return _listing(request, reports.sessions)


@methods("GET")
@api_auth
def polls(request: HttpRequest) -> JsonResponse:
    return _listing(request, reports.polls)


@methods("GET", "PUT")
@api_auth
def settings(request: HttpRequest) -> JsonResponse:
    if request.method == "PUT":
        try:
            return answer(preferences.update(json_body(request), request.user))
        except ValueError as e:  # InvalidPreference is one
            return error(str(e), 400)
    return answer(preferences.read(request.user))


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _poll_parameters(request: HttpRequest) -> dict:
    """``provider`` from the query string, or from the body: a form, or JSON ``{"provider": …}``.

    Raises ValueError with a message for the client when the body is bad.
    """
    data = request.GET.dict()
    if request.content_type in FORM_TYPES:
        try:
            form = request.POST
        except (RequestDataTooBig, MultiPartParserError):
            raise ValueError("the form in the body cannot be read") from None
        body = {"provider": form["provider"]} if "provider" in form else {}
    else:
        body = json_body(request) if request.body else {}
        if not isinstance(body, dict):
            raise ValueError('the body must be a JSON object such as {"provider": "zai"}')
        unknown = sorted(set(body) - {"provider"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}: the body takes only provider")
    if body.get("provider") not in (None, ""):
        if data.get("provider") not in (None, "", body["provider"]):
            raise ValueError("provider given twice, with different values")
        data["provider"] = body["provider"]
    return data


# Open to viewers too (accounts.roles): it changes no setting and no data, it
# only brings forward a poll the poller makes anyway. Requests are coalesced
# (one row per provider) and the poller still honours each provider's backoff
# and Retry-After, so a viewer cannot make SynTrack call an upstream more often
# than it would. Tokens stay read-only (api_auth).
@methods("POST")
@api_auth
def poll(request: HttpRequest) -> JsonResponse:
    """Ask the running poller to poll now: 202, or 409 when no running poller would."""
    try:
        form = forms.ProviderForm(_poll_parameters(request))
    except ValueError as e:
        return error(str(e), 400)
    if not form.is_valid():
        return error(form.first_error(), 400)
    chosen = form.cleaned_data["provider"]
    try:
        return answer(pollnow.ask(None if chosen in ("", forms.BOTH) else chosen), status=202)
    except pollnow.BadRequest as e:
        return error(str(e), 400)
    except pollnow.NotPolling as e:
        return answer({"error": str(e), "poller_running": e.poller_running}, status=409)
