from uuid import UUID

from ninja import Field, Schema

from addresses.services import JAPAN_LAT, JAPAN_LON
from api.geo import PointOut, point_out
from api.schemas import BodySchema, Version
from neighborhoods.models import MatchLevel


class UnplacedHouseholdOut(Schema):
    """A household whose address matched no reference point and that has no point yet."""

    id: UUID
    external_id: str
    address: str
    address_normalized: str = Field(description="The address in one spelling (town, block-residence, 方書)")
    version: int


class HouseholdPlacementIn(BodySchema):
    lon: float = Field(..., ge=JAPAN_LON[0], le=JAPAN_LON[1], description="Longitude (WGS84), in Japan: 122..154")
    lat: float = Field(..., ge=JAPAN_LAT[0], le=JAPAN_LAT[1], description="Latitude (WGS84), in Japan: 20..46")
    version: Version


class HouseholdPlacementOut(Schema):
    id: UUID
    external_id: str
    address: str
    address_normalized: str
    match_level: MatchLevel
    location: PointOut | None
    neighborhood_id: int | None
    version: int

    @staticmethod
    def resolve_location(obj) -> dict | None:
        return point_out(obj.location)


class HouseholdMatchLevelCountsOut(Schema):
    """Households (not merged) by how their point was found."""

    coordinates: int
    residence: int
    block: int
    town: int
    manual: int
    unmatched: int
    total: int


class AddressReferenceCountsOut(Schema):
    """The municipality's reference points by level."""

    residence: int
    block: int
    town: int


class PlacementSummaryOut(Schema):
    households: HouseholdMatchLevelCountsOut
    references: AddressReferenceCountsOut
