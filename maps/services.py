"""The only writes of the maps app: computing a campaign's coverage snapshot (maps.models) from
the survey's tables, and asking for that when a read finds the sources changed."""

import datetime as dt
import logging
import time

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from maps import queries
from visits import coverage
from visits.models import Campaign

logger = logging.getLogger("tsunagu.maps")

# A refresh asked for but not done after this long (the job cluster was down, the task failed) is
# asked for again by the next read.
REQUEST_RETRY = dt.timedelta(minutes=10)


def claim_refresh(row: QuerySet, version: str) -> bool:
    """Ask for the refresh of `version` of a stored result (`row`: its one row, with `version`,
    `requested_version` and `requested_at`; a report snapshot, the possible duplicates' scan): only
    the first reader that finds it stale gets True (the UPDATE's condition is checked again on the
    locked row), or the next one after REQUEST_RETRY."""
    now = timezone.now()
    return bool(
        row.exclude(version=version)
        .filter(~Q(requested_version=version) | Q(requested_at__isnull=True) | Q(requested_at__lt=now - REQUEST_RETRY))
        .update(requested_version=version, requested_at=now)
    )

# Claim the refresh of a version: only the first reader that finds it stale gets a row back.
_CLAIM_SQL = """
INSERT INTO maps_coveragerefresh
       (campaign_id, municipality_id, source_version, requested_version, requested_at, refreshed_at, duration_ms)
VALUES (%(campaign)s, %(municipality)s, '', %(version)s, now(), NULL, 0)
ON CONFLICT (campaign_id) DO UPDATE SET requested_version = EXCLUDED.requested_version, requested_at = now()
 WHERE maps_coveragerefresh.source_version <> EXCLUDED.requested_version
   AND (maps_coveragerefresh.requested_version <> EXCLUDED.requested_version
        OR maps_coveragerefresh.requested_at < now() - %(retry)s)
RETURNING campaign_id
"""


def _merge_ctes(source: str, table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    """Two CTEs that make `table`'s rows of the campaign those of the CTE `source`, writing only
    what differs: `<source>_written` inserts new rows and updates changed ones, `<source>_gone`
    deletes rows no longer there; an unchanged row is not touched (no new row version, no index
    entries, no WAL). Each returns one row per row written or deleted."""
    values = [c for c in columns if c not in key]
    matches = " AND ".join(f"f.{c} = t.{c}" for c in key)
    return f"""
{source}_gone AS (
  DELETE FROM {table} t WHERE t.campaign_id = %(campaign)s AND NOT EXISTS (SELECT 1 FROM {source} f WHERE {matches})
  RETURNING 1
),
{source}_written AS (
  INSERT INTO {table} AS t ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {source}
  ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(f"{c} = EXCLUDED.{c}" for c in values)}
   WHERE ({', '.join(f"t.{c}" for c in values)}) IS DISTINCT FROM ({', '.join(f"EXCLUDED.{c}" for c in values)})
  RETURNING 1
)"""  # noqa: S608 - constant fragments, values bound


# The whole snapshot of a campaign in one statement: visits.coverage's one pass over the households
# gives the cells and the weeks, and both tables are merged from it. Answers the number of cells
# computed, written and deleted, then the same of weeks.
_REFRESH_SQL = f"""
WITH {coverage.SNAPSHOT_CTES},
{_merge_ctes("cells", "maps_coveragecell", coverage.SNAPSHOT_COLUMNS, ("campaign_id", "neighborhood_id"))},
{_merge_ctes("weeks", "maps_coverageweek", coverage.WEEK_COLUMNS, ("campaign_id", "neighborhood_id", "week"))}
SELECT (SELECT count(*) FROM cells), (SELECT count(*) FROM cells_written), (SELECT count(*) FROM cells_gone),
       (SELECT count(*) FROM weeks), (SELECT count(*) FROM weeks_written), (SELECT count(*) FROM weeks_gone)
"""  # noqa: S608 - constant fragments, values bound


# The snapshot's sums (maps.models.CoverageSummary, CoverageWeekTotal), rewritten from the cells and
# weeks just merged, in the same transaction. A few hundred rows at most (the campaign, its
# corporations, 地区 and 日常生活圏域), from one pass over the campaign's cells; a campaign without
# cells still gets its "all" row (the empty grouping set answers one row over no rows), which tells
# a reader that the sums exist.
_SUMMARY_GROUPINGS = {  # GROUPING(partner, district, area): 1 for each column not grouped by
    7: "all", 3: "partner", 5: "district", 6: "daily_life_area",
}
_SUMMARY_SQL = (
    "DELETE FROM maps_coveragesummary WHERE campaign_id = %(campaign)s",
    "DELETE FROM maps_coverageweektotal WHERE campaign_id = %(campaign)s",
    """
INSERT INTO maps_coverageweektotal (campaign_id, municipality_id, week, finished)
SELECT %(campaign)s, %(municipality)s, w.week, sum(w.finished)
  FROM maps_coverageweek w WHERE w.campaign_id = %(campaign)s GROUP BY w.week
""",
    f"""
INSERT INTO maps_coveragesummary
       (campaign_id, municipality_id, grouping, key, position, {", ".join(coverage.COUNTS)}, neighborhoods,
        neighborhoods_complete, neighborhoods_in_progress, neighborhoods_not_started)
SELECT %(campaign)s, %(municipality)s,
       CASE GROUPING(c.partner_organization_id, c.district_id, c.daily_life_area_id)
            {" ".join(f"WHEN {bits} THEN '{name}'" for bits, name in _SUMMARY_GROUPINGS.items())} END,
       coalesce(c.partner_organization_id, c.district_id, c.daily_life_area_id), coalesce(min(c.position), 0),
       {", ".join(f"coalesce(sum(c.{k}), 0)" for k in coverage.COUNTS)}, count(*),
       count(*) FILTER (WHERE {coverage.cell_state_sql("c")} = 'complete'),
       count(*) FILTER (WHERE {coverage.cell_state_sql("c")} = 'in_progress'),
       count(*) FILTER (WHERE {coverage.cell_state_sql("c")} = 'not_started')
  FROM maps_coveragecell c
 WHERE c.campaign_id = %(campaign)s
 GROUP BY GROUPING SETS ((), (c.partner_organization_id), (c.district_id), (c.daily_life_area_id))
"""  # noqa: S608 - constant fragments, values bound
)


def refresh_coverage(campaign_id: int) -> dict:
    """Recompute one campaign's snapshot in one SQL statement (cells and weekly finishes from one
    pass over its households, by visits.coverage's formula): readers see the old snapshot or the
    new one, never half of each.
    Only the cells and weeks that changed are written: between two refreshes most of a large
    town's 自治会 have not changed, and rewriting every row cost more than computing them."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return {"campaign": campaign_id, "skipped": "no such campaign"}
    started = time.perf_counter()
    params = coverage.aggregate_params(campaign_id=campaign.pk, municipality_id=campaign.municipality_id)
    with transaction.atomic(), connection.cursor() as cursor:
        # One refresh of a campaign at a time; a second one waits, then recomputes from newer data.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('maps.coverage:' || %s::text, 0))", [campaign.pk])
        version = queries.freshness([campaign.pk])[campaign.pk]["version"]
        # The planner prices the statement's CTEs high (it cannot estimate the weeks per 自治会), which
        # turns on JIT compilation: 6.1 s of the statement's 13.8 s under EXPLAIN ANALYZE at 300,000
        # households, where without it the statement takes 3.6 s.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_REFRESH_SQL, params)
        cells, cells_written, cells_gone, weeks, weeks_written, weeks_gone = cursor.fetchone()
        for statement in _SUMMARY_SQL:
            cursor.execute(statement, {"campaign": campaign.pk, "municipality": campaign.municipality_id})
        duration_ms = round((time.perf_counter() - started) * 1000)
        cursor.execute(
            """
            INSERT INTO maps_coveragerefresh
                   (campaign_id, municipality_id, source_version, requested_version, requested_at, refreshed_at, duration_ms)
            VALUES (%(campaign)s, %(municipality)s, %(version)s, %(version)s, NULL, %(now)s, %(ms)s)
            ON CONFLICT (campaign_id) DO UPDATE
               SET source_version = EXCLUDED.source_version, refreshed_at = EXCLUDED.refreshed_at,
                   duration_ms = EXCLUDED.duration_ms
            """,
            {"campaign": campaign.pk, "municipality": campaign.municipality_id, "version": version,
             "now": timezone.now(), "ms": duration_ms},
        )
    written = cells_written + cells_gone + weeks_written + weeks_gone
    logger.info("coverage of campaign %s refreshed: %s cells, %s weeks, %s rows written, %s ms",
                campaign.pk, cells, weeks, written, duration_ms)
    return {"campaign": campaign.pk, "cells": cells, "weeks": weeks, "written": written, "duration_ms": duration_ms}


def ensure_fresh(campaigns: list[Campaign]) -> dict[int, dict]:
    """Before a read: ask for a refresh of every campaign whose inputs changed since its snapshot
    (once per version, see _CLAIM_SQL). With the job cluster the read answers from the current
    snapshot and says it is stale; with tasks run inline (tests) the refresh is done first.
    Returns each campaign's snapshot state."""
    if not campaigns:
        return {}
    by_id = {c.pk: c for c in campaigns}
    state = queries.freshness(list(by_id))
    claimed = []
    for cid, row in state.items():
        if row["source_version"] == row["version"]:
            continue
        retry_due = row["requested_at"] is None or row["requested_at"] < timezone.now() - REQUEST_RETRY
        if row["requested_version"] == row["version"] and not retry_due:
            continue
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, {"campaign": cid, "municipality": by_id[cid].municipality_id,
                                        "version": row["version"], "retry": REQUEST_RETRY})  # type: ignore[dict-item]  # psycopg adapts timedelta (interval); the stubs' _SQLType lacks it
            if cursor.fetchone():
                claimed.append(cid)
    if claimed:
        from django_q.tasks import async_task

        for cid in claimed:
            async_task("maps.tasks.refresh_coverage_task", cid, by_id[cid].municipality_id, group="maps-coverage")
        state = queries.freshness(list(by_id))
    return {
        cid: {
            "refreshed_at": row["refreshed_at"],
            "stale": row["source_version"] != row["version"],
            "refreshing": row["source_version"] != row["version"] and row["requested_version"] == row["version"],
        }
        for cid, row in state.items()
    }


def snapshot_summary(states: dict[int, dict]) -> dict | None:
    """How fresh a read of the snapshots of these campaigns is (ensure_fresh's states): the oldest
    refresh, and whether any is stale or being refreshed. None when no campaign was read."""
    if not states:
        return None
    refreshed = [s["refreshed_at"] for s in states.values()]
    return {
        "refreshed_at": None if any(r is None for r in refreshed) else min(refreshed),
        "stale": any(s["stale"] for s in states.values()),
        "refreshing": any(s["refreshing"] for s in states.values()),
    }


def refresh_due_coverage(*, max_age: dt.timedelta = dt.timedelta(minutes=5)) -> list[int]:
    """The periodic sweep: running campaigns older than max_age (their visit records without a
    schedule are not in the cheap version), and any campaign whose inputs changed."""
    cutoff = timezone.now() - max_age
    ids = list(Campaign.objects.values_list("pk", flat=True))
    state = queries.freshness(ids)
    running = set(Campaign.objects.filter(status=Campaign.Status.RUNNING).values_list("pk", flat=True))
    due = [
        cid for cid, row in state.items()
        if row["source_version"] != row["version"]
        or (cid in running and (row["refreshed_at"] is None or row["refreshed_at"] < cutoff))
    ]
    for cid in due:
        refresh_coverage(cid)
    return due
