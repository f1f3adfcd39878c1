"""Failures under /api/ and /metrics answer JSON, never Django's HTML pages or a traceback.

- A database that is busy (SQLite "database is locked" after its busy
  timeout; PostgreSQL lock_timeout, statement_timeout, a deadlock or a
  serialization failure) is ``503 {"error": "database busy, try again"}``
  with Retry-After, and one warning line in the log.
- A database that cannot be reached or written at all (a lost connection,
  a read-only file or server) is ``503 {"error": "database unavailable"}``,
  also with Retry-After.
- Anything else is ``500 {"error": "internal error"}``; the traceback goes
  to the ``django.request`` log as Django itself would log it.

``ApiErrorsMiddleware`` catches what a view raises (last in MIDDLEWARE, so its
answer still passes every other middleware: the security headers are set on
it). What a middleware raises reaches handler500 (syntrack_site.errors),
which answers with the same ``response_for``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core import signals
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.log import log_response

from quotas import dbfaults
from quotas.api import RETRY_AFTER_SECONDS

API_PREFIX = "/api/"
METRICS_PATH = "/metrics"
BUSY_MESSAGE = "database busy, try again"
UNAVAILABLE_MESSAGE = "database unavailable"

logger = logging.getLogger("syntrack.api")

# Django answers these itself with a 4xx (handler400/403/404): not failures of ours.
CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


def under_api(request: HttpRequest) -> bool:
    path = request.path_info
    return path == API_PREFIX.rstrip("/") or path.startswith(API_PREFIX)


def is_api(request: HttpRequest) -> bool:
    """/api/ and /metrics: their failures answer JSON (an unserved /metrics stays the site's plain 404)."""
    return under_api(request) or request.path_info == METRICS_PATH


def database_trouble(exc: BaseException) -> str | None:
    """BUSY_MESSAGE, UNAVAILABLE_MESSAGE, or None when ``exc`` is no database outage (a bug, say)."""
    return {dbfaults.BUSY: BUSY_MESSAGE, dbfaults.UNAVAILABLE: UNAVAILABLE_MESSAGE}.get(dbfaults.kind(exc))


def error_answer(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def response_for(request: HttpRequest, exc: BaseException | None) -> JsonResponse:
    """The JSON answer to ``exc`` raised while serving ``request`` under /api/ (None: unknown)."""
    trouble = database_trouble(exc) if exc is not None else None
    if trouble is not None:
        response = error_answer(trouble, 503)
        # An outage, not a bug: one warning line, no traceback (the client is told to retry).
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        log_response(
            "%s: %s: %s (%s)",
            response.reason_phrase,
            request.path,
            trouble,
            detail,
            response=response,
            request=request,
            logger=logger,
            level="warning",
        )
        return response
    return error_answer("internal error", 500)


class ApiErrorsMiddleware:
    """Belongs last in MIDDLEWARE: turns what an API view raises into a JSON answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api(request) or isinstance(exception, CLIENT_ERRORS):
            return None  # pages keep Django's handling; 4xx exceptions go to handler400/403/404
        response = response_for(request, exception)
        if response.status_code == 500:
            # As Django's own handler would: the signal (error reporters, the test client) and the traceback.
            signals.got_request_exception.send(sender=None, request=request)
            log_response(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,
                request=request,
                exception=exception,
            )
        return response
