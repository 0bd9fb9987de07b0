"""Possible duplicate households (same normalised address, similar kana name) and merging two."""

from uuid import UUID

from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import paginate

from accounts.access import municipality_id_of
from api.auth import AuthedRequest
from api.output import with_output_attrs
from audit.services import record_read
from neighborhoods import access, duplicates, merging
from neighborhoods.duplicates_schemas import (
    DuplicatePages,
    DuplicatePairOut,
    HouseholdMergeIn,
    HouseholdNotDuplicateIn,
)
from neighborhoods.models import Household
from neighborhoods.schemas import HouseholdDetailOut

router = Router(tags=["households"])


@router.get("/households/duplicates", response=list[DuplicatePairOut],
            summary="Possible duplicate households: same normalised address, similar name (coordinators, supervisors)",
            description="Served from a stored result: `as_of` says when it was computed, `stale` that households or "
                        "residents changed since (a refresh is queued: `refreshing`). A pair merged or judged distinct "
                        "leaves the list at once.")
@paginate(DuplicatePages)
def list_possible_duplicates(request: AuthedRequest):
    access.require_duplicate_reader(request.auth)
    return duplicates.read_possible_duplicates(municipality_id=municipality_id_of(request.auth))


def _household(request: AuthedRequest, household_id: UUID) -> Household:
    access.require_household_merger(request.auth)
    return get_object_or_404(access.visible_households(request.auth), pk=household_id)


@router.post("/households/{household_id}/merge", response=HouseholdDetailOut,
             summary="Merge this household into another (coordinators; audited): the other stays, with everything")
def merge_household(request: AuthedRequest, household_id: UUID, payload: HouseholdMergeIn):
    absorbed = _household(request, household_id)
    survivor = duplicates.household_in_municipality(
        municipality_id=absorbed.municipality_id, household_id=payload.into, loc=["body", "into"]
    )
    result = merging.merge_households(
        survivor=survivor, absorbed=absorbed, by=request.auth, survivor_version=payload.into_version,
        absorbed_version=payload.version, request=request,
    )
    household = get_object_or_404(Household.objects.select_related("neighborhood"), pk=result.survivor.pk)
    residents = list(household.residents.order_by("birth_year", "name"))
    record_read(request, household, basis=access.residents_basis(request.auth), detail={"residents": len(residents)})
    return with_output_attrs(household, residents_list=residents)


@router.post("/households/{household_id}/not-duplicate", response={204: None},
             summary="Judge two households distinct: the duplicate report stops pairing them (coordinators)")
def mark_not_duplicate(request: AuthedRequest, household_id: UUID, payload: HouseholdNotDuplicateIn):
    household = _household(request, household_id)
    duplicates.mark_not_duplicate(household=household, other_id=payload.other, by=request.auth, request=request)
    return Status(204, None)
