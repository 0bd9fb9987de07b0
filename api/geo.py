"""Geometry across the API is GeoJSON (RFC 7946, lon/lat, EPSG:4326), in and out, in the API and
in the sync. A device's GPS fix is a GeoJSON Point with the foreign member `accuracy_m` (RFC 7946
§6.1): `{"type": "Point", "coordinates": [133.74, 35.49], "accuracy_m": 12}`."""

from typing import Any, Literal

from django.contrib.gis.geos import GEOSGeometry, Point
from ninja import Field, Schema
from pydantic import field_validator, model_validator

from api.schemas import BodySchema, PayloadModel


def lon_lat_in_range(value: list[float]) -> list[float]:
    """[longitude, latitude] within [-180..180, -90..90], or a ValueError saying so."""
    lon, lat = value
    if not (-180 <= lon <= 180) or not (-90 <= lat <= 90):
        raise ValueError("coordinates must be [longitude, latitude] within [-180..180, -90..90]")
    return value


class PointIn(BodySchema):
    type: Literal["Point"]
    coordinates: list[float] = Field(..., min_length=2, max_length=2, description="[longitude, latitude]")

    @field_validator("coordinates")
    @classmethod
    def _in_range(cls, value: list[float]) -> list[float]:
        return lon_lat_in_range(value)

    def to_geos(self) -> Point:
        return Point(self.coordinates[0], self.coordinates[1], srid=4326)


class SyncPointIn(PayloadModel):
    """A point in a sync operation (a concern's pin, a household's location): a GeoJSON Point.
    Deprecated, still accepted because tablets were built against the first contract:
    `{"lon": …, "lat": …}`, read as the same Point (one parser for every sync kind)."""

    type: Literal["Point"]
    coordinates: list[float] = Field(..., min_length=2, max_length=2, description="[longitude, latitude]")

    @model_validator(mode="before")
    @classmethod
    def _deprecated_lon_lat(cls, value: Any) -> Any:
        if isinstance(value, dict) and "type" not in value and ("lon" in value or "lat" in value):
            rest = {k: v for k, v in value.items() if k not in ("lon", "lat")}
            return {"type": "Point", "coordinates": [value.get("lon"), value.get("lat")], **rest}
        return value

    @field_validator("coordinates")
    @classmethod
    def _in_range(cls, value: list[float]) -> list[float]:
        return lon_lat_in_range(value)

    @property
    def lon(self) -> float:
        return self.coordinates[0]

    @property
    def lat(self) -> float:
        return self.coordinates[1]

    def to_geos(self) -> Point:
        return Point(self.coordinates[0], self.coordinates[1], srid=4326)


class DeviceFixIn(SyncPointIn):
    """Where a device was (a visit's GPS fix): a GeoJSON Point with the foreign member
    `accuracy_m`; deprecated: `{"lon", "lat", "accuracy_m"}`."""

    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="The fix's accuracy in metres")


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
