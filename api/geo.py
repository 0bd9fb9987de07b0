"""Geometry across the API is GeoJSON (RFC 7946, lon/lat, EPSG:4326)."""

from typing import Literal

from django.contrib.gis.geos import GEOSGeometry, Point
from ninja import Field, Schema
from pydantic import field_validator

from api.schemas import BodySchema


class PointIn(BodySchema):
    type: Literal["Point"]
    coordinates: list[float] = Field(..., min_length=2, max_length=2, description="[longitude, latitude]")

    @field_validator("coordinates")
    @classmethod
    def _in_range(cls, value: list[float]) -> list[float]:
        lon, lat = value
        if not (-180 <= lon <= 180) or not (-90 <= lat <= 90):
            raise ValueError("coordinates must be [longitude, latitude] within [-180..180, -90..90]")
        return value

    def to_geos(self) -> Point:
        return Point(self.coordinates[0], self.coordinates[1], srid=4326)


class PointOut(Schema):
    type: Literal["Point"] = "Point"
    coordinates: list[float]


def point_out(point: Point | None) -> dict | None:
    if point is None:
        return None
    return {"type": "Point", "coordinates": [round(point.x, 7), round(point.y, 7)]}


def geometry_out(geom: GEOSGeometry | None) -> dict | None:
    if geom is None:
        return None
    import json

    return json.loads(geom.json)


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    """`minLon,minLat,maxLon,maxLat` → a tuple, or a clear error."""
    from backend.errors import InvalidInput

    if not bbox:
        return None
    parts = bbox.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InvalidInput(
            "bbox must be four numbers: minLon,minLat,maxLon,maxLat", details=[{"loc": ["query", "bbox"]}]
        )
    min_lon, min_lat, max_lon, max_lat = values
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise InvalidInput(
            "bbox must have minLon < maxLon within [-180, 180] and minLat < maxLat within [-90, 90]",
            details=[{"loc": ["query", "bbox"]}],
        )
    return values
