import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import ValidationInfo, field_validator

from api.geo import PointOut, point_out
from api.schemas import BodySchema, Id, Unchanged
from api.timeofday import LocalTime
from backend.dates import FactDate, PlanDate, campaign_date_problems
from backend.text import Line, Note


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
    start_time: LocalTime | None
    end_time: LocalTime | None
    days_off: list[dt.date]


Weekday = Annotated[int, Field(ge=1, le=7)]
TimeBand = Annotated[Line, Field(min_length=1, max_length=10)]


class AvailabilityIn(BodySchema):
    weekdays: list[Weekday] = Field(
        ..., max_length=7, description="ISO weekdays, 1 = Monday … 5 = Friday (weekends are never scheduled)"
    )
    start_time: LocalTime = dt.time(9, 0)
    end_time: LocalTime = Field(dt.time(17, 0), validate_default=True)  # checked against start_time when defaulted too

    @field_validator("end_time")
    @classmethod
    def _after_start(cls, value: dt.time, info: ValidationInfo) -> dt.time:
        start = info.data.get("start_time")
        if start is not None and start >= value:
            raise ValueError("end_time must be after start_time")
        return value


class DaysOffIn(BodySchema):
    dates: list[PlanDate] = Field(..., min_length=1, max_length=366)
    reason: Line = Field("", max_length=100)


class CampaignIn(BodySchema):
    fiscal_year: int = Field(..., ge=2000, le=2100, description="年度 (April–March); start_date and end_date lie in it")
    name: Line = Field(..., min_length=1, max_length=200)
    start_date: PlanDate
    end_date: PlanDate
    visits_per_worker_day: int = Field(12, ge=1, le=100)
    max_attempts: int = Field(3, ge=1, le=10)
    time_bands: list[TimeBand] = Field(["am", "pm"], min_length=1, max_length=6)

    @field_validator("start_date", "end_date")
    @classmethod
    def _in_fiscal_year(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        fiscal_year, start = info.data.get("fiscal_year"), info.data.get("start_date")
        if fiscal_year is None:
            return value
        if info.field_name == "start_date":
            problems = campaign_date_problems(fiscal_year, value, value)
        else:
            problems = campaign_date_problems(fiscal_year, start or value, value)
        mine = [msg for field, msg in problems if field == info.field_name]
        if mine:
            raise ValueError(mine[0])
        return value


class CampaignPatch(BodySchema):
    """Absent fields stay as they are; none may be null. The dates must stay in the campaign's 年度.
    Starting and closing a campaign are their own steps (`/activate`, `/close`)."""

    name: Line = Unchanged(min_length=1, max_length=200)
    start_date: PlanDate = Unchanged()
    end_date: PlanDate = Unchanged()
    visits_per_worker_day: int = Unchanged(ge=1, le=100)
    max_attempts: int = Unchanged(ge=1, le=10)
    time_bands: list[TimeBand] = Unchanged(min_length=1, max_length=6)


class CampaignSummaryOut(Schema):
    """A campaign in the list: how many 自治会 it targets, not which (a city's campaign targets
    thousands; the ids are on the campaign itself, GET /campaigns/{id})."""

    id: int
    fiscal_year: int
    name: str
    start_date: dt.date
    end_date: dt.date
    status: str
    visits_per_worker_day: int
    max_attempts: int
    time_bands: list[str]
    target_count: int = Field(..., description="The 自治会 it targets")


class CampaignOut(CampaignSummaryOut):
    neighborhood_ids: list[int] = Field(..., description="The 自治会 it targets, in visiting order")

    @staticmethod
    def resolve_target_count(obj) -> int:
        return len(obj.target_ids)

    @staticmethod
    def resolve_neighborhood_ids(obj) -> list[int]:
        return obj.target_ids


class TargetsIn(BodySchema):
    neighborhood_ids: list[Id] = Field(
        ..., max_length=5000, json_schema_extra={"uniqueItems": True},
        description="The campaign's 自治会 in visiting order, each once",
    )


class AllocationItem(BodySchema):
    neighborhood_id: Id
    partner_organization_id: Id


class AllocationsIn(BodySchema):
    allocations: list[AllocationItem] = Field(..., min_length=1, max_length=5000)


class AllocationOut(Schema):
    neighborhood_id: int
    partner_organization_id: int


class PriorityIn(BodySchema):
    household_id: UUID
    reason: Note = Field("", max_length=300)


class HearingAttendeeIn(BodySchema):
    role: Line = Field(..., min_length=1, max_length=50, description="e.g. 自治会長, 民生委員")
    name: Line = Field("", max_length=100)


class HearingIn(BodySchema):
    neighborhood_id: Id
    held_on: FactDate
    attendees: list[HearingAttendeeIn] = Field([], max_length=100)
    notes: Note = Field("", max_length=10_000)
    priorities: list[PriorityIn] = Field([], max_length=1000)


class HearingOut(Schema):
    id: int
    neighborhood_id: int
    held_on: dt.date
    attendees: list[dict]
    priority_count: int


class HearingDetailOut(HearingOut):
    notes: str
    priorities: list[dict]


class SchedulePlanIn(BodySchema):
    from_date: PlanDate | None = Field(
        None, description="Place visits from this day (today or later, within the campaign's dates; default: the "
                          "later of tomorrow and the campaign's start)",
    )


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


class ReassignVisitIn(BodySchema):
    worker_id: Id


class ReassignNeighborhoodIn(BodySchema):
    partner_organization_id: Id
    worker_id: Id | None = None


class OutcomeIn(BodySchema):
    outcome: Literal["met", "absent", "refused", "moved", "vacant", "leaflet_left"]
    correction_reason: Line | None = Field(
        None, min_length=1, max_length=300,
        description="Only to correct an outcome already recorded: why (kept with who and when). "
                    "Without it, a different second outcome is refused (409 outcome_recorded).",
    )
