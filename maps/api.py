"""Maps: coverage per 自治会 / area / district / corporation / campaign, the isolation layer, the
overdue list, vector tiles and GeoJSON of the small layers. Handlers check access (maps.access),
call a query, and shape the answer."""

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Path, Query, Router, Schema

from accounts.access import municipality_id_of
from api.auth import AuthedRequest
from api.geo import parse_bbox
from api.pagination import MAX_OFFSET
from maps import access, queries, services, tile_cache, tiles
from maps.schemas import (
    CoverageOut,
    GroupBy,
    Indicator,
    IsolationOut,
    MapConfigOut,
    MapOverdueOut,
    WeeklyOut,
)
from neighborhoods.models import ResourceType
from outreach import overdue as overdue_reader
from visits.access import visible_campaigns

router = Router(tags=["maps"])


def _campaign_ref(campaign) -> dict | None:
    if campaign is None:
        return None
    return {"id": campaign.pk, "name": campaign.name, "fiscal_year": campaign.fiscal_year, "status": campaign.status,
            "start_date": campaign.start_date, "end_date": campaign.end_date}


class GroupFilters(Schema):
    neighborhood: int | None = Field(None, description="Only this 自治会")
    daily_life_area: int | None = Field(None, description="Only this 日常生活圏域")
    district: int | None = Field(None, description="Only this 地区")
    partner: int | None = Field(None, description="Only the 自治会 allocated to this corporation")

    def checked(self, user) -> queries.CoverageFilter:
        access.check_filter_ids(
            user, neighborhood=self.neighborhood, daily_life_area=self.daily_life_area, district=self.district,
            partner=self.partner,
        )
        return queries.CoverageFilter(
            neighborhood=self.neighborhood, daily_life_area=self.daily_life_area, district=self.district,
            partner=self.partner,
        )


class CoverageQuery(GroupFilters):
    campaign: int | None = Field(None, description="Default: the current campaign (all of them for group_by=campaign)")
    group_by: GroupBy = "neighborhood"
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


@router.get("/coverage", response=CoverageOut, summary="Survey coverage per 自治会, area, district, corporation or campaign")
def coverage(request: AuthedRequest, q: Query[CoverageQuery]):
    user = request.auth
    filters = q.checked(user)
    if q.group_by == "campaign" and q.campaign is None:
        campaign, campaigns = None, list(visible_campaigns(user))
    else:
        campaign = access.campaign_for(user, q.campaign)
        campaigns = [campaign] if campaign else []
    states = services.ensure_fresh(campaigns)
    page = queries.read_coverage(
        municipality_id=municipality_id_of(user), campaign_ids=[c.pk for c in campaigns], group_by=q.group_by,
        filters=filters, limit=q.limit, offset=q.offset,
    )
    return {
        "campaign": _campaign_ref(campaign), "group_by": q.group_by, "snapshot": services.snapshot_summary(states),
        "totals": page.totals, "items": page.items, "count": page.count,
    }


class WeeklyQuery(GroupFilters):
    campaign: int | None = Field(None, description="Default: the current campaign")


@router.get("/coverage/weekly", response=WeeklyOut, summary="Finished households per ISO week, and cumulative coverage")
def coverage_weekly(request: AuthedRequest, q: Query[WeeklyQuery]):
    user = request.auth
    filters = q.checked(user)
    campaign = access.campaign_for(user, q.campaign)
    if campaign is None:
        return {"campaign": None, "snapshot": None, "in_scope": 0, "items": [], "count": 0}
    states = services.ensure_fresh([campaign])
    series = queries.read_weekly(campaign=campaign, filters=filters, today=timezone.localdate())
    return {"campaign": _campaign_ref(campaign), "snapshot": services.snapshot_summary(states), "in_scope": series["in_scope"],
            "items": series["items"], "count": len(series["items"])}


class IsolationQuery(Schema):
    months: int = Field(6, ge=1, le=120, description="No contact: no visit with outcome met within this many months")
    indicator: list[Indicator] = Field(
        default_factory=list, description="Households with all of these (repeat the parameter); none: at least one"
    )
    neighborhood: int | None = None
    bbox: str | None = Field(None, description="minLon,minLat,maxLon,maxLat")
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


@router.get("/isolation", response=IsolationOut, summary="Households with isolation indicators and the nearest resource")
def isolation(request: AuthedRequest, q: Query[IsolationQuery]):
    user = request.auth
    access.require_layer(user, "households")
    access.require_indicators(user, q.indicator)
    access.check_filter_ids(user, neighborhood=q.neighborhood)
    items, count, withheld = queries.read_isolation(
        user, months=q.months, indicators=q.indicator, neighborhood_id=q.neighborhood, bbox=parse_bbox(q.bbox),
        limit=q.limit, offset=q.offset, today=timezone.localdate(),
    )
    return {"months": q.months, "withheld": list(withheld), "items": items, "count": count}


class OverdueQuery(Schema):
    kind: str | None = Field(None, pattern="^(case|watch)$")
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


@router.get("/overdue", response=MapOverdueOut, summary="Open cases and 見守り past their due date (coordinators, supervisors)")
def overdue(request: AuthedRequest, q: Query[OverdueQuery]):
    municipality_id = access.require_overdue_reader(request.auth)
    items, count, capped = overdue_reader.page(
        overdue_reader.of_municipality(municipality_id, kind=q.kind), today=timezone.localdate(), limit=q.limit,
        offset=q.offset,
    )
    return {"items": items, "count": count, "count_capped": capped}


@router.get("/layers", response=MapConfigOut, summary="What the map page needs: layers for my role, campaigns, bounds")
def layers(request: AuthedRequest):
    user = request.auth
    campaigns = list(visible_campaigns(user).order_by("-start_date", "-pk"))
    current = access.current_campaign(visible_campaigns(user))
    withheld = list(access.withheld_indicators(user)) if access.may_see_households(user) else list(queries.INDICATORS)
    return {
        "role": user.role, "municipality": str(user.municipality),
        "bounds": queries.municipality_bounds(municipality_id_of(user), user_id=user.pk),
        "campaigns": [_campaign_ref(c) for c in campaigns], "current_campaign_id": current.pk if current else None,
        "layers": tiles.layer_info(user), "indicators": list(queries.INDICATORS), "withheld_indicators": withheld,
        "hexagon_min_count": access.HEXAGON_MIN_COUNT, "overdue": user.role in access.OVERDUE_READERS,
    }


def _conditional(request: HttpRequest, tag: str, content_type: str, build) -> HttpResponse:
    """304 when the client has this version; otherwise build the body. Private: per user."""
    if tiles.etag_matches(request.headers.get("If-None-Match"), tag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(build(), content_type=content_type)
    response["ETag"] = tag
    response["Cache-Control"] = tiles.CACHE_CONTROL
    response["Vary"] = "Authorization, Cookie"
    return response


class TileQuery(Schema):
    campaign: int | None = Field(None, description="neighborhoods, households: default the current campaign")
    months: int = Field(6, ge=1, le=120, description="households: the no-contact window")
    indicator: list[Indicator] = Field(default_factory=list, description="households: only those with all of these")


class TilePath(Schema):
    layer: str
    z: str
    x: str
    y: str


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", summary="A vector tile (Mapbox Vector Tile), from the tile cache or one ST_AsMVT query")
def tile(request: AuthedRequest, path: Path[TilePath], q: Query[TileQuery]):
    user = request.auth
    layer = tiles.layer_for(path.layer)
    z, x, y = tiles.parse_tile(path.z, path.x, path.y)
    access.require_layer(user, layer.name)
    if q.indicator:  # nothing to refuse otherwise (and a tile served from the cache builds no SQL)
        access.require_indicators(user, q.indicator)
    tiles.check_zoom(layer, z)
    req = tiles.TileRequest(
        user=user, layer=layer.name, z=z, x=x, y=y, campaign=q.campaign if layer.campaign else None,
        months=q.months, indicators=tuple(q.indicator), today=timezone.localdate(),
    )
    # The campaign shown (another municipality's: 404) is chosen by the statement that reads the
    # version, so a 304 and a tile from the cache are each one statement after the token check.
    if request.headers.get("If-None-Match"):
        # Revalidation reads the version only: a 304 touches neither the cache nor the tile's SQL.
        tag = tiles.etag(req)
        if tiles.etag_matches(request.headers.get("If-None-Match"), tag):
            return _conditional(request, tag, tiles.CONTENT_TYPE, bytes)
    body, tag = tile_cache.tile_with_etag(req, last=True)
    return _conditional(request, tag, tiles.CONTENT_TYPE, lambda: body)


class GeoJsonQuery(Schema):
    campaign: int | None = Field(None, description="Default: the current campaign")
    simplify: float = Field(0.0, ge=0, le=0.01, description="Simplification tolerance in degrees")
    bbox: str | None = Field(None, description="minLon,minLat,maxLon,maxLat: only the 自治会 meeting it (a map's view)")


@router.get("/neighborhoods.geojson", summary="自治会 with the campaign's coverage, as GeoJSON")
def neighborhoods_geojson(request: AuthedRequest, q: Query[GeoJsonQuery]):
    user = request.auth
    bbox = parse_bbox(q.bbox)
    chosen = access.campaign_for(user, q.campaign)
    cid = chosen.pk if chosen else None
    version = queries.data_version(("neighborhood", "coverage"), queries.VersionContext(
        municipality_id=municipality_id_of(user), user_id=user.pk, campaign_id=cid,
    ))
    options = f"c{cid};s{q.simplify};b{bbox}"
    tag = tiles.json_etag("neighborhoods", options, user, version)

    def build():
        return queries.neighborhoods_geojson(
            municipality_id=municipality_id_of(user), campaign_id=cid, tolerance=q.simplify, bbox=bbox,
        )

    if bbox is not None:  # a view: small, and as many as there are pans
        return _conditional(request, tag, "application/geo+json", build)
    return _conditional(request, tag, "application/geo+json", lambda: tile_cache.kept_answer(
        municipality_id=municipality_id_of(user), kind="map.geojson", basis=options, version=version, build=build,
    ))


@router.get("/resources.geojson", summary="Community resources (居場所・社会資源) as GeoJSON")
def resources_geojson(request: AuthedRequest, type: ResourceType | None = None):
    user = request.auth
    version = queries.data_version(("resource",), queries.VersionContext(
        municipality_id=municipality_id_of(user), user_id=user.pk,
    ))
    options = f"t{type or ''}"
    tag = tiles.json_etag("resources", options, user, version)
    return _conditional(request, tag, "application/geo+json", lambda: tile_cache.kept_answer(
        municipality_id=municipality_id_of(user), kind="res.geojson", basis=options, version=version,
        build=lambda: queries.resources_geojson(municipality_id=municipality_id_of(user), resource_type=type),
    ))
