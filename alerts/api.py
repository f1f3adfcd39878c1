"""``GET /api/alerts?limit=N``: what SynTrack told people, newest first."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from accounts.auth import api_auth, error
from alerts import reports
from quotas.api import answer, methods
from quotas.forms import DEFAULT_LIMIT, ApiForm, limit_field


class AlertsForm(ApiForm):
    limit = limit_field()

    def clean_limit(self) -> int:
        return self.cleaned_data["limit"] or DEFAULT_LIMIT


@methods("GET")
@api_auth
def alerts(request: HttpRequest) -> JsonResponse:
    form = AlertsForm(request.GET)
    if not form.is_valid():
        return error(form.first_error(), 400)
    return answer(reports.recent(form.cleaned_data["limit"]))


__all__ = ["alerts"]
