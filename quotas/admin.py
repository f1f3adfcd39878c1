"""Read-mostly admin views of what the poller stored."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from quotas.models import PollAttempt, PollSession, QuotaReading, ResetCycle, Setting, Snapshot
from quotas.readable import readable, readable_percent


def quota_name(label: str | None, key: str) -> str:
    """The label the dashboard shows, with the key that filters and the API use beside it."""
    return f"{label} ({key})" if label and label != key else key


class ReadableAmounts:
    """Columns for a row's numbers in its own unit (QuotaReading and ResetCycle both carry ``unit``)."""

    @admin.display(description="used", ordering="used")
    def used_readable(self, obj: QuotaReading) -> str | None:
        return readable(obj.used, obj.unit)

    @admin.display(description="limit", ordering="limit")
    def limit_readable(self, obj: QuotaReading | ResetCycle) -> str | None:
        return readable(obj.limit, obj.unit)

    @admin.display(description="remaining", ordering="remaining")
    def remaining_readable(self, obj: QuotaReading) -> str | None:
        return readable(obj.remaining, obj.unit)

    @admin.display(description="percent", ordering="percent")
    def percent_readable(self, obj: QuotaReading) -> str | None:
        return readable_percent(obj.percent)

    @admin.display(description="quota", ordering="key")
    def quota(self, obj: QuotaReading) -> str:
        return quota_name(obj.label, obj.key)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the poller only; the admin may look and delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadingInline(ReadableAmounts, admin.TabularInline):
    model = QuotaReading
    fields = [
        "quota", "kind", "unit", "used_readable", "limit_readable", "remaining_readable", "percent_readable",
        "resets_at", "cycle",
    ]  # fmt: skip
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
class QuotaReadingAdmin(ReadableAmounts, ReadOnlyAdmin):
    list_display = [
        "captured_at",
        "provider",
        "quota",
        "used_readable",
        "limit_readable",
        "percent_readable",
        "resets_at",
    ]
    fields = [
        "snapshot", "provider", "captured_at", "quota", "kind", "unit", "used_readable", "limit_readable",
        "remaining_readable", "percent_readable", "resets_at", "cycle", "details",
    ]  # fmt: skip
    readonly_fields = fields
    list_filter = ["provider", "key", "kind"]
    date_hierarchy = "captured_at"
    list_select_related = False
    raw_id_fields = ["snapshot", "cycle"]


@admin.register(ResetCycle)
class ResetCycleAdmin(ReadableAmounts, ReadOnlyAdmin):
    list_display = [
        "provider",
        "quota_label",
        "started_at",
        "ended_at",
        "resets_at",
        "limit_readable",
        "peak_used_readable",
        "consumed_readable",
        "readings_count",
    ]
    fields = [
        "provider", "quota_label", "unit", "started_at", "ended_at", "resets_at", "limit_readable",
        "peak_used_readable", "consumed_readable", "readings_count", "last_used_readable", "last_reading_at",
        "reported_resets_at",
    ]  # fmt: skip
    readonly_fields = fields
    list_filter = ["provider", "quota", ("ended_at", admin.EmptyFieldListFilter)]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ResetCycle]:
        # A cycle stores its quota's key only; the label is that of the quota's latest reading.
        latest_label = (
            QuotaReading.objects.filter(provider=OuterRef("provider"), key=OuterRef("quota"))
            .order_by("-captured_at")
            .values("label")[:1]
        )
        return super().get_queryset(request).annotate(label=Subquery(latest_label))

    @admin.display(description="quota", ordering="quota")
    def quota_label(self, obj: ResetCycle) -> str:
        return quota_name(obj.label, obj.quota)

    @admin.display(description="peak used", ordering="peak_used")
    def peak_used_readable(self, obj: ResetCycle) -> str | None:
        return readable(obj.peak_used, obj.unit)

    @admin.display(description="consumed", ordering="consumed")
    def consumed_readable(self, obj: ResetCycle) -> str | None:
        return readable(obj.consumed, obj.unit)

    @admin.display(description="last used")
    def last_used_readable(self, obj: ResetCycle) -> str | None:
        return readable(obj.last_used, obj.unit)


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
