"""``/api/export`` and ``/api/guard``: thin views over quotas.export and quotas.guard."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Generator, Iterator

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone

from accounts.auth import api_auth, error
from quotas import export, guard
from quotas.api import answer, methods
from quotas.toolforms import ExportForm, GuardForm
from syntrack_site import api_errors

logger = logging.getLogger("syntrack.export")


@methods("GET")
@api_auth
def export_view(request: HttpRequest) -> HttpResponse:
    """The export as an attachment, streamed.

    The first piece of rows is read before the response starts, so a database
    that cannot answer the query gets a JSON 503. Once bytes have gone out the
    status cannot change: a failure later aborts the connection (the client
    sees an incomplete transfer, never a short file that looks whole).
    """
    form = ExportForm(request.GET)
    if not form.is_valid():
        return error(form.first_error(), 400)
    data = form.cleaned_data
    what, fmt, provider = data["what"], data["format"], data["provider"]
    pieces = export.stream(what, fmt, provider, data["since"], data["until"])
    try:
        # The CSV header (no query), then the first rows (the query starts).
        first = list(itertools.islice(pieces, 2 if fmt == "csv" else 1))
    except DatabaseError as e:
        # "database busy, try again" when it is only locked (syntrack_site.api_errors), with Retry-After:
        # one line then, a traceback only for what is not understood.
        trouble = api_errors.database_trouble(e)
        if trouble:
            logger.warning("export of %s failed before the first row: %s (%s)", what, trouble, str(e).strip()[:200])
        else:
            logger.exception("export of %s failed before the first row", what)
        return api_errors.error_answer(trouble or api_errors.UNAVAILABLE_MESSAGE, 503)
    response = StreamingHttpResponse(_logged(first, pieces, what), content_type=export.content_type(fmt))
    response["Content-Disposition"] = f'attachment; filename="{export.filename(what, fmt, provider)}"'
    response["Cache-Control"] = "no-store"
    return response


def _logged(first: list[bytes], pieces: Generator[bytes], what: str) -> Iterator[bytes]:
    """The pieces, the first ones already read; closing this (the response does) closes the export."""
    try:
        yield from first
        yield from pieces
    except Exception:
        logger.exception("export of %s failed while streaming; the connection is aborted", what)
        raise
    finally:
        pieces.close()


@methods("GET")
@api_auth
def guard_view(request: HttpRequest) -> HttpResponse:
    """200 ``{"ok": true, …}``, 429 when too little is left, 503 while the numbers are stale."""
    form = GuardForm(request.GET)
    if not form.is_valid():
        return error(form.first_error(), 400)
    data = form.cleaned_data
    now = timezone.now()
    verdict = guard.check(data["provider"], data["quota"], data["min_remaining_percent"], now)
    if verdict.kind == guard.UNKNOWN_QUOTA:
        return answer(verdict.body, status=400)
    if verdict.kind == guard.STALE:
        return answer(verdict.body, status=503)
    if verdict.kind == guard.LOW:
        response = answer(verdict.body, status=429)
        if verdict.retry_at is not None:
            response["Retry-After"] = str(max(math.ceil((verdict.retry_at - now).total_seconds()), 0))
        return response
    return answer(verdict.body)
