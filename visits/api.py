"""Campaigns (世帯訪問調査), allocations, hearings, planning jobs and schedules."""

import datetime as dt
from uuid import UUID

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, OuterRef, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Status
from ninja.pagination import paginate

from accounts.access import municipality_id_of, municipality_of
from accounts.models import User
from accounts.roles import Role
from api.auth import AuthedRequest
from api.output import with_output_attrs
from api.pagination import MAX_OFFSET, Paginated
from audit.services import record_change, record_read
from backend.errors import Forbidden, InvalidInput
from neighborhoods.access import visible_neighborhoods
from visits import access, services
from visits.models import CampaignNeighborhood, CampaignStatus, Hearing, PlanningJob, ScheduledVisit
from visits.schemas import (
    AllocationOut,
    AllocationsIn,
    AvailabilityIn,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CampaignSummaryOut,
    DaysOffIn,
    HearingDetailOut,
    HearingIn,
    HearingOut,
    JobOut,
    OutcomeIn,
    PartnerOut,
    ReassignNeighborhoodIn,
    ReassignVisitIn,
    ScheduledVisitOut,
    SchedulePlanIn,
    TargetsIn,
    WorkerOut,
)

router = Router(tags=["visits"])
MAX_RANGE_DAYS = 92


# --- partners and workers -----------------------------------------------------------------------


def _partners(request: AuthedRequest):
    return access.visible_partners(request.auth).annotate(
        worker_count=Count("workers", filter=Q(workers__is_active=True, workers__role=Role.OUTREACH_WORKER))
    )


@router.get("/partners", response=list[PartnerOut], summary="アウトリーチ受託法人")
@paginate(Paginated)
def list_partners(request: AuthedRequest):
    return _partners(request).order_by("code")


@router.get("/partners/{partner_id}", response=PartnerOut, summary="One partner corporation")
def get_partner(request: AuthedRequest, partner_id: int):
    return get_object_or_404(_partners(request), pk=partner_id)


def _worker_out(worker: User) -> dict:
    availability = getattr(worker, "availability", None)
    return {
        "id": worker.pk, "username": worker.username, "display_name": worker.display_name,
        "partner_organization_id": worker.partner_organization_id,
        "weekdays": availability.weekdays if availability and availability.weekdays else [1, 2, 3, 4, 5],
        "start_time": availability.start_time if availability else None,
        "end_time": availability.end_time if availability else None,
        "days_off": sorted(d.date for d in worker.days_off.all()),
    }


def _workers(request: AuthedRequest):
    return access.visible_workers(request.auth).select_related("availability").prefetch_related("days_off")


@router.get("/partners/{partner_id}/workers", response=list[WorkerOut], summary="A corporation's workers and availability")
@paginate(Paginated)
def list_workers(request: AuthedRequest, partner_id: int):
    partner = get_object_or_404(access.visible_partners(request.auth), pk=partner_id)
    return [_worker_out(w) for w in _workers(request).filter(partner_organization=partner).order_by("username")]


@router.put("/workers/{worker_id}/availability", response=WorkerOut, summary="Set a worker's weekdays and hours (coordinators)")
def set_availability(request: AuthedRequest, worker_id: int, payload: AvailabilityIn):
    access.require_coordinator(request.auth, "set workers' weekdays and hours")
    worker = get_object_or_404(_workers(request), pk=worker_id)
    services.set_availability(worker=worker, **payload.model_dump())
    return _worker_out(get_object_or_404(_workers(request), pk=worker_id))


@router.post("/workers/{worker_id}/days-off", response=WorkerOut, summary="Add days off (coordinators, or the worker)")
def add_days_off(request: AuthedRequest, worker_id: int, payload: DaysOffIn):
    worker = get_object_or_404(_workers(request), pk=worker_id)
    if request.auth.role != Role.COORDINATOR and request.auth.pk != worker.pk:
        raise Forbidden("Only coordinators and the worker themself record days off.")
    services.add_days_off(worker=worker, dates=payload.dates, reason=payload.reason)
    return _worker_out(get_object_or_404(_workers(request), pk=worker_id))


# --- campaigns -----------------------------------------------------------------------------------


def _campaigns(request: AuthedRequest):
    """Campaigns with their targets' 自治会 ids in visiting order, as one array column: a city's
    campaign targets 3,000 自治会, and loading them as rows cost four times what the town's did."""
    targets = CampaignNeighborhood.objects.filter(campaign=OuterRef("pk")).order_by("position").values("neighborhood_id")
    return access.visible_campaigns(request.auth).annotate(target_ids=ArraySubquery(targets))


_FISCAL_YEAR = Query(None, ge=2000, le=2100, description="年度 (April–March)")
_STATUS = Query(None, description="draft (準備中) | running (実施中) | closed (終了)")


@router.get("/campaigns", response=list[CampaignSummaryOut], summary="Survey campaigns (世帯訪問調査)")
@paginate(Paginated)
def list_campaigns(request: AuthedRequest, fiscal_year: int | None = _FISCAL_YEAR, status: CampaignStatus | None = _STATUS):
    # How many 自治会 each targets, counted by the targets' unique index; the ids are on the campaign.
    campaigns = access.visible_campaigns(request.auth).annotate(target_count=Count("targets"))
    if fiscal_year:
        campaigns = campaigns.filter(fiscal_year=fiscal_year)
    if status:
        campaigns = campaigns.filter(status=status)
    return campaigns


@router.post("/campaigns", response={201: CampaignOut}, summary="Create a campaign (coordinators)")
def create_campaign(request: AuthedRequest, payload: CampaignIn):
    access.require_coordinator(request.auth, "create campaigns")
    campaign = services.create_campaign(municipality=municipality_of(request.auth), by=request.auth, **payload.model_dump())
    return Status(201, get_object_or_404(_campaigns(request), pk=campaign.pk))


@router.get("/campaigns/{campaign_id}", response=CampaignOut, summary="One campaign")
def get_campaign(request: AuthedRequest, campaign_id: int):
    return get_object_or_404(_campaigns(request), pk=campaign_id)


@router.patch("/campaigns/{campaign_id}", response=CampaignOut, summary="Edit a campaign's name, dates and policy (coordinators)")
def update_campaign(request: AuthedRequest, campaign_id: int, payload: CampaignPatch):
    access.require_coordinator(request.auth, "edit campaigns")
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    services.update_campaign(campaign=campaign, changes=payload.model_dump(exclude_unset=True))
    return get_object_or_404(_campaigns(request), pk=campaign_id)


@router.post("/campaigns/{campaign_id}/activate", response=CampaignOut,
             summary="Start a campaign: from now on it reaches workers (coordinators; audited)")
def activate_campaign(request: AuthedRequest, campaign_id: int):
    access.require_coordinator(request.auth, "start campaigns")
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    services.activate_campaign(campaign=campaign)
    record_change(request, campaign, basis=f"role:{request.auth.role}", detail={"status": ["draft", "running"]})
    return get_object_or_404(_campaigns(request), pk=campaign_id)


@router.post("/campaigns/{campaign_id}/close", response=CampaignOut,
             summary="Close a campaign: its planned visits are cancelled and it leaves the field (coordinators; audited)")
def close_campaign(request: AuthedRequest, campaign_id: int):
    access.require_coordinator(request.auth, "close campaigns")
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    before = campaign.status
    _, cancelled = services.close_campaign(campaign=campaign)
    record_change(request, campaign, basis=f"role:{request.auth.role}",
                  detail={"status": [before, "closed"], "cancelled_visits": cancelled})
    return get_object_or_404(_campaigns(request), pk=campaign_id)


@router.put("/campaigns/{campaign_id}/targets", response=CampaignOut, summary="The campaign's 自治会, in order (coordinators)")
def set_targets(request: AuthedRequest, campaign_id: int, payload: TargetsIn):
    access.require_coordinator(request.auth, "choose a campaign's 自治会")
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    services.set_targets(campaign=campaign, neighborhood_ids=payload.neighborhood_ids)
    return get_object_or_404(_campaigns(request), pk=campaign_id)


@router.get("/campaigns/{campaign_id}/allocations", response=list[AllocationOut], summary="自治会 → corporation")
@paginate(Paginated)
def list_allocations(request: AuthedRequest, campaign_id: int):
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    return campaign.allocations.order_by("neighborhood_id")


@router.put("/campaigns/{campaign_id}/allocations", response=list[AllocationOut], summary="Allocate 自治会 to corporations (coordinators)")
def set_allocations(request: AuthedRequest, campaign_id: int, payload: AllocationsIn):
    access.require_coordinator(request.auth, "allocate 自治会 to corporations")
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    services.set_allocations(
        campaign=campaign, allocations=[(a.neighborhood_id, a.partner_organization_id) for a in payload.allocations]
    )
    return list(campaign.allocations.order_by("neighborhood_id"))


# --- hearings ------------------------------------------------------------------------------------


@router.post("/campaigns/{campaign_id}/hearings", response={201: HearingOut}, summary="Record a ヒアリング (coordinators)")
def record_hearing(request: AuthedRequest, campaign_id: int, payload: HearingIn):
    access.require_coordinator(request.auth, "record ヒアリング")
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    hood = get_object_or_404(visible_neighborhoods(request.auth), pk=payload.neighborhood_id)
    hearing = services.record_hearing(
        campaign=campaign, neighborhood=hood, held_on=payload.held_on,
        attendees=[a.model_dump() for a in payload.attendees], notes=payload.notes,
        priorities=[(p.household_id, p.reason) for p in payload.priorities], by=request.auth,
    )
    return Status(201, with_output_attrs(hearing, priority_count=len(payload.priorities)))


@router.get("/campaigns/{campaign_id}/hearings", response=list[HearingOut], summary="Hearings of a campaign")
@paginate(Paginated)
def list_hearings(request: AuthedRequest, campaign_id: int):
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    return (
        access.visible_hearings(request.auth).filter(campaign=campaign)
        .annotate(priority_count=Count("priorities")).order_by("held_on", "pk")
    )


@router.get("/hearings/{hearing_id}", response=HearingDetailOut, summary="A hearing with its notes and priority households (audited)")
def get_hearing(request: AuthedRequest, hearing_id: int):
    hearing: Hearing = get_object_or_404(
        access.visible_hearings(request.auth).annotate(priority_count=Count("priorities")), pk=hearing_id
    )
    priorities = [
        {"household_id": str(p.household_id), "reason": p.priority_reason} for p in hearing.priorities.order_by("pk")
    ]
    record_read(request, hearing, basis=f"role:{request.auth.role}")
    return {**{f: getattr(hearing, f) for f in ("id", "neighborhood_id", "held_on", "attendees", "priority_count", "notes")},
            "priorities": priorities}


# --- planning ------------------------------------------------------------------------------------


def _request_plan(request: AuthedRequest, campaign_id: int, kind: str, payload: SchedulePlanIn | None):
    access.require_coordinator(request.auth, "plan campaigns")
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    job = services.request_planning(
        campaign=campaign, kind=kind, by=request.auth, from_date=payload.from_date if payload else None
    )
    job.refresh_from_db()
    return Status(202, job)


@router.post("/campaigns/{campaign_id}/plan", response={202: JobOut}, summary="Generate the schedule (a background job)")
def generate_schedule(request: AuthedRequest, campaign_id: int, payload: SchedulePlanIn | None = None):
    return _request_plan(request, campaign_id, PlanningJob.Kind.GENERATE, payload)


@router.post("/campaigns/{campaign_id}/replan", response={202: JobOut},
             summary="Re-plan every visit neither done nor handed out, from a date (default: tomorrow or the start)")
def replan_schedule(request: AuthedRequest, campaign_id: int, payload: SchedulePlanIn | None = None):
    return _request_plan(request, campaign_id, PlanningJob.Kind.REPLAN, payload)


@router.get("/planning-jobs/{job_id}", response=JobOut, summary="A planning job's status and progress")
def get_job(request: AuthedRequest, job_id: UUID):
    return get_object_or_404(access.visible_planning_jobs(request.auth), pk=job_id)


@router.get("/campaigns/{campaign_id}/progress", summary="Progress per corporation, and per 自治会 a page at a time")
def campaign_progress(
    request: AuthedRequest, campaign_id: int,
    limit: int = Query(100, ge=1, le=1000, description="自治会 per page, in target order"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
):
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    return services.campaign_progress(campaign, limit=limit, offset=offset)


# --- schedules ----------------------------------------------------------------------------------


SCHEDULE_DAYS = 14


def _schedule(qs, date_from: dt.date | None, date_to: dt.date | None):
    """Visits from date_from (default today, Asia/Tokyo) to date_to (default 14 days later), at
    most MAX_RANGE_DAYS, in route order."""
    date_from = date_from or timezone.localdate()
    date_to = date_to or date_from + dt.timedelta(days=SCHEDULE_DAYS)
    if date_to < date_from:
        raise InvalidInput("date_to must not be before date_from.", details=[{"loc": ["query", "date_to"]}])
    if (date_to - date_from).days > MAX_RANGE_DAYS:
        raise InvalidInput(f"A schedule covers at most {MAX_RANGE_DAYS} days.", details=[{"loc": ["query", "date_to"]}])
    return (
        qs.filter(date__gte=date_from, date__lte=date_to)
        .exclude(status=ScheduledVisit.Status.CANCELLED)
        .select_related("household")
        .order_by("date", "worker_id", "route_order")
    )


_DATE_FROM = Query(None, description="First day (default: today, Asia/Tokyo)")
_DATE_TO = Query(None, description=f"Last day (default: {SCHEDULE_DAYS} days after date_from; at most {MAX_RANGE_DAYS} days)")


@router.get("/me/schedule", response=list[ScheduledVisitOut], summary="My visits (workers): today and the next 14 days unless asked")
@paginate(Paginated)
def my_schedule(request: AuthedRequest, date_from: dt.date | None = _DATE_FROM, date_to: dt.date | None = _DATE_TO):
    return _schedule(access.visible_scheduled_visits(request.auth).filter(worker=request.auth), date_from, date_to)


@router.get("/workers/{worker_id}/schedule", response=list[ScheduledVisitOut], summary="A worker's visits (the worker, coordinators, supervisors)")
@paginate(Paginated)
def worker_schedule(request: AuthedRequest, worker_id: int, date_from: dt.date | None = _DATE_FROM,
                    date_to: dt.date | None = _DATE_TO):
    worker = get_object_or_404(access.visible_workers(request.auth), pk=worker_id)
    if request.auth.role == Role.OUTREACH_WORKER and worker.pk != request.auth.pk:
        raise Forbidden("Workers see their own schedule; the corporation's schedule is at /partners/{id}/schedule.")
    return _schedule(access.visible_scheduled_visits(request.auth).filter(worker=worker), date_from, date_to)


@router.get("/partners/{partner_id}/schedule", response=list[ScheduledVisitOut], summary="A corporation's visits (its staff, coordinators)")
@paginate(Paginated)
def partner_schedule(request: AuthedRequest, partner_id: int, date_from: dt.date | None = _DATE_FROM,
                     date_to: dt.date | None = _DATE_TO):
    partner = get_object_or_404(access.visible_partners(request.auth), pk=partner_id)
    if not access.may_read_partner_schedule(request.auth, partner):
        raise Forbidden("Only the corporation's staff, coordinators and supervisors see its schedule.")
    return _schedule(access.visible_scheduled_visits(request.auth).filter(partner_organization=partner), date_from, date_to)


@router.post("/scheduled-visits/{visit_id}/reassign", response=ScheduledVisitOut, summary="Give a visit to another worker (coordinators)")
def reassign_visit(request: AuthedRequest, visit_id: UUID, payload: ReassignVisitIn):
    access.require_coordinator(request.auth, "reassign visits")
    visit = get_object_or_404(access.visible_scheduled_visits(request.auth), pk=visit_id)
    worker = get_object_or_404(User.objects.filter(municipality_id=municipality_id_of(request.auth)), pk=payload.worker_id)
    services.reassign_visit(visit=visit, worker=worker)
    return get_object_or_404(access.visible_scheduled_visits(request.auth).select_related("household"), pk=visit_id)


@router.post("/scheduled-visits/{visit_id}/outcome", response=ScheduledVisitOut,
             summary="Record what happened at the door, or correct it with a reason (the visit's worker, coordinators)")
def record_outcome(request: AuthedRequest, visit_id: UUID, payload: OutcomeIn):
    visit = get_object_or_404(access.visible_scheduled_visits(request.auth), pk=visit_id)
    if visit.worker_id != request.auth.pk and request.auth.role != Role.COORDINATOR:
        raise Forbidden("Only the visit's worker or a coordinator records its outcome.")
    services.record_outcome(
        visit=visit, outcome=payload.outcome, by=request.auth, correction_reason=payload.correction_reason or None
    )
    return get_object_or_404(access.visible_scheduled_visits(request.auth).select_related("household"), pk=visit_id)


@router.post(
    "/campaigns/{campaign_id}/neighborhoods/{neighborhood_id}/reassign",
    summary="Hand a 自治会 to another corporation or worker (coordinators)",
)
def reassign_neighborhood(request: AuthedRequest, campaign_id: int, neighborhood_id: int, payload: ReassignNeighborhoodIn):
    access.require_coordinator(request.auth, "hand 自治会 to other corporations or workers")
    campaign = get_object_or_404(access.visible_campaigns(request.auth), pk=campaign_id)
    hood = get_object_or_404(visible_neighborhoods(request.auth), pk=neighborhood_id)
    partner = get_object_or_404(access.visible_partners(request.auth), pk=payload.partner_organization_id)
    worker = (
        get_object_or_404(User.objects.filter(municipality_id=municipality_id_of(request.auth)), pk=payload.worker_id)
        if payload.worker_id else None
    )
    return services.reassign_neighborhood(campaign=campaign, neighborhood=hood, partner=partner, worker=worker)


