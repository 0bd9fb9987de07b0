"""The supervisors' reports page (/reports/), next to the map page and signed in the same way."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy


@login_required(login_url=reverse_lazy("maps:login"))
def reports_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("reports")
