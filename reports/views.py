"""The supervisors' reports page (/reports/), next to the map page and signed in the same way: the
年度's numbers and charts, drawn in the browser from GET /api/v1/reports/fiscal-years/{year} with the
session (api.auth.MunicipalSessionAuth), and the export buttons (POST /api/v1/exports, CSRF)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.models import User
from backend.dates import fiscal_year_of
from backend.errors import Forbidden
from reports.access import must_be_public, require_report_reader
from reports.fiscal import plausible_fiscal_years, wareki_fiscal_year


@login_required(login_url=reverse_lazy("maps:login"))
@ensure_csrf_cookie
def reports_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)  # login_required: not anonymous
    try:
        require_report_reader(user)
    except Forbidden:
        return _refusal(request, status=403, title="このページを表示する権限がありません",
                        message="年度報告は、福祉課のコーディネーターと監督者が閲覧できます。")
    first, last = plausible_fiscal_years(timezone.localdate())
    year = _year(request.GET.get("year"), default=fiscal_year_of(timezone.localdate()), first=first, last=last)
    if year is None:
        return _refusal(request, status=400, title="年度の指定が正しくありません",
                        message=f"年度は西暦の年 ({first}〜{last}) で指定してください。例: ?year={last - 1}")
    config = {
        "year": year,
        "api": f"/api/v1/reports/fiscal-years/{year}",
        "exports": "/api/v1/exports",
        # A supervisor only ever reads (and exports) the public report; a coordinator may choose it.
        "public_only": must_be_public(user, False),
        "chart": static("reports/vendor/chart.umd.min.js"),
        "font_family": "Noto Sans JP",
    }
    years = [(y, wareki_fiscal_year(y)) for y in range(last, first - 1, -1)]
    return render(request, "reports/page.html", {
        "config": config, "year": year, "years": years,
        "logout": reverse("maps:logout"), "map_url": reverse("maps:page"),
    })


def _year(raw: str | None, *, default: int, first: int, last: int) -> int | None:
    """The 年度 asked for (?year=2025), the default without one, or None when it is no year in
    [first, last]."""
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) == 4):
        return None
    year = int(raw)
    return year if first <= year <= last else None


def _refusal(request: HttpRequest, *, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "reports/refusal.html", {
        "title": title, "message": message, "status": status,
        "logout": reverse("maps:logout"), "map_url": reverse("maps:page"),
    }, status=status)
