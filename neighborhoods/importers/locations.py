"""A row's point: which columns hold it, in which reference system, and its value in WGS84."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from django.contrib.gis.gdal import CoordTransform, GDALException, SpatialReference
from django.contrib.gis.geos import Point

from backend.csv_input import RowReader
from backend.errors import InvalidInput

WGS84 = 4326


@dataclass(frozen=True)
class Coordinates:
    """Where a row's location is and in which reference system. Rows are read by our field names:
    `lon`/`lat` (WGS84, found under their usual headers: lat, 緯度 …) or, for a projected system,
    `x` (easting) and `y` (northing). `x_column`/`y_column` are the file's headers when the
    operator named them. Careful: in Japanese surveying (公共測量) the "X座標" of the plane
    rectangular systems is the *northing*; for such files pass `--x-field Y --y-field X`."""

    srid: int = WGS84
    projected: bool = False
    x_column: str | None = None
    y_column: str | None = None

    @classmethod
    def from_options(
        cls, *, lat_field: str | None = None, lon_field: str | None = None,
        x_field: str | None = None, y_field: str | None = None, srid: int = WGS84,
    ) -> Coordinates:
        latlon = lat_field is not None or lon_field is not None
        xy = x_field is not None or y_field is not None
        if latlon and xy:
            raise InvalidInput("Give either --lat-field/--lon-field or --x-field/--y-field, not both.")
        if latlon and srid != WGS84:
            raise InvalidInput(f"lat/lon are WGS84 (EPSG:4326); for EPSG:{srid} use --x-field and --y-field.")
        if xy or srid != WGS84:
            return cls(srid=srid, projected=True, x_column=x_field or "x", y_column=y_field or "y")
        return cls(x_column=lon_field, y_column=lat_field)

    @property
    def fields(self) -> tuple[str, str]:
        """Our names of the two columns, x first."""
        return ("x", "y") if self.projected else ("lon", "lat")

    @property
    def explicit(self) -> bool:
        """Named by the operator (or projected): then the file must have both columns."""
        return self.projected or self.x_column is not None or self.y_column is not None

    def mapping(self) -> dict[str, str]:
        """The operator's columns, as entries of a column mapping (our field -> their header)."""
        named = zip(self.fields, (self.x_column, self.y_column), strict=True)
        return {ours: theirs for ours, theirs in named if theirs is not None}

    def transform(self) -> CoordTransform | None:
        if self.srid == WGS84:
            return None
        try:
            # Django builds spatial references in traditional GIS axis order (x = lon / easting),
            # whatever order the EPSG definition states, so no axis swapping is needed here.
            return CoordTransform(SpatialReference(self.srid), SpatialReference(WGS84))
        except GDALException as exc:
            raise InvalidInput(f"EPSG:{self.srid} is not a known spatial reference system.") from exc


class LonLat(NamedTuple):
    """A point in WGS84 (EPSG:4326), longitude first."""

    lon: float
    lat: float

    def ewkt(self) -> str:
        # repr() of a float is its shortest exact form, so PostGIS reads back the same double and
        # an unchanged file compares equal on re-import.
        return f"SRID={WGS84};POINT({self.lon!r} {self.lat!r})"


def ewkt(point: LonLat | None) -> str | None:
    return None if point is None else point.ewkt()


def read_location(row: RowReader, coords: Coordinates, transform: CoordTransform | None, *,
                  required: bool) -> LonLat | None:
    """The row's point in WGS84, or None when both coordinates are blank."""
    x_field, y_field = coords.fields
    x, y = row.number(x_field), row.number(y_field)
    if {x_field, y_field} & row.failed:
        return None
    if x is None or y is None:
        if x is None and y is None and not required:
            return None
        for column, value in ((x_field, x), (y_field, y)):
            if value is None:
                row.error(column, "is required" if required else "is missing (the other coordinate is given)")
        return None
    if transform is None:
        return _in_range(row, LonLat(x, y), coords)
    point = Point(x, y, srid=coords.srid)
    try:
        point.transform(transform)
    except GDALException:
        row.error(f"{x_field}/{y_field}", f"({x}, {y}) cannot be transformed from EPSG:{coords.srid}")
        return None
    return _in_range(row, LonLat(point.x, point.y), coords)


def _in_range(row: RowReader, point: LonLat, coords: Coordinates) -> LonLat | None:
    x_field, y_field = coords.fields
    ok = True
    if not -90 <= point.lat <= 90:
        row.error(y_field, f"{point.lat:g} is out of range (latitude -90..90)")
        ok = False
    if not -180 <= point.lon <= 180:
        row.error(x_field, f"{point.lon:g} is out of range (longitude -180..180)")
        ok = False
    return point if ok else None
