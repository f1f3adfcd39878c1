"""SynTrack's URLs: the dashboard, login/logout, the JSON API (product.md §8) and the admin."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import path

from accounts import views as accounts_views
from alerts import api as alerts_api
from alerts import views as alerts_views
from quotas import api, api_tools, openapi
from quotas import metrics as quotas_metrics
from quotas import views as quotas_views

admin.site.site_header = "SynTrack"
admin.site.site_title = "SynTrack admin"
admin.site.index_title = "Quota data"

# JSON under /api/, HTML elsewhere (syntrack_site.errors).
handler400 = "syntrack_site.errors.bad_request"
handler403 = "syntrack_site.errors.permission_denied"
handler404 = "syntrack_site.errors.not_found"
handler500 = "syntrack_site.errors.server_error"


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """/favicon.ico, which browsers ask for on pages that name no icon (the JSON API, error pages).

    A temporary redirect: the target's name carries a content hash that changes with the icon.
    """
    return HttpResponseRedirect(static("img/favicon.svg"))


urlpatterns = [
    path("", quotas_views.dashboard, name="dashboard"),
    path("favicon.ico", favicon, name="favicon"),
    path("login/", accounts_views.login, name="login"),
    path("logout/", accounts_views.logout, name="logout"),
    # Before the admin's own URLs: its login page shares the login throttle.
    path("admin/login/", accounts_views.admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
    path("api/status", api.status, name="api-status"),
    path("api/providers", api.providers, name="api-providers"),
    path("api/current", api.current, name="api-current"),
    path("api/history", api.history, name="api-history"),
    path("api/cycles", api.cycles, name="api-cycles"),
    path("api/summary", api.summary, name="api-summary"),
    path("api/sessions", api.sessions, name="api-sessions"),
    path("api/insights", api.insights, name="api-insights"),
    path("api/polls", api.polls, name="api-polls"),
    path("api/poll", api.poll, name="api-poll"),
    path("api/settings", api.settings, name="api-settings"),
    path("api/alerts", alerts_api.alerts, name="api-alerts"),
    path("api/export", api_tools.export_view, name="api-export"),
    path("api/guard", api_tools.guard_view, name="api-guard"),
    path("api/openapi.json", openapi.openapi_view, name="api-openapi"),
    path("settings/", alerts_views.settings_page, name="settings"),
    path("api/password", accounts_views.password, name="api-password"),
    path("metrics", quotas_metrics.metrics, name="metrics"),
]
