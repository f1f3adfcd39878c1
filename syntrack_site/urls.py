"""SynTrack's URLs. Until the dashboard exists, / leads to the admin."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "SynTrack"
admin.site.site_title = "SynTrack admin"
admin.site.index_title = "Quota data"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
