"""The 年度 report: what a municipality counts for the year of 重層的支援体制整備事業 (April–March).

What counts, and which date decides the year (the README says the same, for the people who read the
numbers):

- 世帯訪問調査. The households' outcomes (in scope, 面談, 拒否, 転居・空き家, チラシ投函, 全回不在)
  are those of the campaigns of the 年度 (Campaign.fiscal_year), as the coverage of each 自治会 counts
  them (visits.coverage: the one formula the progress and the map read). 全回不在 is a household
  every attempt found absent: due a leaflet, or left one. 延べ訪問件数 counts every visit record that
  stands (a corrected record counts once, as its correction) whose visit date (Asia/Tokyo) falls in
  the year, whatever the campaign; 実世帯数 counts the distinct households of those records.
- 気づき. Raised: by the day it was registered (Asia/Tokyo). 確認 / つなぎ / 継続支援: the concerns
  whose status changed to that state during the year (each concern once per state); つなぎ先 is the
  counter of the concerns referred in the year.
- 継続的支援. A case is supported in the year when it was open on any day of it (opened on or before
  the last day, not closed before the first). 実人数 counts people: the case's named resident, and a
  case without a named resident as one person of its own; a person with two cases counts once.
  延べ件数 counts the contacts that stand (neither corrected nor retracted) dated in the year, by
  kind. Opened / closed: by their dates; continuing: open at the year's end, by their stage on that
  day (the last recorded change before the year ended; today's stage for the current year).
  Consent obtained: consent dated in the year.
- 会議. 支え愛連絡会: each meeting held in the year. 支援会議 / 重層的支援会議 are recorded per case:
  a meeting held is a distinct (kind, day); the cases discussed are the distinct cases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from backend.dates import fiscal_year_bounds, fiscal_year_of
from backend.db import fetch_dicts
from backend.errors import InvalidInput
from backend.vocabulary import CONCERN_CATEGORIES
from outreach.models import CaseContactKind, CaseStage, ConcernSource, Counter
from reports.suppression import suppress_report
from reports.tables import Table
from visits.coverage import campaign_cells, coverage_pct, coverage_state
from visits.models import Campaign

# The 年度 a report may name: from the first year anyone could have records to the next one.
EARLIEST_FISCAL_YEAR = 2000


def wareki_fiscal_year(year: int) -> str:
    """The 年度's name in the Japanese calendar, by the era its first day (1 April) falls in:
    2025 → 令和7年度, 2019 → 令和元年度 (the era began on 1 May 2019; that 年度 is called 令和元年度
    in municipal documents), 2018 → 平成30年度."""
    eras = ((2019, "令和"), (1989, "平成"), (1926, "昭和"))
    for first, name in eras:
        if year >= first:
            n = year - first + 1
            return f"{name}{'元' if n == 1 else n}年度"
    raise ValueError(f"no era for {year}")


def plausible_fiscal_years(today: dt.date) -> tuple[int, int]:
    return EARLIEST_FISCAL_YEAR, fiscal_year_of(today) + 1


def require_plausible_fiscal_year(year: int, loc: list[str]) -> None:
    """422 at `loc` for a 年度 before EARLIEST_FISCAL_YEAR or after the next one."""
    first, last = plausible_fiscal_years(timezone.localdate())
    if not first <= year <= last:
        raise InvalidInput(f"The 年度 must be between {first} and {last}.",
                           details=[{"loc": loc, "msg": f"between {first} and {last}"}])


def months_of(year: int) -> list[str]:
    """The 年度's months, April first: ["2025-04", …, "2026-03"]."""
    return [f"{year + (m < 4)}-{m:02d}" for m in (*range(4, 13), 1, 2, 3)]



# --- the statements ------------------------------------------------------------------------------
# Every statement takes %(m)s (the municipality), %(start)s / %(end)s (the year's first and last
# day), %(since)s / %(until)s (the same as instants in Asia/Tokyo: [since, until)) and %(tz)s.

# Visit records that stand, in the year, with where their household is.
_VISITS_SQL = """
WITH v AS (
  SELECT vr.household_id, vr.outcome,
         to_char((vr.visited_at AT TIME ZONE %(tz)s)::date, 'YYYY-MM') AS month,
         n.daily_life_area_id AS area_id, n.district_id
    FROM visits_visitrecord vr
    JOIN neighborhoods_household h ON h.id = vr.household_id
    LEFT JOIN neighborhoods_neighborhood n ON n.id = h.neighborhood_id
   WHERE vr.municipality_id = %(m)s AND vr.visited_at >= %(since)s AND vr.visited_at < %(until)s
     AND NOT EXISTS (SELECT 1 FROM visits_visitrecord c WHERE c.supersedes_id = vr.id)
)
SELECT GROUPING(month) AS g_month, GROUPING(area_id) AS g_area, GROUPING(district_id) AS g_district,
       month, area_id, district_id,
       count(*) AS visits, count(DISTINCT household_id) AS households_visited,
       count(*) FILTER (WHERE outcome = 'met') AS met,
       count(*) FILTER (WHERE outcome = 'absent') AS absent,
       count(*) FILTER (WHERE outcome = 'leaflet_left') AS leaflet_left,
       count(*) FILTER (WHERE outcome = 'refused') AS refused,
       count(*) FILTER (WHERE outcome IN ('moved', 'vacant')) AS moved_or_vacant
  FROM v
 GROUP BY GROUPING SETS ((), (month), (area_id), (district_id))
"""

_CONCERNS_SQL = """
WITH raised AS (
  SELECT c.id, c.source, c.categories, n.daily_life_area_id AS area_id,
         to_char((c.created_at AT TIME ZONE %(tz)s)::date, 'YYYY-MM') AS month
    FROM outreach_concern c
    LEFT JOIN neighborhoods_neighborhood n ON n.id = c.neighborhood_id
   WHERE c.municipality_id = %(m)s AND c.created_at >= %(since)s AND c.created_at < %(until)s
)
SELECT 'source' AS kind, source AS key, count(*) AS n FROM raised GROUP BY source
UNION ALL
SELECT 'category', cat, count(*) FROM raised, unnest(categories) AS cat GROUP BY cat
UNION ALL
SELECT 'month', month, count(*) FROM raised GROUP BY month
UNION ALL
SELECT 'area', area_id::text, count(*) FROM raised GROUP BY area_id
UNION ALL
SELECT 'raised', '', count(*) FROM raised
UNION ALL
SELECT 'status', t.to_status, count(DISTINCT t.concern_id)
  FROM outreach_concerntransition t JOIN outreach_concern c ON c.id = t.concern_id
 WHERE c.municipality_id = %(m)s AND t.at >= %(since)s AND t.at < %(until)s
   AND t.to_status IN ('triaged', 'referred', 'case_opened')
 GROUP BY t.to_status
UNION ALL
SELECT 'referred_to', c.referred_to, count(*)
  FROM outreach_concern c
 WHERE c.municipality_id = %(m)s AND c.referred_to <> ''
   AND EXISTS (SELECT 1 FROM outreach_concerntransition t WHERE t.concern_id = c.id AND t.to_status = 'referred'
                  AND t.at >= %(since)s AND t.at < %(until)s)
 GROUP BY c.referred_to
"""

# Cases open on some day of the year; a person is the named resident, or the case itself.
_CASES_SQL = """
WITH cases AS (
  SELECT oc.id, COALESCE('r:' || oc.resident_id::text, 'c:' || oc.id::text) AS person,
         oc.opened_on, oc.closed_on, oc.consent_date, oc.stage, n.daily_life_area_id AS area_id
    FROM outreach_outreachcase oc
    JOIN neighborhoods_household h ON h.id = oc.household_id
    LEFT JOIN neighborhoods_neighborhood n ON n.id = h.neighborhood_id
   WHERE oc.municipality_id = %(m)s AND oc.opened_on <= %(end)s AND (oc.closed_on IS NULL OR oc.closed_on >= %(start)s)
), continuing AS (
  SELECT c.id, COALESCE((SELECT e.stage FROM outreach_outreachcasehistory e
                          WHERE e.pgh_obj_id = c.id AND e.pgh_created_at < %(until)s
                          ORDER BY e.pgh_created_at DESC, e.pgh_id DESC LIMIT 1), c.stage) AS stage
    FROM cases c
   WHERE c.closed_on IS NULL OR c.closed_on > %(end)s
)
SELECT 'people' AS kind, '' AS key, count(DISTINCT person) AS n FROM cases
UNION ALL SELECT 'area_people', area_id::text, count(DISTINCT person) FROM cases GROUP BY area_id
UNION ALL SELECT 'opened', '', count(*) FROM cases WHERE opened_on >= %(start)s
UNION ALL SELECT 'closed', '', count(*) FROM cases WHERE closed_on <= %(end)s
UNION ALL SELECT 'continuing', '', count(*) FROM continuing
UNION ALL SELECT 'stage', stage, count(*) FROM continuing GROUP BY stage
UNION ALL SELECT 'consent', '', count(*) FROM cases WHERE consent_date BETWEEN %(start)s AND %(end)s
"""

_CONTACTS_SQL = """
WITH k AS (
  SELECT k.kind, to_char(k.contacted_on, 'YYYY-MM') AS month, n.daily_life_area_id AS area_id,
         COALESCE('r:' || oc.resident_id::text, 'c:' || oc.id::text) AS person
    FROM outreach_casecontact k
    JOIN outreach_outreachcase oc ON oc.id = k.case_id
    JOIN neighborhoods_household h ON h.id = oc.household_id
    LEFT JOIN neighborhoods_neighborhood n ON n.id = h.neighborhood_id
   WHERE oc.municipality_id = %(m)s AND k.contacted_on BETWEEN %(start)s AND %(end)s AND NOT k.retracted
     AND NOT EXISTS (SELECT 1 FROM outreach_casecontact s WHERE s.supersedes_id = k.id)
)
SELECT GROUPING(kind) AS g_kind, GROUPING(month) AS g_month, GROUPING(area_id) AS g_area,
       kind, month, area_id, count(*) AS contacts, count(DISTINCT person) AS people
  FROM k
 GROUP BY GROUPING SETS ((), (kind), (month), (area_id))
"""

_MEETINGS_SQL = """
SELECT 'sasaeai' AS kind, to_char(held_on, 'YYYY-MM') AS month, count(*) AS held, 0 AS cases
  FROM outreach_meeting
 WHERE municipality_id = %(m)s AND held_on BETWEEN %(start)s AND %(end)s
 GROUP BY ROLLUP (to_char(held_on, 'YYYY-MM'))
UNION ALL
SELECT cm.kind, to_char(cm.held_on, 'YYYY-MM'), count(DISTINCT cm.held_on), count(DISTINCT cm.case_id)
  FROM outreach_casemeeting cm JOIN outreach_outreachcase oc ON oc.id = cm.case_id
 WHERE oc.municipality_id = %(m)s AND cm.held_on BETWEEN %(start)s AND %(end)s
 GROUP BY cm.kind, ROLLUP (to_char(cm.held_on, 'YYYY-MM'))
"""

_PLACES_SQL = """
SELECT 'area' AS kind, id, name FROM neighborhoods_dailylifearea WHERE municipality_id = %(m)s
UNION ALL
SELECT 'district', id, name FROM neighborhoods_district WHERE municipality_id = %(m)s
 ORDER BY 1, 3
"""

UNPLACED = "（未設定）"
_HOUSEHOLD_KEYS = ("households_in_scope", "met", "absent_final", "leaflet_left", "refused", "moved_or_vacant")
_VISIT_KEYS = ("visits", "households_visited")
_MONTH_KEYS = ("visits", "households_visited", "met", "absent", "leaflet_left", "refused", "moved_or_vacant")


def _params(municipality_id: int, year: int) -> dict:
    start, end = fiscal_year_bounds(year)
    tz = settings.TIME_ZONE
    zone = ZoneInfo(tz)
    return {
        "m": municipality_id, "year": year, "start": start, "end": end, "tz": tz,
        "since": dt.datetime.combine(start, dt.time(0, 0), tzinfo=zone),
        "until": dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone),
    }


def _labelled(counts: dict[str, int], labels: dict[str, str]) -> list[dict]:
    """Every key of the vocabulary (zeros included, in its order), then any key it does not know."""
    items = [{"key": k, "label": label, "count": counts.get(k, 0)} for k, label in labels.items()]
    items += [{"key": k, "label": k, "count": n} for k, n in sorted(counts.items()) if k not in labels]
    return items


def _places(names: dict[tuple[str, int], str], kind: str, keys: Sequence[str],
            values: dict[int | None, dict]) -> list[dict]:
    """One row per 圏域 / 地区 of the municipality (`kind`), in name order, with `keys` from `values`;
    then the unplaced row when it has something."""
    out = [{"id": i, "name": name, **{k: values.get(i, {}).get(k, 0) for k in keys}}
           for (place_kind, i), name in names.items() if place_kind == kind]
    if None in values and any(values[None].get(k) for k in keys):
        out.append({"id": None, "name": UNPLACED, **{k: values[None].get(k, 0) for k in keys}})
    return out


def _by_kind(rows: list[dict]) -> Callable[[str], dict[str, int]]:
    """For statements answering (kind, key, n) rows: kind -> {key: n}."""
    return lambda kind: {r["key"]: r["n"] for r in rows if r["kind"] == kind}


def _area_key(key: str | None) -> int | None:
    return int(key) if key is not None else None


def _visits_section(municipality_id: int, year: int, params: dict, months: list[str],
                    names: dict[tuple[str, int], str]) -> dict:
    """世帯訪問調査: households from the coverage cells of the year's campaigns (visits.coverage: the
    one formula), visits from the records that stand."""
    households: dict[str, dict[int | None, dict]] = {"all": {}, "area": {}, "district": {}}
    coverage_by_hood: dict[int, dict] = {}
    for campaign in Campaign.objects.filter(municipality_id=municipality_id, fiscal_year=year).order_by("start_date", "pk"):
        for c in campaign_cells(campaign_id=campaign.pk, municipality_id=municipality_id):
            values = {
                "households_in_scope": c["in_scope"], "met": c["met"], "refused": c["refused"],
                "leaflet_left": c["leaflet_left"], "moved_or_vacant": c["moved_or_vacant"],
                "absent_final": c["leaflet_left"] + c["leaflet_due"],
            }
            for group, key in (("all", 0), ("area", c["daily_life_area_id"]), ("district", c["district_id"])):
                bucket = households[group].setdefault(key, dict.fromkeys(_HOUSEHOLD_KEYS, 0))
                for k, v in values.items():
                    bucket[k] += v
            hood = coverage_by_hood.setdefault(c["neighborhood_id"], {
                "code": c["code"], "name": c["name"], "in_scope": 0, "finished": 0, "absent_pending": 0})
            for k in ("in_scope", "finished", "absent_pending"):
                hood[k] += c[k]

    visit_rows = fetch_dicts(_VISITS_SQL, params)
    visits_all = next((r for r in visit_rows if r["g_month"] and r["g_area"] and r["g_district"]), None) or {}
    by_month = {r["month"]: r for r in visit_rows if not r["g_month"]}

    def merged(group: str, visits: dict[int | None, dict]) -> dict[int | None, dict]:
        return {
            key: {**households[group].get(key, dict.fromkeys(_HOUSEHOLD_KEYS, 0)),
                  **{k: visits.get(key, {}).get(k, 0) for k in _VISIT_KEYS}}
            for key in set(households[group]) | set(visits)
        }

    total_keys = (*_HOUSEHOLD_KEYS[:1], *_VISIT_KEYS, *_HOUSEHOLD_KEYS[1:])
    total = {**households["all"].get(0, dict.fromkeys(_HOUSEHOLD_KEYS, 0)),
             **{k: visits_all.get(k, 0) for k in _VISIT_KEYS}}
    coverage = sorted((
        {"neighborhood_id": hood_id, "code": cov["code"], "name": cov["name"],
         "in_scope": cov["in_scope"], "finished": cov["finished"],
         "coverage_pct": coverage_pct(cov["finished"], cov["in_scope"]),
         "state": coverage_state(in_scope=cov["in_scope"], finished=cov["finished"], absent_pending=cov["absent_pending"])}
        for hood_id, cov in coverage_by_hood.items()
    ), key=lambda r: r["code"])
    return {
        "total": {k: total[k] for k in total_keys},
        "by_month": [{"month": m, **{k: by_month.get(m, {}).get(k, 0) for k in _MONTH_KEYS}} for m in months],
        "by_area": _places(names, "area", total_keys,
                           merged("area", {r["area_id"]: r for r in visit_rows if not r["g_area"]})),
        "by_district": _places(names, "district", total_keys,
                               merged("district", {r["district_id"]: r for r in visit_rows if not r["g_district"]})),
        "coverage": coverage,
    }


def _concerns_section(params: dict, months: list[str], names: dict[tuple[str, int], str]) -> dict:
    concern = _by_kind(fetch_dicts(_CONCERNS_SQL, params))
    statuses, raised_by_month = concern("status"), concern("month")
    return {
        "total": {"raised": concern("raised").get("", 0), "triaged": statuses.get("triaged", 0),
                  "referred": statuses.get("referred", 0), "case_opened": statuses.get("case_opened", 0)},
        "by_source": _labelled(concern("source"), dict(ConcernSource.choices)),
        "by_category": _labelled(concern("category"), CONCERN_CATEGORIES),
        "referred_to": _labelled(concern("referred_to"), dict(Counter.choices)),
        "by_month": [{"month": m, "raised": raised_by_month.get(m, 0)} for m in months],
        "by_area": _places(names, "area", ("raised",),
                           {_area_key(k): {"raised": n} for k, n in concern("area").items()}),
    }


def _outreach_section(params: dict, months: list[str], names: dict[tuple[str, int], str]) -> dict:
    case = _by_kind(fetch_dicts(_CASES_SQL, params))
    contact_rows = fetch_dicts(_CONTACTS_SQL, params)
    contacts_all = next((r for r in contact_rows if r["g_kind"] and r["g_month"] and r["g_area"]), None) or {}
    by_month = {r["month"]: r for r in contact_rows if not r["g_month"]}
    area_contacts = {r["area_id"]: r["contacts"] for r in contact_rows if not r["g_area"]}
    area_people = {_area_key(k): n for k, n in case("area_people").items()}
    return {
        "people": case("people").get("", 0),
        "contacts": contacts_all.get("contacts", 0),
        "contacts_by_kind": _labelled({r["kind"]: r["contacts"] for r in contact_rows if not r["g_kind"]},
                                      dict(CaseContactKind.choices)),
        "by_month": [{"month": m, "contacts": by_month.get(m, {}).get("contacts", 0),
                      "people": by_month.get(m, {}).get("people", 0)} for m in months],
        "cases": {"opened": case("opened").get("", 0), "closed": case("closed").get("", 0),
                  "continuing": case("continuing").get("", 0)},
        "continuing_by_stage": _labelled(case("stage"), dict(CaseStage.choices)),
        "consent_obtained": case("consent").get("", 0),
        "by_area": _places(names, "area", ("people", "contacts"), {
            k: {"people": area_people.get(k, 0), "contacts": area_contacts.get(k, 0)}
            for k in set(area_people) | set(area_contacts)
        }),
    }


_MEETING_KINDS = ("sasaeai", "support", "multi_agency")


def _meetings_section(params: dict, months: list[str]) -> dict:
    rows = fetch_dicts(_MEETINGS_SQL, params)
    totals = {r["kind"]: r for r in rows if r["month"] is None}
    monthly: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["month"] is not None:
            monthly.setdefault(r["month"], {})[r["kind"]] = r["held"]
    return {
        **{kind: totals.get(kind, {}).get("held", 0) for kind in _MEETING_KINDS},
        "support_cases": totals.get("support", {}).get("cases", 0),
        "multi_agency_cases": totals.get("multi_agency", {}).get("cases", 0),
        "by_month": [{"month": m, **{k: monthly.get(m, {}).get(k, 0) for k in _MEETING_KINDS}} for m in months],
    }


def fiscal_year_report(*, municipality_id: int, year: int, public: bool = False) -> dict[str, Any]:
    """The 年度 report of one municipality (module docstring: what counts). `public` suppresses
    small cells (reports.suppression)."""
    params = _params(municipality_id, year)
    months = months_of(year)
    names = {(r["kind"], r["id"]): r["name"] for r in fetch_dicts(_PLACES_SQL, params)}
    report: dict[str, Any] = {
        "fiscal_year": year, "label": wareki_fiscal_year(year), "start": params["start"], "end": params["end"],
        "months": months, "public": public, "suppressed_below": None,
        "visits": _visits_section(municipality_id, year, params, months, names),
        "concerns": _concerns_section(params, months, names),
        "outreach": _outreach_section(params, months, names),
        "meetings": _meetings_section(params, months),
    }
    return published(report, public=public)


def published(report: dict[str, Any], *, public: bool) -> dict[str, Any]:
    """The report as its reader gets it: with small cells suppressed when `public` (in place; the
    stored report, reports.snapshots, is the full one)."""
    if public:
        threshold = settings.REPORTS_SMALL_CELL_THRESHOLD
        suppress_report(report, threshold)
        report["public"], report["suppressed_below"] = True, threshold
    return report


# --- as tables (exports) -------------------------------------------------------------------------

_VISIT_HEADERS = {
    "households_in_scope": "対象世帯", "households_visited": "訪問世帯(実世帯数)", "visits": "延べ訪問件数",
    "met": "面談", "absent_final": "全回不在", "absent": "不在", "leaflet_left": "チラシ投函", "refused": "拒否",
    "moved_or_vacant": "転居・空き家",
}


def _month_label(month: str) -> str:
    y, m = month.split("-")
    return f"{y}年{int(m)}月"


def _table(title: str, first: str, rows: Iterable[dict], label_key: str, keys: Sequence[str],
           headers: dict[str, str]) -> Table:
    return Table(title=title, headers=[first, *(headers[k] for k in keys)],
                 rows=[[r[label_key], *(r[k] for k in keys)] for r in rows])


def fiscal_year_tables(report: dict) -> list[Table]:
    """The report as tables with Japanese headers (one CSV section / one XLSX sheet each)."""
    v, c, o, mt = report["visits"], report["concerns"], report["outreach"], report["meetings"]
    total_keys = list(v["total"])
    months = [dict(r, label=_month_label(r["month"])) for r in v["by_month"]]
    tables = [
        Table("概要", ["項目", "値"], [
            ["年度", report["label"]], ["期間", f"{report['start']}〜{report['end']}"],
            ["小さな値の秘匿", f"{report['suppressed_below']}未満を秘匿" if report["public"] else "なし"],
        ]),
        _table("世帯訪問調査 合計", "区分", [dict(v["total"], label="合計")], "label", total_keys, _VISIT_HEADERS),
        _table("世帯訪問調査 月別", "月", months, "label", _MONTH_KEYS, _VISIT_HEADERS),
        _table("世帯訪問調査 圏域別", "日常生活圏域", v["by_area"], "name", total_keys, _VISIT_HEADERS),
        _table("世帯訪問調査 地区別", "地区", v["by_district"], "name", total_keys, _VISIT_HEADERS),
        Table("自治会別 進捗", ["自治会コード", "自治会", "対象世帯", "完了世帯", "進捗率(%)"],
              [[r["code"], r["name"], r["in_scope"], r["finished"], r["coverage_pct"]] for r in v["coverage"]]),
        Table("気づき 合計", ["受付", "確認", "つなぎ", "継続支援へ"],
              [[c["total"][k] for k in ("raised", "triaged", "referred", "case_opened")]]),
        Table("気づき 経路別", ["経路", "件数"], [[r["label"], r["count"]] for r in c["by_source"]]),
        Table("気づき 分類別", ["分類", "件数"], [[r["label"], r["count"]] for r in c["by_category"]]),
        Table("気づき つなぎ先別", ["つなぎ先", "件数"], [[r["label"], r["count"]] for r in c["referred_to"]]),
        Table("気づき 月別", ["月", "受付"], [[_month_label(r["month"]), r["raised"]] for r in c["by_month"]]),
        Table("気づき 圏域別", ["日常生活圏域", "受付"], [[r["name"], r["raised"]] for r in c["by_area"]]),
        Table("継続的支援 合計", ["実人数", "延べ件数", "開始", "終結", "年度末継続", "同意取得"], [[
            o["people"], o["contacts"], o["cases"]["opened"], o["cases"]["closed"], o["cases"]["continuing"],
            o["consent_obtained"],
        ]]),
        Table("継続的支援 種別", ["種別", "延べ件数"], [[r["label"], r["count"]] for r in o["contacts_by_kind"]]),
        Table("継続的支援 段階別", ["段階(年度末)", "件数"], [[r["label"], r["count"]] for r in o["continuing_by_stage"]]),
        Table("継続的支援 月別", ["月", "延べ件数", "実人数"],
              [[_month_label(r["month"]), r["contacts"], r["people"]] for r in o["by_month"]]),
        Table("継続的支援 圏域別", ["日常生活圏域", "実人数", "延べ件数"],
              [[r["name"], r["people"], r["contacts"]] for r in o["by_area"]]),
        Table("会議", ["会議", "開催", "検討事例"], [
            ["支え愛連絡会", mt["sasaeai"], None], ["支援会議", mt["support"], mt["support_cases"]],
            ["重層的支援会議", mt["multi_agency"], mt["multi_agency_cases"]],
        ]),
        Table("会議 月別", ["月", "支え愛連絡会", "支援会議", "重層的支援会議"],
              [[_month_label(r["month"]), r["sasaeai"], r["support"], r["multi_agency"]] for r in mt["by_month"]]),
    ]
    return tables
