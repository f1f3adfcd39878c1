"""Error pages: JSON under /api/ (scripts parse it), the site's own HTML page elsewhere.

Django sends every unmatched path to ``handler404`` and every unhandled
exception (with DEBUG off) to ``handler500``; the API's own 4xx answers never
come here. An exception an API view raises is answered by
syntrack_site.api_errors.ApiErrorsMiddleware first; ``handler500`` sees the
ones raised by middleware (a session that cannot be saved, say) and answers
them alike. /metrics counts as API for failures (scrapers parse them too),
not for the 404 that hides it while it is not served.
"""

from __future__ import annotations

import logging
import sys

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.views import defaults

from quotas import api
from syntrack_site import api_errors

logger = logging.getLogger(__name__)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Not /metrics: unless it is served, it is an unknown path like any other (quotas.metrics).
    if api_errors.under_api(request):
        return api.not_found(request, exception)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if api_errors.is_api(request):
        return api_errors.error_answer("bad request", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if api_errors.is_api(request):
        return api_errors.error_answer("forbidden", 403)
    return defaults.permission_denied(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if api_errors.is_api(request):
        # Django calls this inside its `except`: the exception says whether the database is busy.
        return api_errors.response_for(request, sys.exc_info()[1])
    try:
        return defaults.server_error(request)
    except Exception:
        # The error page itself failed (a missing static manifest, say): still answer, plainly.
        logger.exception("the 500 page could not be rendered")
        return HttpResponseServerError("<h1>Server error</h1>", content_type="text/html")
