"""The supervisors' map page (/map/): a Django session login, then a MapLibre GL page whose API
calls use that session (api.auth.MunicipalSessionAuth) and CSRF."""

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse, reverse_lazy
from django.views.decorators.csrf import ensure_csrf_cookie

from reports.access import REPORT_READERS


class MapLoginView(LoginView):
    template_name = "maps/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("maps:page")


@login_required(login_url=reverse_lazy("maps:login"))
@ensure_csrf_cookie
def map_page(request: HttpRequest) -> HttpResponse:
    if getattr(request.user, "municipality_id", None) is None:  # (login_required: not anonymous)
        raise PermissionDenied("The map shows a municipality's data; this account belongs to none.")
    # The header links to the reports page for the roles that read it (reports.access).
    reports_url = reverse("reports:page") if getattr(request.user, "role", None) in REPORT_READERS else None
    config = {
        "api": "/api/v1/maps",
        "maplibre": static("maps/vendor/maplibre-gl.mjs"),
        "logout": reverse("maps:logout"),
    }
    return render(request, "maps/map.html", {"config": config, "reports_url": reports_url})
