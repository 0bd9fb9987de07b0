from datetime import datetime
from uuid import UUID

from ninja import Field, Schema
from pydantic import ConfigDict

from api.geo import PointIn, PointOut, point_out
from neighborhoods.models import (
    AgeBand,
    HouseholdStatus,
    LivingArrangement,
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
    neighborhood_id: int | None
    status: HouseholdStatus
    living_arrangement: str
    risk_flags: list[str]
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


class HouseholdIn(Schema):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(..., min_length=1, max_length=64)
    address: str = Field(..., min_length=1, max_length=300)
    address_kana: str = Field("", max_length=300)
    location: PointIn | None = None
    status: HouseholdStatus = HouseholdStatus.OCCUPIED
    living_arrangement: LivingArrangement | None = None
    risk_flags: list[RiskFlag] = []


class HouseholdPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(..., ge=1, description="The version this edit is based on; a stale one is a 409.")
    address: str | None = Field(None, min_length=1, max_length=300)
    address_kana: str | None = Field(None, max_length=300)
    location: PointIn | None = None
    status: HouseholdStatus | None = None
    living_arrangement: LivingArrangement | None = None
    risk_flags: list[RiskFlag] | None = None


class ResidentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100)
    kana: str = Field("", max_length=100)
    birth_year: int | None = Field(None, ge=1890, le=2100)
    age_band: AgeBand | None = None
    relation: Relation = Relation.OTHER
    flags: list[ResidentFlag] = []


class ResidentPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(..., ge=1)
    name: str | None = Field(None, min_length=1, max_length=100)
    kana: str | None = Field(None, max_length=100)
    birth_year: int | None = Field(None, ge=1890, le=2100)
    age_band: AgeBand | None = None
    relation: Relation | None = None
    flags: list[ResidentFlag] | None = None


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
    def resolve_location(obj) -> dict:
        return point_out(obj.location)
