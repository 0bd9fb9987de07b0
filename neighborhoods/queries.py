"""Read-side queries for places: counts and GeoJSON built in SQL."""

from dataclasses import dataclass, field

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import Count, F, Func, OuterRef, QuerySet, Sum
from django.db.models.functions import Coalesce

from backend.db import per_row
from neighborhoods.models import Household, Neighborhood


def with_household_counts(neighborhoods: QuerySet[Neighborhood]) -> QuerySet[Neighborhood]:
    """The 自治会 with `household_count` (households not merged into another), read from their
    tallies (HouseholdTally) rather than counted."""
    return neighborhoods.select_related("district", "daily_life_area").annotate(
        household_count=Coalesce(F("tally__households"), 0)
    )


def with_area_counts(areas: QuerySet, link: str, *, households: bool = False) -> QuerySet:
    """地区 or 日常生活圏域 (`link`: the 自治会's foreign key to them) with `neighborhood_count` and,
    with `households`, `household_count` (from the 自治会's tallies), each a correlated subquery:
    a list page computes them for its own rows only (after the LIMIT), where grouping every 自治会
    of a city by its area cost ten times what the town's did."""
    hoods = Neighborhood.objects.filter(**{link: OuterRef("pk")})
    counted = areas.annotate(neighborhood_count=per_row(hoods, link, Count("pk")))
    if households:
        counted = counted.annotate(household_count=per_row(hoods, link, Sum("tally__households")))
    return counted


def first_by_neighborhood(households: QuerySet[Household], neighborhoods: QuerySet, end: int) -> QuerySet[Household]:
    """`households` (ordered by external_id) narrowed to its first `end` rows: the first `end`
    external ids of each of `neighborhoods` (a queryset of their ids; each 自治会's are one range of
    the (municipality, 自治会, external_id) index), merged and cut to `end` without reading a row,
    then those rows by the (municipality, external_id) key. A worker's corporation has 60 自治会 of
    a city: their first page sorted every one of their 36,000 households (2.8x the town's 3
    自治会)."""
    firsts = households.filter(neighborhood_id=OuterRef("pk")).order_by("external_id").values("external_id")[:end]
    first_ids = (
        Neighborhood.objects.filter(pk__in=neighborhoods)
        .annotate(firsts=ArraySubquery(firsts)).values(first=Func(F("firsts"), function="unnest")).order_by("first")[:end]
    )
    return households.filter(external_id__in=first_ids).order_by("external_id")


def households_by_status(neighborhood: Neighborhood) -> dict[str, int]:
    rows = (
        Household.objects.filter(neighborhood=neighborhood).order_by().values("status").annotate(n=Count("pk"))
    )
    return {row["status"]: row["n"] for row in rows}


def area_m2(neighborhood: Neighborhood) -> float | None:
    if neighborhood.geom is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Area(geom::geography) FROM neighborhoods_neighborhood WHERE id = %s", [neighborhood.pk])
        return round(cursor.fetchone()[0], 1)


# --- the 自治会 as GeoJSON: one builder --------------------------------------------------------------


@dataclass(frozen=True)
class FeatureProperties:
    """A set of properties of a 自治会 feature: `pairs` are json_build_object arguments over the
    neighborhood `n` and what `joins` brings in (aliases of their own; named parameters in `params`)."""

    pairs: str
    joins: str = ""
    params: dict = field(default_factory=dict)


HOUSEHOLD_COUNTS = FeatureProperties(
    pairs="'kana', n.kana, 'district', d.name, 'daily_life_area', a.name, 'household_count', COALESCE(hc.households, 0)",
    joins="""
LEFT JOIN neighborhoods_district d ON d.id = n.district_id
LEFT JOIN neighborhoods_dailylifearea a ON a.id = n.daily_life_area_id
LEFT JOIN neighborhoods_householdtally hc ON hc.neighborhood_id = n.id""",
)

_FEATURE_COLLECTION_SQL = """
SELECT json_build_object(
  'type', 'FeatureCollection',
  'features', COALESCE(json_agg(json_build_object(
      'type', 'Feature',
      'id', n.id,
      'geometry', ST_AsGeoJSON(
          CASE WHEN %(tolerance)s > 0 THEN ST_Multi(ST_SimplifyPreserveTopology(n.geom, %(tolerance)s)) ELSE n.geom END,
          6)::json,
      'properties', json_build_object('id', n.id, 'code', n.code, 'name', n.name{pairs})
  ) ORDER BY n.code), '[]'::json)
)::text
FROM neighborhoods_neighborhood n{joins}
WHERE n.municipality_id = %(municipality)s AND n.geom IS NOT NULL{extra}
"""


def neighborhoods_feature_collection(
    *, municipality_id: int, properties: FeatureProperties = HOUSEHOLD_COUNTS, tolerance: float = 0.0,
    district_id: int | None = None, area_id: int | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> str:
    """The municipality's 自治会 as one GeoJSON FeatureCollection (geometry rounded to 6 decimals,
    simplified when `tolerance` > 0; ordered by code), built by one SQL statement (PostGIS does the
    geometry and the JSON). Each feature's properties are id, code, name, then `properties`: this
    app's household counts, or another app's set (the map's coverage). With `bbox` only the 自治会
    whose area meets it (a map's viewport: the answer stays the size of the view in a large city,
    and the spatial index finds it)."""
    extra = ""
    params: dict = {**properties.params, "municipality": municipality_id, "tolerance": tolerance}
    if district_id is not None:
        extra += " AND n.district_id = %(district)s"
        params["district"] = district_id
    if area_id is not None:
        extra += " AND n.daily_life_area_id = %(area)s"
        params["area"] = area_id
    if bbox is not None:
        extra += " AND n.geom && ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326)"
        params.update(zip(("west", "south", "east", "north"), bbox, strict=True))
    pairs = f", {properties.pairs}" if properties.pairs else ""
    sql = _FEATURE_COLLECTION_SQL.format(pairs=pairs, joins=properties.joins, extra=extra)
    with connection.cursor() as cursor:
        # As text: a json value would be parsed into Python objects and dumped again (at 3,000
        # 自治会, three times what PostgreSQL took to build it).
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
