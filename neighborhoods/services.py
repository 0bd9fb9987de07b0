"""Writes about places and households. Spatial work happens in SQL."""

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F

from backend.errors import Conflict, InvalidInput
from backend.validation import full_clean_or_422
from backend.versioning import lock_at_version
from neighborhoods.models import Household, MatchLevel, Municipality, Neighborhood, Resident

# One set-based UPDATE: each household of the municipality gets the 自治会 whose boundary covers
# its point (GiST index on the boundary); a point on a shared edge goes to the lowest code, a point
# outside every 自治会 (or with no location) gets NULL and is listed, never dropped.
_ASSIGN_SQL = """
WITH target AS (
    SELECT h.id,
           (SELECT n.id FROM neighborhoods_neighborhood n
             WHERE n.municipality_id = h.municipality_id
               AND n.geom IS NOT NULL
               AND ST_Covers(n.geom, h.location)
             ORDER BY n.code
             LIMIT 1) AS neighborhood_id
      FROM neighborhoods_household h
     WHERE h.municipality_id = %(municipality)s {only}
)
UPDATE neighborhoods_household h
   SET neighborhood_id = target.neighborhood_id,
       version = h.version + 1,
       updated_at = now()
  FROM target
 WHERE h.id = target.id
   AND h.neighborhood_id IS DISTINCT FROM target.neighborhood_id
"""

_ASSIGN_RESOURCES_SQL = """
UPDATE neighborhoods_communityresource r
   SET neighborhood_id = (SELECT n.id FROM neighborhoods_neighborhood n
                           WHERE n.municipality_id = r.municipality_id AND n.geom IS NOT NULL
                             AND ST_Covers(n.geom, r.location) ORDER BY n.code LIMIT 1)
 WHERE r.municipality_id = %(municipality)s
"""


def refuse_merged(household: Household) -> None:
    """A household a coordinator merged into another (a duplicate) is kept as history only: what
    pointed at it moved to the survivor, and anything new belongs there too."""
    if household.merged_into_id is not None:
        raise Conflict(
            f"The household {household.external_id} was merged into another household; use that one.",
            code="household_merged", details={"merged_into": str(household.merged_into_id)},
        )


@dataclass(frozen=True)
class AssignmentResult:
    changed: int
    unassigned: int


def assign_households(*, municipality_id: int, household_ids: list | None = None) -> AssignmentResult:
    """Put every household (or only `household_ids`) in the 自治会 that contains it. Idempotent:
    a second run changes nothing."""
    only = "AND h.id = ANY(%(ids)s)" if household_ids is not None else ""
    params: dict[str, int | list[str]] = {"municipality": municipality_id, "ids": [str(i) for i in household_ids or []]}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_ASSIGN_SQL.format(only=only), params)
        changed = cursor.rowcount
        if household_ids is None:
            cursor.execute(_ASSIGN_RESOURCES_SQL, params)
    unassigned = Household.objects.filter(
        municipality_id=municipality_id, neighborhood__isnull=True, merged_into__isnull=True
    ).count()
    return AssignmentResult(changed=changed, unassigned=unassigned)


def queue_household_assignment(*, municipality_id: int) -> None:
    """Re-run the assignment in the background once the current transaction commits (boundaries
    changed). Safe to queue twice: the job is idempotent."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task(
            "neighborhoods.tasks.assign_households_task", municipality_id, task_name=f"assign-households-{municipality_id}"
        )
    )


# "Inside the municipality", with the data we have (a Municipality has no boundary of its own):
# within OUTSIDE_TOLERANCE_M of the convex hull of its 自治会. Households between 自治会, or in a
# valley no 自治会 covers, stay allowed (unassigned is a real state); a point in another town, at
# (0, 0) or with longitude and latitude swapped is refused. A municipality without boundaries
# yet cannot judge, and allows any point.
OUTSIDE_TOLERANCE_M = 2000
_INSIDE_SQL = """
SELECT count(*) = 0
       OR ST_DWithin(ST_ConvexHull(ST_Collect(ST_Envelope(geom)))::geography,
                     ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)
  FROM neighborhoods_neighborhood
 WHERE municipality_id = %s AND geom IS NOT NULL
"""


def check_inside_municipality(*, municipality_id: int, point) -> None:
    """422 outside_municipality when a household's point is not in its municipality."""
    if point is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(_INSIDE_SQL, [point.x, point.y, OUTSIDE_TOLERANCE_M, municipality_id])
        (inside,) = cursor.fetchone()
    if not inside:
        raise InvalidInput(
            f"The location [{point.x:.6f}, {point.y:.6f}] is outside the municipality "
            f"(more than {OUTSIDE_TOLERANCE_M} m from its 自治会).",
            code="outside_municipality", details=[{"loc": ["body", "location"], "msg": "outside the municipality"}],
        )


HOUSEHOLD_FIELDS = ("external_id", "address", "address_kana", "location", "status", "living_arrangement", "risk_flags")


@transaction.atomic
def create_household(*, municipality: Municipality, **fields) -> Household:
    unknown = set(fields) - set(HOUSEHOLD_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown household fields: {', '.join(sorted(unknown))}")
    if Household.objects.filter(municipality=municipality, external_id=fields.get("external_id")).exists():
        raise Conflict("A household with this external_id exists.", code="duplicate_external_id")
    household = Household(municipality=municipality, **fields)
    # A point a person gives is placed by hand; without one the address may place it (addresses app).
    household.match_level = MatchLevel.MANUAL if household.location is not None else MatchLevel.UNMATCHED
    full_clean_or_422(household)
    check_inside_municipality(municipality_id=municipality.pk, point=household.location)
    household.neighborhood = neighborhood_at(municipality_id=municipality.pk, point=household.location)
    household.save()
    return household


@transaction.atomic
def update_household(*, household: Household, base_version: int | None, changes: dict) -> Household:
    """Apply `changes`; with `base_version`, refuse (409) when someone changed it since."""
    unknown = set(changes) - set(HOUSEHOLD_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown household fields: {', '.join(sorted(unknown))}")
    locked = lock_at_version(Household, household.pk, base_version, "household")
    refuse_merged(locked)
    for name, value in changes.items():
        setattr(locked, name, value)
    full_clean_or_422(locked)
    fields = [*changes, "version", "updated_at"]
    if "location" in changes:
        locked.match_level = MatchLevel.MANUAL if locked.location is not None else MatchLevel.UNMATCHED
        fields.append("match_level")
        check_inside_municipality(municipality_id=locked.municipality_id, point=locked.location)
        locked.neighborhood = neighborhood_at(municipality_id=locked.municipality_id, point=locked.location)
        fields.append("neighborhood")
    locked.version = F("version") + 1
    locked.save(update_fields=fields)
    locked.refresh_from_db()
    return locked


def neighborhood_at(*, municipality_id: int, point) -> Neighborhood | None:
    """The 自治会 covering a point (lowest code on a shared edge), as the bulk assignment decides."""
    if point is None:
        return None
    return (
        Neighborhood.objects.filter(municipality_id=municipality_id, geom__covers=point).order_by("code").first()
    )


@transaction.atomic
def add_resident(*, household: Household, **fields) -> Resident:
    # Locked, so a merge running at the same moment cannot leave the new person behind.
    household = Household.objects.select_for_update().get(pk=household.pk)
    refuse_merged(household)
    resident = Resident(municipality_id=household.municipality_id, household=household, **fields)
    full_clean_or_422(resident)
    resident.save()
    return resident


@transaction.atomic
def update_resident(*, resident: Resident, base_version: int | None, changes: dict) -> Resident:
    locked = lock_at_version(Resident, resident.pk, base_version, "resident")
    refuse_merged(locked.household)
    for name, value in changes.items():
        setattr(locked, name, value)
    full_clean_or_422(locked)
    locked.version = F("version") + 1
    locked.save(update_fields=[*changes, "version", "updated_at"])
    locked.refresh_from_db()
    return locked
