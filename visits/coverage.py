"""Coverage of a survey campaign: the one formula. Campaign progress (visits.services), the map's
snapshot (maps.services fills maps_coveragecell and maps_coverageweek from the SQL here), the map's
GeoJSON and tiles, and the 年度 report all read it.

Per targeted 自治会 of a campaign, counting the municipality's households whose 自治会 it is:
- in scope: every household, except one already known vacant or moved (Household.status) that the
  campaign has not itself finished (a household the campaign found vacant stays in scope, finished);
- finished: a final state of the campaign (met, refused, leaflet left, moved or vacant);
- each in-scope household not finished is absent_pending (tried, no final state yet) or not_visited;
  so in_scope = finished + absent_pending + not_visited;
- coverage_pct = finished / in_scope in percent, rounded half up to one decimal (0.0 when nothing is
  in scope);
- state: complete (something in scope, all finished), in_progress (anything finished or tried),
  else not_started.

The SQL fragments are the rule; `coverage_pct` and `coverage_state` are the same rule for sums made
in Python (tests check the two agree)."""


from django.conf import settings

from backend.db import fetch_dicts
from visits.models import CampaignHousehold

FINAL_STATES_SQL = "(" + ", ".join(f"'{state}'" for state in CampaignHousehold.FINAL_STATES) + ")"
_KNOWN_GONE = "h.status IN ('vacant', 'moved')"

# The counts of one 自治会 (the columns of a coverage cell).
COUNTS = ("in_scope", "met", "refused", "leaflet_left", "moved_or_vacant", "absent_pending", "not_visited")
FINISHED_STATES_COUNTS = ("met", "refused", "leaflet_left", "moved_or_vacant")


def finished_sql(alias: str) -> str:
    """Finished households of a row carrying the counts (a cell `alias.`, or '' for bare columns)."""
    prefix = f"{alias}." if alias else ""
    return "(" + " + ".join(f"{prefix}{name}" for name in FINISHED_STATES_COUNTS) + ")"


def coverage_pct_sql(finished: str, in_scope: str) -> str:
    """coverage_pct as numeric, NULL when nothing is in scope (callers say what that shows as)."""
    return f"round(100.0 * ({finished}) / NULLIF({in_scope}, 0), 1)"


def state_sql(*, in_scope: str, finished: str, absent_pending: str) -> str:
    return (f"(CASE WHEN {in_scope} > 0 AND {finished} >= {in_scope} THEN 'complete'"
            f" WHEN {finished} + {absent_pending} > 0 THEN 'in_progress' ELSE 'not_started' END)")


def cell_state_sql(alias: str) -> str:
    """The state of a row carrying the counts (a maps_coveragecell row, a campaign cell)."""
    prefix = f"{alias}." if alias else ""
    return state_sql(in_scope=f"{prefix}in_scope", finished=finished_sql(alias), absent_pending=f"{prefix}absent_pending")


def coverage_pct(finished: int, in_scope: int) -> float:
    """coverage_pct_sql for sums made in Python: half up in exact integers, as PostgreSQL's numeric
    round (Python's round() would take 6.25 to 6.2, the database to 6.3)."""
    if in_scope <= 0:
        return 0.0
    tenths = (2000 * finished + in_scope) // (2 * in_scope)
    return tenths / 10


def coverage_state(*, in_scope: int, finished: int, absent_pending: int) -> str:
    """state_sql for sums made in Python."""
    if in_scope > 0 and finished >= in_scope:
        return "complete"
    return "in_progress" if finished + absent_pending > 0 else "not_started"


# --- the aggregate -------------------------------------------------------------------------------

# The counts of households `h` (NULL for none) with their campaign state `ch` (NULL for none).
# leaflet_due (不在, a leaflet still to leave) is a part of the households not finished, not a
# bucket of its own.
_COUNTS_SQL = f"""
       count(h.id) FILTER (WHERE NOT {_KNOWN_GONE} OR ch.state IN {FINAL_STATES_SQL}) AS in_scope,
       count(h.id) FILTER (WHERE ch.state = 'met') AS met,
       count(h.id) FILTER (WHERE ch.state = 'refused') AS refused,
       count(h.id) FILTER (WHERE ch.state = 'leaflet_left') AS leaflet_left,
       count(h.id) FILTER (WHERE ch.state IN ('moved', 'vacant')) AS moved_or_vacant,
       count(h.id) FILTER (WHERE NOT {_KNOWN_GONE} AND ch.state NOT IN {FINAL_STATES_SQL}
                           AND ch.attempts > 0) AS absent_pending,
       count(h.id) FILTER (WHERE NOT {_KNOWN_GONE}
                           AND (ch.id IS NULL OR (ch.state NOT IN {FINAL_STATES_SQL} AND ch.attempts = 0))) AS not_visited,
       count(h.id) FILTER (WHERE NOT {_KNOWN_GONE} AND ch.state = 'leaflet_due') AS leaflet_due"""

# The households of a targeted 自治会 `t` (of the municipality) with their campaign state: every
# 自治会 has at least one row (h NULL when it has no households).
_HOUSEHOLDS_SQL = """
  LEFT JOIN neighborhoods_household h
         ON h.municipality_id = %(municipality)s AND h.neighborhood_id = t.neighborhood_id
  LEFT JOIN visits_campaignhousehold ch ON ch.campaign_id = t.campaign_id AND ch.household_id = h.id"""

# Copied onto a cell: the 自治会's place in the campaign, its area, district and allocation.
_LABELS_SQL = """
  JOIN visits_campaign c ON c.id = t.campaign_id AND c.municipality_id = %(municipality)s
  JOIN neighborhoods_neighborhood n ON n.id = t.neighborhood_id AND n.municipality_id = %(municipality)s
  LEFT JOIN visits_allocation a ON a.campaign_id = t.campaign_id AND a.neighborhood_id = t.neighborhood_id"""

# One row per targeted 自治会 of the campaign (of the municipality), counted live. Parameters:
# %(campaign)s, %(municipality)s.
CELLS_SQL = f"""
SELECT t.campaign_id, t.neighborhood_id, %(municipality)s AS municipality_id, t.position,
       n.district_id, n.daily_life_area_id, a.partner_organization_id, n.code, n.name,{_COUNTS_SQL}
  FROM visits_campaignneighborhood t{_LABELS_SQL}{_HOUSEHOLDS_SQL}
 WHERE t.campaign_id = %(campaign)s
 GROUP BY t.campaign_id, t.neighborhood_id, t.position, n.district_id, n.daily_life_area_id, n.code, n.name,
          a.partner_organization_id
"""  # noqa: S608 - constant fragments, values bound

_CAMPAIGN_CELLS_SQL = f"""
SELECT cells.*, {finished_sql("cells")} AS finished,
       coalesce({coverage_pct_sql(finished_sql("cells"), "cells.in_scope")}, 0)::float8 AS coverage_pct,
       {cell_state_sql("cells")} AS state
  FROM ({CELLS_SQL}) cells
 ORDER BY cells.position, cells.neighborhood_id
"""  # noqa: S608 - constant fragments, values bound

CELL_KEYS = (
    "neighborhood_id", "code", "name", "position", "district_id", "daily_life_area_id", "partner_organization_id",
    *COUNTS, "leaflet_due", "finished", "coverage_pct", "state",
)


def campaign_cells(*, campaign_id: int, municipality_id: int) -> list[dict]:
    """The coverage of each targeted 自治会 of a campaign, computed now, in target order: the keys
    of CELL_KEYS (a campaign of another municipality has none)."""
    rows = fetch_dicts(_CAMPAIGN_CELLS_SQL, {"campaign": campaign_id, "municipality": municipality_id})
    return [{k: r[k] for k in CELL_KEYS} for r in rows]


# --- the map's snapshot: cells and finishes per week, in one pass -----------------------------------

# What the snapshot keeps of a cell (maps_coveragecell's columns) and of a week (maps_coverageweek's).
SNAPSHOT_COLUMNS = (
    "campaign_id", "neighborhood_id", "municipality_id", "position", "district_id", "daily_life_area_id",
    "partner_organization_id", *COUNTS, "leaflet_due",
)
WEEK_COLUMNS = (
    "campaign_id", "neighborhood_id", "municipality_id", "district_id", "daily_life_area_id",
    "partner_organization_id", "week", "finished",
)

# The ISO week (its Monday, Japan time) in which a finished household was finished: its stored
# finished_at (its first final visit record since the campaign started, corrected records left
# out, else the day of the attempt that finished it, else when its state last changed; kept by the
# triggers of migration visits 0008). NULL for a household not finished.
_FINISHED_WEEK_SQL = "date_trunc('week', ch.finished_at AT TIME ZONE %(tz)s)::date"

# The snapshot of a campaign as the CTEs `cells` (SNAPSHOT_COLUMNS, CELLS_SQL's numbers) and
# `weeks` (WEEK_COLUMNS: finished households per 自治会 and week), for maps.services to merge in the
# same statement. Parameters: as CELLS_SQL, with %(tz)s.
#
# One pass over the campaign's households counts them per 自治会 and week of finishing (`counted`);
# a cell is the sum of its 自治会's weeks, a week row is one of them. Computing the weeks in a
# statement of their own, as the snapshot did first, went over the households a second time: the
# refresh took 2.7x the cells' aggregate at 300,000 households (2.2x at 1.8M); in one pass, dating
# each finish by a scan of the municipality's final visit records since the campaign started, it
# took 2.0x. The finish time is now stored on the campaign state (visits_campaignhousehold.
# finished_at), so the pass reads no visit record and takes about what the aggregate takes (1.0x to
# 1.1x, bench/bench_coverage.py).
SNAPSHOT_CTES = f"""
counted AS MATERIALIZED (
  SELECT t.neighborhood_id, {_FINISHED_WEEK_SQL} AS week,{_COUNTS_SQL}
    FROM visits_campaignneighborhood t{_HOUSEHOLDS_SQL}
   WHERE t.campaign_id = %(campaign)s
   GROUP BY 1, 2
),
cells AS MATERIALIZED (
  SELECT t.campaign_id, t.neighborhood_id, %(municipality)s AS municipality_id, t.position,
         n.district_id, n.daily_life_area_id, a.partner_organization_id,
         {", ".join(f"sum(k.{name})::int AS {name}" for name in (*COUNTS, "leaflet_due"))}
    FROM visits_campaignneighborhood t
    JOIN counted k ON k.neighborhood_id = t.neighborhood_id{_LABELS_SQL}
   WHERE t.campaign_id = %(campaign)s
   GROUP BY t.campaign_id, t.neighborhood_id, t.position, n.district_id, n.daily_life_area_id, a.partner_organization_id
),
weeks AS MATERIALIZED (
  SELECT cells.campaign_id, cells.neighborhood_id, cells.municipality_id, cells.district_id,
         cells.daily_life_area_id, cells.partner_organization_id, k.week,
         {finished_sql("k")}::int AS finished
    FROM counted k JOIN cells ON cells.neighborhood_id = k.neighborhood_id
   WHERE k.week IS NOT NULL
)"""  # noqa: S608 - constant fragments, values bound


def aggregate_params(*, campaign_id: int, municipality_id: int) -> dict:
    """The parameters of CELLS_SQL and SNAPSHOT_CTES."""
    return {"campaign": campaign_id, "municipality": municipality_id, "tz": settings.TIME_ZONE}
