"""Who may see and change campaigns, schedules and partner corporations. Decided here, once per
model; every endpoint goes through these functions.

- coordinator: everything of the municipality, and the only role that writes plans;
- supervisor: reads everything of the municipality (read-only);
- outreach_worker: their corporation's schedule (and their own), campaigns' metadata;
- commissioner, admin: campaigns' metadata and progress only (no household schedules, no visit
  records or their photos).

Writes from the field (sync push kinds, photos) are decided here too, so that the API and the sync
ask the same functions; the read-only supervisor may do none of them.
"""

from django.db.models import QuerySet

from accounts.access import is_read_only, municipality_id_of
from accounts.models import User
from accounts.roles import Role
from backend.errors import Forbidden
from neighborhoods.access import visible_households
from visits.models import (
    Campaign,
    EditConflict,
    Hearing,
    PartnerOrganization,
    PlanningJob,
    ScheduledVisit,
    VisitRecord,
)

PLAN_READERS = (Role.COORDINATOR, Role.SUPERVISOR)


def visible_partners(user: User) -> QuerySet[PartnerOrganization]:
    return PartnerOrganization.objects.filter(municipality_id=municipality_id_of(user))


def visible_campaigns(user: User) -> QuerySet[Campaign]:
    return Campaign.objects.filter(municipality_id=municipality_id_of(user))


def require_coordinator(user: User, action: str) -> None:
    """Only coordinators do this; `action` says what, in the refusal ("publish survey forms")."""
    if user.role != Role.COORDINATOR:
        raise Forbidden(f"Only coordinators {action}.")


def require_plan_reader(user: User) -> None:
    if user.role not in PLAN_READERS:
        raise Forbidden("Only coordinators and supervisors read this.")


def visible_scheduled_visits(user: User) -> QuerySet[ScheduledVisit]:
    """Coordinators and supervisors: every visit, of campaigns in any state (a draft's plan is
    reviewed before it starts). Workers: their corporation's visits of running (実施中) campaigns
    only: a campaign reaches the field when it is started, and leaves it when it is closed."""
    if user.role in PLAN_READERS:
        return ScheduledVisit.objects.filter(municipality_id=municipality_id_of(user))
    if user.role == Role.OUTREACH_WORKER:
        return ScheduledVisit.objects.filter(
            municipality_id=municipality_id_of(user), partner_organization_id=user.partner_organization_id,
            campaign__status=Campaign.Status.RUNNING,
        )
    return ScheduledVisit.objects.none()


def may_read_partner_schedule(user: User, partner: PartnerOrganization) -> bool:
    if user.role in PLAN_READERS:
        return True
    return user.role == Role.OUTREACH_WORKER and user.partner_organization_id == partner.pk


def visible_hearings(user: User) -> QuerySet[Hearing]:
    if user.role in PLAN_READERS:
        return Hearing.objects.filter(municipality_id=municipality_id_of(user))
    return Hearing.objects.none()


def visible_planning_jobs(user: User) -> QuerySet[PlanningJob]:
    if user.role in PLAN_READERS:
        return PlanningJob.objects.filter(municipality_id=municipality_id_of(user))
    return PlanningJob.objects.none()


def visible_workers(user: User) -> QuerySet[User]:
    """Outreach workers whose availability this user may read."""
    workers = User.objects.filter(municipality_id=municipality_id_of(user), role=Role.OUTREACH_WORKER)
    if user.role in PLAN_READERS:
        return workers
    if user.role == Role.OUTREACH_WORKER:
        return workers.filter(partner_organization_id=user.partner_organization_id)
    return workers.none()


# --- visit records, photos and the field sync -------------------------------------------------------

FIELD_RECORDERS = (Role.COORDINATOR, Role.OUTREACH_WORKER)


def visible_visit_records(user: User) -> QuerySet[VisitRecord]:
    """Visit records (and so their photos) of the households the user may see. They are the survey's
    record of a door (who answered, what was seen): the municipality's offices and the corporations
    that visit, not a 民生委員, who follows people through concerns and 見守り instead."""
    if user.role not in (Role.COORDINATOR, Role.SUPERVISOR, Role.OUTREACH_WORKER):
        return VisitRecord.objects.none()
    return VisitRecord.objects.filter(
        municipality_id=municipality_id_of(user), household__in=visible_households(user).values("pk")
    )


def may_attach_photo(user: User, visit_record: VisitRecord) -> bool:
    """A photo belongs to the record of the visit it was taken at: the worker who recorded that visit
    adds it (its tablet uploads after the record is synced), and coordinators, who run everything.
    Colleagues of the same corporation do not: a visit they made is a record of their own."""
    if user.role == Role.COORDINATOR:
        return True
    return user.role == Role.OUTREACH_WORKER and visit_record.worker_id == user.pk


def may_record_visits(user: User) -> bool:
    """visit.create (and corrections): outreach workers and coordinators."""
    return user.role in FIELD_RECORDERS


def may_edit_households_in_field(user: User) -> bool:
    """household.update from a tablet: outreach workers and coordinators."""
    return user.role in FIELD_RECORDERS


def may_register_device(user: User) -> bool:
    """A sync device is a write (a row tied to a token); the read-only supervisor registers none."""
    return not is_read_only(user)


def require_device_registrar(user: User) -> None:
    if not may_register_device(user):
        raise Forbidden("Supervisors have read-only access and do not sync devices.")


def may_push(user: User) -> bool:
    """Whether a push is considered at all; each kind then asks its own may_* function."""
    return not is_read_only(user)


def require_pusher(user: User) -> None:
    if not may_push(user):
        raise Forbidden("Supervisors have read-only access: nothing is pushed from their devices.")


# --- edit conflicts (household.update from a stale version) -----------------------------------------
# --- edit conflicts (編集の競合) ---------------------------------------------------------------------
# Both versions of the municipality's households, side by side: the offices that see every household
# read them, and coordinators, who edit households, decide them.


def visible_conflicts(user: User) -> QuerySet[EditConflict]:
    if user.role in PLAN_READERS:
        return EditConflict.objects.filter(municipality_id=municipality_id_of(user))
    return EditConflict.objects.none()


def require_conflict_reader(user: User) -> None:
    if user.role not in PLAN_READERS:
        raise Forbidden("Only coordinators and supervisors read edit conflicts (編集の競合).")


def require_conflict_resolver(user: User) -> None:
    if user.role != Role.COORDINATOR:
        raise Forbidden("Only coordinators resolve edit conflicts (編集の競合); supervisors read them.")
