"""The Django admin is the platform operator's tool, not the municipalities'.

Only an active superuser who belongs to no municipality may use it. Municipal staff work through
the API, where `<app>/access.py` scopes every read and services do every write; the admin has
neither, so people data (households, residents, concerns, cases, contacts, meetings, visit records,
photos) is not registered here at all.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse

PLATFORM_ADMIN_BASIS = "platform_admin"


def is_platform_operator(user: Any) -> bool:
    return bool(
        user is not None
        and user.is_active
        and user.is_superuser
        and getattr(user, "municipality_id", None) is None
    )


class PlatformAuthenticationForm(AdminAuthenticationForm):
    """Refuses a correct password of anyone but a platform operator, so no session is opened."""

    def confirm_login_allowed(self, user: Any) -> None:
        # Replaces the is_staff test of Django's admin form: the same rule as has_permission.
        if not is_platform_operator(user):
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class PlatformAdminSite(admin.AdminSite):
    site_header = "つなぐ 運用管理 (platform operators)"
    site_title = "つなぐ 運用管理"
    index_title = "運用管理"
    login_form = PlatformAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        # A staff or superuser flag on a municipal account is never enough (see the check
        # constraint on accounts.User); the admin does not go through access.py.
        return is_platform_operator(request.user)


class AuditedDetailMixin:
    """Writes an audit row for each detail page an operator opens (GET of the change view)."""

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        if request.method == "GET" and response.status_code == 200:
            from accounts.services import client_ip
            from audit.services import record_access

            record_access(
                actor=request.user,
                object_type=self.model._meta.label_lower,  # type: ignore[attr-defined]
                object_id=object_id,
                basis=PLATFORM_ADMIN_BASIS,
                ip=client_ip(request),
            )
        return response
