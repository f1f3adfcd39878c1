"""The alerts in the admin: what was sent (read-only), the rules (editable), channels by their masked names only."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from alerts.channels import mask
from alerts.models import Alert, Channel, Delivery, EventSwitch, Latch, Threshold
from quotas.admin import ReadOnlyAdmin


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ["at", "channel", "status", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["at", "event", "provider", "quota", "level", "title"]
    list_filter = ["event", "provider", "level"]
    search_fields = ["title", "message", "quota"]
    date_hierarchy = "at"
    inlines = [DeliveryInline]


@admin.register(Latch)
class LatchAdmin(ReadOnlyAdmin):
    """Deleting a latch re-arms its alert."""

    list_display = ["provider", "quota", "event", "level", "cycle_id", "percent", "at"]
    list_filter = ["provider", "event"]


@admin.register(Threshold)
class ThresholdAdmin(admin.ModelAdmin):
    list_display = ["provider", "quota", "warning", "critical"]


@admin.register(EventSwitch)
class EventSwitchAdmin(admin.ModelAdmin):
    list_display = ["event", "enabled"]


@admin.register(Channel)
class ChannelAdmin(ReadOnlyAdmin):
    """Only the masked name: the URL holds a secret. Channels are added on the settings page."""

    list_display = ["masked", "enabled", "created_at"]
    fields = ["masked", "enabled", "created_at"]
    readonly_fields = fields

    @admin.display(description="channel")
    def masked(self, obj: Channel) -> str:
        return mask(obj.url)
