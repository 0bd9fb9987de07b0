"""Writes about campaigns and schedules (世帯訪問調査). Each function is a transaction; planning runs
as a django-q2 job whose result is written all at once (nothing half-planned)."""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from backend.dates import campaign_date_problems
from backend.errors import Conflict, InvalidInput, NotFound
from backend.validation import full_clean_or_422
from neighborhoods.models import Household, HouseholdStatus, Municipality, Neighborhood
from visits import planning
from visits.calendar import working_days
from visits.models import (
    Allocation,
    Campaign,
    CampaignHousehold,
    CampaignNeighborhood,
    Hearing,
    OutcomeCorrection,
    PartnerOrganization,
    PlanningJob,
    ScheduledVisit,
    VisitOutcome,
    WorkerAvailability,
    WorkerDayOff,
)

logger = logging.getLogger("tsunagu.visits")

# Households already known to be empty are not visited.
SKIPPED_STATUSES = (HouseholdStatus.VACANT, HouseholdStatus.MOVED)
CAMPAIGN_FIELDS = ("fiscal_year", "name", "start_date", "end_date", "visits_per_worker_day", "max_attempts", "time_bands")


# --- campaigns -------------------------------------------------------------------------------


@transaction.atomic
def create_campaign(*, municipality: Municipality, by: User | None, **fields) -> Campaign:
    campaign = Campaign(municipality=municipality, created_by=by, **{k: v for k, v in fields.items() if k in CAMPAIGN_FIELDS})
    full_clean_or_422(campaign)
    if Campaign.objects.filter(municipality=municipality, fiscal_year=campaign.fiscal_year, name=campaign.name).exists():
        raise Conflict("A campaign with this name exists for the fiscal year.", code="duplicate_campaign")
    campaign.save()
    return campaign


@transaction.atomic
def update_campaign(*, campaign: Campaign, changes: dict) -> Campaign:
    """Edit a campaign's name, dates and policy. Starting and closing it are their own steps
    (`activate_campaign`, `close_campaign`). Planned visits that new dates leave outside the
    campaign are released (the household waits for the next re-plan); a handed-out (issued) visit
    outside them is refused (409)."""
    unknown = set(changes) - set(CAMPAIGN_FIELDS)
    if unknown:  # the status among them: starting and closing are their own steps
        raise InvalidInput(f"These campaign fields cannot be edited: {', '.join(sorted(unknown))}.",
                           details=[{"loc": ["body", name]} for name in sorted(unknown)])
    locked = _lock_campaign(campaign)
    if locked.status == Campaign.Status.CLOSED:
        raise Conflict("The campaign is closed.", code="campaign_closed")
    for name, value in changes.items():
        setattr(locked, name, value)
    problems = campaign_date_problems(locked.fiscal_year, locked.start_date, locked.end_date)
    if problems:
        details = [{"loc": ["body", field], "msg": msg} for field, msg in problems]
        raise InvalidInput("; ".join(f"{field}: {msg}" for field, msg in problems), details=details)
    full_clean_or_422(locked)
    outside = ScheduledVisit.objects.filter(campaign=locked).filter(
        Q(date__lt=locked.start_date) | Q(date__gt=locked.end_date)
    )
    issued = outside.filter(status=ScheduledVisit.Status.ISSUED).count()
    if issued:
        raise Conflict(
            f"{issued} visits already handed to workers' devices lie outside the new dates; "
            "record or reassign them first.", code="visits_outside_dates", details={"issued": issued},
        )
    released = list(outside.filter(status=ScheduledVisit.Status.PLANNED).values_list("household_id", flat=True))
    if released:
        outside.filter(status=ScheduledVisit.Status.PLANNED).update(
            status=ScheduledVisit.Status.CANCELLED, version=F("version") + 1, updated_at=timezone.now()
        )
        CampaignHousehold.objects.filter(campaign=locked, household_id__in=released, state="scheduled").update(
            state=CampaignHousehold.State.PENDING
        )
    locked.save()
    return locked


@transaction.atomic
def activate_campaign(*, campaign: Campaign) -> Campaign:
    """準備中 → 実施中: from now on the campaign reaches workers (schedules, the field sync, the
    households of its 自治会). A 自治会 is in at most one running campaign."""
    locked = _lock_campaign(campaign)
    if locked.status != Campaign.Status.DRAFT:
        raise Conflict(f"Only a campaign in preparation (準備中) can be started; this one is "
                       f"{locked.get_status_display()}.", code="invalid_transition")
    if locked.end_date < timezone.localdate():
        raise Conflict("The campaign's dates are over; it cannot be started.", code="campaign_ended")
    _check_no_running_overlap(locked, locked.targets.values_list("neighborhood_id", flat=True))
    locked.status = Campaign.Status.RUNNING
    locked.save(update_fields=["status", "updated_at"])
    return locked


@transaction.atomic
def close_campaign(*, campaign: Campaign) -> tuple[Campaign, int]:
    """→ 終了: a queued or running planning job is cancelled and the visits still planned are
    cancelled; done, absent and handed-out visits stay as they are (a handed-out visit made
    offline still arrives). Nothing of a closed campaign reaches workers. Returns (campaign,
    cancelled)."""
    locked = _lock_campaign(campaign)
    if locked.status == Campaign.Status.CLOSED:
        raise Conflict("The campaign is already closed (終了).", code="campaign_closed")
    # A schedule for a closed campaign is moot: a queued or running planning job is cancelled
    # (it checks its status under the campaign's lock before writing, so it writes nothing).
    PlanningJob.objects.filter(
        campaign=locked, status__in=[PlanningJob.Status.QUEUED, PlanningJob.Status.RUNNING]
    ).update(
        status=PlanningJob.Status.FAILED, finished_at=timezone.now(),
        message="Cancelled: the campaign was closed before the schedule was written.",
    )
    cancelled = ScheduledVisit.objects.filter(campaign=locked, status=ScheduledVisit.Status.PLANNED).update(status=ScheduledVisit.Status.CANCELLED, version=F("version") + 1, updated_at=timezone.now())
    locked.status = Campaign.Status.CLOSED
    locked.save(update_fields=["status", "updated_at"])
    return locked, cancelled


def _lock_campaign(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _check_no_running_overlap(campaign: Campaign, neighborhood_ids: Iterable[int]) -> None:
    """A 自治会 is in at most one running campaign. The municipality row is locked so that two
    campaigns starting at once cannot both pass this check."""
    Municipality.objects.select_for_update().filter(pk=campaign.municipality_id).first()
    clashes = (
        CampaignNeighborhood.objects.filter(
            neighborhood_id__in=list(neighborhood_ids), campaign__status=Campaign.Status.RUNNING
        )
        .exclude(campaign=campaign)
        .select_related("neighborhood", "campaign")
    )
    if clashes:
        details = [
            {"neighborhood_id": c.neighborhood_id, "neighborhood": c.neighborhood.name, "campaign_id": c.campaign_id,
             "campaign": c.campaign.name}
            for c in clashes
        ]
        names = ", ".join(sorted({c.neighborhood.name for c in clashes}))
        raise Conflict(f"These 自治会 are already in a running campaign: {names}.", code="neighborhood_in_running_campaign",
                       details=details)


@transaction.atomic
def set_targets(*, campaign: Campaign, neighborhood_ids: list[int]) -> list[CampaignNeighborhood]:
    """The campaign's 自治会, in visiting order."""
    locked = _lock_campaign(campaign)
    if locked.status == Campaign.Status.CLOSED:
        raise Conflict("The campaign is closed.", code="campaign_closed")
    if len(set(neighborhood_ids)) != len(neighborhood_ids):
        raise InvalidInput("A 自治会 appears twice in the list.", details=[{"loc": ["body", "neighborhood_ids"]}])
    found = set(
        Neighborhood.objects.filter(municipality_id=locked.municipality_id, pk__in=neighborhood_ids).values_list("pk", flat=True)
    )
    missing = [n for n in neighborhood_ids if n not in found]
    if missing:
        raise NotFound(f"No such 自治会: {missing}", details={"neighborhood_ids": missing})
    if locked.status == Campaign.Status.RUNNING:
        _check_no_running_overlap(locked, neighborhood_ids)
    removed = set(locked.targets.values_list("neighborhood_id", flat=True)) - set(neighborhood_ids)
    if removed and ScheduledVisit.objects.filter(campaign=locked, neighborhood_id__in=removed).exists():
        raise Conflict("自治会 with scheduled visits cannot be removed.", code="has_visits", details={"neighborhood_ids": sorted(removed)})
    locked.targets.all().delete()
    Allocation.objects.filter(campaign=locked, neighborhood_id__in=removed).delete()
    return CampaignNeighborhood.objects.bulk_create(
        CampaignNeighborhood(campaign=locked, neighborhood_id=n, position=i) for i, n in enumerate(neighborhood_ids, 1)
    )


@transaction.atomic
def set_allocations(*, campaign: Campaign, allocations: list[tuple[int, int]]) -> list[Allocation]:
    """Hand the campaign's 自治会 to partner corporations: [(neighborhood_id, partner_id), …]."""
    locked = _lock_campaign(campaign)
    if locked.status == Campaign.Status.CLOSED:
        raise Conflict("The campaign is closed.", code="campaign_closed")
    targets = set(locked.targets.values_list("neighborhood_id", flat=True))
    partners = set(PartnerOrganization.objects.filter(municipality_id=locked.municipality_id).values_list("pk", flat=True))
    problems = []
    for i, (hood, partner) in enumerate(allocations):
        if hood not in targets:
            problems.append({"loc": ["body", "allocations", i, "neighborhood_id"], "msg": "not a target of this campaign"})
        if partner not in partners:
            problems.append({"loc": ["body", "allocations", i, "partner_organization_id"], "msg": "no such partner corporation"})
    if problems:
        raise InvalidInput("; ".join(f"allocations[{p['loc'][2]}]: {p['msg']}" for p in problems), details=problems)
    current = dict(Allocation.objects.filter(campaign=locked).values_list("neighborhood_id", "partner_organization_id"))
    changed = [hood for hood, partner in allocations if current.get(hood) not in (None, partner)]
    if changed and ScheduledVisit.objects.filter(campaign=locked, neighborhood_id__in=changed).exists():
        raise Conflict(
            "Some of these 自治会 already have visits; move them with the reassign endpoint.",
            code="has_visits", details={"neighborhood_ids": changed},
        )
    result = []
    for hood, partner in allocations:
        obj, _ = Allocation.objects.update_or_create(
            campaign=locked, neighborhood_id=hood,
            defaults={"partner_organization_id": partner, "municipality_id": locked.municipality_id},
        )
        result.append(obj)
    return result


# --- hearings --------------------------------------------------------------------------------


@transaction.atomic
def record_hearing(
    *, campaign: Campaign, neighborhood: Neighborhood, held_on: dt.date, attendees: list[dict], notes: str,
    priorities: list[tuple], by: User,
) -> Hearing:
    """ヒアリング: the chair's and 民生委員's 気になる世帯 become priority households of the campaign."""
    if campaign.status == Campaign.Status.CLOSED:
        raise Conflict("The campaign is closed.", code="campaign_closed")
    if not campaign.targets.filter(neighborhood=neighborhood).exists():
        raise InvalidInput("This 自治会 is not a target of the campaign.", details=[{"loc": ["body", "neighborhood_id"]}])
    households = {
        str(h.pk): h for h in Household.objects.filter(municipality_id=campaign.municipality_id, pk__in=[p[0] for p in priorities])
    }
    problems = []
    for i, (household_id, _reason) in enumerate(priorities):
        h = households.get(str(household_id))
        if h is None:
            problems.append({"loc": ["body", "priorities", i, "household_id"], "msg": "no such household"})
        elif h.merged_into_id is not None:
            problems.append({"loc": ["body", "priorities", i, "household_id"],
                             "msg": f"the household was merged into {h.merged_into_id}; name that one"})
        elif h.location is None:
            problems.append({"loc": ["body", "priorities", i, "household_id"], "msg": "the household has no location"})
        elif h.neighborhood_id != neighborhood.pk:
            problems.append({"loc": ["body", "priorities", i, "household_id"], "msg": "the household is not in this 自治会"})
    if problems:
        raise InvalidInput("; ".join(f"priorities[{p['loc'][2]}]: {p['msg']}" for p in problems), details=problems)
    hearing = Hearing.objects.create(
        municipality_id=campaign.municipality_id, campaign=campaign, neighborhood=neighborhood, held_on=held_on,
        attendees=attendees, notes=notes, recorded_by=by,
    )
    for household_id, reason in priorities:
        CampaignHousehold.objects.update_or_create(
            campaign=campaign, household_id=household_id,
            defaults={"municipality_id": campaign.municipality_id, "neighborhood": neighborhood, "priority": True,
                      "priority_reason": reason, "hearing": hearing},
        )
    return hearing


# --- workers ---------------------------------------------------------------------------------


@transaction.atomic
def set_availability(*, worker: User, weekdays: list[int], start_time: dt.time, end_time: dt.time) -> WorkerAvailability:
    if worker.role != Role.OUTREACH_WORKER:
        raise InvalidInput("Availability is for outreach workers.")
    obj, _ = WorkerAvailability.objects.get_or_create(worker=worker)
    obj.weekdays, obj.start_time, obj.end_time = sorted(set(weekdays)), start_time, end_time
    full_clean_or_422(obj)
    obj.save()
    return obj


@transaction.atomic
def add_days_off(*, worker: User, dates: list[dt.date], reason: str = "") -> int:
    if worker.role != Role.OUTREACH_WORKER:
        raise InvalidInput("Days off are for outreach workers.")
    created = WorkerDayOff.objects.bulk_create(
        [WorkerDayOff(worker=worker, date=d, reason=reason) for d in dates], ignore_conflicts=True
    )
    return len(created)


# --- planning --------------------------------------------------------------------------------


def request_planning(*, campaign: Campaign, kind: str, by: User, from_date: dt.date | None = None) -> PlanningJob:
    """Check the campaign can be planned (4xx otherwise, nothing written), then queue the job.
    A second request while one is queued or running is refused (409) by a partial unique index.

    Visits are placed from `from_date` (default: the later of tomorrow and the campaign's start) to
    the campaign's end, never outside its dates; an explicit `from_date` may be today but not in
    the past, and must lie within the campaign."""
    from_date = planning_start(campaign, from_date)
    validate_plannable(campaign=campaign, kind=kind, from_date=from_date)
    try:
        with transaction.atomic():
            job = PlanningJob.objects.create(
                municipality_id=campaign.municipality_id, campaign=campaign, kind=kind, from_date=from_date, requested_by=by
            )
    except IntegrityError as exc:
        active = PlanningJob.objects.filter(campaign=campaign, status__in=["queued", "running"]).first()
        raise Conflict(
            "A planning job for this campaign is already queued or running.", code="job_running",
            details={"job_id": str(active.pk) if active else None},
        ) from exc
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(
        "visits.tasks.run_planning_job_task", str(job.pk), job.municipality_id, task_name=f"plan-{job.pk}"
    ))
    return job


def planning_start(campaign: Campaign, from_date: dt.date | None) -> dt.date:
    """The first date a plan may use: the later of tomorrow and the campaign's start unless given;
    a given date must be today or later and within the campaign's dates (422 otherwise)."""
    today = timezone.localdate()
    if from_date is None:
        return max(today + dt.timedelta(days=1), campaign.start_date)
    loc = [{"loc": ["body", "from_date"]}]
    if from_date < today:
        raise InvalidInput("from_date cannot be in the past.", details=loc)
    if from_date < campaign.start_date:
        raise InvalidInput(f"from_date is before the campaign starts ({campaign.start_date}).", code="outside_campaign",
                           details=loc)
    if from_date > campaign.end_date:
        raise InvalidInput(f"from_date is after the campaign ends ({campaign.end_date}).", code="outside_campaign",
                           details=loc)
    return from_date


def validate_plannable(*, campaign: Campaign, kind: str, from_date: dt.date) -> None:
    problems: list[dict] = []
    if campaign.status == Campaign.Status.CLOSED:
        raise Conflict("The campaign is closed.", code="campaign_closed")
    if from_date > campaign.end_date:
        raise InvalidInput("Nothing to plan: the campaign has ended.", code="campaign_ended")
    has_visits = ScheduledVisit.objects.filter(campaign=campaign).exists()
    if kind == PlanningJob.Kind.GENERATE and has_visits:
        raise Conflict("This campaign already has a schedule; re-plan it instead.", code="already_planned")
    targets = list(campaign.targets.select_related("neighborhood"))
    if not targets:
        raise InvalidInput("The campaign has no 自治会.", code="no_targets")
    allocations = dict(Allocation.objects.filter(campaign=campaign).values_list("neighborhood_id", "partner_organization_id"))
    unallocated = [t.neighborhood.name for t in targets if t.neighborhood_id not in allocations]
    if unallocated:
        problems.append({"code": "unallocated", "msg": f"自治会 without a partner corporation: {', '.join(unallocated)}"})
    partners = PartnerOrganization.objects.filter(pk__in=set(allocations.values()))
    released = list(_replannable(campaign).values_list("household_id", flat=True)) if kind == PlanningJob.Kind.REPLAN else []
    needs = _households_to_plan(campaign, also=released).values("neighborhood_id")
    per_partner: dict[int | None, int] = defaultdict(int)  # None: 自治会 without a partner
    for row in needs:
        per_partner[allocations.get(row["neighborhood_id"])] += 1
    for partner in partners:
        workers = _workers(partner)
        if not workers:
            problems.append({"code": "no_workers", "msg": f"{partner.name} has no active outreach workers", "partner_id": partner.pk})
            continue
        rooms = worker_day_rooms(campaign, workers, from_date)
        slots = sum(1 for r in rooms.values() if r > 0)
        capacity = sum(rooms.values())
        if per_partner.get(partner.pk, 0) > capacity:
            problems.append({
                "code": "capacity", "partner_id": partner.pk,
                "msg": f"{partner.name}: {per_partner[partner.pk]} households but only {capacity} visits free on "
                       f"{slots} worker-days (at most {campaign.visits_per_worker_day} a day, other campaigns' "
                       f"visits counted) from {from_date} to {campaign.end_date}",
            })
    no_location = list(
        _households_to_plan(campaign, also=released).filter(location__isnull=True).values_list("external_id", flat=True)[:50]
    )
    if no_location:
        problems.append({"code": "no_location", "msg": f"households with no location: {', '.join(no_location)}"})
    if problems:
        raise InvalidInput("The campaign cannot be planned: " + "; ".join(p["msg"] for p in problems),
                           code="not_plannable", details=problems)


def _households_to_plan(campaign: Campaign, also: list | None = None):
    """Households of the campaign's 自治会 not finished, not leaflet-due and not already scheduled
    (plus `also`: scheduled ones being re-planned)."""
    target_hoods = campaign.targets.values("neighborhood_id")
    finished = CampaignHousehold.objects.filter(campaign=campaign).filter(
        Q(state__in=CampaignHousehold.FINAL_STATES) | Q(state=CampaignHousehold.State.LEAFLET_DUE)
        | Q(state=CampaignHousehold.State.SCHEDULED)
    ).values("household_id")
    if also:
        finished = finished.exclude(household_id__in=also)
    return (
        Household.objects.filter(municipality_id=campaign.municipality_id, neighborhood_id__in=target_hoods)
        .exclude(status__in=SKIPPED_STATUSES)
        .exclude(pk__in=finished)
    )


def _workers(partner: PartnerOrganization) -> list[User]:
    return list(
        User.objects.filter(partner_organization=partner, role=Role.OUTREACH_WORKER, is_active=True)
        .select_related("availability").prefetch_related("days_off").order_by("pk")
    )


def worker_day_rooms(campaign: Campaign, workers: list[User], start: dt.date) -> dict[tuple[int, dt.date], int]:
    """How many more visits of this campaign each working day of these workers can take, from
    `start` to the campaign's end. A worker-day holds at most the smallest capacity
    (visits_per_worker_day) of the campaigns with visits on it, counting every live visit of every
    campaign, except this campaign's planned visits (a re-plan places them again)."""
    rooms: dict[tuple[int, dt.date], int] = {}
    for w in workers:
        for d in _worker_dates(w, start, campaign.end_date):
            rooms[(w.pk, d)] = campaign.visits_per_worker_day
    if not rooms:
        return rooms
    taken = _day_loads(
        ScheduledVisit.objects.filter(worker__in=workers, date__gte=start, date__lte=campaign.end_date)
        .exclude(campaign=campaign, status=ScheduledVisit.Status.PLANNED)
    )
    for row in taken:
        key = (row["worker_id"], row["date"])
        if key in rooms:
            rooms[key] = max(0, min(rooms[key], row["capacity"]) - row["visits"])
    return rooms


def _day_loads(visits):
    """Per worker-day of `visits`: its live visits and the smallest capacity (visits_per_worker_day)
    of the campaigns on it, as rows {worker_id, date, visits, capacity}. The one count behind room
    left (plans), over_capacity (their check) and _check_room (reassignments)."""
    return (
        visits.exclude(status=ScheduledVisit.Status.CANCELLED)
        .values("worker_id", "date")
        .annotate(visits=Count("pk"), capacity=Min("campaign__visits_per_worker_day"))
    )


def _lock_worker_days(municipality_id: int) -> None:
    """Writes that add visits to worker-days (a plan, a reassignment) take turns per municipality,
    so that each one's capacity check sees the others' visits. Taken before any visit row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('tsunagu.plan'), %s)", [municipality_id])


def _worker_dates(worker: User, start: dt.date, end: dt.date) -> list[dt.date]:
    availability = getattr(worker, "availability", None)
    weekdays = availability.weekdays if availability and availability.weekdays else None
    return working_days(start, end, weekdays=weekdays or (1, 2, 3, 4, 5), days_off=[d.date for d in worker.days_off.all()])


class PlanCollision(Exception):
    """The plan would overfill worker-days that another plan filled while this one was computed."""


def over_capacity(*, worker_ids: Iterable[int] | None = None, municipality_id: int | None = None,
                  dates: Iterable[dt.date] | None = None) -> list[dict]:
    """Worker-days holding more live visits than the smallest capacity of the campaigns on them:
    [{worker_id, date, visits, capacity}]. Plans never make one; this is their check."""
    qs = ScheduledVisit.objects.all()
    if worker_ids is not None:
        qs = qs.filter(worker_id__in=list(worker_ids))
    if municipality_id is not None:
        qs = qs.filter(municipality_id=municipality_id)
    if dates is not None:
        qs = qs.filter(date__in=list(dates))
    return [dict(r) for r in _day_loads(qs).filter(visits__gt=F("capacity")).order_by("date", "worker_id")]


def run_planning_job(job_id: str) -> dict:
    """The job body. Safe to run twice: a finished job is left alone, and the schedule is written
    in one transaction that first re-checks the job is still running."""
    claimed = PlanningJob.objects.filter(pk=job_id, status__in=["queued", "running"]).update(
        status=PlanningJob.Status.RUNNING, started_at=timezone.now(), progress=0
    )
    if not claimed:
        return {"skipped": True}
    job = PlanningJob.objects.select_related("campaign").get(pk=job_id)
    try:
        result = _plan(job)
    except PlanCollision as exc:
        PlanningJob.objects.filter(pk=job_id, status=PlanningJob.Status.RUNNING).update(
            status=PlanningJob.Status.FAILED, message=str(exc)[:300], finished_at=timezone.now()
        )
        return {"failed": str(exc)}
    except Exception as exc:
        logger.exception("planning job %s failed", job_id)
        PlanningJob.objects.filter(pk=job_id, status=PlanningJob.Status.RUNNING).update(
            status=PlanningJob.Status.FAILED, message=str(exc)[:300], finished_at=timezone.now()
        )
        return {"failed": str(exc)}
    return result


def _set_progress(job: PlanningJob, fraction: float, message: str = "") -> None:
    # Outside the writing transaction, so the API sees it while the job runs; a cancelled job
    # keeps the message that says why.
    PlanningJob.objects.filter(pk=job.pk, status=PlanningJob.Status.RUNNING).update(progress=max(0, min(99, int(fraction * 100))), message=message[:300])


def _plan(job: PlanningJob) -> dict:
    """Compute outside any transaction (progress stays visible), then write everything at once."""
    campaign = job.campaign
    from_date = job.from_date or campaign.start_date
    allocations = {
        a.neighborhood_id: a.partner_organization
        for a in Allocation.objects.filter(campaign=campaign).select_related("partner_organization")
    }
    positions = dict(campaign.targets.values_list("neighborhood_id", "position"))
    states = {str(ch.household_id): ch for ch in CampaignHousehold.objects.filter(campaign=campaign)}
    released: list = []
    if job.kind == PlanningJob.Kind.REPLAN:
        # Re-planning keeps what is done and what was handed out (issued); every planned visit,
        # whatever its date, is planned again from from_date (so one re-plan can undo another).
        released = list(_replannable(campaign).values_list("household_id", flat=True))
    households = list(_households_to_plan(campaign, also=released).only("pk", "location", "neighborhood_id"))
    stops_by_partner: dict[int, list[planning.Stop]] = defaultdict(list)
    partners: dict[int, PartnerOrganization] = {}
    for h in households:
        partner = allocations.get(h.neighborhood_id)
        state = states.get(str(h.pk))
        attempts = state.attempts if state else 0
        if partner is None or h.location is None or attempts >= campaign.max_attempts:
            continue  # validated before queueing; attempts used up → leaflet (below)
        last = state.last_attempt_date if state else None
        stops_by_partner[partner.pk].append(planning.Stop(
            id=str(h.pk), lon=h.location.x, lat=h.location.y, group=positions.get(h.neighborhood_id, 0),
            priority=bool(state and state.priority), attempt=attempts + 1,
            avoid_weekday=last.isoweekday() if last else None,
            avoid_band=(state.last_attempt_band or None) if state else None,
        ))
        partners[partner.pk] = partner

    plans: dict[int, planning.PartnerPlan] = {}
    count = max(1, len(stops_by_partner))
    for i, (partner_id, stops) in enumerate(sorted(stops_by_partner.items())):
        partner = partners[partner_id]
        workers = _workers(partner)
        free: dict[int, list[tuple[dt.date, int]]] = defaultdict(list)
        for (wid, d), r in sorted(worker_day_rooms(campaign, workers, from_date).items()):
            if r > 0:
                free[wid].append((d, r))
        request = planning.PartnerPlanRequest(
            office=_office(partner, stops),
            stops=tuple(stops),
            workers=tuple(
                planning.WorkerDays(
                    worker_id=w.pk, dates=tuple(d for d, _ in free[w.pk]), room=tuple(r for _, r in free[w.pk])
                )
                for w in workers
            ),
            capacity=campaign.visits_per_worker_day,
            bands=tuple(campaign.time_bands),
        )
        label = f"planning {partner.name}"

        def progress(f: float, i: int = i, label: str = label) -> None:
            _set_progress(job, (i + f) / count, label)

        plans[partner_id] = planning.plan_partner(request, progress=progress)
    with transaction.atomic():
        return _write_plan(job, plans, partners, households, states, released)


def _replannable(campaign: Campaign):
    """What a re-plan places again: every visit neither done nor handed out (issued), any date."""
    return ScheduledVisit.objects.filter(campaign=campaign, status=ScheduledVisit.Status.PLANNED)


def _office(partner: PartnerOrganization, stops: list[planning.Stop]) -> tuple[float, float]:
    if partner.office is not None:
        return (partner.office.x, partner.office.y)
    # No office recorded: start from the middle of the corporation's households.
    return (sum(s.lon for s in stops) / len(stops), sum(s.lat for s in stops) / len(stops))


def _write_plan(job, plans, partners, households, states, released: list) -> dict:
    # Locks in the order every campaign write takes them: the campaign row first (closing it
    # locks it, then its visits; this job would otherwise lock visits, then wait on the campaign).
    campaign = Campaign.objects.select_for_update().get(pk=job.campaign_id)
    locked = PlanningJob.objects.select_for_update().get(pk=job.pk)
    if locked.status != PlanningJob.Status.RUNNING:
        return {"skipped": True}
    if campaign.status == Campaign.Status.CLOSED:
        locked.status, locked.finished_at = PlanningJob.Status.FAILED, timezone.now()
        locked.message = "Cancelled: the campaign was closed before the schedule was written."
        locked.save(update_fields=["status", "finished_at", "message"])
        return {"skipped": True}
    # Plans of one municipality are written one at a time, so that the capacity check below sees
    # every other plan's visits (two campaigns' jobs may plan the same workers at once).
    _lock_worker_days(campaign.municipality_id)
    cancelled = _replannable(campaign).filter(household_id__in=released).update(
        status=ScheduledVisit.Status.CANCELLED, version=F("version") + 1, updated_at=timezone.now()
    )
    CampaignHousehold.objects.filter(campaign=campaign, household_id__in=released, state="scheduled").update(
        state=CampaignHousehold.State.PENDING
    )
    by_id = {str(h.pk): h for h in households}
    visits: list[ScheduledVisit] = []
    unplaced: list[str] = []
    attempts: dict[str, int] = {}
    priority = {hid for hid, st in states.items() if st.priority}
    for partner_id, plan in plans.items():
        unplaced += plan.unplaced
        for p in plan.visits:
            h = by_id[p.stop_id]
            attempt = (states[p.stop_id].attempts if p.stop_id in states else 0) + 1
            attempts[p.stop_id] = attempt
            visits.append(ScheduledVisit(
                municipality_id=campaign.municipality_id, campaign=campaign, household_id=h.pk,
                neighborhood_id=h.neighborhood_id, partner_organization_id=partner_id, worker_id=p.worker_id,
                date=p.date, time_band=p.band, route_order=p.order, attempt=attempt, priority=p.stop_id in priority,
                leg_m=p.leg_m,
            ))
    ScheduledVisit.objects.bulk_create(visits, batch_size=2000)
    placed = {(v.worker_id, v.date) for v in visits}
    full = [
        r for r in over_capacity(worker_ids={w for w, _ in placed}, dates={d for _, d in placed})
        if (r["worker_id"], r["date"]) in placed
    ]
    if full:
        raise PlanCollision(
            f"Another plan gave the same workers visits meanwhile ({len(full)} worker-days would be over "
            "capacity); nothing was written: request the plan again."
        )
    # Every household of the campaign has a state row; planned ones are "scheduled".
    CampaignHousehold.objects.bulk_create(
        [CampaignHousehold(municipality_id=campaign.municipality_id, campaign=campaign, household_id=h.pk,
                           neighborhood_id=h.neighborhood_id) for h in households],
        ignore_conflicts=True, batch_size=2000,
    )
    CampaignHousehold.objects.filter(campaign=campaign, household_id__in=list(attempts)).update(
        state=CampaignHousehold.State.SCHEDULED
    )
    leaflets = CampaignHousehold.objects.filter(
        campaign=campaign, state=CampaignHousehold.State.PENDING, attempts__gte=campaign.max_attempts
    ).update(state=CampaignHousehold.State.LEAFLET_DUE)
    result = {
        "visits": len(visits),
        "unplaced": len(unplaced),
        "unplaced_households": unplaced[:100],
        "cancelled": cancelled,
        "leaflet_due": leaflets,
        "worker_days": sum(p.worker_days for p in plans.values()),
        "total_km": round(sum(p.total_m for p in plans.values()) / 1000, 1),
        "partners": {
            partners[pid].code: {"visits": len(p.visits), "worker_days": p.worker_days, "total_km": round(p.total_m / 1000, 1)}
            for pid, p in plans.items()
        },
    }
    locked.status = PlanningJob.Status.DONE
    locked.progress = 100
    locked.result = result
    locked.finished_at = timezone.now()
    locked.message = f"{len(visits)} visits planned" + (f", {len(unplaced)} could not be placed" if unplaced else "")
    locked.save(update_fields=["status", "progress", "result", "finished_at", "message"])
    return result


# --- outcomes and reassignment ------------------------------------------------------------------


OUTCOME_STATES = {
    "met": CampaignHousehold.State.MET,
    "refused": CampaignHousehold.State.REFUSED,
    "moved": CampaignHousehold.State.MOVED,
    "vacant": CampaignHousehold.State.VACANT,
    "leaflet_left": CampaignHousehold.State.LEAFLET_LEFT,
}


def count_attempt(state: CampaignHousehold, visit: ScheduledVisit) -> None:
    """A new attempt at the household's door, as its campaign state counts it."""
    state.attempts += 1
    state.last_attempt_date = visit.date
    state.last_attempt_band = visit.time_band


def take_outcome(visit: ScheduledVisit, state: CampaignHousehold, outcome: str) -> None:
    """The outcome on the visit and on the household's campaign state: 不在 leaves the household
    pending, or due a leaflet once the campaign's attempts are used; any other outcome closes it.
    record_outcome and the sync's set-based first outcomes (visits.sync.bulk) both go through here."""
    visit.outcome = outcome
    if outcome == "absent":
        visit.status = ScheduledVisit.Status.ABSENT
        state.state = (
            CampaignHousehold.State.LEAFLET_DUE if state.attempts >= visit.campaign.max_attempts
            else CampaignHousehold.State.PENDING
        )
    else:
        visit.status = ScheduledVisit.Status.DONE
        state.state = OUTCOME_STATES[outcome]


@transaction.atomic
def record_outcome(
    *, visit: ScheduledVisit, outcome: str, by: User | None = None, correction_reason: str | None = None,
    visit_record=None,
) -> ScheduledVisit:
    """What happened at the door drives the campaign: a final outcome closes the household; 不在
    counts an attempt and, once the policy's attempts are used, marks a leaflet (相談窓口の周知).

    A visit has one outcome. The same outcome arriving again changes nothing; another outcome is
    refused (409 `outcome_recorded`) unless it is a correction: `correction_reason` says why, and an
    OutcomeCorrection keeps what it was and who changed it."""
    if outcome not in OUTCOME_STATES and outcome != "absent":
        raise InvalidInput(f"Unknown outcome {outcome!r}.")
    locked = ScheduledVisit.objects.select_for_update().select_related("campaign").get(pk=visit.pk)
    if locked.status == ScheduledVisit.Status.CANCELLED:
        raise Conflict("This visit was cancelled (取消).", code="visit_cancelled")
    state, _ = CampaignHousehold.objects.select_for_update().get_or_create(
        campaign=locked.campaign, household_id=locked.household_id,
        defaults={"municipality_id": locked.municipality_id, "neighborhood_id": locked.neighborhood_id},
    )
    recorded = locked.status in (ScheduledVisit.Status.DONE, ScheduledVisit.Status.ABSENT)
    if recorded and locked.outcome == outcome:
        return locked  # the same outcome arriving twice changes nothing
    if recorded:
        if not correction_reason:
            label = VisitOutcome(locked.outcome).label if locked.outcome else locked.get_status_display()
            raise Conflict(
                f"This visit's outcome is already recorded ({label}). To correct it, send the new outcome "
                "with correction_reason.", code="outcome_recorded",
                details={"outcome": locked.outcome, "status": locked.status},
            )
        if by is None:
            raise InvalidInput("A correction needs the person who makes it.")
        OutcomeCorrection.objects.create(
            municipality_id=locked.municipality_id, scheduled_visit=locked, from_outcome=locked.outcome or "absent",
            to_outcome=outcome, reason=correction_reason, visit_record=visit_record, by=by,
        )
    else:
        if correction_reason:
            raise InvalidInput("There is no recorded outcome to correct on this visit.", code="nothing_to_correct",
                               details=[{"loc": ["body", "correction_reason"]}])
        count_attempt(state, locked)
    take_outcome(locked, state, outcome)
    if recorded and outcome != "absent":
        # Corrected to a final outcome: a next attempt planned meanwhile is not needed any more.
        ScheduledVisit.objects.filter(
            campaign=locked.campaign, household_id=locked.household_id, status=ScheduledVisit.Status.PLANNED
        ).update(status=ScheduledVisit.Status.CANCELLED, version=F("version") + 1, updated_at=timezone.now())
    locked.version += 1
    locked.save(update_fields=["status", "outcome", "version", "updated_at"])
    if recorded and outcome == "absent" and ScheduledVisit.objects.filter(
        campaign=locked.campaign, household_id=locked.household_id,
        status__in=[ScheduledVisit.Status.PLANNED, ScheduledVisit.Status.ISSUED],
    ).exists():
        state.state = CampaignHousehold.State.SCHEDULED
    state.save()
    return locked


def issue_visits(*, worker: User, date: dt.date) -> int:
    """Mark a worker's planned visits of a day as handed out (their device has them): re-planning
    keeps them. Only a running campaign's visits reach a device."""
    return ScheduledVisit.objects.filter(
        worker=worker, date=date, status=ScheduledVisit.Status.PLANNED, campaign__status=Campaign.Status.RUNNING
    ).update(
        status=ScheduledVisit.Status.ISSUED, version=F("version") + 1, updated_at=timezone.now()
    )


@transaction.atomic
def reassign_visit(*, visit: ScheduledVisit, worker: User) -> ScheduledVisit:
    """Give one open visit to another worker of the same corporation, on the same day, at the end
    of their route. Nothing else moves."""
    _lock_worker_days(visit.municipality_id)
    locked = ScheduledVisit.objects.select_for_update().get(pk=visit.pk)
    if locked.status not in (ScheduledVisit.Status.PLANNED, ScheduledVisit.Status.ISSUED):
        raise Conflict(f"A {locked.status} visit cannot be reassigned.", code="visit_closed")
    _check_worker(worker, locked.partner_organization_id)
    _check_room(worker, {locked.date: 1}, locked.campaign)
    last = ScheduledVisit.objects.filter(worker=worker, date=locked.date).aggregate(m=Max("route_order"))["m"] or 0
    locked.worker = worker
    locked.route_order = last + 1
    locked.version += 1
    locked.save(update_fields=["worker", "route_order", "version", "updated_at"])
    return locked


def _check_room(worker: User, adding: dict[dt.date, int], campaign: Campaign) -> None:
    """Refuse (409 worker_day_full) to give a worker more visits on a day than its capacity: the
    smallest visits_per_worker_day of the campaigns on it, every campaign's live visits counted.
    The caller holds _lock_worker_days."""
    rows = {r["date"]: r for r in _day_loads(ScheduledVisit.objects.filter(worker=worker, date__in=list(adding)))}
    full = []
    for date, n in sorted(adding.items()):
        row = rows.get(date)
        capacity = min(campaign.visits_per_worker_day, row["capacity"]) if row else campaign.visits_per_worker_day
        if (row["visits"] if row else 0) + n > capacity:
            full.append({"date": date.isoformat(), "visits": row["visits"] if row else 0, "adding": n,
                         "capacity": capacity})
    if full:
        days = ", ".join(str(f["date"]) for f in full)
        raise Conflict(
            f"{worker} has no room for these visits on {days} (at most "
            f"{full[0]['capacity']} a day, every campaign counted).", code="worker_day_full", details=full,
        )


def _check_worker(worker: User, partner_id: int) -> None:
    if worker.role != Role.OUTREACH_WORKER or not worker.is_active:
        raise InvalidInput("The new worker must be an active outreach worker.",
                           details=[{"loc": ["body", "worker_id"], "msg": "not an active outreach worker"}])
    if worker.partner_organization_id != partner_id:
        raise InvalidInput(
            "The worker belongs to another corporation than the one this 自治会 is allocated to.",
            code="worker_of_other_partner",
            details=[{"loc": ["body", "worker_id"], "msg": "a worker of another corporation"}],
        )


@transaction.atomic
def reassign_neighborhood(
    *, campaign: Campaign, neighborhood: Neighborhood, partner: PartnerOrganization, worker: User | None = None
) -> dict:
    """Hand a 自治会 to another corporation and/or worker. With a worker, its open visits move to
    that worker on the same days; without one, they are cancelled and the households wait for the
    next re-plan with the new corporation. Nothing outside the 自治会 moves."""
    if worker is not None:
        _lock_worker_days(campaign.municipality_id)
    allocation = Allocation.objects.select_for_update().filter(campaign=campaign, neighborhood=neighborhood).first()
    if allocation is None:
        raise NotFound("This 自治会 is not allocated in the campaign.")
    if worker is not None:
        _check_worker(worker, partner.pk)
    allocation.partner_organization = partner
    allocation.save(update_fields=["partner_organization"])
    open_visits = ScheduledVisit.objects.select_for_update().filter(
        campaign=campaign, neighborhood=neighborhood, status=ScheduledVisit.Status.PLANNED
    )
    if worker is None:
        households = list(open_visits.values_list("household_id", flat=True))
        moved = open_visits.update(status=ScheduledVisit.Status.CANCELLED, version=F("version") + 1)
        CampaignHousehold.objects.filter(campaign=campaign, household_id__in=households, state="scheduled").update(
            state=CampaignHousehold.State.PENDING
        )
        return {"cancelled": moved, "moved": 0}
    adding: dict[dt.date, int] = defaultdict(int)
    for date in open_visits.exclude(worker=worker).values_list("date", flat=True):
        adding[date] += 1
    _check_room(worker, dict(adding), campaign)
    moved = 0
    for date in sorted(set(open_visits.values_list("date", flat=True))):
        last = (
            ScheduledVisit.objects.filter(worker=worker, date=date).exclude(neighborhood=neighborhood)
            .aggregate(m=Max("route_order"))["m"] or 0
        )
        for i, v in enumerate(open_visits.filter(date=date).order_by("route_order"), start=1):
            v.worker, v.partner_organization, v.route_order = worker, partner, last + i
            v.version += 1
            v.save(update_fields=["worker", "partner_organization", "route_order", "version", "updated_at"])
            moved += 1
    return {"cancelled": 0, "moved": moved}


# --- progress ------------------------------------------------------------------------------------


def campaign_progress(campaign: Campaign, *, limit: int = 100, offset: int = 0) -> dict:
    """Progress per corporation (the whole campaign) and per 自治会 (a page of them, in target
    order; `neighborhoods_count` says how many there are): the coverage cells of visits.coverage
    (the formula the map and the 年度 report read), from the map's coverage snapshot as
    /maps/coverage reads it (asking for a refresh when its inputs changed; `snapshot` says how fresh
    the numbers are). The live aggregate took seconds in a large town (4.5 s at 1.8M households),
    the snapshot takes milliseconds, and a page keeps a city's answer the size of a town's (3,000
    自治会 listed whole took 10x what 166 did). `attempted` is the in-scope households the campaign
    has reached (finished or tried): in_scope - not_visited."""
    from maps.queries import read_campaign_cells, read_partner_progress
    from maps.services import ensure_fresh, snapshot_summary
    from visits.coverage import coverage_pct

    states = ensure_fresh([campaign])
    cells = read_campaign_cells(
        campaign_id=campaign.pk, municipality_id=campaign.municipality_id, limit=limit, offset=offset
    )
    hoods = [
        {
            "neighborhood_id": c["neighborhood_id"], "name": c["name"], "code": c["code"],
            "partner_organization_id": c["partner_organization_id"],
            **{k: c[k] for k in ("in_scope", "met", "refused", "moved_or_vacant", "leaflet_left", "leaflet_due",
                                 "absent_pending")},
            "attempted": c["in_scope"] - c["not_visited"],
            **{k: c[k] for k in ("finished", "not_visited", "coverage_pct", "state")},
        }
        for c in cells
    ]
    partners = read_partner_progress(campaign_id=campaign.pk, municipality_id=campaign.municipality_id)
    for p in partners:
        p["coverage_pct"] = coverage_pct(p["finished"], p["in_scope"])
    return {
        "snapshot": snapshot_summary(states), "neighborhoods": hoods,
        "neighborhoods_count": sum(p["neighborhoods"] for p in partners), "partners": partners,
    }
