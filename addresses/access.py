"""Who may see and place households without a point. Households are read through
neighborhoods.access (one place decides which households a user sees); this module decides who
may use the placement endpoints at all: coordinators and supervisors read, coordinators place.
The administrator sees no people data."""

from django.db.models import QuerySet

from accounts.models import User
from accounts.roles import Role
from backend.errors import Forbidden
from neighborhoods.access import visible_households
from neighborhoods.models import Household

PLACEMENT_READERS = frozenset({Role.COORDINATOR, Role.SUPERVISOR})


def require_placement_reader(user: User) -> None:
    if user.role not in PLACEMENT_READERS:
        raise Forbidden("Only coordinators and supervisors see how households were placed.")


def require_placement_editor(user: User) -> None:
    if user.role != Role.COORDINATOR:
        raise Forbidden("Only coordinators place households by hand.")


def placeable_households(user: User) -> QuerySet[Household]:
    """The households this user may see that are not merged into another."""
    return visible_households(user).filter(merged_into__isnull=True)
