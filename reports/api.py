"""Reports: the 年度 report (reports.fiscal). Handlers check access (reports.access), validate the
year, and return the report as stored for the current data (reports.snapshots)."""

from ninja import Path, Query, Router

from api.auth import AuthedRequest
from reports import access, fiscal, snapshots
from reports.schemas import FiscalYearReportOut

router = Router(tags=["reports"])


@router.get(
    "/fiscal-years/{year}", response=FiscalYearReportOut,
    summary="The 年度 report: visits, concerns, continuous outreach and meetings, by month and place "
            "(coordinators, supervisors; supervisors and ?public=true get small cells suppressed)",
)
def fiscal_year_report(request: AuthedRequest, year: int = Path(..., ge=2000, le=2100, description="年度, e.g. 2025 for 令和7年度 (2000 … next year)"),
                       public: bool = Query(False, description="Suppress small cells (a report for a wider audience)")):
    municipality_id = access.require_report_reader(request.auth)
    fiscal.require_plausible_fiscal_year(year, ["path", "year"])
    return snapshots.fiscal_year_response(
        municipality_id=municipality_id, year=year, public=access.must_be_public(request.auth, public),
    )
