"""The per-corporation report (委託 payment and review)."""

from ninja import Query, Router

from api.auth import AuthedRequest
from api.schemas import MAX_ID
from backend.errors import InvalidInput
from reports import access, snapshots
from reports.corporation_schemas import CorporationReportOut
from reports.fiscal import require_plausible_fiscal_year

router = Router(tags=["reports"])

_ONE_OF = "Give exactly one of campaign and fiscal_year."


@router.get(
    "/corporations", response=CorporationReportOut,
    summary="Per corporation and worker: planned and made visits, completed households, 不在率, leaflets, "
            "stops per worker-day, planned distance (coordinators, supervisors; ?campaign= or ?fiscal_year=)",
)
def corporations_report(
    request: AuthedRequest,
    campaign: int | None = Query(None, ge=1, le=MAX_ID, description="A survey campaign (世帯訪問調査)"),
    fiscal_year: int | None = Query(None, ge=2000, le=2100, description="Every campaign of this 年度 (April–March)"),
):
    municipality_id = access.require_report_reader(request.auth)
    if (campaign is None) == (fiscal_year is None):
        raise InvalidInput(_ONE_OF, details=[
            {"loc": ["query", "campaign"], "msg": _ONE_OF}, {"loc": ["query", "fiscal_year"], "msg": _ONE_OF},
        ])
    if fiscal_year is not None:
        require_plausible_fiscal_year(fiscal_year, ["query", "fiscal_year"])
    return snapshots.corporation_response(municipality_id=municipality_id, campaign_id=campaign, fiscal_year=fiscal_year)
