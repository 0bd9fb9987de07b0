"""Who may see which places and households. Decided here, once per model; every endpoint,
export and job that acts for a user goes through these functions.

- coordinator, supervisor: the whole municipality; admin: places and users, no households;
- outreach_worker: the households of the 自治会 allocated to their partner corporation;
- commissioner (民生委員): the households of their own 自治会.
"""

from django.db.models import Q, QuerySet

from accounts.access import municipality_id_of
from accounts.models import User
from accounts.roles import Role
from backend.errors import Forbidden
from neighborhoods.models import CommunityResource, DailyLifeArea, District, Household, Neighborhood, Resident


def visible_districts(user: User) -> QuerySet[District]:
    return District.objects.filter(municipality_id=municipality_id_of(user))


def visible_daily_life_areas(user: User) -> QuerySet[DailyLifeArea]:
    return DailyLifeArea.objects.filter(municipality_id=municipality_id_of(user))


def visible_neighborhoods(user: User) -> QuerySet[Neighborhood]:
    """Boundaries and names of 自治会 are not personal data: everyone in the municipality sees them."""
    return Neighborhood.objects.filter(municipality_id=municipality_id_of(user))


def household_scope(user: User) -> Q:
    """The condition on households this user may see (also used in SQL-level joins). The system
    administrator manages users and places, not people: no households."""
    if user.role in (Role.COORDINATOR, Role.SUPERVISOR):
        return Q(municipality_id=municipality_id_of(user))
    if user.role == Role.OUTREACH_WORKER:
        return Q(municipality_id=municipality_id_of(user), neighborhood_id__in=_allocated_neighborhoods(user))
    if user.role == Role.COMMISSIONER:
        return Q(municipality_id=municipality_id_of(user), neighborhood_id__in=commissioned_neighborhoods(user))
    return Q(pk__in=[])


def _allocated_neighborhoods(user: User) -> QuerySet:
    from visits.models import Allocation

    return (
        Allocation.objects.filter(
            municipality_id=municipality_id_of(user), partner_organization_id=user.partner_organization_id,
            campaign__status="running",
        )
        .values("neighborhood_id")
    )


def commissioned_neighborhoods(user: User) -> QuerySet:
    """The ids of a 民生委員's own 自治会, as a subquery: `neighborhood_id IN (…)` reads their part
    of the town by its index, where a join through the 自治会's commissioners made a list OR-ed with
    it (their own concerns) join every row of the town and then drop the duplicates."""
    return User.neighborhoods.through.objects.filter(user_id=user.pk).values("neighborhood_id")


def scope_neighborhoods(user: User) -> QuerySet | None:
    """The ids of the 自治会 a user's households are confined to (household_scope), as a subquery;
    None for a user who sees the whole municipality's or none."""
    if user.role == Role.OUTREACH_WORKER:
        return _allocated_neighborhoods(user)
    if user.role == Role.COMMISSIONER:
        return commissioned_neighborhoods(user)
    return None


def visible_households(user: User) -> QuerySet[Household]:
    return Household.objects.filter(household_scope(user))


def visible_residents(user: User) -> QuerySet[Resident]:
    """Residents (要配慮個人情報) of the households the user may see; every read is audited."""
    return Resident.objects.filter(household__in=visible_households(user).values("pk"))


def residents_basis(user: User) -> str:
    """Why this user may read residents: recorded in the audit log with each read."""
    if user.role == Role.OUTREACH_WORKER:
        return f"allocation:partner_organization={user.partner_organization_id}"
    if user.role == Role.COMMISSIONER:
        return "commissioner:own_neighborhood"
    return f"role:{user.role}"


def require_household_editor(user: User) -> None:
    if user.role != Role.COORDINATOR:
        raise Forbidden("Only coordinators create and edit households and residents.")


def require_duplicate_reader(user: User) -> None:
    """The duplicate report: coordinators, and supervisors read-only (they see every household)."""
    if user.role not in (Role.COORDINATOR, Role.SUPERVISOR):
        raise Forbidden("Only coordinators and supervisors see possible duplicate households.")


def require_household_merger(user: User) -> None:
    """Merging two households, or judging them distinct: coordinators only."""
    if user.role != Role.COORDINATOR:
        raise Forbidden("Only coordinators merge households or judge them distinct.")


def visible_resources(user: User) -> QuerySet[CommunityResource]:
    return CommunityResource.objects.filter(municipality_id=municipality_id_of(user))
