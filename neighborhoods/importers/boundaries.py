"""Import 自治会 boundaries for one municipality from a GIS file (GeoJSON, Shapefile, GeoPackage).

Four steps, all or nothing:
1. read: GDAL opens the file, every feature is checked and reprojected to EPSG:4326 (lon/lat);
   every problem of every feature is collected before anything is written;
2. repair: PostGIS checks validity and repairs invalid rings (ST_MakeValid, polygonal parts only);
3. write: 自治会 are created or updated in place by code, 地区 and 日常生活圏域 found or created by name;
4. report: overlaps and gaps between the municipality's 自治会, computed in SQL after the write.

A dry run does all four and rolls back.
"""

import codecs
import ctypes
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from django.contrib.gis.gdal import CoordTransform, DataSource, GDALException, OGRGeometry, SpatialReference
from django.contrib.gis.gdal.feature import Feature
from django.contrib.gis.gdal.layer import Layer
from django.contrib.gis.gdal.libgdal import lgdal
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import connection, transaction
from django.utils import timezone

from backend.errors import InvalidInput
from neighborhoods.models import DailyLifeArea, District, Municipality, Neighborhood
from neighborhoods.services import queue_household_assignment

WGS84 = 4326
DEFAULT_OVERLAP_M2 = 1.0
DEFAULT_GAP_M2 = 100.0
# Two boundaries are the same when no vertex moved more than this (about 0.1 mm): re-reading the
# same file gives bit-identical coordinates, so this only absorbs float noise, never a real edit.
_SAME_GEOMETRY_DEGREES = 1e-9
_POLYGON, _MULTIPOLYGON = 3, 6  # OGR geometry type numbers
_MAX_LENGTH = {
    "code": Neighborhood._meta.get_field("code").max_length,
    "name": Neighborhood._meta.get_field("name").max_length,
    "kana": Neighborhood._meta.get_field("kana").max_length,
    "district": District._meta.get_field("name").max_length,
    "area": DailyLifeArea._meta.get_field("name").max_length,
}


class BoundaryFileError(InvalidInput):
    """The file cannot be imported. `problems` lists every problem found, one line each."""

    code = "invalid_boundary_file"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} problems; nothing was imported:\n" + "\n".join(problems)
        super().__init__(message, details={"problems": problems})


@dataclass(frozen=True)
class FieldNames:
    """Which attribute of the file holds what. code and name are required; a missing kana,
    district or area field leaves that attribute alone."""

    code: str = "code"
    name: str = "name"
    kana: str = "kana"
    district: str = "district"
    area: str = "area"


@dataclass(frozen=True)
class RepairedFeature:
    number: int
    code: str
    reason: str


@dataclass(frozen=True)
class Overlap:
    code_a: str
    code_b: str
    area_m2: float


@dataclass(frozen=True)
class Gap:
    area_m2: float
    lon: float
    lat: float
    around: tuple[str, ...]  # codes of the 自治会 that touch the gap


@dataclass
class BoundaryImportResult:
    file: str
    layer: str
    source_srs: str
    municipality_code: str
    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)
    districts_created: list[str] = field(default_factory=list)
    areas_created: list[str] = field(default_factory=list)
    repaired: list[RepairedFeature] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_warnings(self) -> bool:
        return bool(self.repaired or self.overlaps or self.gaps)


@dataclass
class _Feature:
    """One checked feature. kana/district/area are None when the file has no such field."""

    number: int
    code: str
    name: str
    kana: str | None
    district: str | None
    area: str | None
    wkb: bytes = b""  # EPSG:4326, x = longitude
    geom: MultiPolygon | None = None  # after the PostGIS check/repair


def import_boundaries(
    path: str | Path,
    *,
    municipality: Municipality,
    layer: str | None = None,
    fields: FieldNames = FieldNames(),  # frozen, so one shared default is safe
    srid: int | None = None,
    encoding: str | None = None,
    overlap_threshold: float = DEFAULT_OVERLAP_M2,
    gap_threshold: float = DEFAULT_GAP_M2,
    dry_run: bool = False,
) -> BoundaryImportResult:
    """Create or update the municipality's 自治会 from `path`. Raises BoundaryFileError (nothing
    written) when any feature is unusable; overlaps, gaps and repairs are warnings in the result."""
    path = Path(path)
    source = _read(path, layer_name=layer, fields=fields, srid=srid, encoding=encoding)
    features = source.features
    repaired, repair_problems = _check_and_repair(features)
    _refuse_problems(path.name, source.problems + repair_problems)
    result = BoundaryImportResult(
        file=path.name, layer=source.layer, source_srs=source.srs, municipality_code=municipality.code,
        dry_run=dry_run, repaired=repaired, notes=source.notes,
    )

    with transaction.atomic():
        # One import per municipality at a time: a second one waits instead of interleaving.
        Municipality.objects.select_for_update().get(pk=municipality.pk)
        _write(municipality, features, result)
        result.overlaps = find_overlaps(municipality_id=municipality.pk, threshold_m2=overlap_threshold)
        result.gaps = find_gaps(municipality_id=municipality.pk, threshold_m2=gap_threshold)
        if dry_run:
            transaction.set_rollback(True)
        elif result.created or result.updated:
            queue_household_assignment(municipality_id=municipality.pk)
    return result


# --- 1. read -------------------------------------------------------------------------------------


# (feature number, what is wrong with it)
_Problem = tuple[int, str]


@dataclass
class _Source:
    features: list[_Feature]  # the usable ones
    problems: list[_Problem]  # of the others
    layer: str
    srs: str
    notes: list[str]


def _refuse_problems(label: str, problems: list[_Problem]) -> None:
    """All or nothing: every problem of every feature, in file order, before anything is written."""
    if problems:
        ordered = sorted(problems, key=lambda problem: problem[0])  # stable: keeps each feature's own order
        raise BoundaryFileError([f"{label}: feature {number}: {text}" for number, text in ordered])


def _read(
    path: Path, *, layer_name: str | None, fields: FieldNames, srid: int | None, encoding: str | None
) -> _Source:
    label = path.name
    if not path.exists():
        raise BoundaryFileError([f"{label}: no such file"])
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise BoundaryFileError([f"{label}: unknown encoding {encoding!r}"]) from None
    # With an explicit encoding GDAL must hand over the bytes untouched (no .cpg recoding); Django's
    # DataSource then decodes them with Python's codec. SHAPE_ENCODING only concerns Shapefiles.
    with _gdal_config("SHAPE_ENCODING", "" if encoding else None):
        try:
            source = DataSource(str(path), encoding=encoding or "utf-8")
        except GDALException:
            raise BoundaryFileError(
                [f"{label}: GDAL cannot read it (expected GeoJSON, Shapefile or GeoPackage)"]
            ) from None
        notes: list[str] = []
        if encoding and source.driver.name != "ESRI Shapefile":
            source.encoding = "utf-8"  # GeoJSON and GeoPackage text is UTF-8 by definition
            notes.append(f"--encoding applies to Shapefiles only; {source.driver.name} text is read as UTF-8")
        layer = _layer(source, layer_name, label)
        srs = _source_srs(layer, srid, label)
        columns = _columns(layer, fields, label, notes)
        transform = _transform_to_wgs84(srs, label)
        features, problems = _read_features(layer, columns, transform, encoding)
        if not features and not problems:
            raise BoundaryFileError([f"{label}: layer {layer.name!r} has no features"])
        return _Source(features=features, problems=problems, layer=layer.name, srs=_describe(srs), notes=notes)


@contextmanager
def _gdal_config(key: str, value: str | None) -> Iterator[None]:
    """Set a GDAL configuration option for this thread while reading, then restore it. Django's
    GDAL wrapper has no config API, and os.environ would leak into other threads."""
    if value is None:
        yield
        return
    # lgdal[...] makes a fresh function object, so these argtypes stay private to this module.
    get_option = lgdal["CPLGetThreadLocalConfigOption"]
    get_option.argtypes, get_option.restype = [ctypes.c_char_p, ctypes.c_char_p], ctypes.c_char_p
    set_option = lgdal["CPLSetThreadLocalConfigOption"]
    set_option.argtypes, set_option.restype = [ctypes.c_char_p, ctypes.c_char_p], None
    previous = get_option(key.encode(), None)
    set_option(key.encode(), value.encode())
    try:
        yield
    finally:
        set_option(key.encode(), previous)


def _layer(source: DataSource, name: str | None, label: str) -> Layer:
    names = [layer.name for layer in source]  # type: ignore[attr-defined]  # iterates by __getitem__; the stubs have no __iter__
    if not names:
        raise BoundaryFileError([f"{label}: the file has no layers"])
    if name is None:
        return source[0]
    if name not in names:
        raise BoundaryFileError([f"{label}: no layer {name!r}; layers: {', '.join(names)}"])
    return source[name]


def _source_srs(layer: Layer, srid: int | None, label: str) -> SpatialReference:
    """--srid wins over the file (a .prj can be wrong); otherwise the layer's own SRS, which GDAL
    reads from ESRI .prj WKT too, with or without an EPSG code."""
    if srid is not None:
        try:
            return SpatialReference(srid)
        except GDALException:
            raise BoundaryFileError([f"--srid {srid}: unknown spatial reference system"]) from None
    srs = layer.srs
    if srs is None:
        raise BoundaryFileError(
            [f"{label}: the layer has no spatial reference system (a Shapefile without .prj?); "
             "pass --srid, e.g. --srid 6673 for 平面直角座標系第V系"]
        )
    return srs


def _transform_to_wgs84(srs: SpatialReference, label: str) -> CoordTransform | None:
    """GDAL's transform, with both ends in traditional GIS order (x = longitude): Django's
    SpatialReference sets that axis strategy, so EPSG:4326/6668 never come out as lat/lon."""
    if srs.srid == WGS84:
        return None
    try:
        return CoordTransform(srs, SpatialReference(WGS84))
    except GDALException:
        raise BoundaryFileError([f"{label}: cannot reproject from {_describe(srs)} to EPSG:4326"]) from None


def _describe(srs: SpatialReference) -> str:
    return f"EPSG:{srs.srid} {srs.name}" if srs.srid else f"{srs.name} (no EPSG code)"


class _Column(NamedTuple):
    # Fields are read by position: Django looks names up as UTF-8 bytes, which misses a
    # Japanese field name when GDAL hands over raw CP932 (--encoding).
    position: int  # (not `index`: that is tuple.index)
    name: str


def _columns(layer: Layer, fields: FieldNames, label: str, notes: list[str]) -> dict[str, _Column | None]:
    """Map each attribute to the layer's field. DBF field names are often upper case (CODE), so an
    exact match is preferred and a case-insensitive one accepted."""
    available = list(layer.fields)
    exact = {name: index for index, name in enumerate(available)}
    by_lower = {name.lower(): index for index, name in reversed(list(enumerate(available)))}
    columns: dict[str, _Column | None] = {}
    problems = []
    for attr in ("code", "name", "kana", "district", "area"):
        wanted = getattr(fields, attr)
        index = exact.get(wanted, by_lower.get(wanted.lower()))
        columns[attr] = None if index is None else _Column(index, available[index])
        if index is not None:
            continue
        if attr in ("code", "name"):
            problems.append(
                f"{label}: layer {layer.name!r} has no field {wanted!r} for the {attr} "
                f"(fields: {', '.join(available) or 'none'}); use --{attr}-field"
            )
        else:
            notes.append(f"no field {wanted!r} in the file: {attr} not imported")
    if problems:
        raise BoundaryFileError(problems)
    return columns


def _read_features(
    layer: Layer, columns: dict[str, _Column | None], transform: CoordTransform | None, encoding: str | None
) -> tuple[list[_Feature], list[_Problem]]:
    features: list[_Feature] = []
    problems: list[_Problem] = []
    first_use: dict[str, int] = {}
    for number, feature in enumerate(layer, start=1):
        values, feature_problems = _attributes(feature, columns, encoding)
        wkb, geometry_problem = _geometry(feature, transform)
        if geometry_problem:
            feature_problems.append(geometry_problem)
        code = values["code"] or ""
        if code and code in first_use:
            feature_problems.append(f"code {code} is also used by feature {first_use[code]}")
        first_use.setdefault(code, number)
        problems += [(number, text) for text in feature_problems]
        if not feature_problems:
            features.append(
                _Feature(
                    number=number, code=code, name=values["name"] or "", kana=values["kana"],
                    district=values["district"], area=values["area"], wkb=wkb,
                )
            )
    return features, problems


def _attributes(
    feature: Feature, columns: dict[str, _Column | None], encoding: str | None
) -> tuple[dict[str, str | None], list[str]]:
    values: dict[str, str | None] = {}
    problems: list[str] = []
    for attr, column in columns.items():
        if column is None:
            values[attr] = None
            continue
        try:
            text = _text(feature[column.position].value)
        except UnicodeDecodeError:
            values[attr] = None
            hint = (
                f"cannot be decoded as {encoding}" if encoding
                else "is not UTF-8 text; pass --encoding (cp932 is common in Japanese exports)"
            )
            problems.append(f"{attr} ({column.name}) {hint}")
            continue
        values[attr] = text
        limit = _MAX_LENGTH[attr]
        if limit is not None and len(text) > limit:
            problems.append(f"{attr} is longer than {limit} characters")
        elif not text and attr in ("code", "name"):
            problems.append(f"{attr} is empty")
    return values, problems


def _text(value: Any) -> str:
    """Attribute values as text. Codes typed as numbers (12 or 12.0) keep their digits only."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _geometry(feature: Feature, transform: CoordTransform | None) -> tuple[bytes, str | None]:
    """The feature's polygon as 2D WKB in EPSG:4326, or the reason it is unusable."""
    try:
        geom: OGRGeometry = feature.geom
    except GDALException:  # Django raises on a NULL geometry pointer
        return b"", "geometry is missing"
    if geom.empty:
        return b"", "geometry is empty"
    if geom.has_curve:  # GeoPackage may hold CurvePolygon / MultiSurface
        geom = geom.get_linear_geometry()
    # Boundaries are 2D; Z or M values from CAD/survey exports carry nothing we keep.
    geom.set_3d(False)
    geom.set_measured(False)
    if geom.geom_type.num not in (_POLYGON, _MULTIPOLYGON):
        return b"", f"geometry is a {geom.geom_type.name}, not a Polygon or MultiPolygon"
    geom.close_rings()
    if _has_short_ring(geom):
        return b"", "geometry has a ring with fewer than 4 points"
    if transform is not None:
        try:
            geom.transform(transform)
        except GDALException:
            return b"", "geometry cannot be reprojected to EPSG:4326"
    xmin, ymin, xmax, ymax = geom.extent
    # Also catches NaN, and a file whose SRS is wrong (metres read as degrees).
    if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
        return b"", "coordinates are not longitude/latitude after reprojection (wrong --srid?)"
    return bytes(geom.wkb), None


def _has_short_ring(geom: OGRGeometry) -> bool:
    # OGR geometries iterate by __getitem__ (a MultiPolygon its polygons, a Polygon its rings); the
    # stubs declare no __iter__.
    polygons: list[OGRGeometry] = list(geom) if geom.geom_type.num == _MULTIPOLYGON else [geom]  # type: ignore[call-overload]
    return any(ring.point_count < 4 for polygon in polygons for ring in polygon)  # type: ignore[attr-defined]


# --- 2. check and repair -------------------------------------------------------------------------

# Every geometry in one statement. An invalid one is repaired with ST_MakeValid and only its
# polygonal parts are kept (a bow-tie becomes two triangles; stray lines/points are dropped).
_REPAIR_SQL = """
WITH source AS (
    SELECT t.n, ST_GeomFromWKB(t.w, 4326) AS g
      FROM unnest(%(numbers)s::int[], %(wkbs)s::bytea[]) AS t(n, w)
), checked AS (
    SELECT n, g, ST_IsValid(g) AS valid FROM source
)
SELECT n,
       CASE WHEN valid THEN NULL ELSE ST_IsValidReason(g) END,
       ST_AsBinary(ST_Multi(CASE WHEN valid THEN g ELSE ST_CollectionExtract(ST_MakeValid(g), 3) END))
  FROM checked
 ORDER BY n
"""


def _check_and_repair(features: list[_Feature]) -> tuple[list[RepairedFeature], list[_Problem]]:
    """Sets each feature's `geom` (valid, MultiPolygon); lists the repairs and the features that
    have no polygon left after repair."""
    if not features:
        return [], []
    by_number = {f.number: f for f in features}
    params: dict[str, list[int] | list[bytes]] = {"numbers": list(by_number), "wkbs": [f.wkb for f in features]}
    repaired: list[RepairedFeature] = []
    problems: list[_Problem] = []
    with connection.cursor() as cursor:
        cursor.execute(_REPAIR_SQL, params)
        rows = cursor.fetchall()
    for number, reason, wkb in rows:
        feature = by_number[number]
        geom = GEOSGeometry(memoryview(wkb), srid=WGS84)  # GEOS reads WKB from a memoryview, not bytes
        if geom.empty:
            problems.append((number, f"geometry has no area left after repair ({reason})"))
            continue
        feature.geom = geom  # type: ignore[assignment]  # GEOSGeometry() is the WKB's subclass (ST_Multi: MultiPolygon); the stubs say GEOSGeometry
        if reason:
            repaired.append(RepairedFeature(number=number, code=feature.code, reason=reason))
    return repaired, problems


# --- 3. write ------------------------------------------------------------------------------------

_Place = TypeVar("_Place", District, DailyLifeArea)


def _write(municipality: Municipality, features: list[_Feature], result: BoundaryImportResult) -> None:
    districts, result.districts_created = _find_or_create(District, municipality, (f.district for f in features))
    areas, result.areas_created = _find_or_create(DailyLifeArea, municipality, (f.area for f in features))
    existing = {n.code: n for n in Neighborhood.objects.filter(municipality=municipality)}
    now = timezone.now()
    new: list[Neighborhood] = []
    changed: list[Neighborhood] = []
    for feature in features:
        values = _values(feature, districts, areas)
        hood = existing.get(feature.code)
        if hood is None:
            new.append(Neighborhood(municipality=municipality, code=feature.code, **{"kana": "", **values}))
            result.created.append(feature.code)
        elif _apply(hood, values):
            hood.updated_at = now  # bulk_update skips auto_now
            changed.append(hood)
            result.updated.append(feature.code)
        else:
            result.unchanged.append(feature.code)
    Neighborhood.objects.bulk_create(new)
    Neighborhood.objects.bulk_update(
        changed, ["name", "kana", "district", "daily_life_area", "geom", "updated_at"], batch_size=500
    )
    in_file = {f.code for f in features}
    # Kept, not deleted: households, users and visits point at them. The operator decides.
    result.not_in_file = sorted(set(existing) - in_file)


def _find_or_create(
    model: type[_Place], municipality: Municipality, names: Iterable[str | None]
) -> tuple[dict[str, _Place], list[str]]:
    wanted = {name for name in names if name}
    found = {place.name: place for place in model.objects.filter(municipality=municipality, name__in=wanted)}
    missing = sorted(wanted - found.keys())
    for place in model.objects.bulk_create([model(municipality=municipality, name=name) for name in missing]):
        found[place.name] = place
    return found, missing


def _values(feature: _Feature, districts: dict[str, District], areas: dict[str, DailyLifeArea]) -> dict[str, Any]:
    """The attributes the file sets. A field absent from the file is left out (not cleared); an
    empty value in a present field clears it."""
    values: dict[str, Any] = {"name": feature.name, "geom": feature.geom}
    if feature.kana is not None:
        values["kana"] = feature.kana
    if feature.district is not None:
        values["district_id"] = districts[feature.district].pk if feature.district else None
    if feature.area is not None:
        values["daily_life_area_id"] = areas[feature.area].pk if feature.area else None
    return values


def _apply(hood: Neighborhood, values: dict[str, Any]) -> bool:
    changed = False
    for attr, value in values.items():
        current = getattr(hood, attr)
        same = _same_geometry(current, value) if attr == "geom" else current == value
        if not same:
            setattr(hood, attr, value)
            changed = True
    return changed


def _same_geometry(current: GEOSGeometry | None, new: GEOSGeometry) -> bool:
    return current is not None and current.equals_exact(new, tolerance=_SAME_GEOMETRY_DEGREES)


# --- 4. report -----------------------------------------------------------------------------------

# Pairs sharing more than an edge; the area is measured on the spheroid (geography), in m².
_OVERLAPS_SQL = """
SELECT code_a, code_b, area_m2 FROM (
    SELECT a.code AS code_a, b.code AS code_b,
           ST_Area(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3)::geography) AS area_m2
      FROM neighborhoods_neighborhood a
      JOIN neighborhoods_neighborhood b
        ON b.municipality_id = a.municipality_id AND a.code < b.code
       AND ST_Intersects(a.geom, b.geom) AND NOT ST_Touches(a.geom, b.geom)
     WHERE a.municipality_id = %(municipality)s
) pairs
 WHERE area_m2 > %(threshold)s
 ORDER BY area_m2 DESC, code_a, code_b
"""

# Holes of the union: land enclosed by 自治会 that belongs to none. The sea or the town's edge is
# outside the union, so it is never reported. Each gap names the 自治会 around it.
_GAPS_SQL = """
WITH merged AS (
    SELECT ST_Union(geom) AS g FROM neighborhoods_neighborhood
     WHERE municipality_id = %(municipality)s AND geom IS NOT NULL
), parts AS (
    SELECT (ST_Dump(g)).geom AS p FROM merged
), holes AS (
    SELECT ST_MakePolygon(ST_InteriorRingN(p, i)) AS h
      FROM parts, generate_series(1, ST_NumInteriorRings(p)) AS i
), measured AS (
    SELECT h, ST_Area(h::geography) AS area_m2, ST_PointOnSurface(h) AS pt FROM holes
)
SELECT area_m2, ST_X(pt), ST_Y(pt),
       ARRAY(SELECT n.code FROM neighborhoods_neighborhood n
              WHERE n.municipality_id = %(municipality)s AND ST_DWithin(n.geom, h, 1e-7)
              ORDER BY n.code)
  FROM measured
 WHERE area_m2 > %(threshold)s
 ORDER BY area_m2 DESC
"""


def find_overlaps(*, municipality_id: int, threshold_m2: float = DEFAULT_OVERLAP_M2) -> list[Overlap]:
    with connection.cursor() as cursor:
        cursor.execute(_OVERLAPS_SQL, {"municipality": municipality_id, "threshold": threshold_m2})
        return [Overlap(code_a=a, code_b=b, area_m2=area) for a, b, area in cursor.fetchall()]


def find_gaps(*, municipality_id: int, threshold_m2: float = DEFAULT_GAP_M2) -> list[Gap]:
    with connection.cursor() as cursor:
        cursor.execute(_GAPS_SQL, {"municipality": municipality_id, "threshold": threshold_m2})
        return [
            Gap(area_m2=area, lon=lon, lat=lat, around=tuple(codes)) for area, lon, lat, codes in cursor.fetchall()
        ]
