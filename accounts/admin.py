from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "is_staff", "is_active", "last_login", "has_default_password"]

    @admin.display(boolean=True, description="default password", ordering="password_is_default")
    def has_default_password(self, obj: User) -> bool:
        return obj.password_is_default
