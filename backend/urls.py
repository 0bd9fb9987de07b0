from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from api.api import api
from api.errors import handler404 as api_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    # The supervisors' map page, with its own session login and logout (maps/urls.py).
    path("map/", include("maps.urls")),
    # The reports page beside it (same login).
    path("reports/", include("reports.urls")),
    # The one-time set-password page of a new account (accounts/links.py makes the links).
    path("account/", include("accounts.urls")),
    # Anything else under /api/ answers with the API's JSON error body, whatever DEBUG says; for
    # every method (without csrf_exempt, a POST or BREW got the CSRF 403 instead of this 404).
    re_path(r"^api/", csrf_exempt(api_not_found)),
]

handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
