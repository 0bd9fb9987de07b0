from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from accounts import services
from accounts.models import DeviceToken, User
from backend.admin_site import AuditedDetailMixin


class OperatorRequest(HttpRequest):
    """A request to the admin site, which lets in platform operators only (backend.admin_site):
    `user` is never anonymous there."""

    user: User


@admin.register(User)
class UserAdmin(AuditedDetailMixin, BaseUserAdmin):
    list_display = ["username", "display_name", "municipality", "role", "partner_organization", "is_active"]
    list_filter = ["municipality", "role", "is_active", "is_superuser"]
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]  # a tuple in Django's UserAdmin; the stubs give ModelAdmin's Optional
        ("つなぐ", {"fields": ("municipality", "role", "display_name", "partner_organization", "neighborhoods")}),
    )
    # A municipal user is made with its municipality and role (platform operators are made with
    # `manage.py createsuperuser`); the model's check constraints are validated on the form.
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("つなぐ", {"fields": ("municipality", "role", "display_name", "partner_organization")}),
    )
    filter_horizontal = ["neighborhoods", "groups", "user_permissions"]

    def get_form(
        self, request: HttpRequest, obj: User | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            form.base_fields["municipality"].required = True
        return form


@admin.register(DeviceToken)
class DeviceTokenAdmin(admin.ModelAdmin):
    """Read-only; a lost device is revoked with the action, which goes through the service."""

    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DeviceToken | None = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["view"])
    def revoke(self, request: OperatorRequest, queryset: QuerySet[DeviceToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.revoke_device_token(token=token, by=request.user)
