from django.contrib.gis import admin

from outreach.models import (
    CaseContact,
    CaseMeeting,
    Concern,
    ConcernTransition,
    Meeting,
    OutreachCase,
    WatchArrangement,
)


class TransitionInline(admin.TabularInline):
    model = ConcernTransition
    extra = 0
    readonly_fields = ["from_status", "to_status", "reason", "by", "at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Concern)
class ConcernAdmin(admin.GISModelAdmin):
    list_display = ["created_at", "status", "urgency", "source", "neighborhood", "reported_by"]
    list_filter = ["municipality", "status", "urgency", "source"]
    inlines = [TransitionInline]
    readonly_fields = ["status", "version", "change_seq"]


class ContactInline(admin.TabularInline):
    model = CaseContact
    extra = 0


class CaseMeetingInline(admin.TabularInline):
    model = CaseMeeting
    extra = 0


@admin.register(OutreachCase)
class OutreachCaseAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "stage", "lead_partner", "lead_worker", "next_contact_due", "overdue"]
    list_filter = ["municipality", "status", "stage", "overdue"]
    inlines = [ContactInline, CaseMeetingInline]
    readonly_fields = ["version", "change_seq"]


@admin.register(Meeting)
class MeetingAdmin(admin.ModelAdmin):
    list_display = ["held_on", "neighborhood", "recorded_by"]
    list_filter = ["municipality"]


@admin.register(WatchArrangement)
class WatchArrangementAdmin(admin.ModelAdmin):
    list_display = ["household", "watcher_name", "watcher_role", "cadence_days", "next_due", "overdue"]
    list_filter = ["municipality", "overdue", "watcher_role"]
