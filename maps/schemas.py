"""Response schemas of the maps endpoints. Plain pydantic models: the answers are dicts made from
SQL rows (no ORM objects to resolve), and ninja's Schema wrapper costs ~0.1 ms per nested object,
which adds up on a page of 500 自治会."""

import datetime as dt
from typing import Literal
from uuid import UUID

from pydantic import BaseModel as Schema
from pydantic import Field


class MapPointOut(Schema):
    type: Literal["Point"] = "Point"
    coordinates: list[float]

GroupBy = Literal["neighborhood", "daily_life_area", "district", "partner", "campaign"]
CoverageState = Literal["complete", "in_progress", "not_started"]
Indicator = Literal[
    "single_elderly", "elderly_only", "8050", "hikikomori", "hoarding", "multi_pet",
    "no_contact", "refused", "open_concern", "open_case",
]


class CampaignRef(Schema):
    id: int
    name: str
    fiscal_year: int
    status: str
    start_date: dt.date
    end_date: dt.date


class SnapshotOut(Schema):
    """How old the numbers are: they come from a snapshot refreshed in the background."""

    refreshed_at: dt.datetime | None
    stale: bool
    refreshing: bool


class NeighborhoodStates(Schema):
    total: int
    complete: int
    in_progress: int
    not_started: int


class CoverageNumbers(Schema):
    in_scope: int
    met: int
    refused: int
    leaflet_left: int
    moved_or_vacant: int
    absent_pending: int
    not_visited: int
    finished: int
    coverage_pct: float
    state: CoverageState
    neighborhoods: NeighborhoodStates


class CoverageItem(CoverageNumbers):
    id: int | None
    code: str | None = None
    name: str
    position: int | None = None
    district_id: int | None = None
    daily_life_area_id: int | None = None
    partner_organization_id: int | None = None
    fiscal_year: int | None = None
    campaign_status: str | None = None


class CoverageOut(Schema):
    campaign: CampaignRef | None
    group_by: GroupBy
    snapshot: SnapshotOut | None
    totals: CoverageNumbers
    items: list[CoverageItem]
    count: int


class WeekOut(Schema):
    week: str
    week_start: dt.date
    finished: int
    cumulative: int
    coverage_pct: float


class WeeklyOut(Schema):
    campaign: CampaignRef | None
    snapshot: SnapshotOut | None
    in_scope: int
    items: list[WeekOut]
    count: int


class ResourceRef(Schema):
    id: int
    name: str
    type: str
    distance_m: float


class IsolationItem(Schema):
    household_id: UUID
    external_id: str
    address: str
    neighborhood_id: int | None
    status: str
    location: MapPointOut | None
    indicators: list[str]
    nearest_resource: ResourceRef | None


class IsolationOut(Schema):
    months: int
    withheld: list[str]
    items: list[IsolationItem]
    count: int


class OverdueItem(Schema):
    kind: Literal["case", "watch"]
    id: str
    household_id: UUID
    neighborhood_id: int | None
    neighborhood_name: str
    label: str
    detail: str
    due: dt.date
    days_overdue: int
    last_contact: dt.date | None
    responsible: str
    location: MapPointOut | None


class MapOverdueOut(Schema):
    items: list[OverdueItem]
    count: int = Field(..., description="Overdue cases and 見守り, exact up to the cap (10,000); the cap when count_capped")
    count_capped: bool


class LayerOut(Schema):
    name: str
    min_zoom: int
    max_zoom: int
    allowed: bool
    tiles: str


class MapConfigOut(Schema):
    role: str
    municipality: str
    bounds: list[float] | None
    campaigns: list[CampaignRef]
    current_campaign_id: int | None
    layers: list[LayerOut]
    indicators: list[str]
    withheld_indicators: list[str]
    hexagon_min_count: int
    overdue: bool
