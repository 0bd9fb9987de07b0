"""Who may see and change campaigns, schedules and partner corporations. Decided here, once per
model; every endpoint goes through these functions.

- coordinator: everything of the municipality, and the only role that writes plans;
- supervisor: reads everything of the municipality (read-only);
- outreach_worker: their corporation's schedule (and their own), campaigns' metadata;
- commissioner, admin: campaigns' metadata and progress only (no household schedules).
"""

from django.db.models import QuerySet

from accounts.models import User
from accounts.roles import Role
from backend.errors import Forbidden
from visits.models import Campaign, Hearing, PartnerOrganization, PlanningJob, ScheduledVisit

PLAN_READERS = (Role.COORDINATOR, Role.SUPERVISOR)


def visible_partners(user: User) -> QuerySet[PartnerOrganization]:
    return PartnerOrganization.objects.filter(municipality_id=user.municipality_id)


def visible_campaigns(user: User) -> QuerySet[Campaign]:
    return Campaign.objects.filter(municipality_id=user.municipality_id)


def require_coordinator(user: User) -> None:
    if user.role != Role.COORDINATOR:
        raise Forbidden("Only coordinators plan campaigns and change schedules.")


def require_plan_reader(user: User) -> None:
    if user.role not in PLAN_READERS:
        raise Forbidden("Only coordinators and supervisors read this.")


def visible_scheduled_visits(user: User) -> QuerySet[ScheduledVisit]:
    if user.role in PLAN_READERS:
        return ScheduledVisit.objects.filter(municipality_id=user.municipality_id)
    if user.role == Role.OUTREACH_WORKER:
        return ScheduledVisit.objects.filter(
            municipality_id=user.municipality_id, partner_organization_id=user.partner_organization_id
        )
    return ScheduledVisit.objects.none()


def may_read_partner_schedule(user: User, partner: PartnerOrganization) -> bool:
    if user.role in PLAN_READERS:
        return True
    return user.role == Role.OUTREACH_WORKER and user.partner_organization_id == partner.pk


def visible_hearings(user: User) -> QuerySet[Hearing]:
    if user.role in PLAN_READERS:
        return Hearing.objects.filter(municipality_id=user.municipality_id)
    return Hearing.objects.none()


def visible_planning_jobs(user: User) -> QuerySet[PlanningJob]:
    if user.role in PLAN_READERS:
        return PlanningJob.objects.filter(municipality_id=user.municipality_id)
    return PlanningJob.objects.none()


def visible_workers(user: User) -> QuerySet[User]:
    """Outreach workers whose availability this user may read."""
    workers = User.objects.filter(municipality_id=user.municipality_id, role=Role.OUTREACH_WORKER)
    if user.role in PLAN_READERS:
        return workers
    if user.role == Role.OUTREACH_WORKER:
        return workers.filter(partner_organization_id=user.partner_organization_id)
    return workers.none()
