from datetime import datetime
from uuid import UUID

from ninja import Field, Schema

from api.geo import PointIn, PointOut, point_out
from api.schemas import BodySchema, Unchanged, Version
from backend.dates import BirthYear
from backend.text import Line
from neighborhoods.models import (
    AgeBand,
    HouseholdStatus,
    LivingArrangement,
    MatchLevel,
    Relation,
    ResidentFlag,
    ResourceType,
    RiskFlag,
    Weekday,
)


class Ref(Schema):
    id: int
    name: str


class DistrictOut(Schema):
    id: int
    name: str
    code: str
    neighborhood_count: int


class DailyLifeAreaOut(Schema):
    id: int
    name: str
    code: str
    neighborhood_count: int
    household_count: int


class NeighborhoodOut(Schema):
    id: int
    code: str
    name: str
    kana: str
    district: Ref | None
    daily_life_area: Ref | None
    household_count: int


class NeighborhoodDetailOut(NeighborhoodOut):
    households_by_status: dict[str, int]
    area_m2: float | None
    geometry: dict | None = Field(None, description="GeoJSON MultiPolygon (lon/lat)")


class HouseholdOut(Schema):
    id: UUID
    external_id: str
    address: str
    address_kana: str
    location: PointOut | None
    match_level: MatchLevel = Field(description="How the point was found: given in the municipality's file, "
                                    "matched from the address (residence, block, town), set by hand, or unmatched")
    neighborhood_id: int | None
    member_count: int | None = Field(description="世帯人数 as the municipality's list gives it")
    status: HouseholdStatus
    living_arrangement: str
    risk_flags: list[str]
    merged_into_id: UUID | None = Field(description="Set when this household was merged into another (a duplicate)")
    version: int
    updated_at: datetime

    @staticmethod
    def resolve_location(obj) -> dict | None:
        return point_out(obj.location)


class ResidentOut(Schema):
    id: UUID
    name: str
    kana: str
    birth_year: int | None
    age_band: str
    relation: str
    flags: list[str]
    version: int


class HouseholdDetailOut(HouseholdOut):
    neighborhood: Ref | None
    residents: list[ResidentOut]

    @staticmethod
    def resolve_residents(obj) -> list:
        return obj.residents_list


class HouseholdIn(BodySchema):
    external_id: Line = Field(..., min_length=1, max_length=64)
    address: Line = Field(..., min_length=1, max_length=300)
    address_kana: Line = Field("", max_length=300)
    location: PointIn | None = Field(None, description="Must lie within the municipality (its 自治会 and their surroundings)")
    status: HouseholdStatus = HouseholdStatus.OCCUPIED
    living_arrangement: LivingArrangement | None = None
    risk_flags: list[RiskFlag] = Field([], max_length=len(RiskFlag))


class HouseholdPatch(BodySchema):
    """Absent fields stay as they are. null clears only where it means something: the location and
    the living arrangement (not known)."""

    version: Version
    address: Line = Unchanged(min_length=1, max_length=300)
    address_kana: Line = Unchanged(max_length=300)
    location: PointIn | None = Unchanged(description="null removes the location")
    status: HouseholdStatus = Unchanged()
    living_arrangement: LivingArrangement | None = Unchanged(description="null: not known")
    risk_flags: list[RiskFlag] = Unchanged(max_length=len(RiskFlag))


class ResidentIn(BodySchema):
    name: Line = Field(..., min_length=1, max_length=100)
    kana: Line = Field("", max_length=100)
    birth_year: BirthYear | None = None
    age_band: AgeBand | None = None
    relation: Relation = Relation.OTHER
    flags: list[ResidentFlag] = Field([], max_length=len(ResidentFlag))


class ResidentPatch(BodySchema):
    """Absent fields stay as they are; null clears the birth year and the age band (not known)."""

    version: Version
    name: Line = Unchanged(min_length=1, max_length=100)
    kana: Line = Unchanged(max_length=100)
    birth_year: BirthYear | None = Unchanged(description="null: not known")
    age_band: AgeBand | None = Unchanged(description="null: not known")
    relation: Relation = Unchanged()
    flags: list[ResidentFlag] = Unchanged(max_length=len(ResidentFlag))


class ResourceOut(Schema):
    id: int
    name: str
    type: ResourceType
    location: PointOut
    neighborhood_id: int | None
    opening_days: list[Weekday]
    address: str
    contact: str

    @staticmethod
    def resolve_location(obj) -> dict | None:  # (never None: a resource's location is required)
        return point_out(obj.location)
