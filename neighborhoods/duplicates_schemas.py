"""Schemas of the duplicate report and of merging households (names unique in the API)."""

from enum import StrEnum
from uuid import UUID

from ninja import Field, Schema

from api.schemas import BodySchema, Version


class DuplicateReason(StrEnum):
    SAME_KANA = "same_kana"
    SIMILAR_KANA = "similar_kana"
    SAME_NAME = "same_name"
    SIMILAR_NAME = "similar_name"
    NO_RESIDENTS = "no_residents"


class DuplicateCompared(StrEnum):
    KANA = "kana"
    NAME = "name"


class DuplicateHouseholdOut(Schema):
    id: UUID
    external_id: str
    address: str
    name: str = Field(description="The name compared (世帯主's kana or name, normalised); empty without residents")


class DuplicatePairOut(Schema):
    """Two households that may be one: same normalised address and a similar name."""

    first: DuplicateHouseholdOut
    second: DuplicateHouseholdOut
    address_normalized: str
    compared: DuplicateCompared | None = Field(description="kana or name; null when a household has no residents")
    score: float | None = Field(description="1.0 equal names, else trigram similarity; null without names")
    reason: DuplicateReason

    @staticmethod
    def resolve_compared(obj) -> str | None:
        return obj.compared or None

    @staticmethod
    def resolve_first(obj) -> dict:
        return {"id": obj.first_id, "external_id": obj.first_external_id, "address": obj.first_address,
                "name": obj.first_name}

    @staticmethod
    def resolve_second(obj) -> dict:
        return {"id": obj.second_id, "external_id": obj.second_external_id, "address": obj.second_address,
                "name": obj.second_name}


class HouseholdMergeIn(BodySchema):
    into: UUID = Field(description="The household that stays (the survivor)")
    version: Version = Field(description="The version of the household merged away (the one in the path)")
    into_version: Version = Field(description="The version of the survivor")


class HouseholdNotDuplicateIn(BodySchema):
    other: UUID = Field(description="The household judged distinct from the one in the path")
