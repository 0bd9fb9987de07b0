"""The 年度 report's JSON (reports.fiscal). Counts are integers, or null where suppressed."""

import datetime as dt

from ninja import Field, Schema

Count = int | None


class VisitTotals(Schema):
    households_in_scope: Count = Field(..., description="対象世帯 (the year's campaigns, as their coverage counts them)")
    households_visited: Count = Field(..., description="訪問世帯 (実世帯数): distinct households visited in the year")
    visits: Count = Field(..., description="延べ訪問件数: visit records that stand, dated in the year")
    met: Count = Field(..., description="面談")
    absent_final: Count = Field(..., description="全回不在: every attempt absent (due a leaflet, or left one)")
    leaflet_left: Count = Field(..., description="チラシ投函")
    refused: Count = Field(..., description="拒否")
    moved_or_vacant: Count = Field(..., description="転居・空き家")


class VisitMonth(Schema):
    month: str = Field(..., description="YYYY-MM")
    visits: Count
    households_visited: Count
    met: Count
    absent: Count = Field(..., description="不在 visits (records), not households")
    leaflet_left: Count
    refused: Count
    moved_or_vacant: Count


class VisitPlace(VisitTotals):
    id: int | None = Field(..., description="The 日常生活圏域 or 地区; null: households without one")
    name: str


class NeighborhoodCoverage(Schema):
    neighborhood_id: int
    code: str
    name: str
    in_scope: Count
    finished: Count
    coverage_pct: float | None
    state: str = Field(..., description="not_started | in_progress | complete")


class VisitSection(Schema):
    total: VisitTotals
    by_month: list[VisitMonth]
    by_area: list[VisitPlace]
    by_district: list[VisitPlace]
    coverage: list[NeighborhoodCoverage]


class Labelled(Schema):
    key: str
    label: str
    count: Count


class ConcernTotals(Schema):
    raised: Count = Field(..., description="受付: registered in the year")
    triaged: Count = Field(..., description="確認: concerns triaged in the year")
    referred: Count = Field(..., description="つなぎ: concerns referred to a counter in the year")
    case_opened: Count = Field(..., description="継続支援へ: concerns that became a case in the year")


class ConcernMonth(Schema):
    month: str
    raised: Count


class ConcernPlace(Schema):
    id: int | None
    name: str
    raised: Count


class ConcernSection(Schema):
    total: ConcernTotals
    by_source: list[Labelled]
    by_category: list[Labelled] = Field(..., description="A concern with several categories counts in each")
    referred_to: list[Labelled]
    by_month: list[ConcernMonth]
    by_area: list[ConcernPlace]


class OutreachMonth(Schema):
    month: str
    contacts: Count
    people: Count = Field(..., description="Distinct people contacted that month")


class CaseCounts(Schema):
    opened: Count
    closed: Count
    continuing: Count = Field(..., description="Open at the year's end")


class OutreachPlace(Schema):
    id: int | None
    name: str
    people: Count
    contacts: Count


class OutreachSection(Schema):
    people: Count = Field(..., description="実人数: distinct people with a case open on some day of the year")
    contacts: Count = Field(..., description="延べ件数: contacts that stand, dated in the year")
    contacts_by_kind: list[Labelled]
    by_month: list[OutreachMonth]
    cases: CaseCounts
    continuing_by_stage: list[Labelled] = Field(..., description="Open at the year's end, by their stage on that day")
    consent_obtained: Count
    by_area: list[OutreachPlace]


class MeetingMonth(Schema):
    month: str
    sasaeai: Count
    support: Count
    multi_agency: Count


class MeetingSection(Schema):
    sasaeai: Count = Field(..., description="支え愛連絡会 held")
    support: Count = Field(..., description="支援会議 held (distinct days)")
    multi_agency: Count = Field(..., description="重層的支援会議 held (distinct days)")
    support_cases: Count = Field(..., description="Cases discussed at 支援会議")
    multi_agency_cases: Count = Field(..., description="Cases discussed at 重層的支援会議")
    by_month: list[MeetingMonth]


class ReportFreshness(Schema):
    """How current a stored report is (reports.snapshots)."""

    as_of: dt.datetime = Field(..., description="When the numbers were computed")
    stale: bool = Field(..., description="The data changed since: a refresh is queued, these are the last numbers")
    refreshing: bool = Field(..., description="A refresh of the current data is queued or running")


class FiscalYearReport(Schema):
    """The report's numbers: what is computed and stored (reports.snapshots)."""

    fiscal_year: int
    label: str = Field(..., description="和暦, e.g. 令和7年度")
    start: dt.date
    end: dt.date
    months: list[str]
    public: bool = Field(..., description="Small cells suppressed")
    suppressed_below: int | None = Field(..., description="Counts from 1 to this minus one are null")
    visits: VisitSection
    concerns: ConcernSection
    outreach: OutreachSection
    meetings: MeetingSection


class FiscalYearReportOut(FiscalYearReport, ReportFreshness):
    """The report as answered: its numbers, and how current they are."""
