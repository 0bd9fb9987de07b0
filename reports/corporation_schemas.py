"""The per-corporation report's JSON (reports.corporations). Counts are never suppressed: they
count work, not residents."""

from ninja import Field, Schema

from reports.schemas import ReportFreshness


class CorporationMetrics(Schema):
    planned_visits: int = Field(..., description="予定件数: scheduled visits in scope, not cancelled")
    planned_distance_km: float = Field(
        ..., description="計画移動距離 (km, one decimal): the planned legs of those visits; the way back to the office is not stored"
    )
    visits: int = Field(..., description="延べ訪問件数: visit records that stand (a corrected record counts once)")
    households_completed: int = Field(..., description="完了世帯数: households in a final state, for the record that finished them")
    absent: int = Field(..., description="不在件数")
    absent_rate_pct: float | None = Field(..., description="不在率 (%, one decimal); null without visits")
    leaflets: int = Field(..., description="チラシ投函")
    worker_days: int = Field(..., description="稼働人日: distinct (worker, day in Asia/Tokyo) with a visit")
    stops_per_worker_day: float | None = Field(..., description="1日あたり平均訪問件数 (one decimal); null without visits")


class CorporationWorkerRow(CorporationMetrics):
    id: int
    name: str


class CorporationRow(CorporationMetrics):
    id: int
    code: str
    name: str
    workers: list[CorporationWorkerRow]


class CorporationReportCampaign(Schema):
    id: int
    name: str
    fiscal_year: int


class CorporationReportScope(Schema):
    campaign: CorporationReportCampaign | None = Field(..., description="null: every campaign of the 年度")
    fiscal_year: int
    label: str = Field(..., description="e.g. 令和7年度")


class CorporationReportUnattributed(Schema):
    visits: int = Field(..., description="Scheduled visits with an outcome but no visit record (entered at /scheduled-visits/{id}/outcome)")
    households_completed: int = Field(..., description="Completed households without a visit record that finished them")


class CorporationReportDefinition(Schema):
    key: str
    label: str
    definition: str


class CorporationReport(Schema):
    """The report's numbers: what is computed and stored (reports.snapshots)."""

    scope: CorporationReportScope
    corporations: list[CorporationRow]
    total: CorporationMetrics
    without_visit_record: CorporationReportUnattributed
    definitions: list[CorporationReportDefinition]


class CorporationReportOut(CorporationReport, ReportFreshness):
    """The report as answered: its numbers, and how current they are."""
