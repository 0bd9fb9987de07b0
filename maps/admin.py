from django.contrib import admin

from maps.models import CoverageRefresh


@admin.register(CoverageRefresh)
class CoverageRefreshAdmin(admin.ModelAdmin):
    """When each campaign's coverage snapshot was computed (read-only: the refresh task writes it)."""

    list_display = ("campaign", "municipality", "refreshed_at", "duration_ms", "requested_at")
    list_filter = ("municipality",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
