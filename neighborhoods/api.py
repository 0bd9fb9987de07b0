"""Places and households: districts, daily-life areas, 自治会, households, residents, resources."""

from uuid import UUID

from django.contrib.gis.geos import Polygon
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from accounts.access import municipality_id_of, municipality_of
from api.auth import AuthedRequest
from api.geo import geometry_out, parse_bbox
from api.output import with_output_attrs
from api.pagination import Paginated, Windowed
from audit.services import record_read
from neighborhoods import access, queries, services
from neighborhoods.models import Household, HouseholdStatus, Resident, ResourceType, RiskFlag
from neighborhoods.schemas import (
    DailyLifeAreaOut,
    DistrictOut,
    HouseholdDetailOut,
    HouseholdIn,
    HouseholdOut,
    HouseholdPatch,
    NeighborhoodDetailOut,
    NeighborhoodOut,
    ResidentIn,
    ResidentOut,
    ResidentPatch,
    ResourceOut,
)

router = Router(tags=["places"])


@router.get("/districts", response=list[DistrictOut], summary="地区")
@paginate(Paginated)
def list_districts(request: AuthedRequest):
    return queries.with_area_counts(access.visible_districts(request.auth), "district").order_by("name", "pk")


@router.get("/daily-life-areas", response=list[DailyLifeAreaOut], summary="日常生活圏域")
@paginate(Paginated)
def list_daily_life_areas(request: AuthedRequest):
    return queries.with_area_counts(
        access.visible_daily_life_areas(request.auth), "daily_life_area", households=True,
    ).order_by("name", "pk")


class NeighborhoodFilter(Schema):
    district: int | None = None
    daily_life_area: int | None = None
    q: str | None = None


@router.get("/neighborhoods", response=list[NeighborhoodOut], summary="自治会")
@paginate(Paginated)
def list_neighborhoods(request: AuthedRequest, filters: Query[NeighborhoodFilter]):
    hoods = queries.with_household_counts(access.visible_neighborhoods(request.auth))
    if filters.district:
        hoods = hoods.filter(district_id=filters.district)
    if filters.daily_life_area:
        hoods = hoods.filter(daily_life_area_id=filters.daily_life_area)
    if filters.q:
        hoods = hoods.filter(Q(name__icontains=filters.q) | Q(kana__icontains=filters.q) | Q(code=filters.q))
    return hoods.order_by("code")


@router.get("/neighborhoods.geojson", summary="自治会 as a GeoJSON FeatureCollection with household counts")
def neighborhoods_geojson(
    request: AuthedRequest, simplify: float = 0.0, district: int | None = None, daily_life_area: int | None = None,
    bbox: str | None = None,
):
    """`bbox` (minLon,minLat,maxLon,maxLat) keeps the 自治会 that meet it: a map asks for its view."""
    box = parse_bbox(bbox)
    municipality_id = municipality_id_of(request.auth)
    tolerance = max(0.0, min(simplify, 0.01))

    def build() -> str:
        return queries.neighborhoods_feature_collection(
            municipality_id=municipality_id, tolerance=tolerance, district_id=district, area_id=daily_life_area, bbox=box,
        )

    if box is not None:  # a view: small, and as many as there are pans
        return HttpResponse(build(), content_type="application/geo+json")
    # The whole town (or a 地区, an area): kept while its 自治会, their household counts and the names
    # of their areas hold (maps.tile_cache.kept_answer). The same for every reader of the municipality.
    from maps.queries import VersionContext, data_version
    from maps.tile_cache import kept_answer

    version = data_version(("neighborhood", "household", "district", "daily_life_area"),
                           VersionContext(municipality_id=municipality_id, user_id=request.auth.pk))
    body = kept_answer(municipality_id=municipality_id, kind="nbh.geojson", basis=f"s{tolerance};d{district};a{daily_life_area}",
                       version=version, build=build)
    return HttpResponse(body, content_type="application/geo+json")


@router.get("/neighborhoods/{neighborhood_id}", response=NeighborhoodDetailOut, summary="One 自治会")
def get_neighborhood(request: AuthedRequest, neighborhood_id: int):
    hood = get_object_or_404(queries.with_household_counts(access.visible_neighborhoods(request.auth)), pk=neighborhood_id)
    return with_output_attrs(
        hood,
        households_by_status=queries.households_by_status(hood),
        area_m2=queries.area_m2(hood),
        geometry=geometry_out(hood.geom),
    )


class HouseholdFilter(Schema):
    neighborhood: int | None = None
    unassigned: bool = False
    bbox: str | None = None
    q: str | None = None
    status: HouseholdStatus | None = None
    risk_flag: RiskFlag | None = None


@router.get("/households", response=list[HouseholdOut], summary="Households (paginated; bbox, 自治会 and text filters)")
@paginate(Paginated)
def list_households(request: AuthedRequest, filters: Query[HouseholdFilter]):
    # A household merged into another is history: readable by its id, no longer listed.
    households = access.visible_households(request.auth).filter(merged_into__isnull=True)
    if filters.neighborhood:
        households = households.filter(neighborhood_id=filters.neighborhood)
    if filters.unassigned:
        households = households.filter(neighborhood__isnull=True)
    bbox = parse_bbox(filters.bbox)
    if bbox:
        box = Polygon.from_bbox(bbox)
        # && (LEAKPROOF) lets the spatial index serve the filter under row-level security.
        households = households.filter(location__bboverlaps=box, location__intersects=box)
    if filters.q:
        households = households.filter(Q(address__icontains=filters.q) | Q(address_kana__icontains=filters.q))
    if filters.status:
        households = households.filter(status=filters.status)
    if filters.risk_flag:
        households = households.filter(risk_flags__contains=[filters.risk_flag])
    households = households.order_by("external_id")
    confined = access.scope_neighborhoods(request.auth)
    if confined is not None and not filters.neighborhood and not filters.unassigned:
        return Windowed(households, lambda end: queries.first_by_neighborhood(households, confined, end))
    return households


def _household_detail(request: AuthedRequest, household: Household) -> Household:
    residents = list(household.residents.order_by("birth_year", "name"))
    with_output_attrs(household, residents_list=residents)
    record_read(
        request, household, basis=access.residents_basis(request.auth),
        detail={"residents": len(residents)},
    )
    return household


@router.get("/households/{household_id}", response=HouseholdDetailOut, summary="A household with its residents (audited)")
def get_household(request: AuthedRequest, household_id: UUID):
    household = get_object_or_404(access.visible_households(request.auth).select_related("neighborhood"), pk=household_id)
    return _household_detail(request, household)


@router.post("/households", response={201: HouseholdDetailOut}, summary="Create a household (coordinators)")
def create_household(request: AuthedRequest, payload: HouseholdIn):
    access.require_household_editor(request.auth)
    data = payload.model_dump()
    data["location"] = payload.location.to_geos() if payload.location else None
    data["living_arrangement"] = data["living_arrangement"] or ""
    household = services.create_household(municipality=municipality_of(request.auth), **data)
    return Status(201, _household_detail(request, household))


@router.patch("/households/{household_id}", response=HouseholdDetailOut, summary="Edit a household (coordinators)")
def update_household(request: AuthedRequest, household_id: UUID, payload: HouseholdPatch):
    access.require_household_editor(request.auth)
    household = get_object_or_404(access.visible_households(request.auth), pk=household_id)
    changes = payload.model_dump(exclude_unset=True, exclude={"version"})
    if "location" in changes:
        changes["location"] = payload.location.to_geos() if payload.location else None
    if "living_arrangement" in changes:
        changes["living_arrangement"] = changes["living_arrangement"] or ""
    household = services.update_household(household=household, base_version=payload.version, changes=changes)
    return _household_detail(request, household)


@router.post("/households/{household_id}/residents", response={201: ResidentOut}, summary="Add a resident (coordinators)")
def add_resident(request: AuthedRequest, household_id: UUID, payload: ResidentIn):
    access.require_household_editor(request.auth)
    household = get_object_or_404(access.visible_households(request.auth), pk=household_id)
    data = payload.model_dump()
    data["age_band"] = data["age_band"] or ""
    return Status(201, services.add_resident(household=household, **data))


@router.patch("/residents/{resident_id}", response=ResidentOut, summary="Edit a resident (coordinators)")
def update_resident(request: AuthedRequest, resident_id: UUID, payload: ResidentPatch):
    access.require_household_editor(request.auth)
    resident: Resident = get_object_or_404(access.visible_residents(request.auth), pk=resident_id)
    changes = payload.model_dump(exclude_unset=True, exclude={"version"})
    if "age_band" in changes:
        changes["age_band"] = changes["age_band"] or ""
    return services.update_resident(resident=resident, base_version=payload.version, changes=changes)


class ResourceFilter(Schema):
    type: ResourceType | None = None
    neighborhood: int | None = None
    bbox: str | None = None


@router.get("/resources", response=list[ResourceOut], summary="Community resources (居場所・社会資源)")
@paginate(Paginated)
def list_resources(request: AuthedRequest, filters: Query[ResourceFilter]):
    resources = access.visible_resources(request.auth)
    if filters.type:
        resources = resources.filter(type=filters.type)
    if filters.neighborhood:
        resources = resources.filter(neighborhood_id=filters.neighborhood)
    bbox = parse_bbox(filters.bbox)
    if bbox:
        box = Polygon.from_bbox(bbox)
        resources = resources.filter(location__bboverlaps=box, location__intersects=box)
    return resources.order_by("name")


@router.get("/resources/{resource_id}", response=ResourceOut, summary="One community resource")
def get_resource(request: AuthedRequest, resource_id: int):
    return get_object_or_404(access.visible_resources(request.auth), pk=resource_id)
