"""支え愛連絡会 meetings, 見守り, concerns (気づき) and continuous outreach cases (継続的支援)."""

from uuid import UUID

from django.db.models import Count, OuterRef
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from accounts.access import municipality_id_of
from accounts.models import User
from api.auth import AuthedRequest
from api.output import with_output_attrs
from api.pagination import Paginated
from audit.services import record_read
from backend.db import capped_count, per_row
from backend.errors import Forbidden
from neighborhoods.access import visible_neighborhoods
from outreach import access, overdue, services
from outreach.models import CaseContact, Concern, OutreachCase, WatchArrangement, WatchCheckIn
from outreach.schemas import (
    CaseDetailOut,
    CaseIn,
    CaseMeetingIn,
    CaseMeetingOut,
    CaseOut,
    CasePatch,
    CheckInCorrectionIn,
    CheckInIn,
    CheckInOut,
    CloseIn,
    ConcernCategory,
    ConcernDetailAnyOut,
    ConcernDetailFullOut,
    ConcernFullOut,
    ConcernIn,
    ConcernListItemOut,
    ConsentIn,
    ContactCorrectionIn,
    ContactEntryOut,
    ContactIn,
    ContactOut,
    MatchIn,
    MeetingDetailOut,
    MeetingIn,
    MeetingOut,
    SupportPlanIn,
    SupportPlanOut,
    TransitionIn,
    WatchOut,
)
from visits.access import visible_partners

router = Router(tags=["outreach"])


# --- 支え愛連絡会 -----------------------------------------------------------------------------------


def _with_counts(meetings):
    """Meetings with `concern_count` and `watch_count`, each a correlated subquery: a list page
    counts for its own rows only (after the LIMIT), where grouping every meeting of a city with its
    concerns and 見守り cost seven times what the town's did."""
    return meetings.annotate(
        concern_count=per_row(Concern.objects.filter(meeting=OuterRef("pk")), "meeting", Count("pk")),
        watch_count=per_row(WatchArrangement.objects.filter(meeting=OuterRef("pk")), "meeting", Count("pk")),
    )


@router.post("/meetings", response={201: MeetingOut}, summary="Record a 支え愛連絡会 with its concerns and 見守り")
def record_meeting(request: AuthedRequest, payload: MeetingIn):
    access.require_coordinator(request.auth)
    hood = get_object_or_404(visible_neighborhoods(request.auth), pk=payload.neighborhood_id)
    meeting = services.record_meeting(
        user=request.auth, neighborhood=hood, held_on=payload.held_on,
        attendees=[a.model_dump() for a in payload.attendees], notes=payload.notes,
        concerns=[{**c.model_dump(exclude={"pin"}), "pin": c.pin.to_geos() if c.pin else None} for c in payload.concerns],
        watches=[w.model_dump() for w in payload.watches],
    )
    return Status(201, with_output_attrs(meeting, concern_count=len(payload.concerns), watch_count=len(payload.watches)))


@router.get("/meetings", response=list[MeetingOut], summary="支え愛連絡会")
@paginate(Paginated)
def list_meetings(request: AuthedRequest, neighborhood: int | None = None):
    meetings = _with_counts(access.visible_meetings(request.auth))
    if neighborhood:
        meetings = meetings.filter(neighborhood_id=neighborhood)
    return meetings.order_by("-held_on", "-pk")


@router.get("/meetings/{meeting_id}", response=MeetingDetailOut, summary="A meeting with its notes (audited)")
def get_meeting(request: AuthedRequest, meeting_id: int):
    meeting = get_object_or_404(_with_counts(access.visible_meetings(request.auth)), pk=meeting_id)
    record_read(request, meeting, basis=access.concern_basis(request.auth))
    return meeting


@router.get("/watches", response=list[WatchOut], summary="見守り")
@paginate(Paginated)
def list_watches(request: AuthedRequest, overdue: bool | None = None, household: UUID | None = None):
    watches = access.visible_watches(request.auth).filter(ended_on__isnull=True).with_overdue()
    if overdue is not None:
        watches = watches.filter(overdue_today=overdue)
    if household:
        watches = watches.filter(household_id=household)
    return watches.order_by("next_due", "pk")


def _watch(request: AuthedRequest, watch_id: int, *, write: bool = False) -> WatchArrangement:
    watch = get_object_or_404(access.visible_watches(request.auth).with_overdue(), pk=watch_id)
    if write and not access.may_check_in(request.auth, watch):
        raise Forbidden("Coordinators and 民生委員 record 見守り check-ins.")
    return watch


@router.post("/watches/{watch_id}/check-ins", response={201: WatchOut}, summary="A 見守り check-in")
def watch_check_in(request: AuthedRequest, watch_id: int, payload: CheckInIn):
    watch = _watch(request, watch_id, write=True)
    services.check_in(watch=watch, checked_on=payload.checked_on, ok=payload.ok, note=payload.note, by=request.auth)
    return Status(201, _watch(request, watch_id))


@router.get(
    "/watches/{watch_id}/check-ins", response=list[CheckInOut],
    summary="A 見守り's check-ins with their corrections (newest first)",
)
@paginate(Paginated)
def list_check_ins(request: AuthedRequest, watch_id: int):
    watch = _watch(request, watch_id)
    return WatchCheckIn.objects.filter(arrangement=watch).select_related("superseded_by").order_by("-checked_on", "-pk")


@router.post(
    "/watches/{watch_id}/check-ins/{check_in_id}/corrections", response={201: CheckInOut},
    summary="Correct or retract a 見守り check-in (a new entry that supersedes it, with the reason)",
)
def correct_check_in(request: AuthedRequest, watch_id: int, check_in_id: int, payload: CheckInCorrectionIn):
    watch = _watch(request, watch_id, write=True)
    entry = services.correct_check_in(
        watch=watch, check_in_id=check_in_id, by=request.auth, reason=payload.reason, retract=payload.retract,
        checked_on=payload.checked_on, ok=payload.ok, note=payload.note,
    )
    return Status(201, entry)


# --- concerns ---------------------------------------------------------------------------------------


class ConcernFilter(Schema):
    status: Concern.Status | None = None
    neighborhood: int | None = None
    mine: bool = False
    category: ConcernCategory | None = None
    unmatched: bool = False


@router.post("/concerns", response={201: ConcernFullOut}, summary="Raise a concern (気づき)")
def raise_concern(request: AuthedRequest, payload: ConcernIn):
    access.require_concern_raiser(request.auth)
    concern = services.raise_concern(
        user=request.auth, concern_id=payload.id, pin=payload.pin.to_geos() if payload.pin else None,
        **payload.model_dump(exclude={"id", "pin"}),
    )
    return Status(201, concern)


@router.get(
    "/concerns", response=list[ConcernListItemOut],
    summary="Concerns I may see (no text in lists; only the status of others' concerns for 民生委員)",
)
@paginate(Paginated)
def list_concerns(request: AuthedRequest, filters: Query[ConcernFilter]):
    concerns = access.with_concern_views(request.auth, access.visible_concerns(request.auth))
    if filters.status:
        concerns = concerns.filter(status=filters.status)
    if filters.neighborhood:
        concerns = concerns.filter(neighborhood_id=filters.neighborhood)
    if filters.mine:
        concerns = concerns.filter(reported_by=request.auth)
    if filters.category:
        concerns = concerns.filter(categories__contains=[str(filters.category)])
    if filters.unmatched:
        concerns = concerns.filter(household__isnull=True)
    return concerns.order_by("-created_at", "pk")


def _concern_detail(request: AuthedRequest, concern: Concern) -> Concern:
    """The field set is the access module's (concern_view); a read of the content is audited."""
    view = access.concern_view(request.auth, concern)
    with_output_attrs(concern, view=view)
    if access.may_read_concern_text(request.auth, concern):
        record_read(request, concern, basis=access.concern_basis(request.auth))
    return concern


@router.get(
    "/concerns/{concern_id}", response=ConcernDetailAnyOut,
    summary="A concern with its history (audited); only its status for a 民生委員 who did not raise it",
)
def get_concern(request: AuthedRequest, concern_id: UUID):
    return _concern_detail(request, get_object_or_404(access.visible_concerns(request.auth), pk=concern_id))


@router.post("/concerns/{concern_id}/transitions", response=ConcernDetailFullOut, summary="Triage / watch / refer / close")
def transition_concern(request: AuthedRequest, concern_id: UUID, payload: TransitionIn):
    access.require_coordinator(request.auth)
    concern = get_object_or_404(access.visible_concerns(request.auth), pk=concern_id)
    concern = services.transition_concern(
        concern=concern, to=payload.to, reason=payload.reason, by=request.auth, referred_to=payload.referred_to or ""
    )
    return _concern_detail(request, concern)


@router.post("/concerns/{concern_id}/match", response=ConcernDetailFullOut, summary="Match a pinned concern to its household")
def match_concern(request: AuthedRequest, concern_id: UUID, payload: MatchIn):
    access.require_coordinator(request.auth)
    concern = get_object_or_404(access.visible_concerns(request.auth), pk=concern_id)
    return _concern_detail(request, services.match_concern(concern=concern, household_id=payload.household_id, by=request.auth))


# --- cases ------------------------------------------------------------------------------------------


@router.post("/cases", response={201: CaseOut}, summary="Open a continuous outreach case (coordinators)")
def open_case(request: AuthedRequest, payload: CaseIn):
    access.require_coordinator(request.auth)
    partner = get_object_or_404(visible_partners(request.auth), pk=payload.lead_partner_id) if payload.lead_partner_id else None
    worker = (
        get_object_or_404(User.objects.filter(municipality_id=municipality_id_of(request.auth)), pk=payload.lead_worker_id)
        if payload.lead_worker_id else None
    )
    concern = (
        get_object_or_404(access.visible_concerns(request.auth), pk=payload.concern_id) if payload.concern_id else None
    )
    case = services.open_case(
        by=request.auth, household_id=payload.household_id, resident_id=payload.resident_id, title=payload.title,
        cadence_days=payload.cadence_days, lead_partner=partner, lead_worker=worker, notes=payload.notes, concern=concern,
    )
    return Status(201, case)


class CaseFilter(Schema):
    status: OutreachCase.Status | None = None
    overdue: bool | None = None
    mine: bool = False


@router.get("/cases", response=list[CaseOut], summary="Cases I may see")
@paginate(Paginated)
def list_cases(request: AuthedRequest, filters: Query[CaseFilter]):
    cases = access.visible_cases(request.auth).with_overdue()
    if filters.status:
        cases = cases.filter(status=filters.status)
    if filters.overdue is not None:
        cases = cases.filter(overdue_today=filters.overdue)
    if filters.mine:
        cases = cases.filter(lead_worker=request.auth)
    return cases.order_by("next_contact_due", "pk")


def _case(request: AuthedRequest, case_id: UUID, *, write: bool = False) -> OutreachCase:
    case = get_object_or_404(access.visible_cases(request.auth).with_overdue(), pk=case_id)
    if write and not access.may_write_case(request.auth, case):
        raise Forbidden("Only coordinators and the case's lead corporation change it.")
    return case


def _case_detail(request: AuthedRequest, case: OutreachCase) -> OutreachCase:
    record_read(request, case, basis=access.concern_basis(request.auth))
    return case


@router.get("/cases/{case_id}", response=CaseDetailOut, summary="A case with its contacts, meetings and plans (audited)")
def get_case(request: AuthedRequest, case_id: UUID):
    return _case_detail(request, _case(request, case_id))


@router.patch("/cases/{case_id}", response=CaseDetailOut, summary="Edit a case (stage, cadence …)")
def update_case(request: AuthedRequest, case_id: UUID, payload: CasePatch):
    case = _case(request, case_id, write=True)
    changes = payload.model_dump(exclude_unset=True, exclude={"version"})
    return _case_detail(request, services.update_case(case=case, changes=changes, base_version=payload.version))


@router.post("/cases/{case_id}/contacts", response={201: ContactOut}, summary="Log a contact (visit, call, letter, no answer)")
def log_contact(request: AuthedRequest, case_id: UUID, payload: ContactIn):
    case = _case(request, case_id, write=True)
    contact = services.log_contact(
        case=case, by=request.auth, kind=payload.kind, contacted_on=payload.contacted_on, reached=payload.reached,
        note=payload.note, contact_id=payload.id,
    )
    return Status(201, contact)


@router.get(
    "/cases/{case_id}/contacts", response=list[ContactEntryOut],
    summary="A case's contact log with its corrections, newest first (audited)",
)
@paginate(Paginated)
def list_contacts(request: AuthedRequest, case_id: UUID):
    case = _case_detail(request, _case(request, case_id))
    return CaseContact.objects.filter(case=case).select_related("superseded_by").order_by("-contacted_on", "-created_at", "pk")


@router.post(
    "/cases/{case_id}/contacts/{contact_id}/corrections", response={201: ContactEntryOut},
    summary="Correct or retract a contact (a new entry that supersedes it, with the reason)",
)
def correct_contact(request: AuthedRequest, case_id: UUID, contact_id: UUID, payload: ContactCorrectionIn):
    case = _case(request, case_id, write=True)
    contact = services.correct_contact(
        case=case, contact_id=contact_id, by=request.auth, reason=payload.reason, retract=payload.retract,
        kind=payload.kind, contacted_on=payload.contacted_on, reached=payload.reached, note=payload.note,
        new_id=payload.id,
    )
    return Status(201, contact)


@router.post("/cases/{case_id}/consent", response=CaseOut, summary="Record consent to share with the 重層的支援会議")
def record_consent(request: AuthedRequest, case_id: UUID, payload: ConsentIn):
    access.require_coordinator(request.auth)
    return services.record_consent(case=_case(request, case_id), consent_date=payload.consent_date, scope=payload.scope)


@router.post("/cases/{case_id}/meetings", response={201: CaseMeetingOut}, summary="A 支援会議 or 重層的支援会議")
def hold_meeting(request: AuthedRequest, case_id: UUID, payload: CaseMeetingIn):
    access.require_coordinator(request.auth)
    meeting = services.hold_case_meeting(case=_case(request, case_id), by=request.auth, **payload.model_dump())
    return Status(201, meeting)


@router.post("/cases/{case_id}/plans", response={201: SupportPlanOut}, summary="A support plan with each agency's role")
def add_plan(request: AuthedRequest, case_id: UUID, payload: SupportPlanIn):
    access.require_coordinator(request.auth)
    return Status(201, services.add_plan(case=_case(request, case_id), by=request.auth, **payload.model_dump()))


@router.post("/cases/{case_id}/close", response=CaseOut, summary="Close a case with a reason and evaluation")
def close_case(request: AuthedRequest, case_id: UUID, payload: CloseIn):
    access.require_coordinator(request.auth)
    return services.close_case(case=_case(request, case_id), by=request.auth, **payload.model_dump())


# --- overdue ------------------------------------------------------------------------------------------


class OverdueCasesAndWatchesOut(Schema):
    """Two lists in one object, not a page: what is overdue today (computed when read), cases and
    見守り apart, the longest overdue first, at most `limit` of each, with how many there are (capped
    as every list's count); the paginated, map-ready list of the same is /maps/overdue."""

    cases: list[CaseOut]
    watches: list[WatchOut]
    cases_count: int
    watches_count: int
    count_capped: bool = Field(..., description="True when a count stopped at the cap (10,000)")


class OverdueListsQuery(Schema):
    limit: int = Field(100, ge=1, le=500, description="At most this many cases and this many 見守り")


def _overdue_answer(scope: overdue.OverdueScope, limit: int) -> dict:
    today = timezone.localdate()
    cases, watches = overdue.cases(scope, today), overdue.watches(scope, today)
    cases_count, cases_more = capped_count(cases)
    watches_count, watches_more = capped_count(watches)
    return {"cases": list(cases[:limit]), "watches": list(watches[:limit]), "cases_count": cases_count,
            "watches_count": watches_count, "count_capped": cases_more or watches_more}


@router.get(
    "/me/overdue", response=OverdueCasesAndWatchesOut,
    summary="My overdue cases (workers) and 見守り (民生委員): {cases, watches}, the longest overdue first",
)
def my_overdue(request: AuthedRequest, q: Query[OverdueListsQuery]):
    return _overdue_answer(overdue.of_user(request.auth), q.limit)


@router.get(
    "/overdue", response=OverdueCasesAndWatchesOut,
    summary="Overdue cases and 見守り (coordinators, supervisors): {cases, watches}, the longest overdue first",
)
def all_overdue(request: AuthedRequest, q: Query[OverdueListsQuery]):
    if request.auth.role not in access.READERS:
        raise Forbidden("Coordinators and supervisors see the municipality's overdue list.")
    return _overdue_answer(overdue.of_municipality(municipality_id_of(request.auth)), q.limit)
