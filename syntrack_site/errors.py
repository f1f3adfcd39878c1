"""Error pages: JSON under /api/ (scripts parse it), the site's own HTML page elsewhere.

Django sends every unmatched path to ``handler404`` and every unhandled
exception (with DEBUG off) to ``handler500``; the API's own 4xx answers never
come here.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.views import defaults

from quotas import api

API_PREFIX = "/api/"
logger = logging.getLogger(__name__)


def _is_api(request: HttpRequest) -> bool:
    return request.path == API_PREFIX.rstrip("/") or request.path.startswith(API_PREFIX)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return api.not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return api.server_error(request)
    try:
        return defaults.server_error(request)
    except Exception:
        # The error page itself failed (a missing static manifest, say): still answer, plainly.
        logger.exception("the 500 page could not be rendered")
        return HttpResponseServerError("<h1>Server error</h1>", content_type="text/html")
