"""The per-corporation report (委託 payment and review): per アウトリーチ受託法人 and, within it, per
worker, what was planned and what was done in a survey campaign or in all campaigns of a 年度.

What counts (DEFINITIONS says the same to the people who read the numbers):

- The scope is the campaign's scheduled visits, or those of every campaign whose fiscal_year is the
  年度. A visit record belongs to the scope through its scheduled visit; a correction sent without
  one belongs to the visit of the record it corrects. Records of no scheduled visit are not counted.
- A visit record counts when it stands (no later record supersedes it: a corrected record counts
  once, as its correction), for the worker who made that record (VisitRecord.worker) and the
  corporation of its scheduled visit (the corporation the visit was given to, whatever the worker
  belongs to today).
- A completed household is a campaign household in a final state (CampaignHousehold.FINAL_STATES),
  counted once per campaign, for the worker and corporation of the standing record with a final
  outcome that finished it (the latest by visit time).
- Worker-days are the distinct (worker, day of the visit in Asia/Tokyo) of the records.
- Planned visits and planned distance read the scheduled visits that are not cancelled; the distance
  is the sum of their legs (straight lines from the previous stop: the office for the first), without
  the way back to the office, which the plan does not store.
- Outcomes entered at /scheduled-visits/{id}/outcome make no visit record: they are counted apart
  (`without_visit_record`), so a reviewer sees what the rows above cannot attribute.

The numbers are about work, not residents: no small cells are suppressed here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from backend.db import fetch_dicts
from backend.errors import NotFound
from reports.fiscal import wareki_fiscal_year
from reports.tables import Table
from visits.models import Campaign, CampaignHousehold, ScheduledVisit, VisitOutcome
from visits.services import OUTCOME_STATES

# The metrics of every row (corporation, worker, total), in the order the tables show them.
METRICS = (
    "planned_visits", "planned_distance_km", "visits", "households_completed", "absent", "absent_rate_pct",
    "leaflets", "worker_days", "stops_per_worker_day",
)

DEFINITIONS: tuple[tuple[str, str, str], ...] = (
    ("planned_visits", "予定件数", "対象の調査の訪問予定のうち、取消されていないもの"),
    ("planned_distance_km", "計画移動距離(km)",
     "取消されていない訪問予定の区間距離（前の訪問先から、1件目は事業所からの直線距離）の合計。事業所へ戻る区間は計画に保存されていないため含まない"),
    ("visits", "延べ訪問件数",
     "対象の調査の訪問予定に対する訪問記録のうち、訂正されていないもの（訂正された記録は訂正後の1件として数える）。記録した訪問員と、訪問予定の法人に計上"),
    ("households_completed", "完了世帯数",
     "調査の状態が完了（面談・拒否・転居・空き家・チラシ投函済）の世帯を調査ごとに1件。完了させた訪問記録（完了の結果をもつ最新の記録）の訪問員・法人に計上"),
    ("absent", "不在件数", "延べ訪問件数のうち結果が不在のもの"),
    ("absent_rate_pct", "不在率(%)", "不在件数 ÷ 延べ訪問件数 × 100（小数第1位、訪問がなければ空欄）"),
    ("leaflets", "チラシ投函", "延べ訪問件数のうち結果がチラシ投函のもの"),
    ("worker_days", "稼働人日", "訪問記録のある訪問員と日（日本時間の訪問日）の組の数"),
    ("stops_per_worker_day", "1日あたり平均訪問件数", "延べ訪問件数 ÷ 稼働人日（小数第1位、訪問がなければ空欄）"),
)

# Final outcomes: those that put a household in a final state.
_FINAL_OUTCOMES = [o for o, state in OUTCOME_STATES.items() if state in CampaignHousehold.FINAL_STATES]
_ABSENT = VisitOutcome.ABSENT.value
_LEAFLET = VisitOutcome.LEAFLET_LEFT.value
_CANCELLED = ScheduledVisit.Status.CANCELLED.value
_RECORDED = [ScheduledVisit.Status.DONE.value, ScheduledVisit.Status.ABSENT.value]

# Parameters: %(m)s the municipality, %(campaigns)s the campaign ids in scope, %(tz)s, %(final_outcomes)s and
# %(final_states)s (the report's other values: corporation_report's params).
_RECORDS_CTE = """
WITH RECURSIVE standing AS (
  SELECT vr.id, vr.household_id, vr.worker_id, vr.outcome, vr.visited_at, vr.received_at,
         vr.scheduled_visit_id, vr.supersedes_id
    FROM visits_visitrecord vr
   WHERE vr.municipality_id = %(m)s
     AND (vr.scheduled_visit_id IS NULL OR vr.scheduled_visit_id IN (
            SELECT sv.id FROM visits_scheduledvisit sv
             WHERE sv.municipality_id = %(m)s AND sv.campaign_id = ANY(%(campaigns)s)))
     AND NOT EXISTS (SELECT 1 FROM visits_visitrecord c WHERE c.supersedes_id = vr.id)
), earlier AS (
  -- a correction sent without its scheduled visit: the visit of the nearest record it corrects
  SELECT s.id AS record_id, s.supersedes_id AS next_id, NULL::uuid AS sv_id
    FROM standing s WHERE s.scheduled_visit_id IS NULL AND s.supersedes_id IS NOT NULL
  UNION ALL
  SELECT e.record_id, p.supersedes_id, p.scheduled_visit_id
    FROM earlier e JOIN visits_visitrecord p ON p.id = e.next_id
   WHERE e.sv_id IS NULL
), records AS (
  SELECT s.id, s.household_id, s.worker_id, s.outcome, s.visited_at, s.received_at,
         sv.id AS sv_id, sv.campaign_id, sv.partner_organization_id AS partner_id,
         (s.visited_at AT TIME ZONE %(tz)s)::date AS day
    FROM standing s
    LEFT JOIN earlier e ON e.record_id = s.id AND e.sv_id IS NOT NULL  -- at most one: the walk stops there
    JOIN visits_scheduledvisit sv ON sv.id = COALESCE(s.scheduled_visit_id, e.sv_id)
   WHERE sv.municipality_id = %(m)s AND sv.campaign_id = ANY(%(campaigns)s)
), finishing AS (
  SELECT DISTINCT ON (r.campaign_id, r.household_id) r.campaign_id, r.household_id, r.partner_id, r.worker_id
    FROM records r
   WHERE r.outcome = ANY(%(final_outcomes)s)
   ORDER BY r.campaign_id, r.household_id, r.visited_at DESC, r.received_at DESC, r.id DESC
), completed AS (
  SELECT ch.campaign_id, ch.household_id, f.partner_id, f.worker_id
    FROM visits_campaignhousehold ch
    LEFT JOIN finishing f ON f.campaign_id = ch.campaign_id AND f.household_id = ch.household_id
   WHERE ch.municipality_id = %(m)s AND ch.campaign_id = ANY(%(campaigns)s) AND ch.state = ANY(%(final_states)s)
)
"""

# Constant text joined at import; every value is a bound parameter.
_REPORT_SQL = _RECORDS_CTE + """
, facts AS (
  SELECT sv.partner_organization_id AS partner_id, sv.worker_id, 1 AS planned, sv.leg_m, 0 AS visit,
         0 AS absent, 0 AS leaflet, NULL::date AS day, 0 AS completed
    FROM visits_scheduledvisit sv
   WHERE sv.municipality_id = %(m)s AND sv.campaign_id = ANY(%(campaigns)s) AND sv.status <> %(cancelled)s
  UNION ALL
  SELECT partner_id, worker_id, 0, 0, 1, (outcome = %(absent)s)::int, (outcome = %(leaflet)s)::int, day, 0
    FROM records
  UNION ALL
  SELECT partner_id, worker_id, 0, 0, 0, 0, 0, NULL, 1 FROM completed WHERE partner_id IS NOT NULL
  UNION ALL
  -- a corporation given 自治会 of the scope has a row even before it has worked
  SELECT DISTINCT a.partner_organization_id, NULL::integer, 0, 0, 0, 0, 0, NULL::date, 0
    FROM visits_allocation a
   WHERE a.municipality_id = %(m)s AND a.campaign_id = ANY(%(campaigns)s)
), grouped AS (
  SELECT GROUPING(partner_id) AS g_partner, GROUPING(worker_id) AS g_worker, partner_id, worker_id,
         COALESCE(sum(planned), 0) AS planned_visits,
         COALESCE(round(sum(leg_m) / 1000.0, 1), 0) AS planned_distance_km,
         COALESCE(sum(visit), 0) AS visits,
         COALESCE(sum(completed), 0) AS households_completed,
         COALESCE(sum(absent), 0) AS absent,
         round(100.0 * sum(absent) / NULLIF(sum(visit), 0), 1) AS absent_rate_pct,
         COALESCE(sum(leaflet), 0) AS leaflets,
         count(DISTINCT (worker_id, day)) FILTER (WHERE visit = 1) AS worker_days,
         round(sum(visit)::numeric / NULLIF(count(DISTINCT (worker_id, day)) FILTER (WHERE visit = 1), 0), 1)
           AS stops_per_worker_day
    FROM facts
   GROUP BY GROUPING SETS ((partner_id, worker_id), (partner_id), ())
)
SELECT g.*, p.code AS partner_code, p.name AS partner_name,
       COALESCE(NULLIF(u.display_name, ''), u.username) AS worker_name
  FROM grouped g
  LEFT JOIN visits_partnerorganization p ON p.id = g.partner_id AND p.municipality_id = %(m)s
  LEFT JOIN accounts_user u ON u.id = g.worker_id AND u.municipality_id = %(m)s
"""  # noqa: S608

_WITHOUT_RECORD_SQL = _RECORDS_CTE + """
SELECT (SELECT count(*) FROM visits_scheduledvisit sv
         WHERE sv.municipality_id = %(m)s AND sv.campaign_id = ANY(%(campaigns)s) AND sv.status = ANY(%(recorded)s)
           AND NOT EXISTS (SELECT 1 FROM records r WHERE r.sv_id = sv.id)) AS visits,
       (SELECT count(*) FROM completed WHERE partner_id IS NULL) AS households_completed
"""  # noqa: S608


def _scope(municipality_id: int, campaign_id: int | None, fiscal_year: int | None) -> tuple[dict, list[int]]:
    if (campaign_id is None) == (fiscal_year is None):
        raise ValueError("give exactly one of campaign_id and fiscal_year")
    if campaign_id is not None:
        campaign = Campaign.objects.filter(municipality_id=municipality_id, pk=campaign_id).first()
        if campaign is None:
            raise NotFound("No such campaign.")
        year = campaign.fiscal_year
        about = {"id": campaign.pk, "name": campaign.name, "fiscal_year": year}
        ids = [campaign.pk]
    else:
        assert fiscal_year is not None
        year, about = fiscal_year, None
        ids = list(Campaign.objects.filter(municipality_id=municipality_id, fiscal_year=year).values_list("pk", flat=True))
    return {"campaign": about, "fiscal_year": year, "label": wareki_fiscal_year(year)}, ids



def _metrics(row: dict) -> dict[str, Any]:
    return {k: float(row[k]) if isinstance(row[k], Decimal) else row[k] for k in METRICS}


def corporation_report(*, municipality_id: int, campaign_id: int | None = None, fiscal_year: int | None = None) -> dict:
    """The report of one campaign or of a 年度's campaigns (exactly one of the two), aggregated in two
    statements. A campaign of another municipality is NotFound."""
    scope, campaign_ids = _scope(municipality_id, campaign_id, fiscal_year)
    params = {
        "m": municipality_id, "campaigns": campaign_ids, "tz": settings.TIME_ZONE,
        "final_outcomes": _FINAL_OUTCOMES, "final_states": list(CampaignHousehold.FINAL_STATES),
        "cancelled": _CANCELLED, "absent": _ABSENT, "leaflet": _LEAFLET, "recorded": _RECORDED,
    }
    corporations: dict[int, dict] = {}
    workers: list[dict] = []
    total: dict[str, Any] = {}
    for row in fetch_dicts(_REPORT_SQL, params):
        if row["g_partner"]:
            total = _metrics(row)
        elif row["g_worker"]:
            corporations[row["partner_id"]] = {
                "id": row["partner_id"], "code": row["partner_code"], "name": row["partner_name"],
                **_metrics(row), "workers": [],
            }
        elif row["worker_id"] is not None:
            workers.append(row)
    for row in sorted(workers, key=lambda r: (r["worker_name"] or "", r["worker_id"])):
        corporations[row["partner_id"]]["workers"].append(
            {"id": row["worker_id"], "name": row["worker_name"], **_metrics(row)}
        )
    [missing] = fetch_dicts(_WITHOUT_RECORD_SQL, params)
    return {
        "scope": scope,
        "corporations": sorted(corporations.values(), key=lambda c: (c["code"], c["id"])),
        "total": total,
        "without_visit_record": {"visits": missing["visits"], "households_completed": missing["households_completed"]},
        "definitions": [{"key": k, "label": label, "definition": text} for k, label, text in DEFINITIONS],
    }


# --- as tables (exports) -----------------------------------------------------------------------------

_LABELS = {k: label for k, label, _text in DEFINITIONS}


def corporation_tables(report: dict) -> list[Table]:
    """The report as tables with Japanese headers: per corporation (with the total), per worker, and
    the scope with the definitions."""
    scope = report["scope"]
    headers = [_LABELS[k] for k in METRICS]
    corporations = [
        [c["code"], c["name"], *(c[k] for k in METRICS)] for c in report["corporations"]
    ]
    corporations.append(["", "合計", *(report["total"][k] for k in METRICS)])
    workers = [
        [c["code"], c["name"], w["name"], *(w[k] for k in METRICS)]
        for c in report["corporations"] for w in c["workers"]
    ]
    missing = report["without_visit_record"]
    about = [
        ["年度", scope["label"]],
        ["調査", scope["campaign"]["name"] if scope["campaign"] else "年度内のすべての調査"],
        ["訪問記録のない結果（件）", missing["visits"]],
        ["訪問記録のない完了世帯", missing["households_completed"]],
        *([d["label"], d["definition"]] for d in report["definitions"]),
        ["注", "訪問員の業務量の集計であり、住民の人数ではないため小さな値の秘匿は行わない"],
    ]
    return [
        Table("法人別", ["法人コード", "法人名", *headers], corporations),
        Table("訪問員別", ["法人コード", "法人名", "訪問員", *headers], workers),
        Table("対象と定義", ["項目", "内容"], about),
    ]
