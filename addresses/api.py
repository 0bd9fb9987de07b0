"""Households whose address matched no reference entry: the list, placing one by hand, and how
the municipality's households were placed."""

from uuid import UUID

from django.shortcuts import get_object_or_404
from ninja import Router
from ninja.pagination import paginate

from addresses import access, services, summary
from addresses.schemas import (
    HouseholdPlacementIn,
    HouseholdPlacementOut,
    PlacementSummaryOut,
    UnplacedHouseholdOut,
)
from api.auth import AuthedRequest
from api.pagination import Paginated
from audit.services import record_change
from neighborhoods.models import MatchLevel

router = Router(tags=["households"])


@router.get("/households/unplaced", response=list[UnplacedHouseholdOut],
            summary="Households without a point (their address matched no reference; coordinators, supervisors)")
@paginate(Paginated)
def list_unplaced(request: AuthedRequest):
    access.require_placement_reader(request.auth)
    return (
        access.placeable_households(request.auth)
        .filter(location__isnull=True, match_level=MatchLevel.UNMATCHED)
        .order_by("external_id")
    )


@router.get("/households/placement-summary", response=PlacementSummaryOut,
            summary="Households by match level, and the reference points by level (coordinators, supervisors)")
def placement_summary(request: AuthedRequest):
    access.require_placement_reader(request.auth)
    return summary.placement_summary(request.auth)


@router.post("/households/{household_id}/placement", response=HouseholdPlacementOut,
             summary="Place a household by hand (coordinators): match level manual, 自治会 re-assigned")
def place_household(request: AuthedRequest, household_id: UUID, payload: HouseholdPlacementIn):
    access.require_placement_editor(request.auth)
    household = get_object_or_404(access.placeable_households(request.auth), pk=household_id)
    placed = services.place_household_by_hand(
        household=household, lon=payload.lon, lat=payload.lat, base_version=payload.version,
    )
    if placed.changed:
        record_change(
            request, placed.household, basis=f"role:{request.auth.role}",
            detail={"placement": "manual", "from": placed.before,
                    "to": {"location": [payload.lon, payload.lat], "neighborhood_id": placed.household.neighborhood_id}},
        )
    return placed.household
