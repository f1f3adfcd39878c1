"""The dashboard page: a thin shell; the data arrives from the JSON API."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from quotas import preferences, providers


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    configured = providers.configured()
    config = {
        "providers": [{"id": pid, "name": providers.NAMES[pid]} for pid in configured],
        "both": len(configured) > 1,
        "poll_interval": settings.SYNTRACK_POLL_INTERVAL,
        # The timezone must be known before the first fetch renders a time.
        "settings": preferences.read(request.user),
        "username": request.user.get_username(),
        # The site's root with its base path (SYNTRACK_BASE_PATH): the scripts' API URLs hang from it.
        "root": reverse("dashboard"),
        "login_url": reverse("login"),
    }
    return render(request, "quotas/dashboard.html", {"config": config, "providers": config["providers"]})
