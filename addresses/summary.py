"""How the municipality's households were placed (GET /households/placement-summary): households by
match level and reference points by level, read from the tallies the database keeps (migration
0002: a town of 1.8 million households is not counted per request). A reader who sees only part of
the town (none may read the summary today, addresses.access) is counted live, over what they see."""

from django.db.models import Count

from accounts.access import municipality_id_of
from accounts.models import User
from accounts.roles import Role
from addresses import access
from addresses.models import MatchLevelTally, ReferenceLevel, ReferenceLevelTally
from neighborhoods.models import MatchLevel

# The roles whose households are the whole municipality (neighborhoods.access.household_scope): the
# tally counts exactly what they see.
WHOLE_TOWN = frozenset({Role.COORDINATOR, Role.SUPERVISOR})


def placement_summary(user: User) -> dict[str, dict[str, int]]:
    municipality_id = municipality_id_of(user)
    if user.role in WHOLE_TOWN:
        levels = dict(MatchLevelTally.objects.filter(municipality_id=municipality_id)
                      .values_list("match_level", "households"))
    else:
        levels = dict(access.placeable_households(user).values_list("match_level").annotate(n=Count("pk"))
                      .values_list("match_level", "n"))
    households = {level: levels.get(level, 0) for level in MatchLevel.values}
    references = dict(ReferenceLevelTally.objects.filter(municipality_id=municipality_id).values_list("level", "points"))
    return {
        "households": {**households, "total": sum(households.values())},
        "references": {level: references.get(level, 0) for level in ReferenceLevel.values},
    }
