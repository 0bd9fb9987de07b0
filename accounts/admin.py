from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import DeviceToken, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "display_name", "municipality", "role", "partner_organization", "is_active"]
    list_filter = ["municipality", "role", "is_active"]
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("つなぐ", {"fields": ("municipality", "role", "display_name", "partner_organization", "neighborhoods")}),
    )
    filter_horizontal = ["neighborhoods", "groups", "user_permissions"]


@admin.register(DeviceToken)
class DeviceTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    readonly_fields = ["token_hash", "prefix", "created_at", "last_used_at", "created_ip"]
    search_fields = ["name", "user__username"]
