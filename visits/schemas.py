import datetime as dt
from typing import Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import ConfigDict, model_validator

from api.geo import PointOut, point_out


class PartnerOut(Schema):
    id: int
    code: str
    name: str
    office: PointOut | None
    phone: str
    worker_count: int = 0

    @staticmethod
    def resolve_office(obj) -> dict | None:
        return point_out(obj.office)


class WorkerOut(Schema):
    id: int
    username: str
    display_name: str
    partner_organization_id: int | None
    weekdays: list[int]
    start_time: dt.time | None
    end_time: dt.time | None
    days_off: list[dt.date]


class AvailabilityIn(Schema):
    model_config = ConfigDict(extra="forbid")

    weekdays: list[int] = Field(..., description="ISO weekdays, 1 = Monday … 5 = Friday (weekends are never scheduled)")
    start_time: dt.time = dt.time(9, 0)
    end_time: dt.time = dt.time(17, 0)

    @model_validator(mode="after")
    def _check(self):
        if any(not 1 <= d <= 7 for d in self.weekdays):
            raise ValueError("weekdays must be between 1 (Monday) and 7 (Sunday)")
        if self.start_time >= self.end_time:
            raise ValueError("start_time must be before end_time")
        return self


class DaysOffIn(Schema):
    model_config = ConfigDict(extra="forbid")

    dates: list[dt.date] = Field(..., min_length=1, max_length=366)
    reason: str = Field("", max_length=100)


class CampaignIn(Schema):
    model_config = ConfigDict(extra="forbid")

    fiscal_year: int = Field(..., ge=2000, le=2100)
    name: str = Field(..., min_length=1, max_length=200)
    start_date: dt.date
    end_date: dt.date
    visits_per_worker_day: int = Field(12, ge=1, le=100)
    max_attempts: int = Field(3, ge=1, le=10)
    time_bands: list[str] = Field(["am", "pm"], max_length=6)

    @model_validator(mode="after")
    def _dates(self):
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class CampaignPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    visits_per_worker_day: int | None = Field(None, ge=1, le=100)
    max_attempts: int | None = Field(None, ge=1, le=10)
    time_bands: list[str] | None = Field(None, max_length=6)
    status: Literal["draft", "running", "closed"] | None = None


class CampaignOut(Schema):
    id: int
    fiscal_year: int
    name: str
    start_date: dt.date
    end_date: dt.date
    status: str
    visits_per_worker_day: int
    max_attempts: int
    time_bands: list[str]
    neighborhood_ids: list[int]

    @staticmethod
    def resolve_neighborhood_ids(obj) -> list[int]:
        return [t.neighborhood_id for t in obj.targets.all()]


class TargetsIn(Schema):
    model_config = ConfigDict(extra="forbid")

    neighborhood_ids: list[int] = Field(..., description="The campaign's 自治会 in visiting order")


class AllocationItem(Schema):
    model_config = ConfigDict(extra="forbid")

    neighborhood_id: int
    partner_organization_id: int


class AllocationsIn(Schema):
    model_config = ConfigDict(extra="forbid")

    allocations: list[AllocationItem] = Field(..., min_length=1)


class AllocationOut(Schema):
    neighborhood_id: int
    partner_organization_id: int


class PriorityIn(Schema):
    model_config = ConfigDict(extra="forbid")

    household_id: UUID
    reason: str = Field("", max_length=300)


class AttendeeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(..., max_length=50, description="e.g. 自治会長, 民生委員")
    name: str = Field("", max_length=100)


class HearingIn(Schema):
    model_config = ConfigDict(extra="forbid")

    neighborhood_id: int
    held_on: dt.date
    attendees: list[AttendeeIn] = []
    notes: str = Field("", max_length=10_000)
    priorities: list[PriorityIn] = []


class HearingOut(Schema):
    id: int
    neighborhood_id: int
    held_on: dt.date
    attendees: list[dict]
    priority_count: int


class HearingDetailOut(HearingOut):
    notes: str
    priorities: list[dict]


class PlanIn(Schema):
    model_config = ConfigDict(extra="forbid")

    from_date: dt.date | None = None


class JobOut(Schema):
    id: UUID
    campaign_id: int
    kind: str
    status: str
    progress: int
    message: str
    result: dict
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class ScheduledVisitOut(Schema):
    id: UUID
    campaign_id: int
    household_id: UUID
    address: str
    location: PointOut | None
    neighborhood_id: int | None
    partner_organization_id: int
    worker_id: int
    date: dt.date
    time_band: str
    route_order: int
    attempt: int
    priority: bool
    status: str
    leg_m: int
    version: int

    @staticmethod
    def resolve_address(obj) -> str:
        return obj.household.address

    @staticmethod
    def resolve_location(obj) -> dict | None:
        return point_out(obj.household.location)


class ReassignVisitIn(Schema):
    model_config = ConfigDict(extra="forbid")

    worker_id: int


class ReassignNeighborhoodIn(Schema):
    model_config = ConfigDict(extra="forbid")

    partner_organization_id: int
    worker_id: int | None = None


class OutcomeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["met", "absent", "refused", "moved", "vacant", "leaflet_left"]
