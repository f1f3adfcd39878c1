"""Read-mostly admin views of what the poller stored."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from quotas.models import PollAttempt, PollSession, QuotaReading, ResetCycle, Setting, Snapshot


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the poller only; the admin may look and delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadingInline(admin.TabularInline):
    model = QuotaReading
    fields = ["key", "kind", "unit", "used", "limit", "remaining", "percent", "resets_at", "cycle"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ["captured_at", "provider", "plan", "usable", "drift", "has_raw"]
    list_filter = ["provider", "usable", "drift"]
    date_hierarchy = "captured_at"
    readonly_fields = ["provider", "captured_at", "plan", "usable", "drift", "drift_notes", "raw_text"]
    exclude = ["raw"]
    inlines = [ReadingInline]

    @admin.display(boolean=True, description="raw body")
    def has_raw(self, obj: Snapshot) -> bool:
        return obj.raw is not None

    @admin.display(description="raw body")
    def raw_text(self, obj: Snapshot) -> str:
        body = obj.raw_body()
        return body.decode("utf-8", "replace") if body is not None else "(dropped by retention)"


@admin.register(QuotaReading)
class QuotaReadingAdmin(ReadOnlyAdmin):
    list_display = ["captured_at", "provider", "key", "used", "limit", "percent", "resets_at"]
    list_filter = ["provider", "key", "kind"]
    date_hierarchy = "captured_at"
    list_select_related = False
    raw_id_fields = ["snapshot", "cycle"]


@admin.register(ResetCycle)
class ResetCycleAdmin(ReadOnlyAdmin):
    list_display = [
        "provider",
        "quota",
        "started_at",
        "ended_at",
        "resets_at",
        "limit",
        "peak_used",
        "consumed",
        "readings_count",
    ]
    list_filter = ["provider", "quota", ("ended_at", admin.EmptyFieldListFilter)]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]


@admin.register(PollSession)
class PollSessionAdmin(ReadOnlyAdmin):
    list_display = ["provider", "started_at", "ended_at", "interval_seconds", "polls_ok", "polls_failed"]
    list_filter = ["provider"]
    date_hierarchy = "started_at"


@admin.register(PollAttempt)
class PollAttemptAdmin(ReadOnlyAdmin):
    list_display = ["at", "provider", "outcome", "drift", "latency_ms", "message"]
    list_filter = ["provider", "outcome", "drift"]
    date_hierarchy = "at"
    raw_id_fields = ["session", "snapshot"]


@admin.register(Setting)
class SettingAdmin(admin.ModelAdmin):
    list_display = ["key", "value", "updated_at"]
