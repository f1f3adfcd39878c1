from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import ApiToken, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "is_staff", "is_active", "last_login", "has_default_password"]

    @admin.display(boolean=True, description="default password", ordering="password_is_default")
    def has_default_password(self, obj: User) -> bool:
        return obj.password_is_default


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made where they can be shown once (the settings page, ``createtoken``); here they are
    listed and revoked (deleted)."""

    list_display = ["name", "prefix", "created_at", "last_used_at", "created_by"]
    readonly_fields = ["name", "prefix", "created_at", "last_used_at", "created_by"]
    exclude = ["digest"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
