"""Schemas of the duplicate report and of merging households (names unique in the API)."""

import datetime as dt
from enum import StrEnum
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Schema

from api.pagination import Paginated
from api.schemas import BodySchema, Version
from neighborhoods.duplicates import StoredDuplicates


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


class DuplicatePages(Paginated):
    """The list's envelope and how fresh the stored report is (neighborhoods.duplicates' docstring):
    the page is `PagedDuplicatePairOut`, this endpoint's own; every other list keeps Paginated's."""

    class Output(Paginated.Output):
        as_of: dt.datetime = Field(..., description="When the stored pairs were computed")
        stale: bool = Field(..., description="Households or residents changed since: a refresh is due")
        refreshing: bool = Field(..., description="A refresh of the current data has been asked for")

    def paginate_queryset(self, queryset: Any, pagination: Any, request: HttpRequest, **params: Any) -> Any:
        stored: StoredDuplicates = queryset
        page = super().paginate_queryset(stored.pairs, pagination, request, **params)
        return {**page, "as_of": stored.as_of, "stale": stored.stale, "refreshing": stored.refreshing}


class HouseholdMergeIn(BodySchema):
    into: UUID = Field(description="The household that stays (the survivor)")
    version: Version = Field(description="The version of the household merged away (the one in the path)")
    into_version: Version = Field(description="The version of the survivor")


class HouseholdNotDuplicateIn(BodySchema):
    other: UUID = Field(description="The household judged distinct from the one in the path")
