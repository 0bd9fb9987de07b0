"""Municipalities and 自治会 for the platform operator. Households and residents are not in the admin
(people data: read through neighborhoods/access.py, written by neighborhoods/services.py)."""

from django.contrib.gis import admin
from django.http import HttpRequest

from neighborhoods.models import Municipality, Neighborhood


@admin.register(Municipality)
class MunicipalityAdmin(admin.ModelAdmin):
    list_display = ["code", "prefecture", "name"]


@admin.register(Neighborhood)
class NeighborhoodAdmin(admin.GISModelAdmin):
    """Read-only: boundaries change through `manage.py import_boundaries`, which re-assigns the
    households a changed boundary moves; an edit here would skip that."""

    list_display = ["code", "name", "municipality"]
    list_filter = ["municipality"]
    search_fields = ["code", "name", "kana"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Neighborhood | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Neighborhood | None = None) -> bool:
        return False
