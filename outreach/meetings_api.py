"""Case meetings (支援会議 / 重層的支援会議) as a list, without reading each case.

Counting 支援会議 used to mean opening every case (each read audited). This list says when each
meeting was held, of which kind, how many took part, whether the confidentiality duty was
acknowledged and whether a support plan was approved at it: never its notes, its members' names or
the case's title, so reading it reads no sensitive detail and is not audited row by row. The
content stays behind GET /cases/{id} (audited)."""

import datetime as dt
from uuid import UUID

from django.db.models import Exists, F, Func, IntegerField, OuterRef
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from api.auth import AuthedRequest
from api.pagination import Paginated
from backend.dates import StartDate, fiscal_year_bounds
from backend.errors import InvalidInput
from outreach import access
from outreach.models import CaseMeeting, SupportPlan

router = Router(tags=["outreach"])


class CaseMeetingListItemOut(Schema):
    id: int
    case_id: UUID
    kind: str = Field(..., description="support (支援会議) | multi_agency (重層的支援会議)")
    kind_label: str
    held_on: dt.date
    members_count: int = Field(..., description="How many members are recorded (not who)")
    confidentiality_acknowledged: bool = Field(..., description="The members' duty of confidentiality (art. 106-6)")
    has_plan_approved: bool = Field(..., description="A support plan was approved at this meeting")

    @staticmethod
    def resolve_kind_label(obj: CaseMeeting) -> str:
        return str(CaseMeeting.Kind(obj.kind).label)


class CaseMeetingFilter(Schema):
    fiscal_year: int | None = Field(None, ge=2000, le=2100, description="Held in this 年度 (April–March)")
    kind: CaseMeeting.Kind | None = None
    held_from: StartDate | None = Field(None, alias="from", description="Held on or after this day")
    held_to: StartDate | None = Field(None, alias="to", description="Held on or before this day")


# A members list that is not a JSON array (never written by the API) counts as none, not as an error.
_MEMBERS_COUNT = Func(
    F("members"),
    template="(CASE WHEN jsonb_typeof(%(expressions)s) = 'array' THEN jsonb_array_length(%(expressions)s) ELSE 0 END)",
    output_field=IntegerField(),
)


@router.get(
    "/case-meetings", response=list[CaseMeetingListItemOut],
    summary="支援会議 and 重層的支援会議 held, newest first: no notes, no members' names (coordinators, supervisors)",
)
@paginate(Paginated)
def list_case_meetings(request: AuthedRequest, filters: Query[CaseMeetingFilter]):
    access.require_case_meeting_lister(request.auth)
    if filters.held_from and filters.held_to and filters.held_to < filters.held_from:
        raise InvalidInput("to must not be before from.", details=[{"loc": ["query", "to"], "msg": "before from"}])
    meetings = access.visible_case_meetings(request.auth)
    if filters.fiscal_year is not None:
        first, last = fiscal_year_bounds(filters.fiscal_year)
        meetings = meetings.filter(held_on__range=(first, last))
    if filters.kind:
        meetings = meetings.filter(kind=filters.kind)
    if filters.held_from:
        meetings = meetings.filter(held_on__gte=filters.held_from)
    if filters.held_to:
        meetings = meetings.filter(held_on__lte=filters.held_to)
    return (
        meetings.annotate(
            members_count=_MEMBERS_COUNT,
            has_plan_approved=Exists(SupportPlan.objects.filter(approved_at=OuterRef("pk"))),
        )
        .only("id", "case_id", "kind", "held_on", "confidentiality_acknowledged")
        .order_by("-held_on", "-id")
    )
