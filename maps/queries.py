"""Read-side SQL of the maps app: coverage (reads of the snapshot that maps.services fills from
visits.coverage, the one formula, and the snapshot's freshness), the weekly series, isolation indicators with the nearest community resource (KNN), GeoJSON of the small layers, and the data versions that ETags are made of. Everything is set-based
SQL; Python only shapes rows into dicts."""

import calendar
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from accounts.models import User
from backend.db import fetch_dicts
from neighborhoods.queries import FeatureProperties, neighborhoods_feature_collection
from visits import coverage
from visits.coverage import coverage_pct, coverage_state


def _value(sql: str, params: Sequence | dict):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


# --- coverage: the snapshot's freshness ---------------------------------------------------------

# The version of each campaign's inputs beside its snapshot row, from index lookups whatever the
# town's size: households (status, 自治会) and scheduled visits (every plan and outcome changes one)
# through the sync sequence; the municipality's change counts of campaign targets, allocations and
# 自治会 (maps_mapdatachange, kept by statement-level triggers, see LOGGED_INPUTS); the campaign
# row. A change to another campaign's targets or allocations of the same municipality also makes
# this one's snapshot stale: planning changes are rare, and counting a campaign's own 3,000 targets
# and allocations per read cost ten times the rest at 1.8 million households (issue 15). Visit
# records without a scheduled visit and hand edits of campaign states are not seen here: the
# periodic sweep (maps.services.refresh_due_coverage) picks those up.
FRESHNESS_SQL = """
SELECT c.id AS campaign_id,
       concat_ws(':', g.households, g.visits, ch.targets, ch.allocations, ch.neighborhoods,
                 extract(epoch FROM c.updated_at)) AS version,
       r.source_version, r.requested_version, r.requested_at, r.refreshed_at
  FROM visits_campaign c
 CROSS JOIN (SELECT (SELECT max(change_seq) FROM neighborhoods_household) AS households,
                    (SELECT max(change_seq) FROM visits_scheduledvisit) AS visits) g
 CROSS JOIN LATERAL (
       SELECT coalesce(sum(changes) FILTER (WHERE input = 'campaign_target'), 0) AS targets,
              coalesce(sum(changes) FILTER (WHERE input = 'allocation'), 0) AS allocations,
              coalesce(sum(changes) FILTER (WHERE input = 'neighborhood'), 0) AS neighborhoods
         FROM maps_mapdatachange
        WHERE municipality_id = c.municipality_id AND input IN ('campaign_target', 'allocation', 'neighborhood')) ch
  LEFT JOIN maps_coveragerefresh r ON r.campaign_id = c.id
 WHERE c.id = ANY(%(campaigns)s)
"""


def freshness(campaign_ids: Sequence[int]) -> dict[int, dict]:
    return {r["campaign_id"]: r for r in fetch_dicts(FRESHNESS_SQL, {"campaigns": list(campaign_ids)})}


# --- coverage: reads of the snapshot -------------------------------------------------------------

@dataclass(frozen=True)
class Grouping:
    key: str  # a column of maps_coveragecell
    order: str  # on the grouped rows (before the labels are joined: only the page is labelled)
    label_join: str
    label_cols: str


GROUPINGS = {
    "neighborhood": Grouping(
        "neighborhood_id", "g.position, g.key", "JOIN neighborhoods_neighborhood l ON l.id = page.key",
        "l.code AS code, l.name AS name",
    ),
    "daily_life_area": Grouping(
        "daily_life_area_id", "g.key NULLS LAST", "LEFT JOIN neighborhoods_dailylifearea l ON l.id = page.key",
        "l.code AS code, coalesce(l.name, '未設定') AS name",
    ),
    "district": Grouping(
        "district_id", "g.key NULLS LAST", "LEFT JOIN neighborhoods_district l ON l.id = page.key",
        "l.code AS code, coalesce(l.name, '未設定') AS name",
    ),
    "partner": Grouping(
        "partner_organization_id", "g.key NULLS LAST", "LEFT JOIN visits_partnerorganization l ON l.id = page.key",
        "l.code AS code, coalesce(l.name, '未割当') AS name",
    ),
    "campaign": Grouping(
        "campaign_id", "g.key DESC", "JOIN visits_campaign l ON l.id = page.key",
        "NULL AS code, l.name AS name, l.fiscal_year, l.status AS campaign_status",
    ),
}

# The formula of a cell's finished count and state is visits.coverage's.
_CELL_FINISHED = coverage.finished_sql("c")
_CELL_STATE = coverage.cell_state_sql("c")
_GROUP_STATE = coverage.state_sql(in_scope="g.in_scope", finished="g.finished", absent_pending="g.absent_pending")

# The groups of a coverage read, summed from the cells (any filter) or from the refresh's sums
# (CoverageSummary: no filter; a few hundred rows instead of a city's 3,000 cells).
CELL_GROUPS_SQL = """
  SELECT c.{key} AS key, min(c.position) AS position, min(c.district_id) AS district_id,
         min(c.daily_life_area_id) AS daily_life_area_id, min(c.partner_organization_id) AS partner_organization_id,
         sum(c.in_scope)::int AS in_scope, sum(c.met)::int AS met, sum(c.refused)::int AS refused,
         sum(c.leaflet_left)::int AS leaflet_left, sum(c.moved_or_vacant)::int AS moved_or_vacant,
         sum(c.absent_pending)::int AS absent_pending, sum(c.not_visited)::int AS not_visited,
         sum({finished})::int AS finished, count(*)::int AS neighborhoods,
         count(*) FILTER (WHERE {cell_state} = 'complete')::int AS neighborhoods_complete,
         count(*) FILTER (WHERE {cell_state} = 'in_progress')::int AS neighborhoods_in_progress,
         count(*) FILTER (WHERE {cell_state} = 'not_started')::int AS neighborhoods_not_started
    FROM maps_coveragecell c
   WHERE c.municipality_id = %(municipality)s AND c.campaign_id = ANY(%(campaigns)s) {filters}
   GROUP BY 1
"""

SUMMARY_GROUPS_SQL = """
  SELECT s.{key} AS key, min(s.position) AS position, NULL::bigint AS district_id,
         NULL::bigint AS daily_life_area_id, NULL::bigint AS partner_organization_id,
         sum(s.in_scope)::int AS in_scope, sum(s.met)::int AS met, sum(s.refused)::int AS refused,
         sum(s.leaflet_left)::int AS leaflet_left, sum(s.moved_or_vacant)::int AS moved_or_vacant,
         sum(s.absent_pending)::int AS absent_pending, sum(s.not_visited)::int AS not_visited,
         sum({finished})::int AS finished, sum(s.neighborhoods)::int AS neighborhoods,
         sum(s.neighborhoods_complete)::int AS neighborhoods_complete,
         sum(s.neighborhoods_in_progress)::int AS neighborhoods_in_progress,
         sum(s.neighborhoods_not_started)::int AS neighborhoods_not_started
    FROM maps_coveragesummary s
   WHERE s.municipality_id = %(municipality)s AND s.campaign_id = ANY(%(campaigns)s) AND s.grouping = %(grouping)s
   GROUP BY 1
"""

COVERAGE_READ_SQL = """
WITH g AS ({groups}),
page AS (
  SELECT g.*, {group_state} AS state,
         count(*) OVER () AS total_count,
         sum(g.in_scope) OVER () AS total_in_scope, sum(g.met) OVER () AS total_met,
         sum(g.refused) OVER () AS total_refused, sum(g.leaflet_left) OVER () AS total_leaflet_left,
         sum(g.moved_or_vacant) OVER () AS total_moved_or_vacant,
         sum(g.absent_pending) OVER () AS total_absent_pending, sum(g.not_visited) OVER () AS total_not_visited,
         sum(g.finished) OVER () AS total_finished, sum(g.neighborhoods) OVER () AS total_neighborhoods,
         sum(g.neighborhoods_complete) OVER () AS total_neighborhoods_complete,
         sum(g.neighborhoods_in_progress) OVER () AS total_neighborhoods_in_progress,
         sum(g.neighborhoods_not_started) OVER () AS total_neighborhoods_not_started,
         row_number() OVER (ORDER BY {order}) AS n
    FROM g
   ORDER BY {order}
   LIMIT %(limit)s OFFSET %(offset)s
)
SELECT page.*, {label_cols}
  FROM page {label_join}
 ORDER BY page.n
"""

COUNT_FIELDS = (
    "in_scope", "met", "refused", "leaflet_left", "moved_or_vacant", "absent_pending", "not_visited", "finished",
)


@dataclass
class CoverageFilter:
    neighborhood: int | None = None
    daily_life_area: int | None = None
    district: int | None = None
    partner: int | None = None

    def sql(self, alias: str) -> tuple[str, dict]:
        """Conditions on a snapshot table (cells or weeks: both carry these columns)."""
        parts, params = [], {}
        for name, column in (
            ("neighborhood", "neighborhood_id"), ("daily_life_area", "daily_life_area_id"),
            ("district", "district_id"), ("partner", "partner_organization_id"),
        ):
            value = getattr(self, name)
            if value is not None:
                parts.append(f" AND {alias}.{column} = %(f_{name})s")
                params[f"f_{name}"] = value
        return "".join(parts), params


@dataclass
class CoveragePage:
    items: list[dict]
    count: int
    totals: dict = field(default_factory=dict)


def coverage_read_sql(group_by: str, filters: CoverageFilter, *, summarized: bool = False) -> tuple[str, dict]:
    grouping = GROUPINGS[group_by]
    filter_sql, params = filters.sql("c")
    if summarized:
        key, params["grouping"] = ("campaign_id", "all") if group_by == "campaign" else ("key", group_by)
        groups = SUMMARY_GROUPS_SQL.format(key=key, finished=coverage.finished_sql("s"))
    else:
        groups = CELL_GROUPS_SQL.format(key=grouping.key, finished=_CELL_FINISHED, cell_state=_CELL_STATE,
                                        filters=filter_sql)
    sql = COVERAGE_READ_SQL.format(
        groups=groups, order=grouping.order, label_cols=grouping.label_cols, label_join=grouping.label_join,
        group_state=_GROUP_STATE,
    )
    return sql, params


# The sums of whole campaigns (CoverageSummary's "all" rows) as a read's totals, and how many of
# the campaigns have them: a campaign refreshed before the sums existed has none until its next
# refresh, and is read from its cells meanwhile.
SUMMARY_TOTALS_SQL = f"""
SELECT count(*) AS campaigns, coalesce(sum(s.neighborhoods), 0) AS total_count,
       {", ".join(f"sum(s.{k}) AS total_{k}" for k in coverage.COUNTS)},
       sum({coverage.finished_sql("s")}) AS total_finished, sum(s.neighborhoods) AS total_neighborhoods,
       sum(s.neighborhoods_complete) AS total_neighborhoods_complete,
       sum(s.neighborhoods_in_progress) AS total_neighborhoods_in_progress,
       sum(s.neighborhoods_not_started) AS total_neighborhoods_not_started
  FROM maps_coveragesummary s
 WHERE s.municipality_id = %(municipality)s AND s.campaign_id = ANY(%(campaigns)s) AND s.grouping = 'all'
"""  # noqa: S608 - constant fragments, values bound


def summary_totals(*, municipality_id: int, campaign_ids: Sequence[int]) -> dict | None:
    """The campaigns' summed totals (SUMMARY_TOTALS_SQL), or None when one of them has no sums."""
    rows = fetch_dicts(SUMMARY_TOTALS_SQL, {"municipality": municipality_id, "campaigns": list(campaign_ids)})
    return rows[0] if rows and rows[0]["campaigns"] == len(set(campaign_ids)) else None


# A page of one campaign's 自治会 without filters, read in target order from the cells' index; the
# totals and the count come from the campaign's sums.
NEIGHBORHOOD_PAGE_SQL = f"""
SELECT c.neighborhood_id AS key, c.position, c.district_id, c.daily_life_area_id, c.partner_organization_id,
       {", ".join(f"c.{k}" for k in coverage.COUNTS)}, {_CELL_FINISHED} AS finished, 1 AS neighborhoods,
       ({_CELL_STATE} = 'complete')::int AS neighborhoods_complete,
       ({_CELL_STATE} = 'in_progress')::int AS neighborhoods_in_progress,
       ({_CELL_STATE} = 'not_started')::int AS neighborhoods_not_started,
       {_CELL_STATE} AS state, l.code, l.name
  FROM maps_coveragecell c
  JOIN neighborhoods_neighborhood l ON l.id = c.neighborhood_id
 WHERE c.municipality_id = %(municipality)s AND c.campaign_id = %(campaign)s
 ORDER BY c.position, c.neighborhood_id
 LIMIT %(limit)s OFFSET %(offset)s
"""  # noqa: S608 - constant fragments, values bound


def _has_filter(filters: CoverageFilter) -> bool:
    return any(getattr(filters, f.name) is not None for f in fields(filters))


def read_coverage(
    *, municipality_id: int, campaign_ids: Sequence[int], group_by: str, filters: CoverageFilter,
    limit: int, offset: int,
) -> CoveragePage:
    """The snapshot's cells of the campaigns, grouped, paged, labelled, with the totals over all
    groups. Without filters, from the refresh's sums (and, per 自治会, a page of the cells in target
    order); with a filter, summed from the matching cells in one statement (window sums, taken
    before the LIMIT)."""
    totals = None
    if campaign_ids and not _has_filter(filters):
        totals = summary_totals(municipality_id=municipality_id, campaign_ids=campaign_ids)
    if totals is not None and group_by == "neighborhood" and len(campaign_ids) == 1:
        rows = fetch_dicts(NEIGHBORHOOD_PAGE_SQL, {"municipality": municipality_id, "campaign": campaign_ids[0],
                                                   "limit": limit, "offset": offset})
        return CoveragePage(items=[_item(r, group_by) for r in rows], count=int(totals["total_count"]),
                            totals=_totals(totals))
    sql, params = coverage_read_sql(group_by, filters, summarized=totals is not None)
    params.update({"municipality": municipality_id, "campaigns": list(campaign_ids), "limit": limit, "offset": offset})
    rows = fetch_dicts(sql, params)
    if not rows and offset:
        # Past the last page: the count and totals still answer (every row carries them).
        head = fetch_dicts(sql, {**params, "limit": 1, "offset": 0})
        return CoveragePage(items=[], count=head[0]["total_count"] if head else 0,
                            totals=_totals(head[0]) if head else _empty_totals())
    return CoveragePage(
        items=[_item(r, group_by) for r in rows], count=rows[0]["total_count"] if rows else 0,
        totals=_totals(rows[0]) if rows else _empty_totals(),
    )


def _item(r: dict, group_by: str) -> dict:
    item = {
        "id": r["key"], "code": r.get("code"), "name": r.get("name") or "",
        **{k: r[k] for k in COUNT_FIELDS}, "coverage_pct": coverage_pct(r["finished"], r["in_scope"]),
        "state": r["state"],
        "neighborhoods": {
            "total": r["neighborhoods"], "complete": r["neighborhoods_complete"],
            "in_progress": r["neighborhoods_in_progress"], "not_started": r["neighborhoods_not_started"],
        },
    }
    if group_by == "neighborhood":
        item.update(position=r["position"], district_id=r["district_id"], daily_life_area_id=r["daily_life_area_id"],
                    partner_organization_id=r["partner_organization_id"])
    if group_by == "campaign":
        item.update(fiscal_year=r["fiscal_year"], campaign_status=r["campaign_status"])
    return item


def _totals(r: dict) -> dict:
    counts = {k: int(r[f"total_{k}"] or 0) for k in COUNT_FIELDS}
    t: dict[str, object] = dict(counts)
    t["coverage_pct"] = coverage_pct(counts["finished"], counts["in_scope"])
    t["state"] = coverage_state(
        in_scope=counts["in_scope"], finished=counts["finished"], absent_pending=counts["absent_pending"]
    )
    t["neighborhoods"] = {
        "total": int(r["total_neighborhoods"] or 0), "complete": int(r["total_neighborhoods_complete"] or 0),
        "in_progress": int(r["total_neighborhoods_in_progress"] or 0),
        "not_started": int(r["total_neighborhoods_not_started"] or 0),
    }
    return t


def _empty_totals() -> dict:
    t: dict[str, object] = dict.fromkeys(COUNT_FIELDS, 0)
    t.update(coverage_pct=0.0, state="not_started",
             neighborhoods={"total": 0, "complete": 0, "in_progress": 0, "not_started": 0})
    return t


# The snapshot's cells of one campaign as visits.coverage.campaign_cells computes them live (the same
# keys, CELL_KEYS), labelled with the 自治会's code and name, in target order.
CAMPAIGN_CELLS_READ_SQL = f"""
SELECT c.neighborhood_id, n.code, n.name, c.position, c.district_id, c.daily_life_area_id,
       c.partner_organization_id, {", ".join(f"c.{k}" for k in (*coverage.COUNTS, "leaflet_due"))},
       {_CELL_FINISHED} AS finished,
       coalesce({coverage.coverage_pct_sql(_CELL_FINISHED, "c.in_scope")}, 0)::float8 AS coverage_pct,
       {_CELL_STATE} AS state
  FROM maps_coveragecell c
  JOIN neighborhoods_neighborhood n ON n.id = c.neighborhood_id
 WHERE c.municipality_id = %(municipality)s AND c.campaign_id = %(campaign)s
 ORDER BY c.position, c.neighborhood_id
"""  # noqa: S608 - constant fragments, values bound


def read_campaign_cells(*, campaign_id: int, municipality_id: int, limit: int | None = None, offset: int = 0) -> list[dict]:
    """The snapshot's cells of a campaign in target order (campaign progress reads them, a page at a
    time): what visits.coverage.campaign_cells answers live, as of the snapshot's refresh."""
    rows = fetch_dicts(
        CAMPAIGN_CELLS_READ_SQL + " LIMIT %(limit)s OFFSET %(offset)s",
        {"campaign": campaign_id, "municipality": municipality_id, "limit": limit, "offset": offset},
    )
    return [{k: r[k] for k in coverage.CELL_KEYS} for r in rows]


# Per corporation (NULL: 自治会 not allocated), in the order their first 自治会 come in the campaign.
PARTNER_PROGRESS_SQL = f"""
SELECT c.partner_organization_id, coalesce(p.name, '') AS name, count(*)::int AS neighborhoods,
       count(*) FILTER (WHERE {_CELL_STATE} = 'complete')::int AS complete,
       coalesce(sum(c.in_scope), 0)::int AS in_scope, coalesce(sum({_CELL_FINISHED}), 0)::int AS finished
  FROM maps_coveragecell c
  LEFT JOIN visits_partnerorganization p ON p.id = c.partner_organization_id AND p.municipality_id = %(municipality)s
 WHERE c.municipality_id = %(municipality)s AND c.campaign_id = %(campaign)s
 GROUP BY c.partner_organization_id, p.name
 ORDER BY min(c.position), c.partner_organization_id NULLS LAST
"""  # noqa: S608 - constant fragments, values bound


SUMMARY_PARTNER_PROGRESS_SQL = f"""
SELECT s.key AS partner_organization_id, coalesce(p.name, '') AS name, s.neighborhoods,
       s.neighborhoods_complete AS complete, s.in_scope, {coverage.finished_sql("s")} AS finished
  FROM maps_coveragesummary s
  LEFT JOIN visits_partnerorganization p ON p.id = s.key AND p.municipality_id = %(municipality)s
 WHERE s.municipality_id = %(municipality)s AND s.campaign_id = %(campaign)s AND s.grouping = 'partner'
 ORDER BY s.position, s.key NULLS LAST
"""  # noqa: S608 - constant fragments, values bound


def read_partner_progress(*, campaign_id: int, municipality_id: int) -> list[dict]:
    """The snapshot of a campaign per corporation: the refresh's sums, or (a snapshot older than
    the sums) its cells summed in SQL; one row per corporation however many 自治会 it has."""
    params = {"campaign": campaign_id, "municipality": municipality_id}
    summarized = summary_totals(municipality_id=municipality_id, campaign_ids=[campaign_id]) is not None
    return fetch_dicts(SUMMARY_PARTNER_PROGRESS_SQL if summarized else PARTNER_PROGRESS_SQL, params)


# The weeks and the households in scope: summed from the weeks and cells matching a filter, or read
# from the refresh's sums (CoverageWeekTotal, CoverageSummary) without one.
WEEKLY_SOURCES = {
    "cells": (
        "SELECT w.week, sum(w.finished)::int AS finished FROM maps_coverageweek w"
        " WHERE w.campaign_id = %(campaign)s {week_filters} GROUP BY w.week",
        "SELECT coalesce(sum(c.in_scope), 0)::int AS in_scope FROM maps_coveragecell c"
        " WHERE c.campaign_id = %(campaign)s {cell_filters}",
    ),
    "sums": (
        "SELECT w.week, w.finished FROM maps_coverageweektotal w WHERE w.campaign_id = %(campaign)s",
        "SELECT s.in_scope FROM maps_coveragesummary s WHERE s.campaign_id = %(campaign)s AND s.grouping = 'all'",
    ),
}

WEEKLY_SQL = """
WITH weeks AS ({weeks}),
scope AS ({scope}),
span AS (
  SELECT generate_series(
           date_trunc('week', %(start)s::date)::date,
           greatest(date_trunc('week', least(%(today)s::date, %(end)s::date))::date,
                    coalesce((SELECT max(week) FROM weeks), date_trunc('week', %(start)s::date)::date)),
           interval '7 days')::date AS week
)
SELECT span.week, coalesce(weeks.finished, 0) AS finished,
       sum(coalesce(weeks.finished, 0)) OVER (ORDER BY span.week)::int AS cumulative,
       (SELECT in_scope FROM scope) AS in_scope
  FROM span LEFT JOIN weeks ON weeks.week = span.week
 ORDER BY span.week
"""


def read_weekly(*, campaign, filters: CoverageFilter, today: dt.date) -> dict:
    week_filters, params = filters.sql("w")
    cell_filters, _ = filters.sql("c")
    params.update({"campaign": campaign.pk, "start": campaign.start_date, "end": campaign.end_date, "today": today})
    summarized = not _has_filter(filters) and summary_totals(
        municipality_id=campaign.municipality_id, campaign_ids=[campaign.pk]) is not None
    weeks, scope = WEEKLY_SOURCES["sums" if summarized else "cells"]
    sql = WEEKLY_SQL.format(weeks=weeks.format(week_filters=week_filters), scope=scope.format(cell_filters=cell_filters))
    rows = fetch_dicts(sql, params)
    in_scope = rows[0]["in_scope"] if rows else 0
    items = []
    for r in rows:
        iso = r["week"].isocalendar()
        items.append({
            "week": f"{iso.year}-W{iso.week:02d}", "week_start": r["week"], "finished": r["finished"],
            "cumulative": r["cumulative"], "coverage_pct": coverage_pct(r["cumulative"], in_scope),
        })
    return {"in_scope": in_scope, "items": items}


# --- isolation indicators ------------------------------------------------------------------------

INDICATORS = (
    "single_elderly", "elderly_only", "8050", "hikikomori", "hoarding", "multi_pet",
    "no_contact", "refused", "open_concern", "open_case",
)
FLAG_INDICATORS = ("8050", "hikikomori", "hoarding", "multi_pet")


@dataclass(frozen=True)
class IndicatorSql:
    """The indicator columns for households aliased `h`, with their parameters, in order."""

    columns: str
    params: tuple
    withheld: tuple[str, ...]


def indicator_columns(user: User, *, months: int, today: dt.date) -> IndicatorSql:
    """SQL for every indicator of a household `h`. open_concern / open_case are left out (withheld)
    for roles that may not see concerns or cases."""
    from maps.access import open_case_condition, open_concern_condition

    since = _months_before(today, months)
    cols = [
        "(h.living_arrangement = 'single_elderly') AS single_elderly",
        "(h.living_arrangement = 'elderly_only') AS elderly_only",
        *[f"('{flag}' = ANY (h.risk_flags)) AS \"{flag}\"" for flag in FLAG_INDICATORS],
        "NOT EXISTS (SELECT 1 FROM visits_visitrecord vm WHERE vm.municipality_id = h.municipality_id"
        " AND vm.household_id = h.id AND vm.outcome = 'met' AND vm.visited_at >= %s) AS no_contact",
        "(EXISTS (SELECT 1 FROM visits_visitrecord vr WHERE vr.municipality_id = h.municipality_id"
        " AND vr.household_id = h.id AND vr.outcome = 'refused')"
        " OR EXISTS (SELECT 1 FROM visits_campaignhousehold cr WHERE cr.household_id = h.id"
        " AND cr.state = 'refused')) AS refused",
    ]
    params: list = [_start_of_day(since)]
    withheld = []
    for name, cond in (("open_concern", open_concern_condition(user)), ("open_case", open_case_condition(user))):
        if cond is None:
            withheld.append(name)
            continue
        cols.append(f"({cond.sql}) AS {name}")
        params.extend(cond.params)
    return IndicatorSql(",\n       ".join(cols), tuple(params), tuple(withheld))


def _months_before(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.year * 12 + (day.month - 1) - months, 12)
    return dt.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def _start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=ZoneInfo(settings.TIME_ZONE))


def indicators_true_sql(indicators: Sequence[str], available: Sequence[str]) -> str:
    """`x.a AND x.b` for the asked indicators, or "at least one" when none are asked."""
    names = list(indicators) or list(available)
    quoted = [f'x."{name}"' for name in names]
    return (" AND " if indicators else " OR ").join(quoted) if quoted else "FALSE"


ISOLATION_SQL = """
WITH x AS (
  SELECT h.id, h.external_id, h.address, h.neighborhood_id, h.status, h.location,
         {indicators}
    FROM neighborhoods_household h
   WHERE {scope} AND h.status NOT IN ('vacant', 'moved') {extra}
),
page AS (
  SELECT x.*, count(*) OVER () AS total_count
    FROM x
   WHERE {match}
   ORDER BY x.external_id
   LIMIT %s OFFSET %s
)
SELECT page.*, ST_X(page.location) AS lon, ST_Y(page.location) AS lat,
       r.id AS resource_id, r.name AS resource_name, r.type AS resource_type,
       round(ST_Distance(page.location::geography, r.location::geography)::numeric, 1)::float AS resource_distance_m
  FROM page
  LEFT JOIN LATERAL (
        -- KNN: the nearest few by the index (planar degrees), then the nearest on the ellipsoid.
        SELECT k.id, k.name, k.type, k.location
          FROM (SELECT cr.id, cr.name, cr.type, cr.location
                  FROM neighborhoods_communityresource cr
                 WHERE cr.municipality_id = %s AND page.location IS NOT NULL
                 ORDER BY cr.location <-> page.location
                 LIMIT 5) k
         ORDER BY ST_Distance(k.location::geography, page.location::geography)
         LIMIT 1
  ) r ON true
 ORDER BY page.external_id
"""


def read_isolation(
    user: User, *, months: int, indicators: Sequence[str], neighborhood_id: int | None,
    bbox: tuple[float, float, float, float] | None, limit: int, offset: int, today: dt.date,
) -> tuple[list[dict], int, tuple[str, ...]]:
    from maps.access import household_condition

    scope = household_condition(user)
    ind = indicator_columns(user, months=months, today=today)
    available = [i for i in INDICATORS if i not in ind.withheld]
    extra = ""
    extra_params: list[int | float] = []
    if neighborhood_id is not None:
        extra += " AND h.neighborhood_id = %s"
        extra_params.append(neighborhood_id)
    if bbox is not None:
        extra += " AND h.location && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        extra_params.extend(bbox)
    sql = ISOLATION_SQL.format(
        indicators=ind.columns, scope=scope.sql, extra=extra, match=indicators_true_sql(indicators, available),
    )
    params = [*ind.params, *scope.params, *extra_params, limit, offset, user.municipality_id]
    rows = fetch_dicts(sql, params)
    if not rows and offset:
        head = fetch_dicts(sql, [*params[:-3], 1, 0, user.municipality_id])
        return [], head[0]["total_count"] if head else 0, ind.withheld
    items = []
    for r in rows:
        items.append({
            "household_id": r["id"], "external_id": r["external_id"], "address": r["address"],
            "neighborhood_id": r["neighborhood_id"], "status": r["status"],
            "location": {"type": "Point", "coordinates": [round(r["lon"], 7), round(r["lat"], 7)]}
            if r["lon"] is not None else None,
            "indicators": [name for name in available if r[name]],
            "nearest_resource": {
                "id": r["resource_id"], "name": r["resource_name"], "type": r["resource_type"],
                "distance_m": r["resource_distance_m"],
            } if r["resource_id"] is not None else None,
        })
    return items, rows[0]["total_count"] if rows else 0, ind.withheld


# --- GeoJSON of the small layers ------------------------------------------------------------------

def coverage_properties(campaign_id: int | None) -> FeatureProperties:
    """The map's properties of a 自治会 feature: its area and district ids and the campaign's
    coverage from the snapshot (null counts when the campaign does not target it)."""
    pct = coverage.coverage_pct_sql(_CELL_FINISHED, "c.in_scope")
    return FeatureProperties(
        pairs=f"""'district_id', n.district_id, 'daily_life_area_id', n.daily_life_area_id,
             'targeted', c.neighborhood_id IS NOT NULL,
             'in_scope', c.in_scope, 'met', c.met, 'refused', c.refused, 'leaflet_left', c.leaflet_left,
             'moved_or_vacant', c.moved_or_vacant, 'absent_pending', c.absent_pending, 'not_visited', c.not_visited,
             'finished', {_CELL_FINISHED},
             'coverage_pct', CASE WHEN c.neighborhood_id IS NOT NULL THEN coalesce({pct}, 0) END,
             'state', CASE WHEN c.neighborhood_id IS NOT NULL THEN {_CELL_STATE} END""",
        joins="\nLEFT JOIN maps_coveragecell c ON c.campaign_id = %(campaign)s AND c.neighborhood_id = n.id",
        params={"campaign": campaign_id},
    )


RESOURCES_GEOJSON_SQL = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
         'type', 'Feature', 'id', r.id, 'geometry', ST_AsGeoJSON(r.location, 7)::json,
         'properties', json_build_object('id', r.id, 'name', r.name, 'type', r.type, 'neighborhood_id', r.neighborhood_id,
                                         'opening_days', r.opening_days)
       ) ORDER BY r.name), '[]'::json))::text
  FROM neighborhoods_communityresource r
 WHERE r.municipality_id = %(municipality)s {type_filter}
"""


def neighborhoods_geojson(
    *, municipality_id: int, campaign_id: int | None, tolerance: float,
    bbox: tuple[float, float, float, float] | None = None,
) -> str:
    """The 自治会 with the campaign's coverage: the one 自治会 GeoJSON builder (neighborhoods.queries)."""
    return neighborhoods_feature_collection(
        municipality_id=municipality_id, properties=coverage_properties(campaign_id), tolerance=tolerance, bbox=bbox,
    )


def resources_geojson(*, municipality_id: int, resource_type: str | None) -> str:
    type_filter = "AND r.type = %(type)s" if resource_type else ""
    sql = RESOURCES_GEOJSON_SQL.format(type_filter=type_filter)
    return _value(sql, {"municipality": municipality_id, "type": resource_type})


def municipality_bounds(municipality_id: int, *, user_id: int) -> list[float] | None:
    """[minLon, minLat, maxLon, maxLat] of the municipality's 自治会 (for the page's first view).
    Kept while the 自治会 hold (maps.tile_cache.kept_answer): ST_Extent reads every 自治会's polygon,
    4 ms at 3,000 of them, for every map page opened."""
    from maps.tile_cache import kept_answer

    def build() -> str:
        row = fetch_dicts(
            "SELECT ST_XMin(e) AS a, ST_YMin(e) AS b, ST_XMax(e) AS c, ST_YMax(e) AS d FROM "
            "(SELECT ST_Extent(geom) AS e FROM neighborhoods_neighborhood WHERE municipality_id = %s) s",
            [municipality_id],
        )[0]
        return json.dumps(None if row["a"] is None else [round(row[k], 6) for k in "abcd"])

    version = data_version(("neighborhood",), VersionContext(municipality_id=municipality_id, user_id=user_id))
    return json.loads(kept_answer(municipality_id=municipality_id, kind="bounds", basis="", version=version, build=build))


# --- data versions (ETags) -------------------------------------------------------------------------

def _commission_table() -> tuple[str, str, str]:
    through = User.neighborhoods.through
    return (
        through._meta.db_table,
        through._meta.get_field("user").column,
        through._meta.get_field("neighborhood").column,
    )


@dataclass(frozen=True)
class VersionContext:
    municipality_id: int
    user_id: int
    campaign_id: int | None = None
    # Instead of campaign_id: a column of the statement holding it (a tile's version chooses its
    # campaign in the same statement, maps.tiles.version_sql).
    campaign_column: str | None = None


# Inputs whose version is the municipality's sum of maps_mapdatachange rows, kept by statement-level
# triggers on these tables (migrations maps 0003 and, for the reports' other inputs, reports 0003):
# every committed change adds to it, another municipality's changes do not, and reading it is one
# index-only lookup.
LOGGED_INPUTS = {
    "household": "neighborhoods_household",
    "neighborhood": "neighborhoods_neighborhood",
    "resource": "neighborhoods_communityresource",
    "visit_record": "visits_visitrecord",
    "campaign_household": "visits_campaignhousehold",
    "allocation": "visits_allocation",
    "campaign": "visits_campaign",
    "concern": "outreach_concern",
    "case": "outreach_outreachcase",
    # reports 0003 (reports.snapshots)
    "daily_life_area": "neighborhoods_dailylifearea",
    "district": "neighborhoods_district",
    "campaign_target": "visits_campaignneighborhood",
    "scheduled_visit": "visits_scheduledvisit",
    "partner": "visits_partnerorganization",
    "user": "accounts_user",
    "concern_transition": "outreach_concerntransition",
    "case_contact": "outreach_casecontact",
    "case_meeting": "outreach_casemeeting",
    "meeting": "outreach_meeting",
    "resident": "neighborhoods_resident",  # neighborhoods 0008 (the stored duplicate report)
}

_LOGGED_SQL = (
    "(SELECT coalesce(sum(changes), 0) FROM maps_mapdatachange WHERE municipality_id = %s AND input = %s)"
)


def _version_part(name: str, ctx: VersionContext) -> tuple[str, list]:
    """The cheap version of one input of a map layer: an index lookup."""
    if name in LOGGED_INPUTS:
        return _LOGGED_SQL, [ctx.municipality_id, name]
    if name == "commission":
        table, user_col, hood_col = _commission_table()
        return (f"(SELECT coalesce(string_agg({hood_col}::text, ',' ORDER BY {hood_col}), '')"  # noqa: S608 - constant fragments, values bound
                f" FROM {table} WHERE {user_col} = %s)", [ctx.user_id])
    if name == "coverage":
        campaign, params = (ctx.campaign_column, []) if ctx.campaign_column else ("%s", [ctx.campaign_id])
        return ("(SELECT coalesce(extract(epoch FROM refreshed_at)::text, '-') FROM maps_coveragerefresh"  # noqa: S608 - a column name from the caller's code
                f" WHERE campaign_id = {campaign})", params)
    raise ValueError(f"unknown version part {name!r}")


def version_sql(parts: Sequence[str], ctx: VersionContext) -> tuple[str, list]:
    """One expression reading the versions of the named inputs (joined with ':')."""
    if not parts:
        return "''", []
    pieces, params = [], []
    for name in parts:
        sql, p = _version_part(name, ctx)
        pieces.append(f"coalesce(({sql})::text, '-')")
        params.extend(p)
    return "concat_ws(':', " + ", ".join(pieces) + ")", params


def data_version(parts: Sequence[str], ctx: VersionContext) -> str:
    sql, params = version_sql(parts, ctx)
    return _value(f"SELECT {sql}", params) or ""
