"""Partner corporations for the platform operator. Campaigns, visits, visit records, photos and sync
state are not in the admin: they are people data or derived from it, read through visits/access.py
and written by visits' services (backend/admin_site.py)."""

from django.contrib.gis import admin

from visits.models import PartnerOrganization


@admin.register(PartnerOrganization)
class PartnerOrganizationAdmin(admin.GISModelAdmin):
    list_display = ["code", "name", "municipality"]
    list_filter = ["municipality"]
