"""The admin shows times in the zone chosen on the dashboard (``/api/settings`` ``timezone``)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from quotas import preferences


class AdminTimezoneMiddleware:
    """Activates the staff user's own saved time zone (falling back to the global default) under /admin/.

    Only there: the dashboard and the API render times in the browser and
    answer UTC. With no zone saved ("the browser's own") the admin stays in
    UTC, the one zone the server can be sure of, and says so in its header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if not (request.path.startswith(reverse("admin:index")) and user is not None and user.is_staff):
            return self.get_response(request)
        zone = preferences.read(user)["timezone"]
        if zone is None:
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
